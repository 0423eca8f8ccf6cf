//! Worker utilization over a run and the minimum worker utilization (MMU) curve.
//!
//! "Busy" means a runtime worker is inside a poll (between a `PollStart` and
//! the matching `PollEnd` carrying that worker index). Polls recorded without
//! a worker index ([`NO_WORKER`](taskline_core::NO_WORKER)) do not
//! count: they did not run on a worker. Workers are keyed by Tokio's worker
//! index, so two runtimes in one stream share worker 0, 1, ...; and during
//! `block_in_place` the index moves to a new thread while the old poll goes
//! on, which this timeline sees as one longer busy interval.
//!
//! The timeline keeps the *cumulative* busy worker-time `B(x)` (sum over
//! workers of busy nanoseconds before `x`) as a piecewise-linear function:
//!
//! - **Exact mode**: one point at every instant the number of busy workers
//!   changes. Between two points the slope is the (constant) number of busy
//!   workers, so interpolation is exact and the MMU is exact (up to 1 ns of
//!   integer rounding per evaluation).
//! - **Bucket mode**: when more than `max_points` points would be stored, the
//!   points are folded into fixed-width buckets (a power of two of
//!   nanoseconds, doubled whenever the run outgrows `max_points` buckets).
//!   Busy time inside a bucket is treated as spread evenly over it, so `B(x)`
//!   is off by at most `W * width` (W = workers) and the utilization of a
//!   window of length `w` is off by at most `2 * width / w` (absolute). The
//!   report carries this bound ([`MmuPoint::max_error`](super::MmuPoint::max_error)).
//!
//! Memory is at most `max_points` points (16 bytes each) or `max_points`
//! buckets (8 bytes each), plus one small entry per worker.
//!
//! The MMU for a window `w` is `min over t in [start, end - w] of
//! (B(t + w) - B(t)) / (W * w)`. `B` is piecewise linear, so that minimum is
//! reached where `t` or `t + w` is a breakpoint of `B`: both candidate sets
//! are swept with monotone cursors, `O(points)` per window size.

use std::collections::BTreeMap;

/// Per-worker state: whether it is inside a poll, and totals.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkerState {
    /// Start of the poll running now, and its task.
    pub(crate) busy_since: Option<(u64, u64)>,
    /// Busy nanoseconds in completed polls.
    pub(crate) busy_ns: u64,
    /// Completed polls.
    pub(crate) polls: u64,
}

#[derive(Clone, Debug)]
enum Repr {
    /// `(ts, B(ts))` at every change of the busy-worker count.
    Exact(Vec<(u64, u64)>),
    /// Busy worker-nanoseconds per bucket `[origin + k*width, origin + (k+1)*width)`.
    Buckets { width: u64, busy: Vec<u64> },
}

/// Busy-worker timeline of one run (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    pub(crate) workers: BTreeMap<u32, WorkerState>,
    busy_count: u64,
    start: Option<u64>,
    last_ts: u64,
    cum: u64,
    repr: Repr,
    max_points: usize,
}

/// One point of the MMU curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MmuValue {
    /// Window length in ns.
    pub(crate) window_ns: u64,
    /// Minimum utilization over all windows of that length, in `[0, 1]`.
    pub(crate) utilization: f64,
    /// Start of (one of) the worst windows, ns since the timeline start.
    pub(crate) at_ns: u64,
}

impl Timeline {
    /// An empty timeline keeping at most `max_points` points (at least 16).
    pub(crate) fn new(max_points: usize) -> Self {
        Timeline {
            workers: BTreeMap::new(),
            busy_count: 0,
            start: None,
            last_ts: 0,
            cum: 0,
            repr: Repr::Exact(Vec::new()),
            max_points: max_points.max(16),
        }
    }

    /// Move time forward to `ts` (earlier timestamps are clamped to the last one).
    pub(crate) fn advance(&mut self, ts: u64) {
        let Some(start) = self.start else {
            self.start = Some(ts);
            self.last_ts = ts;
            if let Repr::Exact(points) = &mut self.repr {
                points.push((ts, 0));
            }
            return;
        };
        let ts = ts.max(self.last_ts);
        if ts == self.last_ts {
            return;
        }
        let from = self.last_ts;
        self.cum = self
            .cum
            .saturating_add(self.busy_count.saturating_mul(ts - from));
        if let Repr::Buckets { .. } = self.repr {
            self.spread(start, from, ts, self.busy_count);
        }
        self.last_ts = ts;
    }

    /// Worker `worker` started polling `task` at `ts`.
    pub(crate) fn poll_start(&mut self, worker: u32, task: u64, ts: u64) {
        self.advance(ts);
        let ts = self.last_ts;
        let w = self.workers.entry(worker).or_default();
        if w.busy_since.is_some() {
            // A missing PollEnd (dropped event): the worker stays busy, now with this task.
            w.busy_since = Some((w.busy_since.map_or(ts, |b| b.0), task));
            return;
        }
        w.busy_since = Some((ts, task));
        self.busy_count += 1;
        self.changed(ts);
    }

