"""Home Assistant's view of the fleet: one MQTT update entity per device channel.

Pure: a stored :class:`~fwwatch.state.ChannelState` becomes two retained messages that
Home Assistant's MQTT discovery reads, a config under
``<prefix>/update/fwwatch/<device_id>_<channel>/config`` and a JSON state under
``fwwatch/<device_id>/<channel>/state``; :func:`retained_changes` says which of them differ
from what a broker was last given, and which must be cleared (an empty retained payload)
because their device left the project.

Topics are made of a checked device ID (``[A-Za-z0-9_-]``) and a channel number only.
Names come from Tuya and are the user's to choose: they are JSON-encoded in payloads, never
put in a topic. No entity offers to install (no ``command_topic``): fwwatch only watches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import __version__
from .ignored import IgnoredVersions
from .state import ChannelState
from .tuya import InvalidDeviceIdError, validate_device_id

__all__ = [
    "DEFAULT_DISCOVERY_PREFIX",
    "Retained",
    "config_topic",
    "discovery_config",
    "entity_messages",
    "retained_changes",
    "state_topic",
    "unique_id",
    "update_state",
    "validate_discovery_prefix",
]

logger = logging.getLogger("fwwatch.homeassistant")

#: Home Assistant's own default discovery prefix.
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
#: Home Assistant shows at most this much of a release summary.
MAX_RELEASE_SUMMARY = 255
MAX_PREFIX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Retained:
    """One retained message: its topic, the device it belongs to, and its payload.

    An empty payload clears the topic: the broker forgets its retained message, and Home
    Assistant removes an entity whose config is cleared. ``published_at`` is when a broker
    acknowledged it (a message read back from the state), else ``None``.
    """

    topic: str
    device_id: str
    payload: str
    published_at: datetime | None = field(default=None, compare=False)

    @property
    def clears(self) -> bool:
        """Whether this message clears its topic."""
        return self.payload == ""


def validate_discovery_prefix(prefix: str) -> str:
    """A topic prefix Home Assistant can subscribe under, else ``ValueError`` saying why."""
    if not prefix or len(prefix) > MAX_PREFIX_LENGTH:
        raise ValueError(f"must be 1 to {MAX_PREFIX_LENGTH} characters, e.g. homeassistant")
    if any(char in prefix for char in "+#\0") or not prefix.isprintable():
        raise ValueError("must not hold the MQTT wildcards + or #, nor control characters")
    if prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError("must not start or end with '/', nor hold an empty level")
    return prefix


def unique_id(device_id: str, channel: int) -> str:
    """The entity's unique ID: stable across runs, a safe topic level."""
    return f"fwwatch_{device_id}_{channel}"


def config_topic(prefix: str, device_id: str, channel: int) -> str:
    """Where the entity's discovery config is retained."""
    return f"{prefix}/update/fwwatch/{device_id}_{channel}/config"


def state_topic(device_id: str, channel: int) -> str:
    """Where the entity's JSON state is retained."""
    return f"fwwatch/{device_id}/{channel}/state"


def discovery_config(state: ChannelState, prefix: str) -> dict[str, Any]:
    """Home Assistant's MQTT discovery config of an update entity for one device channel.

    The device block groups a device's channels (identifiers ``fwwatch_<device_id>``) and
    names its product as the model.
    """
    device: dict[str, Any] = {
        "identifiers": [f"fwwatch_{state.device_id}"],
        "name": state.device_name or state.device_id,
        "manufacturer": "Tuya",
        "model": state.product_name or state.product_id or "Tuya device",
    }
    return {
        "name": f"{_channel_label(state)} firmware",
        "unique_id": unique_id(state.device_id, state.channel),
        "state_topic": state_topic(state.device_id, state.channel),
        "device_class": "firmware",
        "device": device,
        "origin": {"name": "fwwatch", "sw_version": __version__},
    }


def update_state(state: ChannelState, *, ignored: bool = False) -> dict[str, Any]:
    """The entity's JSON state: installed and latest version, title, summary, progress.

    The latest version is the one on offer, else the installed one: Home Assistant shows an
    update when the two differ. An offer ``ignored`` by ``fwwatch ignore`` stays the latest
    version (Home Assistant's own skip is the user's to set there); its summary says so.
    """
    installed = state.current_version
    offered = state.offered_version
    latest = offered or installed
    product = f"{state.product_name} " if state.product_name else ""
    return {
        "installed_version": installed,
        "latest_version": latest,
        "title": f"{product}{_channel_label(state)} firmware",
        "release_summary": _summary(state, offered, ignored=ignored)[:MAX_RELEASE_SUMMARY],
        "in_progress": state.update_running,
    }


