//! The `taskline` binary on a trace recorded from a real runtime, and on
//! broken files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use taskline_core::Recorder;
use taskline_core::RecorderConfig;
use taskline_core::RuntimeBuilderExt;
use taskline_trace::PerfettoWriter;
use taskline_trace::analysis::{AnalysisConfig, Analyzer};

fn tmp() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// A trace of a small real runtime, recorded once per test binary.
fn trace() -> &'static Path {
    static TRACE: OnceLock<PathBuf> = OnceLock::new();
    TRACE.get_or_init(|| {
        let path = tmp().join("small.pftrace");
        let recorder = Recorder::new(RecorderConfig {
            drain_interval: Duration::from_millis(2),
            ..RecorderConfig::default()
        })
        .expect("recorder");
        let (writer, handle) = PerfettoWriter::create(&path).expect("create");
        recorder.add_sink(writer);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .taskline(&recorder)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..20u64 {
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_micros(100 * (i % 4))).await;
                    if i == 3 {
                        std::thread::sleep(Duration::from_millis(3)); // a slow poll
                    }
                    i
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
        });
        drop(rt);
        recorder.flush();
        handle
            .finish_with_registry(recorder.registry())
            .expect("finish");
        recorder.shutdown();
        path
    })
}

fn taskline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taskline"))
        .args(args)
        .output()
        .expect("run taskline")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2 and exactly one line on stderr, no panic.
fn assert_clean_failure(o: &Output, what: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line: {err:?}");
    assert!(err.starts_with("taskline: error: "), "{what}: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}");
    err
}

