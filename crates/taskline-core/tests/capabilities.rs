//! What taskline records in this build. `scripts/test.sh` runs this file both
//! with `--cfg tokio_unstable` (the workspace default) and without it, so the
//! stable-Tokio degradation is tested, not just compiled.

use std::time::Duration;

use taskline_core::{Recorder, RuntimeBuilderExt, capabilities};

#[test]
fn capabilities_match_the_build() {
    let caps = capabilities();
    assert!(caps.park_unpark, "park/unpark hooks are stable Tokio API");
    assert_eq!(caps.task_events, cfg!(tokio_unstable));
    assert_eq!(caps.schedule_latency, cfg!(tokio_unstable));
}

#[test]
fn records_what_the_build_allows() {
    let recorder = Recorder::with_defaults();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&recorder)
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..10 {
            tokio::spawn(async { tokio::time::sleep(Duration::from_millis(2)).await })
                .await
                .expect("task");
        }
    });
    drop(rt);
    let snapshot = recorder.snapshot();
    let parks: u64 = snapshot.workers.iter().map(|w| w.parks).sum();
    assert!(parks > 0, "idle workers park in every build: {snapshot:?}");
    if cfg!(tokio_unstable) {
        assert_eq!(snapshot.spawned, 10);
        assert!(
            snapshot.polls >= 20,
            "each sleeping task polls at least twice"
        );
    } else {
        assert_eq!(snapshot.spawned, 0, "no task hooks on stable Tokio");
        assert_eq!(snapshot.polls, 0);
    }
}
