'use strict';
// node decode_spans.js FILE TRACE_ID PARENT_SPAN_ID
//
// Decodes an OTLP/protobuf ExportTraceServiceRequest the daemon sent to the loopback receiver
// with the OpenTelemetry JS generated code (the interop suite's pinned node_modules) and checks
// that the daemon's SERVER span continued the caller's trace.
const fs = require('fs');
const path = require('path');
const root = require(path.join(__dirname, '..', 'interop', 'node_modules',
  '@opentelemetry/otlp-transformer/build/src/generated/root'));

const [file, traceId, parentId] = process.argv.slice(2);
const Request = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const req = Request.decode(fs.readFileSync(file));
const hex = (b) => Buffer.from(b || []).toString('hex');
let server = null;
let service = null;
for (const rs of req.resourceSpans) {
  for (const ss of rs.scopeSpans) {
    for (const s of ss.spans) {
      if (hex(s.traceId) === traceId && s.name === 'api_requests.GET /api/v1/system/stats') {
        server = s;
        const attr = rs.resource.attributes.find((a) => a.key === 'service.name');
        service = attr && attr.value.stringValue;
      }
    }
  }
}
const fail = (m) => { console.error('decode_spans: ' + m); process.exit(1); };
if (!server) fail('no api_requests span of trace ' + traceId);
if (hex(server.parentSpanId) !== parentId) fail('parent ' + hex(server.parentSpanId));
if (server.kind !== 2) fail('kind ' + server.kind + ', want SERVER (2)');
if (service !== 'agentaflow-otlp-it') fail('service.name ' + service);
const status = server.attributes.find((a) => a.key === 'http.status_code');
if (!status || String(status.value.intValue) !== '200') fail('http.status_code missing');
console.log('decode_spans: ok: ' + server.name + ' continues ' + traceId);
