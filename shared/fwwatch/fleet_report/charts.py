"""The report's charts, drawn as inline SVG: nothing to load, nothing to run.

Colours are classes the page's stylesheet fills (light, dark and print alike); every text
goes through :mod:`~fwwatch.fleet_report.markup`. Each chart has a ``<title>``, and the
page puts a table with the same figures beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from .markup import Html, html, join
from .model import AdoptionPoint, DeviceStatus, ProductChannel, Release

__all__ = ["adoption_chart", "status_bar", "status_class", "versions_chart"]

WIDTH = 520


def status_class(status: DeviceStatus) -> str:
    """The CSS class of a status's colour: ``s-failed``, ``s-up-to-date``..."""
    return "s-" + status.value.replace(" ", "-")


def _n(value: float) -> str:
    """A coordinate, short: ``12``, ``12.5``."""
    return f"{value:.1f}".removesuffix(".0")


def versions_chart(product: ProductChannel, title: str) -> Html:
    """Horizontal bars: device channels on each version, and below each bar, those offered
    it (the version on offer is marked)."""
    row = 30
    label_w, count_w = 92, 118
    bar_w = WIDTH - label_w - count_w
    top = 22
    height = top + row * len(product.versions) + 6
    scale = max((max(share.installed, share.offered) for share in product.versions), default=1) or 1
    parts: list[Html] = [
        html(
            '<g class="legend"><rect class="c-installed" x="{x}" y="4" width="10" height="10"/>'
            '<text x="{tx}" y="13">installed</text>'
            '<rect class="c-offered" x="{x2}" y="8" width="10" height="5"/>'
            '<text x="{tx2}" y="13">on offer</text></g>',
            x=Html(_n(label_w)),
            tx=Html(_n(label_w + 14)),
            x2=Html(_n(label_w + 84)),
            tx2=Html(_n(label_w + 98)),
        )
    ]
    for n, share in enumerate(product.versions):
        y = top + n * row
        width = bar_w * share.installed / scale
        offer_width = bar_w * share.offered / scale
        share_pct = (
            100 * share.installed / product.device_channels if product.device_channels else 0
        )
        label = share.version or "unknown"
        counts = f"{share.installed} ({share_pct:.0f}%)"
        parts.append(
            html(
                '<text class="v{marked}" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect class="c-installed" x="{x}" y="{y}" width="{w}" height="14" rx="2"/>'
                '<text class="count" x="{cx}" y="{ty}">{counts}</text>',
                marked=Html(" offered" if share.offered else ""),
                lx=Html(_n(label_w - 8)),
                ty=Html(_n(y + 11)),
                label=label,
                x=Html(_n(label_w)),
                y=Html(_n(y)),
                w=Html(_n(max(width, 1.5 if share.installed else 0))),
                cx=Html(_n(label_w + width + 6)),
                counts=counts,
            )
        )
        if share.offered:
            parts.append(
                html(
                    '<rect class="c-offered" x="{x}" y="{y}" width="{w}" height="6" rx="1"/>'
                    '<text class="count offer" x="{cx}" y="{ty}">on offer to {n}</text>',
                    x=Html(_n(label_w)),
                    y=Html(_n(y + 17)),
                    w=Html(_n(max(offer_width, 1.5))),
                    cx=Html(_n(label_w + offer_width + 6)),
                    ty=Html(_n(y + 23)),
                    n=share.offered,
                )
            )
    return _svg(title, height, join(parts))


def status_bar(statuses: dict[DeviceStatus, int], title: str) -> Html:
    """One bar split by status, in attention order, with a legend under it."""
    total = sum(statuses.values()) or 1
    parts: list[Html] = []
    x = 0.0
    for status, count in statuses.items():
        width = WIDTH * count / total
        parts.append(
            html(
                '<rect class="{cls}" x="{x}" y="0" width="{w}" height="22"/>',
                cls=status_class(status),
                x=Html(_n(x)),
                w=Html(_n(width)),
            )
        )
        x += width
    legend_x = 0.0
    legend_y = 40
    for status, count in statuses.items():
        label = f"{status.value} {count}"
        step = 20 + 7.2 * len(label)
        if legend_x + step > WIDTH:
            legend_x, legend_y = 0.0, legend_y + 18
        parts.append(
            html(
                '<rect class="{cls}" x="{x}" y="{y}" width="10" height="10"/>'
                '<text x="{tx}" y="{ty}">{label}</text>',
                cls=status_class(status),
                x=Html(_n(legend_x)),
                y=Html(_n(legend_y - 9)),
                tx=Html(_n(legend_x + 14)),
                ty=Html(_n(legend_y)),
                label=label,
            )
        )
        legend_x += step
    return _svg(title, legend_y + 6, join(parts))


