//! Go-style analyses over a timestamp-ordered event stream.
//!
//! [`Analyzer`] is a streaming accumulator: [`feed`](Analyzer::feed) it
//! batches of events in nondecreasing timestamp order (it is also a
//! [`Sink`], see [`Analyzer::shared`]), then ask for a [`Report`] with the
//! [`Registry`] that names the ids. The same code runs inside the process
//! and on a trace file read back with `read_trace`, so both give the same
//! report for the same events.
//!
//! Definitions (per tracked task, i.e. one whose `Spawn` was seen):
//! - *busy* (execution): `PollEnd - PollStart`;
//! - *scheduling wait*: from runnable (spawned, woken, or woken during a
//!   poll: from that poll's end) to `PollStart`; the delay Tokio reports on
//!   `PollStart` wins when present;
//! - *idle* (blocked): from `PollEnd` to the `Wake` (or, without a wake, to
//!   the `PollStart` minus Tokio's delay). It is attributed to the resource
//!   kind of the last `ResourceWait` of the poll that ended, or to `(none)`.
//!   A task still idle at the end of the stream adds nothing.
//!
//! The per-site table and the latency percentiles come from the core's
//! [`Aggregator`](taskline_core::Aggregator) (fed the same
//! events); the rest is computed here with the same task-state rules, so the
//! idle time by resource kind adds up to the idle time of the site table.
//!
//! Memory is bounded by [`AnalysisConfig`]: per-task state for at most
//! `max_tracked_tasks` live tasks (later ones are counted as untracked), at
//! most `max_keys` resource kinds (the rest fold into `(other)`), the
//! aggregator's fixed-size histograms, `top_n` worst entries, and the
//! utilization timeline (see [`utilization`]).

mod report;
mod state;
mod topk;
pub mod utilization;

pub use report::{
    BlockingProfile, BlockingSectionRow, EventCount, LatencyEntry, MmuPoint, Report, ResourceRow,
    SchedulingProfile, SiteIdleRow, SiteRow, SlowPoll, SlowPollProfile, WorkerProfile, WorkerRow,
};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskline_core::Event;
use taskline_core::Registry;
use taskline_core::Sink;

use state::State;

/// The MMU window sizes of the report: 1 ms to 1 s.
pub const MMU_WINDOWS: [Duration; 10] = [
    Duration::from_millis(1),
    Duration::from_millis(2),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(20),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Limits and thresholds of an [`Analyzer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisConfig {
    /// A poll longer than this is a slow poll. Default 10 ms.
    pub slow_poll_threshold: Duration,
    /// Length of the "worst" lists (slow polls, scheduling delays). Default 10, at most 10 000.
    pub top_n: usize,
    /// Live tasks with per-task state at most. Default 65 536.
    pub max_tracked_tasks: usize,
    /// Distinct resource kinds kept at most. Default 4096.
    pub max_keys: usize,
    /// Points of the utilization timeline before it coalesces. Default 1 Mi (16 MiB).
    pub max_utilization_points: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            slow_poll_threshold: Duration::from_millis(10),
            top_n: 10,
            max_tracked_tasks: 65_536,
            max_keys: 4096,
            max_utilization_points: 1 << 20,
        }
    }
}

/// Why an [`AnalysisConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisConfigError(pub &'static str);

impl std::fmt::Display for AnalysisConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid analysis config: {}", self.0)
    }
}

impl std::error::Error for AnalysisConfigError {}

impl AnalysisConfig {
    /// Check the limits.
    pub fn validate(&self) -> Result<(), AnalysisConfigError> {
        if self.top_n > 10_000 {
            return Err(AnalysisConfigError("top_n must be at most 10000"));
        }
        if self.max_keys == 0 {
            return Err(AnalysisConfigError("max_keys must be at least 1"));
        }
        if self.max_utilization_points < 16 {
            return Err(AnalysisConfigError(
                "max_utilization_points must be at least 16",
            ));
        }
        if self.slow_poll_threshold.as_nanos() > u128::from(u64::MAX) {
            return Err(AnalysisConfigError("slow_poll_threshold is too large"));
        }
        Ok(())
    }
}

/// Streaming Go-style analyses (see the module docs).
#[derive(Debug)]
pub struct Analyzer {
    state: State,
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer {
            state: State::new(AnalysisConfig::default()),
        }
    }
}

impl Analyzer {
    /// A new analyzer with `config`.
    pub fn new(config: AnalysisConfig) -> Result<Self, AnalysisConfigError> {
        config.validate()?;
        Ok(Analyzer {
            state: State::new(config),
        })
    }

    /// Add a batch of events (nondecreasing timestamps across batches;
    /// earlier ones are treated as happening at the latest timestamp seen).
    /// Events with an unknown kind are counted and otherwise ignored.
    pub fn feed(&mut self, events: &[Event]) {
        self.state.feed(events);
    }

    /// The report of everything fed so far; names come from `registry`.
    /// Does not consume the analyzer: feeding may go on.
    pub fn report(&self, registry: &Registry) -> Report {
        self.state.report(registry)
    }

    /// The report of everything fed, consuming the analyzer.
    pub fn finish(self, registry: &Registry) -> Report {
        self.report(registry)
    }

    /// Analyze a whole stream at once.
    pub fn analyze(
        events: &[Event],
        registry: &Registry,
        config: AnalysisConfig,
    ) -> Result<Report, AnalysisConfigError> {
        let mut a = Analyzer::new(config)?;
        a.feed(events);
        Ok(a.finish(registry))
    }

    /// A [`Sink`] to add to a recorder and a handle to read reports from
    /// while it runs.
    pub fn shared(self) -> (AnalysisSink, AnalysisHandle) {
        let inner = Arc::new(Mutex::new(self));
        (
            AnalysisSink {
                inner: inner.clone(),
            },
            AnalysisHandle { inner },
        )
    }
}

impl Sink for Analyzer {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        self.feed(events);
    }
}

/// The [`Sink`] half of [`Analyzer::shared`].
#[derive(Debug)]
pub struct AnalysisSink {
    inner: Arc<Mutex<Analyzer>>,
}

impl Sink for AnalysisSink {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        // A poisoned lock only means a reader panicked; the state is still consistent.
        let mut a = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        a.feed(events);
    }
}

/// The reading half of [`Analyzer::shared`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct AnalysisHandle {
    inner: Arc<Mutex<Analyzer>>,
}

impl AnalysisHandle {
    /// The report of everything the sink has received so far (flush the
    /// recorder first to include recent events).
    pub fn report(&self, registry: &Registry) -> Report {
        let a = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        a.report(registry)
    }
}