    /// Worker `worker` finished a poll at `ts`. Returns `(start, task)` of the
    /// poll it ends, or `None` if the worker was not known to be polling.
    pub(crate) fn poll_end(&mut self, worker: u32, ts: u64) -> Option<(u64, u64)> {
        self.advance(ts);
        let ts = self.last_ts;
        let w = self.workers.get_mut(&worker)?;
        let (since, task) = w.busy_since.take()?;
        w.busy_ns = w.busy_ns.saturating_add(ts - since);
        w.polls += 1;
        self.busy_count -= 1;
        self.changed(ts);
        Some((since, task))
    }

    /// Record a change of the busy count at `ts` (== `last_ts`).
    fn changed(&mut self, ts: u64) {
        let Repr::Exact(points) = &mut self.repr else {
            return;
        };
        match points.last_mut() {
            Some(last) if last.0 == ts => last.1 = self.cum,
            _ => points.push((ts, self.cum)),
        }
        if points.len() > self.max_points {
            self.coalesce();
        }
    }

    /// Fold the exact points into buckets (see the module docs).
    fn coalesce(&mut self) {
        let Some(start) = self.start else { return };
        let Repr::Exact(points) = std::mem::replace(
            &mut self.repr,
            Repr::Buckets {
                width: 1,
                busy: Vec::new(),
            },
        ) else {
            return;
        };
        let span = self.last_ts - start;
        let target = (self.max_points / 4).max(1) as u64;
        let width = (span / target).max(1).next_power_of_two();
        self.repr = Repr::Buckets {
            width,
            busy: Vec::new(),
        };
        for pair in points.windows(2) {
            let (a, ba) = pair[0];
            let (b, bb) = pair[1];
            if b > a && bb > ba {
                self.spread(start, a, b, (bb - ba) / (b - a));
            }
        }
        if let Some(&(a, _)) = points.last()
            && self.last_ts > a
        {
            self.spread(start, a, self.last_ts, self.busy_count);
        }
    }

    /// Add `rate` busy workers over `[a, b)` to the buckets.
    fn spread(&mut self, origin: u64, a: u64, b: u64, rate: u64) {
        let max_buckets = self.max_points;
        let Repr::Buckets { width, busy } = &mut self.repr else {
            return;
        };
        // Grow the width until the bucket holding `b - 1` fits.
        while ((b.saturating_sub(1) - origin) / *width) as usize >= max_buckets {
            let merged: Vec<u64> = busy
                .chunks(2)
                .map(|c| c.iter().fold(0u64, |s, v| s.saturating_add(*v)))
                .collect();
            *busy = merged;
            *width = width.saturating_mul(2);
        }
        let last_idx = ((b - 1 - origin) / *width) as usize;
        if busy.len() <= last_idx {
            busy.resize(last_idx + 1, 0);
        }
        if rate == 0 {
            return;
        }
        let mut x = a;
        while x < b {
            let idx = ((x - origin) / *width) as usize;
            let bucket_end = origin.saturating_add((idx as u64 + 1).saturating_mul(*width));
            let end = bucket_end.min(b);
            busy[idx] = busy[idx].saturating_add(rate.saturating_mul(end - x));
            x = end;
        }
    }

    /// First timestamp seen.
    pub(crate) fn start(&self) -> Option<u64> {
        self.start
    }

    /// Last timestamp seen.
    pub(crate) fn end(&self) -> u64 {
        self.last_ts
    }

    /// Upper bound of the absolute MMU error for a window of `window_ns`
    /// (0 in exact mode).
    pub(crate) fn max_error(&self, window_ns: u64) -> f64 {
        match &self.repr {
            Repr::Exact(_) => 0.0,
            Repr::Buckets { width, .. } => (2.0 * *width as f64 / window_ns as f64).min(1.0),
        }
    }

    /// Whether the timeline had to fold its points into buckets.
    pub(crate) fn is_coalesced(&self) -> bool {
        matches!(self.repr, Repr::Buckets { .. })
    }

