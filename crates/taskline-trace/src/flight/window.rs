//! The flight recorder's window: the retained events, kept compactly.
//!
//! A retained [`Event`] is 32 bytes in memory; the window stores events in
//! chunks of at most [`CHUNK_EVENTS`], each a run of variable-length
//! records relative to the previous record of the chunk (time and task id
//! as zigzag deltas, the other fields as varints, a field's usual marker
//! value in one byte), about 8 to 10 bytes per event on a real stream:
//! three to four times the seconds of history for the same
//! [`max_bytes`](super::FlightConfig::max_bytes). Eviction drops whole
//! chunks, oldest first, by size, and by age once a chunk's newest event is
//! older than the window; events of a chunk that straddles the age cutoff
//! are filtered when the window is read ([`Window::events`]), so what a dump
//! holds is exactly the events of the last `max_age`.
//!
//! A long-lived task's `Spawn` leaves the window long before the task's
//! polls do; the window keeps the `Spawn` and `TaskName` events of evicted
//! chunks until their `Terminate` leaves it too (at most [`MAX_LABELS`]
//! tasks; past that a task's polls go unnamed in a dump), which a dump
//! passes to the encoder as context so those polls are still named by their
//! spawn site.

use std::collections::VecDeque;

use taskline_core::{Event, EventKind, IdMap};

/// Events per chunk at most: the granularity of eviction.
pub(super) const CHUNK_EVENTS: usize = 1024;

/// Bytes counted for a chunk besides its records (its header and `Vec`).
const CHUNK_OVERHEAD: usize = std::mem::size_of::<Chunk>();

/// Tasks whose `Spawn` / `TaskName` the window remembers past their eviction.
pub(super) const MAX_LABELS: usize = 65_536;

/// Smallest record: one byte per field (kind, thread, time, task, arg, aux).
const MIN_RECORD: usize = 6;

/// Bit of the kind byte saying a flags byte follows.
const HAS_FLAGS: u8 = 0x80;

/// A head byte saying the kind byte and the flags byte follow (a kind
/// byte of 0x7f or more, which names no kind: hostile input).
const ESCAPE: u8 = 0x7f;

