#!/usr/bin/env bash
# examples/service.rs end to end: a normal request, a handler that blocks its
# worker for 300 ms, the flight recorder's dump of it, the live report, and
# `taskline report` on the dump naming the blocking spawn site, and an
# on-demand trace of the next second from /trace?seconds=1 (its limits too),
# and /tasks: a task dump showing the connection task `serve` spawned when built with
# SERVICE_SMOKE_FEATURES=taskdump, a 501 with the reason otherwise; /heap: a
# gzipped pprof with SERVICE_SMOKE_FEATURES=heap, a 501 otherwise.
#
#   scripts/service-smoke.sh [extra service flags, e.g. --layer]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SERVICE_SMOKE_PORT:-3931}"
dir=target/service-smoke
rm -rf "$dir"; mkdir -p "$dir"
features=(${SERVICE_SMOKE_FEATURES:+--features "$SERVICE_SMOKE_FEATURES"})
cargo build -q --example service "${features[@]}"
cargo build -q -p taskline-cli
bin="${CARGO_TARGET_DIR:-target}/debug/examples/service"
cli="${CARGO_TARGET_DIR:-target}/debug/taskline"
"$bin" --addr "127.0.0.1:$port" --flight-dir "$dir/flight" --exit-after-secs 60 "$@" 2>"$dir/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
fail() { echo "service smoke: $*" >&2; cat "$dir/stderr" >&2; exit 1; }
for _ in $(seq 100); do curl -sf "127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
curl -sf "127.0.0.1:$port/" | grep -q "hello" || fail "/ did not answer"
curl -sf "127.0.0.1:$port/block?ms=300" | grep -q "blocked a worker for 300 ms" || fail "/block did not answer"
dump=""
for _ in $(seq 100); do
    dump=$(ls "$dir"/flight/*stuck-poll*.pftrace 2>/dev/null | head -1 || true)
    [ -n "$dump" ] && break
    sleep 0.1
done
[ -n "$dump" ] || fail "no stuck-poll dump in $dir/flight after a 300 ms blocking handler"
curl -sf "127.0.0.1:$port/report" >"$dir/report.txt" || fail "/report did not answer"
grep -Eq 'slow \(> [^)]*\) [1-9]' "$dir/report.txt" || fail "/report counts no slow poll: $(cat "$dir/report.txt")"
"$cli" report "$dump" >"$dir/dump-report.txt" || fail "taskline report rejected $dump"
grep -q "examples/service.rs" "$dir/dump-report.txt" || fail "the dump's report does not name the blocking spawn site"
# On-demand trace: /trace?seconds=1 while requests come in (bounded: 40 at most).
( for _ in $(seq 40); do curl -sf "127.0.0.1:$port/" >/dev/null || true; sleep 0.02; done ) &
load=$!
code=$(curl -s -o "$dir/on-demand.pftrace" -D "$dir/on-demand.headers" -w '%{http_code}' "127.0.0.1:$port/trace?seconds=1") ||
    fail "/trace did not answer"
wait "$load" || true
[ "$code" = 200 ] || fail "/trace answered $code: $(cat "$dir/on-demand.pftrace")"
grep -qi '^content-type: application/octet-stream' "$dir/on-demand.headers" || fail "/trace is not application/octet-stream"
"$cli" inspect "$dir/on-demand.pftrace" >"$dir/on-demand-inspect.txt" || fail "taskline inspect rejected the on-demand trace"
grep -q UNFINISHED "$dir/on-demand-inspect.txt" && fail "the on-demand trace has no end marker"
polls=$(awk '$2 == "PollStart" { print $1 }' "$dir/on-demand-inspect.txt")
[ "${polls:-0}" -gt 0 ] || fail "the on-demand trace holds no polls: $(cat "$dir/on-demand-inspect.txt")"
"$cli" report "$dir/on-demand.pftrace" >"$dir/on-demand-report.txt" || fail "taskline report rejected the on-demand trace"
grep -q "examples/service.rs" "$dir/on-demand-report.txt" || fail "the on-demand trace's report names no spawn site of the service"
# The limits, with their status codes: right after a trace, too soon; too long.
code=$(curl -s -o "$dir/too-soon.txt" -w '%{http_code}' "127.0.0.1:$port/trace?seconds=1")
[ "$code" = 429 ] || fail "a second /trace right after the first answered $code, not 429"
code=$(curl -s -o "$dir/too-long.txt" -w '%{http_code}' "127.0.0.1:$port/trace?seconds=3600")
[ "$code" = 400 ] || fail "/trace?seconds=3600 answered $code, not 400"
# Task dump: 200 showing a task spawned in `serve` with feature taskdump, 501 with the reason without.
code=$(curl -s -o "$dir/tasks.txt" -w '%{http_code}' "127.0.0.1:$port/tasks")
case "${SERVICE_SMOKE_FEATURES:-}" in
    *taskdump*)
        [ "$code" = 200 ] || fail "/tasks answered $code: $(cat "$dir/tasks.txt")"
        grep -q "service::serve" "$dir/tasks.txt" || fail "/tasks does not show the connection task: $(cat "$dir/tasks.txt")" ;;
    *)
        [ "$code" = 501 ] || fail "/tasks without feature taskdump answered $code, not 501"
        grep -q "task dumps are not available" "$dir/tasks.txt" || fail "/tasks 501 without a reason: $(cat "$dir/tasks.txt")" ;;
esac
# Heap profile: gzipped pprof with feature heap, 501 with the reason without.
code=$(curl -s -o "$dir/heap.pb.gz" -w '%{http_code}' "127.0.0.1:$port/heap")
case "${SERVICE_SMOKE_FEATURES:-}" in
    *heap*)
        [ "$code" = 200 ] || fail "/heap answered $code: $(cat "$dir/heap.pb.gz")"
        [ "$(head -c2 "$dir/heap.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || fail "/heap is not gzip" ;;
    *)
        [ "$code" = 501 ] || fail "/heap without feature heap answered $code, not 501"
        grep -q "heap profiles are not available" "$dir/heap.pb.gz" || fail "/heap 501 without a reason" ;;
esac
kill "$pid"; wait "$pid" 2>/dev/null || true
trap - EXIT
echo "service smoke: ok ($dump, $dir/on-demand.pftrace: $polls polls)"