    /// Busy nanoseconds per worker including a poll still running at the end.
    pub(crate) fn worker_busy(&self) -> impl Iterator<Item = (u32, u64, u64)> + '_ {
        self.workers.iter().map(|(idx, w)| {
            let running = w.busy_since.map_or(0, |(s, _)| self.last_ts - s);
            (*idx, w.busy_ns.saturating_add(running), w.polls)
        })
    }

    /// The cumulative points of `B`, ending at the last timestamp.
    fn cumulative(&self) -> Vec<(u64, u64)> {
        let Some(start) = self.start else {
            return Vec::new();
        };
        match &self.repr {
            Repr::Exact(points) => {
                let mut out = points.clone();
                if out.last().is_some_and(|p| p.0 < self.last_ts) {
                    out.push((self.last_ts, self.cum));
                }
                out
            }
            Repr::Buckets { width, busy } => {
                let mut out = Vec::with_capacity(busy.len() + 1);
                out.push((start, 0));
                let mut cum = 0u64;
                for (k, b) in busy.iter().enumerate() {
                    cum = cum.saturating_add(*b);
                    let x = start
                        .saturating_add((k as u64 + 1).saturating_mul(*width))
                        .min(self.last_ts);
                    if x > out.last().map_or(start, |p| p.0) {
                        out.push((x, cum));
                    } else if let Some(p) = out.last_mut() {
                        p.1 = cum;
                    }
                }
                out
            }
        }
    }

    /// The MMU for each window length (ns). Windows longer than the run, or a
    /// run without workers, give no value.
    pub(crate) fn mmu(&self, windows_ns: &[u64]) -> Vec<MmuValue> {
        let workers = self.workers.len() as u64;
        let points = self.cumulative();
        let (Some(&(start, _)), Some(&(end, _))) = (points.first(), points.last()) else {
            return Vec::new();
        };
        if workers == 0 {
            return Vec::new();
        }
        windows_ns
            .iter()
            .filter(|w| **w > 0 && **w <= end - start)
            .map(|&w| {
                let (busy, at) = min_window_busy(&points, w);
                MmuValue {
                    window_ns: w,
                    utilization: (busy as f64 / (workers as f64 * w as f64)).clamp(0.0, 1.0),
                    at_ns: at - start,
                }
            })
            .collect()
    }
}

/// Evaluates a piecewise-linear cumulative function at increasing `x`.
struct Cursor<'a> {
    points: &'a [(u64, u64)],
    i: usize,
}

impl Cursor<'_> {
    /// `B(x)`; calls must have nondecreasing `x` within `[first.0, last.0]`.
    fn at(&mut self, x: u64) -> u64 {
        while self.i + 1 < self.points.len() && self.points[self.i + 1].0 <= x {
            self.i += 1;
        }
        let (x0, b0) = self.points[self.i];
        if self.i + 1 >= self.points.len() || x <= x0 {
            return b0;
        }
        let (x1, b1) = self.points[self.i + 1];
        let num = u128::from(b1 - b0) * u128::from(x - x0);
        b0 + (num / u128::from(x1 - x0)) as u64
    }
}

