//! The taskline trace layout on top of Perfetto's TrackEvent protos: field
//! numbers, track uuids, interned ids and how each [`EventKind`] maps to a
//! TrackEvent. Shared by the encoder and the reader so both agree.
//!
//! Field numbers come from perfetto's `protos/perfetto/trace/**.proto` and were
//! cross-checked against the PyPI `perfetto` package's descriptors.

use taskline_core::{EventKind, NO_VALUE, NO_WORKER};

/// `Trace.packet`.
pub(crate) const TRACE_PACKET: u32 = 1;

/// `TracePacket` fields.
pub(crate) mod packet {
    pub(crate) const TIMESTAMP: u32 = 8;
    pub(crate) const TRUSTED_PACKET_SEQUENCE_ID: u32 = 10;
    pub(crate) const TRACK_EVENT: u32 = 11;
    pub(crate) const INTERNED_DATA: u32 = 12;
    pub(crate) const SEQUENCE_FLAGS: u32 = 13;
    pub(crate) const TRACK_DESCRIPTOR: u32 = 60;
    pub(crate) const CLOCK_SNAPSHOT: u32 = 6;
    pub(crate) const COMPRESSED_PACKETS: u32 = 50;
    pub(crate) const TIMESTAMP_CLOCK_ID: u32 = 58;
    pub(crate) const TRACE_PACKET_DEFAULTS: u32 = 59;
    /// `TracePacket.perf_sample`: a CPU sample with its thread and callstack.
    pub(crate) const PERF_SAMPLE: u32 = 66;
    /// `SEQ_INCREMENTAL_STATE_CLEARED`.
    pub(crate) const SEQ_INCREMENTAL_STATE_CLEARED: u64 = 1;
}

/// `TracePacketDefaults`, `TrackEventDefaults`, `ClockSnapshot` and `CounterDescriptor` fields.
pub(crate) mod defaults {
    /// `TracePacketDefaults.track_event_defaults`.
    pub(crate) const TRACK_EVENT_DEFAULTS: u32 = 11;
    /// `TracePacketDefaults.timestamp_clock_id`.
    pub(crate) const TIMESTAMP_CLOCK_ID: u32 = 58;
    /// `TrackEventDefaults.track_uuid`.
    pub(crate) const TRACK_UUID: u32 = 11;
    /// `ClockSnapshot.clocks`.
    pub(crate) const CLOCKS: u32 = 1;
    /// `ClockSnapshot.Clock.clock_id`.
    pub(crate) const CLOCK_ID: u32 = 1;
    /// `ClockSnapshot.Clock.timestamp`.
    pub(crate) const CLOCK_TIMESTAMP: u32 = 2;
    /// `ClockSnapshot.Clock.is_incremental`.
    pub(crate) const CLOCK_IS_INCREMENTAL: u32 = 3;
    /// `CounterDescriptor.unit`.
    pub(crate) const COUNTER_UNIT: u32 = 3;
    /// `CounterDescriptor.UNIT_COUNT`.
    pub(crate) const UNIT_COUNT: u64 = 2;
    /// `CounterDescriptor.UNIT_SIZE_BYTES`.
    pub(crate) const UNIT_SIZE_BYTES: u64 = 3;
    /// `BUILTIN_CLOCK_BOOTTIME`: the trace processor's default clock, used
    /// for absolute timestamps.
    pub(crate) const CLOCK_BOOTTIME: u64 = 6;
    /// The sequence-scoped incremental clock of a thread sequence (64..=127
    /// are sequence-scoped clock ids).
    pub(crate) const CLOCK_INCREMENTAL: u64 = 64;
}

/// `TrackEvent` fields.
pub(crate) mod track_event {
    pub(crate) const CATEGORY_IIDS: u32 = 3;
    pub(crate) const DEBUG_ANNOTATIONS: u32 = 4;
    pub(crate) const TYPE: u32 = 9;
    pub(crate) const NAME_IID: u32 = 10;
    pub(crate) const TRACK_UUID: u32 = 11;
    pub(crate) const COUNTER_VALUE: u32 = 30;
    /// `repeated uint64 flow_ids_old = 36` (unpacked; what version 3 writes:
    /// a small id is 1 to 3 bytes instead of 8).
    pub(crate) const FLOW_IDS_OLD: u32 = 36;
    /// `repeated uint64 terminating_flow_ids_old = 42` (unpacked; version 3).
    pub(crate) const TERMINATING_FLOW_IDS_OLD: u32 = 42;
    /// `repeated fixed64 flow_ids = 47` (unpacked).
    pub(crate) const FLOW_IDS: u32 = 47;
    /// `repeated fixed64 terminating_flow_ids = 48` (unpacked).
    pub(crate) const TERMINATING_FLOW_IDS: u32 = 48;
    pub(crate) const TYPE_SLICE_BEGIN: u64 = 1;
    pub(crate) const TYPE_SLICE_END: u64 = 2;
    pub(crate) const TYPE_INSTANT: u64 = 3;
    pub(crate) const TYPE_COUNTER: u64 = 4;
}

