//! Merging the threads' rings into one timestamp-ordered stream, read in
//! place.
//!
//! Every ring is written by one thread with timestamps read just before each
//! push, so each ring is already in timestamp order: ordering the recorder's
//! events is a k-way merge of a few sorted runs, not a sort. [`merge_chunk`]
//! reads the runs where they lie (the consumer's view of each ring) and
//! writes the merged events into a small chunk buffer that is delivered to
//! the sinks and reused, so the consumer copies each event once, into memory
//! that stays in cache, and allocates nothing per tick. (It used to drain
//! every ring into a pending buffer and stable-sort it: three or four copies
//! of every event, and the sort's scratch allocation cost page faults and
//! `madvise` calls in the kernel on every tick.)
//!
//! Events are taken in blocks: the run with the earliest head gives every
//! event up to the next run's head in one go, so interleaved runs cost one
//! scan of the heads per block, not per event. Equal timestamps keep run
//! order (the run listed first goes first) and each run's own order, so the
//! output equals a stable sort of the concatenated runs when every run is
//! sorted. A run that is not (only possible if a source recorded a
//! timestamp out of order) is still merged, and its events come out in
//! nearly sorted order; consumers tolerate that.

use crate::event::{Event, EventKind, flags};

/// A sorted run of events readable by index.
pub(crate) trait Run {
    /// Events in the run.
    fn len(&self) -> usize;
    /// The timestamp of event `i` (`i < len()`).
    fn ts(&self, i: usize) -> u64;
    /// Event `i` (`i < len()`).
    fn get(&self, i: usize) -> Event;
}

impl Run for &[Event] {
    fn len(&self) -> usize {
        <[Event]>::len(self)
    }
    fn ts(&self, i: usize) -> u64 {
        self[i].ts_ns
    }
    fn get(&self, i: usize) -> Event {
        self[i]
    }
}

impl Run for crate::record::ring::RingView<'_> {
    fn len(&self) -> usize {
        crate::record::ring::RingView::len(self)
    }
    #[inline]
    fn ts(&self, i: usize) -> u64 {
        crate::record::ring::RingView::ts(self, i)
    }
    #[inline]
    fn get(&self, i: usize) -> Event {
        crate::record::ring::RingView::get(self, i)
    }
}

/// Where a run lies: in its ring, or copied out of it.
pub(crate) enum Source<'a> {
    /// Read in place.
    Ring(crate::record::ring::RingView<'a>),
    /// Copied out (the ring was under pressure).
    Staged(&'a [Event]),
}

impl Run for Source<'_> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            Source::Ring(v) => Run::len(v),
            Source::Staged(s) => Run::len(s),
        }
    }
    #[inline]
    fn ts(&self, i: usize) -> u64 {
        match self {
            Source::Ring(v) => Run::ts(v, i),
            Source::Staged(s) => Run::ts(s, i),
        }
    }
    #[inline]
    fn get(&self, i: usize) -> Event {
        match self {
            Source::Ring(v) => Run::get(v, i),
            Source::Staged(s) => Run::get(s, i),
        }
    }
}

