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
from .charts import adoption_chart, status_bar, status_class, versions_chart
from .data import DeviceRow, DeviceStatus, FleetReport, ProductChannel, Release, version_order
from .markup import Html, html, join, json_for_script

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
        "img-src data:; base-uri 'none'; form-action 'none'"
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


#: The light scheme's colours: the default, and print's whatever the screen's scheme.
LIGHT = """--bg:#fff;--fg:#1f2328;--muted:#59636e;--card:#f6f8fa;--border:#d1d9e0;
--installed:#2f6fdb;--offered:#d4760a;--grid:#d1d9e0;
--failed:#cf222e;--offline:#818b98;--not-checked:#9a6700;--device-error:#8250df;
--updating:#1b7c83;--on-offer:#d4760a;--up-to-date:#1a7f37"""

STYLE = (
    """
:root{"""
    + LIGHT
    + """}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--card:#151b23;--border:#3d444d;--installed:#4493f8;--offered:#f0a030;--grid:#3d444d;
--failed:#f85149;--offline:#8b949e;--not-checked:#d29922;--device-error:#a371f7;
--updating:#39c5cf;--on-offer:#f0a030;--up-to-date:#3fb950}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 16px}
header{padding-top:20px}
h1{font-size:1.6rem;margin:0 0 4px}h2{font-size:1.25rem;margin:28px 0 10px;
border-bottom:1px solid var(--border);padding-bottom:4px}h3{font-size:1.05rem;margin:0 0 4px}
.meta,.note,.sub,figcaption,caption{color:var(--muted)}.note{margin:2px 0 10px;font-size:.9rem}
#summary h3{margin:16px 0 6px;font-weight:600}
.tiles{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:10px;margin:0}
.tile{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:10px 12px}
.tile dt{font-size:.85rem;color:var(--muted)}.tile dd{margin:2px 0 0;font-size:1.5rem;
font-weight:650;font-variant-numeric:tabular-nums}.tile dd.note{font-size:.8rem;font-weight:400}
#tile-failed dd:not(.note){color:var(--failed)}#tile-unreached dd:not(.note){color:var(--offline)}
#tile-up-to-date dd:not(.note){color:var(--up-to-date)}
#tile-last-check dd:not(.note){font-size:1rem;padding-top:6px}
.card{background:var(--card);border:1px solid var(--border);border-radius:8px;padding:12px;
margin:0 0 12px;break-inside:avoid}
.pair{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px;align-items:start}
@media (max-width:760px){.pair{grid-template-columns:minmax(0,1fr)}
.tiles{grid-template-columns:repeat(2,minmax(0,1fr))}}
figure{margin:0}svg{width:100%;height:auto;display:block;font-size:13px}
.when{white-space:nowrap}
svg text{fill:var(--fg)}svg text.axis,svg .legend text{fill:var(--muted)}
svg text.v.offered{font-weight:700}svg text.count.offer{fill:var(--offered)}
.c-installed{fill:var(--installed)}.c-offered{fill:var(--offered)}
.grid{stroke:var(--grid);stroke-width:1}.line-installed{fill:none;stroke:var(--installed);
stroke-width:2.5}.line-offered{fill:none;stroke:var(--offered);stroke-width:2;
stroke-dasharray:5 4}.dot{fill:var(--installed)}.dot-offered{fill:var(--offered)}
.s-failed{fill:var(--failed);background:var(--failed)}.s-offline{fill:var(--offline);
background:var(--offline)}.s-not-checked{fill:var(--not-checked);background:var(--not-checked)}
.s-device-error{fill:var(--device-error);background:var(--device-error)}
.s-updating{fill:var(--updating);background:var(--updating)}
.s-update-on-offer{fill:var(--on-offer);background:var(--on-offer)}
.s-up-to-date{fill:var(--up-to-date);background:var(--up-to-date)}
.badge{display:inline-block;color:#fff;border-radius:10px;padding:0 8px;font-size:.8rem;
white-space:nowrap}
@media (prefers-color-scheme:dark){.badge{color:#0d1117}}
.tag{font-size:.75rem;color:var(--offered);font-weight:600}
table{border-collapse:collapse;width:100%;font-size:.88rem}
caption{text-align:left;font-size:.85rem;padding-bottom:4px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--border);vertical-align:top}
th{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;
color:var(--muted)}.error{color:var(--muted)}.name{font-weight:600}
.controls{display:flex;flex-wrap:wrap;gap:10px 16px;margin:0 0 8px}
.controls label{display:flex;align-items:center;gap:6px;max-width:100%;min-width:0}
.controls input,.controls select{font:inherit;color:inherit;background:var(--bg);
border:1px solid var(--border);border-radius:6px;padding:3px 6px;min-width:0;max-width:24rem}
.controls input{width:16rem}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;
cursor:pointer}th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
#more{font:inherit;padding:4px 12px;border-radius:6px;border:1px solid var(--border);
background:var(--card);color:inherit;cursor:pointer}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.empty{color:var(--muted);font-style:italic}
footer{margin:32px auto 24px;font-size:.85rem;color:var(--muted)}
@media print{:root{"""
    + LIGHT
    + """;--fg:#000;--muted:#444;--card:#fff;--border:#bbb;--grid:#ccc}
body{font-size:10.5pt}.controls,#more,noscript{display:none}.card{border-color:#bbb}
.badge{color:#000;background:none!important;border:1px solid #888}
.scroll{overflow:visible}h2{break-after:avoid}tr{break-inside:avoid}}
"""
)

