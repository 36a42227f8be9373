"""What the fleet report says, built from the stored state: the same in both modes.

The input is what a state store keeps: every channel state (the device items among them,
with each device's last error), when each device was last checked (local mode keeps it;
AWS writes a device only when something changed, so there it is unknown), and the history
of the versions the fleet was on at the end of each run (local mode's ``run_versions``).
Where no history is kept (AWS), a release's adoption over time is estimated from the
states: each device channel on the release counts from its last recorded change, so the
estimate never shows more devices on a release than were on it.

The text in it is Tuya's, as stored: names are chosen by whoever owns a device, and every
renderer escapes them for its own medium (:mod:`fwwatch.fleet_report.page` for HTML).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..ignored import IgnoredVersions
from ..state import DEVICE_LEVEL_CHANNEL, ChannelState, StoredError
from ..tuya.codes import Kind, meaning_of
from ..tuya.models import UpgradeStatus, channel_name

__all__ = [
    "AdoptionPoint",
    "DeviceRow",
    "DeviceStatus",
    "FleetReport",
    "ProductChannel",
    "Release",
    "Summary",
    "VersionShare",
    "VersionTally",
    "build_fleet_report",
    "version_order",
]

#: Tuya's code for "device is offline".
OFFLINE_CODE = 2001


class DeviceStatus(StrEnum):
    """A device channel's status in the report, in the order that needs attention first."""

    FAILED = "failed"  # the last update failed or timed out
    OFFLINE = "offline"  # the cloud answered that the device is offline
    NOT_CHECKED = "not checked"  # the last check got no answer (busy, unreachable), or none yet
    DEVICE_ERROR = "device error"  # another answer for the device: not in the project...
    UPDATING = "updating"  # an update is under way
    ON_OFFER = "update on offer"
    UP_TO_DATE = "up to date"

    @property
    def rank(self) -> int:
        """Its place in the attention order (0 first)."""
        return list(DeviceStatus).index(self)


#: The statuses of a device the cloud did not give firmware for in its last check.
UNREACHED = frozenset({DeviceStatus.OFFLINE, DeviceStatus.NOT_CHECKED, DeviceStatus.DEVICE_ERROR})


@dataclass(frozen=True, slots=True)
class VersionTally:
    """At the end of one run: device channels of a product and channel on a version
    (``installed``) and offered it (``offered``)."""

    run_id: str
    at: datetime
    product_id: str
    channel: int
    version: str
    installed: int
    offered: int


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceRow(_Model):
    """One device channel as the device table shows it (``channel`` is ``None`` for a device
    no check has given a channel of yet)."""

    device_id: str
    device_name: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    channel: int | None = None
    channel_name: str = ""
    installed: str | None = None
    offered: str | None = None
    #: The offered version is one `fwwatch ignore` skips.
    ignored: bool = False
    status: DeviceStatus
    #: The device's last error, as ``[code] message``.
    error: str | None = None
    #: When the device was last checked (local mode), or last seen changing (AWS).
    last_checked: datetime | None = None


class VersionShare(_Model):
    """Of one product and channel: device channels on a version, and offered it."""

    version: str | None
    installed: int
    offered: int


class ProductChannel(_Model):
    """One product's firmware channel across the fleet: who is on which version."""

    product_id: str | None
    product_name: str | None
    channel: int
    channel_name: str
    device_channels: int
    #: Newest version first; a version on offer that no device has yet is listed too.
    versions: list[VersionShare]

    @property
    def offers(self) -> list[VersionShare]:
        """The versions on offer, newest first."""
        return [share for share in self.versions if share.offered]


class AdoptionPoint(_Model):
    """Device channels on a release (and offered it, when known) from this moment on."""

    at: datetime
    installed: int
    offered: int | None = None


class Release(_Model):
    """A version offered to a product's channel, and how far it has got."""

    product_id: str | None
    product_name: str | None
    channel: int
    channel_name: str
    version: str
    #: When it was first seen on offer or installed.
    first_seen: datetime
    installed: int
    offered: int
    #: Device channels of the product and channel now: what adoption is measured against.
    device_channels: int
    #: Only the moments its figures changed, oldest first; each holds until the next.
    points: list[AdoptionPoint]
    #: The points come from the states' timestamps, not from a history of runs (AWS).
    estimated: bool = False


class Summary(_Model):
    """The fleet in figures: devices, and updates (one per device channel)."""

    devices: int
    products: int
    #: Devices whose every channel is up to date.
    up_to_date: int
    on_offer: int
    updating: int
    failed: int
    offline: int
    not_checked: int
    device_errors: int
    #: The latest check (local) or latest change recorded (AWS).
    last_check: datetime | None
    #: Device channels per status, in attention order.
    statuses: dict[DeviceStatus, int]

    @property
    def up_to_date_share(self) -> float:
        """Devices up to date, as a fraction of all devices (1.0 for no device)."""
        return self.up_to_date / self.devices if self.devices else 1.0


