#!/usr/bin/env bash
# VictoriaMetrics (Debian trixie package) as the real metrics backend for the
# OTLP end-to-end test. Never touches the system's apt sources: a private
# sources list and list directory live under target/.
#
#   scripts/victoria-metrics.sh fetch   # download + unpack into target/victoria-metrics/ (idempotent)
#   scripts/victoria-metrics.sh start   # run on 127.0.0.1:<free port>; prints the URL, writes target/victoria-metrics/url
#   scripts/victoria-metrics.sh stop    # stop the instance started by `start`
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR_VM:-$ROOT/target}"
VM_DIR="$TARGET/victoria-metrics"
APT_DIR="$TARGET/vm-apt"
BIN="$VM_DIR/usr/bin/victoria-metrics"
PIDFILE="$VM_DIR/pid"
URLFILE="$VM_DIR/url"
LOGFILE="$VM_DIR/victoria-metrics.log"

fetch() {
    if [[ -x "$BIN" ]]; then
        echo "victoria-metrics already unpacked: $BIN"
        return 0
    fi
    mkdir -p "$APT_DIR/lists/partial" "$VM_DIR"
    local list="$APT_DIR/trixie.list"
    echo "deb http://deb.debian.org/debian trixie main" >"$list"
    local opts=(-oDir::Etc::SourceList="$list" -oDir::Etc::SourceParts=/dev/null
        -oDir::State::Lists="$APT_DIR/lists" -oDir::Cache="$APT_DIR/cache"
        -oAPT::Get::List-Cleanup=0 -qq)
    mkdir -p "$APT_DIR/cache/archives/partial"
    apt-get "${opts[@]}" update
    (cd "$APT_DIR" && rm -f victoria-metrics_*.deb && apt-get "${opts[@]}" download victoria-metrics)
    dpkg -x "$APT_DIR"/victoria-metrics_*.deb "$VM_DIR"
    [[ -x "$BIN" ]] || { echo "victoria-metrics binary not found after unpacking" >&2; exit 1; }
    echo "victoria-metrics unpacked: $BIN ($("$BIN" -version 2>/dev/null || true))"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    [[ -x "$BIN" ]] || fetch
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        cat "$URLFILE"
        return 0
    fi
    local port url
    port="$(free_port)"
    url="http://127.0.0.1:$port"
    rm -rf "$VM_DIR/data"
    "$BIN" -httpListenAddr="127.0.0.1:$port" -storageDataPath="$VM_DIR/data" \
        -opentelemetry.usePrometheusNaming -search.latencyOffset=0s \
        -search.disableCache -retentionPeriod=1d >"$LOGFILE" 2>&1 &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 100); do
        if curl -fsS "$url/health" >/dev/null 2>&1; then
            echo "$url" >"$URLFILE"
            echo "$url"
            return 0
        fi
        if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "victoria-metrics did not become ready; log:" >&2
    cat "$LOGFILE" >&2
    stop
    exit 1
}

stop() {
    if [[ -f "$PIDFILE" ]]; then
        local pid
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$PIDFILE" "$URLFILE"
    fi
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 fetch|start|stop" >&2; exit 2 ;;
esac
