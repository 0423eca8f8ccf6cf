//! Why tasks waited, offline: a real multi-thread runtime recorded by the
//! runtime hooks and taskline's subscriber (resource waits on, so a timer
//! is told from I/O), written to a trace file, read back and analysed.
//! Each scenario runs alone, `ROUNDS` times, from its own spawn sites:
//!
//! - a oneshot receiver woken by its sender's poll: `sync`, the sender's
//!   site named as the waker; the sender waits on a `sleep`: `timer`;
//! - a TCP reader (127.0.0.1) woken by readiness: `io`; its writer sleeps;
//! - a task awaiting a `spawn_blocking` result: `blocking`, the blocking
//!   call's site named; the section counts as the application's;
//! - a task's `yield_now`: `yield`;
//! - one slow poll, after a `sleep`: listed with its idle time by reason.
//!
//! Tokio starts each of the 2 workers with a `spawn_blocking` inside its
//! own source: those sections are the runtime's, not the application's.
//! The tests share one run (one global subscriber per process). Tokio's
//! task hooks and instrumentation need `--cfg tokio_unstable`.
#![cfg(tokio_unstable)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use taskline_core::{
    IdleByReason, Recorder, RecorderConfig, RuntimeBuilderExt, TasklineSubscriber, WakeReason,
};
use taskline_trace::analysis::{AnalysisConfig, Analyzer, Report, SiteIdleRow};
use taskline_trace::{PerfettoWriter, read_trace};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUNDS: u64 = 3;
const WORKERS: u64 = 2;

/// The source lines of the scenarios' spawn sites.
#[derive(Debug, Default)]
struct Lines {
    block_on: u32,
    receiver: u32,
    sender: u32,
    reader: u32,
    writer: u32,
    waiter: u32,
    blocking_call: u32,
    yielder: u32,
    slow: u32,
}

struct Run {
    report: Report,
    text: String,
    json: serde_json::Value,
    lines: Lines,
}

async fn workload(lines: &mut Lines) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (a, b) = tokio::join!(l.accept(), tokio::net::TcpStream::connect(addr));
    let (mut server, mut client) = (a.unwrap().0, b.unwrap());
    for _ in 0..ROUNDS {
        // The receiver spawns its sender inside its poll, right before
        // waiting: the sender's sleep outlasts the rest of that poll.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let sender = async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tx.send(()).unwrap();
        };
        let receiver = async move {
            let (line, s) = (line!(), tokio::spawn(sender));
            rx.await.unwrap();
            (line, s)
        };
        let (line, r) = (line!(), tokio::spawn(receiver));
        lines.receiver = line;
        let (line, s) = r.await.unwrap();
        lines.sender = line;
        s.await.unwrap();
    }
    for _ in 0..ROUNDS {
        // The same for a TCP reader and its writer.
        let writer = async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            client.write_all(b"x").await.unwrap();
            client
        };
        let reader = async move {
            let (line, w) = (line!(), tokio::spawn(writer));
            let mut buf = [0u8; 1];
            server.read_exact(&mut buf).await.unwrap();
            (server, line, w)
        };
        let (line, r) = (line!(), tokio::spawn(reader));
        lines.reader = line;
        let (s, line, w) = r.await.unwrap();
        (server, lines.writer) = (s, line);
        client = w.await.unwrap();
    }
    for _ in 0..ROUNDS {
        let call = line!() + 2;
        let waiter = async {
            tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(20)))
                .await
                .unwrap()
        };
        lines.blocking_call = call;
        let (line, h) = (line!(), tokio::spawn(waiter));
        lines.waiter = line;
        h.await.unwrap();
    }
    for _ in 0..ROUNDS {
        let yielder = tokio::task::yield_now();
        let (line, h) = (line!(), tokio::spawn(yielder));
        lines.yielder = line;
        h.await.unwrap();
    }
    let slow = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        std::thread::sleep(Duration::from_millis(100));
    };
    let (line, h) = (line!(), tokio::spawn(slow));
    lines.slow = line;
    h.await.unwrap();
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let recorder = Recorder::new(RecorderConfig::default()).expect("recorder");
        TasklineSubscriber::new(&recorder, tracing_subscriber::registry())
            .expect("registry")
            .with_resource_waits(true)
            .try_init()
            .expect("the only global subscriber of this test binary");
        let dir = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("wake-reasons-{}.pftrace", std::process::id()));
        let (writer, trace) = PerfettoWriter::create(&path).expect("trace file");
        recorder.add_sink(writer);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS as usize)
            .enable_all()
            .taskline(&recorder)
            .build()
            .expect("runtime");
        let mut lines = Lines::default();
        // Tokio instruments `block_on`'s future as a task too.
        let (block_on, ()) = (line!(), rt.block_on(workload(&mut lines)));
        lines.block_on = block_on;
        // Dropping the runtime ends its workers' blocking sections.
        drop(rt);
        recorder.flush();
        trace
            .finish_with_registry(recorder.registry())
            .expect("finish trace");
        recorder.shutdown();
        let rec = read_trace(&std::fs::read(&path).expect("read")).expect("valid trace");
        let _ = std::fs::remove_file(&path);
        assert_eq!(rec.dropped_events, 0);
        let config = AnalysisConfig {
            top_n: 100,
            ..AnalysisConfig::default()
        };
        let report = Analyzer::analyze(&rec.events, &rec.registry, config).expect("config");
        let text = report.to_string();
        let json = serde_json::to_value(&report).expect("json");
        Run {
            report,
            text,
            json,
            lines,
        }
    })
}

