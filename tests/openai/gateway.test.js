'use strict';
// node gateway.test.js AGENTAFLOW_BINARY
//
// The official openai npm client (pinned in package-lock.json) against the real daemon's
// OpenAI-compatible front door, with the daemon's gateway pointed at a loopback
// OpenAI-compatible backend written here. The backend streams slowly, records the
// traceparent it receives and notices a connection closed before its answer ended; an OTLP
// receiver here collects the daemon's spans, decoded with the interop suite's independent
// OpenTelemetry decoder.
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { OpenAI } = require('openai');

const root = require(path.join(__dirname, '..', 'interop', 'node_modules',
  '@opentelemetry/otlp-transformer/build/src/generated/root'));

const BIN = process.argv[2];
const TOKEN = 'sk-agentaflow-test';
const WORDS = ['Streaming', ' tokens', ' from', ' the', ' loopback', ' backend', ' one', ' at',
  ' a', ' time'];
const TOKEN_MS = 60; // the backend's delay between tokens

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------------------
// The loopback OpenAI-compatible backend.

const backend = { calls: [], closedEarly: 0, completed: 0 };

function chunk(res, obj) {
  res.write('data: ' + JSON.stringify(obj) + '\n\n');
}

function backendHandler(req, res) {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', async () => {
    const j = JSON.parse(body || '{}');
    const call = { path: req.url, traceparent: req.headers.traceparent || '', body: j };
    backend.calls.push(call);
    const id = 'loop-' + backend.calls.length;
    const text = WORDS.join('');
    const usage = { prompt_tokens: 7, completion_tokens: WORDS.length,
      total_tokens: 7 + WORDS.length };
    if (!j.stream) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id, object: 'chat.completion', created: 1, model: 'loop-upstream',
        choices: [{ index: 0, message: { role: 'assistant', content: text },
          finish_reason: 'stop' }], usage }));
      backend.completed++;
      return;
    }
    let finished = false;
    res.on('close', () => { if (!finished) backend.closedEarly++; });
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    if (j.messages && j.messages[0].content === 'flood') {
      // As fast as the daemon takes it: 200,000 tokens (about 30 MB of events downstream).
      const piece = 'x'.repeat(60);
      for (let i = 0; i < 200000 && !res.destroyed; i++) {
        const more = res.write('data: ' + JSON.stringify({ id, object: 'chat.completion.chunk',
          created: 1, model: 'loop-upstream', choices: [{ index: 0, delta: { content: piece },
            finish_reason: null }] }) + '\n\n');
        if (!more) {
          await new Promise((r) => {
            const done = () => { res.off('drain', done); res.off('close', done); r(); };
            res.on('drain', done);
            res.on('close', done);
          });
        }
      }
      if (!res.destroyed) { res.write('data: [DONE]\n\n'); finished = true; res.end(); }
      return;
    }
    for (const w of WORDS) {
      if (res.destroyed) return;
      chunk(res, { id, object: 'chat.completion.chunk', created: 1, model: 'loop-upstream',
        choices: [{ index: 0, delta: { content: w }, finish_reason: null }] });
      await sleep(TOKEN_MS);
    }
    if (res.destroyed) return;
    chunk(res, { id, object: 'chat.completion.chunk', created: 1, model: 'loop-upstream',
      choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    if (j.stream_options && j.stream_options.include_usage)
      chunk(res, { id, object: 'chat.completion.chunk', created: 1, model: 'loop-upstream',
        choices: [], usage });
    res.write('data: [DONE]\n\n');
    finished = true;
    backend.completed++;
    res.end();
  });
}

// ---------------------------------------------------------------------------------------
// The OTLP receiver: every export request's spans, decoded.

const spans = [];
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const hex = (b) => Buffer.from(b || []).toString('hex');

function attrs(s) {
  const out = {};
  for (const a of s.attributes) {
    const v = a.value;
    if (v.stringValue !== undefined && v.stringValue !== null && v.stringValue !== '')
      out[a.key] = v.stringValue;
    else if (v.intValue !== undefined && v.intValue !== null && v.intValue !== 0)
      out[a.key] = Number(v.intValue);
    else if (v.doubleValue) out[a.key] = v.doubleValue;
    else if (v.boolValue) out[a.key] = v.boolValue;
    else if (v.arrayValue) out[a.key] = v.arrayValue.values.map((x) => x.stringValue);
    else out[a.key] = v.stringValue || Number(v.intValue || 0);
  }
  return out;
}

function otlpHandler(req, res) {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const r = Request.decode(Buffer.concat(parts));
    for (const rsp of r.resourceSpans)
      for (const ss of rsp.scopeSpans)
        for (const s of ss.spans)
          spans.push({ name: s.name, kind: s.kind, traceId: hex(s.traceId), spanId: hex(s.spanId),
            parentId: hex(s.parentSpanId), attrs: attrs(s) });
    res.writeHead(200, { 'content-type': 'application/x-protobuf' });
    res.end();
  });
}

// ---------------------------------------------------------------------------------------
// The daemon.

let daemon, port, tmp, backendSrv, otlpSrv;

