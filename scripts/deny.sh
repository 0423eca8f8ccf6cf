#!/usr/bin/env bash
# Runs `cargo deny check`, installing cargo-deny from crates.io when missing.
# The advisories check needs the RustSec database from GitHub, which these
# machines cannot reach: it runs only when a database is already on disk.
# The optional features' dependencies (heap: jemalloc; taskdump: backtrace)
# are checked too.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "installing cargo-deny from crates.io (once per machine)"
    cargo install cargo-deny --locked --quiet
fi
if ls "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/* >/dev/null 2>&1; then
    cargo deny --features heap,taskdump check --disable-fetch
else
    echo "cargo deny: no RustSec database on disk and no route to GitHub; checking licenses, bans and sources"
    cargo deny --features heap,taskdump check licenses bans sources
fi
