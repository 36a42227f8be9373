"""The simulated fleet: devices, their firmware channels, fleet files and generators.

A fleet file is JSON or YAML holding ``{"devices": [...]}``; each device carries what Tuya's
device listings show about it plus one entry per firmware channel.
"""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

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

Shape = Literal["list", "object"]
ChannelKey = Literal["type", "channel"]


def channel_name(channel: int) -> str:
    """Return Tuya's module name (`type_desc`) for a firmware channel number."""
    return CHANNEL_NAMES.get(channel, f"Extension channel {channel}")


class FleetChannel(BaseModel):
    """One firmware channel (module) of a device and the update Tuya offers for it.

    `target_version` None, or equal to `current_version`, means no update is offered. When a
    file sets a differing `target_version` but leaves `upgrade_status` out, the status becomes
    1 (update available), which is what Tuya reports for an offered update.
    """

    model_config = ConfigDict(extra="forbid")

    channel: int = Field(ge=0)
    name: str | None = None
    current_version: str = Field(min_length=1)
    target_version: str | None = None
    upgrade_status: int = 0
    upgrade_type: int | None = None
    control_type: int | None = None
    timeout: int | None = None
    desc: str | None = None
    can_upgrade: bool | None = None
    remind: str | None = None
    file_size: str | None = None
    firmware_deploy_time: int | None = None
    last_upgrade_time: int | None = None
    dev_type: int | None = None

    @model_validator(mode="after")
    def _offered_update_is_available(self) -> Self:
        if "upgrade_status" not in self.model_fields_set and self.has_update:
            self.upgrade_status = 1
        return self

    @property
    def type_desc(self) -> str:
        """The module description Tuya shows for this channel."""
        return self.name if self.name is not None else channel_name(self.channel)

    @property
    def has_update(self) -> bool:
        """Whether a version other than the installed one is offered."""
        return self.target_version is not None and self.target_version != self.current_version


class FleetDevice(BaseModel):
    """A device in the simulated project, as the listings and the firmware endpoint show it.

    `error` is a Tuya code the firmware endpoints answer for this device instead of data
    (2001 offline, 1106 permission deny, 2009 not supported, 2010 does not exist...).
    `shape` and `channel_key` choose between the two firmware answers Tuya documents: a list
    of channels keyed `type`, or (Tuya's example) one object keyed `channel`.
    """

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str
    product_id: str = Field(min_length=1)
    product_name: str
    category: str
    online: bool = True
    error: int | None = None
    shape: Shape = "list"
    channel_key: ChannelKey = "type"
    channels: list[FleetChannel] = Field(min_length=1)
    custom_name: str = ""
    model: str = ""
    sub: bool = False
    ip: str = ""
    time_zone: str = "+00:00"
    active_time: int = 1_700_000_000
    create_time: int = 1_700_000_000
    update_time: int = 1_700_000_000

    @model_validator(mode="after")
    def _channels_are_unique(self) -> Self:
        numbers = [c.channel for c in self.channels]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"device {self.device_id}: duplicate channel numbers {numbers}")
        return self

    def find_channel(self, channel: int) -> FleetChannel | None:
        """Return the channel with this number, if the device has it."""
        for c in self.channels:
            if c.channel == channel:
                return c
        return None


class Fleet(BaseModel):
    """All devices of the simulated cloud project, unique by `device_id`."""

    model_config = ConfigDict(extra="forbid")

    devices: list[FleetDevice] = Field(default_factory=list)
    _index: dict[str, FleetDevice] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Self:
        seen: set[str] = set()
        for d in self.devices:
            if d.device_id in seen:
                raise ValueError(f"duplicate device_id {d.device_id!r}")
            seen.add(d.device_id)
        return self

    def get(self, device_id: str) -> FleetDevice | None:
        """Return the device with this id, or None."""
        if self._index is None or len(self._index) != len(self.devices):
            self._index = {d.device_id: d for d in self.devices}
        return self._index.get(device_id)

    def __len__(self) -> int:
        return len(self.devices)


class FleetFileError(ValueError):
    """A fleet file could not be read or does not describe a valid fleet."""


