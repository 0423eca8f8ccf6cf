#!/usr/bin/env python3
"""Where a raw taskline trace's bytes go: packets grouped by their shape.

A packet's shape is the TracePacket fields it carries and, for a
TrackEvent, its `type` and which optional parts it has (`name` for
name_iid, `ann` per debug annotation, `flow36`/`flow42` for flow ids,
`trk` for an explicit track). For each shape: how many packets, their
bytes (with the two bytes of framing), bytes per packet and the share of
the file. Reads the wire format directly (no protobuf package), raw
(uncompressed) traces only.

Usage: bytes_by_shape.py FILE [MAX_PACKETS]
"""
import collections
import sys


def varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def fields(b, i, end):
    while i < end:
        key, i = varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
            yield field, wire, v
        elif wire == 2:
            n, i = varint(b, i)
            yield field, wire, (i, i + n)
            i += n
        elif wire == 1:
            i += 8
            yield field, wire, None
        elif wire == 5:
            i += 4
            yield field, wire, None
        else:
            raise ValueError(f"wire type {wire} at byte {i}")


TRACK_EVENT_PARTS = {4: "ann", 10: "name", 11: "trk", 22: "cat", 36: "flow36", 42: "flow42", 47: "flow47", 48: "flow48"}


def main():
    data = open(sys.argv[1], "rb").read()
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    by_shape = collections.defaultdict(lambda: [0, 0])
    i = packets = 0
    while i < len(data) and (limit is None or packets < limit):
        key, j = varint(data, i)
        n, j = varint(data, j)
        start, end = j, j + n
        if key >> 3 != 1:
            raise ValueError(f"not a Trace.packet at byte {i}")
        parts = []
        for field, wire, v in fields(data, start, end):
            if field == 11 and wire == 2:
                te = []
                for f2, _, v2 in fields(data, *v):
                    if f2 == 9:
                        te.append(f"type{v2}")
                    elif f2 in TRACK_EVENT_PARTS:
                        te.append(TRACK_EVENT_PARTS[f2])
                parts.append("track_event(" + ",".join(te) + ")")
            elif field == 50:
                raise ValueError("compressed_packets: run on a raw trace")
            elif field not in (8, 10):  # timestamp, sequence id: every packet
                parts.append(f"field{field}")
        s = by_shape[" ".join(parts)]
        s[0] += 1
        s[1] += end - i
        packets += 1
        i = end
    total = sum(b for _, b in by_shape.values())
    print(f"{packets} packets, {total} bytes, {total / packets:.2f} bytes/packet")
    for shape, (count, size) in sorted(by_shape.items(), key=lambda kv: -kv[1][1])[:20]:
        print(f"{count:9d} {size:11d} {size / count:6.2f} {100 * size / total:5.1f}%  {shape}")


if __name__ == "__main__":
    main()
