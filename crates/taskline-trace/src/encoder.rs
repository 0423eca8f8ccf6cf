//! Turns [`Event`]s into framed Perfetto `TracePacket`s (no I/O).
//!
//! The encoder keeps the sequence's incremental state: which registry
//! strings, sites and threads it already described, the interned task labels,
//! the label of each live task and the flows waiting for their woken task's
//! next poll. Per-task state is bounded by `max_tracked_tasks`; past it, polls
//! are named `poll` and wakes get no flow arrow (the events are still written
//! losslessly).

use std::collections::HashMap;

use taskline_layer::event::{Event, EventKind, flags};
use taskline_layer::registry::{Registry, Site};

use crate::schema::{self, AuxRef, annotation, interned, packet, track, track_event};
use crate::wire::{begin_nested, end_nested, put_bytes, put_fixed64, put_int32, put_uint};

/// At most this many flows wait for one task's next poll; later wakes get no arrow.
const MAX_PENDING_FLOWS_PER_TASK: usize = 8;
/// Registry entries per interned-data packet.
const INTERN_CHUNK: usize = 256;

/// What a task's polls are named after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Label {
    Name(u32),
    Site(u32),
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

/// Counts of what the encoder wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EncoderStats {
    pub(crate) events_written: u64,
    pub(crate) events_skipped: u64,
    pub(crate) flows_written: u64,
}

/// Streaming encoder state for one packet sequence.
pub(crate) struct Encoder {
    /// Framed packets not yet handed to the output.
    pub(crate) out: Vec<u8>,
    started: bool,
    pid: i32,
    process_name: String,
    strings_emitted: u32,
    sites_emitted: u32,
    threads: Vec<ThreadTrack>,
    counters_emitted: u16,
    names: HashMap<Label, u64>,
    next_name_iid: u64,
    task_labels: HashMap<u64, Label>,
    pending_flows: HashMap<u64, Vec<u64>>,
    next_flow: u64,
    max_tracked_tasks: usize,
    last_ts: u64,
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

impl Encoder {
    /// A fresh sequence; per-task state for at most `max_tracked_tasks` live tasks.
    pub(crate) fn new(max_tracked_tasks: usize) -> Self {
        Encoder {
            out: Vec::with_capacity(64 * 1024),
            started: false,
            pid: std::process::id() as i32,
            process_name: process_name(),
            strings_emitted: 0,
            sites_emitted: 0,
            threads: Vec::new(),
            counters_emitted: 0,
            names: HashMap::new(),
            next_name_iid: schema::FIRST_DYNAMIC_NAME_IID,
            task_labels: HashMap::new(),
            pending_flows: HashMap::new(),
            next_flow: 1,
            max_tracked_tasks,
            last_ts: 0,
            stats: EncoderStats::default(),
        }
    }

    fn begin_packet(&mut self, ts: Option<u64>) -> usize {
        let p = begin_nested(&mut self.out, schema::TRACE_PACKET);
        if let Some(ts) = ts {
            put_uint(&mut self.out, packet::TIMESTAMP, ts);
        }
        put_uint(
            &mut self.out,
            packet::TRUSTED_PACKET_SEQUENCE_ID,
            schema::SEQUENCE_ID,
        );
        p
    }

    fn put_entry(out: &mut Vec<u8>, field: u32, iid: u64, value: &[u8]) {
        let m = begin_nested(out, field);
        put_uint(out, interned::IID, iid);
        put_bytes(out, interned::VALUE, value);
        end_nested(out, m);
    }

    /// The first packet: fixed interned names and the process track.
    fn header(&mut self) {
        self.started = true;
        let p = self.begin_packet(None);
        let o = &mut self.out;
        let m = begin_nested(o, packet::INTERNED_DATA);
        for (i, c) in schema::CATEGORIES.iter().enumerate() {
            Self::put_entry(o, interned::EVENT_CATEGORIES, i as u64 + 1, c.as_bytes());
        }
        for (i, n) in schema::EVENT_NAMES.iter().enumerate() {
            Self::put_entry(o, interned::EVENT_NAMES, i as u64 + 1, n.as_bytes());
        }
        for (i, n) in schema::ANNOTATION_NAMES.iter().enumerate() {
            Self::put_entry(
                o,
                interned::DEBUG_ANNOTATION_NAMES,
                i as u64 + 1,
                n.as_bytes(),
            );
        }
        end_nested(o, m);
        put_uint(
            o,
            packet::SEQUENCE_FLAGS,
            packet::SEQ_INCREMENTAL_STATE_CLEARED,
        );
        let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
        put_uint(o, track::UUID, schema::PROCESS_UUID);
        let pd = begin_nested(o, track::PROCESS);
        put_int32(o, track::PROCESS_PID, self.pid);
        put_bytes(o, track::PROCESS_NAME, self.process_name.as_bytes());
        end_nested(o, pd);
        put_bytes(o, track::DESCRIPTION, schema::FORMAT_MARKER.as_bytes());
        end_nested(o, td);
        end_nested(o, p);
    }

