//! # taskline
//!
//! See what your Tokio runtime did: which task ran on which worker, for how
//! long, who woke it, how long it waited to be polled and what it blocked on.
//!
//! ## Adopt it in one line
//!
//! Instrument the runtime builder (the cheap source: Tokio's runtime hooks):
//!
//! ```
//! use taskline::RuntimeBuilderExt;
//!
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .enable_all()
//!     .taskline(taskline::global()) // <- the one line
//!     .build()
//!     .unwrap();
//! rt.block_on(async {
//!     tokio::spawn(async { tokio::task::yield_now().await }).await.unwrap();
//! });
//! let snapshot = taskline::global().snapshot();
//! assert!(snapshot.spawned >= 1 || !taskline::capabilities().task_events);
//! ```
//!
//! and, to also see wakes (who woke whom), task names and blocking sections
//! (Tokio's `tracing` feature), put taskline's subscriber in front of your
//! `tracing` stack, in place of its `.init()`:
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! taskline::init_subscriber(
//!     tracing_subscriber::registry().with(tracing_subscriber::fmt::layer()),
//! )
//! .expect("no other global subscriber");
//! ```
//!
//! Both feed the same [`global()`] recorder and never count a poll twice.
//! The subscriber records Tokio's instrumentation without the
//! `tracing_subscriber` registry and forwards everything else to your
//! layers unchanged ([`TasklineSubscriber`]); [`layer()`] is the plain
//! [`TasklineLayer`] for stacks that must see Tokio's spans too, at the
//! registry's price.
//!
//! ## Crates
//! - `taskline-core` (re-exported at this crate's root): the task recorder
//!   (runtime hooks, `tracing` subscriber and layer, aggregates, report).
//! - `trace` (feature `trace`): Perfetto trace writer/reader, flight recorder, Go-style analyses.
//! - `otel` (feature `otel`): OpenTelemetry runtime and task metrics over OTLP.

use std::sync::OnceLock;

mod setup;
pub use setup::{SetupError, Taskline, TasklineBuilder};

/// The recorder's types (events, recorder, sources, aggregates), one path
/// each: `taskline::Recorder`, `taskline::Snapshot`, ...
pub use taskline_core::*;
#[cfg(feature = "otel")]
pub use taskline_otel as otel;
#[cfg(feature = "trace")]
pub use taskline_trace as trace;

static GLOBAL: OnceLock<Recorder> = OnceLock::new();

/// The process-wide recorder behind the one-line helpers, created with
/// [`RecorderConfig::default()`] on first use.
///
/// Use [`init_global`] before the first call to choose another configuration.
pub fn global() -> &'static Recorder {
    GLOBAL.get_or_init(Recorder::with_defaults)
}

/// Sets the process-wide recorder's configuration. Fails (returning the
/// configuration error, or the unused recorder's config when one exists
/// already) if the configuration is invalid or [`global()`] was already used.
///
/// ```
/// let config = taskline::RecorderConfig {
///     slow_poll_threshold: std::time::Duration::from_millis(5),
///     ..Default::default()
/// };
/// taskline::init_global(config).expect("first and valid");
/// assert_eq!(taskline::global().config().slow_poll_threshold.as_millis(), 5);
/// ```
pub fn init_global(config: RecorderConfig) -> Result<&'static Recorder, InitError> {
    let recorder = Recorder::new(config).map_err(InitError::Config)?;
    match GLOBAL.set(recorder) {
        Ok(()) => Ok(global()),
        Err(unused) => {
            unused.shutdown();
            Err(InitError::AlreadyInitialized)
        }
    }
}

/// Why [`init_global`] failed.
#[derive(Debug)]
pub enum InitError {
    /// The configuration is invalid.
    Config(taskline_core::ConfigError),
    /// [`global()`] was already used (or `init_global` already called).
    AlreadyInitialized,
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitError::Config(e) => write!(f, "invalid taskline configuration: {e}"),
            InitError::AlreadyInitialized => {
                f.write_str("the global taskline recorder already exists")
            }
        }
    }
}

impl std::error::Error for InitError {}

/// A [`TasklineLayer`] feeding the [`global()`] recorder, for
/// `tracing_subscriber::registry().with(taskline::layer())`. It pays the
/// registry's cost for every Tokio task span and resource operation (see
/// the README's Overhead section); [`subscriber`] records the same at a
/// fraction of that.
pub fn layer() -> TasklineLayer {
    TasklineLayer::new(global())
}

/// taskline's subscriber feeding the [`global()`] recorder, in front of
/// `inner` (a `tracing_subscriber::registry()` stack with your layers).
/// Install it with `.try_init()`, or turn on resource waits first with
/// [`TasklineSubscriber::with_resource_waits`].
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let subscriber = taskline::subscriber(tracing_subscriber::registry())
///     .expect("registry-backed")
///     .with_resource_waits(true);
/// let _guard = tracing::subscriber::set_default(subscriber);
/// ```
pub fn subscriber<S>(inner: S) -> Result<TasklineSubscriber<S>, SubscriberError>
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    TasklineSubscriber::new(global(), inner)
}

/// [`subscriber`]`(inner)` installed as the process's global default: the
/// one line that adds wakes, task names and blocking sections. Fails if
/// `inner` has no registry underneath or another global subscriber exists.
pub fn init_subscriber<S>(inner: S) -> Result<(), SubscriberError>
where
    S: tracing::Subscriber + Send + Sync + 'static,
{
    subscriber(inner)?.try_init()
}
