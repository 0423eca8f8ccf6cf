//! The profiler's typed errors.

use std::fmt;
use std::io;

/// Why the profiler could not start, register a thread or write a profile.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProfileError {
    /// A [`ProfilerConfig`](crate::ProfilerConfig) field is out of range.
    Config {
        /// The field's name.
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// This platform has no per-thread CPU-time timers (the sampler needs
    /// Linux on x86_64 or aarch64).
    Unsupported,
    /// Another [`ProfilerGuard`](crate::ProfilerGuard) of this process is
    /// running: `SIGPROF` is process-wide, so one profiler runs at a time.
    AlreadyRunning,
    /// Some other code installed a `SIGPROF` handler; taskline does not
    /// replace it.
    SignalInUse,
    /// The profiler was stopped; nothing more can be registered.
    Stopped,
    /// [`ProfilerConfig::max_threads`](crate::ProfilerConfig::max_threads)
    /// threads are registered already.
    TooManyThreads {
        /// The limit.
        max_threads: usize,
    },
    /// A system call failed.
    Os {
        /// The call.
        call: &'static str,
        /// Its error.
        error: io::Error,
    },
    /// Writing or encoding a profile failed.
    Io(io::Error),
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::Config { field, reason } => {
                write!(f, "invalid profiler configuration: {field}: {reason}")
            }
            ProfileError::Unsupported => f.write_str(
                "CPU profiling needs per-thread CPU-time timers: Linux on x86_64 or aarch64",
            ),
            ProfileError::AlreadyRunning => {
                f.write_str("a taskline CPU profiler is already running in this process")
            }
            ProfileError::SignalInUse => {
                f.write_str("another SIGPROF handler is installed; taskline does not replace it")
            }
            ProfileError::Stopped => f.write_str("the profiler is stopped"),
            ProfileError::TooManyThreads { max_threads } => {
                write!(
                    f,
                    "{max_threads} threads are registered already (max_threads)"
                )
            }
            ProfileError::Os { call, error } => write!(f, "{call} failed: {error}"),
            ProfileError::Io(e) => write!(f, "cannot write the profile: {e}"),
        }
    }
}

impl std::error::Error for ProfileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProfileError::Os { error, .. } | ProfileError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for ProfileError {
    fn from(e: io::Error) -> Self {
        ProfileError::Io(e)
    }
}
