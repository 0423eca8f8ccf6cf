//! [`ProfileRuntimeExt`]: register every thread a Tokio runtime starts.

use tokio::runtime::Builder;

use crate::profiler::ProfilerHandle;

/// `builder.profile_threads(&handle)`: samples every thread the runtime
/// starts (workers and blocking-pool threads) by registering it from the
/// runtime's `on_thread_start` callback.
///
/// Tokio keeps one `on_thread_start` callback: this replaces an earlier
/// one, and one set later replaces this (then call
/// [`ProfilerHandle::register_current_thread`] from your own). The thread
/// that calls `block_on` is not started by the runtime: register it
/// yourself if its work matters (a current-thread runtime runs everything
/// there). A registration that fails (e.g. `max_threads` reached) is
/// counted in [`ProfilerStats::registration_failures`](crate::ProfilerStats::registration_failures).
///
/// ```no_run
/// use taskline_profile::{ProfileRuntimeExt, Profiler, ProfilerConfig};
/// let profiler = Profiler::start(ProfilerConfig::default())?;
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .profile_threads(&profiler.handle())
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ProfileRuntimeExt {
    /// Registers every thread the runtime starts with `profiler`.
    fn profile_threads(&mut self, profiler: &ProfilerHandle) -> &mut Self;
}

impl ProfileRuntimeExt for Builder {
    fn profile_threads(&mut self, profiler: &ProfilerHandle) -> &mut Self {
        let profiler = profiler.clone();
        self.on_thread_start(move || profiler.register_or_count())
    }
}
