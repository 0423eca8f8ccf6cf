//! Turns [`Event`]s into framed Perfetto `TracePacket`s of trace format
//! version 4 (no I/O). See `docs/trace-format.md` for the layout.
//!
//! Each recording thread's events go on a packet sequence of their own, in
//! the order they arrive (the ring order of that thread): no cross-thread
//! merge is needed, since Perfetto's trace processor sorts sequences itself.
//! A thread sequence starts with one packet that sets its defaults (the
//! thread's track, an incremental clock) and its interning state; after it,
//! an event packet holds a timestamp delta, the sequence id and a
//! `TrackEvent` with only what [`SeqModel`] cannot predict.
//!
//! The process sequence (1) holds the header, the registry, the track
//! descriptors, the sampled counters (alive and runnable tasks, derived
//! from the event stream; the process RSS when sampling is on) and the end
//! marker.
//!
//! Flow arrows join a `Wake` to the woken task's next `PollStart`: from the
//! waking task's poll (a cross-task wake), or from the worker thread that
//! woke it outside any poll, the runtime's I/O driver or timer. Which one is
//! decided by the core's rule, [`ThreadRoles::wake_reason`], fed every
//! event; such a wake's instant is named `io wake` / `timer wake`.
//!
//! Packets can be deflated into `compressed_packets` blocks of
//! [`COMPRESS_BLOCK`] bytes. Per-task state is bounded by
//! `max_tracked_tasks`; past it, polls are named `poll`, wakes get no flow
//! arrow and lifecycle events are no longer deduplicated (events are still
//! written losslessly).

use taskline_core::IdMap;

use taskline_core::{Event, EventKind, flags};
use taskline_core::{NameLookup, TaskLife, ThreadRoles, WakeReason};
use taskline_core::{Registry, Site};

use crate::callstacks::SampleWriter;
use crate::derive::{SeqModel, derived_kind};
use crate::schema::{self, AuxRef, annotation, defaults, interned, packet, track, track_event};
use crate::wire::{begin_nested, end_nested, put_bytes, put_int32, put_uint, put_varint};

/// Registry entries per interned-data packet.
const INTERN_CHUNK: usize = 256;
/// Raw packet bytes deflated into one `compressed_packets` block.
pub(crate) const COMPRESS_BLOCK: usize = 256 * 1024;
/// Terminated tasks remembered after their entry is dropped, to catch a late second report.
const RECENT_TERMINATIONS: usize = 4096;
/// Derived counters (alive, runnable tasks) are sampled at most this often, in event time.
pub(crate) const SAMPLE_INTERVAL_NS: u64 = 1_000_000;

/// Events after a `Wake` searched for the woken task's poll on the same thread.
const LOOKAHEAD: usize = 16;
/// Free flow ids kept for reuse at most.
const MAX_FREE_FLOWS: usize = 4096;

/// Initial slots of [`TaskTable`]'s direct-mapped part (it doubles on a
/// collision up to `max_tracked_tasks` rounded up to a power of two).
const TASK_SLOTS: usize = 1024;

/// Per-task state keyed by task id. Tokio's ids are sequential, so a
/// direct-mapped array (slot `id % slots`) holds nearly every live
/// task: consecutive tasks sit in consecutive memory, and a lookup is one
/// compare instead of a hash probe into a table that has long left the
/// cache. Ids whose slot is taken go to an overflow map.
struct TaskTable {
    slots: Vec<(u64, TaskState)>,
    /// `slots.len() - 1` (slots is empty or a power of two long).
    mask: usize,
    max_slots: usize,
    overflow: IdMap<u64, TaskState>,
    len: usize,
}

impl TaskTable {
    fn new(max_tasks: usize) -> Self {
        TaskTable {
            slots: Vec::new(),
            mask: 0,
            max_slots: max_tasks.clamp(TASK_SLOTS, 1 << 20).next_power_of_two(),
            overflow: IdMap::default(),
            len: 0,
        }
    }

    #[inline]
    fn slot(&self, id: u64) -> usize {
        (id as usize) & self.mask
    }