fn this_file_line(site: &str, line: u32) -> bool {
    site.starts_with("crates/taskline-trace/tests/wake_reasons.rs:")
        && site.contains(&format!(":{line}:"))
}

fn site_row(r: &Report, line: u32) -> &SiteIdleRow {
    r.blocking
        .by_site
        .iter()
        .find(|s| this_file_line(&s.site, line))
        .unwrap_or_else(|| panic!("no idle row for line {line}:\n{r}"))
}

fn site_label(r: &Report, line: u32) -> String {
    site_row(r, line).site.clone()
}

/// `n` idle periods of `reason`, nothing else.
fn only(reason: WakeReason, n: u64) -> Vec<(WakeReason, u64)> {
    vec![(reason, n)]
}

fn counts(idle: &IdleByReason) -> Vec<(WakeReason, u64)> {
    idle.iter().map(|(r, n, _)| (r, n)).collect()
}

#[test]
fn each_scenario_waits_for_its_reason() {
    let Run { report, lines, .. } = run();
    for (line, reason, n) in [
        (lines.receiver, WakeReason::Sync, ROUNDS),
        (lines.sender, WakeReason::Timer, ROUNDS),
        (lines.reader, WakeReason::Io, ROUNDS),
        (lines.writer, WakeReason::Timer, ROUNDS),
        (lines.waiter, WakeReason::Blocking, ROUNDS),
        (lines.yielder, WakeReason::Yield, ROUNDS),
        (lines.slow, WakeReason::Timer, 1),
    ] {
        let row = site_row(report, line);
        assert_eq!(
            counts(&row.idle_by_reason),
            only(reason, n),
            "line {line}:\n{report}"
        );
        assert_eq!(row.idle_ms, row.idle_by_reason.total_ns() as f64 / 1e6);
    }
    // The only other idle time is block_on's, whose waker is not a task's.
    for row in &report.blocking.by_site {
        let ours = [
            lines.receiver,
            lines.sender,
            lines.reader,
            lines.writer,
            lines.waiter,
            lines.yielder,
            lines.slow,
        ]
        .iter()
        .any(|&l| this_file_line(&row.site, l));
        if !ours {
            assert!(
                this_file_line(&row.site, lines.block_on),
                "{}:\n{report}",
                row.site
            );
            assert_eq!(
                row.idle_by_reason
                    .iter()
                    .map(|(r, _, _)| r)
                    .collect::<Vec<_>>(),
                [WakeReason::Unknown]
            );
        }
    }
}

#[test]
fn the_total_by_reason_adds_up_to_the_sites_and_the_resources() {
    let Run { report, .. } = run();
    let mut sum = IdleByReason::default();
    for row in &report.blocking.by_site {
        sum.merge(&row.idle_by_reason);
    }
    assert_eq!(sum, report.blocking.idle_by_reason);
    let total = report.blocking.idle_by_reason;
    let by_resource: f64 = report.blocking.by_resource.iter().map(|r| r.idle_ms).sum();
    assert!((by_resource - total.total_ns() as f64 / 1e6).abs() < 1e-6);
    let waits: u64 = report.blocking.by_resource.iter().map(|r| r.waits).sum();
    assert_eq!(waits, total.total_count());
    // Resource waits name the Sleep next to the reason.
    let sleep = report
        .blocking
        .by_resource
        .iter()
        .find(|r| r.resource == "Sleep")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(sleep.waits, 2 * ROUNDS + 1, "{report}");
    assert_eq!(
        total.count(WakeReason::Timer),
        2 * ROUNDS + 1,
        "each Sleep wait ended by the timer"
    );
}

#[test]
fn woken_by_names_the_waking_sites() {
    let Run { report, lines, .. } = run();
    let woken_by = |line| -> Vec<(String, WakeReason, u64)> {
        site_row(report, line)
            .woken_by
            .iter()
            .map(|w| (w.site.clone(), w.reason, w.wakes))
            .collect()
    };
    assert_eq!(
        woken_by(lines.receiver),
        vec![(site_label(report, lines.sender), WakeReason::Sync, ROUNDS)]
    );
    let call = report
        .sites
        .iter()
        .find(|s| this_file_line(&s.site, lines.blocking_call))
        .unwrap_or_else(|| panic!("no spawn_blocking site:\n{report}"));
    assert_eq!(
        woken_by(lines.waiter),
        vec![(call.site.clone(), WakeReason::Blocking, ROUNDS)]
    );
    for line in [lines.sender, lines.reader, lines.writer, lines.yielder] {
        assert_eq!(woken_by(line), vec![], "line {line}");
    }
}

