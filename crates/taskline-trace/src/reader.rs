//! [`read_trace`]: decodes a taskline trace (format version 1 to 4) back into
//! the exact events written and the registry naming their ids, and the flow
//! arrows it draws ([`FlowArrow`]).
//!
//! The decoder is strict and defensive: every length is checked against the
//! bytes left, unknown fields are skipped by wire type, groups nest at most 32
//! deep, a `compressed_packets` block may inflate to at most
//! [`MAX_INFLATED_BLOCK`] bytes, and everything else it allocates is
//! proportional to the input. A file that stops without the end marker (the
//! process crashed, was killed, or the file was cut) is read up to its last
//! whole packet and returned with [`Recording::unfinished`] set; anything
//! else that is not a taskline trace gives a [`TraceError`] with the byte
//! offset.

use taskline_core::Registry;
use taskline_core::{CodeFrame, CpuSample, Event, EventKind};

use crate::callstacks::{SampleReader, read_interned};
use crate::derive::{SeqModel, derived_kind};
use crate::error::{TraceError, TraceErrorKind as K};
use crate::reader_common::{Tables, entry};
use crate::schema::{self, AuxRef, annotation, defaults, interned, packet, track, track_event};
use crate::wire::{Reader, as_bytes, as_fixed64, as_str, as_varint};

/// A `compressed_packets` block inflating past this many bytes is rejected.
pub const MAX_INFLATED_BLOCK: usize = 64 << 20;

/// One sample of a counter track the writer derived or measured (version 2):
/// alive tasks, runnable tasks, process RSS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterSample {
    /// The counter track's name (`alive tasks`, `runnable tasks`, `process RSS`).
    pub track: &'static str,
    /// Nanoseconds since the recorder's clock epoch.
    pub ts_ns: u64,
    /// The value (tasks, or bytes for the RSS).
    pub value: i64,
}

/// Where a flow arrow starts: what woke the task, as the trace draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowStart {
    /// A `Wake` from inside another task's poll or blocking section (a
    /// `wake` instant naming the waking task).
    Task,
    /// A `Wake` by the runtime's I/O driver: an `io wake` instant on the
    /// worker thread that polled the driver, outside any poll (version 4).
    Io,
    /// A `Wake` by the runtime's timer, for a task that waited on a `Sleep`:
    /// a `timer wake` instant (version 4).
    Timer,
}

/// One flow arrow of a trace (format 2 on): from a `Wake` to the woken
/// task's next poll.
///
/// ```
/// use taskline_core::{Event, EventKind, Registry};
/// use taskline_trace::{FlowStart, encode_trace, read_trace};
/// // Task 9 polls on thread 1, goes idle; worker thread 0 parks and wakes
/// // it from the driver (no waker task, outside any poll): an I/O wake.
/// let at = |kind, ts, task, thread| {
///     let mut e = Event::new(kind, ts, task);
///     e.thread = thread;
///     if kind == EventKind::PollStart {
///         e.arg = taskline_core::NO_VALUE;
///     }
///     e
/// };
/// let events = [
///     at(EventKind::PollStart, 10, 9, 1),
///     at(EventKind::PollEnd, 20, 9, 1),
///     at(EventKind::Park, 30, 0, 0),
///     at(EventKind::Wake, 40, 9, 0),
///     at(EventKind::Unpark, 41, 0, 0),
///     at(EventKind::PollStart, 50, 9, 1),
///     at(EventKind::PollEnd, 60, 9, 1),
/// ];
/// let mut bytes = Vec::new();
/// encode_trace(&events, &Registry::new(), &mut bytes).unwrap();
/// let arrow = read_trace(&bytes).unwrap().flow_arrows[0];
/// assert_eq!(arrow.from, FlowStart::Io);
/// assert_eq!((arrow.task, arrow.start_thread, arrow.start_ns), (9, 0, 40));
/// assert_eq!(arrow.end, Some((1, 50)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowArrow {
    /// What woke the task.
    pub from: FlowStart,
    /// The woken task.
    pub task: u64,
    /// The thread of the `Wake` the arrow starts at (its track).
    pub start_thread: u16,
    /// The `Wake`'s timestamp (ns since the recorder's clock epoch).
    pub start_ns: u64,
    /// Thread and timestamp of the `PollStart` the arrow ends at; `None`
    /// when the trace ends before that poll.
    pub end: Option<(u16, u64)>,
}

