//! [`RegionTable`]: application regions summarized per name, like the user
//! regions of Go's execution tracer (`trace.WithRegion`).
//!
//! A *region* is a stretch of work the application names: a `tracing` span
//! recorded as `SpanEnter` / `SpanExit` (with
//! [`RecorderConfig::record_spans`](crate::RecorderConfig::record_spans)),
//! or a future wrapped by [`Recorder::region`](crate::Recorder::region). The
//! table counts each region's instances per name and keeps their total,
//! mean and p99 duration, the time they ran (*busy*) and waited, and the
//! spawn sites of the tasks they ran in. One definition, fed by the live
//! [`Aggregator`](crate::Aggregator) (so [`Snapshot::regions`](crate::Snapshot::regions))
//! and, through the same aggregator, by the offline analysis of a trace file.
//!
//! How the events are read (the [`SpanMark`] in the flags says which):
//! - a `tracing` span: each `SpanEnter` and the next `SpanExit` of the same
//!   span id **on the same thread** is one instance (a span entered three
//!   times counts three). Nested and interleaved spans are matched by span
//!   id, not by order. Busy time is the time entered; wait time is 0;
//! - a region future: its first poll's `SpanEnter` ([`SpanMark::FirstPoll`])
//!   starts the instance, its completing poll's `SpanExit`
//!   ([`SpanMark::Completed`]) or the [`SpanMark::Dropped`] pair ends it.
//!   Duration runs from the first poll's start to the end; busy time is the
//!   sum of its polls; wait time is duration minus busy. A future dropped
//!   before completing counts in `count` and in `dropped`;
//! - the site of an instance is that of the task being polled on the
//!   thread of its (first) enter, which the caller passes to
//!   [`RegionTable::event`] (the aggregator knows it from that thread's open
//!   `PollStart`); `None` (no task polled, or an untracked one) shows as the
//!   unknown site.
//!
//! Memory is bounded by [`RegionLimits`] ([`RegionLimits::bytes_bound`]):
//! at most `max_names` names get a row (instances of later names fold into
//! one `(other)` row), `max_sites` sites per name (the rest counted as
//! `other_sites`), `max_open_spans` entered spans waiting for their exit
//! across all threads (past that the oldest is forgotten), and
//! `max_open_futures` region futures started and not ended (past that a new
//! one is not followed). Everything forgotten or not matched is counted in
//! [`RegionTable::lost`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hdrhistogram::Histogram;

use super::aggregator::HISTOGRAM_MAX_NS;
use super::snapshot::HistogramSummary;
use crate::event::{DecodedEvent, Event, SpanMark};
use crate::id_map::IdMap;
use crate::record::registry::Registry;

/// Default of [`RegionLimits::max_names`]: region names with a row of their own.
pub const MAX_REGION_NAMES: usize = 64;
/// Default of [`RegionLimits::max_sites`]: spawn sites listed per region name.
pub const MAX_REGION_SITES: usize = 8;
/// Default of [`RegionLimits::max_open_spans`]: entered spans awaiting their exit.
pub const MAX_OPEN_SPANS: usize = 4096;
/// Default of [`RegionLimits::max_open_futures`]: region futures followed at once.
pub const MAX_OPEN_REGION_FUTURES: usize = 16_384;

/// Significant digits of the duration histograms (1%), as the aggregator's.
const SIGFIG: u8 = 2;

/// The bounds of a [`RegionTable`].
///
/// ```
/// use taskline_core::RegionLimits;
/// let limits = RegionLimits { max_names: 8, ..RegionLimits::default() };
/// assert!(limits.bytes_bound() < RegionLimits::default().bytes_bound());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionLimits {
    /// Region names with a row of their own; instances of further names
    /// go to the `(other)` row. Default [`MAX_REGION_NAMES`].
    pub max_names: usize,
    /// Spawn sites counted per name; instances in further sites are counted
    /// in [`RegionStats::other_sites`]. Default [`MAX_REGION_SITES`].
    pub max_sites: usize,
    /// Entered `tracing` spans awaiting their exit, over all threads; past
    /// it the oldest is forgotten. Default [`MAX_OPEN_SPANS`].
    pub max_open_spans: usize,
    /// Region futures started and not ended that are followed; further ones
    /// are not counted. Default [`MAX_OPEN_REGION_FUTURES`].
    pub max_open_futures: usize,
}

