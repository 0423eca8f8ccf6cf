//! [`Taskline`]: everything taskline can do for a service, started in one
//! call and shut down cleanly.

#[cfg(feature = "trace")]
use std::path::PathBuf;

use taskline_core::{
    ConfigError, Recorder, RecorderConfig, SubscriberError, TasklineLayer, TasklineSubscriber,
};

#[cfg(feature = "otel")]
use taskline_otel::{
    OtlpConfig, OtlpGuard, RuntimeMetricsExporter, TaskMetricsConfig, TaskMetricsSink,
};
#[cfg(feature = "trace")]
use taskline_trace::{
    PerfettoWriter, TraceHandle,
    flight::{FlightConfig, FlightRecorder, FlightRecorderHandle},
};

/// Builder for [`Taskline`]; see [`Taskline::builder`].
#[derive(Default)]
#[must_use = "call .start() to start recording"]
pub struct TasklineBuilder {
    config: RecorderConfig,
    #[cfg(feature = "trace")]
    trace_file: Option<PathBuf>,
    #[cfg(feature = "trace")]
    flight: Option<FlightConfig>,
    #[cfg(feature = "trace")]
    dump_on_panic: bool,
    #[cfg(feature = "otel")]
    otlp: Option<(OtlpConfig, TaskMetricsConfig)>,
}

impl TasklineBuilder {
    /// The recorder's configuration (buffer sizes, slow-poll threshold, ...).
    pub fn recorder_config(mut self, config: RecorderConfig) -> Self {
        self.config = config;
        self
    }

    /// Stream a Perfetto trace of everything recorded to `path` (finished by
    /// [`Taskline::shutdown`]).
    #[cfg(feature = "trace")]
    pub fn trace_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trace_file = Some(path.into());
        self
    }

    /// Keep a flight recorder: the last seconds in memory, dumped as a
    /// Perfetto trace on demand and automatically when a poll blocks its
    /// worker for longer than `config.slow_poll_threshold`.
    #[cfg(feature = "trace")]
    pub fn flight_recorder(mut self, config: FlightConfig) -> Self {
        self.flight = Some(config);
        self
    }

    /// With a [`flight_recorder`](Self::flight_recorder): on a panic, dump
    /// its window into its `dump_dir` before the panic goes on (the
    /// previous panic hook still runs after). Opt-in; see
    /// [`taskline_trace::flight::dump_on_panic`] for the details.
    #[cfg(feature = "trace")]
    pub fn dump_on_panic(mut self) -> Self {
        self.dump_on_panic = true;
        self
    }

    /// Export task metrics (and, with [`Taskline::watch_runtime`], runtime
    /// metrics) over OTLP. `OtlpConfig::new()` honours the standard
    /// `OTEL_EXPORTER_OTLP_*` variables.
    #[cfg(feature = "otel")]
    pub fn otlp(mut self, config: OtlpConfig) -> Self {
        self.otlp = Some((config, TaskMetricsConfig::default()));
        self
    }

    /// Like [`otlp`](Self::otlp), with a task-metrics configuration.
    #[cfg(feature = "otel")]
    pub fn otlp_with(mut self, config: OtlpConfig, tasks: TaskMetricsConfig) -> Self {
        self.otlp = Some((config, tasks));
        self
    }

    /// Starts the recorder and every output asked for. Nothing is installed
    /// globally: add [`Taskline::layer`] to your subscriber and
    /// [`Taskline::recorder`] to your runtime builder.
    pub fn start(self) -> Result<Taskline, SetupError> {
        let recorder = Recorder::new(self.config).map_err(SetupError::Config)?;
        #[cfg(feature = "trace")]
        let trace = match self.trace_file {
            Some(path) => {
                let (writer, handle) = PerfettoWriter::create(&path).map_err(|e| {
                    SetupError::Output(format!("cannot create trace file {}: {e}", path.display()))
                })?;
                recorder.add_sink(writer);
                Some(handle)
            }
            None => None,
        };
        #[cfg(feature = "trace")]
        let flight = match self.flight {
            Some(config) => {
                let (sink, handle) = FlightRecorder::new(config)
                    .map_err(|e| SetupError::Output(format!("flight recorder: {e}")))?;
                recorder.add_sink(sink);
                Some(handle)
            }
            None => None,
        };
        #[cfg(feature = "trace")]
        install_panic_dump(self.dump_on_panic, &recorder, flight.as_ref())?;
        #[cfg(feature = "otel")]
        let otlp = match self.otlp {
            Some((config, tasks)) => {
                let guard = taskline_otel::init_otlp(config)
                    .map_err(|e| SetupError::Output(format!("OTLP: {e}")))?;
                recorder.add_sink(TaskMetricsSink::new(&guard.meter(), tasks));
                Some(guard)
            }
            None => None,
        };
        Ok(Taskline {
            recorder,
            #[cfg(feature = "trace")]
            trace,
            #[cfg(feature = "trace")]
            flight,
            #[cfg(feature = "otel")]
            otlp,
            #[cfg(feature = "otel")]
            runtimes: std::sync::Mutex::new(Vec::new()),
        })
    }
}