function listen(handler) {
  return new Promise((resolve) => {
    const srv = http.createServer(handler);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function getJson(p) {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return r.json();
}

async function loopLoad() {
  const m = await getJson('/api/v1/models');
  const inst = m.routing.instances.find((i) => i.id === 'loop-1');
  return inst.current_load;
}

function client(opts = {}) {
  return new OpenAI({ apiKey: TOKEN, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0,
    timeout: 20000, ...opts });
}

test.before(async () => {
  backendSrv = await listen(backendHandler);
  otlpSrv = await listen(otlpHandler);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'af-openai-'));
  const cfg = `service_name: agentaflow-openai-it
tracing:
  exporters:
    otlp_http:
      enabled: true
      endpoint: http://127.0.0.1:${otlpSrv.address().port}/v1/traces
performance:
  schedule_delay: 100ms
server:
  load_generator: false
serving:
  models:
    - id: loop-model
      owned_by: loopback
      pricing: {input_per_million: 3.0, output_per_million: 15.0}
      backends:
        - url: http://127.0.0.1:${backendSrv.address().port}
          id: loop-1
          max_load: 1
    - id: dead-model
      backends:
        - url: http://127.0.0.1:1
          id: dead-1
          connect_timeout: 500ms
`;
  fs.writeFileSync(path.join(tmp, 'agentaflow.yaml'), cfg);
  const portFile = path.join(tmp, 'ports');
  daemon = spawn(BIN, ['serve', '--config', path.join(tmp, 'agentaflow.yaml'), '--port', '0',
    '--metrics-port', '0', '--port-file', portFile, '--data-dir', ':memory:'],
  { env: { ...process.env, AGENTAFLOW_AUTH_TOKEN: TOKEN }, stdio: ['ignore', 'inherit',
    'inherit'] });
  const ports = await until('the port file', () => fs.existsSync(portFile) &&
    fs.readFileSync(portFile, 'utf8').trim());
  port = Number(ports.split(/\s+/)[0]);
  await until('the daemon', async () => {
    try { return (await fetch(`http://127.0.0.1:${port}/health`)).ok; } catch { return false; }
  });
});

test.after(async () => {
  if (daemon) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  }
  backendSrv && backendSrv.close();
  otlpSrv && otlpSrv.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------

test('models.list names the configured models', async () => {
  const ids = [];
  for await (const m of client().models.list()) ids.push(m.id);
  assert.ok(ids.includes('loop-model'), ids.join(','));
  assert.ok(ids.includes('dead-model'), ids.join(','));
});

test('a plain chat completion', async () => {
  const { data, response } = await client().chat.completions.create({
    model: 'loop-model', messages: [{ role: 'user', content: 'Say something' }],
    max_tokens: 32, temperature: 0.2 }).withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, WORDS.join(''));
  assert.equal(data.usage.prompt_tokens, 7);
  assert.equal(data.usage.completion_tokens, WORDS.length);
  // The backend received the trace the daemon answered with.
  const tr = response.headers.get('traceresponse');
  assert.match(tr, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
  const call = backend.calls[backend.calls.length - 1];
  assert.match(call.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
  assert.equal(call.traceparent.split('-')[1], tr.split('-')[1]);
});

test('a streamed chat completion arrives token by token', async () => {
  const t0 = performance.now();
  const { data: stream, response } = await client().chat.completions.create({
    model: 'loop-model', messages: [{ role: 'user', content: 'Stream please' }],
    stream: true, stream_options: { include_usage: true } }).withResponse();
  assert.equal(response.headers.get('content-type'), 'text/event-stream');
  let first = 0, text = '', usage = null, finish = null, contentChunks = 0;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta && ch.delta.content) {
      if (!first) first = performance.now() - t0;
      text += ch.delta.content;
      contentChunks++;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  const total = performance.now() - t0;
  assert.equal(text, WORDS.join(''));
  assert.equal(contentChunks, WORDS.length);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, { prompt_tokens: 7, completion_tokens: WORDS.length,
    total_tokens: 7 + WORDS.length });
  // Relayed as produced: the first token long before the last (the backend waits TOKEN_MS
  // between tokens, so the whole answer takes about WORDS.length * TOKEN_MS).
  assert.ok(first < total / 2, `first token at ${first.toFixed(1)} ms of ${total.toFixed(1)}`);
  console.log(`# time to first token ${first.toFixed(1)} ms, total ${total.toFixed(1)} ms`);
  const call = backend.calls[backend.calls.length - 1];
  assert.equal(call.body.stream, true);
  assert.equal(call.traceparent.split('-')[1], response.headers.get('traceresponse')
    .split('-')[1]);
});

test('a text completion', async () => {
  const r = await client().completions.create({ model: 'loop-model', prompt: 'Once',
    max_tokens: 16 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.total_tokens > 0);
});

test('errors surface as the client\'s error classes', async () => {
  await assert.rejects(client().chat.completions.create({ model: 'no-such-model',
    messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError, e.constructor.name);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.param, 'model');
    return true;
  });
  await assert.rejects(client({ apiKey: 'wrong' }).chat.completions.create({
    model: 'loop-model', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
    return true;
  });
  await assert.rejects(client().chat.completions.create({ model: 'loop-model',
    messages: 'not an array' }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.param, 'messages');
    return true;
  });
  await assert.rejects(client().chat.completions.create({ model: 'loop-model',
    messages: [{ role: 'user', content: 'x' }], temperature: 7 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name);
    assert.equal(e.param, 'temperature');
    return true;
  });
  await assert.rejects(client().chat.completions.create({ model: 'dead-model',
    messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name);
    assert.equal(e.status, 503);
    return true;
  });
  // loop-1 takes one call at a time (max_load 1): a second while a stream runs is refused.
  const held = await client().chat.completions.create({ model: 'loop-model',
    messages: [{ role: 'user', content: 'hold' }], stream: true });
  const it = held[Symbol.asyncIterator]();
  await it.next();
  await assert.rejects(client().chat.completions.create({ model: 'loop-model',
    messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name);
    assert.equal(e.status, 429);
    return true;
  });
  for (;;) if ((await it.next()).done) break;
});

test('aborting mid-stream cancels the backend call', async () => {
  await until('loop-1 idle', async () => (await loopLoad()) === 0);
  const before = backend.closedEarly;
  const ac = new AbortController();
  const stream = await client().chat.completions.create({ model: 'loop-model',
    messages: [{ role: 'user', content: 'abort me' }], stream: true }, { signal: ac.signal });
  let got = 0;
  try {
    for await (const c of stream) {
      if (c.choices[0] && c.choices[0].delta.content && ++got === 2) ac.abort();
    }
  } catch (e) {
    // The client ends the iteration on abort, or throws its abort error.
    assert.ok(e.name === 'AbortError' || e instanceof OpenAI.APIUserAbortError, String(e));
  }
  assert.equal(got, 2);
  // The daemon saw the client go and closed its backend connection before the answer ended,
  // and the instance has no call in flight any more.
  await until('the backend to see its connection closed', () => backend.closedEarly > before);
  await until('loop-1 in-flight count 0', async () => (await loopLoad()) === 0);
});

test('a client that stops reading is cut off, and its backend call cancelled', async () => {
  await until('loop-1 idle', async () => (await loopLoad()) === 0);
  const before = backend.closedEarly;
  const body = JSON.stringify({ model: 'loop-model', stream: true,
    messages: [{ role: 'user', content: 'flood' }] });
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}` +
    `\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  // Read the head and the first events, then stop reading for good.
  await new Promise((r) => sock.once('data', r));
  sock.pause();
  await until('the backend to see the daemon hang up', () => backend.closedEarly > before, 30000);
  await until('loop-1 in-flight count 0', async () => (await loopLoad()) === 0);
  sock.destroy();
  // The daemon is fine: the next call is answered.
  const r = await client().chat.completions.create({ model: 'loop-model',
    messages: [{ role: 'user', content: 'after the flood' }] });
  assert.equal(r.choices[0].message.content, WORDS.join(''));
});

test('the exported spans carry the GenAI attributes', async () => {
  const server = await until('the SERVER span of a streamed chat', () => spans.find((s) =>
    s.name === 'api_requests.POST /v1/chat/completions' && s.attrs['gen_ai.usage.output_tokens']
    && s.attrs['gen_ai.response.time_to_first_chunk']), 15000);
  assert.equal(server.kind, 2); // SERVER
  assert.equal(server.attrs['gen_ai.operation.name'], 'chat');
  assert.equal(server.attrs['gen_ai.request.model'], 'loop-model');
  assert.equal(server.attrs['gen_ai.response.model'], 'loop-upstream');
  assert.match(server.attrs['gen_ai.response.id'], /^chatcmpl-/);
  assert.equal(server.attrs['gen_ai.usage.input_tokens'], 7);
  assert.equal(server.attrs['gen_ai.usage.output_tokens'], WORDS.length);
  assert.deepEqual(server.attrs['gen_ai.response.finish_reasons'], ['stop']);
  const withParams = spans.find((s) => s.name === 'api_requests.POST /v1/chat/completions' &&
    s.attrs['gen_ai.request.max_tokens'] === 32);
  assert.ok(withParams, 'the plain call\'s SERVER span has gen_ai.request.max_tokens');
  assert.equal(withParams.attrs['gen_ai.request.temperature'], 0.2);
  // The core's CLIENT span is in the same trace, and it is the parent the backend saw.
  const clientSpan = await until('the CLIENT span', () => spans.find((s) =>
    s.traceId === server.traceId && s.kind === 3 && s.name === 'chat loop-model'));
  const seen = backend.calls.find((c) => c.traceparent.split('-')[1] === server.traceId);
  assert.ok(seen, 'the backend saw the trace');
  assert.equal(seen.traceparent.split('-')[2], clientSpan.spanId);
  const inference = await until('model_serving.inference', () => spans.find((s) =>
    s.traceId === server.traceId && s.name === 'model_serving.inference'));
  assert.ok(inference.attrs['agentaflow.cost.usd'] > 0, JSON.stringify(inference.attrs));
});
