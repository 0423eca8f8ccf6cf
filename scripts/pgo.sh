#!/usr/bin/env bash
# Profile-guided optimization of the Mandelbrot suite and of the overhead
# bench workload, measured against the plain release build in the same run.
#
#   scripts/pgo.sh [--size N] [--rounds R] [--workers W] [--yields Y] [--train-size N]
#
# 1. Builds crates/taskline-mandelbrot's `compare` example and
#    crates/taskline-bench's `overhead` example three ways, each in its own
#    target dir under target/pgo/ (the normal target/ is never touched):
#    plain release, instrumented (-Cprofile-generate) and optimized with
#    the merged profile (-Cprofile-use).
# 2. Trains: runs the instrumented binaries on a representative workload
#    (every Mandelbrot renderer; the overhead bench's none and
#    taskline-hooks configurations on every workload) and merges the raw
#    profiles with llvm-profdata (Debian's llvm-19, installed when missing).
# 3. Measures: R rounds, each running the plain and the PGO binary back to
#    back (order alternating), and prints for each Mandelbrot renderer and
#    for the overhead bench's taskline-hooks ratio the medians of both
#    builds, PGO/plain, and the min..max spread over rounds.
#
# The builds run unlocked; training and measuring hold
# /tmp/taskline-bench.lock (flock), so no other session times meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

size=512 rounds=5 workers=2 yields=20000 train_size=256
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --workers) workers="$2"; shift 2 ;;
        --yields) yields="$2"; shift 2 ;;
        --train-size) train_size="$2"; shift 2 ;;
        *) echo "usage: $0 [--size N] [--rounds R] [--workers W] [--yields Y] [--train-size N]" >&2; exit 2 ;;
    esac
done
[ "$rounds" -ge 1 ] || { echo "--rounds must be at least 1" >&2; exit 2; }

profdata=""
for c in llvm-profdata-19 /usr/lib/llvm-19/bin/llvm-profdata; do
    if command -v "$c" >/dev/null 2>&1; then profdata="$(command -v "$c")"; break; fi
done
if [ -z "$profdata" ]; then
    echo "pgo: installing Debian's llvm-19 for llvm-profdata"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q llvm-19 >/dev/null
    profdata=/usr/lib/llvm-19/bin/llvm-profdata
fi
echo "pgo: $("$profdata" --version | grep -i version | head -1 | sed 's/^ *//') (rustc: $(rustc -vV | sed -n 's/^LLVM version: //p'))"

out=target/pgo
raw="$out/profraw"
merged="$out/merged.profdata"
mkdir -p "$out"
# Keep the repo's rustflags (--cfg tokio_unstable); RUSTFLAGS replaces them.
base_flags="--cfg tokio_unstable"

build() { # target-dir extra-rustflags
    RUSTFLAGS="$base_flags $2" cargo build -q --release --target-dir "$1" \
        -p taskline-mandelbrot --example compare
    RUSTFLAGS="$base_flags $2" cargo build -q --release --target-dir "$1" \
        -p taskline-bench --example overhead
}

echo "pgo: plain release build"
build "$out/plain" ""
echo "pgo: instrumented build"
rm -rf "$raw"; mkdir -p "$raw"
build "$out/gen" "-Cprofile-generate=$PWD/$raw"

lock=/tmp/taskline-bench.lock
exec 9>>"$lock"
echo "pgo: waiting for $lock"
flock 9
echo "pgo: training (size $train_size)"
"$out/gen/release/examples/compare" "$train_size" 2 "$workers" >/dev/null
"$out/gen/release/examples/overhead" --size "$train_size" --reps 1 --workers "$workers" \
    --yields "$yields" --configs none,taskline-hooks >/dev/null
