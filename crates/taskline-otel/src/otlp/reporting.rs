//! An exporter wrapper that counts exports and reports an outage once.
//!
//! The SDK's `internal-logs` feature is off in this crate, so the SDK says
//! nothing about failed exports; this wrapper is the only voice, and it
//! speaks once per outage instead of once per export.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

use super::config::ErrorHook;

/// Export counters of an [`OtlpGuard`](super::OtlpGuard).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Exports that succeeded.
    pub succeeded: u64,
    /// Exports that failed (the data of a failed cumulative export is not
    /// lost: the next successful export carries the running totals).
    pub failed: u64,
    /// Outages reported through the error hook (one per run of failures).
    pub reported: u64,
    /// The latest export error.
    pub last_error: Option<String>,
}

/// Shared between the exporter (on the SDK's thread) and the guard.
pub(crate) struct ExportState {
    succeeded: AtomicU64,
    failed: AtomicU64,
    reported: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    hook: ErrorHook,
}

impl ExportState {
    pub(crate) fn new(hook: ErrorHook) -> Arc<Self> {
        Arc::new(ExportState {
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            hook,
        })
    }

    fn record(&self, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.succeeded.fetch_add(1, Ordering::Relaxed);
                self.failing.store(false, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let msg = e.to_string();
                *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
                if !self.failing.swap(true, Ordering::Relaxed) {
                    self.reported.fetch_add(1, Ordering::Relaxed);
                    let hook = &self.hook;
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&msg)));
                }
            }
        }
    }

    pub(crate) fn stats(&self) -> ExportStats {
        ExportStats {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            reported: self.reported.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Wraps the OTLP exporter: counts results, reports the first failure of an
/// outage, and (for gRPC) drives the export on a private Tokio runtime.
pub(crate) struct Reporting<E> {
    pub(crate) inner: E,
    pub(crate) state: Arc<ExportState>,
    /// The private runtime tonic needs (gRPC only).
    pub(crate) runtime: Option<tokio::runtime::Runtime>,
}

impl<E> Drop for Reporting<E> {
    fn drop(&mut self) {
        // Dropping a runtime from async context panics; this never does.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Reporting<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = match &self.runtime {
            Some(rt) => rt.block_on(self.inner.export(metrics)),
            None => self.inner.export(metrics).await,
        };
        self.state.record(&result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let _enter = self.runtime.as_ref().map(|rt| rt.enter());
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}