def load_fleet(path: str | Path) -> Fleet:
    """Read a fleet from a .json, .yaml or .yml file.

    Raises FleetFileError naming the file and what is wrong with it.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in {".json", ".yaml", ".yml"}:
        raise FleetFileError(f"{p}: unsupported fleet file type {suffix!r} (use .json or .yaml)")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise FleetFileError(f"{p}: cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError:
        raise FleetFileError(f"{p}: not UTF-8 text") from None
    data: Any
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise FleetFileError(f"{p}: invalid JSON at line {e.lineno}: {e.msg}") from e
    except yaml.YAMLError as e:
        raise FleetFileError(f"{p}: invalid YAML: {e}") from e
    except (ValueError, RecursionError) as e:  # nested too deep, a number too long
        raise FleetFileError(f"{p}: unreadable: {type(e).__name__}") from None
    if not isinstance(data, dict) or "devices" not in data:
        raise FleetFileError(f"{p}: expected a mapping with a 'devices' list at the top")
    try:
        return Fleet.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg']}"
            for err in e.errors()[:10]
        )
        more = "" if e.error_count() <= 10 else f" (and {e.error_count() - 10} more)"
        raise FleetFileError(
            f"{p}: invalid fleet, {e.error_count()} problem(s): {problems}{more}"
        ) from e


@dataclass(frozen=True)
class ChannelTemplate:
    """A firmware channel every device of a product has, with its release history."""

    channel: int
    versions: tuple[str, ...]
    dev_type: int = 0
    upgrade_type: int = 0
    timeout: int = 300


@dataclass(frozen=True)
class ProductTemplate:
    """A product the generator makes devices of."""

    product_id: str
    product_name: str
    category: str
    name_prefix: str
    channels: tuple[ChannelTemplate, ...]
    shape: Shape = "list"
    channel_key: ChannelKey = "type"
    sub: bool = False


DEFAULT_PRODUCTS: tuple[ProductTemplate, ...] = (
    ProductTemplate(
        product_id="keyjup78v54myhan",
        product_name="Smart Plug 16A",
        category="cz",
        name_prefix="Plug",
        channels=(ChannelTemplate(0, ("1.0.4", "1.1.2", "1.1.5", "1.2.0"), timeout=120),),
    ),
    ProductTemplate(
        product_id="qhivvyqawogv04e4",
        product_name="Zigbee Temperature & Humidity Sensor",
        category="wsdcg",
        name_prefix="Sensor",
        channels=(
            ChannelTemplate(3, ("1.0.2", "1.0.7", "1.0.9"), dev_type=1, timeout=3600),
            ChannelTemplate(9, ("1.0.0", "1.0.1"), dev_type=1, timeout=3600),
        ),
        sub=True,
    ),
    ProductTemplate(
        product_id="2anhbobjpphhs2hu",
        product_name="Zigbee Gateway",
        category="wg2",
        name_prefix="Gateway",
        channels=(
            ChannelTemplate(0, ("1.4.0", "1.5.1", "1.6.2")),
            ChannelTemplate(3, ("1.0.3", "1.0.6")),
        ),
        channel_key="channel",
    ),
    ProductTemplate(
        product_id="ufojxcnrl2xvmfp1",
        product_name="Bluetooth Door Lock",
        category="ms",
        name_prefix="Lock",
        channels=(ChannelTemplate(1, ("2.1.0", "2.2.3", "2.3.0"), dev_type=1, upgrade_type=2),),
        shape="object",
        channel_key="channel",
    ),
)


class _ProductPrototypes:
    """Ready-made models of one product, copied per generated device.

    model_copy(update=...) neither validates nor walks every field's default, which makes it
    several times cheaper than model_construct; the generator's values are valid by
    construction, and validating 100,000 models would take most of the time budget.
    """

    def __init__(self, product: ProductTemplate) -> None:
        self.product = product
        self.channels = [
            (
                tpl,
                FleetChannel.model_construct(
                    channel=tpl.channel,
                    current_version=tpl.versions[-1],
                    target_version=None,
                    upgrade_status=0,
                    upgrade_type=tpl.upgrade_type,
                    control_type=0,
                    timeout=tpl.timeout,
                    dev_type=tpl.dev_type,
                ),
            )
            for tpl in product.channels
        ]
        self.device = FleetDevice.model_construct(
            device_id="prototype",
            name=product.name_prefix,
            product_id=product.product_id,
            product_name=product.product_name,
            category=product.category,
            shape=product.shape,
            channel_key=product.channel_key,
            channels=[],
            sub=product.sub,
        )

    def make(
        self, device_id: str, index: int, rng: random.Random, *, update: bool, offline: bool
    ) -> FleetDevice:
        channels = []
        for tpl, proto in self.channels:
            newest = len(tpl.versions) - 1
            # An offered update needs something older installed; otherwise devices are current.
            installed = rng.randrange(newest) if update and newest > 0 else newest
            target = tpl.versions[newest] if installed < newest else None
            channels.append(
                proto.model_copy(
                    update={
                        "current_version": tpl.versions[installed],
                        "target_version": target,
                        "upgrade_status": 1 if target is not None else 0,
                    }
                )
            )
        return self.device.model_copy(
            update={
                "device_id": device_id,
                "name": f"{self.product.name_prefix} {index + 1}",
                "online": not offline,
                "error": 2001 if offline else None,
                "channels": channels,
                "active_time": 1_690_000_000 + index,
                "create_time": 1_690_000_000 + index,
                "update_time": 1_700_000_000 + index,
            }
        )


def generate_fleet(
    count: int,
    *,
    seed: int = 0,
    products: Sequence[ProductTemplate] = DEFAULT_PRODUCTS,
    update_ratio: float = 0.1,
    offline_ratio: float = 0.02,
) -> Fleet:
    """Make a deterministic fleet of `count` devices spread over `products`.

    The same arguments always give the same fleet. About `update_ratio` of the devices are
    offered an update on every channel; about `offline_ratio` are offline, and the firmware
    endpoint answers 2001 (device is offline) for them. Device ids are 22 characters, "bf"
    followed by hex digits, like Tuya's.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    if not products:
        raise ValueError("at least one product is needed")
    # Hundreds of thousands of new objects trigger many full collections of everything else
    # alive (another big fleet, say), which tripled the run time; none of them form cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(count, seed, products, update_ratio, offline_ratio)
    finally:
        if gc_was_enabled:
            gc.enable()


