#!/usr/bin/env node
/*
 * The dashboard in a real browser: Debian's /usr/bin/chromium, headless, driven by
 * playwright-core, against the real daemon (`agentaflow serve` on ephemeral loopback ports).
 *
 *   node dashboard.test.js --bin build/bin/agentaflow --out build/browser
 *
 * Checks: the page loads with its title and the two section names the original's
 * integration test looks for; 4 GPU cards show numbers; the live charts get drawn; a GPU
 * whose name is `<script>alert(1)</script>` (registered through the API) renders as text and
 * runs nothing; an alert is resolved from the page (the daemon agrees afterwards); the traces
 * list shows traces, one opens as a waterfall with nested spans, a span's attributes show on
 * click, and the trace id search finds a trace the test created; against `serve --cluster`
 * fed with 1,000 simulated nodes of 8 GPUs (agent reports posted like bench_cluster's), the
 * GPUs are grouped by node, one summary row each, collapsed (no GPU card in the page), a
 * click expands a node to its 8 cards and collapses it again, and a push updates the rows in
 * place; the page asks nothing of the network but the daemon. Screenshots go to --out; exit 0 = pass, 77 = skipped (no chromium),
 * anything else = fail.
 */
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.AF_CHROMIUM || '/usr/bin/chromium';
const SKIP = 77;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const BIN = path.resolve(arg('--bin', path.join(__dirname, '../../build/bin/agentaflow')));
const OUT = path.resolve(arg('--out', path.join(__dirname, '../../build/browser')));

