#!/usr/bin/env bash
# examples/service.rs end to end: a normal request, a handler that blocks its
# worker for 300 ms, the flight recorder's dump of it, the live report, and
# `taskline report` on the dump naming the blocking spawn site.
#
#   scripts/service-smoke.sh [extra service flags, e.g. --layer]
set -euo pipefail
cd "$(dirname "$0")/.."
port="${SERVICE_SMOKE_PORT:-3931}"
dir=target/service-smoke
rm -rf "$dir"; mkdir -p "$dir"
cargo build -q --example service
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
kill "$pid"; wait "$pid" 2>/dev/null || true
trap - EXIT
echo "service smoke: ok ($dump)"
