//! [`RecorderConfig`]: every bound the recorder works within, with validation.

use std::fmt;
use std::time::Duration;

/// How a [`Recorder`](crate::record::recorder::Recorder) buffers and aggregates.
///
/// Every field bounds memory or latency; [`RecorderConfig::validate`] rejects
/// values that make no sense, and [`RecorderConfig::memory_budget_bytes`]
/// gives the resulting upper bound of the recorder's memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Events per thread ring (a power of two, 64..=2^24). Default 65536
    /// (2 MiB per recording thread; pages are touched only as the ring fills,
    /// so a mostly idle thread costs far less). A ring crossing half capacity
    /// wakes the consumer, which copies out the ready events of a ring a
    /// quarter full (freeing it at once) and reads the others in place. A
    /// thread that records faster than the consumer can keep up with fills
    /// its ring, and further events are dropped and counted.
    pub ring_capacity: usize,
    /// Thread rings allocated at most (1..=65535). A thread beyond this has
    /// its events dropped and counted. Default 256.
    pub max_threads: usize,
    /// How often the consumer thread drains the rings (1 ms..=10 s). Default
    /// 10 ms. A ring crossing half capacity wakes the consumer earlier.
    pub drain_interval: Duration,
    /// Events younger than this wait in their thread's ring (at most half
    /// of it) until the next drain, so the merge across threads is in
    /// timestamp order (at most 10 s). Default 2 ms.
    pub reorder_window: Duration,
    /// A poll longer than this counts as slow (non-zero). Default 10 ms.
    pub slow_poll_threshold: Duration,
    /// Per-task state is kept for at most this many live tasks; later tasks
    /// are only counted in their spawn site. Default 65536.
    pub max_tracked_tasks: usize,
    /// Whether the tracing layer records application spans as
    /// `SpanEnter`/`SpanExit`. Default false.
    pub record_spans: bool,
    /// Distinct strings (task names, resource kinds, span names) and,
    /// separately, distinct spawn sites interned at most (1..=2^24). Default 65536.
    pub max_interned: usize,
    /// Whether [`instrument`](crate::source::hooks::instrument) enables Tokio's
    /// `track_task_schedule_latency`, so each `PollStart` carries Tokio's
    /// schedule latency (needs `--cfg tokio_unstable`). Cost: Tokio then
    /// reads the clock on **every** schedule (each wake / yield), in
    /// addition to the hooks' own clock reads. Without it, scheduling delay
    /// comes from the tracing layer's wakes (wake -> next poll start); with
    /// the hooks alone, only spawn -> first poll counts as scheduled. Default false (the
    /// cheapest, like dial9).
    pub track_schedule_latency: bool,
    /// Whether the consumer keeps the in-process aggregates behind
    /// [`Recorder::snapshot`](crate::record::recorder::Recorder::snapshot): per task,
    /// per spawn site and per worker statistics, the histograms and the text
    /// report. Default true.
    ///
    /// `false` is the record-only deal of tracers such as dial9: the events
    /// still reach every sink (a trace file, the flight recorder, the
    /// OpenTelemetry task metrics, which keep their own state), and the
    /// consumer skips its own per-event bookkeeping (on a spawn-heavy
    /// workload, most of its CPU). A snapshot then holds only the
    /// recorder's counters, and its report says so.
    ///
    /// ```
    /// use taskline_core::RecorderConfig;
    /// use taskline_core::Recorder;
    /// let recorder = Recorder::new(RecorderConfig { aggregate: false, ..Default::default() })?;
    /// let snapshot = recorder.snapshot();
    /// assert_eq!(snapshot.recorder.map(|r| r.aggregating), Some(false));
    /// assert!(snapshot.to_string().contains("aggregation is off"));
    /// # Ok::<(), taskline_core::ConfigError>(())
    /// ```
    pub aggregate: bool,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            ring_capacity: 65536,
            max_threads: 256,
            drain_interval: Duration::from_millis(10),
            reorder_window: Duration::from_millis(2),
            slow_poll_threshold: Duration::from_millis(10),
            max_tracked_tasks: 65536,
            record_spans: false,
            max_interned: 65536,
            track_schedule_latency: false,
            aggregate: true,
        }
    }
}

/// Why a [`RecorderConfig`] was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it and what is accepted.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid taskline RecorderConfig.{}: {}",
            self.field, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn err(field: &'static str, reason: String) -> Result<(), ConfigError> {
    Err(ConfigError { field, reason })
}

/// Size of one stored event.
pub(crate) const EVENT_BYTES: usize = std::mem::size_of::<crate::event::Event>();

impl RecorderConfig {
    /// Checks every field; the error names the field and the accepted range.
    ///
    /// ```
    /// use taskline_core::RecorderConfig;
    /// let bad = RecorderConfig { ring_capacity: 1000, ..Default::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("power of two"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = self.ring_capacity;
        if !c.is_power_of_two() || !(64..=1 << 24).contains(&c) {
            return err(
                "ring_capacity",
                format!("{c} must be a power of two between 64 and 16777216"),
            );
        }
        if !(1..=65535).contains(&self.max_threads) {
            return err(
                "max_threads",
                format!("{} must be between 1 and 65535", self.max_threads),
            );
        }
        if self.drain_interval < Duration::from_millis(1)
            || self.drain_interval > Duration::from_secs(10)
        {
            return err(
                "drain_interval",
                format!("{:?} must be between 1ms and 10s", self.drain_interval),
            );
        }
        if self.reorder_window > Duration::from_secs(10) {
            return err(
                "reorder_window",
                format!("{:?} must be at most 10s", self.reorder_window),
            );
        }
        if self.slow_poll_threshold.is_zero() {
            return err("slow_poll_threshold", "must be greater than zero".into());
        }
        if self.max_tracked_tasks > 1 << 26 {
            return err(
                "max_tracked_tasks",
                format!("{} must be at most 67108864", self.max_tracked_tasks),
            );
        }
        if !(1..=1 << 24).contains(&self.max_interned) {
            return err(
                "max_interned",
                format!("{} must be between 1 and 16777216", self.max_interned),
            );
        }
        if self.ring_bytes().checked_mul(2).is_none() {
            return err(
                "ring_capacity",
                "ring_capacity * max_threads overflows".into(),
            );
        }
        Ok(())
    }

    /// Bytes of all thread rings at most (`ring_capacity * 32 * max_threads`).
    pub fn ring_bytes(&self) -> usize {
        self.ring_capacity
            .saturating_mul(EVENT_BYTES)
            .saturating_mul(self.max_threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        RecorderConfig::default().validate().expect("default valid");
    }

    #[test]
    fn default_ring_is_two_mib_per_thread() {
        let c = RecorderConfig::default();
        assert_eq!(c.ring_capacity * EVENT_BYTES, 2 << 20);
        assert_eq!(c.ring_bytes(), (2 << 20) * c.max_threads);
    }
}
