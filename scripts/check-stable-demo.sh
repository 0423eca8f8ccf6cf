#!/usr/bin/env bash
# The main job on stable Tokio (no --cfg tokio_unstable): every task goes
# through taskline's wrapper, and the table must show what it recorded:
# tasks, polls, wakes and a scheduling delay for every variant that spawns
# and wakes tasks (serial is one task polled once: no wake to show). Run by
# scripts/test.sh; takes the target dir of the stable build as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-target/stable-tokio}"
out="$target/demo-stable"
rm -rf "$out"
RUSTFLAGS="" cargo run -q --example mandelbrot --target-dir "$target" -- \
    --size 64 --out "$out" --variants task-per-pixel,task-per-column,pool-pixels,pool-columns --no-trace >"$out.txt" 2>&1 \
    || { cat "$out.txt"; exit 1; }
python3 - "$out.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
head = next(l for l in lines if l.startswith("| variant |"))
cols = [c.strip() for c in head.strip("|").split("|")]
rows = [l for l in lines if l.startswith("| ") and not l.startswith("| variant") and not l.startswith("|---")]
if len(rows) != 4:
    sys.exit(f"expected 4 rows, got {rows}")
for row in rows:
    cells = dict(zip(cols, [c.strip() for c in row.strip("|").split("|")]))
    for col in ("tasks spawned", "polls", "wakes"):
        if int(cells[col]) <= 0:
            sys.exit(f"{cells['variant']}: {col} is {cells[col]} on stable Tokio:\n{row}")
    if cells["sched delay p99"] in ("0µs", "0ms"):
        sys.exit(f"{cells['variant']}: no scheduling delay on stable Tokio:\n{row}")
    print(f"ok {cells['variant']}: {cells['tasks spawned']} tasks, {cells['polls']} polls, "
          f"{cells['wakes']} wakes, sched p99 {cells['sched delay p99']}")
PY
