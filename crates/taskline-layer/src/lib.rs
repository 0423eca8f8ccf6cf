//! taskline's task recorder.
//!
//! Records what a Tokio runtime did (task spawn, poll start/end, wake, idle,
//! blocking sections, termination, worker park/unpark) from two sources that
//! feed one [`Recorder`](recorder::Recorder):
//! - runtime hooks ([`hooks`]), the cheap source, and
//! - a [`tracing_subscriber::Layer`] ([`layer::TasklineLayer`]), the composable
//!   one, which also sees wakes, resources and task names.
//!
//! See `docs/ARCHITECTURE.md` in the repository for the contract between the
//! modules.

pub mod event;
pub mod layer;
pub mod aggregate;
pub mod clock;
pub mod config;
#[doc(hidden)]
pub mod context;
pub mod hooks;
pub mod recorder;
pub mod registry;
pub mod report;
mod ring;
pub mod sink;
pub mod task_id;

pub use aggregate::{Aggregator, Snapshot};
pub use config::{ConfigError, RecorderConfig};
pub use hooks::{RuntimeBuilderExt, capabilities, instrument};
pub use event::{Event, EventKind, TaskKind};
pub use recorder::{Recorder, RecorderStats};
pub use registry::{Registry, Site, ThreadInfo};
pub use sink::Sink;
