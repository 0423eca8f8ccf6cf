//! The reader of trace format version 1 (one packet sequence, absolute
//! timestamps, a debug annotation per field), kept so traces written before
//! version 2 still read. [`read_trace`](crate::read_trace) picks it by the
//! format marker.
use std::collections::HashMap;

use taskline_core::Registry;
use taskline_core::{Event, EventKind};

use crate::error::{TraceError, TraceErrorKind as K};
use crate::reader::Recording;
use crate::reader_common::{Tables, entry};
use crate::schema::{self, AuxRef, annotation, interned, packet, track, track_event};
use crate::wire::{Reader, as_bytes, as_fixed64, as_str, as_varint};

/// Reads a version 1 trace (or says why the input is not a taskline trace).
pub(crate) fn read(bytes: &[u8]) -> Result<Recording, TraceError> {
    let mut st = ReadState::default();
    let mut stats: Option<Stats> = None;
    let tail = crate::reader::for_each_packet(bytes, |body, off| {
        if stats.is_some() {
            return Err(TraceError::new(
                off,
                K::Malformed("data after the end marker"),
            ));
        }
        stats = st.packet(body, off)?;
        st.packets += 1;
        Ok(true)
    })?;
    if st.packets == 0 {
        return Err(tail.unwrap_or(TraceError::new(0, K::NotTaskline("no packets"))));
    }
    if let (Some(tail), Some(_)) = (&tail, stats) {
        return Err(TraceError::new(
            tail.offset,
            K::Malformed("data after the end marker"),
        ));
    }
    let unfinished = tail.is_some() || stats.is_none();
    let stats = stats.unwrap_or_default();
    Ok(Recording {
        events: st.events,
        registry: Registry::from_parts(st.tables.strings, st.tables.sites, st.tables.threads),
        dropped_events: stats.dropped,
        events_skipped: stats.skipped,
        duplicates_skipped: 0,
        flows: st.flows,
        flow_arrows: Vec::new(),
        packets: st.packets,
        counters: Vec::new(),
        cpu_samples: Vec::new(),
        cpu_stacks: Vec::new(),
        format_version: 1,
        unfinished,
    })
}

#[derive(Clone, Copy, Default)]
struct Stats {
    dropped: u64,
    skipped: u64,
}

#[derive(Default)]
struct ReadState {
    packets: u64,
    /// Category iid -> index in [`schema::CATEGORIES`] + 1 (0 = unknown name).
    categories: HashMap<u64, u64>,
    /// Annotation-name iid -> index in [`schema::ANNOTATION_NAMES`] + 1 (0 = unknown name).
    annotation_names: HashMap<u64, u64>,
    tables: Tables,
    flows: u64,
    events: Vec<Event>,
}

/// One decoded debug annotation: the fixed name index and the value.
#[derive(Clone, Copy)]
enum AnnValue {
    Uint(u64),
    Iid(u64),
}

fn err<T>(at: usize, kind: K) -> Result<T, TraceError> {
    Err(TraceError::new(at, kind))
}

