//! taskline's OpenTelemetry metrics: Tokio runtime instruments, task
//! histograms from the taskline recorder, and an OTLP pipeline helper.
//!
//! - [`RuntimeMetricsExporter`]: observable instruments over Tokio's
//!   `RuntimeMetrics`, for one or several runtimes (attribute
//!   `tokio.runtime.name`), read only when the SDK collects.
//! - [`TaskMetricsSink`]: a [`taskline_core::Sink`] turning the recorder's
//!   events into `tokio.task.*` histograms and counters on the recorder's
//!   consumer thread.
//! - [`ProcessMetricsExporter`]: the OTel process semantic conventions
//!   (CPU time by mode, resident and virtual memory, threads, open file
//!   descriptors) read from Linux's `/proc` at collection time; registers
//!   nothing on other systems.
//! - [`ProfilesCollected`]: the `taskline.profiles.collected` counter the
//!   profilers feed.
//! - [`init_otlp`]: an `SdkMeterProvider` with a periodic reader and the
//!   OTLP exporter (HTTP/protobuf by default, gRPC with feature `grpc`),
//!   cumulative temporality, honouring the `OTEL_*` variables (see
//!   [`OtlpConfig`]); a slow or dead endpoint costs counted failed exports
//!   reported once per outage, never application time.
//!
//! ```no_run
//! use taskline_otel::{OtlpConfig, ProcessMetricsExporter, RuntimeMetricsExporter, TaskMetricsConfig, TaskMetricsSink, init_otlp};
//! use taskline_core::{Recorder, RuntimeBuilderExt};
//!
//! let otlp = init_otlp(OtlpConfig::new().with_service_name("my-service"))?;
//! let recorder = Recorder::with_defaults();
//! recorder.add_sink(TaskMetricsSink::for_recorder(&otlp.meter(), recorder.config(), TaskMetricsConfig::default()));
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().taskline(&recorder).build()?;
//! RuntimeMetricsExporter::register(&otlp.meter(), rt.handle().clone(), "main");
//! ProcessMetricsExporter::register(&otlp.meter()); // once per process
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Instruments
//!
//! Names follow the design brief ("Metrics naming"; Go/Node.js runtime conventions): prefix `tokio.`, UCUM
//! units, no `_total`, durations in seconds. Prometheus-style names (as
//! produced by VictoriaMetrics with `-opentelemetry.usePrometheusNaming`) are
//! given in the last column. Every runtime instrument carries
//! `tokio.runtime.name`; "worker" ones also `tokio.worker.index`.
//!
//! ## Runtime ([`RuntimeMetricsExporter`])
//!
//! | name | kind | unit | attributes | meaning | needs | Prometheus name |
//! |---|---|---|---|---|---|---|
//! | `tokio.worker.count` | gauge | `{worker}` | runtime | `num_workers()` | | `tokio_worker_count` |
//! | `tokio.task.alive.count` | gauge | `{task}` | runtime | `num_alive_tasks()` | | `tokio_task_alive_count` |
//! | `tokio.queue.global.depth` | gauge | `{task}` | runtime | `global_queue_depth()` | | `tokio_queue_global_depth` |
//! | `tokio.worker.busy.time` | counter | `s` | runtime, worker | `worker_total_busy_duration(w)` | | `tokio_worker_busy_time_seconds_total` |
//! | `tokio.worker.utilization` | gauge | `1` | runtime, worker | busy-time delta / wall-time delta since the previous collection, in 0..1 | | `tokio_worker_utilization_ratio` |
//! | `tokio.worker.parks` | counter | `{park}` | runtime, worker | `worker_park_count(w)` | | `tokio_worker_parks_total` |
//! | `tokio.worker.park_unparks` | counter | `{transition}` | runtime, worker | `worker_park_unpark_count(w)` (parks + unparks) | | `tokio_worker_park_unparks_total` |
//! | `tokio.worker.queue.depth` | gauge | `{task}` | runtime, worker | `worker_local_queue_depth(w)` | `tokio_unstable` | `tokio_worker_queue_depth` |
//! | `tokio.worker.polls` | counter | `{poll}` | runtime, worker | `worker_poll_count(w)` | `tokio_unstable` | `tokio_worker_polls_total` |
//! | `tokio.worker.steals` | counter | `{task}` | runtime, worker | `worker_steal_count(w)` (tasks stolen) | `tokio_unstable` | `tokio_worker_steals_total` |
//! | `tokio.worker.steal_operations` | counter | `{operation}` | runtime, worker | `worker_steal_operations(w)` | `tokio_unstable` | `tokio_worker_steal_operations_total` |
//! | `tokio.worker.noops` | counter | `{unpark}` | runtime, worker | `worker_noop_count(w)` (unparked, found no work) | `tokio_unstable` | `tokio_worker_noops_total` |
//! | `tokio.worker.overflows` | counter | `{overflow}` | runtime, worker | `worker_overflow_count(w)` | `tokio_unstable` | `tokio_worker_overflows_total` |
//! | `tokio.worker.local_schedules` | counter | `{task}` | runtime, worker | `worker_local_schedule_count(w)` | `tokio_unstable` | `tokio_worker_local_schedules_total` |
//! | `tokio.worker.mean_poll.duration` | gauge | `s` | runtime, worker | `worker_mean_poll_time(w)` (EWMA; multi-thread runtime only) | `tokio_unstable` | `tokio_worker_mean_poll_duration_seconds` |
//! | `tokio.runtime.remote_schedules` | counter | `{task}` | runtime | `remote_schedule_count()` | `tokio_unstable` | `tokio_runtime_remote_schedules_total` |
//! | `tokio.runtime.budget_forced_yields` | counter | `{yield}` | runtime | `budget_forced_yield_count()` | `tokio_unstable` | `tokio_runtime_budget_forced_yields_total` |
//! | `tokio.runtime.tasks.spawned` | counter | `{task}` | runtime | `spawned_tasks_count()` | `tokio_unstable` | `tokio_runtime_tasks_spawned_total` |
//! | `tokio.blocking.thread.count` | gauge | `{thread}` | runtime | `num_blocking_threads()` | `tokio_unstable` | `tokio_blocking_thread_count` |
//! | `tokio.blocking.thread.idle.count` | gauge | `{thread}` | runtime | `num_idle_blocking_threads()` | `tokio_unstable` | `tokio_blocking_thread_idle_count` |
//! | `tokio.blocking.queue.depth` | gauge | `{task}` | runtime | `blocking_queue_depth()` | `tokio_unstable` | `tokio_blocking_queue_depth` |
//! | `tokio.io.fd.registered` | counter | `{fd}` | runtime | `io_driver_fd_registered_count()` (0 without I/O driver) | `tokio_unstable` | `tokio_io_fd_registered_total` |
//! | `tokio.io.fd.deregistered` | counter | `{fd}` | runtime | `io_driver_fd_deregistered_count()` | `tokio_unstable` | `tokio_io_fd_deregistered_total` |
//! | `tokio.io.ready_events` | counter | `{event}` | runtime | `io_driver_ready_count()` | `tokio_unstable` | `tokio_io_ready_events_total` |
//! | `tokio.worker.poll.time.bucket` | counter | `{poll}` | runtime, worker, `le` | polls of the worker that took at most `le` s: cumulative buckets of Tokio's poll-time histogram, real boundaries from `poll_time_histogram_bucket_range`, last `le="+Inf"` | `tokio_unstable` + `enable_metrics_poll_time_histogram()` | `tokio_worker_poll_time_bucket_total` |
//! | `tokio.worker.schedule.latency.bucket` | counter | `{task}` | runtime, worker, `le` | same for Tokio's schedule-latency histogram | `tokio_unstable` + `enable_metrics_schedule_latency_histogram()` | `tokio_worker_schedule_latency_bucket_total` |
//!
//! ### Why Tokio's histograms are `le`-bucket counters
//!
//! OpenTelemetry 0.33 has no observable histogram. A synchronous histogram
//! fed with per-collection deltas would need one `record()` per poll (or
//! invented sample values) and would export a `sum` Tokio never measured.
//! An observable counter per bucket, with the bucket's real upper bound in
//! the `le` attribute and cumulative counts, is exact, costs one atomic load
//! per worker and bucket, and is exactly what PromQL's `histogram_quantile`
//! reads: `histogram_quantile(0.99, sum by (le) (rate(tokio_worker_poll_time_bucket_total[5m])))`.
//! Which histograms exist is decided at registration (what the runtime was
//! built with). Tokio's buckets are `[start, end)`; `le` is their `end`.
//!
//! ### Why not tokio-metrics
//!
//! `tokio-metrics`' `RuntimeMonitor` turns the same `RuntimeMetrics` into
//! per-interval deltas sampled all at once; OpenTelemetry wants cumulative
//! values read per instrument at collection time, which `RuntimeMetrics`
//! already provides with one atomic load each. The only derived value,
//! utilization, is one subtraction here. Its `TaskMonitor` needs every
//! future wrapped by hand; taskline's recorder already sees every task.
//!
//! ## Tasks ([`TaskMetricsSink`])
//!
//! | name | kind | unit | attributes | meaning | Prometheus name |
//! |---|---|---|---|---|---|
//! | `tokio.task.poll.duration` | histogram | `s` | configured + optional `tokio.task.spawn.site` | one poll, start to end | `tokio_task_poll_duration_seconds_{bucket,sum,count}` |
//! | `tokio.task.schedule.duration` | histogram | `s` | same | runnable (spawned/woken) until polled; Tokio's schedule latency when the hooks give it | `tokio_task_schedule_duration_seconds_*` |
//! | `tokio.task.idle.duration` | histogram | `s` | same + `reason` | poll returned Pending until woken; `reason` says why it waited (`sync`, `io`, `timer`, `blocking`, `foreign`, `yield`, `unknown`: [`taskline_core::WakeReason`]) | `tokio_task_idle_duration_seconds_*` |
//! | `tokio.task.spawned` | counter | `{task}` | same | tasks spawned | `tokio_task_spawned_total` |
//! | `tokio.task.terminated` | counter | `{task}` | same | tracked tasks terminated | `tokio_task_terminated_total` |
//! | `tokio.task.slow_polls` | counter | `{poll}` | same | polls longer than the recorder's `RecorderConfig::slow_poll_threshold` (default 10 ms) | `tokio_task_slow_polls_total` |
//!
//! ## Process ([`ProcessMetricsExporter`], Linux only)
//!
//! The OTel process semantic conventions, for the process itself (it is
//! the resource: no `process.pid` attribute). Read from `/proc/self/stat`
//! and `/proc/self/fd` when the SDK collects; not registered on other
//! systems. The facade registers them with its OTLP export by default.
//!
//! | name | kind | unit | attributes | meaning | Prometheus name |
//! |---|---|---|---|---|---|
//! | `process.cpu.time` | counter | `s` | `cpu.mode` = `user` / `system` | CPU time of every thread of the process (clock-tick resolution, usually 10 ms) | `process_cpu_time_seconds_total` |
//! | `process.memory.usage` | up-down counter | `By` | | resident set size | `process_memory_usage_bytes` |
//! | `process.memory.virtual` | up-down counter | `By` | | virtual memory size | `process_memory_virtual_bytes` |
//! | `process.thread.count` | up-down counter | `{thread}` | | threads of the process | `process_thread_count` |
//! | `process.open_file_descriptor.count` | up-down counter | `{file_descriptor}` | | entries of `/proc/self/fd` | `process_open_file_descriptor_count` |
//!
//! ## Profiles ([`ProfilesCollected`])
//!
//! | name | kind | unit | attributes | meaning | Prometheus name |
//! |---|---|---|---|---|---|
//! | `taskline.profiles.collected` | counter | `{profile}` | `profile.type` = `cpu` / `heap` | profiles delivered by taskline's profilers | `taskline_profiles_collected_total` |
//!
//! Histogram boundaries default to [`task::DEFAULT_BOUNDARIES`] (1 µs .. 10 s).
//! The spawn-site attribute (`file:line:col`) is off by default; when on, at
//! most `max_spawn_sites` sites get a series and the rest share `other`.
//! The idle histogram's `reason` ([`task::REASON`]) is one of 7 fixed
//! values, decided by the core's one rule ([`taskline_core::WakeReason`]'s
//! docs say how each is told apart, and what telling a timer from I/O
//! needs: resource waits on); only reasons that occurred get a series.
//! Task events need `tokio_unstable` (runtime hooks) or the tracing layer.

pub mod otlp;
pub mod process;
pub mod profiles;
pub mod runtime;
pub mod task;

pub use otlp::{ExportStats, OtlpConfig, OtlpGuard, Transport, init_otlp};
pub use process::{ProcessMetricsExporter, ProcessSample, open_file_descriptors};
pub use profiles::{ProfileType, ProfilesCollected};
pub use runtime::RuntimeMetricsExporter;
pub use task::{TaskMetricsConfig, TaskMetricsSink};

/// Name of the meter taskline's helpers take from a meter provider.
pub const METER_NAME: &str = "taskline";