def _generate(
    count: int,
    seed: int,
    products: Sequence[ProductTemplate],
    update_ratio: float,
    offline_ratio: float,
) -> Fleet:
    rng = random.Random(seed)
    prototypes = [_ProductPrototypes(p) for p in products]
    seen: set[str] = set()
    devices: list[FleetDevice] = []
    for i in range(count):
        device_id = f"bf{rng.getrandbits(80):020x}"
        while device_id in seen:
            device_id = f"bf{rng.getrandbits(80):020x}"
        seen.add(device_id)
        update = rng.random() < update_ratio
        offline = rng.random() < offline_ratio
        proto = prototypes[i % len(prototypes)]
        devices.append(proto.make(device_id, i, rng, update=update, offline=offline))
    return Fleet.model_construct(devices=devices)


def demo_fleet() -> Fleet:
    """A small hand-written fleet for demos: 12 devices of 4 products, mixed answer shapes.

    One device (the garage plug) is offline and answers 2001; the hallway sensor is already
    offered an update on its Zigbee channel.
    """
    plug, sensor, gateway, lock = DEFAULT_PRODUCTS

    def dev(
        device_id: str,
        name: str,
        product: ProductTemplate,
        versions: Sequence[tuple[str, str | None]],
        **extra: Any,
    ) -> dict[str, Any]:
        channels = [
            {
                "channel": tpl.channel,
                "current_version": current,
                "target_version": target,
                "dev_type": tpl.dev_type,
                "upgrade_type": tpl.upgrade_type,
                "timeout": tpl.timeout,
                "control_type": 0,
            }
            for tpl, (current, target) in zip(product.channels, versions, strict=True)
        ]
        return {
            "device_id": device_id,
            "name": name,
            "product_id": product.product_id,
            "product_name": product.product_name,
            "category": product.category,
            "shape": product.shape,
            "channel_key": product.channel_key,
            "sub": product.sub,
            "channels": channels,
            **extra,
        }

    devices = [
        dev("bf3a61c0e2d94f5b8a01c7", "Kitchen plug", plug, [("1.2.0", None)]),
        dev("bf3a61c0e2d94f5b8a02d1", "Desk lamp plug", plug, [("1.2.0", None)]),
        dev("bf3a61c0e2d94f5b8a03e9", "TV plug", plug, [("1.1.5", None)], custom_name="Telly"),
        dev(
            "bf3a61c0e2d94f5b8a04f2",
            "Garage plug",
            plug,
            [("1.1.2", None)],
            online=False,
            error=2001,
        ),
        dev(
            "bf7c19e4a0b2c3d4e5f601",
            "Hallway sensor",
            sensor,
            [("1.0.7", "1.0.9"), ("1.0.1", None)],
        ),
        dev("bf7c19e4a0b2c3d4e5f602", "Bedroom sensor", sensor, [("1.0.9", None), ("1.0.1", None)]),
        dev("bf7c19e4a0b2c3d4e5f603", "Attic sensor", sensor, [("1.0.9", None), ("1.0.0", None)]),
        dev(
            "bf7c19e4a0b2c3d4e5f604",
            "Cellar sensor",
            sensor,
            [("1.0.9", None), ("1.0.1", None)],
            shape="object",
            channel_key="channel",
        ),
        dev(
            "bfd2e8a14c6b7f09aa3e01",
            "Living room gateway",
            gateway,
            [("1.6.2", None), ("1.0.6", None)],
        ),
        dev(
            "bfd2e8a14c6b7f09aa3e02", "Office gateway", gateway, [("1.6.2", None), ("1.0.6", None)]
        ),
        dev("bf09f4be7d21c8a6e55b01", "Front door lock", lock, [("2.3.0", None)]),
        dev("bf09f4be7d21c8a6e55b02", "Back door lock", lock, [("2.3.0", None)]),
    ]
    return Fleet.model_validate({"devices": devices})
