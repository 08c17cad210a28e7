#!/bin/sh
# check_operating.sh AGENTAFLOW_BINARY
#
# What operators' tooling expects of the daemon. The shipped monitoring files stay true to it:
#  1. promtool check rules and promtool test rules on deploy/prometheus/agentaflow-rules.yml;
#  2. every PromQL expression of deploy/grafana/agentaflow.json parses (promtool, through a
#     generated rules file);
#  3. every agentaflow_* metric that the dashboard or the rules name is exposed by a running
#     daemon (a histogram's _bucket/_sum/_count count as its family) — started with a data
#     directory and as the cluster scheduler, so the store and cluster families exist too;
#  4. the original project's checks pass: its compose health check `wget --spider /health`,
#     and its integration test's exact `<!DOCTYPE html>` at the start of the page.
# Exit 77 (skipped) when promtool or node are missing. Every wait is bounded.
set -u
BIN=$1
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
for t in promtool node curl wget; do
    command -v "$t" >/dev/null 2>&1 || { echo "skip: $t not installed"; exit 77; }
done
TMP=$(mktemp -d /tmp/af-mon-XXXXXX)
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

promtool check rules "$ROOT/deploy/prometheus/agentaflow-rules.yml" || fail "promtool check rules"
(cd "$HERE" && promtool test rules agentaflow-rules.test.yml) || fail "promtool test rules"

AF_NAMES_OUT="$TMP/names" node "$HERE/exprs.js" "$ROOT/deploy/grafana/agentaflow.json" \
    "$ROOT/deploy/prometheus/agentaflow-rules.yml" >"$TMP/dashboard-rules.yml" ||
    fail "cannot read the dashboard"
promtool check rules "$TMP/dashboard-rules.yml" >"$TMP/check.log" 2>&1 ||
    { cat "$TMP/check.log"; fail "a dashboard expression does not parse"; }
echo "dashboard: $(grep -c 'record:' "$TMP/dashboard-rules.yml") expressions parse"

"$BIN" serve --port 0 --metrics-port 0 --port-file "$TMP/ports" --gpu-backend simulated \
    --data-dir "$TMP/data" --cluster \
    >"$TMP/daemon.log" 2>&1 &
DPID=$!
i=0
while [ ! -s "$TMP/ports" ]; do
    i=$((i + 1)); [ $i -gt 200 ] && fail "daemon did not start: $(tail -5 "$TMP/daemon.log")"; sleep 0.1
done
read -r PORT MPORT <"$TMP/ports"
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$TMP/metrics.txt" || fail "GET /metrics"
sed -n 's/^# TYPE \([a-z0-9_]*\) .*/\1/p' "$TMP/metrics.txt" | sort -u >"$TMP/families"
missing=0
while read -r name; do
    base=$(echo "$name" | sed 's/_\(bucket\|sum\|count\)$//')
    if ! grep -qx "$name" "$TMP/families" && ! grep -qx "$base" "$TMP/families"; then
        echo "not exposed by the daemon: $name"
        missing=$((missing + 1))
    fi
done <"$TMP/names"
[ "$missing" -eq 0 ] || fail "$missing metric names in the dashboard or rules are not exposed"
echo "metrics: all $(wc -l <"$TMP/names") names exposed"

wget -q --spider "http://127.0.0.1:$PORT/health" || fail "wget --spider /health"
curl -sf "http://127.0.0.1:$PORT/" | head -c 15 | grep -qx '<!DOCTYPE html>' ||
    fail "the page does not start with <!DOCTYPE html>"
echo "original tooling: wget --spider /health and <!DOCTYPE html> ok"