SCRIPT = """
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("fleet-data").textContent);
  var table = document.getElementById("device-table");
  var body = table.tBodies[0];
  var filter = document.getElementById("filter");
  var statusFilter = document.getElementById("status-filter");
  var productFilter = document.getElementById("product-filter");
  var shown = document.getElementById("shown");
  var more = document.getElementById("more");
  var PAGE = 500;
  var limit = PAGE;
  var sortKey = "status";
  var direction = 1;
  var rank = {};
  data.versions.forEach(function (v, i) { rank[v] = i; });
  var rows = data.rows.map(function (r, i) {
    var product = data.products[r[2]];
    var channel = data.channels[r[3]];
    var status = data.statuses[r[7]];
    return {r: r, i: i, product: product, channel: channel, status: status,
      text: [r[0], r[1], product, channel, r[4], r[5], status, r[9]].join("\\n").toLowerCase()};
  });
  var collator = new Intl.Collator("en", {numeric: true, sensitivity: "base"});
  var keys = {
    device: function (x) { return x.r[1] || x.r[0]; },
    product: function (x) { return x.product; },
    channel: function (x) { return x.channel; },
    installed: function (x) { return x.r[4] ? rank[x.r[4]] : -1; },
    offered: function (x) { return x.r[5] ? rank[x.r[5]] : -1; },
    status: function (x) { return x.r[7]; },
    checked: function (x) { return x.r[8]; }
  };
  function compare(a, b) {
    var ka = keys[sortKey](a), kb = keys[sortKey](b);
    var order = typeof ka === "string" ? collator.compare(ka, kb) : ka - kb;
    return order ? order * direction : a.i - b.i;
  }
  function cell(tr, text, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function render() {
    var query = filter.value.trim().toLowerCase();
    var status = statusFilter.value;
    var product = productFilter.value;
    var matching = rows.filter(function (x) {
      return (!status || x.status === status) && (!product || x.product === product) &&
        (!query || x.text.indexOf(query) !== -1);
    });
    matching.sort(compare);
    var fragment = document.createDocumentFragment();
    matching.slice(0, limit).forEach(function (x) {
      var r = x.r;
      var tr = document.createElement("tr");
      var device = cell(tr, "", "");
      if (r[1]) {
        var name = document.createElement("span");
        name.className = "name";
        name.textContent = r[1];
        device.appendChild(name);
        device.appendChild(document.createElement("br"));
      }
      var id = document.createElement("small");
      id.className = "id";
      id.textContent = r[0];
      device.appendChild(id);
      cell(tr, x.product, "");
      cell(tr, x.channel, "");
      cell(tr, r[4] || "-", "");
      cell(tr, (r[5] || "-") + (r[6] ? " (ignored)" : ""), "");
      var statusCell = cell(tr, "", "");
      var badge = document.createElement("span");
      badge.className = "badge " + data.classes[r[7]];
      badge.textContent = x.status;
      statusCell.appendChild(badge);
      if (r[9]) {
        statusCell.appendChild(document.createElement("br"));
        var error = document.createElement("small");
        error.className = "error";
        error.textContent = r[9];
        statusCell.appendChild(error);
      }
      cell(tr, r[8] || "never", "when");
      fragment.appendChild(tr);
    });
    body.replaceChildren(fragment);
    var count = Math.min(limit, matching.length);
    shown.textContent = "Showing " + count.toLocaleString("en") + " of " +
      matching.length.toLocaleString("en") + " device channels" +
      (matching.length !== rows.length ? " (of " + rows.length.toLocaleString("en") + ")" : "");
    more.hidden = matching.length <= limit;
    more.textContent = "Show " + Math.min(PAGE, matching.length - limit).toLocaleString("en") +
      " more";
  }
  table.tHead.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-sort]");
    if (!button) { return; }
    var key = button.getAttribute("data-sort");
    direction = key === sortKey ? -direction : 1;
    sortKey = key;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      var b = th.querySelector("button");
      if (b && b.getAttribute("data-sort") === key) {
        th.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    render();
  });
  function restart() { limit = PAGE; render(); }
  filter.addEventListener("input", restart);
  statusFilter.addEventListener("change", restart);
  productFilter.addEventListener("change", restart);
  more.addEventListener("click", function () { limit += PAGE; render(); });
  window.addEventListener("beforeprint", function () { limit = Infinity; render(); });
  render();
})();
"""