ls "$raw"/*.profraw >/dev/null 2>&1 || { echo "pgo: training wrote no .profraw" >&2; exit 1; }
"$profdata" merge -o "$merged" "$raw"/*.profraw

flock -u 9
echo "pgo: optimized build"
build "$out/use" "-Cprofile-use=$PWD/$merged -Cllvm-args=-pgo-warn-missing-function=false"
flock 9

log="$out/runs"
rm -rf "$log"; mkdir -p "$log"
echo "pgo: measuring $rounds rounds (size $size, $workers workers, plain and PGO back to back)"
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then order="plain use"; else order="use plain"; fi
    for b in $order; do
        "$out/$b/release/examples/compare" "$size" 1 "$workers" >"$log/compare-$b-$r.txt"
        "$out/$b/release/examples/overhead" --size "$size" --reps 1 --workers "$workers" \
            --yields "$yields" --configs none,taskline-hooks >"$log/overhead-$b-$r.txt"
    done
done

python3 - "$log" "$rounds" <<'EOF'
import re, statistics, sys, glob, os
log, rounds = sys.argv[1], int(sys.argv[2])

def compare(path):
    """renderer -> ms, from compare's table."""
    rows = {}
    seen = False
    for line in open(path):
        if line.startswith("renderer"):
            seen = True
            continue
        if seen and line.strip() and not line.startswith("best"):
            parts = re.split(r"\s{2,}", line.strip())
            rows[parts[0]] = float(parts[1])
    return rows

def overhead(path):
    """(workload, config) -> wall ms; the hooks ratio is taken per workload."""
    lines = open(path).read().splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("workload"))
    cols = re.split(r"\s{2,}", lines[head].strip())
    out = {}
    for l in lines[head + 1:]:
        if not l.strip() or l.startswith("CHECKSUM"):
            break
        cells = re.split(r"\s{2,}", l.strip())
        row = dict(zip(cols, cells))
        out[(row["workload"], row["config"])] = row
    return out, cols

def fmt(xs):
    return f"{statistics.median(xs):.1f}", f"{min(xs):.1f}..{max(xs):.1f}"

print()
print("| Mandelbrot renderer | plain median ms (min..max) | PGO median ms (min..max) | PGO / plain (min..max of per-round ratios) |")
print("|---|---|---|---|")
plain = [compare(f"{log}/compare-plain-{r}.txt") for r in range(1, rounds + 1)]
pgo = [compare(f"{log}/compare-use-{r}.txt") for r in range(1, rounds + 1)]
for name in plain[0]:
    a = [p[name] for p in plain]
    b = [p[name] for p in pgo]
    ratios = [y / x for x, y in zip(a, b)]
    print(f"| {name} | {fmt(a)[0]} ({fmt(a)[1]}) | {fmt(b)[0]} ({fmt(b)[1]}) | "
          f"{statistics.median(ratios):.3f} ({min(ratios):.3f}..{max(ratios):.3f}) |")

print()
print("| overhead workload | taskline-hooks / none, plain (min..max) | same, PGO (min..max) | hooks wall ms plain -> PGO (medians) |")
print("|---|---|---|---|")
po = [overhead(f"{log}/overhead-plain-{r}.txt") for r in range(1, rounds + 1)]
uo = [overhead(f"{log}/overhead-use-{r}.txt") for r in range(1, rounds + 1)]
cols = po[0][1]
wall = "median ms"
workloads = sorted({w for (w, c) in po[0][0]})
for w in workloads:
    def ratio(runs):
        return [float(t[(w, "taskline-hooks")][wall]) / float(t[(w, "none")][wall]) for t, _ in runs]
    def hooks(runs):
        return [float(t[(w, "taskline-hooks")][wall]) for t, _ in runs]
    rp, ru = ratio(po), ratio(uo)
    print(f"| {w} | {statistics.median(rp):.2f} ({min(rp):.2f}..{max(rp):.2f}) | "
          f"{statistics.median(ru):.2f} ({min(ru):.2f}..{max(ru):.2f}) | "
          f"{statistics.median(hooks(po)):.1f} -> {statistics.median(hooks(uo)):.1f} |")
EOF
