//! [`OtlpConfig`]: what [`init_otlp`](super::init_otlp) builds, with the
//! standard `OTEL_*` environment variables as fallbacks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::Temporality;

/// OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// OTLP/HTTP with protobuf bodies (the default), sent by a blocking HTTP
    /// client on the SDK's exporter thread: no application runtime needed.
    HttpProtobuf,
    /// OTLP/gRPC (tonic), driven by a private single-thread Tokio runtime.
    /// Needs the cargo feature `grpc`.
    Grpc,
}

/// Called once per export outage (the first failure after start or after a
/// success) with a description of the error. Later failures are only counted
/// (see [`ExportStats`](super::ExportStats)).
pub type ErrorHook = Arc<dyn Fn(&str) + Send + Sync>;

/// Configuration of [`init_otlp`](super::init_otlp). Every `None` falls back
/// to the environment, then to the OpenTelemetry default:
///
/// | field | environment (first set wins) | default |
/// |---|---|---|
/// | `endpoint` | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as is), `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/metrics` for HTTP) | `http://localhost:4318/v1/metrics` (HTTP), `http://localhost:4317` (gRPC) |
/// | `transport` | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or `grpc`) | HTTP/protobuf |
/// | `timeout` | `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | 10 s |
/// | `headers` (added to) | `OTEL_EXPORTER_OTLP_METRICS_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS` | none |
/// | `interval` | `OTEL_METRIC_EXPORT_INTERVAL` (ms) | 60 s |
/// | `service_name` | `OTEL_SERVICE_NAME`, `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `unknown_service` |
/// | `resource_attributes` (added to) | `OTEL_RESOURCE_ATTRIBUTES` | none |
///
/// The SDK itself reads these variables; this crate only decides the
/// transport (so that it can pick the right exporter) and passes explicit
/// values through.
#[derive(Clone, Default)]
pub struct OtlpConfig {
    /// Full metrics endpoint URL (e.g. `http://127.0.0.1:8428/opentelemetry/v1/metrics`).
    pub endpoint: Option<String>,
    /// OTLP transport.
    pub transport: Option<Transport>,
    /// Deadline of one export, retries included. Exports run on the SDK's
    /// exporter thread, so this bounds staleness, never the application.
    pub timeout: Option<Duration>,
    /// Time between two collections + exports.
    pub interval: Option<Duration>,
    /// Extra request headers (HTTP only; gRPC takes them from the environment).
    pub headers: Vec<(String, String)>,
    /// `service.name` of the resource.
    pub service_name: Option<String>,
    /// Extra resource attributes.
    pub resource_attributes: Vec<KeyValue>,
    /// Aggregation temporality; `None` = cumulative (Prometheus-compatible
    /// backends reject delta).
    pub temporality: Option<Temporality>,
    /// Also install the provider as the global meter provider.
    pub set_global: bool,
    /// Where the first error of an export outage goes; `None` = one line on stderr.
    pub on_export_error: Option<ErrorHook>,
}

impl OtlpConfig {
    /// Defaults everywhere (environment, then OpenTelemetry defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`transport`](Self::transport).
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets [`interval`](Self::interval).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Adds a request header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`service_name`](Self::service_name).
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Adds a resource attribute.
    pub fn with_resource_attribute(mut self, kv: KeyValue) -> Self {
        self.resource_attributes.push(kv);
        self
    }

    /// Sets [`temporality`](Self::temporality).
    pub fn with_temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = Some(temporality);
        self
    }

    /// Sets [`set_global`](Self::set_global).
    pub fn with_global(mut self, set_global: bool) -> Self {
        self.set_global = set_global;
        self
    }

    /// Sets [`on_export_error`](Self::on_export_error).
    pub fn on_export_error(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_export_error = Some(Arc::new(hook));
        self
    }

    /// The transport: explicit, else from the environment, else HTTP/protobuf.
    pub(crate) fn resolve_transport(&self) -> Result<Transport, super::Error> {
        if let Some(t) = self.transport {
            return Ok(t);
        }
        for var in [
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Ok(v) = std::env::var(var) {
                return match v.trim() {
                    "http/protobuf" => Ok(Transport::HttpProtobuf),
                    "grpc" => Ok(Transport::Grpc),
                    other => Err(super::Error::Config(format!(
                        "{var}={other}: supported protocols are http/protobuf and grpc"
                    ))),
                };
            }
        }
        Ok(Transport::HttpProtobuf)
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("transport", &self.transport)
            .field("timeout", &self.timeout)
            .field("interval", &self.interval)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("temporality", &self.temporality)
            .field("set_global", &self.set_global)
            .field("on_export_error", &self.on_export_error.is_some())
            .finish()
    }
}
