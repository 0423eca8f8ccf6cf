//! [`Profile`]: the aggregated samples of a profiling run, and its pprof
//! output.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::ProfileError;

/// The profiler's health counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfilerStats {
    /// Samples taken (a sample standing for several timer periods, when
    /// the timer overran, counts each).
    pub samples: u64,
    /// Samples dropped because a thread's ring was full between two
    /// collections.
    pub lost_ring_full: u64,
    /// Samples dropped because `max_entries` distinct stacks or samples
    /// were kept already.
    pub dropped_table_full: u64,
    /// Samples whose stack was deeper than `max_depth` (their innermost
    /// frames are kept).
    pub truncated_stacks: u64,
    /// Threads registered since start.
    pub threads_registered: u64,
    /// Threads registered now.
    pub threads_active: usize,
    /// Timed samples not kept for the trace because
    /// [`ProfilerConfig::trace_samples`](crate::ProfilerConfig::trace_samples)
    /// were logged already since the last
    /// [`take_cpu_samples`](crate::ProfilerGuard::take_cpu_samples) (the
    /// aggregate still counts them).
    pub trace_samples_dropped: u64,
    /// `on_thread_start` registrations that failed (see
    /// [`ProfilerHandle::register_or_count`](crate::ProfilerHandle::register_or_count)).
    pub registration_failures: u64,
}

/// Where a sampled task was spawned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpawnSite {
    /// `file:line:col`, as the recorder's [`Registry::site`](taskline_core::Registry::site) prints it.
    pub name: Arc<str>,
    /// The site's id in the configured recorder's registry, if one was
    /// configured ([`ProfilerConfig::recorder`](crate::ProfilerConfig::recorder)).
    pub id: Option<u32>,
}

/// Samples with one stack and one set of labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSample {
    /// Instruction addresses, innermost first: the interrupted instruction,
    /// then return addresses minus one (inside each call instruction).
    pub stack: Arc<[u64]>,
    /// The Tokio task being polled, 0 when the thread polled none (the
    /// runtime's own work, `block_on` outside a task, a foreign thread).
    pub task: u64,
    /// The task's spawn site, when a site-aware source (Tokio's hooks or
    /// taskline's wrapper) recorded the poll.
    pub site: Option<SpawnSite>,
    /// The Tokio worker index of the thread's latest recorded poll.
    pub worker: Option<u32>,
    /// The thread's name.
    pub thread: Arc<str>,
    /// Samples (timer periods of CPU time) with these stack and labels.
    pub count: u64,
}

/// The aggregated samples of a profiling run.
#[derive(Clone, Debug)]
pub struct Profile {
    /// The sampling frequency (per second of a thread's CPU time).
    pub frequency_hz: u32,
    /// CPU time one sample stands for, in nanoseconds.
    pub period_ns: u64,
    /// When the profiler started.
    pub start: SystemTime,
    /// How long it ran (to the moment this profile was taken).
    pub duration: Duration,
    /// The samples, most frequent first.
    pub samples: Vec<ProfileSample>,
    /// Health counters.
    pub stats: ProfilerStats,
}

impl Profile {
    /// Samples in the profile.
    pub fn total(&self) -> u64 {
        self.samples.iter().map(|s| s.count).sum()
    }

    /// Samples per spawn site name (`None`: samples outside any task with
    /// a known site), for a one-line "which spawn site took the CPU".
    ///
    /// ```
    /// # use taskline_profile::Profile;
    /// fn top_site(profile: &Profile) -> Option<String> {
    ///     let by_site = profile.samples_by_site();
    ///     by_site.iter().filter_map(|(site, n)| Some((site.as_ref()?, n)))
    ///         .max_by_key(|(_, n)| **n).map(|(site, _)| site.to_string())
    /// }
    /// ```
    pub fn samples_by_site(&self) -> BTreeMap<Option<Arc<str>>, u64> {
        let mut by = BTreeMap::new();
        for s in &self.samples {
            *by.entry(s.site.as_ref().map(|x| Arc::clone(&x.name)))
                .or_insert(0) += s.count;
        }
        by
    }

    /// The profile as a gzipped pprof `profile.proto` (what `go tool pprof`
    /// reads), symbolized in this process: call it in the profiled process
    /// (addresses are this process's), e.g. right after
    /// [`ProfilerGuard::stop`](crate::ProfilerGuard::stop).
    pub fn to_pprof(&self) -> Result<Vec<u8>, ProfileError> {
        let symbols = crate::symbolize::symbolize(self);
        crate::pprof::encode(self, &symbols)
    }

    /// [`to_pprof`](Self::to_pprof) through a symbol cache kept between calls.
    pub(crate) fn to_pprof_with(
        &self,
        cache: &mut crate::symbolize::SymbolCache,
    ) -> Result<Vec<u8>, ProfileError> {
        let symbols = crate::symbolize::symbolize_with(cache, self);
        crate::pprof::encode(self, &symbols)
    }

    /// [`to_pprof`](Self::to_pprof) written to `path` (replaced whole: a
    /// temporary file next to it, renamed).
    pub fn write_pprof(&self, path: impl AsRef<Path>) -> Result<(), ProfileError> {
        write_atomically(path.as_ref(), &self.to_pprof()?)
    }
}

/// Writes `bytes` to `path` whole: a temporary file next to it, renamed.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ProfileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}
