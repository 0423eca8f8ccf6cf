//! Why a render failed.

use std::fmt;

/// Why [`crate::render`], [`crate::run`] or [`crate::run_peer`] could not produce an image.
#[derive(Debug)]
pub enum RenderError {
    /// `width * height` exceeds [`crate::MAX_PIXELS`].
    TooLarge {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
    },
    /// `workers`/`threads` exceeds [`crate::MAX_WORKERS`].
    TooManyWorkers(usize),
    /// [`crate::render`] was polled outside a Tokio runtime.
    NoRuntime,
    /// Building the Tokio runtime or spawning a thread failed.
    Runtime(std::io::Error),
    /// Building the rayon thread pool failed.
    ThreadPool(String),
    /// A render task was cancelled or panicked (e.g. the runtime shut down mid-render).
    Task(String),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::TooLarge { width, height } => write!(
                f,
                "image {width}x{height} is larger than the limit of {} pixels",
                crate::MAX_PIXELS
            ),
            RenderError::TooManyWorkers(n) => {
                write!(
                    f,
                    "{n} workers requested; the limit is {}",
                    crate::MAX_WORKERS
                )
            }
            RenderError::NoRuntime => f.write_str("render must run inside a Tokio runtime"),
            RenderError::Runtime(e) => write!(f, "could not build the Tokio runtime: {e}"),
            RenderError::ThreadPool(e) => write!(f, "could not build the rayon pool: {e}"),
            RenderError::Task(e) => write!(f, "a render task failed: {e}"),
        }
    }
}

impl std::error::Error for RenderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RenderError::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tokio::task::JoinError> for RenderError {
    fn from(e: tokio::task::JoinError) -> Self {
        RenderError::Task(e.to_string())
    }
}
