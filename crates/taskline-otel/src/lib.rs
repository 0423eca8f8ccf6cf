//! taskline's OpenTelemetry metrics (docs filled in below).

pub mod otlp;
pub mod runtime;
pub mod task;

pub use otlp::{ExportStats, OtlpConfig, OtlpGuard, Transport, init_otlp};
pub use runtime::RuntimeMetricsExporter;
pub use task::{TaskMetricsConfig, TaskMetricsSink};

/// Name of the meter taskline's helpers take from a meter provider.
pub const METER_NAME: &str = "taskline";
