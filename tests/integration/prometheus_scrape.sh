#!/bin/sh
# prometheus_scrape.sh AGENTAFLOW_BINARY
#
# 1. promtool check metrics passes on the daemon's text exposition (0.0.4);
# 2. a real Prometheus, started here on loopback with a 1 s scrape interval, scrapes the
#    daemon (it negotiates OpenMetrics first) until its target reports health "up", and a
#    query returns our GPU series.
# Exit 77 (skipped) when promtool, prometheus or curl are missing. Every wait is bounded.
set -u
BIN=$1
for t in promtool prometheus curl; do
    command -v "$t" >/dev/null 2>&1 || { echo "skip: $t not installed"; exit 77; }
done
TMP=$(mktemp -d /tmp/af-prom-XXXXXX)
DPID=""; PPID_PROM=""
cleanup() {
    [ -n "$PPID_PROM" ] && kill "$PPID_PROM" 2>/dev/null && wait "$PPID_PROM" 2>/dev/null
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$TMP/prom.log" ] && tail -20 "$TMP/prom.log"; exit 1; }

"$BIN" serve --port 0 --metrics-port 0 --port-file "$TMP/ports" --gpu-backend simulated \
    --data-dir :memory: \
    >"$TMP/daemon.log" 2>&1 &
DPID=$!
i=0
while [ ! -s "$TMP/ports" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && fail "daemon did not start"; sleep 0.1
done
read -r PORT MPORT <"$TMP/ports"

# Let one inference and one workload through so histograms have buckets.
curl -sf -X POST "http://127.0.0.1:$PORT/api/v1/inference" -H 'Content-Type: application/json' \
    -d '{"model_id":"model-gpt","input":"scrape me"}' >/dev/null || fail "inference"
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$TMP/metrics.txt" || fail "GET /metrics"
promtool check metrics <"$TMP/metrics.txt" || fail "promtool check metrics"
echo "promtool check metrics: ok ($(wc -l <"$TMP/metrics.txt") lines)"

cat >"$TMP/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: agentaflow-dashboard
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
YML
# Prometheus on a loopback port below the kernel's ephemeral range (32768 up), so no outgoing
# connection holds it; a port some other listener took in the meantime makes Prometheus exit,
# and the next try picks another.
PP=""
for attempt in 1 2 3 4 5; do
    c=$(( 20000 + ( $(od -An -N2 -tu2 /dev/urandom) % 12000 ) ))
    curl -s -o /dev/null "http://127.0.0.1:$c/" 2>/dev/null && continue
    prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/data" \
        --web.listen-address="127.0.0.1:$c" >"$TMP/prom.log" 2>&1 &
    PPID_PROM=$!
    i=0
    while kill -0 $PPID_PROM 2>/dev/null; do
        if curl -s "http://127.0.0.1:$c/api/v1/targets" 2>/dev/null | grep -q '"health":"up"'; then
            PP=$c
            break
        fi
        i=$((i + 1)); [ $i -gt 600 ] && {
            curl -s "http://127.0.0.1:$c/api/v1/targets"; fail "target never up"; }
        sleep 0.1
    done
    [ -n "$PP" ] && break
    echo "prometheus on port $c exited (attempt $attempt): $(tail -n 1 "$TMP/prom.log")"
done
[ -n "$PP" ] || fail "prometheus did not start on any of 5 ports"
echo "prometheus target: up"
i=0
until curl -s "http://127.0.0.1:$PP/api/v1/query?query=agentaflow_gpu_temperature_celsius" |
        grep -q '"gpu_id":"gpu-0"'; do
    i=$((i + 1)); [ $i -gt 300 ] && fail "no agentaflow_gpu_temperature_celsius in Prometheus"
    sleep 0.1
done
curl -s "http://127.0.0.1:$PP/api/v1/query?query=agentaflow_inference_latency_seconds_count" |
    grep -q 'model-gpt' || fail "histogram not ingested"
echo "prometheus query: ok"
kill -TERM "$DPID"; wait "$DPID"; rc=$?; DPID=""
[ $rc -eq 0 ] || fail "daemon exit status $rc after SIGTERM"
exit 0
