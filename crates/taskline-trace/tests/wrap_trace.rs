//! A task spawned with `Recorder::spawn_named` while the runtime hooks and
//! the tracing layer also record: the trace file keeps the caller's spawn
//! site and the given name, and its polls once each (read back and
//! replayed into an `Aggregator`, like `taskline report` does).
#![cfg(tokio_unstable)]

use std::cell::RefCell;

use taskline_core::{
    Aggregator, EventKind, Recorder, RecorderConfig, RuntimeBuilderExt, TasklineLayer,
};
use taskline_trace::{PerfettoWriter, read_trace};
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::prelude::*;

thread_local! {
    static GUARD: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

#[test]
fn a_named_wrapped_task_keeps_its_site_and_name_in_the_trace() {
    const K: usize = 3;
    let rec = Recorder::with_defaults();
    let path = std::env::temp_dir().join(format!(
        "taskline-wrap-trace-{}.pftrace",
        std::process::id()
    ));
    let sink = PerfettoWriter::new(std::fs::File::create(&path).expect("create trace"));
    let handle = sink.handle();
    rec.add_sink(sink);
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(&rec)));
    let _g = tracing::dispatcher::set_default(&dispatch);
    let d = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .taskline(&rec)
        .on_thread_start(move || {
            let g = tracing::dispatcher::set_default(&d);
            GUARD.with(|slot| *slot.borrow_mut() = Some(g));
        })
        .on_thread_stop(|| GUARD.with(|slot| drop(slot.borrow_mut().take())))
        .build()
        .expect("runtime");
    let line = line!() + 2;
    rt.block_on(async {
        rec.spawn_named("named-handler", async {
            for _ in 0..K {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("task");
    });
    drop(rt);
    rec.flush();
    handle
        .finish_with_registry(rec.registry())
        .expect("finish trace");
    let bytes = std::fs::read(&path).expect("read trace");
    let _ = std::fs::remove_file(&path);
    let back = read_trace(&bytes).expect("read_trace");

    let site = back
        .registry
        .sites()
        .into_iter()
        .position(|s| s.line == line && s.file.ends_with("wrap_trace.rs"))
        .expect("the caller's site is in the trace") as u32;
    let spawns: Vec<_> = back
        .events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::Spawn) && e.aux == site)
        .collect();
    assert_eq!(spawns.len(), 1, "one Spawn, at the caller's site");
    let task = spawns[0].task;
    let polls = back
        .events
        .iter()
        .filter(|e| e.kind() == Some(EventKind::PollStart) && e.task == task)
        .count();
    assert_eq!(polls, K + 1);

    let mut agg = Aggregator::new(&RecorderConfig::default());
    agg.feed(&back.events);
    let snap = agg.snapshot(&back.registry);
    let s = snap
        .sites
        .iter()
        .find(|s| s.id == site)
        .expect("the site in the replayed report");
    assert_eq!(s.name, "named-handler");
    assert_eq!((s.spawned, s.terminated, s.polls), (1, 1, (K + 1) as u64));
    rec.shutdown();
}
