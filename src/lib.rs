//! # taskline
//!
//! See what your Tokio runtime did: which task ran on which worker, for how
//! long, who woke it, how long it waited to be polled and what it blocked on.
//!
//! This facade re-exports the workspace crates:
//! - [`layer`]: the task recorder (runtime hooks + `tracing` layer, aggregates, report).
//! - `trace` (feature `trace`): Perfetto trace writer/reader, flight recorder, Go-style analyses.
//! - `otel` (feature `otel`): OpenTelemetry runtime and task metrics over OTLP.

pub use taskline_layer as layer;
#[cfg(feature = "otel")]
pub use taskline_otel as otel;
#[cfg(feature = "trace")]
pub use taskline_trace as trace;
