#!/usr/bin/env bash
# Checks the I/O story (examples/io.rs) against its own numbers: every
# request answered, the tables add up, the sentences say what the tables
# show (the serial client waits on I/O, one wait at a time; the concurrent
# waits overlap and finish sooner; the server's handlers wait on the timer),
# and the traces pass the official Perfetto protos and name the driver's
# wakes (`io wake`, `timer wake`). Run by scripts/test.sh:
#
#   cargo run --example io -- --requests 8 --delay-ms 5 --out DIR >OUT
#   scripts/check-io-story.sh OUT DIR
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
    echo "usage: $0 OUTPUT_FILE TRACE_DIR" >&2
    exit 2
fi
output="$1"
dir="$2"

python3 - "$output" <<'PY'
import re
import sys

text = open(sys.argv[1]).read()
lines = text.splitlines()
fail = []

def check(ok, what):
    if not ok:
        fail.append(what)

def ms_of(s):
    """'1.21 s' or '89.4 ms' -> milliseconds."""
    v, unit = s.split()
    return float(v) * (1000.0 if unit == "s" else 1.0)

def close(a, b, rel=0.01, abs_ms=0.15):
    return abs(a - b) <= max(abs_ms, rel * max(abs(a), abs(b)))

# Per variant: header, then its table.
variants = {}
order = []
current = None
head = re.compile(r"^variant (\S+): ([\d.]+) ms wall, (\d+) requests of (\d+) ms, (\d+) answered")
for line in lines:
    m = head.match(line)
    if m:
        current = m.group(1)
        order.append(current)
        variants[current] = {
            "wall": float(m.group(2)), "requests": int(m.group(3)),
            "answered": int(m.group(5)), "rows": {},
        }
        continue
    if current and line.startswith("| ") and not line.startswith("| tasks") and not line.startswith("|---"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name, side = cells[0], cells[1]
        nums = [float(c) for c in cells[4:10]]
        variants[current]["rows"][name] = {
            "side": side, "spawned": int(cells[2]), "busy": nums[0], "idle": nums[1],
            "io": nums[2], "timer": nums[3], "sync": nums[4], "other": nums[5],
            "largest": cells[10],
        }

check(order, "no variant tables in the output")
for name, v in variants.items():
    check(v["answered"] == v["requests"], f"{name}: {v['answered']} of {v['requests']} requests answered")
    check("client" in v["rows"], f"{name}: no row for the client task")
    check("connection" in v["rows"], f"{name}: no row for the server's connection tasks")
    check("all" in v["rows"], f"{name}: no row for all tasks")
    for row_name, r in v["rows"].items():
        parts = r["io"] + r["timer"] + r["sync"] + r["other"]
        check(close(parts, r["idle"], rel=0.001, abs_ms=0.3),
              f"{name}/{row_name}: idle {r['idle']} ms is not io+timer+sync+other = {parts:.1f} ms")
        # "largest wait" names the largest column and its share of the idle time.
        reason, _, pct = r["largest"].partition(" ")
        if reason in ("io", "timer", "sync") and r["idle"] > 0:
            check(r[reason] >= max(r["io"], r["timer"], r["sync"]) - 0.05,
                  f"{name}/{row_name}: largest wait {reason} but the columns say otherwise")
            check(abs(float(pct.rstrip("%")) - 100.0 * r[reason] / r["idle"]) <= 1.0,
                  f"{name}/{row_name}: largest wait {r['largest']} is not {r[reason]} of {r['idle']} ms")
    # The server's handlers sleep: their waits end with the timer (resource waits are on).
    conn = v["rows"].get("connection")
    if conn:
        check(conn["largest"].startswith("timer"),
              f"{name}: the connection tasks' largest wait is {conn['largest']!r}, not timer")

def client_side(v):
    rows = [r for r in v["rows"].values() if r["side"] == "client"]
    return {k: sum(r[k] for r in rows) for k in ("busy", "idle", "io", "timer", "sync", "other")}

if "serial" in variants:
    s = variants["serial"]
    check(s["rows"]["client"]["largest"].startswith("io"),
          f"serial: the client's largest wait is {s['rows']['client']['largest']!r}, not io")
if "serial" in variants and "concurrent" in variants:
    check(variants["concurrent"]["wall"] < variants["serial"]["wall"],
          f"concurrent ({variants['concurrent']['wall']} ms) is not faster than serial ({variants['serial']['wall']} ms)")

# The sentences.
try:
    start = lines.index("What the numbers say:")
except ValueError:
    start = None
    fail.append("no 'What the numbers say:' section")
sentences = {}
if start is not None:
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        word, _, rest = line.strip().partition(" ")
        sentences[word] = rest.strip()
fastest = min((v["wall"] for v in variants.values()), default=0)
for name, v in variants.items():
    text = sentences.get(name)
    if text is None:
        fail.append(f"{name}: no sentence")
        continue
    c = client_side(v)
    m = re.match(r"([\d.]+ m?s) for (\d+) requests", text)
    check(bool(m) and close(ms_of(m.group(1)), v["wall"]) and int(m.group(2)) == v["requests"],
          f"{name}: the sentence's wall time / requests do not match the table: {text}")
    share = re.search(r"(\d+)% of the client's time is network wait", text)
    overlap = re.search(r"the sum of network wait is ([\d.]+ m?s) over ([\d.]+ m?s) of wall time \(([\d.]+) at once", text)
    if name == "serial":
        check(share is not None, f"serial: the sentence does not give the client's network-wait share: {text}")
    if share:
        expected = 100.0 * c["io"] / max(c["busy"] + c["idle"], 1e-9)
        check(abs(int(share.group(1)) - expected) <= 1.0,
              f"{name}: network wait {share.group(1)}% but the table says {expected:.1f}%")
    if overlap:
        io, wall, at_once = ms_of(overlap.group(1)), ms_of(overlap.group(2)), float(overlap.group(3))
        check(close(io, c["io"]), f"{name}: network wait {io} ms in the sentence, {c['io']:.1f} ms in the table")
        check(close(wall, v["wall"]), f"{name}: wall {wall} ms in the sentence, {v['wall']} ms in the table")
        check(abs(at_once - c["io"] / v["wall"]) <= 0.1 + 0.01 * at_once,
              f"{name}: {at_once} waits at once, the table gives {c['io'] / v['wall']:.2f}")
        check(at_once >= 1.5, f"{name}: says the waits overlap at {at_once} at once")
    check(share is not None or overlap is not None or "the client" in text,
          f"{name}: the sentence says nothing about the client's waits: {text}")
    ratio = re.search(r"\(([\d.]+)x the fastest variant's wall time\)", text)
    if ratio:
        check(abs(float(ratio.group(1)) - v["wall"] / fastest) <= 0.06 + 0.01 * float(ratio.group(1)),
              f"{name}: {ratio.group(1)}x the fastest, the table gives {v['wall'] / fastest:.2f}x")
    else:
        check(text.endswith("(fastest)") and v["wall"] / fastest <= 1.06,
              f"{name}: neither a ratio to the fastest nor the fastest: {text}")
if any("connection" in v["rows"] for v in variants.values()):
    server = sentences.get("server", "")
    check("for reason timer" in server, f"the server's sentence does not name the timer: {server!r}")

if fail:
    print("I/O story check failed:", *fail, sep="\n  ", file=sys.stderr)
    sys.exit(1)
walls = ", ".join("%s %s ms" % (n, variants[n]["wall"]) for n in order)
print(f"ok: {walls}; every request answered, the sentences match the tables")
PY

shopt -s nullglob
traces=("$dir"/io-*.perfetto-trace)
if [ ${#traces[@]} -eq 0 ]; then
    echo "no traces io-*.perfetto-trace in $dir" >&2
    exit 1
fi
scripts/validate-trace.sh "${traces[@]}" >"$dir/validate.jsonl"
python3 - "$dir/validate.jsonl" <<'PY'
import json
import sys

fail = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    name = d["file"]
    if not d["ok"]:
        fail.append(f"{name}: {d['error']}")
        continue
    wakes, flows = d["wakes_per_name"], d["flows_per_wake_name"]
    if d["format_version"] < 4:
        fail.append(f"{name}: format {d['format_version']}")
    # Every request's response is I/O readiness, every handler sleeps.
    for kind in ("io wake", "timer wake"):
        if wakes.get(kind, 0) == 0:
            fail.append(f"{name}: no {kind!r} instant ({wakes})")
    print(f"ok {name}: {d['events']} events, wakes {wakes}, flow arrows from them {flows}")
if fail:
    print("I/O story traces:", *fail, sep="\n  ", file=sys.stderr)
    sys.exit(1)
PY
