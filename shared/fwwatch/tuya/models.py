"""Typed answers of the Tuya Cloud: firmware per channel, and the devices of a project.

Tuya's documentation contradicts itself on the firmware endpoint (a list keyed ``type`` in
the field table, a single object keyed ``channel`` in the example), so parsing accepts both
shapes and both keys, unknown integers and unknown extra fields.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
)

from .errors import InvalidDeviceIdError, TuyaResponseError

__all__ = [
    "CHANNEL_NAMES",
    "DeviceFirmware",
    "DeviceSummary",
    "FirmwareChannel",
    "UpgradeStatus",
    "UpgradeStatusFacts",
    "offered_version",
    "parse_firmware",
    "update_on_offer",
    "validate_device_id",
]

# Tuya device IDs are short: letters, digits, and '_' or '-'. Anything else (a '/', '.', '%',
# whitespace, control or non-ASCII characters) could change the URL the ID is put into.
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DEVICE_ID_LENGTH = 64


def validate_device_id(device_id: object) -> str:
    """Return ``device_id`` if it is a well-formed Tuya device ID, else raise.

    Runs before an ID is put into a URL: ``../v1.0/token``, ``a/b``, percent-escapes,
    whitespace and over-long strings never reach the network.
    """
    if not isinstance(device_id, str):
        raise InvalidDeviceIdError(f"device ID must be a string, not {type(device_id).__name__}")
    if _DEVICE_ID.fullmatch(device_id):
        return device_id
    shown = device_id if len(device_id) <= 40 else device_id[:40] + "..."
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        reason = f"is {len(device_id)} characters long (at most {MAX_DEVICE_ID_LENGTH})"
    elif not device_id:
        reason = "is empty"
    else:
        reason = "may hold only ASCII letters, digits, '_' and '-'"
    raise InvalidDeviceIdError(f"invalid device ID {shown!r}: a Tuya device ID {reason}")


class UpgradeStatus(IntEnum):
    """Documented values of ``upgrade_status``; other integers are kept as plain ints."""

    IDLE = 0
    AVAILABLE = 1
    UPGRADING = 2
    FINISHED = 3
    FAILED = 4
    WAITING_FOR_WAKE = 5
    TIMED_OUT = 7


#: Statuses during which an update is already under way.
UPDATE_RUNNING = frozenset({UpgradeStatus.UPGRADING, UpgradeStatus.WAITING_FOR_WAKE})
#: Statuses that mean the last update did not complete.
UPDATE_FAILED = frozenset({UpgradeStatus.FAILED, UpgradeStatus.TIMED_OUT})


def offered_version(current: str | None, target: str | None) -> str | None:
    """The version on offer: a target other than the installed version, else ``None``."""
    if target and target != current:
        return target
    return None


def update_on_offer(current: str | None, target: str | None, upgrade_status: int) -> bool:
    """A version is on offer and no update is running: the device can be updated now.

    A target reported while an update runs is that update's, not a new offer.
    """
    return offered_version(current, target) is not None and upgrade_status not in UPDATE_RUNNING


#: Firmware channel numbers (``type``) and their names.
CHANNEL_NAMES: dict[int, str] = {
    0: "Main module",
    1: "Bluetooth",
    2: "GPRS",
    3: "Zigbee",
    4: "IR",
    5: "433 MHz",
    6: "NB-IoT",
    9: "MCU",
}


def channel_name(channel: int) -> str:
    """A readable name for a firmware channel number."""
    if channel in CHANNEL_NAMES:
        return CHANNEL_NAMES[channel]
    if 10 <= channel <= 19:
        return f"Extension {channel}"
    return f"Channel {channel}"


def upgrade_status_name(status: int) -> str:
    """``available``, ``upgrading``... for a status, or ``status N`` for an unknown one."""
    try:
        return UpgradeStatus(status).name.lower().replace("_", " ")
    except ValueError:
        return f"status {status}"


def _blank_to_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class UpgradeStatusFacts:
    """What an ``upgrade_status`` says, for every model that carries one."""

    upgrade_status: int

    @property
    def update_running(self) -> bool:
        """An update is under way (or waiting for the device to wake)."""
        return self.upgrade_status in UPDATE_RUNNING

    @property
    def update_failed(self) -> bool:
        """The last update failed or timed out."""
        return self.upgrade_status in UPDATE_FAILED

    @property
    def status_name(self) -> str:
        """The upgrade status as words."""
        return upgrade_status_name(self.upgrade_status)


class FirmwareChannel(UpgradeStatusFacts, BaseModel):
    """The firmware of one channel (module) of a device, as Tuya reports it."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    channel: int = Field(validation_alias=AliasChoices("type", "channel"))
    upgrade_status: int = 0
    current_version: str | None = None
    target_version: str | None = Field(
        default=None, validation_alias=AliasChoices("version", "target_version")
    )
    type_desc: str | None = None
    desc: str | None = None
    upgrading_desc: str | None = None
    downloading_desc: str | None = None
    waiting_desc: str | None = None
    dev_type: int | None = None
    timeout: int | None = None
    upgrade_type: int | None = None
    control_type: int | None = None
    can_upgrade: bool | None = None
    remind: str | None = None
    url: str | None = None
    md5: str | None = None
    sign: str | None = None
    file_size: int | None = None
    last_upgrade_time: int | None = None
    firmware_deploy_time: int | None = None

    @field_validator("current_version", "target_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
        return _blank_to_none(value)

    @field_validator(
        "file_size", "timeout", "last_upgrade_time", "firmware_deploy_time", mode="before"
    )
    @classmethod
    def _int_or_none(cls, value: object) -> object:
        # file_size is documented as a string; blank strings mean "not given".
        return _blank_to_none(value)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def channel_name(self) -> str:
        """Tuya's own description of the module when given, else the channel's name."""
        return self.type_desc or channel_name(self.channel)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def update_available(self) -> bool:
        """A target version other than the installed one is offered and no update is running."""
        return update_on_offer(self.current_version, self.target_version, self.upgrade_status)


class DeviceFirmware(BaseModel):
    """Firmware of every channel of one device."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    channels: tuple[FirmwareChannel, ...]

    @property
    def update_available(self) -> bool:
        """Any channel has an update on offer."""
        return any(channel.update_available for channel in self.channels)


def parse_firmware(device_id: str, result: Any, *, tid: str | None = None) -> DeviceFirmware:
    """Read the ``result`` of the firmware endpoint: a list of channels or a single one."""
    if result is None:
        items: list[Any] = []
    elif isinstance(result, dict):
        items = [result]
    elif isinstance(result, list):
        items = result
    else:
        raise TuyaResponseError(
            f"firmware of {device_id}: expected a list or an object, got {type(result).__name__}",
            tid=tid,
        )
    try:
        channels = tuple(FirmwareChannel.model_validate(item) for item in items)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "result"
        raise TuyaResponseError(
            f"firmware of {device_id}: unreadable field {where!r}: {first['msg']}", tid=tid
        ) from None
    return DeviceFirmware(device_id=device_id, channels=channels)


class DeviceSummary(BaseModel):
    """A device of the project, as the listing endpoints describe it."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    device_id: str = Field(validation_alias=AliasChoices("id", "device_id"))
    # Tuya's /v2.0 listing has been documented (and answered) in camelCase and snake_case.
    name: str | None = Field(
        default=None, validation_alias=AliasChoices("name", "customName", "custom_name")
    )
    product_id: str | None = Field(
        default=None, validation_alias=AliasChoices("product_id", "productId")
    )
    product_name: str | None = Field(
        default=None, validation_alias=AliasChoices("product_name", "productName")
    )
    category: str | None = None
    online: bool | None = Field(
        default=None, validation_alias=AliasChoices("online", "isOnline", "is_online")
    )