/// A trace read back: the events, the registry naming their ids, and the
/// recorder's loss counts.
#[derive(Debug)]
pub struct Recording {
    /// Every event written, in timestamp order (events of one thread keep
    /// their recorded order).
    pub events: Vec<Event>,
    /// The strings, spawn sites and threads the events refer to.
    pub registry: Registry,
    /// Events the recorder dropped (rings full) before they reached the
    /// writer (0 when [`unfinished`](Self::unfinished): the count is in the end marker).
    pub dropped_events: u64,
    /// Events the writer could not encode (kind byte naming no kind).
    pub events_skipped: u64,
    /// Second reports of a task's spawn or termination the writer did not
    /// write (both sources reported them; version 2).
    pub duplicates_skipped: u64,
    /// Flow arrows started in the trace (one per cross-task or driver wake
    /// the writer could track).
    pub flows: u64,
    /// The flow arrows, in the order their starts are in the file (empty for
    /// a version 1 trace, which [`flows`](Self::flows) still counts).
    pub flow_arrows: Vec<FlowArrow>,
    /// Trace packets in the file (packets inside compressed blocks included).
    pub packets: u64,
    /// Samples of the counter tracks (version 2), in file order.
    pub counters: Vec<CounterSample>,
    /// CPU samples of a profiler (`PerfSample` packets; version 4 traces
    /// written with one), in file order: time, OS thread id and
    /// [`cpu_stacks`](Self::cpu_stacks) index. See
    /// [`cpu_sample_thread`](Self::cpu_sample_thread) for the track.
    pub cpu_samples: Vec<CpuSample>,
    /// The stacks of [`cpu_samples`](Self::cpu_samples), each innermost
    /// frame first (inlined functions are frames of their own).
    pub cpu_stacks: Vec<Vec<CodeFrame>>,
    /// The trace format version (1 to 4).
    pub format_version: u32,
    /// The file has no end marker: it was cut (crash, kill, full disk, a
    /// writer never finished) and holds what was written up to its last
    /// whole packet.
    pub unfinished: bool,
}

impl Recording {
    /// The recording thread whose track `sample` is on: the thread the
    /// trace names by the sample's OS thread id (the last one, should the
    /// OS have reused the id). `None` for a thread that recorded no event.
    pub fn cpu_sample_thread(&self, sample: &CpuSample) -> Option<u16> {
        self.registry
            .threads()
            .iter()
            .rev()
            .find(|t| t.tid == Some(sample.tid))
            .map(|t| t.id)
    }

