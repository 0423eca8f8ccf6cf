//! # taskline
//!
//! See what your Tokio runtime did: which task ran on which worker, for how
//! long, who woke it, how long it waited to be polled and what it blocked on.
//!
//! ## One front door
//!
//! [`Taskline::builder`] starts everything, [`Taskline::build_runtime`]
//! instruments your runtime, and the guard finishes every output when it is
//! shut down or dropped:
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! # let dir = std::env::temp_dir().join(format!("taskline-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("app.pftrace");
//! let taskline = taskline::Taskline::builder()
//!     // wakes, task names, blocking sections: taskline's subscriber in
//!     // front of your own tracing stack, installed as the global default
//!     .tracing(tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()))
//!     .trace_file(&path) // a Perfetto trace, finished on drop
//!     .start()?;
//! let rt = taskline.build_runtime(
//!     tokio::runtime::Builder::new_multi_thread().enable_all(), // your builder
//!     "main",
//! )?;
//! rt.block_on(async {
//!     tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap();
//! });
//! drop(rt);
//! println!("{}", taskline.report());
//! taskline.shutdown()?; // or just drop it
//! # let trace = taskline::trace::read_trace(&std::fs::read(&path).unwrap()).unwrap();
//! # assert!(!trace.unfinished);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The builder also takes a flight recorder
//! ([`TasklineBuilder::flight_recorder`]) and OTLP export
//! ([`TasklineBuilder::otlp`]: task metrics, and runtime metrics of every
//! runtime `build_runtime` built). Without `.tracing(..)` only the runtime
//! hooks record (spawns, polls, terminations, parks: the cheap source).
//! [`Taskline::subscriber`] gives the subscriber to install yourself (e.g.
//! per thread) and [`Taskline::layer`] a plain `tracing_subscriber` layer
//! for stacks that need Tokio's spans too, at the registry's price.
//!
//! Every source feeds the guard's one recorder and a poll is never counted
//! twice. A runtime instrumented for one recorder while the global
//! subscriber feeds another is reported once on stderr and by
//! [`Taskline::mixing`] / [`Taskline::report`].
//!
//! ## Crates
//! - `taskline-core` (re-exported at this crate's root): the task recorder
//!   (runtime hooks, `tracing` subscriber and layer, aggregates, report).
//! - `trace` (feature `trace`): Perfetto trace writer/reader, flight recorder, Go-style analyses.
//! - `otel` (feature `otel`): OpenTelemetry runtime and task metrics over OTLP.
//! - `profile` (feature `profile`): CPU profiles labelled by task, spawn site and worker (pprof; Linux).
//! - [`task_dump`] (feature `taskdump`, off by default): where every task is
//!   parked right now, from Tokio's `Handle::dump`.
//! - [`heap`] (feature `heap`, off by default): jemalloc heap profiles in
//!   pprof format.

pub mod heap;
#[cfg(feature = "trace")]
pub mod on_demand;
mod setup;
pub mod task_dump;
#[cfg(feature = "trace")]
pub mod testing;
mod world;

pub use setup::{DEFAULT_SHUTDOWN_TIMEOUT, SetupError, Taskline, TasklineBuilder};
pub use task_dump::{TASK_DUMPS_SUPPORTED, TaskDumpError, task_dump};
pub use world::Mixing;

/// The recorder's types (events, recorder, sources, aggregates), one path
/// each: `taskline::Recorder`, `taskline::Snapshot`, ...
pub use taskline_core::*;
#[cfg(feature = "otel")]
pub use taskline_otel as otel;
#[cfg(feature = "profile")]
pub use taskline_profile as profile;
#[cfg(feature = "trace")]
pub use taskline_trace as trace;

/// Spawns `future` like `tokio::spawn`, recorded as a task by the running
/// [`Taskline`] (the most recently started guard that is not shut down),
/// through taskline's wrapper: spawn site, polls, wakes, scheduling delay
/// and completion, on stable Tokio too (see the README's "Stable Tokio").
/// Without a running guard it is plain `tokio::spawn`.
///
/// Each call looks the guard up (one uncontended lock); on a hot spawn
/// path, keep a clone of [`Taskline::recorder`] and call
/// [`Recorder::spawn`] on it instead.
///
/// ```
/// let taskline = taskline::Taskline::builder().start().unwrap();
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async { taskline::spawn(async { tokio::task::yield_now().await }).await.unwrap() });
/// let snapshot = taskline.snapshot();
/// assert_eq!((snapshot.spawned, snapshot.polls), (1, 2));
/// taskline.shutdown().unwrap();
/// ```
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match world::current() {
        Some(recorder) => recorder.spawn(future),
        None => tokio::spawn(future),
    }
}

/// Wraps `future` so that it is recorded by the running [`Taskline`] as
/// one instance of the region `name`, like a user region of Go's execution
/// tracer (see the README's "User regions"): count, duration from its first
/// poll to its completion or drop, p99, busy (its polls) and wait time, and
/// the spawn site of the task it runs in. For a request handler or any
/// future inside a task; the task's polls are not counted twice. Works on
/// stable Tokio and without a `tracing` subscriber. Without a running guard
/// it records nothing and just polls `future`.
///
/// Each call looks the guard up (one uncontended lock); on a hot path keep
/// a clone of [`Taskline::recorder`] and call [`Recorder::region`] on it.
///
/// ```
/// let taskline = taskline::Taskline::builder().start().unwrap();
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// rt.block_on(async {
///     taskline::region("checkout", async {
///         tokio::time::sleep(std::time::Duration::from_millis(2)).await;
///     })
///     .await;
/// });
/// let checkout = &taskline.snapshot().regions[0];
/// assert_eq!((checkout.name.as_str(), checkout.count), ("checkout", 1));
/// assert!(checkout.total_ns >= 2_000_000 && checkout.wait_ns > 0);
/// taskline.shutdown().unwrap();
/// ```
pub fn region<F: std::future::Future>(name: &str, future: F) -> RegionFuture<F> {
    match world::current() {
        Some(recorder) => recorder.region(name, future),
        None => RegionFuture::unrecorded(future),
    }
}
