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
import zlib
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


def parse_exact(data: bytes, what: str):
    """Parses a Trace and checks it re-serializes to exactly `data`."""
    trace = pb.Trace()
    trace.ParseFromString(data)
    out = trace.SerializeToString()
    if out != data:
        first = next((i for i, (a, b) in enumerate(zip(out, data)) if a != b), min(len(out), len(data)))
        raise ValueError(
            f"{what}: re-serialization differs (len {len(out)} vs {len(data)}, first difference at byte {first})"
        )
    return trace


def packets(data: bytes):
    """Every packet, with those inside `compressed_packets` blocks inflated
    (zlib, as Perfetto's trace processor does) and checked byte-exactly too.
    Returns (packets, number of compressed blocks)."""
    out, blocks = [], 0
    for i, p in enumerate(parse_exact(data, "file").packet):
        if p.HasField("compressed_packets"):
            blocks += 1
            inner = parse_exact(zlib.decompress(p.compressed_packets), f"compressed block {i}")
            for q in inner.packet:
                if q.HasField("compressed_packets"):
                    raise ValueError("compressed block inside a compressed block")
                out.append(q)
        else:
            out.append(p)
    return out, blocks


def summarize(data: bytes) -> dict:
    all_packets, blocks = packets(data)
    categories, event_names, annotation_names, string_values = {}, {}, {}, {}
    tracks = {}  # uuid -> display name
    thread_tracks, counter_tracks = set(), set()
    slices_per_track, slices_per_category = Counter(), Counter()
    ends_per_category, instants_per_category = Counter(), Counter()
    counters_per_track = Counter()
    wakes_per_name, flows_per_wake_name = Counter(), Counter()
    flow_ids, terminating = [], []
    sequences = set()
    stats = {}
    unknown_fields = 0
    # Interned data and defaults are per sequence, as Perfetto scopes them.
    seq_interned = {}
    seq_default_track = {}
    # CPU samples (PerfSample packets): their stacks are interned per sequence too.
    seq_stacks = {}
    track_of_tid = {}  # OS tid -> thread track name
    cpu_samples, cpu_samples_per_track, cpu_samples_off_track = 0, Counter(), 0
    cpu_stack_functions = Counter()
    cpu_interned = 0  # callstack table entries (function names, frames, ...)
    cpu_sample_bytes = 0  # bytes of the packets holding CPU samples (their interning included)
    cpu_reused, cpu_reused_bytes = 0, 0  # samples whose stack an earlier packet interned, and their bytes
    version = 1
    for i, p in enumerate(all_packets):
        seq = p.trusted_packet_sequence_id
        if seq not in sequences and not (p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED):
            raise ValueError(f"packet {i}: first packet of sequence {seq} does not clear the incremental state")
        sequences.add(seq)
        if p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
            seq_interned[seq] = ({}, {}, {}, {})
            seq_stacks[seq] = ({}, {}, {}, {})  # function names, frames, callstacks, mappings
            if p.HasField("trace_packet_defaults"):
                d = p.trace_packet_defaults
                if d.HasField("track_event_defaults"):
                    seq_default_track[seq] = d.track_event_defaults.track_uuid
        categories, event_names, annotation_names, string_values = seq_interned[seq]
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
            functions, frames, callstacks, mappings = seq_stacks[seq]
            cpu_interned += len(d.function_names) + len(d.frames) + len(d.callstacks) + len(d.mappings)
            cpu_interned += len(d.mapping_paths) + len(d.source_paths) + len(d.build_ids)
            for e in d.function_names:
                functions[e.iid] = e.str.decode("utf-8")
            for e in d.mappings:
                mappings[e.iid] = e
            for e in d.frames:
                frames[e.iid] = e
            for e in d.callstacks:
                callstacks[e.iid] = list(e.frame_ids)
        if p.HasField("track_descriptor"):
            t = p.track_descriptor
            if t.description in ("taskline trace format 2", "taskline trace format 3", "taskline trace format 4"):
                version = int(t.description[-1])
            name = t.name or t.thread.thread_name or t.process.process_name
            tracks[t.uuid] = name
            if t.HasField("thread"):
                thread_tracks.add(t.uuid)
                track_of_tid[t.thread.tid] = name
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
            track_uuid = e.track_uuid if e.HasField("track_uuid") else seq_default_track.get(seq, 0)
            if track_uuid not in tracks:
                raise ValueError(f"packet {i}: track {track_uuid} not described before use")
            if version == 1 and i > 0 and not (p.sequence_flags & pb.TracePacket.SEQ_NEEDS_INCREMENTAL_STATE):
                raise ValueError(f"packet {i}: uses interned data without SEQ_NEEDS_INCREMENTAL_STATE")
            cats = [categories.get(c, f"?{c}") for c in e.category_iids]
            cat = cats[0] if cats else ""
            if not cat and version >= 2:
                # Version 2 writes no category where the kind follows from the name and type.
                name = event_names.get(e.name_iid, "")
                if e.type == TE.TYPE_INSTANT:
                    cat = {"spawn": "spawn", "task name": "task_name", "wake": "wake",
                           "io wake": "wake", "timer wake": "wake",  # version 4: by the driver
                           "resource wait": "resource", "terminate": "terminate"}.get(name, "")
                elif e.type == TE.TYPE_SLICE_BEGIN:
                    cat = "idle" if name == "idle" else ("span" if track_uuid >= 0x20000 else "poll")
            if e.type == TE.TYPE_SLICE_BEGIN:
                slices_per_track[tracks[track_uuid]] += 1
                slices_per_category[cat] += 1
            elif e.type == TE.TYPE_SLICE_END:
                ends_per_category[cat] += 1
            elif e.type == TE.TYPE_INSTANT:
                instants_per_category[cat] += 1
                if cat == "wake":
                    wake_name = event_names.get(e.name_iid, "")
                    wakes_per_name[wake_name] += 1
                    flows_per_wake_name[wake_name] += len(e.flow_ids) + len(e.flow_ids_old)
                if cat == "taskline":
                    for a in e.debug_annotations:
                        stats[annotation_names[a.name_iid]] = a.uint_value
            elif e.type == TE.TYPE_COUNTER:
                if track_uuid not in counter_tracks:
                    raise ValueError(f"packet {i}: counter on a non-counter track")
                counters_per_track[tracks[track_uuid]] += 1
            # Version 3 writes the varint forms, reusing an id once its flow ended.
            flow_ids.extend(e.flow_ids)
            flow_ids.extend(e.flow_ids_old)
            terminating.extend(e.terminating_flow_ids)
            terminating.extend(e.terminating_flow_ids_old)
        if p.HasField("perf_sample"):
            s = p.perf_sample
            if not p.HasField("timestamp"):
                raise ValueError(f"packet {i}: CPU sample without timestamp")
            functions, frames, callstacks, mappings = seq_stacks[seq]
            if s.callstack_iid not in callstacks:
                raise ValueError(f"packet {i}: callstack_iid {s.callstack_iid} not interned")
            names = []
            for fid in callstacks[s.callstack_iid]:
                if fid not in frames:
                    raise ValueError(f"packet {i}: frame {fid} not interned")
                f = frames[fid]
                if f.function_name_id not in functions:
                    raise ValueError(f"packet {i}: function name {f.function_name_id} not interned")
                if f.mapping_id and f.mapping_id not in mappings:
                    raise ValueError(f"packet {i}: mapping {f.mapping_id} not interned")
                names.append(functions[f.function_name_id])
            if not names:
                raise ValueError(f"packet {i}: empty callstack")
            cpu_samples += 1
            # The packet as framed in the file (key, length, body): what a sample costs.
            size = p.ByteSize()
            framed = 1 + max(1, (size.bit_length() + 6) // 7) + size
            cpu_sample_bytes += framed
            if not p.HasField("interned_data"):
                cpu_reused += 1
                cpu_reused_bytes += framed
            for n in set(names):
                cpu_stack_functions[n] += 1
            if s.tid in track_of_tid:
                cpu_samples_per_track[track_of_tid[s.tid]] += 1
            else:
                cpu_samples_off_track += 1
        unknown_fields += count_unknown(p)
    if unknown_fields:
        raise ValueError(f"{unknown_fields} fields unknown to the Perfetto protos")
    starts, ends = Counter(flow_ids), Counter(terminating)
    if any(n > ends[i] + 1 for i, n in starts.items()):
        raise ValueError("a flow id starts again without having ended")
    return {
        "bytes": len(data),
        "format_version": version,
        "compressed_blocks": blocks,
        "packets": len(all_packets),
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
        "wakes_per_name": dict(wakes_per_name),
        "flows_per_wake_name": dict(flows_per_wake_name),
        "flows_terminated": sum(min(n, ends[i]) for i, n in starts.items()),
        "interned": {
            "categories": max((len(v[0]) for v in seq_interned.values()), default=0),
            "event_names": max((len(v[1]) for v in seq_interned.values()), default=0),
            "annotation_names": max((len(v[2]) for v in seq_interned.values()), default=0),
            "string_values": max((len(v[3]) for v in seq_interned.values()), default=0),
        },
        "stats": stats,
        # CPU samples: on the thread track with the sample's tid (the rest
        # belong to threads that recorded no event), and in how many
        # samples' stacks each function appears.
        "cpu_samples": cpu_samples,
        "cpu_samples_per_track": dict(cpu_samples_per_track),
        "cpu_samples_off_track": cpu_samples_off_track,
        "cpu_interned": cpu_interned,
        "cpu_sample_bytes": cpu_sample_bytes,
        "cpu_samples_reusing_stack": cpu_reused,
        "cpu_sample_bytes_reusing_stack": cpu_reused_bytes,
        "cpu_stack_functions": dict(cpu_stack_functions),
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
