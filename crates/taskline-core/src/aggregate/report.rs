//! The plain-text report of a [`Snapshot`] (`impl Display`).
//!
//! Deterministic: the same snapshot gives the same bytes (sites sorted by
//! busy time, ties by id; workers by thread number).

use std::fmt::{self, Display, Formatter, Write as _};

use crate::aggregate::{HistogramSummary, Snapshot};
use crate::lifecycle::IdleByReason;

/// Sites shown in the report's site table.
pub const TOP_SITES: usize = 20;

/// Formats nanoseconds with a unit (`ns`, `µs`, `ms`, `s`), 3 significant figures.
pub fn fmt_ns(ns: u64) -> String {
    let (v, unit) = if ns < 1_000 {
        return format!("{ns}ns");
    } else if ns < 1_000_000 {
        (ns as f64 / 1e3, "µs")
    } else if ns < 1_000_000_000 {
        (ns as f64 / 1e6, "ms")
    } else {
        (ns as f64 / 1e9, "s")
    };
    if v < 10.0 {
        format!("{v:.2}{unit}")
    } else if v < 100.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.0}{unit}")
    }
}

fn hist_row(f: &mut Formatter<'_>, name: &str, h: &HistogramSummary) -> fmt::Result {
    writeln!(
        f,
        "  {name:<16} {:>10} {:>9} {:>9} {:>9} {:>9}",
        h.count,
        fmt_ns(h.p50),
        fmt_ns(h.p90),
        fmt_ns(h.p99),
        fmt_ns(h.max)
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(n - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// `io 1.20s (50), timer 20.0ms (3)`: every reason with idle periods,
/// most time first.
fn reasons_line(idle: &IdleByReason) -> String {
    let mut rows: Vec<_> = idle.iter().collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let mut out = String::new();
    for (i, (r, n, ns)) in rows.into_iter().enumerate() {
        let _ = write!(
            out,
            "{}{r} {} ({n})",
            if i > 0 { ", " } else { "" },
            fmt_ns(ns)
        );
    }
    out
}

/// `io 96%`: the reason with the most idle time and its share.
fn main_reason(idle: &IdleByReason) -> String {
    match idle.largest() {
        Some(r) => {
            let share = idle.ns(r) as f64 * 100.0 / idle.total_ns().max(1) as f64;
            format!("{r} {share:.0}%")
        }
        None => "-".to_string(),
    }
}

/// Why a report has no task figures. Task events come from Tokio's task
/// hooks, which need `--cfg tokio_unstable` (see
/// [`capabilities`](crate::capabilities) and
/// [`STABLE_WARNING`](crate::STABLE_WARNING)), or from the tracing sources.
fn no_task_events(f: &mut Formatter<'_>) -> fmt::Result {
    if cfg!(tokio_unstable) {
        writeln!(
            f,
            "no task events: no instrumented runtime spawned or polled a task (instrument the runtime's Builder with `.taskline(&recorder)`); the task figures below are zeros"
        )
    } else {
        writeln!(
            f,
            "no task events: this build has no `--cfg tokio_unstable`, which Tokio's task hooks need (capabilities().task_events is false), so only worker park/unpark was recorded and the task figures below are zeros; rebuild with RUSTFLAGS=\"--cfg tokio_unstable\" (see the README) or add TasklineSubscriber / TasklineLayer for task events from Tokio's tracing"
        )
    }
}

impl Snapshot {
    /// The text report (same as `to_string()`).
    pub fn report(&self) -> String {
        self.to_string()
    }
}

impl Display for Snapshot {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "taskline report")?;
        if let Some(r) = &self.recorder {
            write!(
                f,
                "recorder: {} events recorded, {} dropped, {} delivered to the sinks, {} threads, {} sink panics",
                r.recorded, r.dropped, r.delivered, r.threads_registered, r.sink_panics
            )?;
            writeln!(f)?;
            write!(f, "events read by the aggregator: {}", self.events)?;
            if self.events > r.delivered {
                // The hooks record a task's termination inside its last
                // poll with that poll's end: one event recorded and
                // delivered, two (Terminate, PollEnd) for the sinks.
                write!(
                    f,
                    " (more than delivered: a task ending inside its last poll is recorded as one event and read as two, its termination and the poll's end)"
                )?;
            }
            if !r.aggregating {
                writeln!(f)?;
                // Configured off: the aggregator never saw an event. Off
                // after a panic: what it counted before still stands.
                if self.events == 0 {
                    return writeln!(
                        f,
                        "aggregation is off (RecorderConfig::aggregate is false): the events went to the sinks only"
                    );
                }
                write!(
                    f,
                    "aggregation stopped (the aggregator panicked): the figures below cover the events before that"
                )?;
            }
        } else {
            write!(f, "events: {}", self.events)?;
        }
        writeln!(f)?;
        if self.spawned == 0 && self.polls == 0 {
            no_task_events(f)?;
        }
        write!(
            f,
            "tasks: {} spawned, {} terminated, {} alive, {} runnable (max {})",
            self.spawned, self.terminated, self.alive, self.runnable, self.max_runnable
        )?;
        if self.untracked > 0 {
            write!(f, ", {} untracked", self.untracked)?;
        }
        writeln!(f)?;
        write!(
            f,
            "polls: {}, busy {}, slow (> {}) {}; wakes {} (self {}); blocking sections {} ({})",
            self.polls,
            fmt_ns(self.busy_ns),
            fmt_ns(self.slow_poll_threshold_ns),
            self.slow_polls,
            self.wakes,
            self.self_wakes,
            self.blocking_sections,
            fmt_ns(self.blocking_ns)
        )?;
        if self.runtime_sections > 0 {
            write!(
                f,
                "; runtime threads {} ({}, Tokio's own, not your blocking)",
                self.runtime_sections,
                fmt_ns(self.runtime_section_ns)
            )?;
        }
        writeln!(f)?;
        if self.idle_by_reason.total_count() > 0 {
            writeln!(
                f,
                "idle by reason (woken by): {}",
                reasons_line(&self.idle_by_reason)
            )?;
        }
        if let Some(mean) = self.first_poll_delay_ns.checked_div(self.first_polls) {
            writeln!(
                f,
                "first poll delay: mean {} over {} tasks",
                fmt_ns(mean),
                self.first_polls
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "  {:<16} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "histogram", "count", "p50", "p90", "p99", "max"
        )?;
        hist_row(f, "poll duration", &self.poll_duration)?;
        hist_row(f, "schedule delay", &self.schedule_delay)?;
        hist_row(f, "idle time", &self.idle_time)?;

        if !self.sites.is_empty() {
            let mut sites: Vec<_> = self.sites.iter().collect();
            sites.sort_by(|a, b| b.busy_ns.cmp(&a.busy_ns).then(a.id.cmp(&b.id)));
            writeln!(f)?;
            writeln!(
                f,
                "sites (top {} of {} by busy time):",
                TOP_SITES.min(sites.len()),
                sites.len()
            )?;
            writeln!(
                f,
                "  {:<40} {:>8} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>12} {:>5} {:>9}  waits on",
                "site",
                "kind",
                "spawned",
                "alive",
                "polls",
                "busy",
                "sched",
                "idle",
                "idle mostly",
                "slow",
                "p99 poll"
            )?;
            for s in sites.iter().take(TOP_SITES) {
                let mut waits = String::new();
                for (i, (k, n)) in s.resource_waits.iter().enumerate() {
                    let _ = write!(waits, "{}{k}={n}", if i > 0 { "," } else { "" });
                }
                writeln!(
                    f,
                    "  {:<40} {:>8} {:>8} {:>6} {:>9} {:>9} {:>9} {:>9} {:>12} {:>5} {:>9}  {}",
                    truncate(&s.name, 40),
                    s.kind.as_str(),
                    s.spawned,
                    s.alive,
                    s.polls,
                    fmt_ns(s.busy_ns),
                    fmt_ns(s.scheduled_ns),
                    fmt_ns(s.idle_ns),
                    main_reason(&s.idle_by_reason),
                    s.slow_polls,
                    s.poll_duration
                        .map_or_else(|| "-".to_string(), |h| fmt_ns(h.p99)),
                    waits
                )?;
            }
            let woken: Vec<_> = sites
                .iter()
                .take(TOP_SITES)
                .filter(|s| s.idle_by_reason.total_count() > 0)
                .collect();
            if !woken.is_empty() {
                writeln!(f)?;
                writeln!(f, "why tasks waited (idle time by what woke them):")?;
                for s in woken {
                    write!(
                        f,
                        "  {:<40} {}",
                        truncate(&s.name, 40),
                        reasons_line(&s.idle_by_reason)
                    )?;
                    if !s.woken_by.is_empty() {
                        write!(f, "; sync wakes from ")?;
                        for (i, (site, n)) in s.woken_by.iter().take(3).enumerate() {
                            write!(
                                f,
                                "{}{} ×{n}",
                                if i > 0 { ", " } else { "" },
                                truncate(site, 40)
                            )?;
                        }
                        let more: u64 =
                            s.woken_by.iter().skip(3).map(|w| w.1).sum::<u64>() + s.woken_by_other;
                        if more > 0 {
                            write!(f, ", others ×{more}")?;
                        }
                    }
                    writeln!(f)?;
                }
            }
        }

        if !self.workers.is_empty() {
            writeln!(f)?;
            writeln!(f, "workers:")?;
            writeln!(
                f,
                "  {:<28} {:>6} {:>10} {:>9} {:>8} {:>9}",
                "thread", "worker", "polls", "busy", "parks", "parked"
            )?;
            for w in &self.workers {
                writeln!(
                    f,
                    "  {:<28} {:>6} {:>10} {:>9} {:>8} {:>9}",
                    truncate(&format!("{} #{}", w.thread_name, w.thread), 28),
                    w.worker,
                    w.polls,
                    fmt_ns(w.busy_ns),
                    w.parks,
                    fmt_ns(w.parked_ns)
                )?;
            }
        }
        regions(f, &self.regions)
    }
}

/// The user regions section (regions by total time; nothing when none).
fn regions(f: &mut Formatter<'_>, regions: &[crate::aggregate::RegionStats]) -> fmt::Result {
    if regions.is_empty() {
        return Ok(());
    }
    let mut rows: Vec<_> = regions.iter().collect();
    rows.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.name_id.cmp(&b.name_id)));
    writeln!(f)?;
    writeln!(f, "regions (by total time):")?;
    writeln!(
        f,
        "  {:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}  sites",
        "region", "count", "total", "mean", "p99", "busy", "wait", "polls", "active"
    )?;
    for r in rows {
        let mut sites = String::new();
        for (i, s) in r.sites.iter().take(3).enumerate() {
            let _ = write!(
                sites,
                "{}{}={}",
                if i > 0 { ", " } else { "" },
                s.location,
                s.count
            );
        }
        let more = r.sites.iter().skip(3).map(|s| s.count).sum::<u64>() + r.other_sites;
        if more > 0 {
            let _ = write!(sites, ", other={more}");
        }
        write!(
            f,
            "  {:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}  {}",
            truncate(&r.name, 28),
            r.count,
            fmt_ns(r.total_ns),
            fmt_ns(r.mean_ns()),
            fmt_ns(r.duration.p99),
            fmt_ns(r.busy_ns),
            fmt_ns(r.wait_ns),
            r.polls,
            r.active,
            sites
        )?;
        if r.dropped > 0 {
            write!(f, "  ({} dropped before completing)", r.dropped)?;
        }
        writeln!(f)?;
    }
    Ok(())
}

#[cfg(test)]
mod no_task_events_tests {
    use crate::{Aggregator, RecorderConfig, Registry};

    #[test]
    fn a_report_without_task_events_says_what_is_missing_and_why() {
        let a = Aggregator::new(&RecorderConfig::default());
        let text = a.snapshot(&Registry::new()).to_string();
        assert!(text.contains("no task events"), "{text}");
        let why = if cfg!(tokio_unstable) {
            "instrument the runtime"
        } else {
            "--cfg tokio_unstable"
        };
        assert!(text.contains(why), "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(fmt_ns(999), "999ns");
        assert_eq!(fmt_ns(1_500), "1.50µs");
        assert_eq!(fmt_ns(25_000_000), "25.0ms");
        assert_eq!(fmt_ns(3_000_000_000), "3.00s");
        assert_eq!(truncate("abcdef", 4), "…def");
    }
}