    /// The frames of `sample`'s stack, innermost first.
    pub fn cpu_sample_frames(&self, sample: &CpuSample) -> &[CodeFrame] {
        self.cpu_stacks
            .get(sample.stack as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The events of each recording thread, in the order that thread
    /// recorded them: what a trace keeps exactly (format 2 stores a
    /// sequence per thread; the order *across* threads is rebuilt from the
    /// timestamps, so events of two threads whose timestamps were out of
    /// order in the input may come back in another interleaving).
    ///
    /// ```
    /// use taskline_core::{Event, EventKind, Registry};
    /// let mut a = Event::new(EventKind::Park, 10, 0);
    /// a.thread = 1;
    /// let mut b = Event::new(EventKind::Unpark, 20, 0);
    /// b.thread = 1;
    /// let mut bytes = Vec::new();
    /// taskline_trace::encode_trace(&[a, b], &Registry::new(), &mut bytes).unwrap();
    /// let rec = taskline_trace::read_trace(&bytes).unwrap();
    /// assert_eq!(rec.by_thread()[&1], vec![a, b]);
    /// ```
    pub fn by_thread(&self) -> std::collections::BTreeMap<u16, Vec<Event>> {
        events_by_thread(&self.events)
    }
}

/// `events` split by recording thread, each thread's in the order given
/// (see [`Recording::by_thread`]): how a round trip through a trace is
/// compared.
pub fn events_by_thread(events: &[Event]) -> std::collections::BTreeMap<u16, Vec<Event>> {
    let mut threads: std::collections::BTreeMap<u16, Vec<Event>> = Default::default();
    for e in events {
        threads.entry(e.thread).or_default().push(*e);
    }
    threads
}

/// Calls `f` with each whole top-level `Trace.packet` (body, offset). Stops
/// early when `f` returns `Ok(false)`. Returns the error that stopped the
/// reading when the input ends in the middle of a packet (an unfinished
/// file), `None` when it ends on a packet boundary.
pub(crate) fn for_each_packet(
    bytes: &[u8],
    mut f: impl FnMut(&[u8], usize) -> Result<bool, TraceError>,
) -> Result<Option<TraceError>, TraceError> {
    let mut top = Reader::new(bytes, 0);
    loop {
        match top.next_field() {
            Ok(None) => return Ok(None),
            Ok(Some((field, v))) => {
                if field != schema::TRACE_PACKET {
                    continue;
                }
                let (body, off) = as_bytes(v, top.offset(), "Trace.packet")?;
                if !f(body, off)? {
                    return Ok(None);
                }
            }
            Err(e) if matches!(e.kind, K::Truncated | K::LengthPastEnd { .. }) => {
                return Ok(Some(e));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The format version a packet's track descriptor announces, if any.
fn marker_of(body: &[u8], off: usize) -> Result<Option<u32>, TraceError> {
    let mut version = None;
    let mut r = Reader::new(body, off);
    while let Some((f, v)) = r.next_field()? {
        if f != packet::TRACK_DESCRIPTOR {
            continue;
        }
        let (b, o) = as_bytes(v, r.offset(), "TracePacket.track_descriptor")?;
        let mut tr = Reader::new(b, o);
        while let Some((tf, tv)) = tr.next_field()? {
            if tf == track::DESCRIPTION {
                match as_str(tv, tr.offset(), "TrackDescriptor.description")? {
                    schema::FORMAT_MARKER => version = Some(1),
                    schema::FORMAT_MARKER_V2 => version = Some(2),
                    schema::FORMAT_MARKER_V3 => version = Some(3),
                    schema::FORMAT_MARKER_V4 => version = Some(4),
                    _ => {}
                }
            }
        }
    }
    Ok(version)
}

/// Which format a trace's first packet (or, in a compressed first block,
/// its first inner packet) announces.
fn format_of(bytes: &[u8]) -> Result<Option<u32>, TraceError> {
    let mut version = None;
    for_each_packet(bytes, |body, off| {
        match compressed_block(body, off)? {
            Some(block) => {
                let mut data = Vec::new();
                inflate(block, off, &mut data)?;
                for_each_packet(&data, |b, o| {
                    version = marker_of(b, o)?;
                    Ok(false)
                })?;
            }
            None => version = marker_of(body, off)?,
        }
        Ok(false)
    })?;
    Ok(version)
}

/// Reads a taskline trace, version 1 to 4. A trace without an end marker
/// reads as far as its last whole packet, with [`Recording::unfinished`] set.
/// See the module docs for the guarantees.
pub fn read_trace(bytes: &[u8]) -> Result<Recording, TraceError> {
    match format_of(bytes) {
        Ok(Some(v @ (2..=4))) => read_v2(bytes, v),
        // Version 1, or not a taskline trace: the version 1 reader says which.
        _ => crate::reader_v1::read(bytes),
    }
}

#[derive(Clone, Copy, Default)]
struct Stats {
    dropped: u64,
    skipped: u64,
    duplicates: u64,
}

/// A thread sequence's reading state.
#[derive(Default)]
struct SeqState {
    started: bool,
    last_ts: u64,
    model: SeqModel,
}

#[derive(Default)]
struct V2 {
    /// 2 to 4: which [`SeqModel`] the thread sequences use.
    version: u32,
    packets: u64,
    tables: Tables,
    seqs: Vec<SeqState>,
    flows: u64,
    arrows: Vec<FlowArrow>,
    /// Flow id -> index in `arrows` of the arrow it started, until it ends
    /// (the writer reuses an id only after its flow ended).
    open_flows: taskline_core::IdMap<u64, usize>,
    events: Vec<Event>,
    counters: Vec<CounterSample>,
    cpu: SampleReader,
    stats: Option<Stats>,
}

/// One decoded debug annotation value.
#[derive(Clone, Copy)]
enum AnnValue {
    Uint(u64),
    Iid(u64),
}

fn err<T>(at: usize, kind: K) -> Result<T, TraceError> {
    Err(TraceError::new(at, kind))
}

fn read_v2(bytes: &[u8], version: u32) -> Result<Recording, TraceError> {
    let mut st = V2 {
        version,
        ..V2::default()
    };
    let mut inflated = Vec::new();
    let unfinished_tail = for_each_packet(bytes, |body, off| {
        if st.stats.is_some() {
            return err(off, K::Malformed("data after the end marker"));
        }
        match compressed_block(body, off)? {
            Some(block) => {
                inflate(block, off, &mut inflated)?;
                let data = std::mem::take(&mut inflated);
                // Inner packets are whole or the block is corrupt: errors point at the block.
                let tail = for_each_packet(&data, |b, _| {
                    if st.stats.is_some() {
                        return err(off, K::Malformed("data after the end marker"));
                    }
                    st.packet(b, off)?;
                    Ok(true)
                })
                .map_err(|e| TraceError::new(off, e.kind))?;
                if tail.is_some() {
                    return err(off, K::Malformed("compressed block ends inside a packet"));
                }
                inflated = data;
            }
            None => st.packet(body, off)?,
        }
        Ok(true)
    })?;
    if st.packets == 0 {
        return Err(unfinished_tail.unwrap_or(TraceError::new(0, K::Truncated)));
    }
    if let (Some(tail), Some(_)) = (&unfinished_tail, st.stats) {
        return err(tail.offset, K::Malformed("data after the end marker"));
    }
    let unfinished = unfinished_tail.is_some() || st.stats.is_none();
    let stats = st.stats.unwrap_or_default();
    sort_keeping_thread_order(&mut st.events);
    Ok(Recording {
        events: st.events,
        registry: Registry::from_parts(st.tables.strings, st.tables.sites, st.tables.threads),
        dropped_events: stats.dropped,
        events_skipped: stats.skipped,
        duplicates_skipped: stats.duplicates,
        flows: st.flows,
        flow_arrows: st.arrows,
        packets: st.packets,
        counters: st.counters,
        cpu_samples: st.cpu.samples,
        cpu_stacks: st.cpu.stacks,
        format_version: version,
        unfinished,
    })
}

/// Orders `events` (each thread's in file order) by timestamp while every
/// thread keeps its own order: the key is the running maximum of that
/// thread's timestamps, so a timestamp that goes backwards (a clock read
/// after a core migration, a damaged file) stays after the events its
/// thread recorded before it instead of jumping ahead of them. The sort is
/// stable, so equal keys keep their file order.
fn sort_keeping_thread_order(events: &mut Vec<Event>) {
    let mut high: Vec<u64> = Vec::new();
    let mut keyed: Vec<(u64, Event)> = events
        .drain(..)
        .map(|e| {
            let t = usize::from(e.thread);
            if high.len() <= t {
                high.resize(t + 1, 0);
            }
            high[t] = high[t].max(e.ts_ns);
            (high[t], e)
        })
        .collect();
    keyed.sort_by_key(|&(key, _)| key);
    events.extend(keyed.into_iter().map(|(_, e)| e));
}

/// The `compressed_packets` payload of a packet, if it is a compressed block.
fn compressed_block(body: &[u8], off: usize) -> Result<Option<&[u8]>, TraceError> {
    let mut r = Reader::new(body, off);
    let mut block = None;
    while let Some((f, v)) = r.next_field()? {
        if f == packet::COMPRESSED_PACKETS {
            block = Some(as_bytes(v, r.offset(), "TracePacket.compressed_packets")?.0);
        }
    }
    Ok(block)
}

/// Inflates a zlib stream into `out`, at most [`MAX_INFLATED_BLOCK`] bytes.
fn inflate(block: &[u8], off: usize, out: &mut Vec<u8>) -> Result<(), TraceError> {
    out.clear();
    let mut z = flate2::Decompress::new(true);
    loop {
        if out.len() == out.capacity() {
            if out.len() >= MAX_INFLATED_BLOCK {
                return err(
                    off,
                    K::Malformed("compressed block inflates past the limit"),
                );
            }
            let grow = (block.len() * 4).clamp(64 * 1024, MAX_INFLATED_BLOCK - out.len());
            out.reserve_exact(grow);
        }
        let consumed = z.total_in() as usize;
        let before = (z.total_in(), z.total_out());
        match z.decompress_vec(&block[consumed..], out, flate2::FlushDecompress::None) {
            Ok(flate2::Status::StreamEnd) => return Ok(()),
            Ok(_) => {
                if (z.total_in(), z.total_out()) == before && out.len() < out.capacity() {
                    return err(off, K::Malformed("compressed block is truncated"));
                }
            }
            Err(_) => return err(off, K::Malformed("compressed block does not inflate")),
        }
    }
}

impl V2 {
    fn packet(&mut self, body: &[u8], off: usize) -> Result<(), TraceError> {
        let mut r = Reader::new(body, off);
        let mut ts = None;
        let mut seq = None;
        let mut te = None;
        let mut idata = None;
        let mut td = None;
        let mut cpu_sample = None;
        let mut flags = 0;
        let mut clock = None;
        let mut has_defaults = false;
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                packet::TIMESTAMP => ts = Some(as_varint(v, at, "TracePacket.timestamp")?),
                packet::TRUSTED_PACKET_SEQUENCE_ID => {
                    seq = Some(as_varint(v, at, "TracePacket.trusted_packet_sequence_id")?)
                }
                packet::TRACK_EVENT => te = Some(as_bytes(v, at, "TracePacket.track_event")?),
                packet::INTERNED_DATA => {
                    idata = Some(as_bytes(v, at, "TracePacket.interned_data")?)
                }
                packet::TRACK_DESCRIPTOR => {
                    td = Some(as_bytes(v, at, "TracePacket.track_descriptor")?)
                }
                packet::SEQUENCE_FLAGS => flags = as_varint(v, at, "TracePacket.sequence_flags")?,
                packet::TIMESTAMP_CLOCK_ID => {
                    clock = Some(as_varint(v, at, "TracePacket.timestamp_clock_id")?)
                }
                packet::PERF_SAMPLE => {
                    cpu_sample = Some(as_bytes(v, at, "TracePacket.perf_sample")?)
                }
                packet::TRACE_PACKET_DEFAULTS => {
                    as_bytes(v, at, "TracePacket.trace_packet_defaults")?;
                    has_defaults = true;
                }
                packet::COMPRESSED_PACKETS => {
                    return err(
                        off,
                        K::Malformed("compressed block inside a compressed block"),
                    );
                }
                _ => {}
            }
        }
        self.packets += 1;
        let seq =
            seq.ok_or_else(|| TraceError::new(off, K::Malformed("packet without sequence")))?;
        if seq == schema::SEQUENCE_ID {
            if let Some((b, o)) = idata {
                self.interned(b, o)?;
                read_interned(&mut self.cpu, b, o)?;
            }
            if let Some((b, o)) = td {
                self.tables.track_descriptor(b, o)?;
            }
            if let Some((b, o)) = te {
                let ts = ts.ok_or_else(|| {
                    TraceError::new(off, K::Malformed("track event without timestamp"))
                })?;
                self.process_event(b, o, ts)?;
            }
            if let Some((b, o)) = cpu_sample {
                let ts = ts.ok_or_else(|| {
                    TraceError::new(off, K::Malformed("CPU sample without timestamp"))
                })?;
                self.cpu.sample(b, o, ts)?;
            }
            return Ok(());
        }
        if cpu_sample.is_some() {
            return err(off, K::Malformed("CPU sample off the process sequence"));
        }
        let t = seq
            .checked_sub(schema::THREAD_SEQUENCE_BASE)
            .filter(|&t| t < self.tables.threads.len() as u64)
            .ok_or_else(|| TraceError::new(off, K::Malformed("packet on an unexpected sequence")))?
            as usize;
        if self.seqs.len() <= t {
            let model = SeqModel::for_version(self.version);
            self.seqs.resize_with(t + 1, || SeqState {
                model: model.clone(),
                ..SeqState::default()
            });
        }
        if flags & packet::SEQ_INCREMENTAL_STATE_CLEARED != 0 {
            if !has_defaults {
                return err(off, K::Malformed("thread sequence starts without defaults"));
            }
            let s = &mut self.seqs[t];
            if s.started {
                return err(off, K::Malformed("thread sequence restarted"));
            }
            s.started = true;
        }
        if !self.seqs[t].started {
            return err(off, K::Malformed("thread sequence used before it starts"));
        }
        if let Some((b, o)) = te {
            let delta = ts.ok_or_else(|| {
                TraceError::new(off, K::Malformed("track event without timestamp"))
            })?;
            let s = &mut self.seqs[t];
            let ts = match clock {
                Some(defaults::CLOCK_BOOTTIME) => delta,
                None | Some(defaults::CLOCK_INCREMENTAL) => {
                    s.last_ts = s
                        .last_ts
                        .checked_add(delta)
                        .ok_or_else(|| TraceError::new(off, K::Malformed("timestamp overflows")))?;
                    s.last_ts
                }
                Some(_) => return err(off, K::Malformed("unexpected timestamp clock")),
            };
            self.thread_event(b, o, ts, t)?;
        }
        Ok(())
    }

    fn interned(&mut self, body: &[u8], off: usize) -> Result<(), TraceError> {
        let mut r = Reader::new(body, off);
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            if f != interned::DEBUG_ANNOTATION_STRING_VALUES {
                continue;
            }
            let (b, o) = as_bytes(v, at, "interned string value")?;
            let (iid, v, vat) = entry(b, o)?;
            let s = as_str(v, vat, "interned string value")?;
            self.tables.registry_entry(iid, s, o, vat)?;
        }
        Ok(())
    }

    /// A track event on the process sequence: a counter sample or the end marker.
    fn process_event(&mut self, body: &[u8], off: usize, ts: u64) -> Result<(), TraceError> {
        let ev = RawEvent::parse(body, off, &mut self.flows)?;
        let sample_range =
            schema::SAMPLE_UUID_BASE..schema::SAMPLE_UUID_BASE + schema::SAMPLE_NAMES.len() as u64;
        if ev.ty == Some(track_event::TYPE_COUNTER) {
            let uuid = ev.track.unwrap_or(0);
            if !sample_range.contains(&uuid) {
                return err(off, K::UnknownTrack(uuid));
            }
            let value = ev
                .counter
                .ok_or_else(|| TraceError::new(off, K::Malformed("counter without value")))?;
            self.counters.push(CounterSample {
                track: schema::SAMPLE_NAMES[(uuid - schema::SAMPLE_UUID_BASE) as usize],
                ts_ns: ts,
                value: value as i64,
            });
            return Ok(());
        }
        if ev.category == Some(schema::CAT_TASKLINE) && ev.ty == Some(track_event::TYPE_INSTANT) {
            let uint = |i: u64| match ev.anns[i as usize] {
                Some(AnnValue::Uint(x)) => x,
                _ => 0,
            };
            self.stats = Some(Stats {
                dropped: uint(schema::A_DROPPED),
                skipped: uint(schema::A_EVENTS_SKIPPED),
                duplicates: uint(schema::A_DUPLICATES),
            });
            return Ok(());
        }
        err(
            off,
            K::Malformed("unexpected track event on the process sequence"),
        )
    }

    fn thread_event(
        &mut self,
        body: &[u8],
        off: usize,
        ts: u64,
        t: usize,
    ) -> Result<(), TraceError> {
        let ev = RawEvent::parse(body, off, &mut self.flows)?;
        let ty = ev
            .ty
            .ok_or_else(|| TraceError::new(off, K::Malformed("track event without type")))?;
        let thread_uuid = schema::THREAD_UUID_BASE + t as u64;
        let span_uuid = schema::SPAN_UUID_BASE + t as u64;
        let uuid = ev.track.unwrap_or(thread_uuid);
        let on_span = uuid == span_uuid;
        if on_span && !self.tables.span_tracks[t] {
            return err(off, K::UnknownTrack(uuid));
        }
        let seq = &mut self.seqs[t];
        let kind = match ev.category {
            Some(c) => schema::kind_of(c, ty),
            None => derived_kind(ty, ev.name, on_span, &seq.model),
        }
        .ok_or_else(|| TraceError::new(off, K::Malformed("track event of unknown kind")))?;
        // The track must be the one the kind goes on.
        let expected_track = match kind {
            EventKind::SpanEnter | EventKind::SpanExit => on_span,
            _ => uuid == thread_uuid,
        };
        if !expected_track {
            return err(off, K::UnknownTrack(uuid));
        }
        let l = schema::layout(kind);
        let mut e = seq.model.predict(kind);
        e.ts_ns = ts;
        e.thread = t as u16;
        if let Some(AnnValue::Uint(x)) = ev.anns[schema::A_TASK as usize] {
            e.task = x;
        }
        if let Some(AnnValue::Uint(x)) = ev.anns[l.arg_name as usize] {
            e.arg = x;
        }
        match ev.anns[l.aux_name as usize] {
            Some(AnnValue::Uint(x)) => {
                e.aux = u32::try_from(x)
                    .map_err(|_| TraceError::new(off, K::Malformed("aux value too large")))?
            }
            Some(AnnValue::Iid(iid)) => {
                e.aux = match l.aux {
                    AuxRef::String
                        if iid % 2 == 1 && (iid - 1) / 2 < self.tables.strings.len() as u64 =>
                    {
                        ((iid - 1) / 2) as u32
                    }
                    AuxRef::Site
                        if iid >= 2
                            && iid % 2 == 0
                            && (iid - 2) / 2 < self.tables.sites.len() as u64 =>
                    {
                        ((iid - 2) / 2) as u32
                    }
                    _ => {
                        return err(
                            off,
                            K::UnknownIid {
                                table: "string value",
                                iid,
                            },
                        );
                    }
                }
            }
            None => {}
        }
        if let Some(AnnValue::Uint(f)) = ev.anns[schema::A_FLAGS as usize] {
            e.flags = u8::try_from(f)
                .map_err(|_| TraceError::new(off, K::Malformed("flags too large")))?;
        }
        seq.model.apply(&e);
        if let Some(id) = ev.flow_end
            && let Some(i) = self.open_flows.remove(&id)
        {
            self.arrows[i].end = Some((e.thread, e.ts_ns));
        }
        if let Some(id) = ev.flow_start {
            let from = match ev.name {
                Some(schema::NAME_IO_WAKE) => FlowStart::Io,
                Some(schema::NAME_TIMER_WAKE) => FlowStart::Timer,
                _ => FlowStart::Task,
            };
            self.open_flows.insert(id, self.arrows.len());
            self.arrows.push(FlowArrow {
                from,
                task: e.task,
                start_thread: e.thread,
                start_ns: e.ts_ns,
                end: None,
            });
        }
        self.events.push(e);
        Ok(())
    }
}

/// The fields of a version 2 `TrackEvent` the reader uses.
struct RawEvent {
    category: Option<u64>,
    ty: Option<u64>,
    name: Option<u64>,
    track: Option<u64>,
    counter: Option<u64>,
    /// The first flow id the event starts and the first it terminates.
    flow_start: Option<u64>,
    flow_end: Option<u64>,
    anns: [Option<AnnValue>; schema::ANNOTATION_NAMES.len() + 1],
}

impl RawEvent {
    fn parse(body: &[u8], off: usize, flows: &mut u64) -> Result<RawEvent, TraceError> {
        let mut ev = RawEvent {
            category: None,
            ty: None,
            name: None,
            track: None,
            counter: None,
            flow_start: None,
            flow_end: None,
            anns: [None; schema::ANNOTATION_NAMES.len() + 1],
        };
        let mut r = Reader::new(body, off);
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                track_event::CATEGORY_IIDS => {
                    let iid = as_varint(v, at, "TrackEvent.category_iids")?;
                    if iid == 0 || iid > schema::CATEGORIES.len() as u64 {
                        return err(
                            at,
                            K::UnknownIid {
                                table: "category",
                                iid,
                            },
                        );
                    }
                    ev.category.get_or_insert(iid);
                }
                track_event::DEBUG_ANNOTATIONS => {
                    let (b, o) = as_bytes(v, at, "TrackEvent.debug_annotations")?;
                    let (name, value) = annotation_of(b, o)?;
                    ev.anns[name as usize] = Some(value);
                }
                track_event::TYPE => ev.ty = Some(as_varint(v, at, "TrackEvent.type")?),
                track_event::NAME_IID => ev.name = Some(as_varint(v, at, "TrackEvent.name_iid")?),
                track_event::TRACK_UUID => {
                    ev.track = Some(as_varint(v, at, "TrackEvent.track_uuid")?)
                }
                track_event::COUNTER_VALUE => {
                    ev.counter = Some(as_varint(v, at, "TrackEvent.counter_value")?)
                }
                track_event::FLOW_IDS => {
                    let id = as_fixed64(v, at, "TrackEvent.flow_ids")?;
                    ev.flow_start.get_or_insert(id);
                    *flows += 1;
                }
                track_event::TERMINATING_FLOW_IDS => {
                    let id = as_fixed64(v, at, "TrackEvent.terminating_flow_ids")?;
                    ev.flow_end.get_or_insert(id);
                }
                track_event::FLOW_IDS_OLD => {
                    let id = as_varint(v, at, "TrackEvent.flow_ids_old")?;
                    ev.flow_start.get_or_insert(id);
                    *flows += 1;
                }
                track_event::TERMINATING_FLOW_IDS_OLD => {
                    let id = as_varint(v, at, "TrackEvent.terminating_flow_ids_old")?;
                    ev.flow_end.get_or_insert(id);
                }
                _ => {}
            }
        }
        Ok(ev)
    }
}

/// Decodes one debug annotation into (fixed name iid, value).
fn annotation_of(body: &[u8], off: usize) -> Result<(u64, AnnValue), TraceError> {
    let mut r = Reader::new(body, off);
    let mut name = None;
    let mut value = None;
    while let Some((f, v)) = r.next_field()? {
        let at = r.offset();
        match f {
            annotation::NAME_IID => {
                let iid = as_varint(v, at, "DebugAnnotation.name_iid")?;
                if iid == 0 || iid > schema::ANNOTATION_NAMES.len() as u64 {
                    return err(
                        at,
                        K::UnknownIid {
                            table: "annotation name",
                            iid,
                        },
                    );
                }
                name = Some(iid);
            }
            annotation::UINT_VALUE => {
                value = Some(AnnValue::Uint(as_varint(
                    v,
                    at,
                    "DebugAnnotation.uint_value",
                )?))
            }
            annotation::STRING_VALUE_IID => {
                value = Some(AnnValue::Iid(as_varint(
                    v,
                    at,
                    "DebugAnnotation.string_value_iid",
                )?))
            }
            _ => {}
        }
    }
    match (name, value) {
        (Some(n), Some(v)) => Ok((n, v)),
        _ => err(off, K::Malformed("debug annotation without name or value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_taskline_trace() {
        assert_eq!(
            read_trace(&[]).unwrap_err().kind,
            K::NotTaskline("no packets")
        );
        let e = read_trace(&[0x0a, 0x02, 0x50, 0x07]).unwrap_err();
        assert!(matches!(e.kind, K::NotTaskline(_)), "{e}");
        assert!(read_trace(b"\x0a\xff\xff").is_err());
    }

    #[test]
    fn a_bomb_block_is_refused() {
        // A zlib stream of 100 MiB of zeros in a compressed block.
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..100 {
            z.write_all(&zeros).unwrap();
        }
        let block = z.finish().unwrap();
        let mut out = Vec::new();
        assert!(inflate(&block, 0, &mut out).is_err());
        assert!(out.capacity() <= MAX_INFLATED_BLOCK + 64 * 1024 * 4);
    }
}
