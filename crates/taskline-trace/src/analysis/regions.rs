//! The user regions of the [`Report`](super::Report): application spans
//! and region futures per name, as the core's
//! [`RegionTable`](taskline_core::RegionTable) summarizes them (the
//! analysis feeds the core's aggregator, which keeps that table), so a
//! trace's report shows the same regions as the in-process snapshot of the
//! run. This file only turns them into rows (JSON key `regions`) and text.

use std::fmt;

use serde::Serialize;
use taskline_core::RegionStats;

/// One region name over the stream (see
/// [`RegionStats`](taskline_core::RegionStats) for the definitions).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RegionRow {
    /// Span or region name; `(other)` for names past the table's limit.
    pub name: String,
    /// Instances ended: spans exited, region futures completed or dropped.
    pub count: u64,
    /// Region futures dropped before completing (counted in `count`).
    pub dropped: u64,
    /// Instances started and not ended by the end of the stream.
    pub active: u64,
    /// Entries of the ended instances (one per span instance; a region future's polls).
    pub polls: u64,
    /// Sum of their durations.
    pub total_ms: f64,
    /// Mean duration.
    pub mean_us: f64,
    /// Median duration (histogram precision: 2 significant digits, 1%).
    pub p50_us: f64,
    /// 99th percentile duration.
    pub p99_us: f64,
    /// Longest duration (histogram precision).
    pub max_us: f64,
    /// Time entered (a span's duration, a region future's polls).
    pub busy_ms: f64,
    /// `total - busy`: time region futures waited between polls.
    pub wait_ms: f64,
    /// Spawn sites of the tasks the instances ran in, most first.
    pub sites: Vec<RegionSiteRow>,
    /// Instances in sites past the per-name limit.
    pub other_sites: u64,
}

/// Instances of a region that ran in tasks of one spawn site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RegionSiteRow {
    /// `file:line:col`, or `<unknown>` (no task polled, or an untracked one).
    pub site: String,
    /// Instances.
    pub count: u64,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

/// The rows of `regions`, most total time first (ties by name).
pub(super) fn rows(regions: &[RegionStats]) -> Vec<RegionRow> {
    let mut rows: Vec<RegionRow> = regions
        .iter()
        .map(|r| RegionRow {
            name: r.name.clone(),
            count: r.count,
            dropped: r.dropped,
            active: r.active,
            polls: r.polls,
            total_ms: ms(r.total_ns),
            mean_us: us(r.mean_ns()),
            p50_us: us(r.duration.p50),
            p99_us: us(r.duration.p99),
            max_us: us(r.duration.max),
            busy_ms: ms(r.busy_ns),
            wait_ms: ms(r.wait_ns),
            sites: r
                .sites
                .iter()
                .map(|s| RegionSiteRow {
                    site: s.location.clone(),
                    count: s.count,
                })
                .collect(),
            other_sites: r.other_sites,
        })
        .collect();
    rows.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms).then(a.name.cmp(&b.name)));
    rows
}

/// The text section: at most `n` regions, nothing when there are none.
pub(super) fn write_text(f: &mut fmt::Formatter<'_>, rows: &[RegionRow], n: usize) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(f, "\nUser regions (by total time)")?;
    writeln!(
        f,
        "  {:>8} {:>12} {:>11} {:>11} {:>12} {:>12} {:>8}  region",
        "count", "total ms", "mean µs", "p99 µs", "busy ms", "wait ms", "polls"
    )?;
    for r in &rows[..rows.len().min(n)] {
        write!(
            f,
            "  {:>8} {:>12.3} {:>11.1} {:>11.1} {:>12.3} {:>12.3} {:>8}  {}",
            r.count, r.total_ms, r.mean_us, r.p99_us, r.busy_ms, r.wait_ms, r.polls, r.name
        )?;
        if r.dropped > 0 {
            write!(f, "  ({} dropped)", r.dropped)?;
        }
        if r.active > 0 {
            write!(f, "  ({} still open)", r.active)?;
        }
        writeln!(f)?;
        for s in &r.sites[..r.sites.len().min(3)] {
            writeln!(f, "  {:>8} in {}", s.count, s.site)?;
        }
        let more = r.sites.iter().skip(3).map(|s| s.count).sum::<u64>() + r.other_sites;
        if more > 0 {
            writeln!(f, "  {more:>8} in other sites")?;
        }
    }
    if rows.len() > n {
        writeln!(f, "  ({} more not shown)", rows.len() - n)?;
    }
    Ok(())
}