#[test]
fn report_prints_the_analyses() {
    let path = trace().to_str().expect("utf-8 path");
    let o = taskline(&["report", path, "--slow-poll-ms", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for section in [
        "Spawn sites",
        "Scheduling latency",
        "Blocking profile",
        "Worker utilization",
        "Minimum worker utilization",
        "Slow polls (> 2.000 ms)",
        "tests/cli.rs",
    ] {
        assert!(text.contains(section), "missing {section:?} in\n{text}");
    }
}

#[test]
fn report_json_equals_the_library_report() {
    let path = trace();
    let o = taskline(&[
        "report",
        path.to_str().expect("utf-8"),
        "--json",
        "--top",
        "3",
        "--slow-poll-ms",
        "2.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rec = taskline_trace::read_trace(&std::fs::read(path).expect("read")).expect("trace");
    let config = AnalysisConfig {
        top_n: 3,
        recorder: taskline_core::RecorderConfig {
            slow_poll_threshold: Duration::from_micros(2500),
            ..taskline_core::RecorderConfig::default()
        },
        ..AnalysisConfig::default()
    };
    let want = Analyzer::analyze(&rec.events, &rec.registry, config).expect("config");
    // Parsed by the same JSON parser on both sides (floats compare exactly).
    let want: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&want).expect("to JSON")).expect("JSON");
    assert_eq!(got, want);
    assert!(got["tasks_seen"].as_u64().expect("tasks_seen") >= 20);
    assert!(got["slow_polls"]["count"].as_u64().expect("count") >= 1);
    assert!(got["scheduling"]["worst"].as_array().expect("worst").len() <= 3);
}

#[test]
fn inspect_summarizes_the_file() {
    let path = trace();
    let o = taskline(&["inspect", path.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("events by kind") && text.contains("PollStart"),
        "{text}"
    );
    assert!(
        text.contains("bytes/event") && text.contains("time span"),
        "{text}"
    );
    assert!(text.contains("dropped by the recorder"), "{text}");

    let o = taskline(&["inspect", path.to_str().expect("utf-8"), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let rec = taskline_trace::read_trace(&std::fs::read(path).expect("read")).expect("trace");
    assert_eq!(v["events"].as_u64(), Some(rec.events.len() as u64));
    let by_kind: u64 = v["by_kind"]
        .as_array()
        .expect("by_kind")
        .iter()
        .map(|k| k["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(by_kind, rec.events.len() as u64);
    assert!(
        v["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .any(|t| t["worker"].is_u64()),
        "a worker thread is named: {v}"
    );
}

#[test]
fn convert_writes_chrome_json() {
    let out = tmp().join("small.json");
    let o = taskline(&[
        "convert",
        trace().to_str().expect("utf-8"),
        "--to",
        "chrome-json",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("out")).expect("JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents");
    let begins = events
        .iter()
        .filter(|e| e["ph"] == "B" && e["cat"] == "poll")
        .count();
    let ends = events.iter().filter(|e| e["ph"] == "E").count();
    assert!(begins >= 20, "{begins}");
    assert!(ends >= begins, "{begins} polls, {ends} ends");
    // The trace's counter tracks come through as Chrome counters.
    let alive = events
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "alive tasks")
        .count();
    assert!(alive >= 1, "no alive-tasks counter samples");
    let bad = taskline(&[
        "convert",
        trace().to_str().expect("utf-8"),
        "--to",
        "svg",
        "x",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn an_unfinished_trace_is_shown_with_a_warning() {
    let dir = tmp();
    // An uncompressed trace of the same recording, cut at two thirds: whole
    // packets up to the cut, no end marker (what a killed process leaves).
    let rec = taskline_trace::read_trace(&std::fs::read(trace()).expect("read")).expect("trace");
    let mut bytes = Vec::new();
    taskline_trace::encode_trace(&rec.events, &rec.registry, &mut bytes).expect("encode");
    let cut = dir.join("unfinished.pftrace");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    for cmd in ["report", "inspect"] {
        let o = taskline(&[cmd, cut.to_str().expect("utf-8")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{cmd}: {err}");
        assert!(err.contains("no end marker"), "{cmd} warns: {err}");
        assert!(!o.stdout.is_empty(), "{cmd} prints what it read");
    }
    let o = taskline(&["inspect", cut.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("UNFINISHED"));
}

#[test]
fn broken_files_give_one_line_and_exit_code_2() {
    let dir = tmp();
    let bytes = std::fs::read(trace()).expect("trace");

    // A cut compressed trace with no whole packet left.
    let truncated = dir.join("truncated.pftrace");
    std::fs::write(&truncated, &bytes[..bytes.len().min(40)]).expect("write");
    let empty = dir.join("empty.pftrace");
    std::fs::write(&empty, b"").expect("write");
    let random = dir.join("random.pftrace");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&random, noise).expect("write");
    let missing = dir.join("does-not-exist.pftrace");

    for (file, what) in [
        (&truncated, "truncated"),
        (&empty, "empty"),
        (&random, "random"),
        (&missing, "missing"),
        (&dir, "directory"),
    ] {
        for cmd in ["report", "inspect"] {
            let o = taskline(&[cmd, file.to_str().expect("utf-8")]);
            let err = assert_clean_failure(&o, &format!("{cmd} {what}"));
            assert!(
                err.contains(&*file.to_string_lossy()),
                "names the file: {err}"
            );
        }
    }
    let o = taskline(&[
        "report",
        trace().to_str().expect("utf-8"),
        "--slow-poll-ms",
        "-1",
    ]);
    assert_clean_failure(&o, "negative threshold");
    let o = taskline(&[
        "report",
        trace().to_str().expect("utf-8"),
        "--slow-poll-ms",
        "NaN",
    ]);
    assert_clean_failure(&o, "NaN threshold");
    let o = taskline(&["report"]);
    assert_eq!(o.status.code(), Some(2), "usage error");
}

/// Burns CPU in a function the flame graph must show.
#[cfg(target_os = "linux")]
#[inline(never)]
fn flame_test_spin(wall: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut x = 1u64;
    while start.elapsed() < wall {
        let mut i = 0u32;
        while i < 100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i += 1;
        }
    }
    std::hint::black_box(x)
}

#[cfg(target_os = "linux")]
#[test]
fn flamegraph_of_a_real_cpu_profile() {
    use taskline_profile::{Profiler, ProfilerConfig};
    let profiler = Profiler::start(ProfilerConfig::default().frequency_hz(499)).expect("profiler");
    profiler.register_current_thread().expect("register");
    flame_test_spin(Duration::from_millis(300));
    let profile = profiler.stop().expect("stop");
    let path = tmp().join("cpu.pb.gz");
    profile.write_pprof(&path).expect("write");
    let p = path.to_str().expect("utf-8");

    let o = taskline(&["flamegraph", p]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(tmp().join("cpu.svg")).expect("default output name");
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("flame_test_spin"), "the hot function is drawn");

    let out = tmp().join("threads.folded");
    let o = taskline(&[
        "flamegraph",
        p,
        "--folded",
        "--group-by",
        "thread",
        "-o",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let folded = std::fs::read_to_string(&out).expect("folded");
    let hot: u64 = folded
        .lines()
        .filter(|l| l.contains("flame_test_spin"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    let all: u64 = folded
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        hot * 10 >= all * 9,
        "flame_test_spin: {hot} of {all} ns\n{folded}"
    );
    assert!(folded.lines().all(|l| l.starts_with("thread=")), "{folded}");

    let o = taskline(&[
        "flamegraph",
        p,
        "--tagfocus",
        "thread=no-such-thread",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("no samples")
    );
    assert_clean_failure(
        &taskline(&["flamegraph", p, "--tagfocus", "nokey"]),
        "bad tagfocus",
    );
    assert_clean_failure(
        &taskline(&["flamegraph", p, "--value", "alloc"]),
        "no such value",
    );
    let junk = tmp().join("junk.pb.gz");
    std::fs::write(&junk, b"\x1f\x8b garbage").unwrap();
    let err = assert_clean_failure(&taskline(&["flamegraph", junk.to_str().unwrap()]), "junk");
    assert!(err.contains("junk.pb.gz"), "names the file: {err}");
}

#[test]
fn inspect_counts_cpu_samples() {
    // The fuzz seed with CPU samples: 6 samples of 2 stacks, 3 on each of
    // threads 1 and 2 (tids 4242 and 4243).
    let seed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/read_trace/v4-cpu-samples.pftrace");
    let o = taskline(&["inspect", seed.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("6 CPU samples (2 distinct stacks), 6 on recorded threads' tracks"),
        "{text}"
    );
    let o = taskline(&["inspect", seed.to_str().expect("utf-8"), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["cpu_samples"].as_u64(), Some(6));
    let per_thread: Vec<u64> = v["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .map(|t| t["cpu_samples"].as_u64().expect("count"))
        .collect();
    assert_eq!(per_thread[1..3], [3, 3], "{v}");
    // A trace without a profiler says nothing about CPU samples.
    let o = taskline(&["inspect", trace().to_str().expect("utf-8")]);
    assert!(!stdout(&o).contains("CPU samples"), "{}", stdout(&o));
}