impl ReadState {
    fn packet(&mut self, body: &[u8], off: usize) -> Result<Option<Stats>, TraceError> {
        let mut r = Reader::new(body, off);
        let mut ts = None;
        let mut seq = None;
        let mut te = None;
        let mut idata = None;
        let mut td = None;
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
                packet::SEQUENCE_FLAGS => {
                    as_varint(v, at, "TracePacket.sequence_flags")?;
                }
                _ => {}
            }
        }
        let first = self.packets == 0;
        if seq != Some(schema::SEQUENCE_ID) {
            if first {
                return err(
                    off,
                    K::NotTaskline("first packet is not on taskline's sequence"),
                );
            }
            return err(off, K::Malformed("packet on an unexpected sequence"));
        }
        if first {
            let ok = match td {
                Some((b, o)) => self.is_marker(b, o)?,
                None => false,
            };
            if !ok {
                return err(
                    off,
                    K::NotTaskline("first packet does not carry the taskline marker"),
                );
            }
        }
        if let Some((b, o)) = idata {
            self.interned(b, o)?;
        }
        if let Some((b, o)) = td {
            self.tables.track_descriptor(b, o)?;
        }
        match te {
            Some((b, o)) => {
                let ts = ts.ok_or_else(|| {
                    TraceError::new(off, K::Malformed("track event without timestamp"))
                })?;
                self.track_event(b, o, ts)
            }
            None => Ok(None),
        }
    }

    fn is_marker(&self, body: &[u8], off: usize) -> Result<bool, TraceError> {
        let mut r = Reader::new(body, off);
        let mut uuid = None;
        let mut desc = None;
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                track::UUID => uuid = Some(as_varint(v, at, "TrackDescriptor.uuid")?),
                track::DESCRIPTION => desc = Some(as_str(v, at, "TrackDescriptor.description")?),
                _ => {}
            }
        }
        Ok(uuid == Some(schema::PROCESS_UUID) && desc == Some(schema::FORMAT_MARKER))
    }

    fn interned(&mut self, body: &[u8], off: usize) -> Result<(), TraceError> {
        let mut r = Reader::new(body, off);
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                interned::EVENT_CATEGORIES | interned::DEBUG_ANNOTATION_NAMES => {
                    let (b, o) = as_bytes(v, at, "interned name")?;
                    let (iid, v, vat) = entry(b, o)?;
                    let name = as_str(v, vat, "interned name")?;
                    if f == interned::EVENT_CATEGORIES {
                        let idx = schema::CATEGORIES.iter().position(|c| *c == name);
                        self.categories.insert(iid, idx.map_or(0, |i| i as u64 + 1));
                    } else {
                        let idx = schema::ANNOTATION_NAMES.iter().position(|c| *c == name);
                        self.annotation_names
                            .insert(iid, idx.map_or(0, |i| i as u64 + 1));
                    }
                }
                interned::EVENT_NAMES => {
                    let (b, o) = as_bytes(v, at, "interned event name")?;
                    let (_, v, vat) = entry(b, o)?;
                    as_str(v, vat, "event name")?;
                }
                interned::DEBUG_ANNOTATION_STRING_VALUES => {
                    let (b, o) = as_bytes(v, at, "interned string value")?;
                    let (iid, v, vat) = entry(b, o)?;
                    let s = as_str(v, vat, "interned string value")?;
                    self.tables.registry_entry(iid, s, o, vat)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn track_event(
        &mut self,
        body: &[u8],
        off: usize,
        ts: u64,
    ) -> Result<Option<Stats>, TraceError> {
        let mut r = Reader::new(body, off);
        let mut category = None;
        let mut ty = None;
        let mut track_uuid = None;
        // At most one value per annotation name we know (the writer writes each once).
        let mut anns: [Option<AnnValue>; schema::ANNOTATION_NAMES.len() + 1] =
            [None; schema::ANNOTATION_NAMES.len() + 1];
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                track_event::CATEGORY_IIDS => {
                    let iid = as_varint(v, at, "TrackEvent.category_iids")?;
                    let c = *self.categories.get(&iid).ok_or(TraceError::new(
                        at,
                        K::UnknownIid {
                            table: "category",
                            iid,
                        },
                    ))?;
                    category.get_or_insert(c);
                }
                track_event::DEBUG_ANNOTATIONS => {
                    let (b, o) = as_bytes(v, at, "TrackEvent.debug_annotations")?;
                    let (name, value) = self.annotation(b, o)?;
                    if name != 0 {
                        anns[name as usize] = Some(value);
                    }
                }
                track_event::TYPE => ty = Some(as_varint(v, at, "TrackEvent.type")?),
                track_event::TRACK_UUID => {
                    track_uuid = Some(as_varint(v, at, "TrackEvent.track_uuid")?)
                }
                track_event::FLOW_IDS => {
                    as_fixed64(v, at, "TrackEvent.flow_ids")?;
                    self.flows += 1;
                }
                _ => {}
            }
        }
        let ty =
            ty.ok_or_else(|| TraceError::new(off, K::Malformed("track event without type")))?;
        let uuid = track_uuid
            .ok_or_else(|| TraceError::new(off, K::Malformed("track event without track")))?;
        let category = category.unwrap_or(0);
        let uint = |i: u64| match anns[i as usize] {
            Some(AnnValue::Uint(x)) => Some(x),
            _ => None,
        };
        if category == schema::CAT_TASKLINE && ty == track_event::TYPE_INSTANT {
            return Ok(Some(Stats {
                dropped: uint(schema::A_DROPPED).unwrap_or(0),
                skipped: uint(schema::A_EVENTS_SKIPPED).unwrap_or(0),
            }));
        }
        let kind = schema::kind_of(category, ty).ok_or_else(|| {
            TraceError::new(off, K::Malformed("track event of unknown category or type"))
        })?;
        let l = schema::layout(kind);
        let mut e = Event::new(kind, ts, 0);
        let worker_of_track;
        match kind {
            EventKind::SpanEnter | EventKind::SpanExit => {
                let t = uuid.wrapping_sub(schema::SPAN_UUID_BASE);
                if !self
                    .tables
                    .span_tracks
                    .get(t as usize)
                    .copied()
                    .unwrap_or(false)
                    || t >= 1 << 16
                {
                    return err(off, K::UnknownTrack(uuid));
                }
                e.thread = t as u16;
                worker_of_track = self.tables.threads[t as usize].worker;
            }
            _ => {
                let t = uuid.wrapping_sub(schema::THREAD_UUID_BASE);
                if t >= self.tables.threads.len() as u64 {
                    return err(off, K::UnknownTrack(uuid));
                }
                e.thread = t as u16;
                worker_of_track = self.tables.threads[t as usize].worker;
            }
        }
        e.task = uint(schema::A_TASK).unwrap_or(0);
        e.arg = uint(l.arg_name).unwrap_or(l.arg_default);
        let aux = match anns[l.aux_name as usize] {
            Some(AnnValue::Uint(x)) => u32::try_from(x)
                .map_err(|_| TraceError::new(off, K::Malformed("aux value too large")))?,
            Some(AnnValue::Iid(iid)) => match l.aux {
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
            },
            None => match l.aux {
                AuxRef::Plain(d) => d,
                AuxRef::Worker => schema::worker_default(worker_of_track),
                AuxRef::String | AuxRef::Site => 0,
            },
        };
        e.aux = aux;
        if let Some(f) = uint(schema::A_FLAGS) {
            e.flags = u8::try_from(f)
                .map_err(|_| TraceError::new(off, K::Malformed("flags too large")))?;
        }
        self.events.push(e);
        Ok(None)
    }

    /// Decodes one debug annotation into (fixed name index or 0, value).
    fn annotation(&self, body: &[u8], off: usize) -> Result<(u64, AnnValue), TraceError> {
        let mut r = Reader::new(body, off);
        let mut name = None;
        let mut value = None;
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                annotation::NAME_IID => {
                    let iid = as_varint(v, at, "DebugAnnotation.name_iid")?;
                    let n = *self.annotation_names.get(&iid).ok_or(TraceError::new(
                        at,
                        K::UnknownIid {
                            table: "annotation name",
                            iid,
                        },
                    ))?;
                    name = Some(n);
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
            (Some(0), None) => Ok((0, AnnValue::Uint(0))),
            _ => err(off, K::Malformed("debug annotation without name or value")),
        }
    }
}
