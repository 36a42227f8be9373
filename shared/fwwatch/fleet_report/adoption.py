"""Each release's adoption over time: from the history of runs, or estimated from states.

A release is a version seen on offer to a product's channel. Local mode's history counts,
at the end of each run, the device channels on each version and offered it; a release's
figures are those counts from its first sighting on. Where no history is kept (AWS), each
device channel on a release counts from its last recorded change: the estimate never shows
more devices on a release than were on it. Only the moments the figures changed are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from ..state import ChannelState
from ..tuya.models import UpgradeStatus, channel_name
from .model import AdoptionPoint, ProductChannel, Release, VersionTally, version_order

__all__ = ["ChannelKey", "product_key", "releases_from_history", "releases_from_states"]

#: A product's channel: ``(product_id or "", channel)``.
ChannelKey = tuple[str, int]


def product_key(product: ProductChannel) -> ChannelKey:
    """The product's channel a :class:`ProductChannel` is of."""
    return (product.product_id or "", product.channel)


def releases_from_history(
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
    by_product = {product_key(product): product for product in products}
    for product in products:
        for share in product.offers:
            if share.version is not None:
                offered_ever.add((*product_key(product), share.version))
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


def releases_from_states(
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
        product_id, channel = product_key(product)
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
