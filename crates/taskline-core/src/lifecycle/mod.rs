//! A task's life, defined once: the phase rules every consumer of the event
//! stream (the [`Aggregator`](crate::Aggregator), the OpenTelemetry task
//! sink, the offline analysis of a trace) applies.
//!
//! A task is spawned runnable, then cycles runnable -> polling -> idle
//! until it terminates:
//! - a `PollStart` ends its runnable time (the *scheduling delay*: Tokio's
//!   schedule latency when the hooks report it, else the time since it
//!   became runnable) or, when no wake was seen (hooks only), its idle time
//!   (up to when Tokio says it was scheduled);
//! - a `PollEnd` gives the poll's duration; the task goes idle, or runnable
//!   again when it was woken during that poll;
//! - a `Wake` of an idle task ends its *idle time*;
//! - a poll is *slow* when it lasts longer than
//!   [`RecorderConfig::slow_poll_threshold`](crate::RecorderConfig::slow_poll_threshold)
//!   ([`SlowPollThreshold::is_slow`], the one comparison);
//! - Tokio fires the terminate hook inside a task's last poll, so a
//!   `Terminate` may precede that poll's `PollEnd`: the poll is attributed
//!   through the thread's open `PollStart`, not through the live task.
//!
//! - the [`WakeReason`] of each wake (why the task waited: another task, the
//!   I/O driver, the timer, a blocking section, a foreign thread, itself) is
//!   decided once, by [`ThreadRoles::wake_reason`], from what the waking
//!   thread was doing (see [`wake_reason`](self::wake_reason) for the rule and its limits);
//!
//! Two layers, so that each consumer keeps the storage that suits it:
//! - [`TaskLife`], 16 bytes, `Copy`: the per-task phase state, with
//!   `#[inline]` transition functions that return typed results
//!   ([`PollStarted`], [`PollEnded`], [`Woken`]). The aggregator keeps it in
//!   its own compact task tables;
//! - [`TaskTracker`]: the whole per-task and per-thread bookkeeping over
//!   decoded events ([`Event::decode`](crate::Event::decode)), with a value
//!   of the consumer's choice per task, turning each event into one
//!   [`Transition`]. The OTel sink (bounded: at most its tracked tasks) and
//!   the offline analysis (unbounded: the trace is in memory already) use it.

mod phase;
mod tracker;
mod wake_reason;

pub use phase::{PollEnded, PollStarted, SlowPollThreshold, TaskLife, TaskPhase, Woken};
pub use tracker::{NameLookup, TaskTracker, Transition};
pub use wake_reason::{
    IdleByReason, SectionEnd, ThreadRole, ThreadRoles, TurnMark, WakeCause, WakeReason,
    is_timer_resource,
};
