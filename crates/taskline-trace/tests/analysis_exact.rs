//! The report of a trace is exact past the recorder's `max_tracked_tasks`:
//! it equals the in-process aggregation of the same run (tasks, polls and
//! busy time per spawn site), though the recorder itself followed only a
//! few of the tasks.
#![cfg(tokio_unstable)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskline_core::{
    Aggregator, Event, Recorder, RecorderConfig, Registry, RuntimeBuilderExt, Sink,
};
use taskline_trace::analysis::{AnalysisConfig, Analyzer};
use taskline_trace::{PerfettoWriter, read_trace};

/// An aggregator following every task, added to the recorder as a sink.
struct Shared(Arc<Mutex<Aggregator>>);

impl Sink for Shared {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        self.0.lock().expect("not poisoned").feed(events);
    }
}

const LIVE: usize = 3000;

#[test]
fn the_report_of_a_trace_equals_the_in_process_aggregates_past_the_tracking_limit() {
    let dir = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("exact-{}.pftrace", std::process::id()));
    let config = RecorderConfig {
        max_tracked_tasks: 64,
        slow_poll_threshold: Duration::from_millis(2),
        drain_interval: Duration::from_millis(2),
        ..RecorderConfig::default()
    };
    let recorder = Recorder::new(config.clone()).expect("recorder");
    let (writer, trace) = PerfettoWriter::create(&path).expect("trace file");
    recorder.add_sink(writer);
    let exact = Arc::new(Mutex::new(Aggregator::new(&RecorderConfig {
        max_tracked_tasks: 1 << 20,
        ..config.clone()
    })));
    recorder.add_sink(Shared(exact.clone()));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // LIVE tasks alive at once, from two sites, each polled a few times.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut handles = Vec::new();
        for i in 0..LIVE {
            let gate = gate.clone();
            if i % 3 == 0 {
                handles.push(tokio::spawn(async move {
                    let _p = gate.acquire().await.expect("open");
                    tokio::task::yield_now().await;
                }));
            } else {
                handles.push(tokio::spawn(async move {
                    let _p = gate.acquire().await.expect("open");
                }));
            }
        }
        // One slow poll.
        handles.push(tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(5));
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.add_permits(LIVE);
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    recorder.flush();
    let in_process = exact
        .lock()
        .expect("not poisoned")
        .snapshot(recorder.registry());
    let limited = recorder.snapshot();
    trace.set_dropped_events(recorder.stats().dropped);
    trace
        .finish_with_registry(recorder.registry())
        .expect("finish trace");
    recorder.shutdown();
    assert_eq!(
        recorder.stats().dropped,
        0,
        "the comparison needs every event"
    );
    assert!(
        limited.untracked > 0,
        "the run exceeds the recorder's max_tracked_tasks"
    );
    assert_eq!(in_process.untracked, 0);
    assert!(in_process.spawned > LIVE as u64);

    let rec = read_trace(&std::fs::read(&path).expect("read")).expect("valid trace");
    // The analysis gets the recorder's configuration (max_tracked_tasks 64
    // included) and still follows every task.
    let report = Analyzer::analyze(
        &rec.events,
        &rec.registry,
        AnalysisConfig {
            recorder: config,
            ..AnalysisConfig::default()
        },
    )
    .expect("config");
    assert_eq!(report.tasks_seen, in_process.spawned, "{report}");
    assert_eq!(report.untracked_tasks, 0, "{report}");
    let ms = |ns: u64| ns as f64 / 1e6;
    let want: BTreeMap<&str, (u64, u64, f64, u64)> = in_process
        .sites
        .iter()
        .map(|s| {
            (
                s.location.as_str(),
                (s.spawned, s.polls, ms(s.busy_ns), s.slow_polls),
            )
        })
        .collect();
    let got: BTreeMap<&str, (u64, u64, f64, u64)> = report
        .sites
        .iter()
        .map(|s| (s.site.as_str(), (s.tasks, s.polls, s.busy_ms, s.slow_polls)))
        .collect();
    assert_eq!(got, want);
    let polls: u64 = got.values().map(|v| v.1).sum();
    assert_eq!(polls, in_process.polls);
    assert!(
        polls >= LIVE as u64 * 4 / 3,
        "every task polled, a third twice"
    );
    assert_eq!(report.slow_polls.count, in_process.slow_polls);
    let _ = std::fs::remove_file(&path);
}
