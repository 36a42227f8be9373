"""The report page's stylesheet and script, inline in every page (nothing is loaded).

The stylesheet: light colours by default, dark ones for ``prefers-color-scheme: dark``,
the light ones again in print; one column on a phone. The script: the device table, drawn
from the page's JSON data with ``textContent`` only (never as markup), sorted by a heading,
filtered by text, status or product, 500 rows at a time and every row in print.
"""

__all__ = ["SCRIPT", "STYLE"]

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