/// A running taskline: the recorder plus whatever outputs the builder asked
/// for (trace file, flight recorder, OTLP export).
///
/// ```
/// use taskline::RuntimeBuilderExt;
///
/// let taskline = taskline::Taskline::builder().start().unwrap();
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .enable_all()
///     .taskline(taskline.recorder())
///     .build()
///     .unwrap();
/// rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
/// drop(rt);
/// println!("{}", taskline.recorder().snapshot());
/// taskline.shutdown().unwrap();
/// ```
pub struct Taskline {
    recorder: Recorder,
    #[cfg(feature = "trace")]
    trace: Option<TraceHandle<std::fs::File>>,
    #[cfg(feature = "trace")]
    flight: Option<FlightRecorderHandle>,
    #[cfg(feature = "otel")]
    otlp: Option<OtlpGuard>,
    #[cfg(feature = "otel")]
    runtimes: std::sync::Mutex<Vec<RuntimeMetricsExporter>>,
}

impl Taskline {
    /// A builder with the default recorder configuration and no outputs.
    pub fn builder() -> TasklineBuilder {
        TasklineBuilder::default()
    }

    /// The recorder: pass it to `Builder::taskline(..)` (runtime hooks), take
    /// [`Recorder::snapshot`]s, add your own sinks.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// taskline's `tracing` subscriber feeding this recorder, in front of
    /// `inner` (your `tracing_subscriber::registry()` stack): wakes, task
    /// names and blocking sections at a fraction of the registry's cost; see
    /// [`TasklineSubscriber`]. Install it with `.try_init()`.
    pub fn subscriber<S>(&self, inner: S) -> Result<TasklineSubscriber<S>, SubscriberError>
    where
        S: tracing::Subscriber + Send + Sync + 'static,
    {
        TasklineSubscriber::new(&self.recorder, inner)
    }

    /// A `tracing` layer feeding this recorder, for a subscriber stack you
    /// assemble yourself. It pays the registry's cost for every Tokio span;
    /// prefer [`subscriber`](Self::subscriber).
    pub fn layer(&self) -> TasklineLayer {
        TasklineLayer::new(&self.recorder)
    }

    /// The trace file's handle (bytes and events written), if enabled. Clone
    /// it before [`shutdown`](Self::shutdown) to read the final counts.
    #[cfg(feature = "trace")]
    pub fn trace_file(&self) -> Option<&TraceHandle<std::fs::File>> {
        self.trace.as_ref()
    }

    /// The flight recorder's handle (dump on demand, stats), if enabled.
    #[cfg(feature = "trace")]
    pub fn flight_recorder(&self) -> Option<&FlightRecorderHandle> {
        self.flight.as_ref()
    }

    /// Export this runtime's `RuntimeMetrics` over OTLP under
    /// `tokio.runtime.name = name`. A no-op without [`TasklineBuilder::otlp`].
    #[cfg(feature = "otel")]
    pub fn watch_runtime(&self, handle: &tokio::runtime::Handle, name: &str) {
        if let Some(guard) = &self.otlp {
            let exporter = RuntimeMetricsExporter::register(&guard.meter(), handle.clone(), name);
            if let Ok(mut runtimes) = self.runtimes.lock() {
                runtimes.push(exporter);
            }
        }
    }

    /// Flushes the recorder, finishes the trace file and flushes and stops
    /// the OTLP export. Reports the first error, after trying everything.
    pub fn shutdown(self) -> Result<(), SetupError> {
        #[allow(unused_mut)] // only the trace/otel outputs can fail
        let mut first_error: Option<SetupError> = None;
        self.recorder.flush();
        #[cfg(feature = "otel")]
        {
            // The provider's shutdown does the final export, which must still
            // see the runtimes; release their handles only afterwards.
            if let Some(guard) = self.otlp
                && let Err(e) = guard.shutdown()
            {
                first_error.get_or_insert(SetupError::Output(format!("OTLP: {e}")));
            }
            if let Ok(runtimes) = self.runtimes.lock() {
                runtimes.iter().for_each(RuntimeMetricsExporter::unregister);
            }
        }
        #[cfg(feature = "trace")]
        if let Some(trace) = self.trace {
            trace.set_dropped_events(self.recorder.stats().dropped);
            if let Err(e) = trace.finish_with_registry(self.recorder.registry()) {
                first_error.get_or_insert(SetupError::Output(format!("trace file: {e}")));
            }
        }
        self.recorder.shutdown();
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Installs the panic dump asked for with [`TasklineBuilder::dump_on_panic`].
#[cfg(feature = "trace")]
fn install_panic_dump(
    wanted: bool,
    recorder: &Recorder,
    flight: Option<&FlightRecorderHandle>,
) -> Result<(), SetupError> {
    match (wanted, flight) {
        (false, _) => Ok(()),
        (true, Some(handle)) => {
            taskline_trace::flight::dump_on_panic(recorder, handle);
            Ok(())
        }
        (true, None) => Err(SetupError::Output(
            "dump_on_panic needs a flight_recorder to dump".to_owned(),
        )),
    }
}

/// Why [`TasklineBuilder::start`] or [`Taskline::shutdown`] failed.
#[derive(Debug)]
pub enum SetupError {
    /// The recorder configuration is invalid.
    Config(ConfigError),
    /// An output (trace file, flight recorder, OTLP) could not be set up or finished.
    Output(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::Config(e) => write!(f, "invalid taskline configuration: {e}"),
            SetupError::Output(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for SetupError {}
