'use strict';
// node decode_otlp.js proto|json FILE
//
// Decodes an ExportTraceServiceRequest written by interop_fixture.c with the OpenTelemetry
// JS project's own generated protobuf code (@opentelemetry/otlp-transformer, pinned in
// package.json) and checks every field against the values the fixture sets.
//   proto: ExportTraceServiceRequest.decode() on the bytes.
//   json:  OTLP/JSON -> hex ids turned into bytes (the one OTLP deviation from proto3 JSON)
//          -> ExportTraceServiceRequest.fromObject(); every key must be a known field.
const fs = require('fs');
const { check, fail } = require('./common');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const pb = root.opentelemetry.proto;
const Request = pb.collector.trace.v1.ExportTraceServiceRequest;

const hex = (b) => Buffer.from(b || []).toString('hex');
const long = (v) => (v === null || v === undefined ? '0' : v.toString());
// Fields left out on the wire read back as null here; proto3 gives them their zero value.
const str0 = (v) => (v === null || v === undefined ? '' : v);
const num0 = (v) => (v === null || v === undefined ? 0 : v);

function anyValue(v) {
  if (!v || !v.value) return { unset: true };
  switch (v.value) {
    case 'stringValue':
      return { stringValue: v.stringValue };
    case 'boolValue':
      return { boolValue: v.boolValue };
    case 'intValue':
      return { intValue: long(v.intValue) };
    case 'doubleValue':
      return { doubleValue: v.doubleValue };
    case 'arrayValue':
      return { arrayValue: (v.arrayValue.values || []).map(anyValue) };
    default:
      return { [v.value]: 'unexpected' };
  }
}

const attrs = (list) => (list || []).map((kv) => [kv.key, anyValue(kv.value)]);

function span(s) {
  return {
    traceId: hex(s.traceId),
    spanId: hex(s.spanId),
    traceState: str0(s.traceState),
    parentSpanId: hex(s.parentSpanId),
    flags: num0(s.flags),
    name: str0(s.name),
    kind: num0(s.kind),
    startTimeUnixNano: long(s.startTimeUnixNano),
    endTimeUnixNano: long(s.endTimeUnixNano),
    attributes: attrs(s.attributes),
    droppedAttributesCount: num0(s.droppedAttributesCount),
    events: (s.events || []).map((e) => ({
      timeUnixNano: long(e.timeUnixNano),
      name: str0(e.name),
      attributes: attrs(e.attributes),
      droppedAttributesCount: num0(e.droppedAttributesCount),
    })),
    droppedEventsCount: num0(s.droppedEventsCount),
    links: (s.links || []).map((l) => ({
      traceId: hex(l.traceId),
      spanId: hex(l.spanId),
      traceState: str0(l.traceState),
      attributes: attrs(l.attributes),
      droppedAttributesCount: num0(l.droppedAttributesCount),
      flags: num0(l.flags),
    })),
    droppedLinksCount: num0(s.droppedLinksCount),
    status: s.status ? { code: num0(s.status.code), message: str0(s.status.message) } : null,
  };
}

function normalize(req) {
  return (req.resourceSpans || []).map((rs) => ({
    resource: {
      attributes: attrs(rs.resource && rs.resource.attributes),
      droppedAttributesCount: rs.resource ? num0(rs.resource.droppedAttributesCount) : -1,
    },
    schemaUrl: str0(rs.schemaUrl),
    scopeSpans: (rs.scopeSpans || []).map((ss) => ({
      scope: ss.scope
        ? {
            name: str0(ss.scope.name),
            version: str0(ss.scope.version),
            attributes: attrs(ss.scope.attributes),
            droppedAttributesCount: num0(ss.scope.droppedAttributesCount),
          }
        : null,
      schemaUrl: str0(ss.schemaUrl),
      spans: (ss.spans || []).map(span),
    })),
  }));
}

// --- what interop_fixture.c encodes ---------------------------------------------------------
const TRACE = '0af7651916cd43dd8448eb211c80319c';
const scopeA = { name: 'scope.a', version: '1.0.0', attributes: [], droppedAttributesCount: 0 };
const scopeB = { name: 'scope.b', version: '', attributes: [], droppedAttributesCount: 0 };
const str = (v) => ({ stringValue: v });
const int = (v) => ({ intValue: v });

