//! Runtime metrics: observable instruments that read a Tokio runtime's
//! [`RuntimeMetrics`] when (and only when) the SDK collects.
//!
//! Nothing here runs on the application's threads: callbacks run on the
//! thread that collects (the SDK's periodic-reader thread, or whoever calls
//! `force_flush`). Every read is a relaxed atomic load inside Tokio.

#[cfg(tokio_unstable)]
mod buckets;
mod instruments;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use tokio::runtime::{Handle, RuntimeMetrics};

/// Attribute naming the runtime an instrument's data point belongs to.
pub const RUNTIME_NAME: &str = "tokio.runtime.name";
/// Attribute naming the worker (Tokio's worker index, `0..num_workers`).
pub const WORKER_INDEX: &str = "tokio.worker.index";
/// Attribute holding a histogram bucket's upper bound in seconds (`+Inf` for
/// the last bucket), Prometheus' `le` convention.
pub const BUCKET_LE: &str = "le";

/// Exports one Tokio runtime's [`RuntimeMetrics`] as OpenTelemetry observable
/// instruments (see the crate docs for the table of instruments).
///
/// Registering the same meter for several runtimes is supported: every data
/// point carries [`RUNTIME_NAME`]. Give each runtime a distinct name.
///
/// ```
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
/// let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().build();
/// let meter = opentelemetry::metrics::MeterProvider::meter(&provider, "taskline");
/// let exporter = taskline_otel::RuntimeMetricsExporter::register(&meter, rt.handle().clone(), "main");
/// assert_eq!(exporter.runtime_name(), "main");
/// ```
#[derive(Clone, Debug)]
pub struct RuntimeMetricsExporter {
    shared: Arc<Shared>,
}

impl RuntimeMetricsExporter {
    /// Registers every runtime instrument on `meter` for the runtime behind
    /// `handle`, tagging data points with `tokio.runtime.name = runtime_name`.
    ///
    /// The instruments live as long as the meter provider; call
    /// [`unregister`](Self::unregister) to stop reporting this runtime (e.g.
    /// before dropping it) and release the handle.
    pub fn register(meter: &Meter, handle: Handle, runtime_name: impl Into<String>) -> Self {
        let shared = Arc::new(Shared::new(handle.metrics(), runtime_name.into()));
        instruments::register(meter, &shared);
        RuntimeMetricsExporter { shared }
    }

    /// [`register`](Self::register) on the global meter provider's meter
    /// `taskline` (see [`opentelemetry::global::meter_provider`]).
    pub fn register_global(handle: Handle, runtime_name: impl Into<String>) -> Self {
        let meter = opentelemetry::global::meter(crate::METER_NAME);
        Self::register(&meter, handle, runtime_name)
    }

    /// The value of the `tokio.runtime.name` attribute.
    pub fn runtime_name(&self) -> &str {
        &self.shared.name
    }

    /// Stops reporting this runtime: its callbacks observe nothing from now
    /// on and the runtime handle is released. Idempotent.
    pub fn unregister(&self) {
        *lock(&self.shared.metrics) = None;
    }
}

/// What every callback of one runtime shares.
#[derive(Debug)]
pub(crate) struct Shared {
    name: String,
    /// `None` after [`RuntimeMetricsExporter::unregister`].
    metrics: Mutex<Option<RuntimeMetrics>>,
    /// `[tokio.runtime.name]`.
    attrs: [KeyValue; 1],
    /// `[tokio.runtime.name, tokio.worker.index]` per worker.
    worker_attrs: Vec<[KeyValue; 2]>,
    /// Busy-time state for the utilization gauge.
    utilization: Mutex<Utilization>,
}

#[derive(Debug)]
struct Utilization {
    at: Instant,
    busy: Vec<Duration>,
}

impl Shared {
    fn new(metrics: RuntimeMetrics, name: String) -> Self {
        let workers = metrics.num_workers();
        let attrs = [KeyValue::new(RUNTIME_NAME, name.clone())];
        let worker_attrs = (0..workers)
            .map(|w| {
                [
                    KeyValue::new(RUNTIME_NAME, name.clone()),
                    KeyValue::new(WORKER_INDEX, w as i64),
                ]
            })
            .collect();
        let busy = (0..workers)
            .map(|w| metrics.worker_total_busy_duration(w))
            .collect();
        Shared {
            name,
            metrics: Mutex::new(Some(metrics)),
            attrs,
            worker_attrs,
            utilization: Mutex::new(Utilization {
                at: Instant::now(),
                busy,
            }),
        }
    }

    /// Runs `f` with the runtime's metrics unless unregistered. A panic in `f`
    /// (a Tokio API contract we misread) is swallowed: it must never reach
    /// the collecting thread, which may be the application's.
    pub(crate) fn with(&self, f: impl FnOnce(&RuntimeMetrics)) {
        let guard = lock(&self.metrics);
        if let Some(m) = guard.as_ref() {
            let _ = catch_unwind(AssertUnwindSafe(|| f(m)));
        }
    }

    /// Attributes of runtime-wide data points.
    pub(crate) fn attrs(&self) -> &[KeyValue] {
        &self.attrs
    }

    /// Attributes of worker `w`'s data points.
    pub(crate) fn worker_attrs(&self) -> &[[KeyValue; 2]] {
        &self.worker_attrs
    }

    /// Per-worker utilization (busy delta / wall delta, in `0..=1`) since the
    /// previous call, or since registration for the first call.
    pub(crate) fn utilization(&self, m: &RuntimeMetrics, mut emit: impl FnMut(usize, f64)) {
        let mut state = lock(&self.utilization);
        let now = Instant::now();
        let wall = now.duration_since(state.at).as_secs_f64();
        if wall <= 0.0 {
            return;
        }
        state.at = now;
        for (w, prev) in state.busy.iter_mut().enumerate() {
            let busy = m.worker_total_busy_duration(w);
            let delta = busy.saturating_sub(*prev).as_secs_f64();
            *prev = busy;
            emit(w, (delta / wall).clamp(0.0, 1.0));
        }
    }
}

/// Locks ignoring poison: the protected state stays valid after a panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