/// How many leading events of sorted `run` are older than `cutoff`
/// (binary search).
pub(crate) fn count_before<R: Run>(run: &R, cutoff: u64) -> usize {
    let (mut lo, mut hi) = (0, run.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if run.ts(mid) < cutoff {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A run and how far it has been merged.
pub(crate) struct Cursor<R> {
    run: R,
    /// Index of the next event to merge.
    pos: usize,
    /// `run.len()`.
    len: usize,
    /// The timestamp at `pos` (unspecified once `pos == len`), kept here so
    /// picking the next run reads no event memory.
    head: u64,
}

impl<R: Run> Cursor<R> {
    /// A cursor at the start of `run`.
    pub(crate) fn new(run: R) -> Self {
        let len = run.len();
        let head = if len > 0 { run.ts(0) } else { u64::MAX };
        Cursor {
            run,
            pos: 0,
            len,
            head,
        }
    }

    /// Events merged so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The run.
    pub(crate) fn run(&self) -> &R {
        &self.run
    }

    fn done(&self) -> bool {
        self.pos >= self.len
    }
}

/// Appends merged events from `runs` to `out` until `out` holds `limit`
/// events (or one more, see below) or every run is used up; returns `true`
/// in the second case. Call again with the same cursors to continue.
///
/// A `PollEnd` carrying [`flags::TERMINATED`] (the runtime hooks fold a
/// task's termination into the end of its last poll) comes out as a
/// `Terminate` followed by the plain `PollEnd`, both at the `PollEnd`'s
/// timestamp, so the sinks see the documented event kinds.
pub(crate) fn merge_chunk<R: Run>(
    runs: &mut [Cursor<R>],
    out: &mut Vec<Event>,
    limit: usize,
) -> bool {
    loop {
        // The run with the earliest head (the first one on ties), and the
        // earliest head among the others.
        let mut best = usize::MAX;
        let mut best_ts = u64::MAX;
        let mut next = usize::MAX;
        let mut next_ts = u64::MAX;
        for (i, c) in runs.iter().enumerate() {
            if c.done() {
                continue;
            }
            let t = c.head;
            if best == usize::MAX || t < best_ts {
                (next, next_ts) = (best, best_ts);
                (best, best_ts) = (i, t);
            } else if next == usize::MAX || t < next_ts {
                (next, next_ts) = (i, t);
            }
        }
        if best == usize::MAX {
            return true;
        }
        // Take from `best` while its events come first: up to `next_ts`
        // inclusive when `best` is listed before `next` (ties keep run
        // order), exclusive otherwise.
        let c = &mut runs[best];
        let bound = if best < next {
            next_ts
        } else {
            next_ts.saturating_sub(1)
        };
        loop {
            push_expanded(out, c.run.get(c.pos));
            c.pos += 1;
            if c.pos >= c.len {
                break;
            }
            c.head = c.run.ts(c.pos);
            if out.len() >= limit || c.head > bound {
                break;
            }
        }
        if out.len() >= limit {
            return runs.iter().all(Cursor::done);
        }
    }
}

/// Appends `e`, expanding a termination folded into a `PollEnd`.
#[inline]
fn push_expanded(out: &mut Vec<Event>, e: Event) {
    if e.flags & flags::TERMINATED != 0 && e.kind == EventKind::PollEnd as u8 {
        let mut t = Event::new(EventKind::Terminate, e.ts_ns, e.task);
        t.thread = e.thread;
        t.flags = e.flags & flags::FROM_LAYER;
        out.push(t);
        let mut end = e;
        end.flags &= !flags::TERMINATED;
        out.push(end);
    } else {
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: deterministic.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    fn ev(ts: u64, run: u16, seq: u64) -> Event {
        let mut e = Event::new(EventKind::Wake, ts, seq);
        e.thread = run;
        e
    }

    /// Sorted runs with the given lengths, with timestamps from a small
    /// range so ties across runs are common.
    fn runs(rng: &mut Rng, lens: &[usize], spread: u64) -> Vec<Vec<Event>> {
        lens.iter()
            .enumerate()
            .map(|(r, &n)| {
                let mut ts = rng.next() % (spread + 1);
                (0..n)
                    .map(|k| {
                        ts += rng.next() % 3;
                        ev(ts, r as u16, k as u64)
                    })
                    .collect()
            })
            .collect()
    }

    fn merge_all(runs: &[Vec<Event>], limit: usize) -> Vec<Event> {
        let mut cursors: Vec<Cursor<&[Event]>> =
            runs.iter().map(|r| Cursor::new(r.as_slice())).collect();
        let mut all = Vec::new();
        let mut chunk = Vec::new();
        loop {
            let done = merge_chunk(&mut cursors, &mut chunk, limit);
            assert!(
                chunk.len() <= limit + 1,
                "a chunk overshoots by at most one expansion"
            );
            all.append(&mut chunk);
            if done {
                return all;
            }
        }
    }

    #[test]
    fn equals_a_stable_sort_in_chunks_of_any_size() {
        let mut rng = Rng(0x1234_5678);
        for round in 0..400 {
            let n = (rng.next() % 7) as usize;
            let lens: Vec<usize> = (0..n)
                .map(|_| match rng.next() % 4 {
                    0 => 0,
                    1 => 1,
                    _ => (rng.next() % 300) as usize,
                })
                .collect();
            let spread = [0, 10, 1000][round % 3];
            let input = runs(&mut rng, &lens, spread);
            let mut expected: Vec<Event> = input.concat();
            expected.sort_by_key(|e| e.ts_ns);
            let limit = [1, 7, 4096][round % 3];
            assert_eq!(
                merge_all(&input, limit),
                expected,
                "round {round}, runs {lens:?}"
            );
        }
    }

    #[test]
    fn a_folded_termination_comes_out_as_terminate_then_poll_end() {
        let mut end = Event::new(EventKind::PollEnd, 50, 7);
        end.flags = flags::TERMINATED;
        end.thread = 3;
        end.aux = 1;
        let a = vec![Event::new(EventKind::PollStart, 10, 7), end];
        let b = vec![ev(20, 1, 0), ev(60, 1, 1)];
        let out = merge_all(&[a, b], 4096);
        let kinds: Vec<_> = out.iter().map(|e| (e.kind(), e.ts_ns)).collect();
        assert_eq!(
            kinds,
            [
                (Some(EventKind::PollStart), 10),
                (Some(EventKind::Wake), 20),
                (Some(EventKind::Terminate), 50),
                (Some(EventKind::PollEnd), 50),
                (Some(EventKind::Wake), 60),
            ]
        );
        assert_eq!((out[2].task, out[2].thread, out[2].flags), (7, 3, 0));
        assert_eq!((out[3].flags, out[3].aux), (0, 1));
    }

    #[test]
    fn an_unsorted_run_is_still_merged_whole() {
        let a = vec![ev(5, 0, 0), ev(3, 0, 1), ev(9, 0, 2)];
        let b = vec![ev(4, 1, 0)];
        let out = merge_all(&[a, b], 2);
        assert_eq!(out.len(), 4);
        let mut seqs: Vec<_> = out.iter().map(|e| (e.thread, e.task)).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, [(0, 0), (0, 1), (0, 2), (1, 0)]);
    }
}
