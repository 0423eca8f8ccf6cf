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
