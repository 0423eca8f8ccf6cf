//! The event sources that feed a [`Recorder`](crate::Recorder):
//! - [`hooks`]: Tokio's runtime hooks, the cheap source of spawns, polls and
//!   terminations, installed on a `tokio::runtime::Builder`;
//! - [`subscriber`] and [`layer`]: Tokio's own `tracing` instrumentation, for
//!   wakes (who woke whom), task names, blocking sections and resource waits;
//! - [`wrap`]: a spawned future instrumented by taskline itself
//!   ([`Recorder::spawn`](crate::Recorder::spawn)), the source on stable Tokio;
//! - [`instrument`]: a future inside a task recorded as a region instance
//!   ([`Recorder::region`](crate::Recorder::region)), through span events;
//! - [`context`]: the per-thread "which task is being polled" state they share,
//!   so a poll seen by both is recorded once.

pub(crate) mod context;
pub(crate) mod hooks;
mod instrument;
pub(crate) mod intern_cache;
pub(crate) mod layer;
pub(crate) mod subscriber;
pub(crate) mod task_id;
mod wrap;

pub use context::set_current_task;
pub use context::{SampleState, SampledSite, sample_state};
pub use hooks::{Capabilities, RuntimeBuilderExt, STABLE_WARNING, capabilities, instrument};
pub use instrument::RegionFuture;
pub use layer::{TaskSpan, TasklineLayer, block_in_place};
pub use subscriber::{SubscriberError, TasklineSubscriber, after_global_install};
pub use task_id::task_id_u64;
pub use wrap::Instrumented;