    /// Doubles the direct-mapped part and re-places every entry.
    #[cold]
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(TASK_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![(0, TaskState::default()); n]);
        self.mask = n - 1;
        let overflow = std::mem::take(&mut self.overflow);
        for (id, st) in old.into_iter().filter(|s| s.0 != 0).chain(overflow) {
            let i = self.slot(id);
            if self.slots[i].0 == 0 {
                self.slots[i] = (id, st);
            } else {
                self.overflow.insert(id, st);
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn get_mut(&mut self, id: &u64) -> Option<&mut TaskState> {
        let id = *id;
        if id == 0 {
            return None;
        }
        let i = self.slot(id);
        if let Some(s) = self.slots.get_mut(i)
            && s.0 == id
        {
            return Some(&mut s.1);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get_mut(&id)
    }

    #[inline]
    fn get(&self, id: &u64) -> Option<&TaskState> {
        let id = *id;
        if let Some(s) = self.slots.get(self.slot(id))
            && s.0 == id
            && id != 0
        {
            return Some(&s.1);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.get(&id)
    }

    fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    /// The entry of `id` (non-zero), inserted as default when missing.
    #[inline]
    fn entry_or_default(&mut self, id: u64) -> &mut TaskState {
        if self.slots.is_empty() {
            self.grow();
        }
        let mut i = self.slot(id);
        let mut here = self.slots[i].0;
        if here != id && here != 0 && self.slots.len() < self.max_slots {
            self.grow();
            i = self.slot(id);
            here = self.slots[i].0;
        }
        if here == id {
            return &mut self.slots[i].1;
        }
        if here == 0 && !self.overflow.contains_key(&id) {
            self.slots[i] = (id, TaskState::default());
            self.len += 1;
            return &mut self.slots[i].1;
        }
        let len = &mut self.len;
        self.overflow.entry(id).or_insert_with(|| {
            *len += 1;
            TaskState::default()
        })
    }

    fn remove(&mut self, id: &u64) {
        let id = *id;
        let i = self.slot(id);
        if let Some(s) = self.slots.get_mut(i)
            && s.0 == id
            && id != 0
        {
            *s = (0, TaskState::default());
            self.len -= 1;
        } else if self.overflow.remove(&id).is_some() {
            self.len -= 1;
        }
    }
}

/// What a task's polls are named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Label {
    Name(u32),
    Site(u32),
}

/// The writer's per-task state (one map entry per live task it tracks).
#[derive(Clone, Copy, Debug)]
struct TaskState {
    /// The task's lifecycle state, which the wake-reason rule reads (its
    /// last poll's timer wait and where that poll ended): the encoder
    /// applies `poll_start`, `poll_end` + `set_last_poll`, `wake` and
    /// `resource_wait` as the core's `TaskTracker` does.
    life: TaskLife,
    label: Option<Label>,
    /// The interned name iid of `label` (0: not looked up yet).
    label_iid: u64,
    /// A flow waiting for the task's next poll.
    pending_flow: Option<u64>,
    /// Sources (bit 0: hooks, bit 1: layer) that reported the spawn.
    spawned: u8,
    /// Sources that reported the termination.
    terminated: u8,
    /// Whether a `Terminate` was written.
    term_written: bool,
    /// Spawned or woken, not polled since.
    runnable: bool,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState {
            life: TaskLife::spawned(0),
            label: None,
            label_iid: 0,
            pending_flow: None,
            spawned: 0,
            terminated: 0,
            term_written: false,
            runnable: false,
        }
    }
}

fn source_bit(e: &Event) -> u8 {
    if e.has_flag(flags::FROM_LAYER) { 2 } else { 1 }
}

#[derive(Clone, Copy, Debug, Default)]
struct ThreadTrack {
    /// The worker index the emitted descriptor announced.
    worker: Option<u32>,
    /// Whether the child track for spans was described.
    span_track: bool,
    /// Whether `spawn_blocking` sections ran on it (a blocking-pool thread).
    blocking: bool,
}

/// One thread's packet sequence.
#[derive(Default)]
struct Seq {
    started: bool,
    last_ts: u64,
    model: SeqModel,
    /// Bit `i`: dynamic event name `FIRST_DYNAMIC_NAME_IID + i` interned on this sequence.
    names: Vec<u64>,
    /// Bit `i`: debug-annotation string value iid `i` interned on this sequence.
    values: Vec<u64>,
}

fn test_and_set(bits: &mut Vec<u64>, i: u64) -> bool {
    let (w, b) = ((i / 64) as usize, i % 64);
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    let was = bits[w] & (1 << b) != 0;
    bits[w] |= 1 << b;
    was
}

/// Counts of what the encoder wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EncoderStats {
    pub(crate) events_written: u64,
    pub(crate) events_skipped: u64,
    pub(crate) flows_written: u64,
    /// Second reports of a task's spawn or termination (from the other source), not written.
    pub(crate) duplicates: u64,
    /// Counter samples written.
    pub(crate) samples: u64,
    /// CPU samples written (`PerfSample` packets).
    pub(crate) cpu_samples: u64,
}

/// What the encoder does beyond writing events losslessly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EncodeOptions {
    /// Write a task's `Spawn` and `Terminate` once when both sources report them.
    pub(crate) dedup_lifecycle: bool,
    /// Deflate packets into `compressed_packets` blocks.
    pub(crate) compress: bool,
    /// Per-task state for at most this many live tasks.
    pub(crate) max_tracked_tasks: usize,
}

/// Streaming encoder state for one trace.
pub(crate) struct Encoder {
    /// Finished bytes (framed packets, possibly compressed) for the output.
    pub(crate) out: Vec<u8>,
    /// Packets not yet deflated (only used when compressing).
    raw: Vec<u8>,
    deflate: Option<flate2::Compress>,
    opts: EncodeOptions,
    started: bool,
    pid: i32,
    process_name: String,
    strings_emitted: u32,
    sites_emitted: u32,
    threads: Vec<ThreadTrack>,
    seqs: Vec<Seq>,
    samples_described: u8,
    names: IdMap<Label, u64>,
    next_name_iid: u64,
    tasks: TaskTable,
    /// Tasks whose termination was written and whose entry is gone, with the
    /// sources that reported it: a late report from another source is still
    /// a duplicate (bounded FIFO of [`RECENT_TERMINATIONS`]).
    recent_terms: IdMap<u64, u8>,
    recent_order: std::collections::VecDeque<u64>,
    /// Sources (bit 0: hooks, bit 1: layer) that reported any spawn so far:
    /// with one source there is no second report to catch, so
    /// `recent_terms` stays empty (no hash insert per terminated task).
    spawn_sources: u8,
    next_flow: u64,
    /// Flow ids whose flow was terminated, with the timestamp it ended at:
    /// reused (oldest first) by a flow that starts later, so ids stay small.
    free_flows: std::collections::VecDeque<(u64, u64)>,
    /// Set by [`Encoder::event_at`] for a `Wake`: the task of the next
    /// `PollStart` on the same thread within [`LOOKAHEAD`] events.
    next_poll_here: Option<u64>,
    /// What each recording thread is doing (polling, in a driver turn, in
    /// a blocking section), for [`ThreadRoles::wake_reason`].
    roles: ThreadRoles,
    /// Per registry string id: 0 not looked up, 1 a timer resource kind,
    /// 2 another (bounded by the registry's `max_interned`).
    timer_kinds: Vec<u8>,
    alive: i64,
    runnable: i64,
    next_sample_ts: u64,
    last_samples: [Option<i64>; 2],
    last_ts: u64,
    /// Interning state of the CPU samples' stacks.
    cpu: SampleWriter,
    pub(crate) stats: EncoderStats,
}

