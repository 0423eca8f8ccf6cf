//! The list of runtime instruments: one observable instrument per
//! `RuntimeMetrics` value, registered with a callback reading it.

use std::sync::Arc;

use opentelemetry::metrics::Meter;
use tokio::runtime::RuntimeMetrics;

use super::Shared;

type Global<T> = fn(&RuntimeMetrics) -> T;
type PerWorker<T> = fn(&RuntimeMetrics, usize) -> T;

/// Registers every instrument this build of Tokio offers for `rt`.
pub(super) fn register(meter: &Meter, rt: &Arc<Shared>) {
    stable(meter, rt);
    #[cfg(tokio_unstable)]
    unstable(meter, rt);
}

fn stable(meter: &Meter, rt: &Arc<Shared>) {
    gauge(
        meter,
        rt,
        "tokio.worker.count",
        "{worker}",
        "Worker threads of the runtime.",
        |m| m.num_workers() as u64,
    );
    gauge(
        meter,
        rt,
        "tokio.task.alive.count",
        "{task}",
        "Tasks alive in the runtime (spawned, not yet dropped).",
        |m| m.num_alive_tasks() as u64,
    );
    gauge(
        meter,
        rt,
        "tokio.queue.global.depth",
        "{task}",
        "Tasks waiting in the runtime's global (injection) queue.",
        |m| m.global_queue_depth() as u64,
    );
    worker_seconds_counter(
        meter,
        rt,
        "tokio.worker.busy.time",
        "Time the worker spent polling tasks (busy, not parked).",
        |m, w| m.worker_total_busy_duration(w).as_secs_f64(),
    );
    let r = rt.clone();
    meter
        .f64_observable_gauge("tokio.worker.utilization")
        .with_unit("1")
        .with_description(
            "Share of wall time the worker was busy between the two latest collections (0..1).",
        )
        .with_callback(move |o| {
            r.with(|m| r.utilization(m, |w, u| o.observe(u, &r.worker_attrs()[w])));
        })
        .build();
    worker_counter(
        meter,
        rt,
        "tokio.worker.parks",
        "{park}",
        "Times the worker parked (went idle).",
        |m, w| m.worker_park_count(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.park_unparks",
        "{transition}",
        "Times the worker parked or unparked.",
        |m, w| m.worker_park_unpark_count(w),
    );
}

#[cfg(tokio_unstable)]
fn unstable(meter: &Meter, rt: &Arc<Shared>) {
    // Per worker.
    worker_gauge(
        meter,
        rt,
        "tokio.worker.queue.depth",
        "{task}",
        "Tasks in the worker's local run queue.",
        |m, w| m.worker_local_queue_depth(w) as u64,
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.polls",
        "{poll}",
        "Task polls performed by the worker.",
        |m, w| m.worker_poll_count(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.steals",
        "{task}",
        "Tasks the worker stole from other workers.",
        |m, w| m.worker_steal_count(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.steal_operations",
        "{operation}",
        "Steal operations by the worker (each may move several tasks).",
        |m, w| m.worker_steal_operations(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.noops",
        "{unpark}",
        "Times the worker unparked and found no work.",
        |m, w| m.worker_noop_count(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.overflows",
        "{overflow}",
        "Times the worker's local queue overflowed into the global queue.",
        |m, w| m.worker_overflow_count(w),
    );
    worker_counter(
        meter,
        rt,
        "tokio.worker.local_schedules",
        "{task}",
        "Tasks scheduled from within the worker onto its local queue.",
        |m, w| m.worker_local_schedule_count(w),
    );
    let r = rt.clone();
    meter
        .f64_observable_gauge("tokio.worker.mean_poll.duration")
        .with_unit("s")
        .with_description("Exponentially weighted moving average of the worker's poll duration (multi-thread runtime only).")
        .with_callback(move |o| {
            r.with(|m| {
                for (w, attrs) in r.worker_attrs().iter().enumerate() {
                    o.observe(m.worker_mean_poll_time(w).as_secs_f64(), attrs);
                }
            });
        })
        .build();

    // Runtime wide.
    counter(
        meter,
        rt,
        "tokio.runtime.remote_schedules",
        "{task}",
        "Tasks scheduled from outside the runtime's workers.",
        |m| m.remote_schedule_count(),
    );
    counter(
        meter,
        rt,
        "tokio.runtime.budget_forced_yields",
        "{yield}",
        "Times a task was forced to yield after exhausting its coop budget.",
        |m| m.budget_forced_yield_count(),
    );
    counter(
        meter,
        rt,
        "tokio.runtime.tasks.spawned",
        "{task}",
        "Tasks spawned on the runtime since it was created.",
        |m| m.spawned_tasks_count(),
    );
    gauge(
        meter,
        rt,
        "tokio.blocking.thread.count",
        "{thread}",
        "Threads of the blocking pool.",
        |m| m.num_blocking_threads() as u64,
    );
    gauge(
        meter,
        rt,
        "tokio.blocking.thread.idle.count",
        "{thread}",
        "Idle threads of the blocking pool.",
        |m| m.num_idle_blocking_threads() as u64,
    );
    gauge(
        meter,
        rt,
        "tokio.blocking.queue.depth",
        "{task}",
        "Tasks waiting for a blocking-pool thread.",
        |m| m.blocking_queue_depth() as u64,
    );
    counter(
        meter,
        rt,
        "tokio.io.fd.registered",
        "{fd}",
        "File descriptors registered with the I/O driver (0 without one).",
        |m| m.io_driver_fd_registered_count(),
    );
    counter(
        meter,
        rt,
        "tokio.io.fd.deregistered",
        "{fd}",
        "File descriptors deregistered from the I/O driver (0 without one).",
        |m| m.io_driver_fd_deregistered_count(),
    );
    counter(
        meter,
        rt,
        "tokio.io.ready_events",
        "{event}",
        "Readiness events processed by the I/O driver (0 without one).",
        |m| m.io_driver_ready_count(),
    );

    super::buckets::register(meter, rt);
}

fn gauge(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    f: Global<u64>,
) {
    let r = rt.clone();
    meter
        .u64_observable_gauge(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| r.with(|m| o.observe(f(m), r.attrs())))
        .build();
}

#[cfg(tokio_unstable)]
fn counter(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    f: Global<u64>,
) {
    let r = rt.clone();
    meter
        .u64_observable_counter(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| r.with(|m| o.observe(f(m), r.attrs())))
        .build();
}

#[cfg(tokio_unstable)]
fn worker_gauge(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    f: PerWorker<u64>,
) {
    let r = rt.clone();
    meter
        .u64_observable_gauge(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| {
            r.with(|m| {
                for (w, attrs) in r.worker_attrs().iter().enumerate() {
                    o.observe(f(m, w), attrs);
                }
            })
        })
        .build();
}

fn worker_counter(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    unit: &'static str,
    desc: &'static str,
    f: PerWorker<u64>,
) {
    let r = rt.clone();
    meter
        .u64_observable_counter(name)
        .with_unit(unit)
        .with_description(desc)
        .with_callback(move |o| {
            r.with(|m| {
                for (w, attrs) in r.worker_attrs().iter().enumerate() {
                    o.observe(f(m, w), attrs);
                }
            })
        })
        .build();
}

fn worker_seconds_counter(
    meter: &Meter,
    rt: &Arc<Shared>,
    name: &'static str,
    desc: &'static str,
    f: PerWorker<f64>,
) {
    let r = rt.clone();
    meter
        .f64_observable_counter(name)
        .with_unit("s")
        .with_description(desc)
        .with_callback(move |o| {
            r.with(|m| {
                for (w, attrs) in r.worker_attrs().iter().enumerate() {
                    o.observe(f(m, w), attrs);
                }
            })
        })
        .build();
}
