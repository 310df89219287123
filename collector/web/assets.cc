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
svg path.pts { fill: none; stroke-width: 4; stroke-linecap: round; }
svg.timeline[data-bucketed="0"] path.pts { stroke-width: 6; }
svg .pts.loss0 { stroke: #2a2; } svg .pts.loss1 { stroke: #9c2; } svg .pts.loss2 { stroke: #eb0; }
svg .pts.loss3 { stroke: #e60; } svg .pts.loss4 { stroke: #c00; }
svg.timeline[data-pts] { cursor: crosshair; }
svg .cursor { stroke: #444; stroke-width: 1; pointer-events: none; }
div.tip { position: absolute; display: none; pointer-events: none; background: #fff;
  border: 1px solid #888; padding: 2px 6px; font-size: 12px; white-space: nowrap; }
div.tip.on { display: block; }
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
//
// A host's timelines: the points' figures are in the svg's data-pts (see
// Timeline in pages.cc); hovering shows the nearest point's figures,
// clicking opens its run's hops (/run). Without the script the charts
// still draw; only the hover and the click need it.
const char kAppJs[] = R"js('use strict';
(function () {
  const NS = 'http://www.w3.org/2000/svg';
  let tip = null;
  function when(us) {
    return new Date(us / 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  }
  function text(p, t0) {
    const at = when(t0 + p.dt);
    if (p.avg === '') return at + ' no answer (loss ' + Math.round(p.loss) + '%)';
    if (p.agg) {
      return at + ' ' + p.runs + ' runs: median ' + p.avg.toFixed(1) + ' ms (best ' +
          p.best.toFixed(1) + ', worst ' + p.worst.toFixed(1) + '), loss up to ' +
          Math.round(p.loss) + '%';
    }
    return at + ' avg ' + p.avg.toFixed(1) + ' ms (best ' + p.best.toFixed(1) + ', worst ' +
        p.worst.toFixed(1) + '), loss ' + Math.round(p.loss) + '%' +
        (p.runs > 1 ? ', ' + p.runs + ' runs; the click: the worst' : '');
  }
  function timeline(svg) {
    const d = svg.dataset;
    const t0 = Number(d.t0), span = Number(d.span), x0 = Number(d.x0), x1 = Number(d.x1);
    if (!(span > 0)) return;
    const pts = d.pts.split(' ').filter(Boolean).map(function (s) {
      const f = s.split(',');
      const num = function (i) { return f[i] === undefined || f[i] === '' ? '' : Number(f[i]); };
      const p = {dt: Number(f[0]), avg: num(1), best: num(2), worst: num(3), loss: Number(f[4]),
                 runs: Number(f[5]), seq: f[6] || '', sdt: num(7), agg: f[8] === '1'};
      p.x = x0 + Math.min(Math.max(p.dt / span, 0), 1) * (x1 - x0);
      return p;
    });
    if (!pts.length) return;
    const cursor = document.createElementNS(NS, 'line');
    cursor.setAttribute('class', 'cursor');
    cursor.setAttribute('y1', d.y0);
    cursor.setAttribute('y2', d.y1);
    cursor.setAttribute('visibility', 'hidden');
    svg.appendChild(cursor);
    function nearest(e) {
      const m = svg.getScreenCTM();
      if (!m) return null;
      const q = new DOMPoint(e.clientX, e.clientY).matrixTransform(m.inverse());
      let lo = 0, hi = pts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (pts[mid].x < q.x) lo = mid + 1; else hi = mid;
      }
      if (lo > 0 && q.x - pts[lo - 1].x < pts[lo].x - q.x) lo -= 1;
      return Math.abs(pts[lo].x - q.x) <= 12 ? pts[lo] : null;
    }
    function hide() {
      cursor.setAttribute('visibility', 'hidden');
      if (tip) tip.classList.remove('on');
    }
    svg.addEventListener('mousemove', function (e) {
      const p = nearest(e);
      if (!p) return hide();
      cursor.setAttribute('x1', p.x);
      cursor.setAttribute('x2', p.x);
      cursor.setAttribute('visibility', 'visible');
      if (!tip) {
        tip = document.createElement('div');
        tip.className = 'tip';
        document.body.appendChild(tip);
      }
      tip.textContent = text(p, t0);
      tip.style.left = (e.pageX + 12) + 'px';
      tip.style.top = (e.pageY + 12) + 'px';
      tip.classList.add('on');
    });
    svg.addEventListener('mouseleave', hide);
    svg.addEventListener('click', function (e) {
      const p = nearest(e);
      if (!p || p.seq === '' || !d.run) return;
      const at = t0 + (p.sdt === '' ? p.dt : p.sdt);
      window.location.assign(d.run + '&seq=' + p.seq + '&at=' + at);
    });
  }
  document.querySelectorAll('svg.timeline[data-pts]').forEach(timeline);
})();
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
