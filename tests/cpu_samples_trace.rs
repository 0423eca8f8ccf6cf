//! The CPU profiler's samples in the Perfetto trace: with `trace_file` and
//! `cpu_profile`, a task spinning in a known function leaves callstack
//! samples on its worker thread's track, inside its poll slices, whose
//! stacks hold that function; the official protos accept the trace. With
//! the profiler off the trace holds no sample and no extra packet.
#![cfg(all(feature = "profile", feature = "trace", target_os = "linux"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use taskline::profile::ProfilerConfig;
use taskline::trace::read_trace;
use taskline::{EventKind, Taskline};

/// Tests here start the one process-wide profiler: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn temp_trace(name: &str) -> PathBuf {
    common::temp_dir(&format!("cpu-trace-{name}")).join(format!("{name}.pftrace"))
}

/// Runs `scripts/validate-trace.sh` on `file`: its JSON line.
fn validate(file: &Path) -> String {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-trace.sh"))
        .arg(file)
        .output()
        .expect("run scripts/validate-trace.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "validator failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The integer after `"key": ` in the validator's JSON.
fn json_u64(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\": ");
    let at = json.find(&pat).unwrap_or_else(|| panic!("{key} in {json}")) + pat.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("{key} in {json}"))
}

/// Runs one spinning task under a taskline writing `path`; returns the
/// spawn line of the task.
fn run(path: &Path, profile: bool) -> u32 {
    let mut builder = Taskline::builder().trace_file(path);
    if profile {
        builder = builder.cpu_profile(ProfilerConfig::default().frequency_hz(499));
    }
    let taskline = builder.start().expect("start");
    let rt = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread().worker_threads(2),
            "spin",
        )
        .expect("runtime");
    let line = line!() + 1;
    let task = rt.spawn(async { common::spin_in_known_function(Duration::from_millis(300)) });
    rt.block_on(task).expect("task");
    drop(rt);
    taskline.shutdown().expect("shutdown");
    line
}

#[test]
fn samples_land_on_the_worker_track_inside_the_task_polls() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = temp_trace("profiled");
    let line = run(&path, true);
    let rec = read_trace(&std::fs::read(&path).expect("read")).expect("parse");
    assert!(!rec.unfinished);

    let spins: Vec<_> = rec
        .cpu_samples
        .iter()
        .filter(|s| {
            rec.cpu_sample_frames(s)
                .iter()
                .any(|f| f.function.ends_with("spin_in_known_function"))
        })
        .collect();
    // 300 ms of wall at 499 Hz: up to 150 samples, fewer on a loaded machine.
    assert!(
        spins.len() >= 10,
        "{} of {} samples in spin_in_known_function",
        spins.len(),
        rec.cpu_samples.len()
    );
    // Every sample is on a recorded thread's track (its tid names it).
    for s in &rec.cpu_samples {
        let t = rec.cpu_sample_thread(s);
        assert!(t.is_some(), "sample of tid {} on no track", s.tid);
    }
    // The spinning ones are on worker tracks.
    for s in &spins {
        let t = rec.cpu_sample_thread(s).expect("a track");
        let info = rec.registry.thread(t).expect("thread");
        assert_eq!(info.tid, Some(s.tid));
        assert!(info.worker.is_some(), "{info:?} is a worker");
    }

    // With Tokio's hooks (tokio_unstable) the task's polls are slices:
    // every spinning sample lies inside one of them, on the same track.
    if taskline::capabilities().task_events {
        let site = (0..)
            .map_while(|i| rec.registry.site(i).map(|s| (i, s)))
            .find(|(_, s)| s.file.ends_with("cpu_samples_trace.rs") && s.line == line)
            .map(|(i, _)| i)
            .expect("the spawn site is interned");
        let task = rec
            .events
            .iter()
            .find(|e| e.kind() == Some(EventKind::Spawn) && e.aux == site)
            .map(|e| e.task)
            .expect("the task's spawn");
        let mut polls = Vec::new();
        for (thread, events) in rec.by_thread() {
            let mut open = None;
            for e in events.iter().filter(|e| e.task == task) {
                match e.kind() {
                    Some(EventKind::PollStart) => open = Some(e.ts_ns),
                    Some(EventKind::PollEnd) => {
                        if let Some(start) = open.take() {
                            polls.push((thread, start, e.ts_ns));
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(!polls.is_empty(), "the task was polled");
        for s in &spins {
            let t = rec.cpu_sample_thread(s).expect("a track");
            assert!(
                polls
                    .iter()
                    .any(|&(pt, a, b)| pt == t && a <= s.ts_ns && s.ts_ns <= b),
                "sample at {} on thread {t} is outside the polls {polls:?}",
                s.ts_ns
            );
        }
    }

    let json = validate(&path);
    assert_eq!(
        json_u64(&json, "cpu_samples"),
        rec.cpu_samples.len() as u64,
        "{json}"
    );
    assert_eq!(json_u64(&json, "cpu_samples_off_track"), 0, "{json}");
    assert!(json_u64(&json, "cpu_interned") > 0, "{json}");
    assert!(json.contains("spin_in_known_function"), "{json}");
    std::fs::remove_file(&path).ok();
}

#[test]
fn no_profiler_no_samples_and_no_extra_packets() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = temp_trace("plain");
    run(&path, false);
    let bytes = std::fs::read(&path).expect("read");
    let rec = read_trace(&bytes).expect("parse");
    assert!(rec.cpu_samples.is_empty() && rec.cpu_stacks.is_empty());
    let json = validate(&path);
    assert_eq!(json_u64(&json, "cpu_samples"), 0, "{json}");
    // No packet interns a function, frame, callstack or mapping either.
    assert_eq!(json_u64(&json, "cpu_interned"), 0, "{json}");
    std::fs::remove_file(&path).ok();
}
