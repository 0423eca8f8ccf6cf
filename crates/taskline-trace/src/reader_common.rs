//! What both trace readers (format 1 in `reader_v1`, formats 2 and 3 in
//! `reader`) decode the same way: interning entries, spawn sites, the
//! registry's strings and sites, and track descriptors (threads, their span
//! tracks, counter tracks). One definition, so the formats cannot drift in
//! how they read the registry.

use std::sync::Arc;

use taskline_core::{Site, TaskKind, ThreadInfo};

use crate::error::{TraceError, TraceErrorKind as K};
use crate::schema::{self, interned, track};
use crate::wire::{Reader, Value, as_bytes, as_str, as_varint};

fn err<T>(at: usize, kind: K) -> Result<T, TraceError> {
    Err(TraceError::new(at, kind))
}

/// Parses `(iid, value)` interning entries.
pub(crate) fn entry(body: &[u8], off: usize) -> Result<(u64, Value<'_>, usize), TraceError> {
    let mut r = Reader::new(body, off);
    let mut iid = None;
    let mut value = None;
    while let Some((f, v)) = r.next_field()? {
        match f {
            interned::IID => iid = Some(as_varint(v, off, "interned iid")?),
            interned::VALUE => value = Some((v, r.offset())),
            _ => {}
        }
    }
    match (iid, value) {
        (Some(i), Some((v, at))) => Ok((i, v, at)),
        _ => err(off, K::Malformed("interned entry without iid or value")),
    }
}

/// Parses the interned form of a site: `file:line:col (kind)`.
pub(crate) fn parse_site(s: &str) -> Option<Site> {
    let (loc, kind) = s.strip_suffix(')')?.rsplit_once(" (")?;
    let kind = match kind {
        "task" => TaskKind::Task,
        "local" => TaskKind::Local,
        "block_on" => TaskKind::BlockOn,
        "blocking" => TaskKind::Blocking,
        _ => return None,
    };
    let (rest, col) = loc.rsplit_once(':')?;
    let (file, line) = rest.rsplit_once(':')?;
    Some(Site {
        file: Arc::from(file),
        line: line.parse().ok()?,
        col: col.parse().ok()?,
        kind,
    })
}

/// The registry and tracks read so far.
#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) strings: Vec<Arc<str>>,
    pub(crate) sites: Vec<Site>,
    pub(crate) threads: Vec<ThreadInfo>,
    /// Per thread: whether it has a span track.
    pub(crate) span_tracks: Vec<bool>,
}

impl Tables {
    /// One registry entry of the interned string values: odd iids are the
    /// registry's strings, even ones its sites, each dense and in order.
    pub(crate) fn registry_entry(
        &mut self,
        iid: u64,
        s: &str,
        off: usize,
        value_at: usize,
    ) -> Result<(), TraceError> {
        if iid % 2 == 1 {
            if (iid - 1) / 2 != self.strings.len() as u64 {
                return err(off, K::Malformed("registry strings out of order"));
            }
            self.strings.push(Arc::from(s));
        } else {
            if iid == 0 || (iid - 2) / 2 != self.sites.len() as u64 {
                return err(off, K::Malformed("registry sites out of order"));
            }
            let site = parse_site(s)
                .ok_or_else(|| TraceError::new(value_at, K::Malformed("unparsable spawn site")))?;
            self.sites.push(site);
        }
        Ok(())
    }

    pub(crate) fn track_descriptor(&mut self, body: &[u8], off: usize) -> Result<(), TraceError> {
        let mut r = Reader::new(body, off);
        let mut uuid = None;
        let mut thread_name: Option<&str> = None;
        let mut tid: Option<u64> = None;
        let mut rank: Option<u64> = None;
        while let Some((f, v)) = r.next_field()? {
            let at = r.offset();
            match f {
                track::UUID => uuid = Some(as_varint(v, at, "TrackDescriptor.uuid")?),
                track::THREAD => {
                    let (b, o) = as_bytes(v, at, "TrackDescriptor.thread")?;
                    let mut tr = Reader::new(b, o);
                    while let Some((tf, tv)) = tr.next_field()? {
                        match tf {
                            track::THREAD_NAME => {
                                thread_name =
                                    Some(as_str(tv, tr.offset(), "ThreadDescriptor.thread_name")?)
                            }
                            track::THREAD_TID => {
                                tid = Some(as_varint(tv, tr.offset(), "ThreadDescriptor.tid")?)
                            }
                            _ => {}
                        }
                    }
                }
                track::SIBLING_ORDER_RANK => {
                    rank = Some(as_varint(v, at, "TrackDescriptor.sibling_order_rank")?)
                }
                _ => {}
            }
        }
        let uuid = uuid
            .ok_or_else(|| TraceError::new(off, K::Malformed("track descriptor without uuid")))?;
        let thread_range = schema::THREAD_UUID_BASE..schema::THREAD_UUID_BASE + (1 << 16);
        let span_range = schema::SPAN_UUID_BASE..schema::SPAN_UUID_BASE + (1 << 16);
        if thread_range.contains(&uuid) {
            let t = (uuid - schema::THREAD_UUID_BASE) as usize;
            let name = thread_name.ok_or_else(|| {
                TraceError::new(off, K::Malformed("thread track without thread name"))
            })?;
            let info = ThreadInfo {
                id: t as u16,
                name: Arc::from(name),
                // int32 on the wire; worker indexes above i32::MAX come back through the cast.
                worker: rank.map(|r| r as u32),
                // A real tid is 32-bit; the synthetic ones (2^32 + t) are not.
                tid: tid.and_then(|x| u32::try_from(x).ok()),
            };
            if t < self.threads.len() {
                self.threads[t] = info;
            } else if t == self.threads.len() {
                self.threads.push(info);
                self.span_tracks.push(false);
            } else {
                return err(off, K::Malformed("thread numbers are not dense"));
            }
        } else if span_range.contains(&uuid) {
            let t = (uuid - schema::SPAN_UUID_BASE) as usize;
            match self.span_tracks.get_mut(t) {
                Some(s) => *s = true,
                None => return err(off, K::UnknownTrack(uuid)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_parse_back_even_with_colons_in_the_file() {
        let s = Site {
            file: Arc::from("C:\\src\\a (1).rs"),
            line: 12,
            col: 3,
            kind: TaskKind::BlockOn,
        };
        let text = crate::encoder::site_string(&s);
        assert_eq!(parse_site(&text), Some(s));
        assert_eq!(parse_site("a.rs:1:2"), None);
        assert_eq!(parse_site("a.rs:x:2 (task)"), None);
    }
}
