#!/usr/bin/env bash
# Side-by-side throughput of examples/service.rs with and without taskline
# (hooks + flight recorder + OTLP export, optionally the layer) under wrk load.
#
#   scripts/bench-service.sh [ROUNDS=5] [SECONDS=5]
#
# Needs `wrk` (Debian package) and, for the OTLP side, an endpoint: it starts
# VictoriaMetrics with scripts/victoria-metrics.sh when none is given in
# OTEL_EXPORTER_OTLP_ENDPOINT. Rounds alternate the two modes; each round's
# ratio is taskline / baseline, and the median and spread of those ratios are
# printed, for throughput and for the service's CPU time per request.
# The taskline side is hooks + flight recorder + OTLP; TASKLINE_ARGS=--layer
# adds the tracing layer. BASELINE_ARGS replaces the baseline's
# `--no-taskline`, to compare two taskline set-ups, e.g. the CPU profiler's
# cost: BASELINE_ARGS=--otlp TASKLINE_ARGS=--profile-always.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"; secs="${2:-5}"; port=3917
if ! command -v wrk >/dev/null; then
    # The load generator is Debian's `wrk` package; install it where we can.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null
    fi
    command -v wrk >/dev/null || { echo "install wrk: apt-get install wrk" >&2; exit 2; }
fi
cargo build -q --release --example service
bin="${CARGO_TARGET_DIR:-target}/release/examples/service"
if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
    scripts/victoria-metrics.sh fetch >/dev/null
    url=$(scripts/victoria-metrics.sh start | tail -1)
    trap 'scripts/victoria-metrics.sh stop >/dev/null 2>&1 || true' EXIT
    export OTEL_EXPORTER_OTLP_ENDPOINT="$url/opentelemetry"
fi
export OTEL_METRIC_EXPORT_INTERVAL=1000
cpu_ticks() { # pid -> utime+stime of the whole process, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}
run() { # mode -> "requests/s cpu-us-per-request"
    local args=(--addr "127.0.0.1:$port" --flight-dir target/bench-service-flight)
    # TASKLINE_ARGS: extra flags for the taskline side, e.g. --layer.
    # BASELINE_ARGS: what the baseline side runs with (default: no taskline).
    # shellcheck disable=SC2206
    [ "$1" = baseline ] && args+=(${BASELINE_ARGS:---no-taskline}) || args+=(--otlp ${TASKLINE_ARGS:-})
    "$bin" "${args[@]}" 2>/dev/null & local pid=$!
    for _ in $(seq 50); do curl -s "127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
    local c0 out c1
    c0=$(cpu_ticks "$pid")
    out=$(wrk -t1 -c32 -d"${secs}s" "http://127.0.0.1:$port/")
    c1=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # The service's CPU time per request: steadier than throughput on a
    # shared machine, and it charges the consumer thread too.
    printf '%s\n' "$out" | awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" '
        /requests in/ {n = $1}
        /Requests\/sec/ {rps = $2}
        END {printf "%s %.2f\n", rps, c / hz * 1e6 / n}'
}
ratios=(); cpu_ratios=()
printf '%-6s %14s %14s %8s %12s %12s %9s\n' round baseline_rps taskline_rps ratio base_cpu_us tl_cpu_us cpu_ratio
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then b=$(run baseline); t=$(run taskline); else t=$(run taskline); b=$(run baseline); fi
    read -r brps bcpu <<<"$b"; read -r trps tcpu <<<"$t"
    ratio=$(python3 -c "print(f'{$trps/$brps:.4f}')")
    cratio=$(python3 -c "print(f'{$tcpu/$bcpu:.4f}')")
    ratios+=("$ratio"); cpu_ratios+=("$cratio")
    printf '%-6s %14s %14s %8s %12s %12s %9s\n' "$r" "$brps" "$trps" "$ratio" "$bcpu" "$tcpu" "$cratio"
done
python3 - "${ratios[*]}" "${cpu_ratios[*]}" <<'PY'
import statistics, sys
for label, xs in (("throughput (taskline/baseline)", sys.argv[1]), ("service CPU per request (taskline/baseline)", sys.argv[2])):
    r = sorted(float(x) for x in xs.split())
    print(f"{label}: median {statistics.median(r):.4f} (min {r[0]:.4f}, max {r[-1]:.4f}, {len(r)} rounds)")
PY