/// `DebugAnnotation` fields.
pub(crate) mod annotation {
    pub(crate) const NAME_IID: u32 = 1;
    pub(crate) const UINT_VALUE: u32 = 3;
    pub(crate) const STRING_VALUE_IID: u32 = 17;
}

/// `InternedData` fields; every entry message has `iid = 1` and the value at 2.
pub(crate) mod interned {
    pub(crate) const EVENT_CATEGORIES: u32 = 1;
    pub(crate) const EVENT_NAMES: u32 = 2;
    pub(crate) const DEBUG_ANNOTATION_NAMES: u32 = 3;
    pub(crate) const DEBUG_ANNOTATION_STRING_VALUES: u32 = 29;
    pub(crate) const IID: u32 = 1;
    pub(crate) const VALUE: u32 = 2;
}

/// CPU sample fields: `PerfSample`, the callstack tables of `InternedData`
/// and their entries (`profile_common.proto`).
pub(crate) mod callstack {
    /// `InternedData.function_names` (`InternedString`: iid 1, str 2).
    pub(crate) const FUNCTION_NAMES: u32 = 5;
    /// `InternedData.frames`.
    pub(crate) const FRAMES: u32 = 6;
    /// `InternedData.callstacks`.
    pub(crate) const CALLSTACKS: u32 = 7;
    /// `InternedData.mapping_paths` (`InternedString`).
    pub(crate) const MAPPING_PATHS: u32 = 17;
    /// `InternedData.source_paths` (`InternedString`).
    pub(crate) const SOURCE_PATHS: u32 = 18;
    /// `InternedData.mappings`.
    pub(crate) const MAPPINGS: u32 = 19;
    /// `Frame.iid`, `Callstack.iid`, `Mapping.iid`.
    pub(crate) const IID: u32 = 1;
    /// `Frame.function_name_id`.
    pub(crate) const FRAME_FUNCTION: u32 = 2;
    /// `Frame.mapping_id`.
    pub(crate) const FRAME_MAPPING: u32 = 3;
    /// `Frame.rel_pc`.
    pub(crate) const FRAME_REL_PC: u32 = 4;
    /// `Frame.source_path_iid`.
    pub(crate) const FRAME_SOURCE: u32 = 5;
    /// `Frame.line_number`.
    pub(crate) const FRAME_LINE: u32 = 6;
    /// `Callstack.frame_ids` (repeated, unpacked; root frame first).
    pub(crate) const CALLSTACK_FRAMES: u32 = 2;
    /// `Mapping.start`.
    pub(crate) const MAPPING_START: u32 = 4;
    /// `Mapping.end`.
    pub(crate) const MAPPING_END: u32 = 5;
    /// `Mapping.path_string_ids` (repeated, unpacked).
    pub(crate) const MAPPING_PATH: u32 = 7;
    /// `Mapping.exact_offset`.
    pub(crate) const MAPPING_EXACT_OFFSET: u32 = 8;
    /// `PerfSample.pid`.
    pub(crate) const SAMPLE_PID: u32 = 2;
    /// `PerfSample.tid`.
    pub(crate) const SAMPLE_TID: u32 = 3;
    /// `PerfSample.callstack_iid`.
    pub(crate) const SAMPLE_CALLSTACK: u32 = 4;
    /// `PerfSample.cpu_mode`.
    pub(crate) const SAMPLE_CPU_MODE: u32 = 5;
    /// `Profiling.MODE_USER`: the samples are user-space stacks.
    pub(crate) const MODE_USER: u64 = 2;
}

/// `TrackDescriptor`, `ProcessDescriptor`, `ThreadDescriptor` fields.
pub(crate) mod track {
    pub(crate) const UUID: u32 = 1;
    pub(crate) const NAME: u32 = 2;
    pub(crate) const PROCESS: u32 = 3;
    pub(crate) const THREAD: u32 = 4;
    pub(crate) const PARENT_UUID: u32 = 5;
    pub(crate) const COUNTER: u32 = 8;
    pub(crate) const SIBLING_ORDER_RANK: u32 = 12;
    pub(crate) const DESCRIPTION: u32 = 14;
    pub(crate) const PROCESS_PID: u32 = 1;
    pub(crate) const PROCESS_NAME: u32 = 6;
    pub(crate) const THREAD_PID: u32 = 1;
    pub(crate) const THREAD_TID: u32 = 2;
    pub(crate) const THREAD_NAME: u32 = 5;
}

