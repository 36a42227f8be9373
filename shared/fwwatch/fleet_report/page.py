"""The fleet report as one self-contained HTML page.

Styles, the script and the charts (SVG) are inline; the page's Content-Security-Policy
allows nothing to be loaded and only its own script (by hash) to run, so opening it makes
no request, and even markup that got in could not fetch or execute anything. The device
table is data (``<script type="application/json">``) the script renders with
``textContent`` only, sorted and filtered in the browser; everything else is HTML made by
:func:`~fwwatch.fleet_report.markup.html`, which escapes every value. Light and dark follow
``prefers-color-scheme``; a phone gets one column, and print gets every row, in black on
white.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from ..safe_text import strip_controls
from .assets import SCRIPT, STYLE
from .charts import adoption_chart, status_bar, status_class, versions_chart
from .markup import Html, html, join, json_for_script
from .model import DeviceRow, DeviceStatus, FleetReport, ProductChannel, Release, version_order

__all__ = ["render_page"]

#: Rows of the attention list, and charts of releases, shown at most (the device table
#: and ``--json`` hold them all).
ATTENTION_ROWS = 25
RELEASES_SHOWN = 40
#: Rows of a release's table: its latest changes.
ADOPTION_ROWS = 12


def render_page(report: FleetReport) -> str:
    """The report as a complete HTML document."""
    summary = report.summary
    title = (
        f"fwwatch fleet report: {summary.devices} devices, {summary.products} products"
        f" ({_when(report.generated_at)})"
    )
    body = join(
        [
            _header(report),
            html(
                "<main>{s}{a}{v}{r}{d}</main>",
                s=_summary(report),
                a=_attention(report),
                v=_versions(report),
                r=_releases(report),
                d=_devices(report),
            ),
            html(
                "<footer><p>Written by fwwatch from {source} on {when}. This page is one file: "
                "it loads nothing and sends nothing.</p></footer>",
                source=report.source,
                when=_when(report.generated_at),
            ),
            html(
                '<script type="application/json" id="fleet-data">{data}</script>',
                data=json_for_script(_table_data(report)),
            ),
        ]
    )
    policy = (
        "default-src 'none'; "
        f"style-src '{_digest(STYLE)}'; script-src '{_digest(SCRIPT)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    return html(
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="generator" content="fwwatch">'
        "<title>{title}</title><style>{style}</style></head>\n"
        "<body>{body}<script>{script}</script></body></html>\n",
        policy=policy,
        title=title,
        style=Html(STYLE),
        body=body,
        script=Html(SCRIPT),
    )


def _digest(source: str) -> str:
    """A CSP source expression allowing exactly this inline text."""
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def _when(at: datetime | None, *, seconds: bool = False) -> str:
    if at is None:
        return "never"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def _product_label(product_name: str | None, product_id: str | None) -> str:
    if product_name and product_id:
        return f"{product_name} ({product_id})"
    return product_name or product_id or "unknown product"


def _channel_label(channel_name: str, channel: int | None) -> str:
    if channel is None:
        return "no channel seen"
    return f"{channel_name} ({channel})" if channel_name else f"channel {channel}"


# ------------------------------------------------------------------ sections


def _header(report: FleetReport) -> Html:
    checked = "Last check" if report.checks_known else "Last change recorded"
    return html(
        '<header><h1>Fleet firmware report</h1><p class="meta">{source} &middot; written '
        "{when} &middot; {checked} {last}</p></header>",
        source=report.source,
        when=_when(report.generated_at),
        checked=checked,
        last=_when(report.summary.last_check),
    )


def _summary(report: FleetReport) -> Html:
    s = report.summary
    unreached = s.offline + s.not_checked
    detail = [f"{s.offline} offline", f"{s.not_checked} not checked"]
    if s.device_errors:
        detail.append(f"{s.device_errors} other device errors")
    tiles = [
        ("devices", "Devices", f"{s.devices:,}", ""),
        ("products", "Products", f"{s.products:,}", ""),
        (
            "up-to-date",
            "Up to date",
            f"{100 * s.up_to_date_share:.0f}%",
            f"{s.up_to_date:,} of {s.devices:,} devices",
        ),
        ("on-offer", "Updates on offer", f"{s.on_offer:,}", "device channels"),
        ("updating", "In progress", f"{s.updating:,}", "updates running"),
        ("failed", "Failed", f"{s.failed:,}", "updates failed or timed out"),
        ("unreached", "Offline or not checked", f"{unreached:,}", ", ".join(detail)),
        (
            "last-check",
            "Last check" if report.checks_known else "Last change recorded",
            _when(s.last_check),
            "" if report.checks_known else "AWS writes a device only when it changes",
        ),
    ]
    tile_html = join(
        html(
            '<div class="tile" id="tile-{key}"><dt>{label}</dt><dd>{value}</dd>{note}</div>',
            key=key,
            label=label,
            value=value,
            note=html('<dd class="note">{n}</dd>', n=note) if note else Html(""),
        )
        for key, label, value, note in tiles
    )
    statuses = s.statuses
    chart = (
        html(
            '<h3 class="sub">Device channels by status</h3>'
            '<div class="pair"><figure>{svg}</figure>{table}</div>',
            svg=status_bar(statuses, "Device channels by status"),
            table=_table(
                "Device channels by status",
                ("Status", "Device channels"),
                [
                    (
                        html('<span class="badge {c}">{s}</span>', c=status_class(st), s=st.value),
                        html("{n}", n=f"{count:,}"),
                    )
                    for st, count in statuses.items()
                ],
                numeric=(1,),
            ),
        )
        if statuses
        else html('<p class="empty">No device in the state yet: run a check first.</p>')
    )
    return html(
        '<section id="summary" aria-labelledby="summary-h"><h2 id="summary-h">Summary</h2>'
        '<dl class="tiles">{tiles}</dl>{chart}</section>',
        tiles=tile_html,
        chart=chart,
    )


def _attention(report: FleetReport) -> Html:
    needy = [
        row
        for row in report.devices
        if row.status
        in (
            DeviceStatus.FAILED,
            DeviceStatus.OFFLINE,
            DeviceStatus.NOT_CHECKED,
            DeviceStatus.DEVICE_ERROR,
        )
    ]
    if not needy:
        return Html("")
    shown = needy[:ATTENTION_ROWS]
    more = (
        html(
            '<p class="note">And {n} more: the device table below lists them first (its '
            "Status filter shows one kind).</p>",
            n=f"{len(needy) - len(shown):,}",
        )
        if len(needy) > len(shown)
        else Html("")
    )
    rows = [
        (
            _device_cell(row),
            html("{p}", p=_product_label(row.product_name, row.product_id)),
            html("{c}", c=_channel_label(row.channel_name, row.channel)),
            html("{v}", v=row.installed or "-"),
            html("{v}", v=row.offered or "-"),
            html(
                '<span class="badge {c}">{s}</span>{e}',
                c=status_class(row.status),
                s=row.status.value,
                e=html('<br><small class="error">{e}</small>', e=row.error)
                if row.error
                else Html(""),
            ),
            html('<span class="when">{w}</span>', w=_when(row.last_checked)),
        )
        for row in shown
    ]
    return html(
        '<section id="attention" aria-labelledby="attention-h"><h2 id="attention-h">'
        "Needs attention</h2><p>Failed updates, then devices offline, not checked or in "
        "error.</p>{table}{more}</section>",
        table=_table(
            "Needs attention",
            (
                "Device",
                "Product",
                "Channel",
                "Installed",
                "Offered",
                "Status",
                "Last checked" if report.checks_known else "Last change",
            ),
            rows,
            wide=True,
        ),
        more=more,
    )


def _device_cell(row: DeviceRow) -> Html:
    if row.device_name:
        return html(
            '<span class="name">{n}</span><br><small class="id">{i}</small>',
            n=row.device_name,
            i=row.device_id,
        )
    return html('<span class="id">{i}</span>', i=row.device_id)


def _versions(report: FleetReport) -> Html:
    if not report.products:
        return Html("")
    cards = join(_version_card(product) for product in report.products)
    return html(
        '<section id="versions" aria-labelledby="versions-h"><h2 id="versions-h">'
        "Versions per product and channel</h2>{cards}</section>",
        cards=cards,
    )


def _version_card(product: ProductChannel) -> Html:
    name = _product_label(product.product_name, product.product_id)
    channel = _channel_label(product.channel_name, product.channel)
    offers = ", ".join(
        f"{share.version} to {share.offered:,}" for share in product.offers if share.version
    )
    title = f"Versions of {name}, {channel}"
    rows = [
        (
            html(
                "{v}{tag}",
                v=share.version or "unknown",
                tag=html(' <span class="tag">on offer</span>') if share.offered else Html(""),
            ),
            html("{n}", n=f"{share.installed:,}"),
            html(
                "{p}",
                p=f"{100 * share.installed / product.device_channels:.0f}%"
                if product.device_channels
                else "-",
            ),
            html("{n}", n=f"{share.offered:,}" if share.offered else "-"),
        )
        for share in product.versions
    ]
    return html(
        '<article class="card"><h3>{name} <span class="sub">&middot; {channel}</span></h3>'
        '<p class="note">{n} device channels{offers}</p><div class="pair"><figure>{svg}'
        "</figure>{table}</div></article>",
        name=name,
        channel=channel,
        n=f"{product.device_channels:,}",
        offers=f"; on offer: {offers}" if offers else "; nothing on offer",
        svg=versions_chart(product, title),
        table=_table(
            title, ("Version", "Installed", "Share", "Offered to"), rows, numeric=(1, 2, 3)
        ),
    )


def _releases(report: FleetReport) -> Html:
    if report.history_kept:
        since = _when(report.history_since) if report.history_since else "the next run"
        intro = (
            f"Device channels on each release at the end of every run (this history starts "
            f"{since}); a dashed line: those offered it."
        )
    else:
        intro = (
            "Estimated: the AWS state keeps no history of runs, so each device channel on a "
            "release counts from its last recorded change; the curve never shows more "
            "devices than were on the release."
        )
    if not report.releases:
        cards = html('<p class="empty">No release has been seen on offer yet.</p>')
    else:
        shown = report.releases[:RELEASES_SHOWN]
        cards = join(_release_card(release) for release in shown)
        if len(report.releases) > len(shown):
            cards = html(
                '{c}<p class="note">And {n} older releases (fwwatch report --json lists '
                "them all).</p>",
                c=cards,
                n=len(report.releases) - len(shown),
            )
    return html(
        '<section id="releases" aria-labelledby="releases-h"><h2 id="releases-h">'
        'Release adoption</h2><p class="note">{intro}</p>{cards}</section>',
        intro=intro,
        cards=cards,
    )


def _release_card(release: Release) -> Html:
    name = _product_label(release.product_name, release.product_id)
    channel = _channel_label(release.channel_name, release.channel)
    share = (
        f" ({100 * release.installed / release.device_channels:.0f}%)"
        if release.device_channels
        else ""
    )
    title = f"Adoption of {release.version} on {name}, {channel}"
    points = release.points[-ADOPTION_ROWS:]
    # Runs minutes apart (a demo, a test) are told apart by their seconds.
    seconds = (release.points[-1].at - release.points[0].at).total_seconds() < 3600
    rows = [
        (
            html("{w}", w=_when(point.at, seconds=seconds)),
            html("{n}", n=f"{point.installed:,}"),
            html("{n}", n="-" if point.offered is None else f"{point.offered:,}"),
        )
        for point in reversed(points)
    ]
    older = len(release.points) - len(points)
    caption = f"Latest first{f'; {older} earlier changes not shown' if older else ''}"
    return html(
        '<article class="card release"><h3>{version} <span class="sub">&middot; {name} '
        '&middot; {channel}</span></h3><p class="note">{installed} of {total} device '
        "channels on it{share}; offered to {offered}; first seen {first}</p>"
        '<div class="pair"><figure>{svg}</figure>{table}</div></article>',
        version=release.version,
        name=name,
        channel=channel,
        installed=f"{release.installed:,}",
        total=f"{release.device_channels:,}",
        share=share,
        offered=f"{release.offered:,}",
        first=_when(release.first_seen),
        svg=adoption_chart(release, title),
        table=_table(title, ("When", "On it", "Offered"), rows, numeric=(1, 2), caption=caption),
    )


def _devices(report: FleetReport) -> Html:
    checked = "Last checked" if report.checks_known else "Last change"
    columns = [
        ("device", "Device"),
        ("product", "Product"),
        ("channel", "Channel"),
        ("installed", "Installed"),
        ("offered", "Offered"),
        ("status", "Status"),
        ("checked", checked),
    ]
    head = join(
        html(
            '<th scope="col"{sorted}><button type="button" data-sort="{key}">{label}</button></th>',
            key=key,
            label=label,
            sorted=Html(' aria-sort="ascending"') if key == "status" else Html(""),
        )
        for key, label in columns
    )
    products = sorted(
        {_product_label(row.product_name, row.product_id) for row in report.devices},
        key=str.casefold,
    )
    product_options = join(html('<option value="{p}">{p}</option>', p=p) for p in products)
    status_options = join(
        html('<option value="{s}">{s}</option>', s=status.value)
        for status in DeviceStatus
        if status in report.summary.statuses
    )
    return html(
        '<section id="devices" aria-labelledby="devices-h"><h2 id="devices-h">Devices</h2>'
        '<div class="controls"><label>Filter <input type="search" id="filter" '
        'placeholder="name, ID, version, error" autocomplete="off"></label>'
        '<label>Status <select id="status-filter"><option value="">any</option>{statuses}'
        '</select></label><label>Product <select id="product-filter"><option value="">any'
        "</option>{products}</select></label></div>"
        '<p class="note" id="shown" aria-live="polite">{n} device channels</p>'
        '<div class="scroll"><table id="device-table"><caption class="visually-hidden">'
        "Devices: click a heading to sort</caption><thead><tr>{head}</tr></thead><tbody>"
        "</tbody></table></div>"
        '<noscript><p class="note">The device table needs JavaScript; '
        "fwwatch report --json has the same rows.</p></noscript>"
        '<p><button type="button" id="more" hidden>Show more</button></p></section>',
        statuses=status_options,
        products=product_options,
        n=f"{len(report.devices):,}",
        head=head,
    )


def _table(
    title: str,
    header: tuple[str, ...],
    rows: Sequence[Sequence[Html]],
    *,
    numeric: tuple[int, ...] = (),
    wide: bool = False,
    caption: str | None = None,
) -> Html:
    """A table of figures (beside a chart, or a list)."""
    head = join(
        html(
            '<th scope="col"{cls}>{h}</th>',
            h=h,
            cls=Html(' class="num"') if n in numeric else Html(""),
        )
        for n, h in enumerate(header)
    )
    body = join(
        html(
            "<tr>{cells}</tr>",
            cells=join(
                html(
                    "<td{cls}>{c}</td>",
                    c=cell,
                    cls=Html(' class="num"') if n in numeric else Html(""),
                )
                for n, cell in enumerate(row)
            ),
        )
        for row in rows
    )
    return html(
        '<div class="{cls}"><table><caption{hidden}>{caption}</caption><thead><tr>{head}</tr>'
        "</thead><tbody>{body}</tbody></table></div>",
        cls="scroll" if wide else "figures",
        # The heading above says what the table is; a caption of its own says more.
        hidden=Html("" if caption else ' class="visually-hidden"'),
        caption=caption or title,
        head=head,
        body=body,
    )


def _table_data(report: FleetReport) -> dict[str, object]:
    """The device table as compact rows for the page's script: product and channel labels
    once each, rows as arrays (a 10,000-device fleet stays well under 3 MB)."""
    products: dict[str, int] = {}
    channels: dict[str, int] = {}
    statuses = list(DeviceStatus)
    rows: list[list[object]] = []
    for row in report.devices:
        # Display text, one line each, as everywhere on the page (the script shows it with
        # textContent: it is never markup).
        product = strip_controls(_product_label(row.product_name, row.product_id))
        channel = strip_controls(_channel_label(row.channel_name, row.channel))
        rows.append(
            [
                row.device_id,
                strip_controls(row.device_name or ""),
                products.setdefault(product, len(products)),
                channels.setdefault(channel, len(channels)),
                strip_controls(row.installed or ""),
                strip_controls(row.offered or ""),
                int(row.ignored),
                statuses.index(row.status),
                _when(row.last_checked) if row.last_checked else "",
                strip_controls(row.error or ""),
            ]
        )
    return {
        "statuses": [status.value for status in statuses],
        "classes": [status_class(status) for status in statuses],
        "products": list(products),
        "channels": list(channels),
        # Versions in their natural order, for sorting (1.10 after 1.9): each version's rank.
        "versions": sorted(
            {
                strip_controls(v)
                for row in report.devices
                for v in (row.installed, row.offered)
                if v
            },
            key=version_order,
        ),
        "rows": rows,
    }
