/*
 * The LLM gateway panel: sends the prompt to the daemon's own OpenAI-compatible
 * POST /v1/chat/completions with stream: true and renders each token as it arrives (fetch
 * and a ReadableStream reading the server-sent events), then shows the time to first token,
 * the usage and a link to the call's trace (the traceresponse header names it).
 *
 * Self-contained: it reads the tab's API token where app.js keeps it (sessionStorage
 * "agentaflow.token") and writes text only through textContent.
 */
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const st = { ctl: null };

  function token() {
    try {
      return sessionStorage.getItem('agentaflow.token') || '';
    } catch (e) {
      return '';
    }
  }
  function headers(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    if (token()) h.Authorization = 'Bearer ' + token();
    return h;
  }
  function info(text, link) {
    const p = $('chat-info');
    p.textContent = text;
    if (link) {
      p.appendChild(document.createTextNode(' '));
      const a = document.createElement('a');
      a.href = link.href;
      a.textContent = link.text;
      p.appendChild(a);
    }
  }

  async function loadModels() {
    try {
      const r = await fetch('/v1/models', { headers: headers(false) });
      if (!r.ok) return;
      const body = await r.json();
      const sel = $('chat-model');
      sel.textContent = '';
      for (const m of body.data || []) {
        const o = document.createElement('option');
        o.value = o.textContent = m.id;
        sel.appendChild(o);
      }
    } catch (e) {
      /* the panel stays usable once the daemon answers */
    }
  }

  // Splits the server-sent events in buf; returns the unfinished rest.
  function events(buf, onData) {
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = ev
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) onData(data);
    }
    return buf;
  }

  async function send(ev) {
    ev.preventDefault();
    const out = $('chat-output');
    out.textContent = '';
    const ctl = new AbortController();
    st.ctl = ctl;
    $('chat-send').disabled = true;
    $('chat-stop').disabled = false;
    const t0 = performance.now();
    let ttft = null, usage = null, trace = '', failed = '';
    try {
      const r = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: headers(true),
        signal: ctl.signal,
        body: JSON.stringify({
          model: $('chat-model').value,
          messages: [{ role: 'user', content: $('chat-prompt').value }],
          max_tokens: Number($('chat-max').value) || 64,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      const tr = r.headers.get('traceresponse') || '';
      trace = /^00-([0-9a-f]{32})-/.test(tr) ? tr.slice(3, 35) : '';
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        failed = (body.error && body.error.message) || 'HTTP ' + r.status;
      } else {
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf = events(buf + dec.decode(value, { stream: true }), (data) => {
            if (data === '[DONE]') return;
            const c = JSON.parse(data);
            if (c.error) failed = c.error.message;
            if (c.usage) usage = c.usage;
            const d = c.choices && c.choices[0] && c.choices[0].delta;
            if (d && d.content) {
              if (ttft === null) ttft = performance.now() - t0;
              out.textContent += d.content;
              out.scrollTop = out.scrollHeight;
            }
          });
        }
      }
    } catch (e) {
      failed = e.name === 'AbortError' ? 'stopped' : String(e.message || e);
    }
    const total = performance.now() - t0;
    const parts = [];
    if (failed) parts.push(failed === 'stopped' ? 'Stopped.' : 'Failed: ' + failed + '.');
    if (ttft !== null) parts.push('First token after ' + ttft.toFixed(0) + ' ms');
    parts.push('total ' + total.toFixed(0) + ' ms');
    if (usage) parts.push(usage.prompt_tokens + ' prompt + ' + usage.completion_tokens + ' completion tokens');
    info(parts.join(', ') + '.', trace ? { href: '#/traces/' + trace, text: 'Open its trace' } : null);
    $('chat-send').disabled = false;
    $('chat-stop').disabled = true;
    st.ctl = null;
  }

  function init() {
    if (!$('chat-form')) return;
    $('chat-form').addEventListener('submit', send);
    $('chat-stop').addEventListener('click', () => st.ctl && st.ctl.abort());
    loadModels();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