/// Minimum of `B(t + w) - B(t)` over `t in [start, end - w]` and the `t`
/// reaching it (the earliest on ties).
fn min_window_busy(points: &[(u64, u64)], w: u64) -> (u64, u64) {
    let start = points[0].0;
    let last = points[points.len() - 1].0;
    let mut best = (u64::MAX, start);
    let mut consider = |busy: u64, t: u64| {
        if busy < best.0 || (busy == best.0 && t < best.1) {
            best = (busy, t);
        }
    };
    // Candidates t = x_i (window starting at a breakpoint).
    let mut hi = Cursor { points, i: 0 };
    for &(x, b) in points {
        let Some(end) = x.checked_add(w).filter(|e| *e <= last) else {
            break;
        };
        consider(hi.at(end) - b, x);
    }
    // Candidates t = x_i - w (window ending at a breakpoint).
    let mut lo = Cursor { points, i: 0 };
    for &(x, b) in points {
        if x < start.saturating_add(w) {
            continue;
        }
        let t = x - w;
        consider(b - lo.at(t), t);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn poll(t: &mut Timeline, worker: u32, from_ms: u64, to_ms: u64) {
        t.poll_start(worker, 1, from_ms * MS);
        t.poll_end(worker, to_ms * MS);
    }

    /// Two workers over 0..100 ms: worker 0 busy 0..50, worker 1 busy 25..100.
    fn two_workers(max_points: usize) -> Timeline {
        let mut t = Timeline::new(max_points);
        t.advance(0);
        t.poll_start(0, 1, 0);
        t.poll_start(1, 2, 25 * MS);
        assert_eq!(t.poll_end(0, 50 * MS), Some((0, 1)));
        assert_eq!(t.poll_end(1, 100 * MS), Some((25 * MS, 2)));
        t
    }

    #[test]
    fn mmu_of_two_known_workers() {
        let t = two_workers(1024);
        assert!(!t.is_coalesced());
        let mmu = t.mmu(&[10 * MS, 50 * MS, 100 * MS, 200 * MS]);
        // 100 ms window: (50 + 75) / 200.
        // 50 ms window: [0, 50) has w0 50 + w1 25 = 75; [50, 100) has 0 + 50 -> 0.5.
        // 10 ms window: any window with only one worker busy -> 0.5.
        assert_eq!(mmu.len(), 3, "a window longer than the run has no value");
        assert_eq!(mmu[0].window_ns, 10 * MS);
        assert!((mmu[0].utilization - 0.5).abs() < 1e-9, "{mmu:?}");
        assert_eq!(mmu[0].at_ns, 0);
        assert!((mmu[1].utilization - 0.5).abs() < 1e-9, "{mmu:?}");
        assert_eq!(mmu[1].at_ns, 50 * MS);
        assert!((mmu[2].utilization - 0.625).abs() < 1e-9, "{mmu:?}");
        let busy: Vec<_> = t.worker_busy().collect();
        assert_eq!(busy, vec![(0, 50 * MS, 1), (1, 75 * MS, 1)]);
    }

    #[test]
    fn mmu_finds_an_idle_gap_between_breakpoints() {
        // One worker: busy 0..10, idle 10..13, busy 13..30 ms.
        let mut t = Timeline::new(1024);
        poll(&mut t, 0, 0, 10);
        poll(&mut t, 0, 13, 30);
        let mmu = t.mmu(&[MS, 2 * MS, 5 * MS, 10 * MS]);
        let u: Vec<f64> = mmu.iter().map(|m| m.utilization).collect();
        // 1 and 2 ms windows fit in the gap -> 0; 5 ms: 2/5 busy at best -> 0.4;
        // 10 ms: 7/10.
        assert_eq!(u[0], 0.0);
        assert_eq!(u[1], 0.0);
        assert!((u[2] - 0.4).abs() < 1e-9, "{u:?}");
        assert!((u[3] - 0.7).abs() < 1e-9, "{u:?}");
        assert_eq!(mmu[0].at_ns, 10 * MS);
    }

    #[test]
    fn coalesced_timeline_stays_bounded_and_within_its_error_bound() {
        // One worker busy 1 ms of every 2 ms for 2 s, then idle 100 ms, with 64 points max.
        let mut exact = Timeline::new(1 << 20);
        let mut small = Timeline::new(64);
        for t in [&mut exact, &mut small] {
            for k in 0..1000 {
                poll(t, 0, 2 * k, 2 * k + 1);
            }
            t.advance(2100 * MS);
        }
        assert!(small.is_coalesced());
        match &small.repr {
            Repr::Buckets { busy, .. } => assert!(busy.len() <= 64, "{}", busy.len()),
            Repr::Exact(_) => unreachable!(),
        }
        let windows = [MS, 10 * MS, 100 * MS, 200 * MS, 1000 * MS];
        let e = exact.mmu(&windows);
        let s = small.mmu(&windows);
        for (e, s) in e.iter().zip(&s) {
            let bound = small.max_error(e.window_ns) + 1e-9;
            assert!(
                (e.utilization - s.utilization).abs() <= bound,
                "window {}: exact {} coalesced {} bound {bound}",
                e.window_ns,
                e.utilization,
                s.utilization
            );
        }
        // Exact values computed by hand: 100 ms window fits in the idle tail.
        assert_eq!(e[2].utilization, 0.0);
        assert!((e[4].utilization - 0.45).abs() < 1e-9, "{:?}", e[4]);
        assert_eq!(exact.worker_busy().next(), small.worker_busy().next());
    }

    #[test]
    fn hostile_timestamps_do_not_overflow() {
        for max_points in [16, 1 << 20] {
            let mut t = Timeline::new(max_points);
            t.poll_start(0, 1, 5);
            t.poll_end(0, u64::MAX / 2);
            for k in 0..100u64 {
                t.poll_start(1, k, u64::MAX - 1000 + 10 * k);
                t.poll_end(1, u64::MAX - 995 + 10 * k);
            }
            t.advance(u64::MAX);
            let mmu = t.mmu(&[1, 1000, u64::MAX / 4, u64::MAX]);
            assert!(
                mmu.iter().all(|m| (0.0..=1.0).contains(&m.utilization)),
                "{mmu:?}"
            );
            assert_eq!(mmu.len(), 3, "the window longer than the run has no value");
        }
    }

    #[test]
    fn missing_poll_end_keeps_the_worker_busy_until_the_end() {
        let mut t = Timeline::new(1024);
        t.poll_start(3, 7, 0);
        t.poll_start(3, 8, 5 * MS);
        t.advance(10 * MS);
        let busy: Vec<_> = t.worker_busy().collect();
        assert_eq!(busy, vec![(3, 10 * MS, 0)]);
        assert!((t.mmu(&[10 * MS])[0].utilization - 1.0).abs() < 1e-9);
        assert_eq!(t.poll_end(9, 11 * MS), None);
    }
}