impl Default for RegionLimits {
    fn default() -> Self {
        RegionLimits {
            max_names: MAX_REGION_NAMES,
            max_sites: MAX_REGION_SITES,
            max_open_spans: MAX_OPEN_SPANS,
            max_open_futures: MAX_OPEN_REGION_FUTURES,
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's accepted range.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, SIGFIG)
        .unwrap_or_else(|e| unreachable!("histogram bounds: {e}"))
}

impl RegionLimits {
    /// Upper bound of the bytes a [`RegionTable`] with these limits takes.
    pub fn bytes_bound(&self) -> usize {
        static HIST: OnceLock<usize> = OnceLock::new();
        let hist = *HIST.get_or_init(|| new_hist().distinct_values() * 8 + 256);
        let per_name = hist
            + std::mem::size_of::<RegionAcc>()
            + self.max_sites * std::mem::size_of::<(u32, u64)>()
            // BTreeMap node overhead per entry.
            + 64;
        // A hash map holds at most twice its entries' room (load factor
        // 7/8, power-of-two buckets), plus a control byte each.
        let per_future = 2 * (std::mem::size_of::<(u64, OpenFuture)>() + 1);
        // A Vec holds at most twice its length.
        let per_span = 2 * std::mem::size_of::<OpenSpan>();
        (self.max_names + 1)
            .saturating_mul(per_name)
            .saturating_add(self.max_open_futures.saturating_mul(per_future))
            .saturating_add(self.max_open_spans.saturating_mul(per_span))
    }
}

/// One spawn site of a region's instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionSite {
    /// Site id (see [`Registry::site`]); [`Registry::OVERFLOW`] for the
    /// unknown site (no task polled, or the task was not tracked).
    pub site: u32,
    /// `file:line:col`, or `<unknown>`.
    pub location: String,
    /// Instances that started in a task of this site.
    pub count: u64,
}

/// One region name's statistics (see the module docs for the definitions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionStats {
    /// String id of the name; [`Registry::OVERFLOW`] for the `(other)` row.
    pub name_id: u32,
    /// The span or region name; `(other)` for names past
    /// [`RegionLimits::max_names`].
    pub name: String,
    /// Instances ended: spans exited, region futures completed or dropped.
    pub count: u64,
    /// Region futures dropped before completing (counted in `count`).
    pub dropped: u64,
    /// Instances started and not ended yet (not in the other figures).
    pub active: u64,
    /// Times the ended instances were entered: for a span, one per
    /// instance; for a region future, its polls.
    pub polls: u64,
    /// Sum of the ended instances' durations (ns).
    pub total_ns: u64,
    /// Time entered (ns): a span's whole duration, a region future's polls.
    pub busy_ns: u64,
    /// `total_ns - busy_ns`: time a region future waited between polls.
    pub wait_ns: u64,
    /// Durations of the ended instances (ns, 2 significant digits).
    pub duration: HistogramSummary,
    /// The sites instances started in, most instances first (ties by id).
    pub sites: Vec<RegionSite>,
    /// Instances in sites past [`RegionLimits::max_sites`].
    pub other_sites: u64,
}

impl RegionStats {
    /// Mean duration of the ended instances (ns), 0 when none.
    pub fn mean_ns(&self) -> u64 {
        self.total_ns.checked_div(self.count).unwrap_or(0)
    }
}

/// Per region name.
struct RegionAcc {
    count: u64,
    dropped: u64,
    polls: u64,
    total_ns: u64,
    busy_ns: u64,
    hist: Box<Histogram<u64>>,
    /// (site, instances), first come; at most `max_sites`.
    sites: Vec<(u32, u64)>,
    other_sites: u64,
}

/// A `tracing` span entered and not exited yet.
#[derive(Clone, Copy, Debug)]
struct OpenSpan {
    span: u64,
    ts: u64,
    name: u32,
    site: u32,
    thread: u16,
}

/// A region future between its first poll and its end.
#[derive(Clone, Copy, Debug)]
struct OpenFuture {
    name: u32,
    site: u32,
    start: u64,
    busy_ns: u64,
    polls: u64,
    /// Start of the poll in progress.
    poll_start: Option<u64>,
}

/// One ended region instance.
struct Instance {
    name: u32,
    site: u32,
    total_ns: u64,
    busy_ns: u64,
    polls: u64,
    dropped: bool,
}

