//! taskline's task recorder.
//!
//! Records what a Tokio runtime did (task spawn, poll start/end, wake, idle,
//! blocking sections, termination, worker park/unpark) from sources that
//! feed one [`Recorder`]:
//! - runtime hooks ([`hooks`]), the cheap source of spawns, polls and
//!   terminations;
//! - Tokio's `tracing` instrumentation, for wakes, task names, blocking
//!   sections and resource waits, through either
//!   [`TasklineSubscriber`] (recommended: in
//!   front of your subscriber stack, without the registry's per-span cost) or
//!   the plain [`tracing_subscriber::Layer`] [`layer::TasklineLayer`].
//!
//! Events go into lock-free per-thread rings; a background consumer thread
//! merges them by timestamp and hands them to [`Sink`]s (the built-in
//! [`Aggregator`], trace writers, ...). Memory is bounded by
//! [`RecorderConfig`]; when a consumer falls behind, events are dropped and
//! counted, never blocking the application.
//!
//! ```
//! use taskline_layer::{Recorder, RuntimeBuilderExt};
//!
//! let recorder = Recorder::with_defaults();
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(2)
//!     .taskline(&recorder)
//!     .build()
//!     .unwrap();
//! rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
//! drop(rt);
//! let snapshot = recorder.snapshot();
//! # #[cfg(tokio_unstable)]
//! assert_eq!(snapshot.spawned, 1);
//! println!("{snapshot}");
//! ```
//!
//! See `docs/ARCHITECTURE.md` in the repository for the contract between the
//! modules.

pub mod aggregate;
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod context;
pub mod event;
pub mod hooks;
pub mod layer;
mod merge;
pub mod recorder;
pub mod registry;
pub mod report;
mod ring;
pub mod sink;
pub mod subscriber;
pub mod task_id;
mod task_table;
#[cfg(test)]
mod test_rng;
mod unpolled;

pub use aggregate::{Aggregator, Snapshot};
pub use config::{ConfigError, RecorderConfig};
pub use event::{Event, EventKind, TaskKind};
pub use hooks::{Capabilities, RuntimeBuilderExt, capabilities, instrument};
pub use layer::TasklineLayer;
pub use recorder::{Recorder, RecorderStats};
pub use registry::{Registry, Site, ThreadInfo};
pub use sink::Sink;
pub use subscriber::{SubscriberError, TasklineSubscriber};
