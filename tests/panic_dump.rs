//! A process that panics with `dump_on_panic` leaves a readable flight
//! recorder dump holding its last events. The test runs itself as the child.
#![cfg(feature = "trace")]

use std::path::PathBuf;
use std::process::Command;

use taskline::Taskline;
use taskline_core::EventKind;
use taskline_core::RuntimeBuilderExt;
use taskline_trace::flight::FlightConfig;

const CHILD: &str = "TASKLINE_PANIC_DUMP_CHILD";
const TASKS: u64 = 321;

fn child(dir: PathBuf) -> ! {
    let tl = Taskline::builder()
        .flight_recorder(FlightConfig {
            dump_dir: dir,
            dump_on_slow_poll: false,
            ..FlightConfig::default()
        })
        .dump_on_panic()
        .start()
        .expect("start");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(tl.recorder())
        .build()
        .expect("runtime");
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS).map(|i| tokio::spawn(async move { i })).collect();
        for h in handles {
            h.await.expect("task");
        }
    });
    // The last events (the tasks above) may still sit in the thread rings:
    // the hook flushes them before dumping.
    panic!("the child panics on purpose");
}

#[test]
fn a_panicking_process_leaves_a_dump_with_its_last_events() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("panic-dump-{}", std::process::id()));
    if let Some(d) = std::env::var_os(CHILD) {
        child(PathBuf::from(d));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_panicking_process_leaves_a_dump_with_its_last_events",
            "--nocapture",
        ])
        .env(CHILD, &dir)
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child panicked: {stderr}");
    assert!(
        stderr.contains("the child panics on purpose"),
        "the previous hook still ran: {stderr}"
    );
    assert!(stderr.contains("flight recorder dumped"), "{stderr}");
    let dumps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dump dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with("-panic.pftrace"))
        .collect();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    let rec = taskline_trace::read_trace(&std::fs::read(&dumps[0]).expect("read"))
        .expect("a readable dump");
    assert!(!rec.unfinished);
    let terminated = rec
        .events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Terminate))
        .count() as u64;
    let spawned = rec
        .events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn))
        .count() as u64;
    // Spawns are recorded on the panicking thread before it panics; a
    // worker may still be between waking the last join handle and its
    // terminate hook when the main thread panics (one per worker).
    assert!(spawned >= TASKS, "every spawn is in the dump ({spawned})");
    assert!(
        terminated >= TASKS - 2,
        "the last tasks are in the dump ({terminated})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