const span1 = {
  traceId: TRACE,
  spanId: 'b7ad6b7169203331',
  traceState: 'vendor=abc',
  parentSpanId: '',
  flags: 0x101,
  name: 'GET /v1/gpus',
  kind: 2,
  startTimeUnixNano: '1700000000123456789',
  endTimeUnixNano: '1700000000124956789',
  attributes: [
    ['http.method', str('GET')],
    ['note', str('quote " backslash \\ newline \n unicode \u00e9\u20ac')],
    ['cache.hit', { boolValue: false }],
    ['http.status_code', int('503')],
    ['big', int('9223372036854775807')],
    ['ratio', { doubleValue: 0.125 }],
    ['models', { arrayValue: [str('llama-3'), str('mistral'), str('')] }],
    ['flags', { arrayValue: [{ boolValue: true }, { boolValue: false }, { boolValue: true }] }],
    [
      'ints',
      {
        arrayValue: [int('-1'), int('0'), int('9007199254740993'), int('-9223372036854775808')],
      },
    ],
    [
      'doubles',
      { arrayValue: [{ doubleValue: 0.5 }, { doubleValue: -2.25 }, { doubleValue: 1e300 }] },
    ],
  ],
  droppedAttributesCount: 2,
  events: [
    {
      timeUnixNano: '1700000000123556789',
      name: 'gpu.assigned',
      attributes: [
        ['gpu.id', str('gpu-3')],
        ['queue.depth', int('12')],
      ],
      droppedAttributesCount: 1,
    },
    { timeUnixNano: '1700000000124000000', name: 'retry', attributes: [], droppedAttributesCount: 0 },
  ],
  droppedEventsCount: 3,
  links: [
    {
      traceId: 'f0e1d2c3b4a5968778695a4b3c2d1e0f',
      spanId: '1122334455667788',
      traceState: 'k=v',
      attributes: [
        ['link.reason', str('batch')],
        ['link.n', int('7')],
      ],
      droppedAttributesCount: 5,
      flags: 0x301,
    },
  ],
  droppedLinksCount: 4,
  status: { code: 2, message: 'boom' },
};
const span2 = {
  traceId: TRACE,
  spanId: '00f067aa0ba902b7',
  traceState: '',
  parentSpanId: 'b7ad6b7169203331',
  flags: 0x101,
  name: 'db.query',
  kind: 3,
  startTimeUnixNano: '1700000000123500000',
  endTimeUnixNano: '1700000000123900000',
  attributes: [['db.system', str('postgresql')]],
  droppedAttributesCount: 0,
  events: [],
  droppedEventsCount: 0,
  links: [],
  droppedLinksCount: 0,
  status: { code: 1, message: '' },
};
const span3 = {
  traceId: TRACE,
  spanId: '8000000000000001',
  traceState: '',
  parentSpanId: 'ffffffffffffffff',
  flags: 0x300,
  name: 'worker.step',
  kind: 1,
  startTimeUnixNano: '1700000001000000000',
  endTimeUnixNano: '1700000001000000999',
  attributes: [],
  droppedAttributesCount: 0,
  events: [],
  droppedEventsCount: 0,
  links: [],
  droppedLinksCount: 0,
  status: null,
};
const expected = [
  {
    resource: {
      attributes: [
        ['service.name', str('interop-svc')],
        ['host.name', str('node-7')],
        ['process.pid', int('4242')],
        ['gpu.memory_gb', { doubleValue: 79.5 }],
        ['deployment.canary', { boolValue: true }],
      ],
      droppedAttributesCount: 0,
    },
    schemaUrl: 'https://opentelemetry.io/schemas/1.24.0',
    scopeSpans: [
      { scope: scopeA, schemaUrl: 'https://example.com/scope-a', spans: [span1, span3] },
      { scope: scopeB, schemaUrl: '', spans: [span2] },
    ],
  },
];

// --- JSON: OTLP-specific id handling and a strict key check ---------------------------------
const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);

// Hex ids -> Buffers, so fromObject() sees bytes; any other string under an id key is an error.
function idsToBytes(v, path) {
  if (Array.isArray(v)) return v.map((x, i) => idsToBytes(x, `${path}[${i}]`));
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    if (ID_KEYS.has(k)) {
      if (typeof x !== 'string' || !/^([0-9a-f]{2})*$/.test(x))
        fail(`${path}.${k}: id must be lower-case hex, got ${JSON.stringify(x)}`);
      out[k] = Buffer.from(x, 'hex');
    } else {
      out[k] = idsToBytes(x, `${path}.${k}`);
    }
  }
  return out;
}

// Every key of the input must survive fromObject()/toObject(): unknown or misspelled keys
// (snake_case, typos) would be dropped silently by fromObject.
function keyPaths(v, path, out) {
  if (Array.isArray(v)) v.forEach((x, i) => keyPaths(x, `${path}[${i}]`, out));
  else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v))
    for (const [k, x] of Object.entries(v)) {
      out.add(`${path}.${k}`);
      keyPaths(x, `${path}.${k}`, out);
    }
  return out;
}

function checkJsonTypes(v, path) {
  // 64-bit integers as strings, enums and 32-bit counts as numbers (OTLP/JSON rules).
  if (Array.isArray(v)) return v.forEach((x, i) => checkJsonTypes(x, `${path}[${i}]`));
  if (v === null || typeof v !== 'object') return;
  for (const [k, x] of Object.entries(v)) {
    if (/UnixNano$|^intValue$/.test(k) && typeof x !== 'string')
      fail(`${path}.${k}: 64-bit integer must be a string, got ${JSON.stringify(x)}`);
    if (/^(kind|code|flags)$|Count$/.test(k) && typeof x !== 'number')
      fail(`${path}.${k}: must be a JSON number, got ${JSON.stringify(x)}`);
    checkJsonTypes(x, `${path}.${k}`);
  }
}

function decodeJson(text) {
  let obj;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    fail(`otlp.json is not valid JSON: ${e.message}`);
  }
  checkJsonTypes(obj, '$');
  const withBytes = idsToBytes(obj, '$');
  const msg = Request.fromObject(withBytes);
  const back = Request.toObject(msg, { longs: String, enums: Number, bytes: Buffer });
  const have = keyPaths(back, '$', new Set());
  for (const p of keyPaths(withBytes, '$', new Set()))
    if (!have.has(p)) fail(`${p}: not a field of ExportTraceServiceRequest`);
  return msg;
}

const [mode, file] = process.argv.slice(2);
if (!file || (mode !== 'proto' && mode !== 'json')) fail('usage: decode_otlp.js proto|json FILE');
let msg;
if (mode === 'proto') {
  try {
    msg = Request.decode(fs.readFileSync(file));
  } catch (e) {
    fail(`protobuf decode failed: ${e.message}`);
  }
} else {
  msg = decodeJson(fs.readFileSync(file, 'utf8'));
}
check(`otlp_${mode}`, normalize(msg), expected);
