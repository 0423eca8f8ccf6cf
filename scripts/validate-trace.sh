#!/usr/bin/env bash
# Validate taskline trace files against the official Perfetto protos.
#
#   scripts/validate-trace.sh FILE...
#
# Creates (once) a venv at target/trace-validator-venv (override with
# TASKLINE_VALIDATOR_VENV) with pinned `perfetto` and `protobuf` from PyPI,
# then runs scripts/trace-validator/validate.py, which prints one JSON object
# per file and exits 1 if any file does not parse or re-serialize byte-exactly.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TASKLINE_VALIDATOR_VENV:-$root/target/trace-validator-venv}"
python="${PYTHON:-python3}"

ready() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" -c 'import perfetto.protos.perfetto.trace.perfetto_trace_pb2' 2>/dev/null
}

if ! ready; then
    mkdir -p "$(dirname "$venv")"
    # Tests may run this concurrently: one of them installs, the others wait.
    exec 9>"$venv.lock"
    flock 9
    if ! ready; then
        rm -rf "$venv"
        "$python" -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            "perfetto==0.59.1" "protobuf==7.36.2" >&2
    fi
    flock -u 9
fi

exec "$venv/bin/python" "$root/scripts/trace-validator/validate.py" "$@"