/// Summarizes application regions per name (see the module docs).
///
/// ```
/// use taskline_core::{Event, EventKind, RegionTable, Registry};
///
/// let registry = Registry::new();
/// let name = registry.intern("checkout");
/// let span = |kind, ts| {
///     let mut e = Event::new(kind, ts, 0);
///     e.arg = 1; // tracing span id
///     e.aux = name;
///     e
/// };
/// let mut table = RegionTable::default();
/// for e in [span(EventKind::SpanEnter, 100), span(EventKind::SpanExit, 400)] {
///     table.event(&e, None);
/// }
/// let stats = table.stats(&registry);
/// assert_eq!((stats[0].name.as_str(), stats[0].count, stats[0].total_ns), ("checkout", 1, 300));
/// ```
pub struct RegionTable {
    limits: RegionLimits,
    names: BTreeMap<u32, RegionAcc>,
    /// Entered spans of every thread, in enter order.
    open_spans: Vec<OpenSpan>,
    futures: IdMap<u64, OpenFuture>,
    lost: u64,
}

impl Default for RegionTable {
    fn default() -> Self {
        RegionTable::new(RegionLimits::default())
    }
}

impl std::fmt::Debug for RegionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionTable")
            .field("names", &self.names.len())
            .field("open_spans", &self.open_spans.len())
            .field("open_futures", &self.futures.len())
            .field("lost", &self.lost)
            .finish()
    }
}

impl RegionTable {
    /// An empty table bounded by `limits`.
    pub fn new(limits: RegionLimits) -> Self {
        RegionTable {
            limits,
            names: BTreeMap::new(),
            open_spans: Vec::new(),
            futures: IdMap::default(),
            lost: 0,
        }
    }

    /// Enters or exits that could not be followed: exits without their
    /// enter, enters forgotten past [`RegionLimits::max_open_spans`],
    /// region futures not followed past [`RegionLimits::max_open_futures`],
    /// and span events whose flags name no [`SpanMark`].
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Feeds one event (in timestamp order); only `SpanEnter` / `SpanExit`
    /// count. `site` is the spawn site of the task being polled on the
    /// event's thread, when known (see the module docs).
    pub fn event(&mut self, e: &Event, site: Option<u32>) {
        let site = site.unwrap_or(Registry::OVERFLOW);
        match e.decode() {
            DecodedEvent::SpanEnter {
                span,
                name,
                mark: Some(mark),
            } => match mark {
                SpanMark::Span => self.span_enter(e, span, name, site),
                SpanMark::FirstPoll => self.future_begin(e.ts_ns, span, name, site),
                SpanMark::Poll | SpanMark::Completed => self.future_poll_start(e.ts_ns, span),
                SpanMark::Dropped => {}
            },
            DecodedEvent::SpanExit {
                span,
                mark: Some(mark),
                ..
            } => match mark {
                SpanMark::Span => self.span_exit(e, span),
                SpanMark::Poll | SpanMark::FirstPoll => {
                    self.future_poll_end(e.ts_ns, span);
                }
                SpanMark::Completed => {
                    if self.future_poll_end(e.ts_ns, span) {
                        self.future_end(e.ts_ns, span, false);
                    }
                }
                SpanMark::Dropped => self.future_end(e.ts_ns, span, true),
            },
            DecodedEvent::SpanEnter { mark: None, .. }
            | DecodedEvent::SpanExit { mark: None, .. } => {
                self.lost += 1;
            }
            _ => {}
        }
    }

    fn span_enter(&mut self, e: &Event, span: u64, name: u32, site: u32) {
        if self.open_spans.len() >= self.limits.max_open_spans {
            // An exit was lost somewhere: forget the oldest enter.
            if self.open_spans.is_empty() {
                self.lost += 1;
                return;
            }
            self.open_spans.remove(0);
            self.lost += 1;
        }
        self.open_spans.push(OpenSpan {
            span,
            ts: e.ts_ns,
            name,
            site,
            thread: e.thread,
        });
    }

    fn span_exit(&mut self, e: &Event, span: u64) {
        // The innermost open enter of that span on that thread: nested and
        // interleaved spans match by id, not by order.
        let Some(i) = self
            .open_spans
            .iter()
            .rposition(|o| o.thread == e.thread && o.span == span)
        else {
            self.lost += 1;
            return;
        };
        let o = self.open_spans.remove(i);
        let d = e.ts_ns.saturating_sub(o.ts);
        self.end(Instance {
            name: o.name,
            site: o.site,
            total_ns: d,
            busy_ns: d,
            polls: 1,
            dropped: false,
        });
    }

