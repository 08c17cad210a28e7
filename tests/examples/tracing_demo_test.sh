#!/bin/sh
# tracing_demo prints every span as OTLP/JSON; the document's operations must all be there,
# the API request must continue the caller's trace, and the health check must be healthy.
set -eu
out=$("$1" 2>/tmp/tracing_demo.$$.err) || { cat /tmp/tracing_demo.$$.err; exit 1; }
err=$(cat /tmp/tracing_demo.$$.err)
rm -f /tmp/tracing_demo.$$.err
for name in gpu_scheduling.register_gpu gpu_scheduling.submit_workload gpu_scheduling.schedule \
    metrics_collection.collect_metrics cost_tracking.record_cost cost_tracking.get_cost_summary \
    model_serving.inference "api_requests.GET /api/v1/gpus" nested.grandchild_operation \
    demo.async_batch_report; do
    echo "$out" | grep -q "\"name\":\"$name\"" || { echo "missing span: $name"; exit 1; }
done
echo "$out" | grep "api_requests.GET" | grep -q '"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"' ||
    { echo "the API request did not continue the incoming trace"; exit 1; }
echo "$out" | grep -q '"name":"exception"' || { echo "no exception event"; exit 1; }
echo "$err" | grep -q '"status":"healthy"' || { echo "health not healthy: $err"; exit 1; }
echo "tracing_demo: all document spans present"
