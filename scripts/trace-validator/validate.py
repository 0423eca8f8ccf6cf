#!/usr/bin/env python3
"""Independent validator for taskline trace files.

Parses each file with the official Perfetto protos (PyPI `perfetto`,
perfetto_trace_pb2.Trace), checks that protobuf re-serializes it to exactly
the same bytes (catches packed repeated fields, wrong wire types, field order
and unknown fields), and prints what the trace contains as one JSON object
per file so tests can compare it with what the recorder recorded.

Usage: validate.py FILE...   (exit status 1 if any file fails)
"""
import json
import sys
from collections import Counter

from google.protobuf.unknown_fields import UnknownFieldSet
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

TE = pb.TrackEvent


def count_unknown(msg) -> int:
    """Fields the official protos do not know, anywhere inside `msg`."""
    n = len(UnknownFieldSet(msg))
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        for sub in value if field.is_repeated else [value]:
            n += count_unknown(sub)
    return n


def summarize(data: bytes) -> dict:
    trace = pb.Trace()
    trace.ParseFromString(data)
    out = trace.SerializeToString()
    if out != data:
        first = next((i for i, (a, b) in enumerate(zip(out, data)) if a != b), min(len(out), len(data)))
        raise ValueError(
            f"re-serialization differs (len {len(out)} vs {len(data)}, first difference at byte {first})"
        )
    categories, event_names, annotation_names, string_values = {}, {}, {}, {}
    tracks = {}  # uuid -> display name
    thread_tracks, counter_tracks = set(), set()
    slices_per_track, slices_per_category = Counter(), Counter()
    ends_per_category, instants_per_category = Counter(), Counter()
    counters_per_track = Counter()
    flow_ids, terminating = [], []
    sequences = set()
    stats = {}
    unknown_fields = 0
    for i, p in enumerate(trace.packet):
        sequences.add(p.trusted_packet_sequence_id)
        if i == 0 and not (p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED):
            raise ValueError("first packet does not clear the incremental state")
        if p.HasField("interned_data"):
            d = p.interned_data
            for e in d.event_categories:
                categories[e.iid] = e.name
            for e in d.event_names:
                event_names[e.iid] = e.name
            for e in d.debug_annotation_names:
                annotation_names[e.iid] = e.name
            for e in d.debug_annotation_string_values:
                string_values[e.iid] = e.str.decode("utf-8")
        if p.HasField("track_descriptor"):
            t = p.track_descriptor
            name = t.name or t.thread.thread_name or t.process.process_name
            tracks[t.uuid] = name
            if t.HasField("thread"):
                thread_tracks.add(t.uuid)
            if t.HasField("counter"):
                counter_tracks.add(t.uuid)
        if p.HasField("track_event"):
            e = p.track_event
            if not p.HasField("timestamp"):
                raise ValueError(f"packet {i}: track event without timestamp")
            if e.name_iid and e.name_iid not in event_names:
                raise ValueError(f"packet {i}: name_iid {e.name_iid} not interned")
            for a in e.debug_annotations:
                if a.name_iid not in annotation_names:
                    raise ValueError(f"packet {i}: annotation name_iid {a.name_iid} not interned")
                if a.HasField("string_value_iid") and a.string_value_iid not in string_values:
                    raise ValueError(f"packet {i}: string_value_iid {a.string_value_iid} not interned")
            if e.track_uuid not in tracks:
                raise ValueError(f"packet {i}: track {e.track_uuid} not described before use")
            if i > 0 and not (p.sequence_flags & pb.TracePacket.SEQ_NEEDS_INCREMENTAL_STATE):
                raise ValueError(f"packet {i}: uses interned data without SEQ_NEEDS_INCREMENTAL_STATE")
            cats = [categories.get(c, f"?{c}") for c in e.category_iids]
            cat = cats[0] if cats else ""
            if e.type == TE.TYPE_SLICE_BEGIN:
                slices_per_track[tracks[e.track_uuid]] += 1
                slices_per_category[cat] += 1
            elif e.type == TE.TYPE_SLICE_END:
                ends_per_category[cat] += 1
            elif e.type == TE.TYPE_INSTANT:
                instants_per_category[cat] += 1
                if cat == "taskline":
                    for a in e.debug_annotations:
                        stats[annotation_names[a.name_iid]] = a.uint_value
            elif e.type == TE.TYPE_COUNTER:
                if e.track_uuid not in counter_tracks:
                    raise ValueError(f"packet {i}: counter on a non-counter track")
                counters_per_track[tracks[e.track_uuid]] += 1
            flow_ids.extend(e.flow_ids)
            terminating.extend(e.terminating_flow_ids)
        unknown_fields += count_unknown(p)
    if unknown_fields:
        raise ValueError(f"{unknown_fields} fields unknown to the Perfetto protos")
    if len(set(flow_ids)) != len(flow_ids):
        raise ValueError("a flow id starts twice")
    return {
        "bytes": len(data),
        "packets": len(trace.packet),
        "sequences": sorted(sequences),
        "thread_tracks": sorted(tracks[u] for u in thread_tracks),
        "counter_tracks": sorted(tracks[u] for u in counter_tracks),
        "slices": sum(slices_per_category.values()),
        "poll_slices": slices_per_category.get("poll", 0),
        "blocking_slices": slices_per_category.get("blocking", 0),
        "idle_slices": slices_per_category.get("idle", 0),
        "counter_events": sum(counters_per_track.values()),
        "events": sum(slices_per_category.values()) + sum(ends_per_category.values())
        + sum(instants_per_category.values()) - instants_per_category.get("taskline", 0)
        + sum(counters_per_track.values()),
        "slices_per_track": dict(slices_per_track),
        "slices_per_category": dict(slices_per_category),
        "slice_ends_per_category": dict(ends_per_category),
        "instants_per_category": dict(instants_per_category),
        "counters_per_track": dict(counters_per_track),
        "flows": len(flow_ids),
        "flows_terminated": len(set(terminating) & set(flow_ids)),
        "interned": {
            "categories": len(categories),
            "event_names": len(event_names),
            "annotation_names": len(annotation_names),
            "string_values": len(string_values),
        },
        "stats": stats,
    }


def main(argv) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path in argv[1:]:
        try:
            with open(path, "rb") as f:
                summary = summarize(f.read())
            summary = {"file": path, "ok": True, **summary}
        except Exception as exc:  # report every file, fail at the end
            failed = True
            summary = {"file": path, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(summary, sort_keys=True))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
