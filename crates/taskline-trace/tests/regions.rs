//! User regions through a trace file: the span events' marks survive the
//! writer and the reader, and `taskline report`'s analysis of the file
//! gives the region table of the live snapshot of the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use taskline_core::{
    Aggregator, Event, EventKind, Recorder, RecorderConfig, Registry, SpanMark, TasklineSubscriber,
    ThreadInfo,
};
use taskline_trace::analysis::{AnalysisConfig, Analyzer, RegionRow};
use taskline_trace::{PerfettoWriter, encode_trace, read_trace};

fn span_event(kind: EventKind, ts: u64, thread: u16, id: u64, name: u32, mark: SpanMark) -> Event {
    let mut e = Event::new(kind, ts, 0);
    e.thread = thread;
    e.arg = id;
    e.aux = name;
    e.flags = mark as u8;
    e
}

#[test]
fn every_span_mark_reads_back_exactly() {
    use EventKind::{SpanEnter as In, SpanExit as Out};
    use SpanMark::*;
    let thread = |id: u16, name: &str| ThreadInfo {
        id,
        name: Arc::from(name),
        worker: None,
        tid: None,
    };
    let reg = Registry::from_parts(
        Vec::new(),
        Vec::new(),
        vec![thread(0, "main"), thread(1, "w")],
    );
    let (a, r) = (reg.intern("a"), reg.intern("request"));
    let events = vec![
        span_event(In, 10, 0, 1, a, Span),
        span_event(In, 11, 1, 1 << 40, r, FirstPoll),
        span_event(Out, 12, 1, 1 << 40, r, Poll),
        span_event(In, 13, 0, 2, a, Span),
        // Interleaved: 1 exits before 2.
        span_event(Out, 14, 0, 1, a, Span),
        span_event(In, 15, 1, 1 << 40, r, Poll),
        span_event(Out, 16, 0, 2, a, Span),
        span_event(Out, 17, 1, 1 << 40, r, Completed),
        span_event(In, 18, 1, 7, r, FirstPoll),
        span_event(Out, 19, 1, 7, r, Poll),
        span_event(In, 30, 0, 7, r, Dropped),
        span_event(Out, 30, 0, 7, r, Dropped),
    ];
    let mut buf = Vec::new();
    encode_trace(&events, &reg, &mut buf).expect("encode");
    let rec = read_trace(&buf).expect("valid trace");
    assert_eq!(rec.events, events);
    // And the analysis of the file reads them as regions.
    let report =
        Analyzer::analyze(&rec.events, &rec.registry, AnalysisConfig::default()).expect("config");
    let row = |name: &str| -> &RegionRow {
        report
            .regions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no {name}: {:?}", report.regions))
    };
    let (ra, rr) = (row("a"), row("request"));
    assert_eq!((ra.count, ra.polls, ra.dropped), (2, 2, 0));
    assert_eq!((rr.count, rr.polls, rr.dropped, rr.active), (2, 3, 1, 0));
    assert!((rr.total_ms - (6.0 + 12.0) / 1e6).abs() < 1e-12, "{rr:?}");
    assert!(
        (rr.busy_ms - (1.0 + 2.0 + 1.0) / 1e6).abs() < 1e-12,
        "{rr:?}"
    );
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["regions"].as_array().map(Vec::len), Some(2), "{json}");
    assert!(report.to_string().contains("User regions"), "{report}");
}

#[test]
fn the_trace_reports_the_regions_of_the_live_snapshot() {
    let dir = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("regions-{}.pftrace", std::process::id()));
    let recorder = Recorder::new(RecorderConfig {
        record_spans: true,
        ..RecorderConfig::default()
    })
    .expect("recorder");
    let (writer, trace) = PerfettoWriter::create(&path).expect("trace file");
    recorder.add_sink(writer);
    let dispatch = tracing::Dispatch::new(
        TasklineSubscriber::new(&recorder, tracing_subscriber::registry())
            .expect("registry-backed"),
    );
    let _g = tracing::dispatcher::set_default(&dispatch);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let polls = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut handles = Vec::new();
        for i in 0..37u64 {
            let rec = recorder.clone();
            let polls = polls.clone();
            handles.push(tokio::spawn(async move {
                {
                    let _a = tracing::info_span!("a", i).entered();
                    if i % 8 == 0 {
                        let _b = tracing::info_span!("b").entered();
                    }
                }
                let mut pending = i % 3;
                rec.region(
                    "request",
                    std::future::poll_fn(move |cx| {
                        polls.fetch_add(1, Ordering::Relaxed);
                        if pending == 0 {
                            return Poll::Ready(());
                        }
                        pending -= 1;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }),
                )
                .await;
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
        let stuck = recorder.region("request", std::future::pending::<()>());
        let _ = tokio::time::timeout(Duration::from_millis(1), stuck).await;
    });
    drop(rt);
    let live = recorder.snapshot();
    trace.set_dropped_events(recorder.stats().dropped);
    trace.finish_recorder(&recorder).expect("finish trace");
    assert_eq!(recorder.stats().dropped, 0);
    recorder.shutdown();

    let count = |name: &str| {
        live.regions
            .iter()
            .find(|r| r.name == name)
            .map(|r| (r.count, r.dropped))
    };
    assert_eq!(count("a"), Some((37, 0)));
    assert_eq!(count("b"), Some((5, 0)));
    assert_eq!(count("request"), Some((38, 1)));
    let request = live.regions.iter().find(|r| r.name == "request");
    let seen = polls.load(Ordering::Relaxed);
    assert_eq!(seen, (0..37).map(|i| i % 3 + 1).sum::<u64>());
    assert!(
        request.is_some_and(|r| r.polls > seen),
        "plus the stuck one's"
    );

    let rec = read_trace(&std::fs::read(&path).expect("read")).expect("valid trace");
    // The core's table over the file's events equals the live one.
    let mut agg = Aggregator::new(&RecorderConfig::default());
    agg.feed(&rec.events);
    assert_eq!(agg.snapshot(&rec.registry).regions, live.regions);
    // And so do the rows `taskline report` prints and writes as JSON.
    let report =
        Analyzer::analyze(&rec.events, &rec.registry, AnalysisConfig::default()).expect("config");
    let rows: Vec<(&str, u64, u64, u64)> = report
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.count, r.polls, r.dropped))
        .collect();
    let mut expected: Vec<(&str, u64, u64, u64)> = live
        .regions
        .iter()
        .map(|r| (r.name.as_str(), r.count, r.polls, r.dropped))
        .collect();
    expected.sort_by_key(|r| r.0);
    let mut sorted = rows.clone();
    sorted.sort_by_key(|r| r.0);
    assert_eq!(sorted, expected);
    let json = serde_json::to_string(&report).expect("json");
    assert!(json.contains("\"regions\":[{"), "{json}");
    let _ = std::fs::remove_file(&path);
}