function log(...a) {
  console.log('[browser]', ...a);
}
function fail(msg) {
  throw new Error(msg);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value (no fixed sleeps standing in for readiness).
async function until(what, fn, timeoutMs = 20000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) fail('timed out waiting for ' + what + (last ? ': ' + last.message : ''));
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------ the daemon
function startDaemon(extra) {
  // Ephemeral ports through the daemon's documented variables (app/agentaflow/app.h); extra
  // arguments can be added with AF_SERVE_ARGS. The daemon logs its URL on start.
  const args = ['serve'].concat((process.env.AF_SERVE_ARGS || '').split(' ').filter(Boolean), extra || []);
  const env = Object.assign({}, process.env, { AGENTAFLOW_PORT: '0', AGENTAFLOW_METRICS_PORT: '0', AGENTAFLOW_BIND_ADDRESS: '127.0.0.1', AGENTAFLOW_DATA_DIR: process.env.AGENTAFLOW_DATA_DIR || ':memory:' });
  log('starting', BIN, args.join(' '));
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  const onData = (d) => {
    out += d.toString();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  const port = until(
    'the daemon to print its port',
    async () => {
      if (child.exitCode !== null) fail('the daemon exited early (' + child.exitCode + '):\n' + out);
      const m = /https?:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      return m && Number(m[1]) > 0 ? Number(m[1]) : null;
    },
    20000,
    50,
  );
  return { child, exited, port, output: () => out };
}

// SIGTERM, then a bounded wait; reports a bad exit.
async function stopDaemon(d) {
  if (d.child.exitCode === null) d.child.kill('SIGTERM');
  const r = await Promise.race([d.exited, sleep(15000).then(() => null)]);
  if (!r) {
    d.child.kill('SIGKILL');
    console.error('[browser] the daemon did not stop within 15 s of SIGTERM');
  } else if (r.code !== 0 && r.code !== null) {
    console.error('[browser] the daemon exited with', r.code, '\n' + d.output().slice(-3000));
  }
}

async function api(base, p, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (o.json !== undefined) {
    o.body = JSON.stringify(o.json);
    o.headers['content-type'] = 'application/json';
    delete o.json;
  }
  const r = await fetch(base + p, o);
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = text;
  }
  return { status: r.status, headers: r.headers, body };
}

// ------------------------------------------------------------------------------ the fleet
const FLEET_NODES = 1000;
const FLEET_GPUS = 8;

function nodeName(i) {
  return 'node-' + String(i).padStart(4, '0');
}

// One agent report (POST /api/v1/cluster/report), as bench_cluster builds them.
function fleetReport(i, round) {
  const gpus = [];
  for (let g = 0; g < FLEET_GPUS; g++) {
    const used = ((i * 7 + g * 13 + round) % 80) * 1024;
    gpus.push({ index: g, name: 'NVIDIA A100-SXM4-80GB', memory_total_mb: 81920, memory_used_mb: used, memory_free_mb: 81920 - used, utilization: (i + g + round) % 100, temperature: 40 + g + (round % 20), power_draw: 250, health: 'healthy', processes: [] });
  }
  return { node: nodeName(i), gpus };
}

async function postReports(base, nodes, round) {
  for (let k = 0; k < nodes.length; k += 50) {
    const batch = nodes.slice(k, k + 50).map(async (i) => {
      const r = await api(base, '/api/v1/cluster/report', { method: 'POST', json: fleetReport(i, round) });
      if (r.status !== 200) fail('report of ' + nodeName(i) + ' answered ' + r.status + ' ' + JSON.stringify(r.body));
    });
    await Promise.all(batch);
  }
}

// serve --cluster with 8,000 GPUs: grouped by node, collapsed, expandable, updated in place.
async function checkFleet(ctx, profile, problems) {
  const cfg = path.join(profile, 'cluster.yaml');
  // A long node_timeout: readiness must not depend on how fast a loaded machine posts 1,000
  // reports and loads the page.
  fs.writeFileSync(cfg, 'server:\n  load_generator: false\n  ws_push_interval: 1s\ncluster:\n  node_timeout: 10m\n');
  const dc = startDaemon(['--cluster', '--config', cfg]);
  try {
    const base = 'http://127.0.0.1:' + (await dc.port);
    const all = [...Array(FLEET_NODES).keys()];
    const t0 = Date.now();
    await postReports(base, all, 0);
    log('fleet:', FLEET_NODES, 'reports posted in', Date.now() - t0, 'ms');
    const list = await api(base, '/api/v1/gpus');
    if (list.body.total !== FLEET_NODES * FLEET_GPUS) fail('/api/v1/gpus lists ' + list.body.total + ' GPUs');
    const p = await ctx.newPage();
    p.on('pageerror', (e) => problems.push('fleet page error: ' + e.message));
    const tLoad = Date.now();
    await p.goto(base + '/', { waitUntil: 'domcontentloaded' });
    await p.waitForFunction((n) => document.querySelectorAll('#gpu-grid > .node-group').length === n, FLEET_NODES, { timeout: 30000 });
    // Summary rows with numbers (the list supplies readiness; it is polled every 5 s).
    const row = '#gpu-grid > .node-group[data-node="node-0007"] .node-summary';
    await p.waitForFunction((sel) => /^ready$/.test(document.querySelector(sel + ' .ns-ready').textContent), row, { timeout: 20000 });
    log('fleet: 1,000 node rows shown in', Date.now() - tLoad, 'ms');
    const summary = await p.$eval(row, (r) => [...r.querySelectorAll('.ns')].map((c) => c.textContent));
    log('fleet: node-0007 row', JSON.stringify(summary));
    if (summary[0] !== '8 GPUs') fail('node-0007 shows ' + JSON.stringify(summary[0]));
    if (!/^\d+(\.\d)? % mean$/.test(summary[1])) fail('node-0007 utilization is ' + JSON.stringify(summary[1]));
    if (!/^\d+(\.\d)? \/ 640\.0 GB$/.test(summary[2])) fail('node-0007 memory is ' + JSON.stringify(summary[2]));
    if (!/^hottest \d+ °C$/.test(summary[3])) fail('node-0007 temperature is ' + JSON.stringify(summary[3]));
    // Collapsed by default: not one GPU card in the page.
    const cards = await p.evaluate(() => document.querySelectorAll('.gpu-card').length);
    if (cards !== 0) fail(cards + ' GPU cards in the page before any node was expanded');
    await p.screenshot({ path: path.join(OUT, 'fleet-collapsed.png') });

    // A push changes a row's text, not the rows: watch the grid's children meanwhile.
    await p.evaluate(() => {
      window.__afGridChanges = 0;
      new MutationObserver((ms) => {
        for (const m of ms) window.__afGridChanges += m.addedNodes.length + m.removedNodes.length;
      }).observe(document.getElementById('gpu-grid'), { childList: true });
    });
    const before = summary[3];
    await postReports(base, [7], 11); // node-0007 gets 11 degrees hotter
    await p.waitForFunction((a) => document.querySelector(a.sel + ' .ns-temp').textContent !== a.before, { sel: row, before }, { timeout: 20000 });
    const changes = await p.evaluate(() => window.__afGridChanges);
    if (changes !== 0) fail('a push rebuilt ' + changes + ' node rows');

    // Expand: the node's 8 cards, with numbers; collapse: gone again.
    await p.click(row + ' .node-toggle');
    await p.waitForFunction(() => document.querySelectorAll('.node-group[data-node="node-0007"] .gpu-card').length === 8, null, { timeout: 10000 });
    const ids = await p.$$eval('.node-group[data-node="node-0007"] .gpu-card', (cs) => cs.map((c) => c.dataset.gpuId));
    if (ids[0] !== 'node-0007/gpu-0' || ids[7] !== 'node-0007/gpu-7') fail('expanded node-0007 shows ' + JSON.stringify(ids));
    await p.waitForFunction(() => [...document.querySelectorAll('.node-group[data-node="node-0007"] .gpu-card .m-util .val')].every((v) => /\d/.test(v.textContent)), null, { timeout: 10000 });
    if ((await p.getAttribute(row + ' .node-toggle', 'aria-expanded')) !== 'true') fail('the expanded node is not marked aria-expanded');
    if ((await p.evaluate(() => document.querySelectorAll('.gpu-card').length)) !== 8) fail('expanding one node built cards elsewhere');
    await p.screenshot({ path: path.join(OUT, 'fleet-expanded.png') });
    await p.click(row + ' .node-toggle');
    await p.waitForFunction(() => document.querySelectorAll('.gpu-card').length === 0, null, { timeout: 10000 });
    await p.close();
    log('fleet OK: 1,000 nodes grouped and collapsed, one expands to its 8 GPUs');
  } finally {
    await stopDaemon(dc);
  }
}

// ------------------------------------------------------------------------------ the test
async function main() {
  if (!fs.existsSync(CHROMIUM)) {
    console.log('SKIP: ' + CHROMIUM + ' not found; install the Debian package "chromium" (scripts/install-deps.sh) to run the browser test');
    return SKIP;
  }
  if (!fs.existsSync(BIN)) fail('daemon binary not found: ' + BIN);
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    fail('playwright-core is not installed: run `npm ci` in tests/browser (' + e.message + ')');
  }
  fs.mkdirSync(OUT, { recursive: true });

  const d = startDaemon();
  let ctx = null;
  let profile = null;
  try {
    const port = await d.port;
    const base = 'http://127.0.0.1:' + port;
    log('daemon on', base);
    await until('/health', async () => (await api(base, '/health')).status === 200, 20000);
    await until('4 GPUs with numbers from /api/v1/gpus', async () => {
      const g = (await api(base, '/api/v1/gpus')).body;
      return g && Array.isArray(g.gpus) && g.gpus.filter((x) => typeof x.utilization === 'number').length >= 4;
    });

    // A fresh profile per run: no cache or state from an earlier run.
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'af-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 1000 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = ctx.pages()[0] || (await ctx.newPage());
    const problems = [];
    const dialogs = [];
    const foreign = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => {
      // A WebSocket reconnect after the daemon's restart would be logged too; none is expected.
      if (m.type() === 'error') problems.push('console error: ' + m.text());
    });
    page.on('dialog', (dg) => {
      dialogs.push(dg.message());
      dg.dismiss().catch(() => {});
    });
    page.on('request', (r) => {
      const u = r.url();
      if (!u.startsWith(base + '/') && !u.startsWith('ws://127.0.0.1:' + port + '/') && !u.startsWith('data:')) foreign.push(u);
    });
    // Any script that runs alert() is an XSS: record it (the dialog hook is a second net).
    await page.addInitScript(() => {
      window.__afAlerts = [];
      window.alert = function (m) {
        window.__afAlerts.push(String(m));
      };
    });

    // ---- overview ------------------------------------------------------------------------
    await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    const title = await page.title();
    if (title !== 'AgentaFlow GPU Monitoring') fail('page title is ' + JSON.stringify(title));
    const h2 = await page.$$eval('h2', (hs) => hs.map((h) => h.textContent));
    for (const want of ['GPU Performance Metrics', 'Cost Analytics']) if (!h2.some((t) => t.includes(want))) fail('no section heading "' + want + '" (have ' + JSON.stringify(h2) + ')');

    await page.waitForFunction(
      () => {
        const cards = [...document.querySelectorAll('#gpu-grid .gpu-card')];
        return cards.filter((c) => /\d/.test(c.querySelector('.m-util .val').textContent) && /\d/.test(c.querySelector('.m-temp .val').textContent)).length >= 4;
      },
      null,
      { timeout: 20000 },
    );
    const cards = await page.$$eval('#gpu-grid .gpu-card', (cs) =>
      cs.map((c) => ({ id: c.dataset.gpuId, util: c.querySelector('.m-util .val').textContent, mem: c.querySelector('.m-mem .val').textContent, temp: c.querySelector('.m-temp .val').textContent, power: c.querySelector('.m-power .val').textContent })),
    );
    log('GPU cards:', JSON.stringify(cards));
    if (cards.length < 4) fail('expected 4 GPU cards, got ' + cards.length);
    for (const c of cards.slice(0, 4)) {
      if (!/^\d+(\.\d+)? %$/.test(c.util)) fail('card ' + c.id + ' utilization is ' + JSON.stringify(c.util));
      if (!/GB$/.test(c.mem) || !/\d/.test(c.mem)) fail('card ' + c.id + ' memory is ' + JSON.stringify(c.mem));
      if (!/°C$/.test(c.temp)) fail('card ' + c.id + ' temperature is ' + JSON.stringify(c.temp));
    }
    await until('the WebSocket to connect', async () => (await page.textContent('#conn')) === 'Connected', 15000);
    // The charts plot what the daemon sent; two pushes give a line.
    await page.waitForFunction(() => window.AF && AF.state.samples.length >= 3, null, { timeout: 30000 });
    const statGpus = await page.textContent('#stat-total-gpus');
    if (!/^\d+$/.test(statGpus)) fail('Total GPUs shows ' + JSON.stringify(statGpus));
    await page.waitForFunction(() => /\$/.test(document.getElementById('cost-total').textContent), null, { timeout: 20000 });
    await page.waitForFunction(() => document.getElementById('tr-status').textContent !== '—', null, { timeout: 20000 });
    await page.screenshot({ path: path.join(OUT, 'overview.png'), fullPage: true });
    log('overview OK:', cards.length, 'cards; screenshot overview.png');

    // ---- a GPU named <script> renders as text ---------------------------------------------
    const evil = '<script>alert(1)</script><img src=x onerror="alert(2)">';
    const reg = await api(base, '/api/v1/gpus', { method: 'POST', json: { id: 'gpu-xss', name: evil, memory_total_mb: 16384, memory_used_mb: 1024, utilization: 12, temperature: 40, power_usage: 60 } });
    if (reg.status !== 201 && reg.status !== 200) fail('registering the GPU answered ' + reg.status + ' ' + JSON.stringify(reg.body));
    await page.waitForSelector('#gpu-grid .gpu-card[data-gpu-id="gpu-xss"]', { timeout: 20000 });
    const shown = await page.$eval('#gpu-grid .gpu-card[data-gpu-id="gpu-xss"] .gpu-name', (n) => n.textContent);
    if (shown !== evil) fail('the GPU name renders as ' + JSON.stringify(shown));
    const injected = await page.evaluate(() => ({
      scripts: document.querySelectorAll('main script, #gpu-grid script, #gpu-grid img').length,
      alerts: window.__afAlerts.length,
    }));
    if (injected.scripts) fail('markup from a GPU name reached the DOM');
    await page.$eval('#gpu-grid .gpu-card[data-gpu-id="gpu-xss"]', (n) => n.scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: path.join(OUT, 'xss-gpu.png') });
    log('XSS OK: the name is text');

    // ---- resolve an alert ------------------------------------------------------------------
    // Alerts come from the collector's thresholds: an Idle simulated GPU goes under the
    // low-utilization threshold, a Batch Processing one over the memory threshold.
    // A pattern with a space arrives percent-encoded: the daemon decodes path parameters.
    const light = await api(base, '/api/v1/demo/trigger/gpu-2/' + encodeURIComponent('Light Inference'), { method: 'POST' });
    if (light.status !== 200) fail('POST /api/v1/demo/trigger/gpu-2/Light%20Inference answered ' + light.status + ' ' + JSON.stringify(light.body));
    let alerts = (await api(base, '/api/v1/alerts')).body || [];
    if (!alerts.length) {
      for (const [gpu, pattern] of [
        ['gpu-0', 'Idle'],
        ['gpu-1', 'Batch Processing'],
      ]) {
        const r = await api(base, '/api/v1/demo/trigger/' + gpu + '/' + encodeURIComponent(pattern), { method: 'POST' });
        log('trigger', gpu, pattern, '->', r.status);
        if (r.status !== 200) fail('POST /api/v1/demo/trigger/' + gpu + '/' + encodeURIComponent(pattern) + ' answered ' + r.status + ' ' + JSON.stringify(r.body));
      }
      alerts = await until('an active alert', async () => {
        const a = (await api(base, '/api/v1/alerts')).body;
        return Array.isArray(a) && a.length ? a : null;
      }, 60000, 500);
    }
    await page.waitForSelector('#alert-list li.alert button.resolve', { timeout: 20000 });
    const target = await page.$eval('#alert-list li.alert', (li) => ({ id: li.dataset.alertId, text: li.textContent }));
    log('resolving alert', target.id, JSON.stringify(target.text));
    await page.click('#alert-list li.alert[data-alert-id="' + target.id + '"] button.resolve');
    await page.waitForFunction((id) => !document.querySelector('#alert-list li.alert[data-alert-id="' + CSS.escape(id) + '"]'), target.id, { timeout: 10000 });
    const after = (await api(base, '/api/v1/alerts')).body || [];
    if (after.some((a) => String(a.id) === target.id)) fail('the daemon still lists alert ' + target.id + ' as active');
    log('alert resolve OK');

    // ---- traces ----------------------------------------------------------------------------
    // A request that does nested work (submit -> schedule); its trace id comes back in the
    // traceresponse header.
    const sub = await api(base, '/api/v1/workloads', { method: 'POST', json: { name: 'browser-test', priority: 5, memory_required_mb: 1024 } });
    if (sub.status >= 300) fail('submitting a workload answered ' + sub.status + ' ' + JSON.stringify(sub.body));
    const tresp = sub.headers.get('traceresponse') || '';
    const m = /^00-([0-9a-f]{32})-/.exec(tresp);
    if (!m) fail('no traceresponse header on the workload submission (' + JSON.stringify(tresp) + ')');
    const traceId = m[1];
    await until('the trace in the store', async () => (await api(base, '/api/v1/traces/' + traceId)).status === 200, 20000, 250);

    await page.goto(base + '/#/traces');
    await page.waitForSelector('#trace-body tr.trace-row', { timeout: 20000 });
    const nrows = await page.$$eval('#trace-body tr.trace-row', (r) => r.length);
    log('trace list rows:', nrows);
    await page.screenshot({ path: path.join(OUT, 'traces.png') });

    // Filters: errors only must show only error rows (possibly none).
    await page.check('#trace-filters input[name=error]');
    await page.waitForFunction(() => /traces|No traces/.test(document.getElementById('trace-info').textContent), null, { timeout: 10000 });
    await until('the errors-only filter', async () => page.$$eval('#trace-body tr.trace-row', (rs) => rs.every((r) => r.classList.contains('err'))), 10000);
    await page.uncheck('#trace-filters input[name=error]');
    await page.waitForSelector('#trace-body tr.trace-row', { timeout: 10000 });

    // Open the first listed trace by clicking it.
    await page.click('#trace-body tr.trace-row td.name a');
    await page.waitForSelector('#waterfall .wf-row[data-span-id] .wf-bar', { timeout: 20000 });
    log('first trace opened:', await page.textContent('#trace-id'));

    // The trace id search opens the test's own trace, which nests spans.
    await page.goto(base + '/#/traces');
    await page.fill('#trace-search input[name=trace_id]', traceId.toUpperCase());
    await page.click('#trace-search button[type=submit]');
    await page.waitForFunction((id) => location.hash === '#/traces/' + id, traceId, { timeout: 5000 });
    await page.waitForSelector('#waterfall .wf-row[data-span-id] .wf-bar', { timeout: 20000 });
    const wf = await page.$$eval('#waterfall .wf-row[data-span-id]', (rows) =>
      rows.map((r) => ({ id: r.dataset.spanId, name: r.querySelector('.wf-name').textContent, indent: parseFloat(r.querySelector('.wf-label').style.paddingLeft), left: parseFloat(r.querySelector('.wf-bar').style.left) })),
    );
    log('waterfall:', JSON.stringify(wf.map((r) => r.name)));
    if (wf.length < 2) fail('the submitted workload trace has ' + wf.length + ' span(s); expected nested spans');
    if (!wf.some((r) => r.indent > wf[0].indent)) fail('no span is nested under the root in the waterfall');
    if ((await page.textContent('#trace-id')) !== traceId) fail('the page shows trace ' + (await page.textContent('#trace-id')));
    // Click a child span: its attributes appear.
    const child = wf.find((r) => r.indent > wf[0].indent);
    await page.click('#waterfall .wf-row[data-span-id="' + child.id + '"]');
    await page.waitForFunction((name) => document.querySelector('#span-detail .span-title') && document.querySelector('#span-detail .span-title').textContent === name, child.name, { timeout: 5000 });
    let detail = await page.textContent('#span-detail');
    if (!/Attributes \(\d+\)/.test(detail) || !/Events \(\d+\)/.test(detail) || !/Links \(\d+\)/.test(detail)) fail('the span panel lacks attributes/events/links: ' + detail.slice(0, 300));
    // The root (the SERVER span) carries the http.* attributes: they show as key/value rows.
    await page.click('#waterfall .wf-row[data-span-id="' + wf[0].id + '"]');
    await page.waitForFunction((name) => document.querySelector('#span-detail .span-title').textContent === name, wf[0].name, { timeout: 5000 });
    const attrs = await page.$$eval('#span-detail table.kv', (ts) => (ts[1] ? [...ts[1].querySelectorAll('tr')].map((r) => r.querySelector('th').textContent + '=' + r.querySelector('td').textContent) : []));
    log('root span attributes:', JSON.stringify(attrs));
    if (!attrs.some((a) => a.startsWith('http.'))) fail('the root span shows no http.* attribute');
    await page.screenshot({ path: path.join(OUT, 'trace.png') });
    log('waterfall OK:', wf.length, 'spans');

    // ---- server.auth.read: the page asks for the token, then works ----------------------------
    const cfg = path.join(profile, 'auth-read.yaml');
    fs.writeFileSync(cfg, 'server:\n  load_generator: false\n  auth_token: browser-token-1\n  auth:\n    read: true\n');
    const d2 = startDaemon(['--config', cfg]);
    try {
      const base2 = 'http://127.0.0.1:' + (await d2.port);
      if ((await api(base2, '/api/v1/gpus')).status !== 401) fail('auth.read: /api/v1/gpus answered without a token');
      const p2 = await ctx.newPage(); // its expected 401s stay out of `problems`
      await p2.goto(base2 + '/', { waitUntil: 'domcontentloaded' });
      await p2.waitForSelector('#token-form:not([hidden])', { timeout: 20000 });
      await p2.fill('#token-input', 'browser-token-1');
      await p2.click('#token-form button[type=submit]');
      await p2.waitForFunction(() => document.querySelectorAll('#gpu-grid .gpu-card').length >= 1, null, { timeout: 20000 });
      await until('the WebSocket with ?access_token', async () => (await p2.textContent('#conn')) === 'Connected', 15000);
      if (!(await p2.evaluate(() => document.getElementById('token-form').hidden))) fail('auth.read: the token field is still shown');
      await p2.screenshot({ path: path.join(OUT, 'auth-read.png') });
      await p2.close();
      log('auth.read OK: the page asked for the token and works with it');
    } finally {
      await stopDaemon(d2);
    }

    // ---- serve --cluster: 8,000 GPUs grouped by node -----------------------------------------
    await checkFleet(ctx, profile, problems);

    // ---- nothing bad happened ----------------------------------------------------------------
    const alerted = await page.evaluate(() => window.__afAlerts);
    if (alerted.length || dialogs.length) fail('a script ran alert(): ' + JSON.stringify(alerted.concat(dialogs)));
    if (foreign.length) fail('the page requested something outside the daemon: ' + foreign.slice(0, 5).join(', '));
    if (problems.length) fail('browser errors:\n  ' + problems.join('\n  '));
    log('PASS; screenshots in', OUT);
    return 0;
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    await stopDaemon(d);
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error('[browser] FAIL:', e.message);
    process.exit(1);
  },
);