def adoption_chart(release: Release, title: str) -> Html:
    """Device channels on the release over time (a solid step line) and offered it (dashed,
    where known), against the device channels of its product and channel."""
    left, right, top, bottom = 34, 10, 10, 26
    plot_w, plot_h = WIDTH - left - right, 150
    height = top + plot_h + bottom
    points = release.points
    ceiling = max([release.device_channels, 1] + [max(p.installed, p.offered or 0) for p in points])
    start, end = points[0].at, points[-1].at
    span = (end - start).total_seconds()

    def x_of(at: datetime) -> float:
        if span <= 0:
            return left + plot_w
        return left + plot_w * (at - start).total_seconds() / span

    def y_of(count: float) -> float:
        return top + plot_h - plot_h * count / ceiling

    parts: list[Html] = []
    for count in sorted({0, ceiling // 2, ceiling}):
        y = y_of(count)
        parts.append(
            html(
                '<line class="grid" x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"/>'
                '<text class="axis" x="{tx}" y="{ty}" text-anchor="end">{count}</text>',
                x1=Html(_n(left)),
                x2=Html(_n(left + plot_w)),
                y=Html(_n(y)),
                tx=Html(_n(left - 4)),
                ty=Html(_n(y + 4)),
                count=count,
            )
        )
    parts.append(
        html(
            '<text class="axis" x="{x1}" y="{y}">{start}</text>'
            '<text class="axis" x="{x2}" y="{y}" text-anchor="end">{end}</text>',
            x1=Html(_n(left)),
            x2=Html(_n(left + plot_w)),
            y=Html(_n(top + plot_h + 16)),
            start=_moment(start, span),
            end=_moment(end, span),
        )
    )
    offered = [p for p in points if p.offered is not None]
    if len(offered) > 1:
        parts.append(_step_path(offered, "offered", x_of, y_of, lambda p: p.offered or 0))
    parts.append(_step_path(points, "installed", x_of, y_of, lambda p: p.installed))
    last = points[-1]
    parts.append(
        html(
            '<circle class="dot" cx="{x}" cy="{y}" r="3.5"/>',
            x=Html(_n(x_of(last.at))),
            y=Html(_n(y_of(last.installed))),
        )
    )
    if last.offered is not None and len(offered) <= 1:
        parts.append(
            html(
                '<circle class="dot-offered" cx="{x}" cy="{y}" r="3.5"/>',
                x=Html(_n(x_of(last.at))),
                y=Html(_n(y_of(last.offered))),
            )
        )
    return _svg(title, height, join(parts))


def _step_path(
    points: Sequence[AdoptionPoint],
    kind: str,
    x_of: Callable[[datetime], float],
    y_of: Callable[[float], float],
    value: Callable[[AdoptionPoint], int],
) -> Html:
    first = points[0]
    path = [f"M{_n(x_of(first.at))} {_n(y_of(value(first)))}"]
    for point in points[1:]:
        path.append(f"H{_n(x_of(point.at))}V{_n(y_of(value(point)))}")
    return html('<path class="line-{kind}" d="{d}"/>', kind=kind, d=Html("".join(path)))


def _moment(at: datetime, span_s: float) -> str:
    """A time on the axis: the date, with the time of day for a span under three days, to
    the second for one under an hour."""
    if span_s < timedelta(hours=1).total_seconds():
        return at.strftime("%Y-%m-%d %H:%M:%S")
    if span_s < timedelta(days=3).total_seconds():
        return at.strftime("%Y-%m-%d %H:%M")
    return at.strftime("%Y-%m-%d")


def _svg(title: str, height: float, body: Html) -> Html:
    return html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        'preserveAspectRatio="xMinYMin meet"><title>{title}</title>{body}</svg>',
        w=Html(str(WIDTH)),
        h=Html(_n(height)),
        title=title,
        body=body,
    )
