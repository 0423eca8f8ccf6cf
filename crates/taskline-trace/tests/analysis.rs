//! The analyses on a synthetic stream whose answers are computed by hand.

use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{Event, EventKind, NO_VALUE, TaskKind, flags};
use taskline_trace::analysis::{AnalysisConfig, Analyzer, Report};

const MS: u64 = 1_000_000;

fn ev(kind: EventKind, ms_x10: u64, task: u64, arg: u64, aux: u32) -> Event {
    let mut e = Event::new(kind, ms_x10 * MS / 10, task);
    e.arg = arg;
    e.aux = aux;
    e
}

/// Two tasks on two workers (times in tenths of ms in `ev`, in ms in comments):
/// - task 1 (a.rs): spawned 0, polls [1,4) w0 (waits on a Semaphore), woken 10,
///   polls [12,27) w1 (wakes itself), polls [28,30) w0 with Tokio's delay 0.5, ends.
/// - task 2 (b.rs): spawned 0, polls [3,5) w1, woken 40, polls [40,41) w0, ends.
fn stream(reg: &Registry) -> Vec<Event> {
    let a = reg.intern_site("a.rs", 1, 1, TaskKind::Task);
    let b = reg.intern_site("b.rs", 2, 2, TaskKind::Task);
    let sem = reg.intern("Semaphore");
    use EventKind::*;
    let mut self_wake = ev(Wake, 120, 1, 1, 0);
    self_wake.flags = flags::SELF_WAKE;
    vec![
        ev(Spawn, 0, 1, 64, a),
        ev(Spawn, 0, 2, 64, b),
        ev(PollStart, 10, 1, NO_VALUE, 0),
        ev(ResourceWait, 10, 1, 7, sem),
        ev(PollStart, 30, 2, NO_VALUE, 1),
        ev(PollEnd, 40, 1, 0, 0),
        ev(PollEnd, 50, 2, 0, 1),
        ev(Wake, 100, 1, 2, 0),
        ev(PollStart, 120, 1, NO_VALUE, 1),
        self_wake,
        ev(PollEnd, 270, 1, 0, 1),
        ev(PollStart, 280, 1, MS / 2, 0),
        ev(PollEnd, 300, 1, 0, 0),
        ev(Terminate, 300, 1, 0, 0),
        ev(Wake, 400, 2, 0, 0),
        ev(PollStart, 400, 2, NO_VALUE, 0),
        ev(PollEnd, 410, 2, 0, 0),
        ev(Terminate, 410, 2, 0, 0),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn report_of(events: &[Event], reg: &Registry) -> Report {
    Analyzer::analyze(events, reg, AnalysisConfig::default()).expect("valid config")
}

#[test]
fn per_site_table_matches_hand_computation() {
    let reg = Registry::new();
    let r = report_of(&stream(&reg), &reg);
    assert_eq!(r.events, 18);
    assert_eq!(r.tasks_seen, 2);
    assert!(close(r.duration_ms, 41.0));
    assert_eq!(r.sites.len(), 2);
    let a = &r.sites[0];
    assert_eq!(a.site, "a.rs:1:1");
    assert_eq!((a.tasks, a.polls, a.wakes), (1, 3, 2));
    assert!(close(a.busy_ms, 20.0), "{a:?}");
    assert!(close(a.sched_wait_ms, 3.5), "{a:?}");
    // Idle 4 -> 10 (woken); the self-wake makes it runnable from 27, not idle.
    assert!(close(a.idle_ms, 6.0), "{a:?}");
    assert_eq!(a.slow_polls, 1);
    assert!(close(a.avg_poll_us, 20_000.0 / 3.0), "{a:?}");
    let b = &r.sites[1];
    assert_eq!(b.site, "b.rs:2:2");
    assert_eq!((b.tasks, b.polls, b.wakes), (1, 2, 1));
    assert!(close(b.busy_ms, 3.0), "{b:?}");
    assert!(close(b.sched_wait_ms, 3.0), "{b:?}");
    assert!(close(b.idle_ms, 35.0), "{b:?}");
}

#[test]
fn scheduling_blocking_and_slow_polls_match_hand_computation() {
    let reg = Registry::new();
    let r = report_of(&stream(&reg), &reg);
    let s = &r.scheduling;
    assert_eq!(s.samples, 5);
    // Delays 1, 3, 2, 0.5, 0 ms: median 1 ms, max 3 ms (the aggregator's
    // histograms have 2 significant digits: within 1%).
    assert!((s.p50_us - 1000.0).abs() < 10.0, "{s:?}");
    assert!((s.max_us - 3000.0).abs() < 30.0, "{s:?}");
    let worst: Vec<(u64, f64)> = s.worst.iter().map(|w| (w.task, w.delay_us)).collect();
    assert_eq!(worst, vec![(2, 3000.0), (1, 2000.0)], "one entry per task");
    assert!(close(s.worst[1].at_ms, 12.0));

    let res: Vec<(&str, u64, f64)> = r
        .blocking
        .by_resource
        .iter()
        .map(|x| (x.resource.as_str(), x.waits, x.idle_ms))
        .collect();
    assert_eq!(res, vec![("(none)", 1, 35.0), ("Semaphore", 1, 6.0)]);
    // The same rules as the site table: idle by resource adds up to idle by site.
    let by_res: f64 = r.blocking.by_resource.iter().map(|x| x.idle_ms).sum();
    let by_site: f64 = r.sites.iter().map(|x| x.idle_ms).sum();
    assert!(close(by_res, by_site), "{by_res} vs {by_site}");
    let by_site: Vec<&str> = r.blocking.by_site.iter().map(|x| x.site.as_str()).collect();
    assert_eq!(by_site, vec!["b.rs:2:2", "a.rs:1:1"]);

    assert_eq!(r.slow_polls.count, 1);
    let p = &r.slow_polls.worst[0];
    assert_eq!(
        (p.task, p.worker, p.site.as_str()),
        (1, Some(1), "a.rs:1:1")
    );
    assert!(
        close(p.duration_ms, 15.0) && close(p.start_ms, 12.0),
        "{p:?}"
    );
}

#[test]
fn workers_and_mmu_match_hand_computation() {
    let reg = Registry::new();
    let r = report_of(&stream(&reg), &reg);
    let w: Vec<(u32, u64, f64)> = r
        .workers
        .workers
        .iter()
        .map(|w| (w.worker, w.polls, w.busy_ms))
        .collect();
    assert_eq!(w, vec![(0, 3, 6.0), (1, 2, 17.0)]);
    assert!(close(r.workers.workers[1].utilization, 17.0 / 41.0));
    // Windows up to 20 ms fit in the run of 41 ms; 50 ms and more do not.
    let mmu: Vec<(f64, f64, f64)> = r
        .workers
        .mmu
        .iter()
        .map(|m| (m.window_ms, m.utilization, m.worst_at_ms))
        .collect();
    assert_eq!(mmu.len(), 5, "{mmu:?}");
    // 1 ms fits before the first poll; 2 and 5 ms windows fit in the idle gap
    // [5, 10); 10 ms fits in [30, 40).
    assert_eq!(mmu[0], (1.0, 0.0, 0.0));
    assert_eq!(mmu[1], (2.0, 0.0, 5.0));
    assert_eq!(mmu[2], (5.0, 0.0, 5.0));
    assert_eq!(mmu[3], (10.0, 0.0, 30.0));
    // 20 ms: the least busy window is [20, 40) with 9 ms of 2 x 20 ms.
    assert!(close(mmu[4].1, 9.0 / 40.0), "{mmu:?}");
    assert!(close(mmu[4].2, 20.0), "{mmu:?}");
    assert!(!r.workers.coalesced);
}

#[test]
fn streaming_in_batches_gives_the_same_report_and_text() {
    let reg = Registry::new();
    let events = stream(&reg);
    let whole = report_of(&events, &reg);
    let mut a = Analyzer::default();
    for chunk in events.chunks(4) {
        a.on_events(chunk, &reg);
    }
    let batched = a.finish(&reg);
    assert_eq!(whole, batched);
    assert_eq!(whole.to_string(), batched.to_string());
    let text = whole.to_string();
    assert!(
        text.contains("a.rs:1:1") && text.contains("Semaphore"),
        "{text}"
    );
    assert!(text.contains("Slow polls (> 10.000 ms): 1"), "{text}");
}

#[test]
fn shared_sink_reports_while_running() {
    let reg = Registry::new();
    let events = stream(&reg);
    let (mut sink, handle) = Analyzer::default().shared();
    sink.on_events(&events[..7], &reg);
    assert_eq!(handle.report(&reg).events, 7);
    sink.on_events(&events[7..], &reg);
    assert_eq!(handle.report(&reg), report_of(&events, &reg));
}

#[test]
fn hostile_events_are_counted_not_trusted() {
    let reg = Registry::new();
    let mut events = stream(&reg);
    // An unknown kind, a PollEnd with no start, a site and resource id the registry lacks,
    // and a timestamp going backwards.
    let mut bad = Event::new(EventKind::Spawn, 0, 9);
    bad.kind = 200;
    events.push(bad);
    events.push(ev(EventKind::PollEnd, 500, 77, 0, 3));
    events.push(ev(EventKind::Spawn, 500, 78, 0, 12345));
    events.push(ev(EventKind::PollStart, 10, 78, NO_VALUE, 0));
    events.push(ev(EventKind::ResourceWait, 510, 78, 0, 999));
    events.push(ev(EventKind::PollEnd, 520, 78, 0, 0));
    events.push(ev(EventKind::Wake, 530, 78, 0, 0));
    events.push(ev(EventKind::PollStart, 540, 78, NO_VALUE, 0));
    let r = report_of(&events, &reg);
    assert!(
        r.events_by_kind
            .iter()
            .any(|k| k.kind == "unknown" && k.count == 1)
    );
    assert!(r.sites.iter().any(|s| s.site == "<unknown>"));
    assert!(
        r.blocking
            .by_resource
            .iter()
            .any(|s| s.resource == "(string #999)")
    );
    assert!(close(r.duration_ms, 54.0), "backwards time is clamped");
    // The late PollStart counts from the latest time seen (50 ms) to its end at 52 ms;
    // a PollEnd on an unknown worker adds no worker.
    assert_eq!(r.workers.workers.len(), 2, "{:?}", r.workers);
    assert!(
        close(r.workers.workers[0].busy_ms, 6.0 + 2.0),
        "{:?}",
        r.workers
    );
    assert_eq!(r.workers.workers[0].polls, 4);
}

#[test]
fn limits_bound_the_state_and_bad_configs_are_refused() {
    let reg = Registry::new();
    let cfg = AnalysisConfig {
        max_tracked_tasks: Some(1),
        max_keys: 1,
        top_n: 1,
        ..AnalysisConfig::default()
    };
    let r = Analyzer::analyze(&stream(&reg), &reg, cfg).expect("valid");
    // Task 2 does not fit at its spawn: counted, not tracked.
    assert_eq!(r.tasks_seen, 2);
    assert_eq!(r.untracked_tasks, 1);
    let untracked: Vec<_> = r.sites.iter().filter(|s| s.site == "b.rs:2:2").collect();
    assert_eq!(
        (untracked[0].tasks, untracked[0].polls),
        (1, 0),
        "{untracked:?}"
    );
    assert_eq!(r.scheduling.worst.len(), 1);
    let cfg = AnalysisConfig {
        max_keys: 1,
        ..AnalysisConfig::default()
    };
    let r = Analyzer::analyze(&stream(&reg), &reg, cfg).expect("valid");
    let res: Vec<&str> = r
        .blocking
        .by_resource
        .iter()
        .map(|x| x.resource.as_str())
        .collect();
    assert_eq!(
        res,
        vec!["(other)", "Semaphore"],
        "the second kind folds into (other)"
    );
    for bad in [
        AnalysisConfig {
            top_n: 1_000_000,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_keys: 0,
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            recorder: taskline_core::RecorderConfig {
                slow_poll_threshold: std::time::Duration::MAX,
                ..taskline_core::RecorderConfig::default()
            },
            ..AnalysisConfig::default()
        },
        AnalysisConfig {
            max_utilization_points: 1,
            ..AnalysisConfig::default()
        },
    ] {
        assert!(Analyzer::new(bad).is_err());
    }
}

#[test]
fn a_task_terminating_inside_its_last_poll_keeps_its_site() {
    // Tokio's terminate hook runs inside the last poll: Terminate before PollEnd.
    let reg = Registry::new();
    let site = reg.intern_site("last.rs", 3, 9, TaskKind::Task);
    use EventKind::*;
    let events = [
        ev(Spawn, 0, 5, 0, site),
        ev(PollStart, 10, 5, NO_VALUE, 0),
        ev(Terminate, 290, 5, 0, 0),
        ev(PollEnd, 300, 5, 0, 0),
        // A later PollStart of the same id is a new, unknown task.
        ev(PollStart, 310, 5, NO_VALUE, 0),
        ev(PollEnd, 500, 5, 0, 0),
    ];
    let r = report_of(&events, &reg);
    let slow: Vec<(&str, f64)> = r
        .slow_polls
        .worst
        .iter()
        .map(|p| (p.site.as_str(), p.duration_ms))
        .collect();
    assert_eq!(slow, vec![("last.rs:3:9", 29.0), ("<unknown>", 19.0)]);
}

#[test]
fn a_long_run_stays_within_the_configured_bounds() {
    // 87.5k polls on 4 workers with a small timeline: coalesced, bounded, and
    // within the documented error of an exact run.
    let reg = Registry::new();
    let site = reg.intern_site("long.rs", 1, 1, TaskKind::Task);
    let mut events = Vec::with_capacity(200_000 + 8);
    for t in 1..=4u64 {
        events.push(ev(EventKind::Spawn, 0, t, 0, site));
    }
    for i in 0..25_000u64 {
        for w in 0..4u64 {
            // Worker w busy 20 µs of every 100 µs; worker 3 idle in the second half.
            if w == 3 && i >= 12_500 {
                continue;
            }
            let start = i * 100_000 + w * 1_000;
            let mut s = Event::new(EventKind::PollStart, start, w + 1);
            s.arg = NO_VALUE;
            s.aux = w as u32;
            let mut e = Event::new(EventKind::PollEnd, start + 20_000, w + 1);
            e.aux = w as u32;
            events.push(s);
            events.push(e);
        }
    }
    events.sort_by_key(|e| e.ts_ns);
    let small = AnalysisConfig {
        max_utilization_points: 4096,
        ..AnalysisConfig::default()
    };
    let coalesced = Analyzer::analyze(&events, &reg, small).expect("config");
    let exact = report_of(&events, &reg);
    assert!(coalesced.workers.coalesced && !exact.workers.coalesced);
    assert_eq!(exact.workers.mmu.len(), 10);
    for (c, x) in coalesced.workers.mmu.iter().zip(&exact.workers.mmu) {
        assert!(
            (c.utilization - x.utilization).abs() <= c.max_error + 1e-9,
            "{c:?} vs {x:?}"
        );
    }
    // By hand: a 1 s window is 10 000 whole periods, so each running worker is
    // exactly 20% busy in it; in the second half (1.25 s) only 3 of 4 run: 0.15.
    let one_s = &exact.workers.mmu[9];
    assert!((one_s.utilization - 0.15).abs() < 1e-9, "{one_s:?}");
    assert_eq!(coalesced.workers.workers, exact.workers.workers);
}

#[test]
fn an_empty_stream_gives_an_empty_report() {
    let reg = Registry::new();
    let r = report_of(&[], &reg);
    assert_eq!((r.events, r.tasks_seen, r.duration_ms), (0, 0, 0.0));
    assert!(r.sites.is_empty() && r.workers.mmu.is_empty() && r.slow_polls.worst.is_empty());
    assert!(
        r.to_string()
            .starts_with("taskline report: 0.000 ms, 0 events")
    );
}