/// The one packet sequence a version 1 trace uses; in version 2 the process
/// sequence (header, registry, track descriptors, sampled counters, end marker).
pub(crate) const SEQUENCE_ID: u64 = 1;
/// Version 2: recorder thread `t` writes its events on sequence `THREAD_SEQUENCE_BASE + t`.
pub(crate) const THREAD_SEQUENCE_BASE: u64 = 2;

/// Marker in the process track's description: identifies a taskline trace and its layout version.
pub(crate) const FORMAT_MARKER: &str = "taskline trace format 1";
/// The version 2 marker.
pub(crate) const FORMAT_MARKER_V2: &str = "taskline trace format 2";
/// The version 3 marker.
pub(crate) const FORMAT_MARKER_V3: &str = "taskline trace format 3";
/// The version 4 marker (what the encoder writes).
pub(crate) const FORMAT_MARKER_V4: &str = "taskline trace format 4";

/// Version 2: sampled counter `k` (see [`SAMPLE_NAMES`]) is counter track
/// `SAMPLE_UUID_BASE + k`, on the process sequence.
pub(crate) const SAMPLE_UUID_BASE: u64 = 0x30;
/// Names of the sampled counter tracks of version 2 (index = sample kind).
pub(crate) const SAMPLE_NAMES: [&str; 3] = ["alive tasks", "runnable tasks", "process RSS"];
/// Sample kind of the process's resident set size (bytes).
pub(crate) const SAMPLE_RSS: usize = 2;

/// Track uuid of the process track (stats and counters hang off it).
pub(crate) const PROCESS_UUID: u64 = 1;
// 0x10..0x20 held format 1's per-kind counter tracks, which nothing ever
// wrote (no source recorded counter events); readers now ignore them.
/// Thread track uuid = `THREAD_UUID_BASE + recorder thread number`.
pub(crate) const THREAD_UUID_BASE: u64 = 0x100;
/// Span track (child of a thread track) uuid = `SPAN_UUID_BASE + thread number`.
pub(crate) const SPAN_UUID_BASE: u64 = 0x2_0000;
/// Synthetic OS tid of a thread track whose real tid is unknown = `TID_BASE
/// + thread number` (above every real tid, which is 32-bit).
pub(crate) const TID_BASE: u64 = 1 << 32;

/// The `ThreadDescriptor.tid` of recorder thread `t`: its OS thread id when
/// the registry knows it (so CPU samples, which name the OS thread, land on
/// its track), else the synthetic `TID_BASE + t`.
pub(crate) fn thread_tid(os_tid: Option<u32>, t: u16) -> u64 {
    os_tid.map_or(TID_BASE + u64::from(t), u64::from)
}

/// Registry string `id` is interned as debug-annotation string value `2*id+1`.
pub(crate) fn string_iid(id: u32) -> u64 {
    2 * u64::from(id) + 1
}
/// Registry site `id` is interned as debug-annotation string value `2*id+2`.
pub(crate) fn site_iid(id: u32) -> u64 {
    2 * u64::from(id) + 2
}

/// Interned category names (iid = index + 1). One per event group, so the
/// category and the TrackEvent type identify the [`EventKind`].
pub(crate) const CATEGORIES: [&str; 10] = [
    "spawn",     // 1
    "task_name", // 2
    "poll",      // 3
    "wake",      // 4
    "resource",  // 5
    "blocking",  // 6
    "terminate", // 7
    "idle",      // 8
    "span",      // 9
    "taskline",  // 10: the end marker with the recorder's stats
];
pub(crate) const CAT_TASKLINE: u64 = 10;

/// Fixed event names (iid = index + 1); task labels are interned after them.
pub(crate) const EVENT_NAMES: [&str; 13] = [
    "spawn",          // 1
    "task name",      // 2
    "wake",           // 3
    "resource wait",  // 4
    "terminate",      // 5
    "idle",           // 6
    "blocking",       // 7
    "block_in_place", // 8
    "poll",           // 9: a poll of a task whose name and site are unknown
    "span",           // 10
    "taskline.stats", // 11
    "io wake",        // 12: version 4, a `Wake` by the I/O driver
    "timer wake",     // 13: version 4, a `Wake` by the runtime's timer
];
pub(crate) const NAME_IDLE: u64 = 6;
pub(crate) const NAME_BLOCKING: u64 = 7;
pub(crate) const NAME_BLOCK_IN_PLACE: u64 = 8;
pub(crate) const NAME_POLL: u64 = 9;
pub(crate) const NAME_SPAN: u64 = 10;
pub(crate) const NAME_STATS: u64 = 11;
pub(crate) const NAME_IO_WAKE: u64 = 12;
pub(crate) const NAME_TIMER_WAKE: u64 = 13;
/// First iid handed to task labels and span names.
pub(crate) const FIRST_DYNAMIC_NAME_IID: u64 = 16;

