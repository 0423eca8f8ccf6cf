//! Slow polls and scheduling delay measured on real runtimes.
#![cfg(tokio_unstable)]

use std::time::{Duration, Instant};

use taskline_core::{Recorder, RecorderConfig, RuntimeBuilderExt};
use tokio::runtime::Builder;

fn recorder() -> Recorder {
    Recorder::new(RecorderConfig {
        slow_poll_threshold: Duration::from_millis(10),
        // Hooks only: scheduling delay comes from Tokio's schedule latency.
        track_schedule_latency: true,
        ..RecorderConfig::default()
    })
    .expect("config")
}

#[test]
fn a_blocking_poll_is_flagged_slow() {
    let rec = recorder();
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&rec)
        .build()
        .expect("rt");
    rt.block_on(async {
        // A quick task first, so "slow" is not simply "every poll".
        tokio::spawn(async {}).await.expect("join");
        tokio::spawn(async { std::thread::sleep(Duration::from_millis(30)) })
            .await
            .expect("join");
    });
    drop(rt);
    let s = rec.snapshot();
    assert_eq!(s.slow_polls, 1, "{s}");
    assert!(s.poll_duration.max >= 30_000_000, "{s}");
    let slow_site = s
        .sites
        .iter()
        .find(|x| x.slow_polls == 1)
        .unwrap_or_else(|| panic!("no site with the slow poll: {s:#?}"));
    assert!(slow_site.busy_ns >= 30_000_000, "{s}");
    assert!(s.to_string().contains("slow (> 10.0ms) 1"), "{s}");
}

/// p99 scheduling delay of short yielding tasks on 2 workers, optionally with
/// `spinners` tasks that busy-spin 2 ms per poll competing with them.
fn p99_schedule_delay(spinners: usize) -> u64 {
    let rec = recorder();
    let rt = Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&rec)
        .build()
        .expect("rt");
    rt.block_on(async {
        let spin: Vec<_> = (0..spinners)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..15 {
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_millis(2) {
                            std::hint::spin_loop();
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let light: Vec<_> = (0..50)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in spin.into_iter().chain(light) {
            h.await.expect("join");
        }
    });
    drop(rt);
    let s = rec.snapshot();
    assert!(s.schedule_delay.count >= 200, "{s}");
    s.schedule_delay.p99
}

#[test]
fn scheduling_delay_grows_when_workers_are_saturated() {
    let idle = p99_schedule_delay(0);
    let saturated = p99_schedule_delay(6);
    // Six tasks spinning 2 ms per poll on two workers: a runnable task waits
    // for several of those polls.
    assert!(
        saturated >= 2_000_000,
        "saturated p99 {saturated} ns (idle {idle} ns)"
    );
    assert!(
        saturated > 2 * idle,
        "saturated p99 {saturated} ns, idle p99 {idle} ns"
    );
}
