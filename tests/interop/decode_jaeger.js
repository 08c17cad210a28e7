'use strict';
// node decode_jaeger.js FILE
//
// Decodes the jaeger.thrift Batch written by interop_fixture.c with thriftrw (pinned in
// package.json) and the jaeger.thrift IDL shipped in jaeger-client, and checks every field
// against the values the fixture sets. thriftrw rejects missing required fields, wrong
// field types and trailing bytes.
const fs = require('fs');
const path = require('path');
const { check, fail } = require('./common');
const { Thrift } = require('thriftrw');

const idl = path.join(
  path.dirname(require.resolve('jaeger-client/package.json')),
  'dist/src/jaeger-idl/thrift/jaeger.thrift'
);
const thrift = new Thrift({ source: fs.readFileSync(idl, 'utf8'), allowOptionalArguments: true });
const Batch = thrift.getType('Batch');

// i64 values arrive as 8-byte big-endian Buffers; compare them as signed decimal strings.
const i64 = (b) => (Buffer.isBuffer(b) ? b.readBigInt64BE(0).toString() : `not an i64: ${b}`);
const signedHex = (h) => BigInt.asIntN(64, BigInt('0x' + h)).toString();

function tag(t) {
  const value = {
    STRING: t.vStr,
    DOUBLE: t.vDouble,
    BOOL: t.vBool,
    LONG: t.vLong !== null && t.vLong !== undefined ? i64(t.vLong) : undefined,
  }[t.vType];
  // Exactly one value field may be set, the one vType names.
  const set = ['vStr', 'vDouble', 'vBool', 'vLong', 'vBinary'].filter(
    (k) => t[k] !== null && t[k] !== undefined
  );
  return [t.key, t.vType, value, set.length];
}

const tags = (list) => (list === null || list === undefined ? null : list.map(tag));

function normalize(b) {
  return {
    process: { serviceName: b.process.serviceName, tags: tags(b.process.tags) },
    spans: b.spans.map((s) => ({
      traceIdLow: i64(s.traceIdLow),
      traceIdHigh: i64(s.traceIdHigh),
      spanId: i64(s.spanId),
      parentSpanId: i64(s.parentSpanId),
      operationName: s.operationName,
      references:
        s.references === null || s.references === undefined
          ? null
          : s.references.map((r) => ({
              refType: r.refType,
              traceIdLow: i64(r.traceIdLow),
              traceIdHigh: i64(r.traceIdHigh),
              spanId: i64(r.spanId),
            })),
      flags: s.flags,
      startTime: i64(s.startTime),
      duration: i64(s.duration),
      tags: tags(s.tags),
      logs:
        s.logs === null || s.logs === undefined
          ? null
          : s.logs.map((l) => ({ timestamp: i64(l.timestamp), fields: tags(l.fields) })),
    })),
  };
}

// --- what interop_fixture.c encodes ---------------------------------------------------------
const S = (k, v) => [k, 'STRING', v, 1];
const L = (k, v) => [k, 'LONG', v, 1];
const scopeA = [
  S('otel.scope.name', 'scope.a'),
  S('otel.library.name', 'scope.a'),
  S('otel.scope.version', '1.0.0'),
  S('otel.library.version', '1.0.0'),
];
const expected = {
  process: {
    serviceName: 'interop-svc',
    tags: [
      S('host.name', 'node-7'),
      L('process.pid', '4242'),
      ['gpu.memory_gb', 'DOUBLE', 79.5, 1],
      ['deployment.canary', 'BOOL', true, 1],
    ],
  },
  spans: [
    {
      traceIdLow: signedHex('8448eb211c80319c'),
      traceIdHigh: signedHex('0af7651916cd43dd'),
      spanId: signedHex('b7ad6b7169203331'),
      parentSpanId: '0',
      operationName: 'GET /v1/gpus',
      references: [
        {
          refType: 'FOLLOWS_FROM',
          traceIdLow: signedHex('78695a4b3c2d1e0f'),
          traceIdHigh: signedHex('f0e1d2c3b4a59687'),
          spanId: signedHex('1122334455667788'),
        },
      ],
      flags: 1,
      startTime: '1700000000123456',
      duration: '1500',
      tags: [
        S('http.method', 'GET'),
        S('note', 'quote " backslash \\ newline \n unicode \u00e9\u20ac'),
        ['cache.hit', 'BOOL', false, 1],
        L('http.status_code', '503'),
        L('big', '9223372036854775807'),
        ['ratio', 'DOUBLE', 0.125, 1],
        S('models', '["llama-3","mistral",""]'),
        S('flags', '[true,false,true]'),
        S('ints', '[-1,0,9007199254740993,-9223372036854775808]'),
        S('doubles', '[0.5,-2.25,1e+300]'),
        S('span.kind', 'server'),
        S('otel.status_code', 'ERROR'),
        ['error', 'BOOL', true, 1],
        S('otel.status_description', 'boom'),
        ...scopeA,
        L('otel.dropped_attributes_count', '2'),
        L('otel.dropped_events_count', '3'),
        L('otel.dropped_links_count', '4'),
        S('w3c.tracestate', 'vendor=abc'),
      ],
      logs: [
        {
          timestamp: '1700000000123556',
          fields: [
            S('gpu.id', 'gpu-3'),
            L('queue.depth', '12'),
            S('event', 'gpu.assigned'),
            L('otel.event.dropped_attributes_count', '1'),
          ],
        },
        { timestamp: '1700000000124000', fields: [S('event', 'retry')] },
      ],
    },
    {
      traceIdLow: signedHex('8448eb211c80319c'),
      traceIdHigh: signedHex('0af7651916cd43dd'),
      spanId: signedHex('00f067aa0ba902b7'),
      parentSpanId: signedHex('b7ad6b7169203331'),
      operationName: 'db.query',
      references: null,
      flags: 1,
      startTime: '1700000000123500',
      duration: '400',
      tags: [
        S('db.system', 'postgresql'),
        S('span.kind', 'client'),
        S('otel.status_code', 'OK'),
        S('otel.scope.name', 'scope.b'),
        S('otel.library.name', 'scope.b'),
      ],
      logs: null,
    },
    {
      traceIdLow: signedHex('8448eb211c80319c'),
      traceIdHigh: signedHex('0af7651916cd43dd'),
      spanId: signedHex('8000000000000001'),
      parentSpanId: '-1',
      operationName: 'worker.step',
      references: null,
      flags: 0,
      startTime: '1700000001000000',
      duration: '0',
      tags: scopeA,
      logs: null,
    },
  ],
};

const file = process.argv[2];
if (!file) fail('usage: decode_jaeger.js FILE');
let batch;
try {
  batch = Batch.fromBuffer(fs.readFileSync(file));
} catch (e) {
  fail(`thrift decode failed: ${e.message}`);
}
check('jaeger_thrift', normalize(batch), expected);
