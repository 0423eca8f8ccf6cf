//! One slow-poll rule: a poll exactly at the recorder's threshold is
//! classified by the analysis as by the core aggregator (not slow), one
//! nanosecond longer as slow by both.

use std::time::Duration;

use taskline_core::{Aggregator, Event, EventKind, NO_VALUE, RecorderConfig, Registry, TaskKind};
use taskline_trace::analysis::{AnalysisConfig, Analyzer};

#[test]
fn a_poll_at_the_threshold_is_classified_as_the_aggregator_does() {
    let threshold = Duration::from_micros(50);
    let recorder = RecorderConfig {
        slow_poll_threshold: threshold,
        ..RecorderConfig::default()
    };
    let at = threshold.as_nanos() as u64;
    for poll_ns in [at - 1, at, at + 1] {
        let registry = Registry::new();
        let site = registry.intern_site("a.rs", 1, 1, TaskKind::Task);
        let mut spawn = Event::new(EventKind::Spawn, 100, 1);
        spawn.aux = site;
        let mut start = Event::new(EventKind::PollStart, 200, 1);
        start.arg = NO_VALUE;
        let events = [
            spawn,
            start,
            Event::new(EventKind::Terminate, 200 + poll_ns, 1),
            Event::new(EventKind::PollEnd, 200 + poll_ns, 1),
        ];
        let mut agg = Aggregator::new(&recorder);
        agg.feed(&events);
        let snap = agg.snapshot(&registry);
        let report = Analyzer::analyze(
            &events,
            &registry,
            AnalysisConfig {
                recorder: recorder.clone(),
                ..AnalysisConfig::default()
            },
        )
        .expect("config");
        assert_eq!(
            report.slow_polls.count, snap.slow_polls,
            "poll of {poll_ns} ns"
        );
        assert_eq!(
            report.sites[0].slow_polls, snap.slow_polls,
            "poll of {poll_ns} ns"
        );
        assert_eq!(
            snap.slow_polls,
            u64::from(poll_ns > at),
            "poll of {poll_ns} ns"
        );
    }
}

/// The spawn-site table of the text report has one header per column: each
/// number ends under the end of its header, and the site starts under `site`.
#[test]
fn the_spawn_site_table_has_a_header_for_every_column() {
    let registry = Registry::new();
    let site = registry.intern_site("src/handler.rs", 12, 5, TaskKind::Task);
    let mut spawn = Event::new(EventKind::Spawn, 100, 1);
    spawn.aux = site;
    let mut start = Event::new(EventKind::PollStart, 200, 1);
    start.arg = NO_VALUE;
    let events = [spawn, start, Event::new(EventKind::PollEnd, 20_000_200, 1)];
    let text = Analyzer::analyze(&events, &registry, AnalysisConfig::default())
        .expect("config")
        .to_string();
    let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
    let at = lines
        .iter()
        .position(|l| {
            l.iter()
                .collect::<String>()
                .trim_start()
                .starts_with("tasks")
        })
        .expect("site table header");
    let (header, row) = (&lines[at], &lines[at + 1]);
    let row_text: String = row.iter().collect();
    assert!(row_text.ends_with("src/handler.rs:12:5"), "{text}");
    // Columns of the row: runs of non-spaces; the last one is the site.
    let mut cells = Vec::new();
    let mut i = 0;
    while i < row.len() {
        if row[i] == ' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < row.len() && row[i] != ' ' {
            i += 1;
        }
        cells.push((start, i));
    }
    let (site_start, _) = cells.pop().expect("site cell");
    let header_text: String = header.iter().collect();
    assert_eq!(
        header
            .get(site_start..site_start + 4)
            .map(|c| c.iter().collect::<String>()),
        Some("site".to_owned()),
        "the site under its header:\n{header_text}\n{row_text}"
    );
    let mut labels = 0;
    for &(_, end) in &cells {
        assert!(
            header.get(end - 1).is_some_and(|c| *c != ' ')
                && header.get(end).is_none_or(|c| *c == ' '),
            "a header ends where column ending at {end} ends:\n{header_text}\n{row_text}"
        );
        labels += 1;
    }
    assert_eq!(labels, 9, "{header_text}\n{row_text}");
    assert!(header_text.contains("slow"), "{header_text}");
}

/// A trace of a build without `tokio_unstable` (worker park/unpark only)
/// says why its task tables are empty.
#[test]
fn a_trace_without_task_events_says_what_is_missing() {
    let registry = Registry::new();
    let mut park = Event::new(EventKind::Park, 100, 0);
    park.aux = 0;
    let mut unpark = Event::new(EventKind::Unpark, 200, 0);
    unpark.aux = 0;
    let text = Analyzer::analyze(&[park, unpark], &registry, AnalysisConfig::default())
        .expect("config")
        .to_string();
    assert!(text.contains("no task events"), "{text}");
    assert!(text.contains("--cfg tokio_unstable"), "{text}");
}
