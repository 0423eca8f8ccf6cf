//! OTLP pipeline helper: an [`SdkMeterProvider`] with a periodic reader and
//! the OTLP exporter, built so that a slow or unreachable backend costs
//! counted failed exports, never application time.
//!
//! - Collection and export run on the SDK's own `PeriodicReader` thread; the
//!   HTTP exporter uses a blocking client there, so the application's Tokio
//!   runtime is neither needed nor touched.
//! - Every export has a deadline ([`OtlpConfig::timeout`]), retries included.
//! - Failed exports are counted ([`OtlpGuard::export_stats`]); the first
//!   failure of an outage goes to [`OtlpConfig::on_export_error`] (default:
//!   one line on stderr). The SDK's own internal logs are compiled out, so
//!   nothing is written per export to stderr or to the app's subscriber.
//! - Only [`OtlpGuard::force_flush`] and shutdown wait for an export, each at
//!   most about one export timeout (shutdown: at most 5 s, the SDK's limit).

mod config;
mod reporting;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

pub use config::{ErrorHook, OtlpConfig, Transport};
pub use reporting::ExportStats;
use reporting::{ExportState, Reporting};

/// Why [`init_otlp`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration (or an `OTEL_*` variable) is invalid or asks for
    /// something this build does not have (e.g. gRPC without feature `grpc`).
    Config(String),
    /// The OTLP exporter could not be built.
    Exporter(opentelemetry_otlp::ExporterBuildError),
    /// Flush or shutdown of the SDK failed (e.g. the export timed out).
    Sdk(opentelemetry_sdk::error::OTelSdkError),
    /// The private Tokio runtime the gRPC exporter needs could not be built.
    Runtime(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid OTLP configuration: {m}"),
            Error::Exporter(e) => write!(f, "cannot build the OTLP exporter: {e}"),
            Error::Sdk(e) => write!(f, "OpenTelemetry SDK: {e}"),
            Error::Runtime(_) => f.write_str("cannot build the gRPC exporter's runtime"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Exporter(e) => Some(e),
            Error::Sdk(e) => Some(e),
            Error::Runtime(e) => Some(e),
        }
    }
}

/// Owns the meter provider built by [`init_otlp`]; shuts it down (final
/// export, bounded) when dropped.
pub struct OtlpGuard {
    provider: SdkMeterProvider,
    state: Arc<ExportState>,
}

impl fmt::Debug for OtlpGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpGuard")
            .field("stats", &self.state.stats())
            .finish()
    }
}

impl OtlpGuard {
    /// The meter provider (clone it to keep it beyond the guard).
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// The `taskline` meter of this provider.
    pub fn meter(&self) -> Meter {
        self.provider.meter(crate::METER_NAME)
    }

    /// Collects and exports now, waiting for the export (bounded by the
    /// export timeout). Call it from a plain thread or `spawn_blocking`.
    pub fn force_flush(&self) -> Result<(), Error> {
        self.provider.force_flush().map_err(Error::Sdk)
    }

    /// Export counters so far.
    pub fn export_stats(&self) -> ExportStats {
        self.state.stats()
    }

    /// Final export and shutdown (also done on drop).
    pub fn shutdown(self) -> Result<(), Error> {
        self.provider.shutdown().map_err(Error::Sdk)
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        // Already shut down (explicitly) -> an error we ignore.
        let _ = self.provider.shutdown();
    }
}

/// Builds the OTLP metrics pipeline described by `config` (see
/// [`OtlpConfig`] for the environment variables it honours).
///
/// ```no_run
/// let guard = taskline_otel::init_otlp(taskline_otel::OtlpConfig::new().with_global(true))?;
/// let rt = tokio::runtime::Runtime::new()?;
/// taskline_otel::RuntimeMetricsExporter::register(&guard.meter(), rt.handle().clone(), "main");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn init_otlp(config: OtlpConfig) -> Result<OtlpGuard, Error> {
    let temporality = config.temporality.unwrap_or(Temporality::Cumulative);
    let hook: ErrorHook = config.on_export_error.clone().unwrap_or_else(|| {
        Arc::new(|msg: &str| {
            eprintln!(
                "taskline-otel: OTLP metrics export failed: {msg} (further failures are counted, not printed)"
            )
        })
    });
    let state = ExportState::new(hook);

    let (inner, runtime) = match config.resolve_transport()? {
        Transport::HttpProtobuf => (http_exporter(&config, temporality)?, None),
        Transport::Grpc => grpc_exporter(&config, temporality)?,
    };
    let exporter = Reporting {
        inner,
        state: state.clone(),
        runtime,
    };
    let mut reader = PeriodicReader::builder(exporter);
    if let Some(interval) = config.interval {
        reader = reader.with_interval(interval);
    }

    let mut resource = Resource::builder();
    if let Some(name) = &config.service_name {
        resource = resource.with_service_name(name.clone());
    }
    resource = resource.with_attributes(config.resource_attributes.iter().cloned());

    let provider = SdkMeterProvider::builder()
        .with_resource(resource.build())
        .with_reader(reader.build())
        .build();
    if config.set_global {
        opentelemetry::global::set_meter_provider(provider.clone());
    }
    Ok(OtlpGuard { provider, state })
}

fn http_exporter(config: &OtlpConfig, temporality: Temporality) -> Result<MetricExporter, Error> {
    let mut b = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_temporality(temporality);
    if let Some(endpoint) = &config.endpoint {
        b = b.with_endpoint(endpoint.clone());
    }
    if let Some(timeout) = config.timeout {
        b = b.with_timeout(timeout);
    }
    if !config.headers.is_empty() {
        b = b.with_headers(config.headers.iter().cloned().collect::<HashMap<_, _>>());
    }
    b.build().map_err(Error::Exporter)
}

#[cfg(feature = "grpc")]
fn grpc_exporter(
    config: &OtlpConfig,
    temporality: Temporality,
) -> Result<(MetricExporter, Option<tokio::runtime::Runtime>), Error> {
    if !config.headers.is_empty() {
        return Err(Error::Config(
            "request headers for gRPC come from OTEL_EXPORTER_OTLP_HEADERS".into(),
        ));
    }
    // tonic needs a Tokio reactor; the exporter gets its own so it never
    // depends on (or blocks) the application's runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("taskline-otlp-grpc")
        .build()
        .map_err(Error::Runtime)?;
    let _enter = runtime.enter();
    let mut b = MetricExporter::builder()
        .with_tonic()
        .with_protocol(Protocol::Grpc)
        .with_temporality(temporality);
    if let Some(endpoint) = &config.endpoint {
        b = b.with_endpoint(endpoint.clone());
    }
    if let Some(timeout) = config.timeout {
        b = b.with_timeout(timeout);
    }
    let exporter = b.build().map_err(Error::Exporter)?;
    drop(_enter);
    Ok((exporter, Some(runtime)))
}

#[cfg(not(feature = "grpc"))]
fn grpc_exporter(
    _config: &OtlpConfig,
    _temporality: Temporality,
) -> Result<(MetricExporter, Option<tokio::runtime::Runtime>), Error> {
    Err(Error::Config(
        "OTLP/gRPC needs taskline-otel's cargo feature `grpc`".into(),
    ))
}
