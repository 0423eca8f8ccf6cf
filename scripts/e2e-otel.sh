#!/usr/bin/env bash
# End-to-end check of taskline-otel against a real VictoriaMetrics: fetch and
# start VM on 127.0.0.1, run the e2e test (every dashboard query must return
# data), stop VM whatever happens.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VM="$ROOT/scripts/victoria-metrics.sh"
"$VM" fetch
trap '"$VM" stop' EXIT
URL="$("$VM" start | tail -n1)"
echo "VictoriaMetrics at $URL"
TASKLINE_VM_URL="$URL" cargo test -p taskline-otel --test e2e_victoria_metrics -- --nocapture