    /// Describes registry strings, sites and threads not described yet.
    pub(crate) fn sync(&mut self, reg: &Registry) {
        if !self.started {
            self.header();
        }
        // Strings and sites, as interned debug-annotation string values.
        loop {
            let mut n = 0;
            let mut m = None;
            let mut p = None;
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
                if m.is_none() {
                    p = Some(self.begin_packet(None));
                    m = Some(begin_nested(&mut self.out, packet::INTERNED_DATA));
                }
                Self::put_entry(
                    &mut self.out,
                    interned::DEBUG_ANNOTATION_STRING_VALUES,
                    iid,
                    &value,
                );
                n += 1;
            }
            if let (Some(m), Some(p)) = (m, p) {
                end_nested(&mut self.out, m);
                put_uint(
                    &mut self.out,
                    packet::SEQUENCE_FLAGS,
                    packet::SEQ_NEEDS_INCREMENTAL_STATE,
                );
                end_nested(&mut self.out, p);
            }
            if n < INTERN_CHUNK {
                break;
            }
        }
        // Threads: new ones, and known ones whose worker index became known.
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
        let (name, worker) = match reg.thread(t) {
            Some(info) => (info.name.to_string(), info.worker),
            None => (format!("thread {t}"), None),
        };
        let blocking = self.threads.get(usize::from(t)).is_some_and(|s| s.blocking);
        // Tokio names workers and blocking-pool threads alike; the track name tells them apart.
        let track_name = match worker {
            Some(w) => format!("worker {w}"),
            None if blocking => format!("blocking ({name})"),
            None => name.clone(),
        };
        let p = self.begin_packet(None);
        let o = &mut self.out;
        let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
        put_uint(o, track::UUID, schema::THREAD_UUID_BASE + u64::from(t));
        put_bytes(o, track::NAME, track_name.as_bytes());
        let th = begin_nested(o, track::THREAD);
        put_int32(o, track::THREAD_PID, self.pid);
        put_uint(
            o,
            track::THREAD_TID,
            (schema::TID_BASE + i64::from(t)) as u64,
        );
        put_bytes(o, track::THREAD_NAME, name.as_bytes());
        end_nested(o, th);
        if let Some(w) = worker {
            put_int32(o, track::SIBLING_ORDER_RANK, w as i32);
        }
        end_nested(o, td);
        end_nested(o, p);
        let state = ThreadTrack {
            worker,
            span_track: false,
            blocking: false,
        };
        match self.threads.get_mut(usize::from(t)) {
            Some(s) => s.worker = worker,
            None => self.threads.push(state),
        }
    }

    /// The track of thread `t`, describing it (and any lower number) first if needed.
    fn thread_track(&mut self, t: u16, reg: &Registry) -> u64 {
        while self.threads.len() <= usize::from(t) {
            self.describe_thread(self.threads.len() as u16, reg);
        }
        schema::THREAD_UUID_BASE + u64::from(t)
    }

    /// The span track under thread `t`.
    fn span_track(&mut self, t: u16, reg: &Registry) -> u64 {
        let parent = self.thread_track(t, reg);
        let uuid = schema::SPAN_UUID_BASE + u64::from(t);
        if !self.threads[usize::from(t)].span_track {
            self.threads[usize::from(t)].span_track = true;
            let p = self.begin_packet(None);
            let o = &mut self.out;
            let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
            put_uint(o, track::UUID, uuid);
            put_bytes(o, track::NAME, b"spans");
            put_uint(o, track::PARENT_UUID, parent);
            end_nested(o, td);
            end_nested(o, p);
        }
        uuid
    }

    /// The counter track of counter kind `k` (< 16).
    fn counter_track(&mut self, k: u8) -> u64 {
        let uuid = schema::COUNTER_UUID_BASE + u64::from(k);
        if self.counters_emitted & (1 << k) == 0 {
            self.counters_emitted |= 1 << k;
            let name = schema::counter_name(k);
            let p = self.begin_packet(None);
            let o = &mut self.out;
            let td = begin_nested(o, packet::TRACK_DESCRIPTOR);
            put_uint(o, track::UUID, uuid);
            put_bytes(o, track::NAME, name.as_bytes());
            put_uint(o, track::PARENT_UUID, schema::PROCESS_UUID);
            let c = begin_nested(o, track::COUNTER);
            end_nested(o, c);
            end_nested(o, td);
            end_nested(o, p);
        }
        uuid
    }