    fn future_begin(&mut self, ts: u64, id: u64, name: u32, site: u32) {
        if self.futures.len() >= self.limits.max_open_futures && !self.futures.contains_key(&id) {
            self.lost += 1;
            return;
        }
        self.futures.insert(
            id,
            OpenFuture {
                name,
                site,
                start: ts,
                busy_ns: 0,
                polls: 0,
                poll_start: Some(ts),
            },
        );
    }

    fn future_poll_start(&mut self, ts: u64, id: u64) {
        if let Some(f) = self.futures.get_mut(&id) {
            f.poll_start = Some(ts);
        }
    }

    /// Ends the poll in progress of future `id`; false when the future is
    /// not followed.
    fn future_poll_end(&mut self, ts: u64, id: u64) -> bool {
        let Some(f) = self.futures.get_mut(&id) else {
            return false;
        };
        if let Some(start) = f.poll_start.take() {
            f.busy_ns = f.busy_ns.saturating_add(ts.saturating_sub(start));
            f.polls += 1;
        }
        true
    }

    fn future_end(&mut self, ts: u64, id: u64, dropped: bool) {
        let Some(f) = self.futures.remove(&id) else {
            return;
        };
        let total_ns = ts.saturating_sub(f.start);
        self.end(Instance {
            name: f.name,
            site: f.site,
            total_ns,
            busy_ns: f.busy_ns.min(total_ns),
            polls: f.polls,
            dropped,
        });
    }

    /// Adds an ended instance to its name's row (or `(other)`).
    fn end(&mut self, i: Instance) {
        let key = if self.names.contains_key(&i.name) || self.names.len() < self.limits.max_names {
            i.name
        } else {
            Registry::OVERFLOW
        };
        let acc = self.names.entry(key).or_insert_with(|| RegionAcc {
            count: 0,
            dropped: 0,
            polls: 0,
            total_ns: 0,
            busy_ns: 0,
            hist: Box::new(new_hist()),
            sites: Vec::new(),
            other_sites: 0,
        });
        acc.count += 1;
        acc.dropped += u64::from(i.dropped);
        acc.polls = acc.polls.saturating_add(i.polls);
        acc.total_ns = acc.total_ns.saturating_add(i.total_ns);
        acc.busy_ns = acc.busy_ns.saturating_add(i.busy_ns);
        acc.hist
            .saturating_record(i.total_ns.clamp(1, HISTOGRAM_MAX_NS));
        if let Some(s) = acc.sites.iter_mut().find(|s| s.0 == i.site) {
            s.1 += 1;
        } else if acc.sites.len() < self.limits.max_sites {
            acc.sites.push((i.site, 1));
        } else {
            acc.other_sites += 1;
        }
    }

