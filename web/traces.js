/*
 * Trace viewer: the recent-traces list of the in-process store (filters: operation,
 * service, minimum duration, errors only; trace id search) and one trace as a waterfall
 * (spans on a time axis, nested by parent, coloured by component = the span name's prefix,
 * errors marked) with a span's attributes, events and links on click. What a trace cost (the
 * store's cost_usd: its spans' agentaflow.cost.usd summed) is a list column, a fact of the
 * waterfall's summary and a tag on the spans that carry it.
 *
 * Every string from a span goes through textContent (AF.el). Timestamps are unix nanoseconds
 * (JSON strings or numbers) and are handled as BigInt so offsets keep nanosecond precision.
 */
'use strict';
(function () {
  const AF = (window.AF = window.AF || {});
  const el = (...a) => AF.el(...a);
  const $ = (id) => document.getElementById(id);
  const DASH = '—';
  const PAGE = 200; // list rows added per "Show more"
  const MAX_WF_ROWS = 2000; // waterfall rows drawn for one trace
  const LIVE_MS = 5000;

  const st = {
    items: [],
    rows: new Map(), // trace_id -> {tr, sig, bar}
    limit: PAGE,
    liveTimer: null,
    loading: false,
    trace: null, // {id, spans, byId}
    selected: null,
    visible: false,
  };

  // ---------------------------------------------------------------------------- values
  function ns(v) {
    if (typeof v === 'bigint') return v;
    if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) return BigInt(Math.round(v));
    if (typeof v === 'string' && v) {
      const t = Date.parse(v);
      if (Number.isFinite(t)) return BigInt(t) * 1000000n;
    }
    return null;
  }
  const nsToMs = (d) => Number(d) / 1e6;
  // Model calls cost fractions of a cent: keep three significant digits below a cent.
  function fmtUsd(v) {
    const n = AF.num(v);
    if (n === null || n === undefined) return DASH;
    if (n === 0) return '$0';
    return '$' + (Math.abs(n) < 0.01 ? n.toPrecision(3) : n.toFixed(4));
  }
  // The first argument that is present: the API may use snake_case or OTLP/JSON camelCase.
  function first(...vals) {
    for (const v of vals) if (v !== undefined && v !== null) return v;
    return undefined;
  }

  // OTLP/JSON AnyValue ({stringValue: ..}) or a plain JSON value -> plain value.
  function anyValue(v) {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      if ('stringValue' in v) return v.stringValue;
      if ('boolValue' in v) return v.boolValue;
      if ('intValue' in v) return v.intValue;
      if ('doubleValue' in v) return v.doubleValue;
      if ('bytesValue' in v) return v.bytesValue;
      if ('arrayValue' in v) return ((v.arrayValue && v.arrayValue.values) || []).map(anyValue);
      if ('kvlistValue' in v) return Object.fromEntries(attrList(v.kvlistValue && v.kvlistValue.values));
    }
    return v;
  }
  // [[key, value], ...] from {k: v} or [{key, value}].
  function attrList(a) {
    if (Array.isArray(a)) return a.filter((kv) => kv && typeof kv === 'object').map((kv) => [String(kv.key), anyValue(kv.value)]);
    if (a && typeof a === 'object') return Object.entries(a).map(([k, v]) => [k, anyValue(v)]);
    return [];
  }
  const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

  function isError(s) {
    if (!s) return false;
    if (s.error === true) return true;
    const status = s.status;
    if (!status) return false;
    const code = typeof status === 'object' ? status.code : status;
    return code === 2 || /error/i.test(String(code));
  }
  function statusText(s) {
    const status = s.status;
    if (!status) return 'unset';
    if (typeof status !== 'object') return String(status);
    const names = { 0: 'unset', 1: 'ok', 2: 'error' };
    const c = status.code in names ? names[status.code] : String(status.code || 'unset').replace(/^STATUS_CODE_/, '').toLowerCase();
    return status.message ? c + ': ' + status.message : c;
  }
  function kindText(k) {
    const names = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
    if (typeof k === 'number') return names[k] || String(k);
    return k ? String(k).replace(/^SPAN_KIND_/, '').toLowerCase() : DASH;
  }
  function attr(list, key) {
    for (const [k, v] of list) if (k === key) return v;
    return undefined;
  }
  function spanService(s, fallback) {
    if (typeof s.service === 'string' && s.service) return s.service;
    if (typeof s.service_name === 'string' && s.service_name) return s.service_name;
    const r = s.resource;
    if (r && typeof r === 'object') {
      const v = attr(attrList(r.attributes || r), 'service.name');
      if (typeof v === 'string') return v;
    }
    return fallback || '';
  }

  // The component a span belongs to: the span name's prefix ("gpu_scheduler.schedule",
  // "api_requests.GET /api/v1/gpus").
  function component(name) {
    const m = /^[^.\s/:]+/.exec(name || '');
    return m ? m[0] : '(unnamed)';
  }
  const fixedColors = {
    gpu_scheduler: '#4ea1ff',
    metrics_collection: '#2ecc71',
    metrics_collector: '#2ecc71',
    model_serving: '#a55eea',
    api_requests: '#ff9f43',
    cost_tracking: '#f7b731',
    cost_calculation: '#f7b731',
    websocket_events: '#26c6da',
    health_check: '#95a5a6',
  };
  const palette = ['#4ea1ff', '#2ecc71', '#a55eea', '#ff9f43', '#f7b731', '#26c6da', '#fd79a8', '#7bed9f', '#70a1ff', '#eccc68'];
  function colorFor(comp) {
    if (fixedColors[comp]) return fixedColors[comp];
    let h = 0;
    for (let i = 0; i < comp.length; i++) h = (h * 31 + comp.charCodeAt(i)) >>> 0;
    return palette[h % palette.length];
  }

  function normTraceId(s) {
    const t = String(s || '')
      .trim()
      .toLowerCase()
      .replace(/-/g, '');
    if (/^[0-9a-f]{32}$/.test(t)) return t;
    if (/^[0-9a-f]{1,16}$/.test(t)) return t.padStart(32, '0'); // Jaeger's 64-bit ids
    return null;
  }

  function jaegerLink(id) {
    const u = AF.jaegerUrl && AF.jaegerUrl(id);
    return u ? el('a', { href: u, target: '_blank', rel: 'noopener noreferrer', className: 'jaeger', text: 'Jaeger ↗', title: 'Open in Jaeger UI' }) : null;
  }

  // ---------------------------------------------------------------------------- list
  function filters() {
    const f = $('trace-filters');
    const q = new URLSearchParams();
    const op = f.elements.operation.value.trim();
    const svc = f.elements.service.value.trim();
    const min = f.elements.min_duration_ms.value.trim();
    if (op) q.set('operation', op);
    if (svc) q.set('service', svc);
    if (min && Number(min) > 0) q.set('min_duration_ms', min);
    if (f.elements.error.checked) q.set('error', 'true');
    q.set('limit', '1000');
    return q;
  }

  async function loadList() {
    if (st.loading) return;
    st.loading = true;
    try {
      const body = await AF.api('/api/v1/traces?' + filters().toString());
      st.items = AF.asList(body, 'traces', 'items').filter((t) => t && typeof t === 'object' && (t.trace_id || t.traceId));
      st.total = body && typeof body === 'object' && !Array.isArray(body) ? AF.num(body.total) : null;
      renderList();
    } catch (e) {
      AF.setText($('trace-info'), 'Could not load traces: ' + e.message);
    } finally {
      st.loading = false;
    }
  }

  function item(t) {
    return {
      id: String(t.trace_id || t.traceId),
      name: t.root_name || t.root_span_name || t.name || t.root_span || t.operation || '',
      service: t.service || t.service_name || t.root_service || '',
      start: AF.toMs(first(t.start_time_unix_nano, t.start_time, t.startTimeUnixNano, t.start_ns)),
      dur: AF.num(t.duration_ms !== undefined ? t.duration_ms : t.duration_ns !== undefined ? AF.num(t.duration_ns) / 1e6 : null),
      spans: AF.num(t.span_count !== undefined ? t.span_count : t.spans),
      error: t.error === true || t.has_error === true || AF.num(t.error_count) > 0,
      errors: AF.num(t.error_count),
      cost: AF.num(t.cost_usd),
    };
  }

  function buildRow(it) {
    const bar = el('span', { className: 'fill' });
    const link = el('a', { href: '#/traces/' + encodeURIComponent(it.id), text: it.name || it.id, title: it.id });
    const tr = el(
      'tr',
      { className: 'trace-row' + (it.error ? ' err' : ''), dataset: { traceId: it.id } },
      el('td', { className: 'nowrap', text: AF.fmtTime(it.start) }),
      el('td', { className: 'name' }, link),
      el('td', { text: it.service || DASH }),
      el('td', { className: 'nowrap', text: AF.fmtMs(it.dur) }),
      el('td', { className: 'barcol' }, el('span', { className: 'bar' }, bar)),
      el('td', { text: AF.fmtInt(it.spans) }),
      el('td', { className: 'nowrap', text: it.cost ? fmtUsd(it.cost) : DASH }),
      el('td', null, el('span', { className: 'badge ' + (it.error ? 'h-critical' : 'h-healthy'), text: it.error ? (it.errors ? it.errors + ' error' + (it.errors > 1 ? 's' : '') : 'error') : 'ok' })),
      el('td', null, jaegerLink(it.id)),
    );
    tr.addEventListener('click', (ev) => {
      if (ev.target.closest('a')) return;
      location.hash = '#/traces/' + encodeURIComponent(it.id);
    });
    return { tr, bar };
  }

  // Rows are kept per trace id and rebuilt only when that trace changed, so the live refresh
  // of 1,000 traces moves existing nodes instead of recreating them.
  function renderList() {
    const items = st.items.map(item);
    const shown = items.slice(0, st.limit);
    const maxDur = Math.max(0, ...shown.map((i) => i.dur || 0));
    const body = $('trace-body');
    const keep = new Map();
    const frag = document.createDocumentFragment();
    for (const it of shown) {
      const sig = [it.name, it.service, it.start, it.dur, it.spans, it.error, it.errors, it.cost, AF.jaegerUrl ? AF.jaegerUrl('') : ''].join('\u0000');
      let r = st.rows.get(it.id);
      if (!r || r.sig !== sig) {
        r = buildRow(it);
        r.sig = sig;
      }
      r.bar.style.width = maxDur > 0 && it.dur !== null ? ((100 * it.dur) / maxDur).toFixed(1) + '%' : '0%';
      keep.set(it.id, r);
      frag.appendChild(r.tr);
    }
    AF.clear(body);
    body.appendChild(frag);
    st.rows = keep;
    const total = st.total !== null && st.total !== undefined ? st.total : items.length;
    AF.setText($('trace-info'), items.length ? 'Showing ' + shown.length + ' of ' + total + ' traces (newest first).' : 'No traces match these filters.');
    $('trace-more').hidden = items.length <= st.limit;
  }

  function scheduleLive() {
    clearTimeout(st.liveTimer);
    st.liveTimer = null;
    if (!st.visible || !$('trace-live').checked) return;
    st.liveTimer = setTimeout(async () => {
      if (!document.hidden) await loadList();
      scheduleLive();
    }, LIVE_MS);
  }

  // ---------------------------------------------------------------------------- one trace
  function normSpans(body) {
    const list = AF.asList(body, 'spans');
    const traceService = body && typeof body === 'object' && !Array.isArray(body) ? body.service || body.service_name || '' : '';
    const spans = [];
    for (const s of list) {
      if (!s || typeof s !== 'object') continue;
      const start = ns(first(s.start_time_unix_nano, s.startTimeUnixNano, s.start_time));
      let end = ns(first(s.end_time_unix_nano, s.endTimeUnixNano, s.end_time));
      if (start === null) continue;
      if (end === null || end < start) end = start;
      spans.push({
        raw: s,
        id: String(s.span_id || s.spanId || ''),
        parent: s.parent_span_id || s.parentSpanId ? String(s.parent_span_id || s.parentSpanId) : '',
        name: String(s.name || ''),
        start,
        end,
        error: isError(s),
        service: spanService(s, traceService),
        attrs: attrList(s.attributes),
        children: [],
      });
    }
    return spans;
  }

  // Depth-first order, children by start time; spans whose parent is not in the trace
  // (still running, dropped, or remote) become roots.
  function order(spans) {
    const byId = new Map();
    for (const s of spans) byId.set(s.id, s);
    const roots = [];
    for (const s of spans) {
      const p = s.parent && s.parent !== '0000000000000000' ? byId.get(s.parent) : null;
      if (p && p !== s) p.children.push(s);
      else {
        s.orphan = !!(s.parent && s.parent !== '0000000000000000');
        roots.push(s);
      }
    }
    const cmp = (a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0);
    roots.sort(cmp);
    const out = [];
    const seen = new Set();
    const stack = roots
      .slice()
      .reverse()
      .map((s) => [s, 0]);
    while (stack.length) {
      const [s, d] = stack.pop();
      if (seen.has(s)) continue; // a parent cycle in bad data must not loop forever
      seen.add(s);
      s.depth = d;
      out.push(s);
      s.children.sort(cmp);
      for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], d + 1]);
    }
    return { byId, ordered: out };
  }

  function niceStep(total, n) {
    const raw = total / n;
    const p = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }

  async function loadTrace(id) {
    const norm = normTraceId(id);
    const wf = $('waterfall');
    AF.clear(wf);
    AF.clear($('trace-summary'));
    AF.clear($('wf-legend'));
    resetDetail();
    AF.setText($('trace-id'), norm || id);
    if (!norm) {
      wf.appendChild(el('p', { className: 'empty', text: 'Not a trace id: expected 32 hexadecimal digits.' }));
      return;
    }
    wf.appendChild(el('p', { className: 'muted', text: 'Loading…' }));
    let body;
    try {
      body = await AF.api('/api/v1/traces/' + norm);
    } catch (e) {
      AF.clear(wf);
      const msg = e.status === 404 ? 'This trace is not in the in-process store (it may have been evicted, or not ended yet).' : 'Could not load the trace: ' + e.message;
      wf.appendChild(el('p', { className: 'empty', text: msg }));
      const j = jaegerLink(norm);
      if (j) wf.appendChild(el('p', null, 'Try ', j));
      return;
    }
    if (st.trace && st.trace.want !== norm) return; // navigated away meanwhile
    renderTrace(norm, body);
  }

  function renderTrace(id, body) {
    const spans = normSpans(body);
    const wf = $('waterfall');
    AF.clear(wf);
    if (!spans.length) {
      wf.appendChild(el('p', { className: 'empty', text: 'This trace has no spans.' }));
      return;
    }
    const { byId, ordered } = order(spans);
    st.trace = { want: id, id, byId, spans: ordered };
    let t0 = ordered[0].start;
    let t1 = ordered[0].end;
    for (const s of spans) {
      if (s.start < t0) t0 = s.start;
      if (s.end > t1) t1 = s.end;
    }
    const total = Number(t1 - t0) || 1;
    st.trace.t0 = t0;

    // Summary line.
    const root = ordered[0];
    const errors = spans.filter((s) => s.error).length;
    const services = [...new Set(spans.map((s) => s.service).filter(Boolean))];
    const sum = $('trace-summary');
    const fact = (label, value, cls) => el('span', { className: 'fact' + (cls ? ' ' + cls : '') }, el('span', { className: 'label', text: label }), el('b', { text: value }));
    sum.appendChild(fact('Root', root.name || DASH));
    sum.appendChild(fact('Services', services.join(', ') || DASH));
    sum.appendChild(fact('Started', new Date(Number(t0 / 1000000n)).toLocaleString('en-GB')));
    sum.appendChild(fact('Duration', AF.fmtMs(total / 1e6)));
    sum.appendChild(fact('Spans', String(spans.length)));
    sum.appendChild(fact('Errors', String(errors), errors ? 'bad' : ''));
    if (body && typeof body === 'object' && AF.num(body.cost_usd)) sum.appendChild(fact('Cost', fmtUsd(body.cost_usd)));
    const j = jaegerLink(id);
    if (j) sum.appendChild(j);

    // Legend: one swatch per component present.
    const comps = [...new Set(ordered.map((s) => component(s.name)))].sort();
    const legend = $('wf-legend');
    for (const c of comps) legend.appendChild(el('span', { className: 'legend-item' }, el('span', { className: 'swatch', style: { background: colorFor(c) } }), c));
    legend.appendChild(el('span', { className: 'legend-item' }, el('span', { className: 'swatch err' }), 'error'));

    // Time axis.
    const step = niceStep(total, 5);
    const axis = el('div', { className: 'wf-axis' });
    for (let t = 0; t <= total + 1; t += step) {
      const pct = (100 * t) / total;
      if (pct > 100.01) break;
      axis.appendChild(el('span', { className: 'tick', style: { left: pct + '%' }, text: t === 0 ? '0' : AF.fmtMs(t / 1e6) }));
    }
    wf.appendChild(el('div', { className: 'wf-row wf-head' }, el('div', { className: 'wf-label', text: 'Span' }), el('div', { className: 'wf-track' }, axis)));

    const frag = document.createDocumentFragment();
    const shown = ordered.slice(0, MAX_WF_ROWS);
    for (const s of shown) {
      const left = (100 * Number(s.start - t0)) / total;
      const width = (100 * Number(s.end - s.start)) / total;
      const comp = component(s.name);
      const durMs = nsToMs(s.end - s.start);
      const bar = el('div', { className: 'wf-bar', style: { left: left + '%', width: 'max(2px, ' + width + '%)', background: colorFor(comp) } });
      const label = el(
        'div',
        { className: 'wf-label', style: { paddingLeft: 6 + Math.min(s.depth, 20) * 14 + 'px' }, title: s.name },
        s.error ? el('span', { className: 'err-mark', text: '!', title: 'error' }) : null,
        el('span', { className: 'wf-name', text: s.name || '(unnamed)' }),
        s.service && services.length > 1 ? el('span', { className: 'wf-svc', text: s.service }) : null,
        AF.num(attr(s.attrs, 'agentaflow.cost.usd')) ? el('span', { className: 'wf-cost', text: fmtUsd(attr(s.attrs, 'agentaflow.cost.usd')), title: 'agentaflow.cost.usd' }) : null,
      );
      // The duration label goes right of the bar, or inside it near the right edge (or left
      // of it, for a short bar) where the bar reaches the end of the axis.
      let durStyle = { left: 'calc(' + (left + width) + '% + 4px)' };
      let durCls = 'wf-dur';
      if (left + width > 80) {
        if (width > 12) {
          durStyle = { right: 'calc(' + (100 - left - width) + '% + 4px)' };
          durCls += ' inside';
        } else durStyle = { right: 'calc(' + (100 - left) + '% + 4px)' };
      }
      const dur = el('span', { className: durCls, text: AF.fmtMs(durMs), style: durStyle });
      const row = el('div', { className: 'wf-row' + (s.error ? ' err' : '') + (s.orphan ? ' orphan' : ''), dataset: { spanId: s.id }, tabIndex: 0 }, label, el('div', { className: 'wf-track' }, bar, dur));
      row.addEventListener('click', () => select(s.id));
      row.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          select(s.id);
        }
      });
      s.row = row;
      frag.appendChild(row);
    }
    const rows = el('div', { className: 'wf-rows' });
    rows.appendChild(frag);
    wf.appendChild(rows);
    if (ordered.length > shown.length) wf.appendChild(el('p', { className: 'muted', text: 'Showing the first ' + shown.length + ' of ' + ordered.length + ' spans.' }));
    // An error span is the likeliest reason to open a trace: show it first.
    const firstErr = shown.find((s) => s.error);
    select((firstErr || root).id);
  }

  function resetDetail() {
    const d = $('span-detail');
    AF.clear(d);
    d.appendChild(el('p', { className: 'muted', text: 'Click a span to see its attributes, events and links.' }));
    st.selected = null;
  }

  function kvTable(list, empty) {
    if (!list.length) return el('p', { className: 'muted small', text: empty });
    const tb = el('tbody');
    for (const [k, v] of list) tb.appendChild(el('tr', null, el('th', { text: k }), el('td', { className: 'mono', text: show(v) })));
    return el('table', { className: 'kv' }, tb);
  }

  function select(spanId) {
    const tr = st.trace;
    if (!tr) return;
    const s = tr.byId.get(spanId);
    if (!s) return;
    if (st.selected && st.selected.row) st.selected.row.classList.remove('selected');
    st.selected = s;
    if (s.row) s.row.classList.add('selected');
    const raw = s.raw;
    const d = $('span-detail');
    AF.clear(d);
    d.appendChild(el('h3', { className: 'span-title', text: s.name || '(unnamed)' }));
    const facts = [
      ['Span ID', s.id],
      ['Parent', s.parent || '(root)'],
      ['Kind', kindText(raw.kind)],
      ['Service', s.service || DASH],
      ['Starts at', '+' + AF.fmtMs(nsToMs(s.start - tr.t0))],
      ['Duration', AF.fmtMs(nsToMs(s.end - s.start))],
      ['Status', statusText(raw)],
    ];
    const dl = el('table', { className: 'kv' });
    const tb = el('tbody');
    for (const [k, v] of facts) tb.appendChild(el('tr', k === 'Status' && s.error ? { className: 'bad' } : null, el('th', { text: k }), el('td', { className: 'mono', text: v })));
    dl.appendChild(tb);
    d.appendChild(dl);
    if (s.parent && tr.byId.has(s.parent)) d.appendChild(el('button', { type: 'button', className: 'link', text: '↑ parent span', onclick: () => select(s.parent) }));

    d.appendChild(el('h4', { text: 'Attributes (' + s.attrs.length + ')' }));
    d.appendChild(kvTable(s.attrs, 'No attributes.'));

    const events = AF.asList(raw.events);
    d.appendChild(el('h4', { text: 'Events (' + events.length + ')' }));
    if (!events.length) d.appendChild(el('p', { className: 'muted small', text: 'No events.' }));
    for (const e of events) {
      if (!e || typeof e !== 'object') continue;
      const t = ns(first(e.time_unix_nano, e.timeUnixNano, e.timestamp, e.time));
      const when = t !== null ? '+' + AF.fmtMs(nsToMs(t - s.start)) : DASH;
      const isExc = e.name === 'exception';
      d.appendChild(el('div', { className: 'event' + (isExc ? ' bad' : '') }, el('div', null, el('span', { className: 'muted', text: when + '  ' }), el('b', { text: e.name || '(unnamed)' })), kvTable(attrList(e.attributes), '')));
    }

    const links = AF.asList(raw.links);
    d.appendChild(el('h4', { text: 'Links (' + links.length + ')' }));
    if (!links.length) d.appendChild(el('p', { className: 'muted small', text: 'No links.' }));
    for (const l of links) {
      if (!l || typeof l !== 'object') continue;
      const tid = normTraceId(l.trace_id || l.traceId);
      const sid = String(l.span_id || l.spanId || '');
      d.appendChild(
        el(
          'div',
          { className: 'link-item' },
          tid ? el('a', { href: '#/traces/' + tid, className: 'mono', text: tid }) : el('span', { className: 'mono', text: String(l.trace_id || l.traceId || DASH) }),
          el('span', { className: 'mono muted', text: ' / ' + sid }),
          kvTable(attrList(l.attributes), ''),
        ),
      );
    }

    const res = raw.resource;
    if (res && typeof res === 'object') {
      const list = attrList(res.attributes || res);
      d.appendChild(el('h4', { text: 'Resource (' + list.length + ')' }));
      d.appendChild(kvTable(list, 'No resource attributes.'));
    }
  }

  // ---------------------------------------------------------------------------- entry points
  function init() {
    $('trace-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      st.limit = PAGE;
      loadList();
    });
    $('trace-filters').elements.error.addEventListener('change', () => {
      st.limit = PAGE;
      loadList();
    });
    $('trace-live').addEventListener('change', scheduleLive);
    $('trace-more').addEventListener('click', () => {
      st.limit += PAGE;
      renderList();
    });
    $('trace-search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const raw = ev.target.elements.trace_id.value;
      const id = normTraceId(raw);
      if (!id) {
        AF.toast('Not a trace id', 'Expected 32 hexadecimal digits.', 'warning');
        return;
      }
      location.hash = '#/traces/' + id;
    });
  }

  function showList() {
    st.visible = true;
    loadList();
    scheduleLive();
  }

  function showTrace(id) {
    st.visible = false;
    scheduleLive();
    st.trace = { want: normTraceId(id) };
    loadTrace(id);
  }

  function hide() {
    st.visible = false;
    scheduleLive();
  }

  // The Jaeger UI address arrived (or changed): links in the list and the open trace.
  function configChanged() {
    if (st.visible) renderList();
    const tr = st.trace;
    if (tr && tr.id && !$('view-trace').hidden && AF.jaegerUrl(tr.id) && !$('trace-summary').querySelector('.jaeger')) {
      const j = jaegerLink(tr.id);
      if (j) $('trace-summary').appendChild(j);
    }
  }

  AF.Traces = { init, showList, showTrace, hide, configChanged };
})();