/// Fixed debug annotation names (iid = index + 1).
pub(crate) const ANNOTATION_NAMES: [&str; 19] = [
    "task",             // 1
    "size_bytes",       // 2
    "site",             // 3
    "name",             // 4
    "sched_latency_ns", // 5
    "worker",           // 6
    "waker_task",       // 7
    "resource_id",      // 8
    "resource",         // 9
    "span_id",          // 10
    "flags",            // 11
    "thread",           // 12
    "arg",              // 13
    "aux",              // 14
    "dropped_events",   // 15
    "events_written",   // 16
    "events_skipped",   // 17
    "flows_written",    // 18
    "duplicates",       // 19: version 2, lifecycle reports written once
];
pub(crate) const A_TASK: u64 = 1;
pub(crate) const A_FLAGS: u64 = 11;
pub(crate) const A_DROPPED: u64 = 15;
pub(crate) const A_EVENTS_WRITTEN: u64 = 16;
pub(crate) const A_EVENTS_SKIPPED: u64 = 17;
pub(crate) const A_FLOWS: u64 = 18;
pub(crate) const A_DUPLICATES: u64 = 19;

/// What an event's `aux` refers to, which decides how it is annotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuxRef {
    /// A plain number; omitted when equal to the default.
    Plain(u32),
    /// A worker index; omitted when equal to the thread track's worker.
    Worker,
    /// A registry string id (annotated as an interned string when known).
    String,
    /// A registry site id (annotated as an interned string when known).
    Site,
}

/// How one [`EventKind`] is written: category, TrackEvent type and the
/// annotation names and defaults of its `arg` and `aux`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KindLayout {
    pub(crate) category: u64,
    pub(crate) ty: u64,
    pub(crate) arg_name: u64,
    pub(crate) arg_default: u64,
    pub(crate) aux_name: u64,
    pub(crate) aux: AuxRef,
}

/// The layout of `kind`.
pub(crate) fn layout(kind: EventKind) -> KindLayout {
    use track_event::*;
    let (category, ty, arg_name, arg_default, aux_name, aux) = match kind {
        EventKind::Spawn => (1, TYPE_INSTANT, 2, 0, 3, AuxRef::Site),
        EventKind::TaskName => (2, TYPE_INSTANT, 13, 0, 4, AuxRef::String),
        EventKind::PollStart => (3, TYPE_SLICE_BEGIN, 5, NO_VALUE, 6, AuxRef::Worker),
        EventKind::PollEnd => (3, TYPE_SLICE_END, 13, 0, 6, AuxRef::Worker),
        EventKind::Wake => (4, TYPE_INSTANT, 7, 0, 14, AuxRef::Plain(0)),
        EventKind::ResourceWait => (5, TYPE_INSTANT, 8, 0, 9, AuxRef::String),
        EventKind::BlockingStart => (6, TYPE_SLICE_BEGIN, 13, 0, 6, AuxRef::Worker),
        EventKind::BlockingEnd => (6, TYPE_SLICE_END, 13, 0, 6, AuxRef::Worker),
        EventKind::Terminate => (7, TYPE_INSTANT, 13, 0, 14, AuxRef::Plain(0)),
        EventKind::Park => (8, TYPE_SLICE_BEGIN, 13, 0, 6, AuxRef::Worker),
        EventKind::Unpark => (8, TYPE_SLICE_END, 13, 0, 6, AuxRef::Worker),
        EventKind::SpanEnter => (9, TYPE_SLICE_BEGIN, 10, 0, 4, AuxRef::String),
        EventKind::SpanExit => (9, TYPE_SLICE_END, 10, 0, 4, AuxRef::String),
    };
    KindLayout {
        category,
        ty,
        arg_name,
        arg_default,
        aux_name,
        aux,
    }
}

/// The kind written with `category` and TrackEvent type `ty`.
pub(crate) fn kind_of(category: u64, ty: u64) -> Option<EventKind> {
    EventKind::ALL.into_iter().find(|&k| {
        let l = layout(k);
        l.ty == ty && l.category == category
    })
}

/// Default `aux` of a worker-annotated event on a thread whose track says `worker`.
pub(crate) fn worker_default(worker: Option<u32>) -> u32 {
    worker.unwrap_or(NO_WORKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_unique_category_and_type() {
        for k in EventKind::ALL {
            let l = layout(k);
            assert_eq!(kind_of(l.category, l.ty), Some(k), "{k:?}");
        }
        assert_eq!(kind_of(CAT_TASKLINE, track_event::TYPE_INSTANT), None);
    }
}
