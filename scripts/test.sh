#!/usr/bin/env bash
# The README's test command. Installs what the tests need (Python venv with the
# official Perfetto protos, VictoriaMetrics from Debian trixie) through the
# project's own scripts, then runs every test. Safe to re-run.
#
#   scripts/test.sh            # everything CI runs
#   TASKLINE_SKIP_E2E=1 ...    # skip the OTLP end-to-end test (no apt access)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$SECONDS
step() { printf '\n==> %s (t=%ds)\n' "$*" "$((SECONDS - start))"; }

step "unit, integration and doc tests (with --cfg tokio_unstable, from .cargo/config.toml)"
cargo test --workspace

step "stable Tokio: everything builds without --cfg tokio_unstable and says what it cannot record"
RUSTFLAGS="" cargo check --workspace --all-targets --target-dir target/stable-tokio
RUSTFLAGS="" cargo test -p taskline-core --test capabilities --test wrap --test regions --target-dir target/stable-tokio
step "stable Tokio: the main job through taskline's wrapper shows tasks, polls, wakes and scheduling delay"
scripts/check-stable-demo.sh target/stable-tokio

step "main job smoke run: every Mandelbrot variant under taskline, small size, with the CPU profiler"
rm -rf target/demo-smoke
cargo run --example mandelbrot -- --size 96 --out target/demo-smoke --profile
step "the demo's traces (with their CPU samples) parse with the official Perfetto protos and re-serialize byte for byte"
scripts/validate-trace.sh target/demo-smoke/*.perfetto-trace >/dev/null

step "the I/O story smoke run: serial, concurrent and bounded HTTP requests, small size; its sentences match its numbers, its traces validate"
rm -rf target/io-smoke
cargo run --example io -- --requests 8 --delay-ms 5 --out target/io-smoke >target/io-smoke.txt
scripts/check-io-story.sh target/io-smoke.txt target/io-smoke

step "the overhead benchmark's taskline configurations run and keep the checksums (tiny size, one round, no timing claims)"
cargo run -q -p taskline-bench --example overhead -- --size 64 --reps 1 --yields 2000 \
    --configs none,taskline-hooks,taskline-both,taskline-record-only,taskline-trace,taskline-full,taskline-full-resources,tokio-floor,taskline-wrap \
    --workloads task-per-pixel,yield --strict >/dev/null

step "the service example: a blocking handler is caught by the flight recorder and named in the reports"
scripts/service-smoke.sh
scripts/service-smoke.sh --layer

step "optional features: task dumps (taskdump) and heap profiles (heap), library and service"
cargo test --features taskdump,heap --test task_dump --test heap
SERVICE_SMOKE_FEATURES=taskdump,heap scripts/service-smoke.sh

if [ "${TASKLINE_SKIP_E2E:-0}" = 1 ]; then
    step "OTLP end to end: skipped (TASKLINE_SKIP_E2E=1)"
else
    step "OTLP end to end: export to a real VictoriaMetrics, every dashboard query returns data"
    scripts/e2e-otel.sh
fi

step "all tests passed"
