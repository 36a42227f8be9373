"""Versions an operator chose to skip: their offers are not news.

An :class:`IgnoredVersion` names a product, a version and a channel (or every channel of
the product). :meth:`IgnoredVersions.covers` is the one rule: an ``update_available``
event whose (product, channel, offered version) is ignored is not told. Installs and
failures are always told, whatever their version.

News an ignore covers is held back, not thrown away: once no ignore covers it any more,
:func:`release_held` tells it, if the device channel still has that version on offer.
Removing an ignore therefore announces the version on the next run to the devices still
offered it, which is what an operator who never heard of it expects.

Pure code: local mode's runner loads the ignores from its store once per run and passes
them in; the AWS differ could pass the same value to the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .events import EventType, FirmwareEvent
from .state import ChannelKey, ChannelState
from .tuya.models import update_on_offer

__all__ = [
    "MAX_CHANNEL",
    "IgnoredVersion",
    "IgnoredVersions",
    "InvalidIgnoreError",
    "Release",
    "release_held",
    "validate_channel",
    "validate_product_id",
    "validate_version",
]

#: Tuya's channel numbers are small (0 main module ... 9 MCU, 10-19 extensions).
MAX_CHANNEL = 999
MAX_PRODUCT_ID_LENGTH = 64
MAX_VERSION_LENGTH = 64

_PRODUCT_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_PRODUCT_ID_LENGTH}}}")
# Tuya reports versions like 1.2.0; letters and +, _, - leave room for other schemes.
_VERSION = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._+-]{{0,{MAX_VERSION_LENGTH - 1}}}")


class InvalidIgnoreError(ValueError):
    """A product ID, version or channel that cannot name an ignored version."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def validate_product_id(text: str) -> str:
    """``text`` if it is a well-formed Tuya product ID, else :class:`InvalidIgnoreError`."""
    if _PRODUCT_ID.fullmatch(text):
        return text
    if not text:
        reason = "is empty"
    elif len(text) > MAX_PRODUCT_ID_LENGTH:
        reason = f"is {len(text)} characters long (at most {MAX_PRODUCT_ID_LENGTH})"
    else:
        reason = "may hold only ASCII letters, digits, '_' and '-'"
    raise InvalidIgnoreError(
        f"product ID {_shown(text)} {reason}: give the product's ID as "
        "`fwwatch status` or `fwwatch devices` shows it, e.g. keyjup78v54myhan"
    )


def validate_version(text: str) -> str:
    """``text`` if it reads as a firmware version, else :class:`InvalidIgnoreError`."""
    if _VERSION.fullmatch(text):
        return text
    if not text:
        reason = "is empty"
    elif len(text) > MAX_VERSION_LENGTH:
        reason = f"is {len(text)} characters long (at most {MAX_VERSION_LENGTH})"
    else:
        reason = (
            "may hold only ASCII letters, digits, '.', '_', '+' and '-', "
            "starting with a letter or digit"
        )
    raise InvalidIgnoreError(
        f"version {_shown(text)} {reason}: give the version exactly as Tuya offers it, "
        "e.g. 1.2.0 (`fwwatch status` shows the versions on offer)"
    )


def validate_channel(channel: int) -> int:
    """``channel`` if it is a firmware channel number, else :class:`InvalidIgnoreError`."""
    if 0 <= channel <= MAX_CHANNEL:
        return channel
    raise InvalidIgnoreError(
        f"channel {channel} is not a firmware channel: give a number from 0 to {MAX_CHANNEL} "
        "(0 main module, 1 Bluetooth, 3 Zigbee, 9 MCU...), or leave it out for every channel"
    )


@dataclass(frozen=True, slots=True)
class IgnoredVersion:
    """One version of one product whose offers are not news; ``channel`` ``None``: every
    channel of the product."""

    product_id: str
    version: str
    channel: int | None = None
    added_at: datetime | None = None

    def covers_offer(self, product_id: str | None, channel: int, version: str | None) -> bool:
        """This ignore applies to ``version`` offered on ``channel`` of ``product_id``."""
        return (
            product_id == self.product_id
            and version == self.version
            and (self.channel is None or self.channel == channel)
        )

    def describe(self) -> str:
        """``1.2.0 of product keyjup78v54myhan on channel 0`` (or ``on every channel``)."""
        where = "every channel" if self.channel is None else f"channel {self.channel}"
        return f"{self.version} of product {self.product_id} on {where}"


@dataclass(frozen=True, slots=True)
class IgnoredVersions:
    """Every ignored version: the rule that keeps their offers from being news."""

    entries: tuple[IgnoredVersion, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    def covers_offer(self, product_id: str | None, channel: int, version: str | None) -> bool:
        """Some ignore applies to ``version`` offered on ``channel`` of ``product_id``."""
        return any(entry.covers_offer(product_id, channel, version) for entry in self.entries)

    def covers(self, event: FirmwareEvent) -> bool:
        """``event`` is the offer of an ignored version (installs and failures never are)."""
        return event.type is EventType.UPDATE_AVAILABLE and self.covers_offer(
            event.product_id, event.channel, event.target_version
        )

    def split(
        self, events: Iterable[FirmwareEvent]
    ) -> tuple[list[FirmwareEvent], list[FirmwareEvent]]:
        """``(to tell, to hold back)``: the events this rule lets through, and the others."""
        told: list[FirmwareEvent] = []
        held: list[FirmwareEvent] = []
        for event in events:
            (held if self.covers(event) else told).append(event)
        return told, held


@dataclass(frozen=True, slots=True)
class Release:
    """What becomes of held-back news: told now, and forgotten (told or no longer true)."""

    tell: list[FirmwareEvent] = field(default_factory=list)
    forget: list[FirmwareEvent] = field(default_factory=list)


def release_held(
    held: Iterable[FirmwareEvent],
    ignored: IgnoredVersions,
    states: Mapping[ChannelKey, ChannelState],
) -> Release:
    """Held-back offers no ignore covers any more: told if the device channel's stored state
    (``states``) still offers that version, forgotten either way.

    An offer still covered stays held. One no longer true (the device installed the
    version, or is offered another since) is forgotten untold: that news was told in its
    own right, or is not news any more.
    """
    release = Release()
    for event in held:
        if ignored.covers(event):
            continue
        release.forget.append(event)
        state = states.get((event.device_id, event.channel))
        if state is not None and _still_offers(state, event.target_version):
            release.tell.append(event)
    return release


def _still_offers(state: ChannelState, version: str | None) -> bool:
    return state.offered_version == version and update_on_offer(
        state.current_version, state.target_version, state.upgrade_status
    )