    /// The interned event-name iid of `label`, plus its text when it must be
    /// interned in the current packet. `None` when the registry cannot name it.
    fn label_iid(&mut self, label: Label, reg: &Registry) -> Option<(u64, Option<String>)> {
        if let Some(&iid) = self.names.get(&label) {
            return Some((iid, None));
        }
        let text = match label {
            Label::Name(id) => reg.string(id)?.to_string(),
            Label::Site(id) => reg.site(id)?.to_string(),
        };
        let iid = self.next_name_iid;
        self.next_name_iid += 1;
        self.names.insert(label, iid);
        Some((iid, Some(text)))
    }

    fn remember_label(&mut self, task: u64, label: Label) {
        if self.task_labels.len() < self.max_tracked_tasks || self.task_labels.contains_key(&task) {
            self.task_labels.insert(task, label);
        }
    }

    /// Appends one event's packet. Events whose kind byte names no kind are skipped and counted.
    pub(crate) fn event(&mut self, e: &Event, reg: &Registry) {
        let Some(kind) = e.kind() else {
            self.stats.events_skipped += 1;
            return;
        };
        if !self.started {
            self.sync(reg);
        }
        let l = schema::layout(kind);
        let track = match kind {
            EventKind::Counter => self.counter_track(e.flags & flags::ENUM_MASK),
            EventKind::SpanEnter | EventKind::SpanExit => self.span_track(e.thread, reg),
            _ => self.thread_track(e.thread, reg),
        };
        let thread_worker = self
            .threads
            .get(usize::from(e.thread))
            .and_then(|t| t.worker);

        // Per-task bookkeeping and the slice name.
        let mut name: Option<(u64, Option<String>)> = None;
        let mut terminating: Vec<u64> = Vec::new();
        let mut flow: Option<u64> = None;
        match kind {
            EventKind::Spawn => {
                if !matches!(self.task_labels.get(&e.task), Some(Label::Name(_)))
                    && reg.site(e.aux).is_some()
                {
                    self.remember_label(e.task, Label::Site(e.aux));
                }
                name = Some((1, None));
            }
            EventKind::TaskName => {
                if reg.string(e.aux).is_some() {
                    self.remember_label(e.task, Label::Name(e.aux));
                }
                name = Some((2, None));
            }
            EventKind::PollStart => {
                let label = self.task_labels.get(&e.task).copied();
                name = label
                    .and_then(|l| self.label_iid(l, reg))
                    .or(Some((schema::NAME_POLL, None)));
                if let Some(f) = self.pending_flows.remove(&e.task) {
                    terminating = f;
                }
            }
            EventKind::Wake => {
                name = Some((3, None));
                let cross_task = e.arg != 0 && e.arg != e.task && !e.has_flag(flags::SELF_WAKE);
                if cross_task {
                    let room = self.pending_flows.len() < self.max_tracked_tasks
                        || self.pending_flows.contains_key(&e.task);
                    if room {
                        let pending = self.pending_flows.entry(e.task).or_default();
                        if pending.len() < MAX_PENDING_FLOWS_PER_TASK {
                            let id = self.next_flow;
                            self.next_flow += 1;
                            pending.push(id);
                            flow = Some(id);
                            self.stats.flows_written += 1;
                        }
                    }
                }
            }
            EventKind::ResourceWait => name = Some((4, None)),
            EventKind::Terminate => {
                name = Some((5, None));
                self.task_labels.remove(&e.task);
                self.pending_flows.remove(&e.task);
            }
            EventKind::BlockingStart => {
                let t = usize::from(e.thread);
                if e.flags & flags::ENUM_MASK == 0
                    && thread_worker.is_none()
                    && !self.threads[t].blocking
                {
                    self.threads[t].blocking = true;
                    self.describe_thread(e.thread, reg);
                }
                let label = if e.task != 0 {
                    self.task_labels.get(&e.task).copied()
                } else {
                    None
                };
                let fixed = if e.flags & flags::ENUM_MASK == 1 {
                    schema::NAME_BLOCK_IN_PLACE
                } else {
                    schema::NAME_BLOCKING
                };
                name = label
                    .and_then(|l| self.label_iid(l, reg))
                    .or(Some((fixed, None)));
            }
            EventKind::Park => name = Some((schema::NAME_IDLE, None)),
            EventKind::SpanEnter => {
                name = self
                    .label_iid(Label::Name(e.aux), reg)
                    .or(Some((schema::NAME_SPAN, None)));
            }
            EventKind::PollEnd
            | EventKind::BlockingEnd
            | EventKind::Unpark
            | EventKind::SpanExit
            | EventKind::Counter => {}
        }

        let p = self.begin_packet(Some(e.ts_ns));
        let strings_known = self.strings_emitted;
        let sites_known = self.sites_emitted;
        let o = &mut self.out;
        let te = begin_nested(o, packet::TRACK_EVENT);
        if l.category != 0 {
            put_uint(o, track_event::CATEGORY_IIDS, l.category);
        }
        if e.task != 0 {
            put_annotation_uint(o, schema::A_TASK, e.task);
        }
        if kind != EventKind::Counter && e.arg != l.arg_default {
            put_annotation_uint(o, l.arg_name, e.arg);
        }
        match l.aux {
            AuxRef::Plain(d) => {
                if e.aux != d {
                    put_annotation_uint(o, l.aux_name, u64::from(e.aux));
                }
            }
            AuxRef::Worker => {
                if e.aux != schema::worker_default(thread_worker) {
                    put_annotation_uint(o, l.aux_name, u64::from(e.aux));
                }
            }
            AuxRef::String if e.aux < strings_known => {
                put_annotation_iid(o, l.aux_name, schema::string_iid(e.aux));
            }
            AuxRef::Site if e.aux < sites_known => {
                put_annotation_iid(o, l.aux_name, schema::site_iid(e.aux))
            }
            AuxRef::String | AuxRef::Site => put_annotation_uint(o, l.aux_name, u64::from(e.aux)),
        }
        let default_flags = if kind == EventKind::Counter {
            e.flags & flags::ENUM_MASK
        } else {
            0
        };
        if e.flags != default_flags {
            put_annotation_uint(o, schema::A_FLAGS, u64::from(e.flags));
        }
        if kind == EventKind::Counter {
            put_annotation_uint(o, schema::A_THREAD, u64::from(e.thread));
        }
        put_uint(o, track_event::TYPE, l.ty);
        if let Some((iid, _)) = &name {
            put_uint(o, track_event::NAME_IID, *iid);
        }
        put_uint(o, track_event::TRACK_UUID, track);
        if kind == EventKind::Counter {
            // int64 on the wire: the u64 bit pattern is exactly the varint of `arg as i64`.
            put_uint(o, track_event::COUNTER_VALUE, e.arg);
        }
        if let Some(id) = flow {
            put_fixed64(o, track_event::FLOW_IDS, id);
        }
        for id in &terminating {
            put_fixed64(o, track_event::TERMINATING_FLOW_IDS, *id);
        }
        end_nested(o, te);
        if let Some((iid, Some(text))) = &name {
            let m = begin_nested(o, packet::INTERNED_DATA);
            Self::put_entry(o, interned::EVENT_NAMES, *iid, text.as_bytes());
            end_nested(o, m);
        }
        put_uint(
            o,
            packet::SEQUENCE_FLAGS,
            packet::SEQ_NEEDS_INCREMENTAL_STATE,
        );
        end_nested(o, p);
        self.last_ts = self.last_ts.max(e.ts_ns);
        self.stats.events_written += 1;
    }

