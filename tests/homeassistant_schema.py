"""Home Assistant's MQTT update entity, as its discovery and its state handler accept it.

A hand-written mirror of Home Assistant's ``mqtt/update.py``, ``mqtt/schemas.py`` and
``mqtt/discovery.py`` (topic matcher): the keys and types an update entity's discovery
config may hold, and the keys its JSON state is read for. Home Assistant drops unknown
top-level keys silently and refuses the whole config for an unknown device key; here any
unknown key is a problem, so a misspelt key cannot pass.
"""

from __future__ import annotations

import re
from typing import Any

#: ``<component>/[<node_id>/]<object_id>/config`` after the prefix, as discovery matches it.
_DISCOVERY_TOPIC = re.compile(
    r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config"
)

_STRING_KEYS = {
    "name",
    "unique_id",
    "state_topic",
    "command_topic",
    "payload_install",
    "entity_picture",
    "latest_version_topic",
    "latest_version_template",
    "value_template",
    "release_summary",
    "release_url",
    "title",
    "encoding",
    "object_id",
    "default_entity_id",
    "entity_category",
    "icon",
    "json_attributes_topic",
    "json_attributes_template",
    "availability_topic",
    "availability_template",
    "availability_mode",
    "payload_available",
    "payload_not_available",
}
UPDATE_KEYS = _STRING_KEYS | {
    "device_class",
    "device",
    "origin",
    "availability",
    "retain",
    "qos",
    "enabled_by_default",
}
DEVICE_KEYS = {
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
DEVICE_CLASSES = {None, "firmware"}
#: What the state handler reads from a JSON state; anything else is ignored there.
STATE_KEYS = {
    "installed_version",
    "latest_version",
    "title",
    "release_summary",
    "release_url",
    "entity_picture",
    "in_progress",
    "update_percentage",
}


def discovery_parts(topic: str, prefix: str) -> dict[str, str] | None:
    """Component, node and object ID of a discovery topic under ``prefix``, else ``None``."""
    if not topic.startswith(prefix + "/"):
        return None
    match = _DISCOVERY_TOPIC.fullmatch(topic[len(prefix) + 1 :])
    return match.groupdict() if match else None


def topic_problems(topic: str) -> list[str]:
    """Why ``topic`` is no topic one can publish to (empty: it is one)."""
    problems = []
    if not topic or len(topic.encode()) > 65535:
        problems.append(f"{topic!r}: empty or too long")
    if any(char in topic for char in "+#\0"):
        problems.append(f"{topic!r}: holds a wildcard or NUL")
    return problems


def config_problems(config: Any) -> list[str]:
    """Why Home Assistant would refuse, or misread, ``config`` as an update entity."""
    if not isinstance(config, dict):
        return ["the config is no JSON object"]
    problems = [f"unknown key {key!r}" for key in config if key not in UPDATE_KEYS]
    problems += [
        f"{key} is no string"
        for key in _STRING_KEYS & set(config)
        if not isinstance(config[key], str)
    ]
    if config.get("device_class") not in DEVICE_CLASSES:
        problems.append(f"device_class {config.get('device_class')!r} is no update class")
    if "state_topic" in config:
        problems += topic_problems(config["state_topic"])
    if "command_topic" in config and "payload_install" not in config:
        problems.append("command_topic without payload_install")
    device = config.get("device")
    if device is not None:
        # Only through discovery, and only with a unique_id, does an entity join a device.
        if "unique_id" not in config:
            problems.append("a device block without unique_id")
        problems += _device_problems(device)
    origin = config.get("origin")
    if origin is not None:
        if not isinstance(origin, dict) or not isinstance(origin.get("name"), str):
            problems.append("origin needs a name")
        else:
            problems += [f"unknown origin key {key!r}" for key in origin if key not in ORIGIN_KEYS]
    return problems


def _device_problems(device: Any) -> list[str]:
    if not isinstance(device, dict):
        return ["device is no JSON object"]
    problems = [f"unknown device key {key!r}" for key in device if key not in DEVICE_KEYS]
    identifiers = device.get("identifiers")
    if isinstance(identifiers, str):
        identifiers = [identifiers]
    if not identifiers and not device.get("connections"):
        problems.append("a device needs identifiers or connections")
    if identifiers and not all(isinstance(item, str) for item in identifiers):
        problems.append("device identifiers must be strings")
    problems += [
        f"device {key} is no string"
        for key in DEVICE_KEYS - {"identifiers", "connections"}
        if key in device and not isinstance(device[key], str)
    ]
    return problems


def state_problems(state: Any) -> list[str]:
    """Why ``state`` is no JSON state Home Assistant reads fully."""
    if not isinstance(state, dict):
        return ["the state is no JSON object (it would be read as the installed version)"]
    problems = [f"key {key!r} is not read" for key in state if key not in STATE_KEYS]
    if "installed_version" not in state:
        problems.append("no installed_version")
    for key in STATE_KEYS - {"in_progress", "update_percentage"}:
        if key in state and not isinstance(state[key], str | None):
            problems.append(f"{key} is no string")
    if "in_progress" in state and not isinstance(state["in_progress"], bool):
        problems.append("in_progress is no boolean")
    if len(state.get("release_summary") or "") > 255:
        problems.append("release_summary is longer than 255 characters")
    return problems