fn process_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "taskline".to_owned())
}

/// The interned form of a site: `file:line:col (kind)`, parsed back by the reader.
pub(crate) fn site_string(site: &Site) -> String {
    format!("{site} ({})", site.kind.as_str())
}

fn put_entry(out: &mut Vec<u8>, field: u32, iid: u64, value: &[u8]) {
    let m = begin_nested(out, field);
    put_uint(out, interned::IID, iid);
    put_bytes(out, interned::VALUE, value);
    end_nested(out, m);
}

/// The fixed interned names every sequence starts with.
fn put_fixed_names(o: &mut Vec<u8>) {
    let m = begin_nested(o, packet::INTERNED_DATA);
    for (i, c) in schema::CATEGORIES.iter().enumerate() {
        put_entry(o, interned::EVENT_CATEGORIES, i as u64 + 1, c.as_bytes());
    }
    for (i, n) in schema::EVENT_NAMES.iter().enumerate() {
        put_entry(o, interned::EVENT_NAMES, i as u64 + 1, n.as_bytes());
    }
    for (i, n) in schema::ANNOTATION_NAMES.iter().enumerate() {
        put_entry(
            o,
            interned::DEBUG_ANNOTATION_NAMES,
            i as u64 + 1,
            n.as_bytes(),
        );
    }
    end_nested(o, m);
}

/// The fixed event name of an event of `kind` (instants, idle), or `None`
/// when it is named after its task or span (or not named).
pub(crate) fn fixed_name(kind: EventKind) -> Option<u64> {
    match kind {
        EventKind::Spawn => Some(1),
        EventKind::TaskName => Some(2),
        EventKind::Wake => Some(3),
        EventKind::ResourceWait => Some(4),
        EventKind::Terminate => Some(5),
        EventKind::Park => Some(schema::NAME_IDLE),
        _ => None,
    }
}

impl Encoder {
    /// A fresh trace.
    pub(crate) fn new(opts: EncodeOptions) -> Self {
        Encoder {
            out: Vec::with_capacity(64 * 1024),
            raw: Vec::new(),
            deflate: opts
                .compress
                .then(|| flate2::Compress::new(flate2::Compression::fast(), true)),
            opts,
            started: false,
            pid: std::process::id() as i32,
            process_name: process_name(),
            strings_emitted: 0,
            sites_emitted: 0,
            threads: Vec::new(),
            seqs: Vec::new(),
            samples_described: 0,
            names: IdMap::default(),
            next_name_iid: schema::FIRST_DYNAMIC_NAME_IID,
            tasks: TaskTable::new(opts.max_tracked_tasks),
            recent_terms: IdMap::default(),
            recent_order: std::collections::VecDeque::new(),
            spawn_sources: 0,
            next_flow: 1,
            free_flows: std::collections::VecDeque::new(),
            next_poll_here: None,
            roles: ThreadRoles::default(),
            timer_kinds: Vec::new(),
            alive: 0,
            runnable: 0,
            next_sample_ts: 0,
            last_samples: [None; 2],
            last_ts: 0,
            cpu: SampleWriter::default(),
            stats: EncoderStats::default(),
        }
    }