    /// Every region name with an ended or active instance, by name id
    /// (`(other)` last). `registry` names the ids.
    pub fn stats(&self, registry: &Registry) -> Vec<RegionStats> {
        let mut active: BTreeMap<u32, u64> = BTreeMap::new();
        let names = self
            .open_spans
            .iter()
            .map(|o| o.name)
            .chain(self.futures.values().map(|f| f.name));
        for name in names {
            let key = if self.names.contains_key(&name) || self.names.len() < self.limits.max_names
            {
                name
            } else {
                Registry::OVERFLOW
            };
            *active.entry(key).or_default() += 1;
        }
        let mut keys: Vec<u32> = self.names.keys().chain(active.keys()).copied().collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
            .map(|id| {
                let name = if id == Registry::OVERFLOW {
                    "(other)".to_owned()
                } else {
                    registry
                        .string(id)
                        .map_or_else(|| format!("(string #{id})"), |s| s.to_string())
                };
                let active = active.get(&id).copied().unwrap_or(0);
                let Some(a) = self.names.get(&id) else {
                    return RegionStats {
                        name_id: id,
                        name,
                        count: 0,
                        dropped: 0,
                        active,
                        polls: 0,
                        total_ns: 0,
                        busy_ns: 0,
                        wait_ns: 0,
                        duration: HistogramSummary::default(),
                        sites: Vec::new(),
                        other_sites: 0,
                    };
                };
                let mut sites: Vec<RegionSite> = a
                    .sites
                    .iter()
                    .map(|&(site, count)| RegionSite {
                        site,
                        location: registry
                            .site(site)
                            .map_or_else(|| "<unknown>".to_owned(), |s| s.to_string()),
                        count,
                    })
                    .collect();
                sites.sort_by(|x, y| y.count.cmp(&x.count).then(x.site.cmp(&y.site)));
                RegionStats {
                    name_id: id,
                    name,
                    count: a.count,
                    dropped: a.dropped,
                    active,
                    polls: a.polls,
                    total_ns: a.total_ns,
                    busy_ns: a.busy_ns,
                    wait_ns: a.total_ns.saturating_sub(a.busy_ns),
                    duration: HistogramSummary::of(&a.hist),
                    sites,
                    other_sites: a.other_sites,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;

    /// A span event on `thread`.
    fn span(kind: EventKind, ts: u64, thread: u16, id: u64, name: u32) -> Event {
        let mut e = Event::new(kind, ts, 0);
        e.thread = thread;
        e.arg = id;
        e.aux = name;
        e
    }

    fn fut(kind: EventKind, ts: u64, id: u64, name: u32, mark: SpanMark) -> Event {
        let mut e = span(kind, ts, 0, id, name);
        e.flags = mark as u8;
        e
    }

    fn row<'a>(stats: &'a [RegionStats], name: &str) -> &'a RegionStats {
        stats
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no region {name}: {stats:?}"))
    }

    #[test]
    fn nested_and_interleaved_spans_match_by_id_per_thread() {
        use EventKind::{SpanEnter as In, SpanExit as Out};
        let reg = Registry::new();
        let (a, b) = (reg.intern("a"), reg.intern("b"));
        let site = reg.intern_site("src/x.rs", 1, 2, crate::TaskKind::Task);
        let mut t = RegionTable::default();
        // Thread 1: a(1) { b(2) { } } nested; thread 2: a(3) and b(4)
        // interleaved (a exits before b); both threads overlap in time.
        let events = [
            span(In, 10, 1, 1, a),
            span(In, 12, 2, 3, a),
            span(In, 20, 1, 2, b),
            span(In, 22, 2, 4, b),
            span(Out, 25, 2, 3, a),
            span(Out, 30, 1, 2, b),
            span(Out, 40, 1, 1, a),
            span(Out, 52, 2, 4, b),
        ];
        for e in &events {
            t.event(e, (e.thread == 1).then_some(site));
        }
        let s = t.stats(&reg);
        assert_eq!(s.len(), 2);
        let ra = row(&s, "a");
        assert_eq!(
            (ra.count, ra.polls, ra.total_ns, ra.busy_ns, ra.wait_ns),
            (2, 2, 30 + 13, 43, 0)
        );
        assert_eq!((ra.duration.min, ra.duration.max), (13, 30));
        let rb = row(&s, "b");
        assert_eq!((rb.count, rb.total_ns), (2, 10 + 30));
        assert_eq!(rb.mean_ns(), 20);
        let sites: Vec<(u32, u64)> = ra.sites.iter().map(|x| (x.site, x.count)).collect();
        assert_eq!(sites, [(site, 1), (Registry::OVERFLOW, 1)]);
        assert_eq!(ra.sites[0].location, "src/x.rs:1:2");
        assert_eq!(ra.sites[1].location, "<unknown>");
        assert_eq!(t.lost(), 0);
        // The same span id on another thread does not close this one.
        t.event(&span(In, 60, 1, 9, a), None);
        t.event(&span(Out, 61, 2, 9, a), None);
        assert_eq!(t.lost(), 1);
        let s = t.stats(&reg);
        assert_eq!((row(&s, "a").count, row(&s, "a").active), (2, 1));
    }

    #[test]
    fn a_span_entered_many_times_counts_each_entry() {
        let reg = Registry::new();
        let a = reg.intern("a");
        let mut t = RegionTable::default();
        for i in 0..37u64 {
            t.event(&span(EventKind::SpanEnter, i * 10, 0, 5, a), None);
            t.event(&span(EventKind::SpanExit, i * 10 + 4, 0, 5, a), None);
        }
        let s = t.stats(&reg);
        assert_eq!(
            (s[0].count, s[0].total_ns, s[0].duration.p99),
            (37, 37 * 4, 4)
        );
    }

    #[test]
    fn futures_sum_their_polls_and_count_drops() {
        use SpanMark::*;
        let reg = Registry::new();
        let r = reg.intern("req");
        let mut t = RegionTable::default();
        let events = [
            // Future 1: polls 100..110, 200..205, 300..320 (completes).
            fut(EventKind::SpanEnter, 100, 1, r, FirstPoll),
            fut(EventKind::SpanExit, 110, 1, r, Poll),
            fut(EventKind::SpanEnter, 200, 1, r, Poll),
            fut(EventKind::SpanExit, 205, 1, r, Poll),
            // Future 2: ready at once.
            fut(EventKind::SpanEnter, 250, 2, r, FirstPoll),
            fut(EventKind::SpanExit, 251, 2, r, Completed),
            fut(EventKind::SpanEnter, 300, 1, r, Poll),
            fut(EventKind::SpanExit, 320, 1, r, Completed),
            // Future 3: one poll, then dropped.
            fut(EventKind::SpanEnter, 400, 3, r, FirstPoll),
            fut(EventKind::SpanExit, 430, 3, r, Poll),
            fut(EventKind::SpanEnter, 500, 3, r, Dropped),
            fut(EventKind::SpanExit, 500, 3, r, Dropped),
            // Future 4: still running.
            fut(EventKind::SpanEnter, 600, 4, r, FirstPoll),
            fut(EventKind::SpanExit, 610, 4, r, Poll),
        ];
        for e in &events {
            t.event(e, None);
        }
        let s = t.stats(&reg);
        let q = row(&s, "req");
        assert_eq!(
            (q.count, q.dropped, q.active, q.polls),
            (3, 1, 1, 3 + 1 + 1)
        );
        assert_eq!(q.total_ns, 220 + 1 + 100);
        assert_eq!(q.busy_ns, 35 + 1 + 30);
        assert_eq!(q.busy_ns + q.wait_ns, q.total_ns);
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn names_sites_and_open_entries_are_bounded() {
        let reg = Registry::new();
        let limits = RegionLimits {
            max_names: 2,
            max_sites: 2,
            max_open_spans: 3,
            max_open_futures: 1,
        };
        let mut t = RegionTable::new(limits);
        let names: Vec<u32> = (0..5).map(|i| reg.intern(&format!("n{i}"))).collect();
        for (i, &n) in names.iter().enumerate() {
            let i = i as u64;
            t.event(&span(EventKind::SpanEnter, i * 10, 0, i, n), Some(i as u32));
            t.event(
                &span(EventKind::SpanExit, i * 10 + 1, 0, i, n),
                Some(i as u32),
            );
        }
        let s = t.stats(&reg);
        let rows: Vec<(&str, u64)> = s.iter().map(|r| (r.name.as_str(), r.count)).collect();
        assert_eq!(rows, [("n0", 1), ("n1", 1), ("(other)", 3)]);
        let other = &s[2];
        assert_eq!((other.sites.len(), other.other_sites), (2, 1));
        // Four enters without exits: the oldest is forgotten.
        for id in 10..14 {
            t.event(&span(EventKind::SpanEnter, 100, 0, id, names[0]), None);
        }
        assert_eq!(t.lost(), 1);
        t.event(&span(EventKind::SpanExit, 101, 0, 10, names[0]), None);
        assert_eq!(t.lost(), 2, "its exit finds nothing");
        // One future followed at most.
        t.event(
            &fut(EventKind::SpanEnter, 200, 1, names[0], SpanMark::FirstPoll),
            None,
        );
        t.event(
            &fut(EventKind::SpanEnter, 200, 2, names[0], SpanMark::FirstPoll),
            None,
        );
        assert_eq!(t.lost(), 3);
        t.event(
            &fut(EventKind::SpanExit, 210, 2, names[0], SpanMark::Completed),
            None,
        );
        t.event(
            &fut(EventKind::SpanExit, 220, 1, names[0], SpanMark::Completed),
            None,
        );
        let s = t.stats(&reg);
        assert_eq!((s[0].count, s[0].active, s[0].total_ns), (2, 3, 1 + 20));
        // Flags naming no mark are counted, not read.
        let mut bad = span(EventKind::SpanExit, 300, 0, 1, names[0]);
        bad.flags = 0x0f;
        t.event(&bad, None);
        assert_eq!(t.lost(), 4);
        assert!(limits.bytes_bound() > 0);
    }
}
