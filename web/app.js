/*
 * AgentaFlow dashboard: overview (GPUs, charts, workloads, alerts, costs, tracing health),
 * live updates over /ws with reconnect, and routing to the trace viewer (traces.js).
 *
 * Rules this file keeps:
 * - Data strings only ever reach the page through textContent / attributes set by
 *   createElement (AF.el); no HTML-parsing sink is ever used, so a GPU named "<script>" stays text.
 * - No number is invented: until the daemon has said something, the page shows "—";
 *   charts only plot samples the daemon sent.
 * - Updates touch only what changed (cards are built once per GPU and their text is
 *   replaced), so 64 GPUs every 2 s cost little.
 */
'use strict';
(function () {
  const AF = (window.AF = window.AF || {});
  const DASH = '—';

  // ------------------------------------------------------------------ DOM and format helpers
  // el('div', {className: 'x', text: 'y', onclick: f, dataset: {...}}, child, 'text child')
  function el(tag, props, ...kids) {
    const n = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v === undefined || v === null) continue;
        if (k === 'text') n.textContent = String(v);
        else if (k === 'dataset') Object.assign(n.dataset, v);
        else if (k === 'style') Object.assign(n.style, v);
        else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
        else if (k in n && k !== 'list') n[k] = v;
        else n.setAttribute(k, String(v));
      }
    }
    for (const c of kids) {
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return n;
  }
  const $ = (id) => document.getElementById(id);
  function clear(n) {
    while (n.firstChild) n.removeChild(n.firstChild);
  }
  // Sets text only when it differs: avoids needless layout work on every push.
  function setText(n, s) {
    s = String(s);
    if (n && n.textContent !== s) n.textContent = s;
  }

  // A finite number from a JSON number or numeric string, else null.
  function num(v) {
    if (typeof v === 'number') return Number.isFinite(v) ? v : null;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(+v)) return +v;
    return null;
  }
  function fmtNum(v, digits, unit) {
    const n = num(v);
    if (n === null) return DASH;
    return n.toFixed(digits === undefined ? 1 : digits) + (unit || '');
  }
  function fmtInt(v) {
    const n = num(v);
    return n === null ? DASH : Math.round(n).toLocaleString('en-US');
  }
  const moneyFmt = new Map();
  function fmtMoney(v, currency) {
    const n = num(v);
    if (n === null) return DASH;
    const cur = typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency) ? currency.toUpperCase() : 'USD';
    let f = moneyFmt.get(cur);
    if (!f) {
      f = new Intl.NumberFormat('en-US', { style: 'currency', currency: cur, minimumFractionDigits: 2, maximumFractionDigits: Math.abs(n) < 1 && n !== 0 ? 4 : 2 });
      moneyFmt.set(cur, f);
    }
    return f.format(n);
  }
  function fmtMs(v) {
    const n = num(v);
    if (n === null) return DASH;
    if (n < 1) return (n * 1000).toFixed(n < 0.01 ? 2 : 0) + ' µs';
    if (n < 1000) return n.toFixed(n < 10 ? 2 : 1) + ' ms';
    if (n < 60000) return (n / 1000).toFixed(2) + ' s';
    if (n < 3600000) return (n / 60000).toFixed(1) + ' min';
    return (n / 3600000).toFixed(1) + ' h';
  }
  // Milliseconds since the epoch from an RFC 3339 string, a unix-nano number/string, or
  // unix seconds/ms numbers; null when unknown.
  function toMs(v) {
    if (v === null || v === undefined || v === '' || v === 0 || v === '0') return null;
    if (typeof v === 'string' && !/^\d+(\.\d+)?$/.test(v)) {
      const t = Date.parse(v);
      return Number.isFinite(t) && t > 0 ? t : null;
    }
    const n = num(v);
    if (n === null || n <= 0) return null;
    if (n > 1e17) return n / 1e6; // nanoseconds
    if (n > 1e14) return n / 1e3; // microseconds
    if (n > 1e11) return n; // milliseconds
    return n * 1000; // seconds
  }
  function fmtTime(ms) {
    if (ms === null) return DASH;
    return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
  }
  function fmtAgo(ms) {
    if (ms === null) return DASH;
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return new Date(ms).toLocaleString('en-GB');
  }
  // "gpu-10" after "gpu-9".
  const collator = new Intl.Collator('en', { numeric: true });

  // An array from the shapes list endpoints use: [..], {key: [..]}, {id: obj}, null.
  function asList(v, ...keys) {
    if (Array.isArray(v)) return v;
    if (!v || typeof v !== 'object') return [];
    for (const k of keys) if (Array.isArray(v[k])) return v[k];
    return [];
  }

  // ---------------------------------------------------------------------------- token
  // With server.auth.read the API and /ws need the bearer token; the page itself is public.
  // It is asked for on the first 401 and kept for this tab only (sessionStorage).
  const TOKEN_KEY = 'agentaflow.token';
  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return '';
    }
  }
  function askToken() {
    const form = $('token-form');
    if (!form.hidden) return;
    form.hidden = false;
    $('token-input').focus();
  }
  function initToken() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('token-input').value.trim();
      if (!v) return;
      sessionStorage.setItem(TOKEN_KEY, v);
      location.reload(); // every fetch and the WebSocket start over with the token
    });
  }

  // ---------------------------------------------------------------------------- HTTP
  async function api(path, opts) {
    const o = Object.assign({ headers: {} }, opts || {});
    if (token()) o.headers['Authorization'] = 'Bearer ' + token();
    if (o.json !== undefined) {
      o.body = JSON.stringify(o.json);
      o.headers['Content-Type'] = 'application/json';
      delete o.json;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), o.timeout || 10000);
    o.signal = ctl.signal;
    try {
      const r = await fetch(path, o);
      const text = await r.text();
      let body = null;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch (e) {
          body = text;
        }
      }
      if (r.status === 401) askToken();
      if (!r.ok) {
        let msg = r.status + ' ' + r.statusText;
        if (body && body.error) msg = typeof body.error === 'string' ? body.error : body.error.message || msg;
        else if (typeof body === 'string' && body.length < 200) msg = body;
        const err = new Error(msg);
        err.status = r.status;
        throw err;
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  function toast(title, message, level) {
    const box = $('toasts');
    const t = el('div', { className: 'toast ' + (level || 'info') }, el('b', { text: title || 'Notice' }), el('span', { text: message || '' }));
    box.appendChild(t);
    while (box.childNodes.length > 4) box.removeChild(box.firstChild);
    setTimeout(() => t.remove(), 5000);
  }

  Object.assign(AF, { el, clear, setText, num, fmtNum, fmtInt, fmtMoney, fmtMs, toMs, fmtTime, fmtAgo, asList, api, toast, collator, DASH });

  // ---------------------------------------------------------------------------- state
  const state = {
    gpus: new Map(), // id -> {card, refs, fromMetrics, fromList, node}; card null while its node is collapsed
    groups: new Map(), // serve --cluster: node -> {el, refs, ids, open}
    metricsIds: null, // ids in the latest gpu_metrics (null = never seen)
    listIds: null, // ids in the latest /api/v1/gpus
    samples: [], // {t, util:{avg,min,max}, temp:{avg,min,max}}
    lastSampleKey: null,
    alerts: new Map(),
    workloads: [],
    wlFilter: 'all',
    config: null,
    ws: null,
    wsOpen: false,
  };
  AF.state = state;
  const MAX_SAMPLES = 600; // 20 min at the default 2 s push
  let charts = null;

  // ---------------------------------------------------------------------------- GPU cards
  function levelClass(v, warn, crit) {
    const n = num(v);
    if (n === null) return '';
    return n > crit ? 'crit' : n > warn ? 'warn' : 'ok';
  }

  function buildCard(id) {
    const refs = {};
    const metric = (key, label) => {
      refs[key] = el('span', { className: 'val', text: DASH });
      refs[key + 'Bar'] = el('span', { className: 'fill' });
      return el('div', { className: 'metric m-' + key }, el('span', { className: 'mlabel', text: label }), refs[key], el('span', { className: 'bar' }, refs[key + 'Bar']));
    };
    refs.name = el('span', { className: 'gpu-name', text: id });
    refs.health = el('span', { className: 'badge health', text: DASH });
    const card = el(
      'article',
      { className: 'gpu-card', dataset: { gpuId: id } },
      el('header', null, refs.name, refs.health),
      el('div', { className: 'gpu-id', text: id }),
      metric('util', 'Utilization'),
      metric('mem', 'Memory'),
      metric('temp', 'Temperature'),
      metric('power', 'Power'),
    );
    return { card, refs };
  }

  function setBar(bar, pct, cls) {
    const w = pct === null ? '0%' : Math.max(0, Math.min(100, pct)).toFixed(1) + '%';
    if (bar.style.width !== w) bar.style.width = w;
    const c = 'fill ' + (cls || '');
    if (bar.className !== c) bar.className = c;
  }

  // Merges what the two sources say about one GPU: metrics (GPUMetrics keys) win for
  // live numbers, the /api/v1/gpus list supplies the health status.
  function gpuView(g) {
    const m = g.fromMetrics || {};
    const l = g.fromList || {};
    const pick = (...vals) => {
      for (const v of vals) if (num(v) !== null) return num(v);
      return null;
    };
    const name = [m.name, l.name].find((s) => typeof s === 'string' && s !== '');
    let health = null;
    const hs = [l.health, l.health_status, m.health, m.status, l.status];
    for (const h of hs) {
      if (typeof h === 'string' && h) {
        health = h;
        break;
      }
      if (h && typeof h === 'object' && typeof h.status === 'string') {
        health = h.status;
        break;
      }
    }
    return {
      name: name || null,
      util: pick(m.utilization_gpu, m.utilization, l.utilization, l.utilization_gpu),
      memUsed: pick(m.memory_used, l.memory_used, l.memory_used_mb),
      memTotal: pick(m.memory_total, l.memory_total, l.memory_total_mb),
      temp: pick(m.temperature, l.temperature),
      power: pick(m.power_draw, l.power_draw, l.power_usage),
      powerLimit: pick(m.power_limit, l.power_limit),
      health,
    };
  }

  function renderCard(id) {
    const g = state.gpus.get(id);
    if (!g || !g.card) return; // in a collapsed node: its summary row shows it
    const v = gpuView(g);
    const r = g.refs;
    setText(r.name, v.name || id);
    r.name.title = v.name || id;
    setText(r.util, fmtNum(v.util, 1, ' %'));
    setBar(r.utilBar, v.util, levelClass(v.util, 70, 90));
    const gb = (mb) => (mb === null ? DASH : (mb / 1024).toFixed(1));
    setText(r.mem, v.memUsed === null && v.memTotal === null ? DASH : gb(v.memUsed) + ' / ' + gb(v.memTotal) + ' GB');
    const memPct = v.memUsed !== null && v.memTotal ? (100 * v.memUsed) / v.memTotal : null;
    setBar(r.memBar, memPct, levelClass(memPct, 75, 90));
    setText(r.temp, fmtNum(v.temp, 0, ' °C'));
    setBar(r.tempBar, v.temp, levelClass(v.temp, 70, 80));
    setText(r.power, v.power === null ? DASH : v.power.toFixed(0) + (v.powerLimit ? ' / ' + v.powerLimit.toFixed(0) : '') + ' W');
    setBar(r.powerBar, v.power !== null && v.powerLimit ? (100 * v.power) / v.powerLimit : null, levelClass(v.power !== null && v.powerLimit ? (100 * v.power) / v.powerLimit : null, 80, 95));
    const h = v.health ? v.health.toLowerCase() : null;
    setText(r.health, h || DASH);
    const hc = 'badge health ' + (h ? 'h-' + h.replace(/[^a-z]/g, '') : '');
    if (r.health.className !== hc) r.health.className = hc;
  }

  // ---------------------------------------------------------------------------- node groups
  // serve --cluster names GPUs "node/gpu-N". The grid then holds one summary row per node
  // (GPUs, mean utilization, memory, hottest temperature, ready or not), collapsed; a node's
  // cards exist only while it is expanded. A push updates each node's row (text is set only
  // when it changed) and the open nodes' cards: a fleet of 8,000 GPUs is about a thousand
  // rows, never 8,000 cards rebuilt per tick. Single-machine ids have no node: plain cards.
  function nodeOf(id) {
    const i = id.lastIndexOf('/');
    return i > 0 ? id.slice(0, i) : null;
  }

  function newCard(id) {
    const g = state.gpus.get(id);
    const b = buildCard(id);
    g.card = b.card;
    g.refs = b.refs;
    renderCard(id);
    return b.card;
  }

  function buildGroup(name) {
    const refs = {};
    const cell = (key) => (refs[key] = el('span', { className: 'ns ns-' + key, text: DASH }));
    refs.toggle = el('button', { type: 'button', className: 'node-toggle', 'aria-expanded': 'false', title: name, onclick: () => toggleGroup(name) }, el('span', { className: 'caret', 'aria-hidden': 'true' }), el('span', { className: 'node-name', text: name }));
    refs.body = el('div', { className: 'gpu-grid node-gpus', hidden: true });
    const row = el('div', { className: 'node-summary' }, refs.toggle, cell('count'), cell('util'), cell('mem'), cell('temp'), cell('ready'));
    return { el: el('section', { className: 'node-group', dataset: { node: name } }, row, refs.body), refs, ids: new Set(), open: false };
  }

  function sortedIds(ids) {
    return [...ids].sort(collator.compare);
  }

  // Expanding builds the node's cards; collapsing drops them.
  function toggleGroup(name) {
    const grp = state.groups.get(name);
    if (!grp) return;
    grp.open = !grp.open;
    grp.refs.toggle.setAttribute('aria-expanded', String(grp.open));
    grp.refs.body.hidden = !grp.open;
    if (grp.open) {
      const frag = document.createDocumentFragment();
      for (const id of sortedIds(grp.ids)) frag.appendChild(newCard(id));
      grp.refs.body.appendChild(frag);
    } else {
      clear(grp.refs.body);
      for (const id of grp.ids) Object.assign(state.gpus.get(id), { card: null, refs: null });
    }
  }

  function renderNodeRow(grp) {
    let n = 0;
    let utilSum = 0;
    let utilN = 0;
    let used = 0;
    let total = 0;
    let hottest = null;
    let ready = null;
    for (const id of grp.ids) {
      const g = state.gpus.get(id);
      const v = gpuView(g);
      n++;
      if (v.util !== null) {
        utilSum += v.util;
        utilN++;
      }
      if (v.memUsed !== null) used += v.memUsed;
      if (v.memTotal !== null) total += v.memTotal;
      if (v.temp !== null && (hottest === null || v.temp > hottest)) hottest = v.temp;
      if (g.fromList && typeof g.fromList.node_ready === 'boolean') ready = g.fromList.node_ready;
    }
    const r = grp.refs;
    const util = utilN ? utilSum / utilN : null;
    setText(r.count, n + (n === 1 ? ' GPU' : ' GPUs'));
    setText(r.util, util === null ? DASH : util.toFixed(1) + ' % mean');
    setText(r.mem, total ? (used / 1024).toFixed(1) + ' / ' + (total / 1024).toFixed(1) + ' GB' : DASH);
    setText(r.temp, hottest === null ? DASH : 'hottest ' + hottest.toFixed(0) + ' °C');
    setText(r.ready, ready === null ? DASH : ready ? 'ready' : 'not ready');
    const rc = 'ns ns-ready ' + (ready === null ? '' : ready ? 'ok' : 'bad');
    if (r.ready.className !== rc) r.ready.className = rc;
    const uc = 'ns ns-util ' + levelClass(util, 70, 90);
    if (r.util.className !== uc) r.util.className = uc;
  }

  function renderNodeRows() {
    for (const grp of state.groups.values()) renderNodeRow(grp);
  }

  // Places new GPUs (a plain card, or a member of its node's group, in natural id order),
  // drops the ones no source mentions any more, and refreshes the given ids.
  function syncCards(touched) {
    const grid = $('gpu-grid');
    const known = new Set();
    if (state.metricsIds) state.metricsIds.forEach((i) => known.add(i));
    if (state.listIds) state.listIds.forEach((i) => known.add(i));
    let added = false;
    let newGroup = false;
    for (const id of known) {
      if (state.gpus.has(id)) continue;
      const node = nodeOf(id);
      state.gpus.set(id, { card: null, refs: null, fromMetrics: null, fromList: null, node });
      added = true;
      if (node === null) {
        newCard(id);
        continue;
      }
      let grp = state.groups.get(node);
      if (!grp) {
        grp = buildGroup(node);
        state.groups.set(node, grp);
        newGroup = true;
      }
      grp.ids.add(id);
      if (grp.open) grp.refs.body.appendChild(newCard(id));
    }
    for (const [id, g] of state.gpus) {
      if (known.has(id)) continue;
      if (g.card) g.card.remove();
      state.gpus.delete(id);
      const grp = g.node !== null ? state.groups.get(g.node) : null;
      if (grp && grp.ids.delete(id) && grp.ids.size === 0) {
        grp.el.remove();
        state.groups.delete(g.node);
      }
    }
    if (added) {
      // Plain cards first, then the nodes; both in natural order (re-appending moves them).
      const frag = document.createDocumentFragment();
      for (const id of sortedIds(state.gpus.keys())) {
        const g = state.gpus.get(id);
        if (g.node === null) frag.appendChild(g.card);
      }
      if (newGroup) for (const name of sortedIds(state.groups.keys())) frag.appendChild(state.groups.get(name).el);
      grid.appendChild(frag);
    }
    for (const id of touched) renderCard(id);
    $('gpu-empty').hidden = state.gpus.size > 0;
    if (state.gpus.size === 0 && (state.metricsIds || state.listIds)) setText($('gpu-empty'), 'No GPUs registered.');
  }

  // ---------------------------------------------------------------------------- metrics
  function onMetrics(d) {
    if (!d || typeof d !== 'object') return;
    const gm = d.gpu_metrics && typeof d.gpu_metrics === 'object' ? d.gpu_metrics : null;
    if (gm) {
      const entries = Array.isArray(gm) ? gm.map((m) => [m && (m.gpu_id || m.id), m]) : Object.entries(gm);
      const ids = [];
      for (const [id, m] of entries) {
        if (typeof id !== 'string' || !m) continue;
        ids.push(id);
      }
      state.metricsIds = ids;
      syncCards([]);
      for (const [id, m] of entries) {
        const g = state.gpus.get(id);
        if (!g) continue;
        g.fromMetrics = m;
        renderCard(id);
      }
      renderNodeRows();
      addSample(d, entries.map((e) => e[1]));
    }
    const s = d.system_stats;
    if (s && typeof s === 'object') {
      setText($('stat-total-gpus'), fmtInt(s.total_gpus));
      setText($('stat-active-gpus'), fmtInt(s.active_gpus));
      setText($('stat-avg-util'), fmtNum(s.average_utilization, 1, ' %'));
      setText($('stat-efficiency'), num(s.efficiency_score) === null ? DASH : num(s.efficiency_score).toFixed(0) + ' / 100');
      setText($('stat-power'), fmtNum(s.total_power_watts, 0, ' W'));
      const used = num(s.used_memory_gb);
      const total = num(s.total_memory_gb);
      setText($('stat-memory'), used === null || !total ? DASH : ((100 * used) / total).toFixed(1) + ' %');
      setText($('stat-memory-sub'), used === null || !total ? '' : used.toFixed(1) + ' / ' + total.toFixed(1) + ' GB');
    }
  }

  function stats(vals) {
    const xs = vals.filter((x) => x !== null);
    if (!xs.length) return null;
    let sum = 0;
    let mn = Infinity;
    let mx = -Infinity;
    for (const x of xs) {
      sum += x;
      if (x < mn) mn = x;
      if (x > mx) mx = x;
    }
    return { avg: sum / xs.length, min: mn, max: mx };
  }

  // One chart point per distinct daemon timestamp: a repeated push of the same snapshot adds
  // nothing, so the plot shows what was measured, not how often it was sent.
  function addSample(d, list) {
    const util = stats(list.map((m) => m && num(m.utilization_gpu !== undefined ? m.utilization_gpu : m.utilization)));
    const temp = stats(list.map((m) => m && num(m.temperature)));
    if (!util && !temp) return;
    let t = toMs(d.timestamp);
    const stamps = list.map((m) => m && toMs(m.timestamp)).filter((x) => x !== null);
    const key = stamps.length ? Math.max(...stamps) : t;
    if (key !== null && key === state.lastSampleKey) return;
    state.lastSampleKey = key;
    if (t === null) t = key !== null ? key : Date.now();
    const last = state.samples[state.samples.length - 1];
    if (last && t <= last.t) return;
    state.samples.push({ t, util, temp });
    if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
    if (charts) {
      charts.util.set(state.samples.map((p) => (p.util ? { t: p.t, avg: p.util.avg, min: p.util.min, max: p.util.max } : null)).filter(Boolean));
      charts.temp.set(state.samples.map((p) => (p.temp ? { t: p.t, avg: p.temp.avg, min: p.temp.min, max: p.temp.max } : null)).filter(Boolean));
    }
  }

  function onGpuList(body) {
    const list = asList(body, 'gpus');
    const ids = [];
    for (const g of list) {
      const id = g && (g.id || g.gpu_id);
      if (typeof id === 'string') ids.push(id);
    }
    state.listIds = ids;
    syncCards([]);
    for (const g of list) {
      const id = g && (g.id || g.gpu_id);
      const e = state.gpus.get(id);
      if (!e) continue;
      e.fromList = g;
      renderCard(id);
    }
    renderNodeRows();
  }

  // ---------------------------------------------------------------------------- workloads
  function wlBucket(status) {
    const s = String(status || '').toLowerCase();
    if (s === 'pending' || s === 'queued') return 'queued';
    if (s === 'running') return 'running';
    return 'finished';
  }
  const reasonText = {
    none: '',
    not_yet_scheduled: 'not yet scheduled',
    no_gpus: 'no GPU available',
    too_large: 'larger than any GPU',
    insufficient_memory: 'waiting for free memory',
    exclusive_busy: 'wants a GPU to itself; all busy',
  };

  function onWorkloads(body) {
    let list = asList(body, 'workloads', 'items');
    if (!list.length && body && typeof body === 'object' && !Array.isArray(body)) {
      for (const k of ['pending', 'queued', 'running', 'completed', 'finished', 'failed', 'cancelled']) if (Array.isArray(body[k])) list = list.concat(body[k]);
    }
    state.workloads = list.filter((w) => w && typeof w === 'object');
    renderWorkloads();
  }

  function renderWorkloads() {
    const counts = { all: 0, queued: 0, running: 0, finished: 0 };
    for (const w of state.workloads) {
      counts.all++;
      counts[wlBucket(w.status)]++;
    }
    for (const k of Object.keys(counts)) setText($('wl-count-' + k), counts[k]);
    const order = { running: 0, queued: 1, finished: 2 };
    const rows = state.workloads
      .filter((w) => state.wlFilter === 'all' || wlBucket(w.status) === state.wlFilter)
      .sort((a, b) => order[wlBucket(a.status)] - order[wlBucket(b.status)] || (toMs(b.submitted_at || b.submitted_ns) || 0) - (toMs(a.submitted_at || a.submitted_ns) || 0));
    const CAP = 200;
    const body = $('wl-body');
    const frag = document.createDocumentFragment();
    for (const w of rows.slice(0, CAP)) {
      const st = String(w.status || DASH);
      const reason = w.pending_reason && w.pending_reason !== 'none' ? reasonText[w.pending_reason] || String(w.pending_reason) : '';
      const why = wlBucket(w.status) === 'queued' ? reason : w.failure || w.error || '';
      const mem = num(w.memory_required_mb !== undefined ? w.memory_required_mb : w.memory_required);
      frag.appendChild(
        el(
          'tr',
          { dataset: { workloadId: String(w.id || '') } },
          el('td', { title: String(w.id || '') }, el('div', { text: w.name || w.id || DASH }), w.name && w.id ? el('div', { className: 'muted small', text: w.id }) : null),
          el('td', null, el('span', { className: 'badge st-' + wlBucket(w.status), text: st })),
          el('td', { text: fmtInt(w.priority) }),
          el('td', { text: mem === null ? DASH : mem >= 1024 ? (mem / 1024).toFixed(1) + ' GB' : mem + ' MB' }),
          el('td', { text: w.assigned_gpu || DASH }),
          el('td', { text: fmtMs(w.queue_wait_ms) }),
          el('td', { className: 'why', text: why || '' }),
        ),
      );
    }
    clear(body);
    body.appendChild(frag);
    const note = $('wl-note');
    note.hidden = rows.length > 0 && rows.length <= CAP;
    setText(note, rows.length > CAP ? 'Showing ' + CAP + ' of ' + rows.length + ' workloads.' : 'No workloads.');
  }

  // ---------------------------------------------------------------------------- alerts
  function alertId(a) {
    const id = a.id !== undefined ? a.id : a.alert_id;
    return id === undefined || id === null ? null : String(id);
  }
  function alertResolved(a) {
    return a.resolved === true || a.acknowledged === true || a.status === 'resolved';
  }

  function onAlerts(body) {
    const list = asList(body, 'alerts', 'active');
    state.alerts.clear();
    for (const a of list) {
      if (!a || typeof a !== 'object' || alertResolved(a)) continue;
      const id = alertId(a);
      if (id !== null) state.alerts.set(id, a);
    }
    renderAlerts();
  }

  function onAlertPush(a) {
    if (!a || typeof a !== 'object') return;
    const id = alertId(a);
    if (id === null) return;
    if (alertResolved(a)) state.alerts.delete(id);
    else state.alerts.set(id, a);
    renderAlerts();
  }

  async function resolveAlert(id, btn) {
    btn.disabled = true;
    try {
      await api('/api/v1/alerts/' + encodeURIComponent(id) + '/resolve', { method: 'POST', json: {} });
      state.alerts.delete(id);
      renderAlerts();
      toast('Alert resolved', id, 'success');
    } catch (e) {
      btn.disabled = false;
      toast('Could not resolve alert', e.message, 'error');
    }
  }

  function renderAlerts() {
    const CAP = 100;
    const rank = { critical: 0, error: 0, warning: 1, warn: 1, info: 2 };
    const list = [...state.alerts.values()].sort((a, b) => {
      const la = rank[String(a.level || a.severity).toLowerCase()];
      const lb = rank[String(b.level || b.severity).toLowerCase()];
      return (la === undefined ? 3 : la) - (lb === undefined ? 3 : lb) || (toMs(b.timestamp) || 0) - (toMs(a.timestamp) || 0);
    });
    const ul = $('alert-list');
    const frag = document.createDocumentFragment();
    for (const a of list.slice(0, CAP)) {
      const id = alertId(a);
      const level = String(a.level || a.severity || 'info').toLowerCase();
      const src = a.source || a.gpu_id || '';
      const btn = el('button', { type: 'button', className: 'resolve', text: 'Resolve', dataset: { alertId: id } });
      btn.addEventListener('click', () => resolveAlert(id, btn));
      frag.appendChild(
        el(
          'li',
          { className: 'alert lvl-' + level.replace(/[^a-z]/g, ''), dataset: { alertId: id } },
          el('span', { className: 'badge lvl', text: level }),
          el('div', { className: 'alert-body' }, el('div', { className: 'alert-msg', text: a.message || a.title || id }), el('div', { className: 'muted small', text: (src ? 'Source: ' + src + ' · ' : '') + fmtAgo(toMs(a.timestamp)) })),
          btn,
        ),
      );
    }
    clear(ul);
    ul.appendChild(frag);
    setText($('alert-count'), state.alerts.size);
    $('alert-count').className = 'badge' + (state.alerts.size ? ' warn' : ' ok');
    const note = $('alert-note');
    note.hidden = list.length > 0 && list.length <= CAP;
    setText(note, list.length > CAP ? 'Showing ' + CAP + ' of ' + list.length + ' alerts.' : 'No active alerts.');
  }

  // ---------------------------------------------------------------------------- costs
  function groups(v) {
    if (Array.isArray(v)) return v.filter((g) => g && typeof g === 'object').map((g) => Object.assign({ name: g.name || g.operation || g.model || g.model_id || '' }, g));
    if (v && typeof v === 'object') return Object.entries(v).map(([name, g]) => (g && typeof g === 'object' ? Object.assign({}, g, { name }) : { name, cost: g }));
    return [];
  }

  function renderGroups(tbody, list, currency, emptyLabel) {
    list = list.slice().sort((a, b) => (num(b.cost) || 0) - (num(a.cost) || 0));
    const max = Math.max(0, ...list.map((g) => num(g.cost) || 0));
    const frag = document.createDocumentFragment();
    for (const g of list.slice(0, 50)) {
      const c = num(g.cost);
      const fill = el('span', { className: 'fill' });
      fill.style.width = max > 0 && c !== null ? ((100 * c) / max).toFixed(1) + '%' : '0%';
      frag.appendChild(el('tr', null, el('td', { text: g.name === '' ? emptyLabel : g.name }), el('td', { text: fmtMoney(c, currency) }), el('td', { text: fmtNum(g.gpu_hours, 2) }), el('td', { text: fmtInt(g.count) }), el('td', { className: 'barcol' }, el('span', { className: 'bar' }, fill))));
    }
    if (!list.length) frag.appendChild(el('tr', null, el('td', { colSpan: 5, className: 'muted', text: 'No costs recorded yet.' })));
    clear(tbody);
    tbody.appendChild(frag);
  }

  // Seven calendar days from the cost summary: read from the daemon's durable ledger, so the
  // history survives a restart.
  function renderDaily(tbody, days, currency) {
    const list = Array.isArray(days) ? days.filter((d) => d && typeof d === 'object') : [];
    const max = Math.max(0, ...list.map((d) => num(d.cost) || 0));
    const frag = document.createDocumentFragment();
    for (const d of list.slice(-7)) {
      const c = num(d.cost);
      const fill = el('span', { className: 'fill' });
      fill.style.width = max > 0 && c !== null ? ((100 * c) / max).toFixed(1) + '%' : '0%';
      frag.appendChild(el('tr', null, el('td', { text: String(d.date || '') }), el('td', { text: fmtMoney(c, currency) }), el('td', { className: 'barcol' }, el('span', { className: 'bar' }, fill))));
    }
    if (!list.length) frag.appendChild(el('tr', null, el('td', { colSpan: 3, className: 'muted', text: 'No daily history yet.' })));
    clear(tbody);
    tbody.appendChild(frag);
  }

  function onCostSummary(body) {
    if (!body || typeof body !== 'object') return;
    // The original nested the summary under current_period; accept both.
    const s = body.current_period && typeof body.current_period === 'object' && body.total_cost === undefined ? body.current_period : body;
    const cur = s.currency;
    setText($('cost-total'), fmtMoney(s.total_cost, cur));
    setText($('cost-gpu-hours'), fmtNum(s.total_gpu_hours !== undefined ? s.total_gpu_hours : s.gpu_hours, 2));
    setText($('cost-avg-rate'), fmtMoney(s.avg_cost_per_hr !== undefined ? s.avg_cost_per_hr : s.avg_cost_per_hour, cur));
    setText($('cost-tokens'), fmtInt(s.total_tokens));
    let byOp = groups(s.by_operation || body.by_operation);
    if (!byOp.length && s.operation_counts && typeof s.operation_counts === 'object') byOp = Object.entries(s.operation_counts).map(([name, count]) => ({ name, count }));
    renderGroups($('cost-by-op'), byOp, cur, '(none)');
    renderGroups($('cost-by-model'), groups(s.by_model || body.by_model), cur, '(no model)');
    renderDaily($('cost-daily'), body.daily_breakdown, cur);
    $('cost-note').hidden = true;
    state.currency = cur;
  }

  function onCostForecast(body) {
    if (!body || typeof body !== 'object') return;
    const f = body.forecast && typeof body.forecast === 'object' ? body.forecast : body;
    const cur = f.currency || state.currency;
    setText($('cost-forecast'), fmtMoney(f.predicted_cost_24h !== undefined ? f.predicted_cost_24h : f.next_24h, cur));
    const rate = num(f.current_rate_per_hour);
    setText($('cost-rate'), rate === null ? DASH : fmtMoney(rate, cur) + ' / h');
    const tr = num(f.trend_per_hour);
    setText($('cost-trend'), tr === null ? '' : (tr > 0 ? '▲ ' : tr < 0 ? '▼ ' : '± ') + fmtMoney(Math.abs(tr), cur) + ' / h²' + (num(f.window_hours) !== null ? ' over ' + num(f.window_hours).toFixed(1) + ' h' : ''));
  }

  // ---------------------------------------------------------------------------- tracing health
  function findTracing(h) {
    if (!h || typeof h !== 'object') return null;
    const c = [h.tracing, h.components && h.components.tracing, h];
    for (const t of c) if (t && typeof t === 'object' && (t.exporters || t.queue || t.spans)) return t;
    return null;
  }

  function onHealth(h) {
    const t = findTracing(h);
    if (!t) {
      setText($('tr-note'), 'The daemon reports no tracing health.');
      return;
    }
    const st = String(t.status || (t.enabled === false ? 'disabled' : DASH));
    setText($('tr-status'), st);
    $('tr-status').className = 'badge h-' + st.replace(/[^a-z]/g, '');
    setText($('tr-service'), t.service_name || DASH);
    setText($('tr-sampler'), t.sampler || DASH);
    $('tr-sampler').title = t.sampler || '';
    const q = t.queue || {};
    const depth = num(q.depth);
    const cap = num(q.capacity);
    setText($('tr-queue'), depth === null ? DASH : fmtInt(depth) + (cap ? ' / ' + fmtInt(cap) : ''));
    setBar($('tr-queue-bar'), depth !== null && cap ? (100 * depth) / cap : null, levelClass(depth !== null && cap ? (100 * depth) / cap : null, 50, 90));
    const sp = t.spans || {};
    setText($('tr-exported'), fmtInt(sp.exported));
    setText($('tr-dropped'), fmtInt(sp.dropped));
    $('tr-dropped').classList.toggle('bad', (num(sp.dropped) || 0) > 0);
    setText($('tr-failed'), fmtInt(sp.failed));
    const body = $('tr-exporters');
    const frag = document.createDocumentFragment();
    const exps = asList(t.exporters);
    for (const e of exps) {
      if (!e || typeof e !== 'object') continue;
      const ok = e.healthy !== false && !(num(e.consecutive_failures) > 0);
      frag.appendChild(
        el(
          'tr',
          null,
          el('td', { text: e.type || e.name || DASH }),
          el('td', { className: 'mono', text: e.endpoint || DASH }),
          el('td', null, el('span', { className: 'badge ' + (ok ? 'h-healthy' : 'h-degraded'), text: ok ? 'healthy' : 'failing (' + fmtInt(e.consecutive_failures) + ')' })),
          el('td', { text: fmtInt(e.spans_exported) }),
          el('td', { text: fmtInt(e.spans_failed) }),
          el('td', { text: fmtInt(e.spans_rejected) }),
          el('td', { text: fmtInt(e.retries) }),
          el('td', { className: 'why', text: e.last_error || '' }),
        ),
      );
    }
    clear(body);
    body.appendChild(frag);
    const note = $('tr-note');
    note.hidden = exps.length > 0;
    setText(note, 'No exporters configured: spans stay in the in-process trace store (see Traces).');
  }

  // ---------------------------------------------------------------------------- config
  // The Jaeger UI, when one is known: server.jaeger_ui_url, or the jaeger exporter's host
  // with the UI's port 16686.
  function jaegerUi(c) {
    if (!c || typeof c !== 'object') return null;
    const cands = [c.jaeger_ui_url, c.server && c.server.jaeger_ui_url, c['server.jaeger_ui_url'], c.dashboard && c.dashboard.jaeger_ui_url];
    for (const u of cands) if (typeof u === 'string' && /^https?:\/\//.test(u)) return u.replace(/\/+$/, '');
    const tr = c.tracing || {};
    const exps = [tr.jaeger, tr.exporters && tr.exporters.jaeger, tr.jaeger_endpoint];
    for (const j of exps) {
      const ep = typeof j === 'string' ? j : j && typeof j === 'object' && j.enabled !== false ? j.endpoint : null;
      if (typeof ep !== 'string' || !ep) continue;
      try {
        const u = new URL(ep);
        return u.protocol + '//' + u.hostname + ':16686';
      } catch (e) {
        /* not a URL: no link */
      }
    }
    return null;
  }
  AF.jaegerUrl = (traceId) => (state.jaegerUi ? state.jaegerUi + '/trace/' + encodeURIComponent(traceId) : null);

  async function loadConfig() {
    try {
      state.config = await api('/api/v1/config');
      state.jaegerUi = jaegerUi(state.config);
      // server.title (the original ignored its Title setting).
      const c = state.config || {};
      const title = (c.server && c.server.title) || c.title;
      if (typeof title === 'string' && title.trim()) {
        document.title = title;
        setText(document.querySelector('.topbar h1'), title);
      }
    } catch (e) {
      state.jaegerUi = null;
    }
  }

  // ---------------------------------------------------------------------------- polling
  // Each resource is polled on its own timer; a failing one does not hold up the others.
  const pollers = [];
  function poll(path, every, handler, when) {
    const p = { path, every, handler, when, timer: null, busy: false, again: false };
    // One chain of timers per resource: a run requested while a fetch is in flight is folded
    // into an immediate re-run after it, never a second chain.
    const run = async () => {
      clearTimeout(p.timer);
      p.timer = null;
      if (p.busy) {
        p.again = true;
        return;
      }
      if (!document.hidden && (!when || when())) {
        p.busy = true;
        try {
          handler(await api(path));
        } catch (e) {
          /* shown as stale data; the connection badge says when the daemon is gone */
        } finally {
          p.busy = false;
        }
      }
      clearTimeout(p.timer);
      p.timer = setTimeout(run, p.again ? 0 : p.every);
      p.again = false;
    };
    p.run = run;
    pollers.push(p);
    run();
    return p;
  }

  // ---------------------------------------------------------------------------- WebSocket
  let backoff = 0;
  let lastMessage = 0;
  function setConn(cls, text) {
    const b = $('conn');
    b.className = 'badge conn-' + cls;
    setText(b, text);
  }

  function connect() {
    // Browsers cannot set headers on a WebSocket: the token goes in the query, which the
    // daemon accepts for /ws only (and never records: docs/security.md, Redaction).
    const tok = token();
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + (tok ? '?access_token=' + encodeURIComponent(tok) : '');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    ws.onopen = () => {
      backoff = 0;
      state.wsOpen = true;
      lastMessage = Date.now();
      setConn('connected', 'Connected');
      ws.send(JSON.stringify({ type: 'get_metrics', timestamp: new Date().toISOString() }));
    };
    ws.onmessage = (ev) => {
      lastMessage = Date.now();
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (!m || typeof m !== 'object') return;
      switch (m.type) {
        case 'metrics_update':
          onMetrics(m.data);
          break;
        case 'alert':
          onAlertPush(m.data);
          break;
        case 'notification':
          if (m.data) toast(m.data.title, m.data.message, m.data.level);
          break;
        case 'system_update':
          onSystemUpdate(m.data);
          break;
        default:
          break;
      }
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsOpen = false;
      scheduleReconnect();
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  // The daemon announces changes ({event: "gpu_registered" | "workload_submitted" |
  // "alert_resolved" | ..., id}); refetch what changed now instead of at the next poll.
  const refreshSoon = new Set();
  let refreshTimer = null;
  function onSystemUpdate(d) {
    if (!d || typeof d !== 'object') return;
    if (d.system_stats) onMetrics({ system_stats: d.system_stats });
    const ev = String(d.event || '');
    if (ev.startsWith('gpu')) refreshSoon.add('/api/v1/gpus');
    if (ev.startsWith('workload')) refreshSoon.add('/api/v1/workloads');
    if (ev.startsWith('alert')) refreshSoon.add('/api/v1/alerts');
    if (!refreshSoon.size || refreshTimer) return;
    // Coalesce a burst (the load generator submits many workloads) into one fetch each.
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      for (const p of pollers) if (refreshSoon.has(p.path)) p.run();
      refreshSoon.clear();
    }, 250);
  }

  function scheduleReconnect() {
    // 1 s, 2 s, 4 s ... capped at 30 s, with jitter so many tabs do not reconnect in step.
    const delay = Math.min(30000, 1000 * 2 ** backoff) * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff + 1, 5);
    setConn('reconnecting', 'Reconnecting…');
    setTimeout(connect, delay);
  }

  // A socket can die silently (laptop sleep, proxy): ping, and reconnect when nothing came
  // back for a while.
  setInterval(() => {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastMessage > 45000) {
      ws.close();
      return;
    }
    try {
      ws.send(JSON.stringify({ type: 'ping', timestamp: new Date().toISOString() }));
    } catch (e) {
      /* onclose follows */
    }
  }, 15000);

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: 'get_metrics', timestamp: new Date().toISOString() }));
    for (const p of pollers) p.run();
  });

  // ---------------------------------------------------------------------------- routing
  function route() {
    const h = location.hash.replace(/^#/, '') || '/';
    const m = /^\/traces\/([^/?]+)/.exec(h);
    const view = m ? 'trace' : h.startsWith('/traces') ? 'traces' : 'overview';
    $('view-overview').hidden = view !== 'overview';
    $('view-traces').hidden = view !== 'traces';
    $('view-trace').hidden = view !== 'trace';
    $('nav-overview').classList.toggle('active', view === 'overview');
    $('nav-traces').classList.toggle('active', view !== 'overview');
    if (view === 'overview' && charts) {
      charts.util.schedule();
      charts.temp.schedule();
    }
    if (AF.Traces) {
      if (view === 'traces') AF.Traces.showList();
      else if (view === 'trace') AF.Traces.showTrace(decodeURIComponent(m[1]));
      else AF.Traces.hide();
    }
  }
  AF.currentView = () => (!$('view-traces').hidden ? 'traces' : !$('view-trace').hidden ? 'trace' : 'overview');

  // ---------------------------------------------------------------------------- start
  function start() {
    const tick = () => setText($('clock'), new Date().toLocaleTimeString('en-GB', { hour12: false }));
    tick();
    setInterval(tick, 1000);

    charts = {
      util: new AF.Chart($('chart-util'), { unit: '%', min: 0, max: 100, color: '#4ea1ff' }),
      temp: new AF.Chart($('chart-temp'), { unit: '°C', color: '#ff9f43', pad: 5 }),
    };

    for (const b of document.querySelectorAll('[data-wl-filter]')) {
      b.addEventListener('click', () => {
        state.wlFilter = b.dataset.wlFilter;
        for (const o of document.querySelectorAll('[data-wl-filter]')) o.classList.toggle('active', o === b);
        renderWorkloads();
      });
    }

    const overview = () => AF.currentView() === 'overview';
    // While the socket is up it carries the metrics; REST takes over when it is down.
    poll('/api/v1/metrics', 3000, onMetrics, () => !state.wsOpen);
    poll('/api/v1/gpus', 5000, onGpuList, overview);
    poll('/api/v1/workloads', 5000, onWorkloads, overview);
    poll('/api/v1/alerts', 5000, onAlerts);
    poll('/api/v1/costs/summary', 10000, onCostSummary, overview);
    poll('/api/v1/costs/forecast', 30000, onCostForecast, overview);
    poll('/health', 5000, onHealth, overview);
    AF.refresh = () => pollers.forEach((p) => p.run());

    if (AF.Traces) AF.Traces.init();
    loadConfig().then(() => AF.Traces && AF.Traces.configChanged());
    window.addEventListener('hashchange', () => {
      route();
      if (AF.currentView() === 'overview') AF.refresh();
    });
    initToken();
    route();
    connect();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