    /// Where packets go: the deflate staging buffer or the output.
    #[inline]
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.opts.compress {
            &mut self.raw
        } else {
            &mut self.out
        }
    }

    /// Deflates staged packets into a `compressed_packets` block once
    /// [`COMPRESS_BLOCK`] bytes are staged (every staged byte when `force`).
    pub(crate) fn seal(&mut self, force: bool) {
        if !self.opts.compress || self.raw.is_empty() || (!force && self.raw.len() < COMPRESS_BLOCK)
        {
            return;
        }
        let Some(z) = self.deflate.as_mut() else {
            return;
        };
        z.reset();
        let mut packed: Vec<u8> = Vec::with_capacity(self.raw.len() / 2 + 64);
        loop {
            let consumed = z.total_in() as usize;
            let status = z.compress_vec(
                &self.raw[consumed..],
                &mut packed,
                flate2::FlushCompress::Finish,
            );
            match status {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => packed.reserve(packed.capacity().max(4096)),
                Err(_) => {
                    // Deflate cannot fail on valid input; keep the packets uncompressed if it does.
                    self.out.extend_from_slice(&self.raw);
                    self.raw.clear();
                    return;
                }
            }
        }
        // TracePacket { compressed_packets = bytes }
        let mut body_len = Vec::with_capacity(10);
        put_varint(&mut body_len, packed.len() as u64);
        let inner = 2 + body_len.len() + packed.len();
        put_varint(&mut self.out, (u64::from(schema::TRACE_PACKET) << 3) | 2);
        put_varint(&mut self.out, inner as u64);
        put_varint(
            &mut self.out,
            (u64::from(packet::COMPRESSED_PACKETS) << 3) | 2,
        );
        self.out.extend_from_slice(&body_len);
        self.out.extend_from_slice(&packed);
        self.raw.clear();
    }

    fn begin_process_packet(&mut self, ts: Option<u64>) -> usize {
        let o = self.buf();
        let p = begin_nested(o, schema::TRACE_PACKET);
        if let Some(ts) = ts {
            put_uint(o, packet::TIMESTAMP, ts);
        }
        put_uint(o, packet::TRUSTED_PACKET_SEQUENCE_ID, schema::SEQUENCE_ID);
        p
    }

    /// The first packet: fixed interned names and the process track with the format marker.
    fn header(&mut self) {
        self.started = true;
        let pid = self.pid;
        let name = std::mem::take(&mut self.process_name);
        let p = self.begin_process_packet(None);
        let o = self.buf();
        put_fixed_names(o);
        put_uint(
            o,
            packet::SEQUENCE_FLAGS,
            packet::SEQ_INCREMENTAL_STATE_CLEARED,
        );
        let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
        put_uint(o, track::UUID, schema::PROCESS_UUID);
        let pd = begin_nested(o, track::PROCESS);
        put_int32(o, track::PROCESS_PID, pid);
        put_bytes(o, track::PROCESS_NAME, name.as_bytes());
        end_nested(o, pd);
        put_bytes(o, track::DESCRIPTION, schema::FORMAT_MARKER_V4.as_bytes());
        end_nested(o, td);
        end_nested(o, p);
        self.process_name = name;
        // The derived counter tracks are in every trace.
        self.sample_track(0);
        self.sample_track(1);
    }

    /// Describes sampled counter track `k` once.
    fn sample_track(&mut self, k: usize) -> u64 {
        let uuid = schema::SAMPLE_UUID_BASE + k as u64;
        if self.samples_described & (1 << k) == 0 {
            self.samples_described |= 1 << k;
            let p = self.begin_process_packet(None);
            let o = self.buf();
            let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
            put_uint(o, track::UUID, uuid);
            put_bytes(o, track::NAME, schema::SAMPLE_NAMES[k].as_bytes());
            put_uint(o, track::PARENT_UUID, schema::PROCESS_UUID);
            let c = begin_nested(o, track::COUNTER);
            let unit = if k == schema::SAMPLE_RSS {
                defaults::UNIT_SIZE_BYTES
            } else {
                defaults::UNIT_COUNT
            };
            put_uint(o, defaults::COUNTER_UNIT, unit);
            end_nested(o, c);
            end_nested(o, td);
            end_nested(o, p);
        }
        uuid
    }

    /// Writes one sample of counter `k` at `ts` on the process sequence.
    pub(crate) fn sample(&mut self, k: usize, ts: u64, value: i64) {
        if !self.started {
            self.header();
        }
        let uuid = self.sample_track(k);
        let p = self.begin_process_packet(Some(ts));
        let o = self.buf();
        let te = begin_nested(o, packet::TRACK_EVENT);
        put_uint(o, track_event::TYPE, track_event::TYPE_COUNTER);
        put_uint(o, track_event::TRACK_UUID, uuid);
        put_uint(o, track_event::COUNTER_VALUE, value as u64);
        end_nested(o, te);
        end_nested(o, p);
        self.stats.samples += 1;
    }

    /// Writes a profiler's CPU samples on the process sequence (see
    /// `callstacks`); returns how many were written.
    pub(crate) fn cpu_samples(&mut self, samples: &taskline_core::CpuSamples) -> u64 {
        if !self.started {
            self.header();
        }
        let pid = self.pid as u32;
        let out = if self.opts.compress {
            &mut self.raw
        } else {
            &mut self.out
        };
        let n = self.cpu.write(out, pid, samples);
        self.stats.cpu_samples += n;
        n
    }

    /// Samples the derived counters at `ts` when they changed and are due.
    fn maybe_sample(&mut self, ts: u64) {
        if ts < self.next_sample_ts {
            return;
        }
        self.next_sample_ts = ts.saturating_add(SAMPLE_INTERVAL_NS);
        let values = [self.alive.max(0), self.runnable.max(0)];
        for (k, v) in values.into_iter().enumerate() {
            if self.last_samples[k] != Some(v) {
                self.last_samples[k] = Some(v);
                self.sample(k, ts, v);
            }
        }
    }

    /// Describes registry strings, sites and threads not described yet.
    pub(crate) fn sync(&mut self, reg: &Registry) {
        if !self.started {
            self.header();
        }
        loop {
            let mut n = 0;
            let mut marks = None;
            while n < INTERN_CHUNK {
                let (iid, value) = if let Some(s) = reg.string(self.strings_emitted) {
                    let iid = schema::string_iid(self.strings_emitted);
                    self.strings_emitted += 1;
                    (iid, s.as_bytes().to_vec())
                } else if let Some(site) = reg.site(self.sites_emitted) {
                    let iid = schema::site_iid(self.sites_emitted);
                    self.sites_emitted += 1;
                    (iid, site_string(&site).into_bytes())
                } else {
                    break;
                };
                if marks.is_none() {
                    let p = self.begin_process_packet(None);
                    let m = begin_nested(self.buf(), packet::INTERNED_DATA);
                    marks = Some((p, m));
                }
                put_entry(
                    self.buf(),
                    interned::DEBUG_ANNOTATION_STRING_VALUES,
                    iid,
                    &value,
                );
                n += 1;
            }
            if let Some((p, m)) = marks {
                let o = self.buf();
                end_nested(o, m);
                end_nested(o, p);
            }
            if n < INTERN_CHUNK {
                break;
            }
        }
        for t in 0..self.threads.len() {
            if self.threads[t].worker.is_none()
                && let Some(info) = reg.thread(t as u16)
                && info.worker.is_some()
            {
                self.describe_thread(t as u16, reg);
            }
        }
        while self.threads.len() <= usize::from(u16::MAX)
            && reg.thread(self.threads.len() as u16).is_some()
        {
            self.describe_thread(self.threads.len() as u16, reg);
        }
    }

    /// Emits (or re-emits) the descriptor of thread `t`; `t` is at most the
    /// number of threads described so far, so thread numbers stay dense.
    fn describe_thread(&mut self, t: u16, reg: &Registry) {
        let (name, worker, tid) = match reg.thread(t) {
            Some(info) => (info.name.to_string(), info.worker, info.tid),
            None => (format!("thread {t}"), None, None),
        };
        let blocking = self.threads.get(usize::from(t)).is_some_and(|s| s.blocking);
        let track_name = match worker {
            Some(w) => format!("worker {w}"),
            None if blocking => format!("blocking ({name})"),
            None => name.clone(),
        };
        let pid = self.pid;
        let p = self.begin_process_packet(None);
        let o = self.buf();
        let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
        put_uint(o, track::UUID, schema::THREAD_UUID_BASE + u64::from(t));
        put_bytes(o, track::NAME, track_name.as_bytes());
        let th = begin_nested(o, track::THREAD);
        put_int32(o, track::THREAD_PID, pid);
        put_uint(o, track::THREAD_TID, schema::thread_tid(tid, t));
        put_bytes(o, track::THREAD_NAME, name.as_bytes());
        end_nested(o, th);
        if let Some(w) = worker {
            put_int32(o, track::SIBLING_ORDER_RANK, w as i32);
        }
        end_nested(o, td);
        end_nested(o, p);
        match self.threads.get_mut(usize::from(t)) {
            Some(s) => s.worker = worker,
            None => {
                self.threads.push(ThreadTrack {
                    worker,
                    ..ThreadTrack::default()
                });
                self.seqs.push(Seq::default());
            }
        }
    }

    /// Describes thread `t` (and any lower number) if needed.
    fn ensure_thread(&mut self, t: u16, reg: &Registry) {
        while self.threads.len() <= usize::from(t) {
            self.describe_thread(self.threads.len() as u16, reg);
        }
    }

    /// The span track under thread `t`.
    fn span_track(&mut self, t: u16) -> u64 {
        let uuid = schema::SPAN_UUID_BASE + u64::from(t);
        if !self.threads[usize::from(t)].span_track {
            self.threads[usize::from(t)].span_track = true;
            let p = self.begin_process_packet(None);
            let o = self.buf();
            let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
            put_uint(o, track::UUID, uuid);
            put_bytes(o, track::NAME, b"spans");
            put_uint(
                o,
                track::PARENT_UUID,
                schema::THREAD_UUID_BASE + u64::from(t),
            );
            end_nested(o, td);
            end_nested(o, p);
        }
        uuid
    }

    /// The first packet of thread `t`'s sequence: its defaults, clock and interning state.
    fn start_sequence(&mut self, t: u16) {
        self.seqs[usize::from(t)].started = true;
        let seq = schema::THREAD_SEQUENCE_BASE + u64::from(t);
        let o = self.buf();
        let p = begin_nested(o, schema::TRACE_PACKET);
        let cs = begin_nested(o, packet::CLOCK_SNAPSHOT);
        let c = begin_nested(o, defaults::CLOCKS);
        put_uint(o, defaults::CLOCK_ID, defaults::CLOCK_INCREMENTAL);
        put_uint(o, defaults::CLOCK_TIMESTAMP, 0);
        put_uint(o, defaults::CLOCK_IS_INCREMENTAL, 1);
        end_nested(o, c);
        let c = begin_nested(o, defaults::CLOCKS);
        put_uint(o, defaults::CLOCK_ID, defaults::CLOCK_BOOTTIME);
        put_uint(o, defaults::CLOCK_TIMESTAMP, 0);
        end_nested(o, c);
        end_nested(o, cs);
        put_uint(o, packet::TRUSTED_PACKET_SEQUENCE_ID, seq);
        put_fixed_names(o);
        put_uint(
            o,
            packet::SEQUENCE_FLAGS,
            packet::SEQ_INCREMENTAL_STATE_CLEARED,
        );
        let d = begin_nested(o, packet::TRACE_PACKET_DEFAULTS);
        let ted = begin_nested(o, defaults::TRACK_EVENT_DEFAULTS);
        put_uint(
            o,
            defaults::TRACK_UUID,
            schema::THREAD_UUID_BASE + u64::from(t),
        );
        end_nested(o, ted);
        put_uint(o, defaults::TIMESTAMP_CLOCK_ID, defaults::CLOCK_INCREMENTAL);
        end_nested(o, d);
        end_nested(o, p);
    }

    /// The interned event-name iid of `label` and whether the registry names it.
    fn label_iid(&mut self, label: Label, reg: &Registry) -> Option<u64> {
        if let Some(&iid) = self.names.get(&label) {
            return Some(iid);
        }
        let known = match label {
            Label::Name(id) => reg.string(id).is_some(),
            Label::Site(id) => reg.site(id).is_some(),
        };
        if !known {
            return None;
        }
        let iid = self.next_name_iid;
        self.next_name_iid += 1;
        self.names.insert(label, iid);
        Some(iid)
    }

    fn label_text(label: Label, reg: &Registry) -> String {
        match label {
            Label::Name(id) => reg.string(id).map(|s| s.to_string()),
            Label::Site(id) => reg.site(id).map(|s| s.to_string()),
        }
        .unwrap_or_default()
    }

    /// Whether registry string `id` names a timer resource kind
    /// ([`NameLookup::is_timer_resource`]), looked up once per id.
    fn is_timer_kind(&mut self, id: u32, reg: &Registry) -> bool {
        let i = id as usize;
        match self.timer_kinds.get(i) {
            Some(1) => return true,
            Some(2) => return false,
            _ => {}
        }
        let timer = reg.is_timer_resource(id);
        // Only ids the registry already names are remembered.
        if id < self.strings_emitted {
            if self.timer_kinds.len() <= i {
                self.timer_kinds.resize(i + 1, 0);
            }
            self.timer_kinds[i] = if timer { 1 } else { 2 };
        }
        timer
    }

    fn task_entry(&mut self, task: u64) -> Option<&mut TaskState> {
        if task == 0 {
            return None;
        }
        if self.tasks.len() >= self.opts.max_tracked_tasks && !self.tasks.contains_key(&task) {
            return None;
        }
        Some(self.tasks.entry_or_default(task))
    }

    /// Lifecycle bookkeeping: returns false when `e` is a duplicate to skip.
    fn lifecycle(&mut self, e: &Event, kind: EventKind) -> bool {
        let dedup = self.opts.dedup_lifecycle;
        match kind {
            EventKind::Spawn => {
                let bit = source_bit(e);
                self.spawn_sources |= bit;
                let Some(st) = self.task_entry(e.task) else {
                    self.alive += 1;
                    return true;
                };
                let dup = dedup && st.spawned != 0 && st.spawned & bit == 0;
                st.spawned |= bit;
                if dup {
                    return false;
                }
                if !st.runnable {
                    st.runnable = true;
                    self.runnable += 1;
                }
                self.alive += 1;
                true
            }
            EventKind::Terminate => {
                let bit = source_bit(e);
                let Some(st) = self.tasks.get_mut(&e.task) else {
                    if dedup
                        && let Some(srcs) = self.recent_terms.get(&e.task)
                        && srcs & bit == 0
                    {
                        self.recent_terms.remove(&e.task);
                        return false;
                    }
                    self.alive -= 1;
                    return true;
                };
                st.terminated |= bit;
                let dup = dedup && st.term_written;
                st.term_written = true;
                let done = !dedup || st.terminated & st.spawned == st.spawned;
                if st.runnable {
                    st.runnable = false;
                    self.runnable -= 1;
                }
                if done {
                    let srcs = st.terminated;
                    self.tasks.remove(&e.task);
                    if dedup && srcs.count_ones() == 1 && self.spawn_sources == 3 {
                        if self.recent_order.len() >= RECENT_TERMINATIONS
                            && let Some(old) = self.recent_order.pop_front()
                        {
                            self.recent_terms.remove(&old);
                        }
                        self.recent_order.push_back(e.task);
                        self.recent_terms.insert(e.task, srcs);
                    }
                }
                if dup {
                    return false;
                }
                self.alive -= 1;
                true
            }
            EventKind::Wake => {
                if let Some(st) = self.task_entry(e.task)
                    && !st.runnable
                {
                    st.runnable = true;
                    self.runnable += 1;
                }
                true
            }
            _ => true,
        }
    }

    /// What a `Spawn` (its site) or `TaskName` (its name, which wins) says
    /// the task's polls are named after; other events say nothing. Also
    /// used for events from before a trace's window, which are not written
    /// ([`crate::encode_window`]).
    pub(crate) fn learn_label(&mut self, e: &Event, reg: &Registry) {
        // `sync` ran before this batch: ids below what it described are known
        // without taking the registry's lock.
        if e.kind == EventKind::Spawn as u8 {
            if (e.aux < self.sites_emitted || reg.site(e.aux).is_some())
                && let Some(st) = self.task_entry(e.task)
                && !matches!(st.label, Some(Label::Name(_)))
                && st.label != Some(Label::Site(e.aux))
            {
                st.label = Some(Label::Site(e.aux));
                st.label_iid = 0;
            }
        } else if e.kind == EventKind::TaskName as u8
            && (e.aux < self.strings_emitted || reg.string(e.aux).is_some())
            && let Some(st) = self.task_entry(e.task)
            && st.label != Some(Label::Name(e.aux))
        {
            st.label = Some(Label::Name(e.aux));
            st.label_iid = 0;
        }
    }

    /// Appends the packet of `batch[i]`, looking ahead in `batch` for what a
    /// `Wake` leads to on its thread (see [`Encoder::event`]).
    pub(crate) fn event_at(&mut self, batch: &[Event], i: usize, reg: &Registry) {
        let e = &batch[i];
        if e.kind == EventKind::Wake as u8 {
            self.next_poll_here = batch[i + 1..]
                .iter()
                .take(LOOKAHEAD)
                .find(|n| n.thread == e.thread && n.kind == EventKind::PollStart as u8)
                .map(|n| n.task);
        }
        self.event(e, reg);
    }

    /// Appends one event's packet. Events whose kind byte names no kind are
    /// skipped and counted; duplicate lifecycle reports are skipped (with
    /// `dedup_lifecycle`) and counted.
    pub(crate) fn event(&mut self, e: &Event, reg: &Registry) {
        let Some(kind) = e.kind() else {
            self.stats.events_skipped += 1;
            return;
        };
        if !self.started {
            self.sync(reg);
        }
        self.maybe_sample(e.ts_ns);
        if !self.lifecycle(e, kind) {
            self.stats.duplicates += 1;
            return;
        }
        let t = e.thread;
        self.ensure_thread(t, reg);
        let ti = usize::from(t);
        if !self.seqs[ti].started {
            self.start_sequence(t);
        }
        let decoded = e.decode();
        let tasks = &self.tasks;
        self.roles.observe_decoded(t, &decoded, |task| {
            matches!(tasks.get(&task).and_then(|st| st.label),
                Some(Label::Site(site)) if reg.is_runtime_site(site))
        });

        // Names, flows and the track.
        let mut name: Option<u64> = fixed_name(kind);
        let mut label_to_intern: Option<Label> = None;
        let mut terminating: Option<u64> = None;
        let mut flow: Option<u64> = None;
        let mut track: Option<u64> = None;
        match kind {
            EventKind::Spawn | EventKind::TaskName => self.learn_label(e, reg),
            EventKind::PollStart => {
                let mut label = None;
                let mut cached = 0;
                if let Some(st) = self.tasks.get_mut(&e.task) {
                    label = st.label;
                    cached = st.label_iid;
                    terminating = st.pending_flow.take();
                    st.life.poll_start(e.ts_ns, None);
                    if st.runnable {
                        st.runnable = false;
                        self.runnable -= 1;
                    }
                }
                name = Some(schema::NAME_POLL);
                if let Some(l) = label {
                    if cached != 0 {
                        name = Some(cached);
                        label_to_intern = Some(l);
                    } else if let Some(iid) = self.label_iid(l, reg) {
                        name = Some(iid);
                        label_to_intern = Some(l);
                        if let Some(st) = self.tasks.get_mut(&e.task) {
                            st.label_iid = iid;
                        }
                    }
                }
            }
            EventKind::Wake => {
                let cross_task = e.arg != 0 && e.arg != e.task && !e.has_flag(flags::SELF_WAKE);
                // Woken from outside any poll by the runtime's driver: the
                // arrow starts on the waking worker's track.
                let life = self.tasks.get_mut(&e.task).map(|st| &mut st.life);
                let cause = self.roles.wake_reason_decoded(t, &decoded, life.as_deref());
                if let Some(life) = life {
                    life.wake(e.ts_ns);
                }
                let driver = match cause.reason {
                    WakeReason::Io => Some(schema::NAME_IO_WAKE),
                    WakeReason::Timer => Some(schema::NAME_TIMER_WAKE),
                    _ => None,
                };
                if driver.is_some() {
                    name = driver;
                }
                // The woken task's next poll right after on this track needs no arrow.
                let adjacent = self.next_poll_here.take() == Some(e.task);
                if (cross_task || driver.is_some()) && !adjacent {
                    let reuse = self
                        .free_flows
                        .front()
                        .is_some_and(|&(_, end)| end < e.ts_ns);
                    let id = if reuse {
                        self.free_flows[0].0
                    } else {
                        self.next_flow
                    };
                    if let Some(st) = self.task_entry(e.task)
                        && st.pending_flow.is_none()
                    {
                        st.pending_flow = Some(id);
                        flow = Some(id);
                        if reuse {
                            self.free_flows.pop_front();
                        } else {
                            self.next_flow += 1;
                        }
                        self.stats.flows_written += 1;
                    }
                }
            }
            EventKind::PollEnd => {
                if let Some(st) = self.tasks.get_mut(&e.task) {
                    st.life.poll_end(e.ts_ns);
                    st.life.set_last_poll(self.roles.turn_mark(t));
                }
            }
            EventKind::ResourceWait => {
                let timer = self.is_timer_kind(e.aux, reg);
                if let Some(st) = self.task_entry(e.task) {
                    st.life.resource_wait(timer);
                }
            }
            EventKind::BlockingStart => {
                if e.flags & flags::ENUM_MASK == 0
                    && self.threads[ti].worker.is_none()
                    && !self.threads[ti].blocking
                {
                    self.threads[ti].blocking = true;
                    self.describe_thread(t, reg);
                }
                let label = self.tasks.get(&e.task).and_then(|s| s.label);
                name = Some(if e.flags & flags::ENUM_MASK == 1 {
                    schema::NAME_BLOCK_IN_PLACE
                } else {
                    schema::NAME_BLOCKING
                });
                if let Some(l) = label
                    && let Some(iid) = self.label_iid(l, reg)
                {
                    name = Some(iid);
                    label_to_intern = Some(l);
                }
            }
            EventKind::SpanEnter => {
                track = Some(self.span_track(t));
                name = Some(schema::NAME_SPAN);
                let l = Label::Name(e.aux);
                if let Some(iid) = self.label_iid(l, reg) {
                    name = Some(iid);
                    label_to_intern = Some(l);
                }
            }
            EventKind::SpanExit => track = Some(self.span_track(t)),
            _ => {}
        }
        // Which interned texts this packet must carry for this sequence.
        let name_text = match (label_to_intern, name) {
            (Some(l), Some(iid)) => {
                let seq = &mut self.seqs[ti];
                (!test_and_set(&mut seq.names, iid - schema::FIRST_DYNAMIC_NAME_IID))
                    .then(|| Self::label_text(l, reg))
            }
            _ => None,
        };
        let l = schema::layout(kind);
        let strings_known = self.strings_emitted;
        let sites_known = self.sites_emitted;
        let seq = &mut self.seqs[ti];
        let p = seq.model.predict(kind);
        let on_span = matches!(kind, EventKind::SpanEnter | EventKind::SpanExit);
        let explicit_kind = derived_kind(l.ty, name, on_span, &seq.model) != Some(kind);
        // The aux as an interned string value, when the registry names it.
        let aux_iid = match l.aux {
            AuxRef::String if e.aux != p.aux && e.aux < strings_known => {
                Some(schema::string_iid(e.aux))
            }
            AuxRef::Site if e.aux != p.aux && e.aux < sites_known => Some(schema::site_iid(e.aux)),
            _ => None,
        };
        let value_text = match aux_iid {
            Some(iid) if !test_and_set(&mut seq.values, iid) => Some(match l.aux {
                AuxRef::Site => reg.site(e.aux).map(|s| site_string(&s)).unwrap_or_default(),
                _ => reg.string(e.aux).map(|s| s.to_string()).unwrap_or_default(),
            }),
            _ => None,
        };
        let (ts_field, absolute) = if e.ts_ns >= seq.last_ts {
            let d = e.ts_ns - seq.last_ts;
            seq.last_ts = e.ts_ns;
            (d, false)
        } else {
            (e.ts_ns, true)
        };
        seq.model.apply(e);

        let o = if self.opts.compress {
            &mut self.raw
        } else {
            &mut self.out
        };
        let pk = begin_nested(o, schema::TRACE_PACKET);
        put_uint(o, packet::TIMESTAMP, ts_field);
        put_uint(
            o,
            packet::TRUSTED_PACKET_SEQUENCE_ID,
            schema::THREAD_SEQUENCE_BASE + u64::from(t),
        );
        let te = begin_nested(o, packet::TRACK_EVENT);
        if explicit_kind && l.category != 0 {
            put_uint(o, track_event::CATEGORY_IIDS, l.category);
        }
        if e.task != p.task {
            put_annotation_uint(o, schema::A_TASK, e.task);
        }
        if e.arg != p.arg {
            put_annotation_uint(o, l.arg_name, e.arg);
        }
        if e.aux != p.aux {
            match aux_iid {
                Some(iid) => put_annotation_iid(o, l.aux_name, iid),
                None => put_annotation_uint(o, l.aux_name, u64::from(e.aux)),
            }
        }
        if e.flags != p.flags {
            put_annotation_uint(o, schema::A_FLAGS, u64::from(e.flags));
        }
        put_uint(o, track_event::TYPE, l.ty);
        if let Some(iid) = name {
            put_uint(o, track_event::NAME_IID, iid);
        }
        if let Some(uuid) = track {
            put_uint(o, track_event::TRACK_UUID, uuid);
        }
        if let Some(id) = flow {
            put_uint(o, track_event::FLOW_IDS_OLD, id);
        }
        if let Some(id) = terminating {
            put_uint(o, track_event::TERMINATING_FLOW_IDS_OLD, id);
            if self.free_flows.len() < MAX_FREE_FLOWS {
                self.free_flows.push_back((id, e.ts_ns));
            }
        }
        end_nested(o, te);
        if name_text.is_some() || value_text.is_some() {
            let m = begin_nested(o, packet::INTERNED_DATA);
            if let (Some(text), Some(iid)) = (&name_text, name) {
                put_entry(o, interned::EVENT_NAMES, iid, text.as_bytes());
            }
            if let (Some(text), Some(iid)) = (&value_text, aux_iid) {
                put_entry(
                    o,
                    interned::DEBUG_ANNOTATION_STRING_VALUES,
                    iid,
                    text.as_bytes(),
                );
            }
            end_nested(o, m);
        }
        if absolute {
            put_uint(o, packet::TIMESTAMP_CLOCK_ID, defaults::CLOCK_BOOTTIME);
        }
        end_nested(o, pk);
        self.last_ts = self.last_ts.max(e.ts_ns);
        self.stats.events_written += 1;
    }

    /// Appends the end marker: an instant on the process track carrying the
    /// recorder's dropped-event count and the encoder's own counts, then
    /// deflates what is staged.
    pub(crate) fn finish(&mut self, dropped_events: u64) {
        if !self.started {
            self.header();
        }
        let ts = self.last_ts;
        let stats = self.stats;
        let p = self.begin_process_packet(Some(ts));
        let o = self.buf();
        let te = begin_nested(o, packet::TRACK_EVENT);
        put_uint(o, track_event::CATEGORY_IIDS, schema::CAT_TASKLINE);
        put_annotation_uint(o, schema::A_DROPPED, dropped_events);
        put_annotation_uint(o, schema::A_EVENTS_WRITTEN, stats.events_written);
        put_annotation_uint(o, schema::A_EVENTS_SKIPPED, stats.events_skipped);
        put_annotation_uint(o, schema::A_FLOWS, stats.flows_written);
        put_annotation_uint(o, schema::A_DUPLICATES, stats.duplicates);
        put_uint(o, track_event::TYPE, track_event::TYPE_INSTANT);
        put_uint(o, track_event::NAME_IID, schema::NAME_STATS);
        put_uint(o, track_event::TRACK_UUID, schema::PROCESS_UUID);
        end_nested(o, te);
        end_nested(o, p);
        self.seal(true);
    }
}

