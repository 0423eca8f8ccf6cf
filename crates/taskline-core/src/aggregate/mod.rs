//! The aggregation sink: per task, per spawn site and per worker statistics,
//! plus histograms of poll duration, scheduling delay and idle time.
//!
//! [`Aggregator`] is a [`Sink`]. Every [`Recorder`](crate::record::recorder::Recorder)
//! has one internally (so [`Recorder::snapshot`](crate::record::recorder::Recorder::snapshot)
//! works), and it can be fed standalone, e.g. by replaying a trace file.
//! [`Snapshot`] is the owned copy of everything it knows; its `Display` is
//! the text report (see [`report`](crate::aggregate::report)).
//!
//! How the event stream is read (the phase rules are the crate's task
//! lifecycle, `lifecycle/`, shared with the other consumers; the aggregator
//! keeps each task's `TaskLife` in its own tables):
//! - a task's life is spawn -> (runnable -> polling -> idle)* -> terminate;
//! - *scheduled time* runs from a wake (or spawn) to the next poll start. When
//!   the `PollStart` carries Tokio's schedule latency, that value is used;
//!   otherwise the wake timestamp. A wake during a poll makes the task
//!   runnable from the end of that poll;
//! - *idle time* runs from a poll end to the next wake (without wake events,
//!   to the start of the schedule latency reported at the next poll, or to
//!   the poll start when no latency is reported: hooks alone without
//!   `RecorderConfig::track_schedule_latency` give scheduled time only from
//!   spawn to first poll);
//! - *busy time* runs from poll start to poll end on the same thread;
//! - a second `Spawn` of a live task (a second source reporting it) is
//!   ignored: the first one's site stands, and names come from `TaskName`
//!   events; a `Terminate` of an unknown or already terminated task is
//!   ignored.
//!
//! Memory: per-task state exists for at most `max_tracked_tasks` live tasks
//! (further tasks are only counted in their site): a third of a cache line
//! until the first poll (see `unpolled`), a cache line after; terminated tasks are
//! folded into their site and removed.

pub(crate) mod aggregator;
pub(crate) mod regions;
pub(crate) mod report;
pub(crate) mod snapshot;
pub(crate) mod task_table;
pub(crate) mod unpolled;

pub use aggregator::{
    Aggregator, HISTOGRAM_MAX_NS, MAX_SITE_HISTOGRAMS, MAX_WAKER_SITES, SITE_BYTES_BOUND,
    TASK_STATE_BYTES_BOUND, fixed_bytes_bound,
};
pub use regions::{
    MAX_OPEN_REGION_FUTURES, MAX_OPEN_SPANS, MAX_REGION_NAMES, MAX_REGION_SITES, RegionLimits,
    RegionSite, RegionStats, RegionTable,
};
pub use report::{TOP_SITES, fmt_ns};
pub use snapshot::{HistogramSummary, SiteStats, Snapshot, TaskStats, WorkerStats};
