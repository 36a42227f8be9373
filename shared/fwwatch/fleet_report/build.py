"""The fleet report built from the stored state: the same in both modes.

The input is what a state store keeps: every channel state (the device items among them,
with each device's last error), when each device was last checked (local mode keeps it;
AWS writes a device only when something changed, so there it is unknown), and the history
of the versions the fleet was on at the end of each run (local mode's ``run_versions``,
from which :mod:`~fwwatch.fleet_report.adoption` draws each release's adoption).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

from ..ignored import IgnoredVersions
from ..state import DEVICE_LEVEL_CHANNEL, ChannelState, StoredError
from ..tuya.codes import Kind, meaning_of
from ..tuya.models import channel_name
from .adoption import ChannelKey, releases_from_history, releases_from_states
from .model import (
    DeviceRow,
    DeviceStatus,
    FleetReport,
    ProductChannel,
    Summary,
    VersionShare,
    VersionTally,
    natural_order,
    version_order,
)

__all__ = ["build_fleet_report", "channel_status", "error_status"]

#: Tuya's code for "device is offline".
OFFLINE_CODE = 2001


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
        releases_from_history(history, products, channels)
        if history is not None
        else releases_from_states(products, channels)
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


def _product_channels(channels: Sequence[ChannelState]) -> list[ProductChannel]:
    grouped: dict[ChannelKey, list[ChannelState]] = defaultdict(list)
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