    /// Appends the end marker: an instant on the process track carrying the
    /// recorder's dropped-event count and the encoder's own counts.
    pub(crate) fn finish(&mut self, dropped_events: u64) {
        if !self.started {
            self.header();
        }
        let p = self.begin_packet(Some(self.last_ts));
        let o = &mut self.out;
        let te = begin_nested(o, packet::TRACK_EVENT);
        put_uint(o, track_event::CATEGORY_IIDS, schema::CAT_TASKLINE);
        put_annotation_uint(o, schema::A_DROPPED, dropped_events);
        put_annotation_uint(o, schema::A_EVENTS_WRITTEN, self.stats.events_written);
        put_annotation_uint(o, schema::A_EVENTS_SKIPPED, self.stats.events_skipped);
        put_annotation_uint(o, schema::A_FLOWS, self.stats.flows_written);
        put_uint(o, track_event::TYPE, track_event::TYPE_INSTANT);
        put_uint(o, track_event::NAME_IID, schema::NAME_STATS);
        put_uint(o, track_event::TRACK_UUID, schema::PROCESS_UUID);
        end_nested(o, te);
        put_uint(
            o,
            packet::SEQUENCE_FLAGS,
            packet::SEQ_NEEDS_INCREMENTAL_STATE,
        );
        end_nested(o, p);
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
