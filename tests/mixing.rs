//! A runtime instrumented for recorder A while the global subscriber feeds
//! recorder B is said once on stderr and flagged on both guards. The test
//! runs itself as the child, to read the child's stderr.
#![cfg(all(feature = "trace", feature = "otel"))]

mod common;

use std::process::Command;

use taskline::{Mixing, Taskline};

const CHILD: &str = "TASKLINE_MIXING_CHILD";

fn child() {
    let a = Taskline::builder().start().expect("start A");
    let rt = a
        .build_runtime(
            tokio::runtime::Builder::new_current_thread().enable_all(),
            "a",
        )
        .expect("runtime");
    assert_eq!(a.mixing(), None, "nothing mixed yet");
    // Recorder B's subscriber becomes the process's: A's runtime's wakes
    // would go to B.
    let b = Taskline::builder()
        .tracing(tracing_subscriber::registry())
        .start()
        .expect("start B");
    let expected = Mixing {
        hooks_recorder: common::id(a.recorder()),
        tracing_recorder: common::id(b.recorder()),
    };
    assert_eq!(a.mixing(), Some(expected));
    assert_eq!(b.mixing(), Some(expected));
    rt.block_on(common::hand_over(5));
    drop(rt);
    let report = a.report();
    assert!(
        report.starts_with("WARNING: taskline: two recorders are mixed"),
        "{report}"
    );
    assert!(b.report().starts_with("WARNING: "));
    a.shutdown().expect("A");
    b.shutdown().expect("B");
    println!("child done");
}

#[test]
fn mixing_two_recorders_is_said_once_and_flagged() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "mixing_two_recorders_is_said_once_and_flagged",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    assert!(stdout.contains("child done"), "{stdout}");
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("taskline: two recorders are mixed"))
        .count();
    assert_eq!(lines, 1, "said exactly once: {stderr}");
}
