//! [`ProfilerConfig`]: sampling frequency, stack depth and memory bounds,
//! checked by [`ProfilerConfig::validate`] before anything is installed.

use std::time::Duration;

use taskline_core::Recorder;

use crate::error::ProfileError;

/// The highest sampling frequency accepted, per thread of CPU time.
pub const MAX_FREQUENCY_HZ: u32 = 1000;
/// The deepest stack a sample may keep.
pub const MAX_DEPTH_LIMIT: usize = 512;

/// How the profiler samples, and how much memory it may use.
///
/// Memory bound: every registered thread owns a ring of
/// `ring_capacity × (max_depth × 8 + 32)` bytes (allocated when a thread
/// registers, reused by later threads; at most `max_threads` rings), and the
/// collected profile keeps at most `max_entries` distinct stacks and
/// `max_entries` distinct (stack, task, site, worker, thread) samples; the
/// log of timed samples for a trace at most `trace_samples` samples (16
/// bytes each, plus their distinct stacks).
///
/// ```
/// use taskline_profile::ProfilerConfig;
/// let config = ProfilerConfig::default().frequency_hz(199).max_depth(32);
/// assert!(config.validate().is_ok());
/// assert!(ProfilerConfig::default().frequency_hz(0).validate().is_err());
/// ```
#[derive(Clone, Debug)]
pub struct ProfilerConfig {
    /// Samples per second of each registered thread's CPU time (1..=1000),
    /// default 99 (like Go's 100 Hz, off the beat of periodic work).
    pub frequency_hz: u32,
    /// Frames kept per sample (1..=512), default 64; deeper stacks keep
    /// their innermost frames and are counted as truncated.
    pub max_depth: usize,
    /// Samples each thread's ring holds between two collections (a power
    /// of two, at least 8), default 256: 2.5 s of one busy thread at 99 Hz.
    /// A full ring drops the sample and counts it.
    pub ring_capacity: usize,
    /// Threads that may be registered at once, default 256.
    pub max_threads: usize,
    /// Distinct stacks (and, separately, distinct labelled samples) kept,
    /// default 65536; later new ones are dropped and counted.
    pub max_entries: usize,
    /// How often the collector thread drains the rings, default 50 ms.
    pub collect_interval: Duration,
    /// Timed samples (time, thread, stack) kept for a trace between two
    /// [`ProfilerGuard::take_cpu_samples`](crate::ProfilerGuard::take_cpu_samples),
    /// besides the aggregate; default 65536 (5.5 minutes of two busy
    /// threads at 99 Hz, at most 1 MiB plus the stacks the aggregate does
    /// not already hold). Later samples are dropped from the log and
    /// counted ([`ProfilerStats::trace_samples_dropped`](crate::ProfilerStats::trace_samples_dropped));
    /// the aggregate still counts them. 0 keeps none.
    pub trace_samples: usize,
    /// The recorder whose registry names spawn sites (the site ids of
    /// tasks spawned through its wrapper source, and the `site_id` of
    /// every sample); without one, sites from Tokio's hooks are still
    /// named by their source location.
    pub recorder: Option<Recorder>,
}

impl Default for ProfilerConfig {
    fn default() -> Self {
        ProfilerConfig {
            frequency_hz: 99,
            max_depth: 64,
            ring_capacity: 256,
            max_threads: 256,
            max_entries: 1 << 16,
            collect_interval: Duration::from_millis(50),
            trace_samples: 1 << 16,
            recorder: None,
        }
    }
}

impl ProfilerConfig {
    /// Sets [`frequency_hz`](Self::frequency_hz).
    pub fn frequency_hz(mut self, hz: u32) -> Self {
        self.frequency_hz = hz;
        self
    }

    /// Sets [`max_depth`](Self::max_depth).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Sets [`ring_capacity`](Self::ring_capacity).
    pub fn ring_capacity(mut self, samples: usize) -> Self {
        self.ring_capacity = samples;
        self
    }

    /// Sets [`max_threads`](Self::max_threads).
    pub fn max_threads(mut self, threads: usize) -> Self {
        self.max_threads = threads;
        self
    }

    /// Sets [`max_entries`](Self::max_entries).
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// Sets [`collect_interval`](Self::collect_interval).
    pub fn collect_interval(mut self, interval: Duration) -> Self {
        self.collect_interval = interval;
        self
    }

    /// Sets [`trace_samples`](Self::trace_samples).
    pub fn trace_samples(mut self, samples: usize) -> Self {
        self.trace_samples = samples;
        self
    }

    /// Sets [`recorder`](Self::recorder) to a clone of `recorder`.
    pub fn recorder(mut self, recorder: &Recorder) -> Self {
        self.recorder = Some(recorder.clone());
        self
    }

    /// The sampling period in nanoseconds of thread CPU time.
    pub fn period_ns(&self) -> u64 {
        1_000_000_000 / u64::from(self.frequency_hz.max(1))
    }

    /// Bytes of one thread's ring.
    pub fn ring_bytes(&self) -> usize {
        self.ring_capacity
            .saturating_mul(self.max_depth.saturating_mul(8).saturating_add(32))
    }

    /// Checks every field; the first bad one is the error.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |field: &'static str, reason: String| Err(ProfileError::Config { field, reason });
        if self.frequency_hz == 0 {
            return bad("frequency_hz", "must be at least 1 Hz".into());
        }
        if self.frequency_hz > MAX_FREQUENCY_HZ {
            return bad(
                "frequency_hz",
                format!(
                    "{} Hz is above the limit of {MAX_FREQUENCY_HZ} Hz",
                    self.frequency_hz
                ),
            );
        }
        if self.max_depth == 0 || self.max_depth > MAX_DEPTH_LIMIT {
            return bad(
                "max_depth",
                format!("{} is not in 1..={MAX_DEPTH_LIMIT}", self.max_depth),
            );
        }
        if self.ring_capacity < 8 || !self.ring_capacity.is_power_of_two() {
            return bad(
                "ring_capacity",
                format!("{} is not a power of two of at least 8", self.ring_capacity),
            );
        }
        if self.max_threads == 0 || self.max_threads > u32::MAX as usize {
            return bad(
                "max_threads",
                format!("{} is not in 1..=2^32-1", self.max_threads),
            );
        }
        if self.max_entries == 0 {
            return bad("max_entries", "must be at least 1".into());
        }
        if self.collect_interval.is_zero() || self.collect_interval > Duration::from_secs(60) {
            return bad(
                "collect_interval",
                format!("{:?} is not in (0, 60 s]", self.collect_interval),
            );
        }
        Ok(())
    }
}
