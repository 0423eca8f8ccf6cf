#!/usr/bin/env bash
# Side-by-side throughput of examples/service.rs with and without taskline
# (hooks + layer + flight recorder + OTLP export) under wrk load.
#
#   scripts/bench-service.sh [ROUNDS=5] [SECONDS=5]
#
# Needs `wrk` (Debian package) and, for the OTLP side, an endpoint: it starts
# VictoriaMetrics with scripts/victoria-metrics.sh when none is given in
# OTEL_EXPORTER_OTLP_ENDPOINT. Rounds alternate the two modes; each round's
# ratio is taskline / baseline, and the median and spread of those ratios are
# printed.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"; secs="${2:-5}"; port=3917
command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 2; }
cargo build -q --release --example service
bin="${CARGO_TARGET_DIR:-target}/release/examples/service"
if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
    scripts/victoria-metrics.sh fetch >/dev/null
    url=$(scripts/victoria-metrics.sh start | tail -1)
    trap 'scripts/victoria-metrics.sh stop >/dev/null 2>&1 || true' EXIT
    export OTEL_EXPORTER_OTLP_ENDPOINT="$url/opentelemetry"
fi
export OTEL_METRIC_EXPORT_INTERVAL=1000
run() { # mode -> requests/s
    local args=(--addr "127.0.0.1:$port" --flight-dir target/bench-service-flight)
    # TASKLINE_ARGS: extra flags for the taskline side, e.g. --layer.
    [ "$1" = baseline ] && args+=(--no-taskline) || args+=(--otlp ${TASKLINE_ARGS:-})
    "$bin" "${args[@]}" 2>/dev/null & local pid=$!
    for _ in $(seq 50); do curl -s "127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}'
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
ratios=()
printf '%-6s %14s %14s %8s\n' round baseline_rps taskline_rps ratio
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then b=$(run baseline); t=$(run taskline); else t=$(run taskline); b=$(run baseline); fi
    ratio=$(python3 -c "print(f'{$t/$b:.4f}')")
    ratios+=("$ratio")
    printf '%-6s %14s %14s %8s\n' "$r" "$b" "$t" "$ratio"
done
python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = sorted(float(x) for x in sys.argv[1:])
print(f"taskline/baseline throughput: median {statistics.median(r):.4f} (min {r[0]:.4f}, max {r[-1]:.4f}, {len(r)} rounds)")
PY
