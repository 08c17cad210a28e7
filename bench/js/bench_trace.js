'use strict';
/*
 * The OpenTelemetry JS SDK on bench_trace's span: a sampled root span named
 * gpu_scheduling.schedule with the same four attributes (string, int, double, bool), one
 * event and end, through BasicTracerProvider + BatchSpanProcessor (default queue 2048,
 * batch 512) into an exporter that discards. Prints `js_span_ns value ns`.
 *
 * Node runs the processor's exports on the same thread, from the event loop: spans are made
 * in chunks of 512 with a turn of the event loop after each, so the exports run (as the C
 * SDK's worker thread does) instead of the queue filling and dropping; that time counts.
 * Best of five runs, as in bench_trace.
 *
 * Usage: node bench_trace.js [iterations]   (default 1,000,000)
 */
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const discard = {
  export(spans, done) {
    done({ code: 0 });
  },
  shutdown() {
    return Promise.resolve();
  },
};

const bsp = new BatchSpanProcessor(discard);
const provider = new BasicTracerProvider({ spanProcessors: [bsp] });
const tracer = provider.getTracer('bench', '1');
const attrs = {
  'gpu.id': 'gpu-0',
  'workload.priority': 3,
  'gpu.utilization': 87.5,
  'gpu.available': true,
};

function chunk(n) {
  for (let i = 0; i < n; i++) {
    const s = tracer.startSpan('gpu_scheduling.schedule', { root: true, attributes: attrs });
    s.addEvent('scheduling.completed');
    s.end();
  }
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

async function timeOnce(iters) {
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < iters; done += 512) {
    chunk(Math.min(512, iters - done));
    await turn();
  }
  return Number(process.hrtime.bigint() - t0) / iters;
}

async function main() {
  const iters = Math.max(1000, Number(process.argv[2] || 1000000));
  await timeOnce(Math.floor(iters / 10)); // warm up: JIT, processor
  let best = Infinity;
  for (let r = 0; r < 5; r++) best = Math.min(best, await timeOnce(Math.floor(iters / 5)));
  console.log(`js_span_ns ${best.toFixed(1)} ns`);
  await provider.shutdown();
}

main();
