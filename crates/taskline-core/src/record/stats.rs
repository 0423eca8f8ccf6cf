//! [`RecorderStats`]: the counters that describe a recorder's health.

/// Counters describing a recorder's health.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Events stored in a thread ring.
    pub recorded: u64,
    /// Events lost: ring full, thread beyond `max_threads`, recorded after
    /// shutdown or during thread teardown.
    pub dropped: u64,
    /// Recorded events delivered to the sinks so far (a termination the
    /// hooks fold into a `PollEnd` counts once, though the sinks see it as
    /// a `Terminate` and a `PollEnd`).
    pub delivered: u64,
    /// Threads that currently own a ring.
    pub threads: usize,
    /// Threads ever registered.
    pub threads_registered: usize,
    /// Sinks disabled because they panicked.
    pub sink_panics: u64,
    /// Upper bound of the recorder's memory, from the configuration.
    pub memory_budget_bytes: usize,
    /// Whether the recorder keeps aggregates
    /// ([`RecorderConfig::aggregate`](crate::record::config::RecorderConfig::aggregate)).
    /// False also when the aggregator panicked and was switched off (see
    /// `sink_panics`).
    pub aggregating: bool,
}
