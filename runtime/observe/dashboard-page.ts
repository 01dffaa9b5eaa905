/**
 * The dashboard's one page: HTML, CSS and a script that renders each view
 * the server sends (./dashboard.ts) as it arrives. Everything read from the
 * UDB is written with `textContent`, never as HTML: records are data from
 * other processes, not markup.
 *
 * @module
 */

const style = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2433; background: #f7f8fa; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.sub { color: #5b6475; margin-bottom: .8rem; }
table { border-collapse: collapse; background: #fff; min-width: 40rem; }
th, td { text-align: left; padding: .3rem .7rem; border-bottom: 1px solid #e3e6ec; vertical-align: top; }
th { background: #eef0f4; font-weight: 600; }
.live { color: #137333; } .dead { color: #b3261e; } .muted { color: #7a8294; }
.state-running { color: #0b57d0; } .state-paused { color: #b06000; } .state-done { color: #137333; }
.state-aborted, .state-rolled-back, .state-rolling-back { color: #b3261e; }
.bar { display: inline-block; width: 8rem; height: .7rem; background: #e3e6ec; border-radius: .35rem; overflow: hidden; vertical-align: middle; }
.bar > span { display: block; height: 100%; background: #0b57d0; }
button { margin-right: .3rem; } .banner { padding: .5rem .8rem; border-radius: .3rem; margin: .5rem 0; }
.banner.ro { background: #fff4e5; border: 1px solid #f0c36d; } .banner.rw { background: #e6f4ea; border: 1px solid #a8dab5; }
.banner.err { background: #fce8e6; border: 1px solid #f4b4ad; }
.retire { color: #137333; font-weight: 600; }
`;

/** The page's script: runs in the browser, builds the tables from each event. */
const script = `
const $ = (sel) => document.querySelector(sel);
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return e;
}
function table(id, head, rows, empty) {
  const t = $(id); t.replaceChildren();
  t.append(el('tr', {}, ...head.map((h) => el('th', {}, h))));
  if (rows.length === 0) t.append(el('tr', {}, el('td', { colspan: String(head.length), class: 'muted' }, empty)));
  for (const r of rows) t.append(el('tr', r.attrs || {}, ...r.cells.map((c) => el('td', {}, c))));
}
const ago = (ms) => ms < 1000 ? ms + ' ms' : ms < 120000 ? (ms / 1000).toFixed(1) + ' s' : Math.round(ms / 60000) + ' min';
const pct = (n, d) => d === 0 ? '–' : Math.round((100 * n) / d) + '%';
let control = { allowed: false, why: '' };
async function act(id, command) {
  $('#message').textContent = command + ' ' + id + '…';
  const res = await fetch('/api/rollouts/' + encodeURIComponent(id) + '/' + command, { method: 'POST', headers: { 'x-molt-dashboard': '1' } });
  const body = await res.json().catch(() => ({}));
  $('#message').textContent = body.message || (body.error ? body.error.code + ': ' + body.error.message : 'HTTP ' + res.status);
}
function render(v) {
  if (v.error) { $('#status').className = 'banner err'; $('#status').textContent = 'the last read of the upgrade database failed (' + v.error.code + ': ' + v.error.message + '); showing the one before'; return; }
  $('#status').className = 'banner ' + (v.control.allowed ? 'rw' : 'ro');
  $('#status').textContent = v.control.allowed ? 'Pause, resume and abort act: ' + v.control.why + '.' : 'Read only: ' + v.control.why + '.';
  control = v.control;
  $('#updated').textContent = 'updated ' + new Date(v.at).toLocaleTimeString();
  table('#nodes', ['node', 'live', 'status', 'versions', 'heartbeat', 'host'], v.nodes.map((n) => ({
    attrs: { 'data-node': n.id },
    cells: [n.id, el('span', { class: n.live ? 'live' : 'dead' }, n.live ? 'live' : 'dead'), n.status + (n.lastError ? ' (' + n.lastError + ')' : ''),
      Object.entries(n.versions).map(([t, ver]) => t + '@' + ver).join(' '), ago(n.heartbeatAgoMs) + ' ago', n.host + ' pid ' + n.pid],
  })), 'no node has written a record');
  table('#rollouts', ['rollout', 'upgrade', 'schedule', 'state', 'progress', 'per node', ''], v.rollouts.map((r) => {
    const over = ['done', 'aborted', 'rolled-back', 'rolling-back'].includes(r.state);
    const buttons = el('span', {});
    if (!over) {
      for (const c of r.state === 'paused' ? ['resume', 'abort'] : ['pause', 'abort']) {
        const b = el('button', { 'data-action': c, onclick: () => act(r.rolloutId, c) }, c);
        if (!control.allowed) { b.disabled = true; b.title = control.why; }
        buttons.append(b);
      }
    }
    const width = r.total === 0 ? 0 : Math.round((100 * r.upgraded) / r.total);
    const state = el('span', { class: 'state-' + r.state, 'data-state': r.state }, r.state + (r.by && r.state !== 'running' && r.state !== 'done' ? ' by ' + r.by : ''));
    const why = r.reason && r.state !== 'running' && r.state !== 'done' ? el('div', { class: 'muted' }, r.reason) : '';
    const behind = r.behind.map((b) => el('div', { class: 'dead' }, b.nodeId + ' behind at ' + r.type + '@' + b.version + ': ' + b.why));
    return {
      attrs: { 'data-rollout': r.rolloutId },
      cells: [r.rolloutId, r.type + ' ' + r.from + ' → ' + r.to, r.schedule.name + (Object.keys(r.schedule.params).length ? ' ' + JSON.stringify(r.schedule.params) : ''),
        el('span', {}, state, why, ...behind),
        el('span', {}, el('span', { class: 'bar' }, el('span', { style: 'width:' + width + '%' })), ' ' + r.upgraded + '/' + r.total),
        el('span', {}, ...r.nodes.map((n) => el('div', {}, n.nodeId + ': ' + n.step + (n.note ? ' (' + n.note + ')' : '') + (n.error ? ' — ' + n.error : '')))),
        buttons],
    };
  }), 'no rollout yet');
  table('#traffic', ['version', 'calls', 'through SOs', 'disallowed', 'last call', ''], v.traffic.map((t) => ({
    attrs: { 'data-version': t.type + '@' + t.version },
    cells: [t.version === 0 ? t.type + ' other versions' : t.type + '@' + t.version + (t.native ? ' (native)' : ''), t.calls, pct(t.simulated, t.calls), pct(t.disallowed, t.calls), ago(t.idleMs) + ' ago',
      t.readyToRetire ? el('span', { class: 'retire' }, 'ready to retire (molt retire ' + t.type + ' ' + t.version + ')') : ''],
  })), 'no calls yet');
  table('#problems', ['node', 'what', 'code', 'message'], v.problems.map((p) => ({ cells: [p.nodeId, p.key, p.code + (p.reason ? ' (' + p.reason + ')' : ''), p.message] })), 'none');
}
const events = new EventSource('/events');
events.onmessage = (e) => render(JSON.parse(e.data));
events.onerror = () => { $('#status').className = 'banner err'; $('#status').textContent = 'lost the dashboard server; reconnecting…'; };
`;

/** The page for `service`. */
export function dashboardPage(service: string): string {
  const name = service.replace(/[^a-z0-9-]/g, '');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>molt dashboard: ${name}</title><style>${style}</style></head>
<body>
<h1>molt dashboard: ${name}</h1>
<div class="sub"><span id="updated">connecting…</span></div>
<div id="status" class="banner ro">connecting…</div>
<div id="message" class="muted"></div>
<h2>Nodes</h2><table id="nodes"></table>
<h2>Rollouts</h2><table id="rollouts"></table>
<h2>Traffic per version</h2><table id="traffic"></table>
<h2>Problems</h2><table id="problems"></table>
<script>${script}</script>
</body></html>
`;
}
