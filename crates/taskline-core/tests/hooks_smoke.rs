//! The runtime hooks feeding a recorder (raw events).

use std::sync::{Arc, Mutex};

use taskline_core::{Event, EventKind};
use taskline_core::{Recorder, Registry, RuntimeBuilderExt, Sink};

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Event>>>);

impl Sink for Collect {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        self.0.lock().expect("lock").extend_from_slice(events);
    }
}

#[cfg(tokio_unstable)]
#[test]
fn yielding_task_is_polled_k_plus_one_times() {
    let recorder = Recorder::new(taskline_core::RecorderConfig {
        track_schedule_latency: true,
        ..Default::default()
    })
    .expect("config");
    let events = Collect::default();
    recorder.add_sink(events.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .build()
        .expect("runtime");
    const K: usize = 7;
    let id = rt.block_on(async {
        let h = tokio::spawn(async {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
            tokio::task::id()
        });
        h.await.expect("join")
    });
    drop(rt);
    recorder.flush();
    let id = taskline_core::task_id_u64(id);
    let ev = events.0.lock().expect("lock").clone();
    let count = |k: EventKind| {
        ev.iter()
            .filter(|e| e.task == id && e.kind() == Some(k))
            .count()
    };
    assert_eq!(count(EventKind::Spawn), 1);
    assert_eq!(count(EventKind::PollStart), K + 1);
    assert_eq!(count(EventKind::PollEnd), K + 1);
    assert_eq!(count(EventKind::Terminate), 1);
    assert!(
        ev.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "delivered in ts order"
    );
    let spawn = ev
        .iter()
        .find(|e| e.task == id && e.kind() == Some(EventKind::Spawn))
        .expect("spawn");
    let site = recorder.registry().site(spawn.aux).expect("site");
    assert!(site.file.ends_with("hooks_smoke.rs"), "{site:?}");
    let polls: Vec<_> = ev
        .iter()
        .filter(|e| e.task == id && e.kind() == Some(EventKind::PollStart))
        .collect();
    assert!(
        polls.iter().all(|p| p.arg != taskline_core::NO_VALUE),
        "schedule latency present"
    );
    let t = recorder.registry().thread(polls[0].thread).expect("thread");
    assert!(t.worker.is_some(), "{t:?}");
    assert!(ev.iter().any(|e| e.kind() == Some(EventKind::Park)));
}

/// By default Tokio's schedule latency is not tracked (Tokio would read the
/// clock on every schedule): `PollStart` carries no latency.
#[cfg(tokio_unstable)]
#[test]
fn schedule_latency_is_off_by_default() {
    let recorder = Recorder::with_defaults();
    assert!(!recorder.config().track_schedule_latency);
    let events = Collect::default();
    recorder.add_sink(events.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .build()
        .expect("runtime");
    rt.block_on(async {
        tokio::spawn(async {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("join")
    });
    drop(rt);
    recorder.flush();
    let polls: Vec<_> = events
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| e.kind() == Some(EventKind::PollStart))
        .copied()
        .collect();
    assert!(polls.len() >= 4, "{polls:?}");
    assert!(
        polls.iter().all(|p| p.arg == taskline_core::NO_VALUE),
        "no schedule latency unless track_schedule_latency: {polls:?}"
    );
}

/// Park/unpark are recorded with or without `tokio_unstable`, and the
/// capabilities say what else is.
#[test]
fn park_unpark_recorded_and_capabilities_reported() {
    let caps = taskline_core::capabilities();
    assert!(caps.park_unpark);
    assert_eq!(caps.task_events, cfg!(tokio_unstable));
    let recorder = Recorder::with_defaults();
    let events = Collect::default();
    recorder.add_sink(events.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .taskline(&recorder)
        .build()
        .expect("runtime");
    rt.block_on(async {
        for _ in 0..3 {
            tokio::spawn(tokio::time::sleep(std::time::Duration::from_millis(2)))
                .await
                .expect("join");
        }
    });
    drop(rt);
    recorder.flush();
    let ev = events.0.lock().expect("lock").clone();
    let parks = ev
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Park))
        .count();
    let unparks = ev
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Unpark))
        .count();
    assert!(
        parks >= 1 && unparks >= 1,
        "{parks} parks, {unparks} unparks"
    );
    let spawns = ev
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn))
        .count();
    assert_eq!(spawns > 0, caps.task_events);
    let snap = recorder.snapshot();
    assert!(snap.workers.iter().any(|w| w.parks > 0), "{snap}");
    assert!(
        recorder
            .registry()
            .threads()
            .iter()
            .any(|t| t.worker.is_some())
    );
}