def entity_messages(
    state: ChannelState, prefix: str, *, ignored: bool = False
) -> tuple[Retained, Retained]:
    """The retained config and state of one device channel (raises for an unsafe ID)."""
    device_id = validate_device_id(state.device_id)
    return (
        Retained(
            config_topic(prefix, device_id, state.channel),
            device_id,
            _encode(discovery_config(state, prefix)),
        ),
        Retained(
            state_topic(device_id, state.channel),
            device_id,
            _encode(update_state(state, ignored=ignored)),
        ),
    )


def retained_changes(
    states: Iterable[ChannelState],
    *,
    prefix: str,
    published: Mapping[str, Retained],
    project: Set[str] | None,
    ignored: IgnoredVersions | None = None,
    republish_before: datetime | None = None,
) -> list[Retained]:
    """What to publish so the broker holds what ``states`` say: new or changed payloads,
    and clears for topics whose device left; configs first, so an entity exists before its
    state arrives.

    ``published`` is what the broker was last given, by topic (clears included).
    ``project`` is the project's devices when a run listed them all: a device outside it has
    its topics cleared. Without it (``--devices``, a failed listing) nothing is cleared, and
    a device cleared earlier stays cleared until a listing shows it again. An offer that
    ``ignored`` covers is published with a summary that says so. A message the broker
    acknowledged before ``republish_before`` is published again, changed or not: a broker
    that lost its retained messages (restarted without persistence) gets them back.
    """
    channels = [state for state in states if state.channel >= 0]
    if project is None:
        project = {state.device_id for state in channels} - _cleared_devices(published)
    wanted: dict[str, Retained] = {}
    for state in channels:
        if state.device_id not in project:
            continue
        try:
            skipped = ignored is not None and ignored.covers_offer(
                state.product_id, state.channel, state.offered_version
            )
            messages = entity_messages(state, prefix, ignored=skipped)
        except InvalidDeviceIdError as exc:
            logger.warning("not published to Home Assistant: %s", exc)
            continue
        wanted.update((message.topic, message) for message in messages)
    changes = [
        message
        for topic, message in wanted.items()
        if topic not in published
        or published[topic].payload != message.payload
        or _acknowledged_before(published[topic], republish_before)
    ]
    changes += [
        Retained(topic, old.device_id, "")
        for topic, old in published.items()
        if topic not in wanted and not old.clears
    ]
    return sorted(
        changes, key=lambda message: (not message.topic.endswith("/config"), message.topic)
    )


def _acknowledged_before(message: Retained, moment: datetime | None) -> bool:
    if moment is None or message.published_at is None:
        return False
    return message.published_at <= moment


def _cleared_devices(published: Mapping[str, Retained]) -> set[str]:
    """Devices whose every published topic was cleared: they left the project."""
    seen: dict[str, bool] = {}
    for message in published.values():
        seen[message.device_id] = seen.get(message.device_id, True) and message.clears
    return {device_id for device_id, cleared in seen.items() if cleared}


def _channel_label(state: ChannelState) -> str:
    return state.channel_name or f"Channel {state.channel}"


def _summary(state: ChannelState, offered: str | None, *, ignored: bool = False) -> str:
    installed = state.current_version or "an unknown version"
    if offered and ignored and not (state.update_running or state.update_failed):
        return (
            f"Firmware {offered} is on offer in the Tuya cloud; {installed} is installed. "
            f"fwwatch ignores {offered} for this product (fwwatch ignore --list): it sends "
            "no news of it; skip it here too, or remove the ignore to hear of it."
        )
    if offered and state.update_running:
        return (
            f"Firmware {offered} is being installed ({state.status_name}); {installed} until then."
        )
    if offered and state.update_failed:
        return (
            f"The update to {offered} did not complete ({state.status_name}); "
            f"{installed} is installed and {offered} is still on offer."
        )
    if offered:
        return f"Firmware {offered} is on offer in the Tuya cloud; {installed} is installed."
    return f"Firmware {installed} is installed; the Tuya cloud offers no other version."


def _encode(payload: Mapping[str, Any]) -> str:
    # Sorted and compact: one state always gives the same bytes, so "changed" means changed.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
