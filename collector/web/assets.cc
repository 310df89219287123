// The dashboard's own stylesheet and script (served under /static/). Kept
// in the binary so a collector never serves files from disk and the page
// needs nothing from anywhere else.
#include "collector/web/pages.h"

namespace netvigil::collector::web {

const char kAppCss[] = R"css(
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
main { padding: 0 1.5em 2em; max-width: 1200px; }
nav.top { background: #234; padding: .5em 1.5em; }
nav.top a { color: #fff; margin-right: 1em; text-decoration: none; }
nav.top form.logout { display: inline; float: right; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #eee; }
.state.online { color: #070; } .state.offline, .state.revoked { color: #a00; }
td.alerts.open { font-weight: bold; }
.sev-critical { color: #b00; } .sev-warning { color: #b60; } .sev-info { color: #036; }
table.heatmap td.cell { min-width: 7em; text-align: center; }
table.heatmap td.cell a { color: #000; text-decoration: none; display: block; }
.cell.ok { background: #9d9; } .cell.warn { background: #fd6; } .cell.bad { background: #f77; }
.cell.fail { background: #c5c; } .cell.none { background: #ddd; } td.self { background: #fff; }
span.cell { padding: 0 .4em; }
.notice, .error { color: #a00; }
svg.timeline, svg.events { width: 100%; height: auto; background: #fff; border: 1px solid #ddd; }
svg .axis { stroke: #888; stroke-width: 1; }
svg .tick { font-size: 10px; fill: #555; }
svg .band { fill: #9bd; opacity: .5; stroke: none; }
svg .median { fill: none; stroke: #135; stroke-width: 1.2; }
svg .pt.loss0 { fill: #2a2; } svg .pt.loss1 { fill: #9c2; } svg .pt.loss2 { fill: #eb0; }
svg .pt.loss3 { fill: #e60; } svg .pt.loss4 { fill: #c00; }
span.loss0 { color: #070; } span.loss1, span.loss2 { color: #960; } span.loss3, span.loss4 { color: #b00; }
svg .route-change { stroke: #80c; stroke-width: 2; stroke-dasharray: 4 3; }
svg .alert-mark.sev-critical { fill: #c00; } svg .alert-mark.sev-warning { fill: #e80; }
svg .alert-mark.sev-info, svg .alert-mark.sev-unspecified { fill: #36a; }
svg .ev.appeared { fill: #2a2; } svg .ev.gone { fill: #c00; }
svg polyline.speed { fill: none; stroke-width: 1.5; }
svg .ab { stroke: #16c; fill: #16c; } svg .ba { stroke: #c61; fill: #c61; }
svg .baseline { stroke-dasharray: 6 4; stroke-width: 1; }
svg .fail-mark { stroke: #c00; stroke-width: 2; fill: none; }
svg rect.bar.sev-critical { fill: #c00; } svg rect.bar.sev-warning { fill: #e80; }
svg rect.bar.sev-info, svg rect.bar.sev-unspecified { fill: #36a; }
span.ab { color: #16c; } span.ba { color: #c61; }
tr.appeared td:nth-child(2) { color: #070; } tr.gone td:nth-child(2) { color: #a00; }
nav.ranges { margin: .5em 0; }
.resolution { color: #555; font-size: .9em; }
ul.evidence { margin: 0; padding-left: 1.2em; }
)css";

// The home page's live part: fetched again every 10 s and swapped in, so
// new and resolved alerts show without a reload. A failed fetch keeps the
// page as it is and says so; a session that ended sends the reader to
// the login page.
const char kAppJs[] = R"js('use strict';
(function () {
  const live = document.getElementById('live');
  if (!live || !live.dataset.src) return;
  const status = document.getElementById('live-status');
  async function refresh() {
    try {
      const r = await fetch(live.dataset.src, {credentials: 'same-origin', cache: 'no-store'});
      if (r.status === 401) { window.location.assign('/login'); return; }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      live.replaceChildren(...doc.body.childNodes);
      if (status) status.textContent = 'live: updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      if (status) status.textContent = 'live: update failed (' + e.message + '), retrying';
    }
  }
  setInterval(refresh, 10000);
})();
)js";

}  // namespace netvigil::collector::web