#[test]
fn listed_tasks_carry_their_idle_by_reason() {
    let Run { report, lines, .. } = run();
    let expected = |site: &str| -> Option<Vec<(WakeReason, u64)>> {
        [
            (lines.receiver, WakeReason::Sync),
            (lines.sender, WakeReason::Timer),
            (lines.reader, WakeReason::Io),
            (lines.writer, WakeReason::Timer),
            (lines.waiter, WakeReason::Blocking),
            (lines.yielder, WakeReason::Yield),
            (lines.slow, WakeReason::Timer),
        ]
        .iter()
        .find(|(l, _)| this_file_line(site, *l))
        .map(|&(_, r)| only(r, 1))
    };
    // top_n 100: every polled task is listed, once.
    let worst = &report.scheduling.worst;
    assert_eq!(
        worst.iter().filter(|w| expected(&w.site).is_some()).count() as u64,
        6 * ROUNDS + 1,
        "{report}"
    );
    for w in worst {
        let idle = w
            .idle_by_reason
            .unwrap_or_else(|| panic!("task {} not tracked", w.task));
        if let Some(want) = expected(&w.site) {
            assert_eq!(counts(&idle), want, "task {} at {}", w.task, w.site);
        }
    }
    // The slow poll is the task's last: it terminated inside it, and keeps
    // its idle time. (On a loaded machine other polls can be slow too.)
    let slow = report
        .slow_polls
        .worst
        .iter()
        .find(|p| this_file_line(&p.site, lines.slow))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(slow.duration_ms >= 100.0);
    let idle = slow.idle_by_reason.expect("tracked");
    assert_eq!(counts(&idle), only(WakeReason::Timer, 1));
}

#[test]
fn the_runtimes_worker_threads_are_not_application_blocking() {
    let Run { report, text, .. } = run();
    let sections: Vec<(&str, u64)> = report
        .blocking
        .sections
        .iter()
        .map(|s| (s.kind.as_str(), s.count))
        .collect();
    assert_eq!(sections, vec![("spawn_blocking", ROUNDS)], "{report}");
    // The application's sections are the 20 ms calls, not worker lifetimes.
    let app_ms = report.blocking.sections[0].total_ms;
    assert!(
        app_ms >= 20.0 * ROUNDS as f64 && app_ms < report.duration_ms,
        "{report}"
    );
    assert_eq!(report.blocking.runtime_blocking.count, WORKERS, "{report}");
    let runtime_sites: Vec<&str> = report
        .sites
        .iter()
        .filter(|s| s.runtime)
        .map(|s| s.site.as_str())
        .collect();
    assert_eq!(runtime_sites.len(), 1, "{report}");
    assert!(runtime_sites[0].contains("tokio"), "{runtime_sites:?}");
    assert!(
        text.contains(&format!(
            "runtime threads: {WORKERS} (Tokio's own, not your blocking)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("spawn_blocking: {ROUNDS} sections")),
        "{text}"
    );
}

#[test]
fn the_text_and_json_forms_name_the_reasons() {
    let Run {
        report,
        text,
        json,
        lines,
    } = run();
    assert!(text.contains("Idle by reason"), "{text}");
    let receiver = site_label(report, lines.receiver);
    let sender = site_label(report, lines.sender);
    assert!(
        text.contains(&format!("woken by: {sender} (sync, {ROUNDS})")),
        "{text}"
    );
    let b = &json["blocking"];
    let names: Vec<&str> = WakeReason::ALL.iter().map(|r| r.as_str()).collect();
    let mut keys: Vec<&str> = b["idle_by_reason"]
        .as_object()
        .expect("map")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(keys, want);
    let total = &report.blocking.idle_by_reason;
    for r in WakeReason::ALL {
        assert_eq!(
            b["idle_by_reason"][r.as_str()]["count"],
            total.count(r),
            "{r}"
        );
    }
    let row = b["by_site"]
        .as_array()
        .expect("by_site")
        .iter()
        .find(|s| s["site"] == receiver.as_str())
        .expect("receiver row");
    assert_eq!(row["idle_by_reason"]["sync"]["count"], ROUNDS);
    assert_eq!(row["idle_by_reason"]["io"]["count"], 0);
    assert_eq!(row["woken_by"][0]["site"], sender.as_str());
    assert_eq!(row["woken_by"][0]["reason"], "sync");
    assert_eq!(row["woken_by"][0]["wakes"], ROUNDS);
    assert_eq!(b["runtime_blocking"]["count"], WORKERS);
    assert_eq!(b["sections"][0]["count"], ROUNDS);
    let slow = json["slow_polls"]["worst"]
        .as_array()
        .expect("worst")
        .iter()
        .find(|p| this_file_line(p["site"].as_str().unwrap(), lines.slow))
        .expect("the slow poll");
    assert_eq!(slow["idle_by_reason"]["timer"]["count"], 1);
    assert_eq!(slow["idle_by_reason"]["sync"]["count"], 0);
    let sites: BTreeMap<&str, bool> = json["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|s| (s["site"].as_str().unwrap(), s["runtime"].as_bool().unwrap()))
        .collect();
    assert_eq!(sites.values().filter(|r| **r).count(), 1, "{sites:?}");
}