class FleetReport(_Model):
    """The whole report: ``fwwatch report --json`` writes it, the page shows it."""

    generated_at: datetime
    mode: Literal["local", "aws"]
    #: Where the state was read: a file, or a table and its region.
    source: str
    #: When each device was last checked is known (local mode).
    checks_known: bool
    #: Adoption comes from a history of runs; else it is estimated from the states.
    history_kept: bool
    #: The first run of that history.
    history_since: datetime | None
    summary: Summary
    products: list[ProductChannel]
    releases: list[Release]
    #: Every device channel, those needing attention first.
    devices: list[DeviceRow]


_VERSION_PART = re.compile(r"(\d{1,18})")


def version_order(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts ``1.10.0`` after ``1.9.2`` (numbers compared as numbers)."""
    if not version:
        return ()
    # The split puts each run of digits at an odd place: only those are numbers ("²" is a
    # digit to str.isdigit, not to int); a run is cut at 18 digits, as int() of a very long
    # one is refused.
    return tuple(
        (0, int(part)) if odd else (1, part)
        for odd, part in ((n % 2 == 1, part) for n, part in enumerate(_VERSION_PART.split(version)))
        if part
    )


def natural_order(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key for names as people sort them: ``Plug 9`` before ``Plug 10``, any case."""
    return version_order(text.casefold())


def error_status(error: StoredError | None) -> DeviceStatus | None:
    """What a device's last error makes of it: offline, another device-level answer, or
    not checked (no answer for it); ``None`` for no error."""
    if error is None:
        return None
    if error.code == OFFLINE_CODE:
        return DeviceStatus.OFFLINE
    if meaning_of(error.code).kind in (Kind.DEVICE, Kind.PERMISSION):
        return DeviceStatus.DEVICE_ERROR
    return DeviceStatus.NOT_CHECKED


def channel_status(state: ChannelState, device_error: DeviceStatus | None) -> DeviceStatus:
    """A device channel's status: a failed update first, then what the device's last
    check said, then the channel's update (running, on offer) or up to date."""
    if state.update_failed:
        return DeviceStatus.FAILED
    if device_error is not None:
        return device_error
    if state.update_running:
        return DeviceStatus.UPDATING
    if state.offered_version is not None:
        return DeviceStatus.ON_OFFER
    return DeviceStatus.UP_TO_DATE


def _describe(error: StoredError | None) -> str | None:
    if error is None:
        return None
    return f"[{error.code}] {error.msg}" if error.code is not None else error.msg


def build_fleet_report(
    states: Iterable[ChannelState],
    *,
    mode: Literal["local", "aws"],
    source: str,
    last_checks: Mapping[str, datetime] | None = None,
    history: Sequence[VersionTally] | None = None,
    ignored: IgnoredVersions | None = None,
    now: datetime | None = None,
) -> FleetReport:
    """The report of a fleet from what its state store keeps.

    ``last_checks`` is when each device was last checked (``None``: not kept, as on AWS,
    where the latest recorded change of a device stands in for it); a device checked but
    never settled has no state and is listed as not checked. ``history`` is the version
    tallies of past runs (``None``: not kept; adoption is then estimated from the states).
    """
    now = now or datetime.now(UTC)
    devices: dict[str, ChannelState] = {}
    channels: list[ChannelState] = []
    for state in states:
        if state.channel == DEVICE_LEVEL_CHANNEL:
            devices[state.device_id] = state
        else:
            channels.append(state)
    seen_at = _last_seen(devices.values(), channels, last_checks)
    rows = _device_rows(devices, channels, seen_at, ignored or IgnoredVersions())
    products = _product_channels(channels)
    releases = (
        _releases_from_history(history, products, channels)
        if history is not None
        else _releases_from_states(products, channels)
    )
    return FleetReport(
        generated_at=now,
        mode=mode,
        source=source,
        checks_known=last_checks is not None,
        history_kept=history is not None,
        history_since=history[0].at if history else None,
        summary=_summary(rows, seen_at),
        products=products,
        releases=releases,
        devices=rows,
    )


def _last_seen(
    devices: Iterable[ChannelState],
    channels: Iterable[ChannelState],
    last_checks: Mapping[str, datetime] | None,
) -> dict[str, datetime]:
    """When each device was last checked, or, without that, when it last changed."""
    if last_checks is not None:
        return dict(last_checks)
    seen: dict[str, datetime] = {}
    for state in (*devices, *channels):
        if state.device_id not in seen or state.last_changed > seen[state.device_id]:
            seen[state.device_id] = state.last_changed
    return seen


def _device_rows(
    devices: Mapping[str, ChannelState],
    channels: Sequence[ChannelState],
    seen_at: Mapping[str, datetime],
    ignored: IgnoredVersions,
) -> list[DeviceRow]:
    with_channels = {state.device_id for state in channels}
    rows: list[DeviceRow] = []
    for state in channels:
        device = devices.get(state.device_id)
        error = device.last_error if device is not None else None
        offered = state.offered_version
        rows.append(
            DeviceRow(
                device_id=state.device_id,
                device_name=state.device_name or (device.device_name if device else None),
                product_id=state.product_id,
                product_name=state.product_name,
                channel=state.channel,
                channel_name=state.channel_name or channel_name(state.channel),
                installed=state.current_version,
                offered=offered,
                ignored=offered is not None
                and ignored.covers_offer(state.product_id, state.channel, offered),
                status=channel_status(state, error_status(error)),
                error=_describe(error),
                last_checked=seen_at.get(state.device_id),
            )
        )
    # Devices no check has given a channel of: offline since first seen, never answered...
    for device_id in sorted(set(devices) | set(seen_at)):
        if device_id in with_channels:
            continue
        device = devices.get(device_id)
        error = device.last_error if device is not None else None
        rows.append(
            DeviceRow(
                device_id=device_id,
                device_name=device.device_name if device else None,
                product_id=device.product_id if device else None,
                product_name=device.product_name if device else None,
                status=error_status(error) or DeviceStatus.NOT_CHECKED,
                error=_describe(error),
                last_checked=seen_at.get(device_id),
            )
        )
    rows.sort(
        key=lambda row: (
            row.status.rank,
            natural_order(row.product_name or row.product_id or ""),
            natural_order(row.device_name or row.device_id),
            row.device_id,
            row.channel if row.channel is not None else -1,
        )
    )
    return rows


def _summary(rows: Sequence[DeviceRow], seen_at: Mapping[str, datetime]) -> Summary:
    by_device: dict[str, set[DeviceStatus]] = defaultdict(set)
    for row in rows:
        by_device[row.device_id].add(row.status)
    statuses = Counter(row.status for row in rows)

    def devices_with(status: DeviceStatus) -> int:
        return sum(1 for found in by_device.values() if status in found)

    return Summary(
        devices=len(by_device),
        products=len({row.product_id for row in rows if row.product_id}),
        up_to_date=sum(1 for found in by_device.values() if found == {DeviceStatus.UP_TO_DATE}),
        on_offer=statuses[DeviceStatus.ON_OFFER],
        updating=statuses[DeviceStatus.UPDATING],
        failed=statuses[DeviceStatus.FAILED],
        offline=devices_with(DeviceStatus.OFFLINE),
        not_checked=devices_with(DeviceStatus.NOT_CHECKED),
        device_errors=devices_with(DeviceStatus.DEVICE_ERROR),
        last_check=max(seen_at.values(), default=None),
        statuses={status: statuses[status] for status in DeviceStatus if statuses[status]},
    )


_ChannelKey = tuple[str, int]  # (product_id or "", channel)


def _product_channels(channels: Sequence[ChannelState]) -> list[ProductChannel]:
    grouped: dict[_ChannelKey, list[ChannelState]] = defaultdict(list)
    for state in channels:
        grouped[(state.product_id or "", state.channel)].append(state)
    products: list[ProductChannel] = []
    for (product_id, channel), states in grouped.items():
        installed = Counter(state.current_version for state in states)
        offered: Counter[str | None] = Counter(
            state.offered_version for state in states if state.offered_version
        )
        versions = sorted(
            set(installed) | set(offered), key=lambda version: version_order(version), reverse=True
        )
        named = next((state for state in states if state.product_name), states[0])
        products.append(
            ProductChannel(
                product_id=product_id or None,
                product_name=named.product_name,
                channel=channel,
                channel_name=states[0].channel_name or channel_name(channel),
                device_channels=len(states),
                versions=[
                    VersionShare(
                        version=version, installed=installed[version], offered=offered[version]
                    )
                    for version in versions
                ],
            )
        )
    products.sort(
        key=lambda p: (
            (p.product_name or p.product_id or "").casefold(),
            p.product_id or "",
            p.channel,
        )
    )
    return products


def _product_key(product: ProductChannel) -> _ChannelKey:
    return (product.product_id or "", product.channel)


def _releases_from_history(
    history: Sequence[VersionTally],
    products: Sequence[ProductChannel],
    channels: Sequence[ChannelState],
) -> list[Release]:
    """Every version offered in some run (or on offer now), with its figures per run."""
    runs = sorted({(tally.at, tally.run_id) for tally in history})
    figures: dict[tuple[str, int, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    offered_ever: set[tuple[str, int, str]] = set()
    for tally in history:
        key = (tally.product_id, tally.channel, tally.version)
        figures[key][tally.run_id] = (tally.installed, tally.offered)
        if tally.offered:
            offered_ever.add(key)
    by_product = {_product_key(product): product for product in products}
    for product in products:
        for share in product.offers:
            if share.version is not None:
                offered_ever.add((*_product_key(product), share.version))
    releases: list[Release] = []
    for product_id, channel, version in offered_ever:
        key = (product_id, channel, version)
        found = by_product.get((product_id, channel))
        points: list[AdoptionPoint] = []
        for at, run_id in runs:
            if not points and run_id not in figures[key]:
                continue  # before it was first seen
            installed, offered = figures[key].get(run_id, (0, 0))
            points.append(AdoptionPoint(at=at, installed=installed, offered=offered))
        if not points:  # on offer now, and no run has counted it yet
            installed, offered = _now(found, version)
            points = [AdoptionPoint(at=_latest(channels), installed=installed, offered=offered)]
        releases.append(_release(product_id, channel, version, found, points, estimated=False))
    return _ordered(releases)


def _releases_from_states(
    products: Sequence[ProductChannel], channels: Sequence[ChannelState]
) -> list[Release]:
    """Without a history: each version on offer now, or installed by an update (status
    finished), with its device channels counted from their last recorded change."""
    by_key: dict[tuple[str, int, str], list[ChannelState]] = defaultdict(list)
    updated: set[tuple[str, int, str]] = set()
    for state in channels:
        if state.current_version:
            key = (state.product_id or "", state.channel, state.current_version)
            by_key[key].append(state)
            if state.upgrade_status == UpgradeStatus.FINISHED:
                updated.add(key)
    releases: list[Release] = []
    for product in products:
        product_id, channel = _product_key(product)
        for share in product.versions:
            if share.version is None:
                continue
            key = (product_id, channel, share.version)
            if not share.offered and key not in updated:
                continue
            on_it = sorted(state.last_changed for state in by_key.get(key, []))
            points = [
                AdoptionPoint(at=at, installed=count) for count, at in enumerate(on_it, start=1)
            ]
            points = _changes_only(points)
            latest = _latest(channels)
            points.append(
                AdoptionPoint(at=latest, installed=share.installed, offered=share.offered)
            )
            releases.append(
                _release(product_id, channel, share.version, product, points, estimated=True)
            )
    return _ordered(releases)


def _now(product: ProductChannel | None, version: str) -> tuple[int, int]:
    for share in product.versions if product else ():
        if share.version == version:
            return share.installed, share.offered
    return 0, 0


def _latest(channels: Sequence[ChannelState]) -> datetime:
    return max((state.last_changed for state in channels), default=datetime.now(UTC))


def _changes_only(points: Sequence[AdoptionPoint]) -> list[AdoptionPoint]:
    """The points whose figures differ from the one before, and the last (it says until
    when the figures held)."""
    kept: list[AdoptionPoint] = []
    for n, point in enumerate(points):
        last = n == len(points) - 1
        if (
            kept
            and not last
            and (kept[-1].installed, kept[-1].offered)
            == (
                point.installed,
                point.offered,
            )
        ):
            continue
        if kept and kept[-1].at == point.at:
            kept[-1] = point  # the same moment: the later count holds
            continue
        kept.append(point)
    return kept


def _release(
    product_id: str,
    channel: int,
    version: str,
    product: ProductChannel | None,
    points: list[AdoptionPoint],
    *,
    estimated: bool,
) -> Release:
    installed, offered = _now(product, version)
    return Release(
        product_id=product_id or None,
        product_name=product.product_name if product else None,
        channel=channel,
        channel_name=product.channel_name if product else channel_name(channel),
        version=version,
        first_seen=points[0].at,
        installed=installed,
        offered=offered,
        device_channels=product.device_channels if product else 0,
        points=_changes_only(points),
        estimated=estimated,
    )


def _ordered(releases: list[Release]) -> list[Release]:
    """The newest release first; of one moment, by product, channel and version."""
    releases.sort(key=lambda r: (r.product_name or r.product_id or "", r.channel))
    releases.sort(key=lambda r: version_order(r.version), reverse=True)
    releases.sort(key=lambda r: r.first_seen, reverse=True)
    return releases