#[derive(Debug)]
struct Chunk {
    /// Newest timestamp in the chunk.
    last_ts: u64,
    count: u32,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Labels {
    spawn: Option<Event>,
    name: Option<Event>,
}

/// The retained events (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Window {
    chunks: VecDeque<Chunk>,
    /// Bytes of all chunks, records and overhead.
    bytes: usize,
    events: usize,
    labels: IdMap<u64, Labels>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*at) {
        *at += 1;
        if shift < 64 {
            v |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn zigzag(d: i64) -> u64 {
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl Chunk {
    fn encode(events: &[Event]) -> Chunk {
        let mut data = Vec::with_capacity(events.len() * 10);
        let (mut ts, mut task) = (0u64, 0u64);
        for e in events {
            if e.kind >= ESCAPE {
                data.extend([ESCAPE, e.kind, e.flags]);
            } else if e.flags != 0 {
                data.extend([e.kind | HAS_FLAGS, e.flags]);
            } else {
                data.push(e.kind);
            }
            put_varint(&mut data, u64::from(e.thread));
            put_varint(&mut data, zigzag(e.ts_ns.wrapping_sub(ts) as i64));
            put_varint(&mut data, zigzag(e.task.wrapping_sub(task) as i64));
            // `NO_VALUE` / `NO_WORKER` (all ones) become 0: one byte.
            put_varint(&mut data, e.arg.wrapping_add(1));
            put_varint(&mut data, u64::from(e.aux.wrapping_add(1)));
            ts = e.ts_ns;
            task = e.task;
        }
        data.shrink_to_fit();
        Chunk {
            last_ts: events.iter().map(|e| e.ts_ns).max().unwrap_or(0),
            count: events.len() as u32,
            data,
        }
    }

    fn bytes(&self) -> usize {
        CHUNK_OVERHEAD + self.data.capacity()
    }

    /// The chunk of the longest suffix of `events` within `max_bytes`, and
    /// where that suffix starts (at least the last event is kept).
    fn suffix_within(events: &[Event], max_bytes: usize) -> (usize, Chunk) {
        let (mut lo, mut hi) = (0, events.len().saturating_sub(1));
        // The smallest start whose suffix fits, by bisection.
        while lo < hi {
            let mid = (lo + hi) / 2;
            if Chunk::encode(&events[mid..]).bytes() <= max_bytes {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        (lo, Chunk::encode(&events[lo..]))
    }

    /// The chunk's events, in order.
    fn decode(&self, mut f: impl FnMut(Event)) {
        let d = &self.data;
        let mut at = 0;
        let (mut ts, mut task) = (0u64, 0u64);
        for _ in 0..self.count {
            let Some(&head) = d.get(at) else { return };
            at += 1;
            let mut byte = || {
                let b = d.get(at).copied().unwrap_or(0);
                at += 1;
                b
            };
            let (kind, flags) = if head == ESCAPE {
                (byte(), byte())
            } else if head & HAS_FLAGS != 0 {
                (head & !HAS_FLAGS, byte())
            } else {
                (head, 0)
            };
            let thread = get_varint(d, &mut at) as u16;
            ts = ts.wrapping_add(unzigzag(get_varint(d, &mut at)) as u64);
            task = task.wrapping_add(unzigzag(get_varint(d, &mut at)) as u64);
            let arg = get_varint(d, &mut at).wrapping_sub(1);
            let aux = (get_varint(d, &mut at) as u32).wrapping_sub(1);
            f(Event {
                ts_ns: ts,
                task,
                arg,
                aux,
                thread,
                kind,
                flags,
            });
        }
    }
}

impl Window {
    /// Events retained (counting those of a straddling chunk that
    /// [`events`](Self::events) filters out by age).
    pub(super) fn len(&self) -> usize {
        self.events
    }

    /// Bytes the chunks take.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends `events`, then evicts the oldest chunks until the window is
    /// within `max_bytes` and its oldest chunk holds an event newer than
    /// `cutoff` (newest - max_age). Returns how many events were evicted.
    pub(super) fn push(&mut self, events: &[Event], max_bytes: usize, max_age_ns: u64) -> u64 {
        // No more than this many can fit: records take MIN_RECORD bytes or more.
        let fit = max_bytes.saturating_sub(CHUNK_OVERHEAD) / MIN_RECORD;
        let pre = events.len().saturating_sub(fit.max(1));
        self.remember_labels(&events[..pre]);
        let mut skip = pre;
        let parts: Vec<&[Event]> = events[pre..].chunks(CHUNK_EVENTS).collect();
        for (i, part) in parts.iter().enumerate() {
            let mut c = Chunk::encode(part);
            if i + 1 == parts.len() && c.bytes() > max_bytes {
                // The newest chunk alone is too big: keep its longest suffix that fits.
                let (cut, fitting) = Chunk::suffix_within(part, max_bytes);
                self.remember_labels(&part[..cut]);
                skip += cut;
                c = fitting;
            }
            self.bytes += c.bytes();
            self.events += c.count as usize;
            self.chunks.push_back(c);
        }
        let mut evicted = skip as u64;
        let newest = self.chunks.iter().map(|c| c.last_ts).max().unwrap_or(0);
        let cutoff = newest.saturating_sub(max_age_ns);
        while let Some(front) = self.chunks.front() {
            // The newest chunk stays whatever its age or size (it was just
            // trimmed to fit), so the window is never empty after a push.
            if self.chunks.len() == 1 || (self.bytes <= max_bytes && front.last_ts >= cutoff) {
                break;
            }
            let Some(c) = self.chunks.pop_front() else {
                break;
            };
            self.bytes -= c.bytes();
            self.events -= c.count as usize;
            evicted += u64::from(c.count);
            let mut gone = Vec::new();
            c.decode(|e| {
                if e.kind == EventKind::Spawn as u8
                    || e.kind == EventKind::TaskName as u8
                    || e.kind == EventKind::Terminate as u8
                {
                    gone.push(e);
                }
            });
            self.remember_labels(&gone);
        }
        evicted
    }

    /// Applies the events leaving the window, in order, to the labels the
    /// dumps' context is made of: a `Spawn` / `TaskName` is kept, a
    /// `Terminate` forgets its task (so the labels are those of the tasks
    /// alive when the window begins).
    fn remember_labels(&mut self, events: &[Event]) {
        for e in events {
            if e.kind == EventKind::Terminate as u8 {
                self.labels.remove(&e.task);
                continue;
            }
            let spawn = e.kind == EventKind::Spawn as u8;
            if !spawn && e.kind != EventKind::TaskName as u8 {
                continue;
            }
            if self.labels.len() >= MAX_LABELS && !self.labels.contains_key(&e.task) {
                // Full (more live tasks than MAX_LABELS whose spawns left
                // the window): that task's polls go unnamed in a dump.
                continue;
            }
            let l = self.labels.entry(e.task).or_default();
            if spawn {
                l.spawn.get_or_insert(*e);
            } else {
                l.name = Some(*e);
            }
        }
    }

    /// The retained events at or after `cutoff`, oldest first.
    pub(super) fn events(&self, cutoff: u64) -> Vec<Event> {
        let mut out = Vec::with_capacity(self.events);
        for c in &self.chunks {
            if c.last_ts < cutoff {
                continue;
            }
            c.decode(|e| {
                if e.ts_ns >= cutoff {
                    out.push(e);
                }
            });
        }
        out
    }

    /// The newest timestamp retained.
    pub(super) fn newest(&self) -> Option<u64> {
        self.chunks.iter().map(|c| c.last_ts).max()
    }

    /// `Spawn` / `TaskName` events of tasks whose spawn left the window, in
    /// the order they happened: the context a dump names their polls with.
    pub(super) fn labels(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .labels
            .values()
            .flat_map(|l| l.spawn.into_iter().chain(l.name))
            .collect();
        out.sort_by_key(|e| (e.ts_ns, e.task));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskline_core::{NO_VALUE, NO_WORKER, flags};

    fn ev(kind: EventKind, ts: u64, task: u64) -> Event {
        Event::new(kind, ts, task)
    }

    #[test]
    fn records_round_trip_every_field() {
        let mut odd = ev(EventKind::PollStart, u64::MAX, u64::MAX);
        odd.arg = NO_VALUE;
        odd.aux = NO_WORKER;
        odd.thread = u16::MAX;
        odd.flags = flags::FROM_LAYER | 3;
        let mut back = ev(EventKind::Wake, 5, 1);
        back.arg = 77;
        back.aux = 9;
        let events = [
            ev(EventKind::Spawn, 10, 100),
            odd,
            back, // time and task going backwards
            Event {
                kind: 250,
                ..ev(EventKind::Park, 6, 0)
            },
        ];
        let c = Chunk::encode(&events);
        let mut out = Vec::new();
        c.decode(|e| out.push(e));
        assert_eq!(out, events);
    }

    #[test]
    fn a_real_looking_stream_takes_about_ten_bytes_per_event() {
        let mut events = Vec::new();
        for i in 0..1000u64 {
            let mut s = ev(EventKind::PollStart, 1_000_000 + i * 1500, 1000 + i % 64);
            s.arg = NO_VALUE;
            s.aux = (i % 2) as u32;
            s.thread = (i % 2) as u16;
            let mut e = ev(EventKind::PollEnd, s.ts_ns + 700, s.task);
            e.aux = s.aux;
            e.thread = s.thread;
            events.extend([s, e]);
        }
        let c = Chunk::encode(&events);
        let per_event = c.data.len() as f64 / events.len() as f64;
        assert!(per_event < 10.0, "{per_event} bytes/event");
    }

    #[test]
    fn eviction_keeps_the_newest_by_size_and_age_and_remembers_spawns() {
        let mut w = Window::default();
        let mut spawn = ev(EventKind::Spawn, 0, 7);
        spawn.aux = 3;
        let mut batch = vec![spawn];
        batch.extend((1..CHUNK_EVENTS as u64).map(|t| ev(EventKind::Wake, t, 7)));
        assert_eq!(w.push(&batch, usize::MAX, u64::MAX), 0);
        assert_eq!(w.len(), CHUNK_EVENTS);
        // A newer chunk, and an age that leaves the first one behind.
        let late: Vec<Event> = (0..10)
            .map(|t| ev(EventKind::Wake, 10_000 + t, 8))
            .collect();
        assert_eq!(w.push(&late, usize::MAX, 5_000), CHUNK_EVENTS as u64);
        assert_eq!(w.events(0), late);
        assert_eq!(w.labels(), vec![spawn]);
        // Its terminate forgets it, once the terminate leaves the window too.
        w.push(&[ev(EventKind::Terminate, 10_020, 7)], usize::MAX, 5_000);
        assert_eq!(w.labels(), vec![spawn]);
        w.push(&[ev(EventKind::Wake, 20_000, 9)], usize::MAX, 5_000);
        assert!(w.labels().is_empty());
        // By size: a budget below one chunk of `late` keeps its newest part.
        let budget = CHUNK_OVERHEAD + 30;
        assert!(Chunk::encode(&late).bytes() > budget);
        w.push(&late, budget, u64::MAX);
        let kept = w.events(0);
        assert!(w.bytes() <= budget && !kept.is_empty(), "{}", w.bytes());
        assert_eq!(kept.as_slice(), &late[late.len() - kept.len()..]);
        w.push(&late, usize::MAX, u64::MAX);
        // A straddling chunk is filtered by the cutoff when read.
        assert_eq!(
            w.events(10_005).len(),
            5 + kept.iter().filter(|e| e.ts_ns >= 10_005).count()
        );
        assert_eq!(w.newest(), Some(10_009));
    }

    #[test]
    fn a_batch_larger_than_the_budget_keeps_its_newest_part() {
        let mut w = Window::default();
        let big: Vec<Event> = (0..10_000).map(|t| ev(EventKind::Wake, t, t)).collect();
        let budget = 4096;
        let evicted = w.push(&big, budget, u64::MAX);
        assert!(w.bytes() <= budget, "{}", w.bytes());
        let kept = w.events(0);
        assert_eq!(kept.as_slice(), &big[big.len() - kept.len()..]);
        assert_eq!(evicted as usize + kept.len(), big.len());
    }
}
