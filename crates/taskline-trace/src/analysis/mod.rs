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
//! The task phases (runnable, polling, idle, terminated inside the last
//! poll) and the slow-poll rule are the core's task lifecycle
//! ([`TaskTracker`](taskline_core::TaskTracker)), as in the aggregator and
//! the OTel task sink; the slow-poll threshold is the recorder's
//! ([`AnalysisConfig::recorder`]).
//!
//! Memory: by default every task is followed, so the report of a trace is
//! exact at any number of live tasks and equals the in-process snapshot of
//! the same run (tasks, polls and busy time per site). Per-task state then
//! grows with the tasks live at once (tens of bytes each: the trace's own
//! events, already in memory, take more), up to 2^26 live tasks in the
//! per-site table (the largest `RecorderConfig::max_tracked_tasks`).
//! [`AnalysisConfig::max_tracked_tasks`] bounds it instead (e.g. an
//! analyzer running inside a long-lived process): later tasks are then
//! counted as untracked. The rest is bounded whatever the stream: at most
//! `max_keys` resource kinds (the rest fold into `(other)`), the
//! aggregator's fixed-size histograms, `top_n` worst entries, and the
//! utilization timeline (see [`utilization`]).
//!
//! User regions (application spans, region futures: [`RegionRow`]) are the
//! core's region table inside that aggregator (see `regions.rs`).

mod regions;
mod report;
mod state;
mod topk;
pub mod utilization;

pub use regions::{RegionRow, RegionSiteRow};
pub use report::{
    BlockingProfile, BlockingSectionRow, EventCount, LatencyEntry, MmuPoint, Report, ResourceRow,
    SchedulingProfile, SiteIdleRow, SiteRow, SlowPoll, SlowPollProfile, WorkerProfile, WorkerRow,
};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskline_core::Event;
use taskline_core::Registry;
use taskline_core::Sink;
use taskline_core::{RecorderConfig, SlowPollThreshold};

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

/// Limits of an [`Analyzer`], and the recorder configuration of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisConfig {
    /// The configuration the run was recorded with: its
    /// `slow_poll_threshold` classifies slow polls (the one threshold of
    /// the recorder, its snapshot and its sinks). A trace does not record
    /// it; `taskline report --slow-poll-ms` sets it. Default
    /// [`RecorderConfig::default`] (10 ms).
    pub recorder: RecorderConfig,
    /// Length of the "worst" lists (slow polls, scheduling delays). Default 10, at most 10 000.
    pub top_n: usize,
    /// Live tasks with per-task state at most, `None` (the default) for
    /// every task: exact at any number of tasks (see the module docs on memory).
    pub max_tracked_tasks: Option<usize>,
    /// Distinct resource kinds kept at most. Default 4096.
    pub max_keys: usize,
    /// Points of the utilization timeline before it coalesces. Default 1 Mi (16 MiB).
    pub max_utilization_points: usize,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            recorder: RecorderConfig::default(),
            top_n: 10,
            max_tracked_tasks: None,
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
    /// The slow-poll rule: the recorder's threshold.
    pub fn slow_polls(&self) -> SlowPollThreshold {
        SlowPollThreshold::of(&self.recorder)
    }

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
        if self.recorder.slow_poll_threshold.as_nanos() > u128::from(u64::MAX) {
            return Err(AnalysisConfigError("slow_poll_threshold is too large"));
        }
        if self.recorder.slow_poll_threshold.is_zero() {
            return Err(AnalysisConfigError("slow_poll_threshold must be non-zero"));
        }
        if self.max_tracked_tasks.is_some_and(|n| n > 1 << 26) {
            return Err(AnalysisConfigError(
                "max_tracked_tasks must be at most 67108864",
            ));
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
    /// `registry` names what the events refer to (resource kinds and spawn
    /// sites decide wake reasons); it may grow between batches.
    pub fn feed(&mut self, events: &[Event], registry: &Registry) {
        self.state.feed(events, registry);
    }

    /// The report of everything fed so far; names come from `registry`.
    /// Does not consume the analyzer: feeding may go on.
    pub fn report(&self, registry: &Registry) -> Report {
        report::build(&self.state, registry)
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
        a.feed(events, registry);
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
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        self.feed(events, registry);
    }
}

/// The [`Sink`] half of [`Analyzer::shared`].
#[derive(Debug)]
pub struct AnalysisSink {
    inner: Arc<Mutex<Analyzer>>,
}

impl Sink for AnalysisSink {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        // A poisoned lock only means a reader panicked; the state is still consistent.
        let mut a = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        a.feed(events, registry);
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