fn put_annotation_uint(o: &mut Vec<u8>, name_iid: u64, value: u64) {
    let m = begin_nested(o, track_event::DEBUG_ANNOTATIONS);
    put_uint(o, annotation::NAME_IID, name_iid);
    put_uint(o, annotation::UINT_VALUE, value);
    end_nested(o, m);
}

fn put_annotation_iid(o: &mut Vec<u8>, name_iid: u64, iid: u64) {
    let m = begin_nested(o, track_event::DEBUG_ANNOTATIONS);
    put_uint(o, annotation::NAME_IID, name_iid);
    put_uint(o, annotation::STRING_VALUE_IID, iid);
    end_nested(o, m);
}

#[cfg(test)]
mod task_table_tests {
    use super::*;

    /// The direct-mapped table behaves like a map under inserts, lookups and
    /// removes with colliding, sparse and sequential ids, across growth.
    #[test]
    fn task_table_matches_a_hash_map() {
        let mut t = TaskTable::new(4096);
        let mut m: std::collections::HashMap<u64, u64> = Default::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly sequential ids, some colliding (same low bits), some far.
            let id = match x % 4 {
                0 => step / 3 + 1,
                1 => (step / 3 + 1) + 1024 * (x >> 60),
                2 => (x >> 40) | 1,
                _ => step / 2 + 1,
            };
            match (x >> 8) % 3 {
                0 => {
                    t.entry_or_default(id).pending_flow = Some(id);
                    m.insert(id, id);
                }
                1 => {
                    t.remove(&id);
                    m.remove(&id);
                }
                _ => {}
            }
            assert_eq!(t.len(), m.len(), "step {step}");
            assert_eq!(
                t.get(&id).and_then(|s| s.pending_flow),
                m.get(&id).copied(),
                "step {step} id {id}"
            );
            assert_eq!(t.contains_key(&id), m.contains_key(&id));
        }
        for (&id, &v) in &m {
            assert_eq!(t.get_mut(&id).and_then(|s| s.pending_flow), Some(v));
        }
        assert!(t.get(&0).is_none());
    }
}
