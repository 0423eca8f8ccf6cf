//! Task dumps: where every task of a runtime is parked right now, as text,
//! like Go's goroutine profile (`/debug/pprof/goroutine?debug=2`).
//!
//! [`task_dump`] asks Tokio's [`Handle::dump`] for a trace of every task
//! (the chain of `async fn`s each one is suspended in, down to the Tokio
//! resource it waits on) and formats it. Tokio can only do this when it is
//! built with `--cfg tokio_unstable` and its `taskdump` feature, on Linux
//! x86_64 / aarch64 / x86 / s390x; taskline turns the feature on with its
//! own cargo feature `taskdump` (off by default: Tokio then roots every
//! task poll for tracing, a small cost on every poll). Everywhere else
//! [`task_dump`] returns [`TaskDumpError::Unsupported`] with a sentence
//! saying what is missing, and [`TASK_DUMPS_SUPPORTED`] is `false`.
//!
//! Tokio's dump pauses the workers and re-polls every task in a tracing
//! mode, so it is expensive, and it never finishes while a worker is
//! blocked (a task that does not yield). Worse, in Tokio 1.54 a dump
//! requested while a worker is stuck for more than 250 ms can wedge a
//! worker for good: the workers' rendezvous (`Barrier::wait_timeout`) does
//! not forget a worker that gave up waiting, so a later round elects a
//! leader alone, which then waits forever for the others (the runtime
//! loses that worker and its shutdown hangs; tokio-rs/tokio#8370 fixes
//! it upstream, unreleased). So on a multi-thread runtime [`task_dump`]
//! first watches the workers for [`BLOCKED_CHECK`]: a worker that is
//! active (not parked) and polled nothing in that time is stuck in one
//! poll, and the dump is refused with [`TaskDumpError::WorkerBlocked`],
//! which is the answer to "why is my service stuck" anyway. A worker that
//! blocks right after the check can still meet the Tokio bug; dumps are
//! for diagnosis, not for a tight loop. [`task_dump`] waits at most a
//! timeout, and allows one dump at a time per runtime: a dump that timed
//! out keeps the runtime busy until Tokio finishes it, and further
//! requests meanwhile get [`TaskDumpError::Busy`] instead of piling up.
//!
//! Frame names need symbols in the binary (the default on Linux; no
//! `split-debuginfo`); file and line numbers need debug info, e.g.
//! `debug = "line-tables-only"` in release.

use std::fmt;
use std::time::Duration;

use tokio::runtime::Handle;

/// Whether this build can take task dumps: taskline's feature `taskdump`,
/// `--cfg tokio_unstable`, Linux on x86_64, aarch64, x86 or s390x.
pub const TASK_DUMPS_SUPPORTED: bool = cfg!(all(
    feature = "taskdump",
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "s390x"
    )
));

/// The formatted dump is cut at this many bytes (a note says how many
/// tasks were left out): memory stays bounded with a million tasks.
pub const MAX_TASK_DUMP_BYTES: usize = 16 << 20;

/// How long [`task_dump`] watches a multi-thread runtime's workers before
/// asking Tokio for the dump (see the module docs: a worker stuck in one
/// poll that long refuses the dump).
pub const BLOCKED_CHECK: Duration = Duration::from_millis(100);

/// Why [`task_dump`] gave no dump.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskDumpError {
    /// This build cannot take task dumps; the sentence says what is missing.
    Unsupported(&'static str),
    /// A dump of this runtime is still under way (possibly one that timed
    /// out and that Tokio has not finished yet).
    Busy,
    /// This worker (Tokio's index) stayed in one poll for all of
    /// [`BLOCKED_CHECK`]: a task blocks it. Asking Tokio for a dump now
    /// could wedge the worker (see the module docs), so none was asked for.
    WorkerBlocked(usize),
    /// Tokio did not finish the dump in time: usually a worker is blocked
    /// (a task that does not yield), which is worth knowing in itself.
    Timeout(Duration),
    /// The runtime shut down (or dropped the dump's task) before the dump
    /// was taken.
    RuntimeGone,
}

impl fmt::Display for TaskDumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDumpError::Unsupported(why) => f.write_str(why),
            TaskDumpError::Busy => f.write_str("a task dump of this runtime is already under way"),
            TaskDumpError::WorkerBlocked(w) => write!(
                f,
                "worker {w} is blocked: it stayed in one poll for {BLOCKED_CHECK:?} (a task that \
                 does not yield); no task dump was taken, Tokio's would wait for that worker"
            ),
            TaskDumpError::Timeout(after) => write!(
                f,
                "the task dump did not finish within {after:?}: Tokio waits for every worker, \
                 so a worker is probably blocked (a task that does not yield)"
            ),
            TaskDumpError::RuntimeGone => {
                f.write_str("the runtime shut down before the task dump was taken")
            }
        }
    }
}

impl std::error::Error for TaskDumpError {}

/// Takes a task dump of the runtime behind `handle` and returns it as text:
/// a header line, then for every task its id and the trace of where it is
/// suspended, innermost frame last (Tokio's format):
///
/// ```text
/// 2 tasks
///
/// TASK 1 (id 7):
/// ╼ service::handle::{{closure}} at examples/service.rs:240:13
/// └╼ tokio::time::sleep::Sleep::poll ...
/// ```
///
/// Blocks the calling thread for [`BLOCKED_CHECK`] (multi-thread runtimes)
/// plus at most `timeout`: call it from a plain
/// thread or `spawn_blocking`, never from one of the runtime's workers
/// (that worker could not pause for the dump, which would then time out).
/// The dump is requested by a task taskline spawns on the runtime (Tokio
/// requires it for current-thread runtimes), so that task appears in the
/// dump too, suspended in `taskline::task_dump`.
///
/// ```
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
/// match taskline::task_dump(rt.handle(), std::time::Duration::from_secs(5)) {
///     Ok(text) => assert!(text.contains("TASK")),
///     Err(taskline::TaskDumpError::Unsupported(why)) => {
///         assert!(!taskline::TASK_DUMPS_SUPPORTED);
///         println!("{why}");
///     }
///     Err(e) => panic!("{e}"),
/// }
/// ```
pub fn task_dump(handle: &Handle, timeout: Duration) -> Result<String, TaskDumpError> {
    imp::task_dump(handle, timeout)
}

#[cfg(all(
    feature = "taskdump",
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "s390x"
    )
))]
mod imp {
    use std::fmt::Write as _;
    use std::sync::{Mutex, MutexGuard, mpsc};
    use std::time::Duration;

    use tokio::runtime::{Dump, Handle, RuntimeFlavor};

    use super::{BLOCKED_CHECK, MAX_TASK_DUMP_BYTES, TaskDumpError};

    /// Runtimes with a dump under way (bounded by the number of runtimes).
    static IN_FLIGHT: Mutex<Vec<tokio::runtime::Id>> = Mutex::new(Vec::new());

    fn in_flight() -> MutexGuard<'static, Vec<tokio::runtime::Id>> {
        IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes the runtime from [`IN_FLIGHT`] when the dump's task ends,
    /// whether it finished or was dropped by a runtime shutting down.
    struct Release(tokio::runtime::Id);

    impl Drop for Release {
        fn drop(&mut self) {
            in_flight().retain(|id| *id != self.0);
        }
    }

    pub(super) fn task_dump(handle: &Handle, timeout: Duration) -> Result<String, TaskDumpError> {
        let id = handle.id();
        {
            let mut busy = in_flight();
            if busy.contains(&id) {
                return Err(TaskDumpError::Busy);
            }
            busy.push(id);
        }
        let release = Release(id);
        let (tx, rx) = mpsc::sync_channel::<Dump>(1);
        let (go, go_rx) = tokio::sync::oneshot::channel::<()>();
        let h = handle.clone();
        // A current-thread runtime can only be dumped from inside it; a
        // multi-thread one does the tracing on a thread of Tokio's own.
        // The task asks Tokio only once the workers were checked.
        drop(handle.spawn(async move {
            let _release = release;
            if go_rx.await.is_ok() {
                let _ = tx.send(h.dump().await);
            }
        }));
        if go.is_closed() {
            // A runtime that shut down drops the task at once.
            return Err(TaskDumpError::RuntimeGone);
        }
        if let Some(worker) = blocked_worker(handle) {
            return Err(TaskDumpError::WorkerBlocked(worker));
        }
        let _ = go.send(());
        match rx.recv_timeout(timeout) {
            Ok(dump) => Ok(format(&dump)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(TaskDumpError::Timeout(timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(TaskDumpError::RuntimeGone),
        }
    }

    /// A worker of a multi-thread runtime that is active (even park/unpark
    /// count) and polled nothing during [`BLOCKED_CHECK`].
    fn blocked_worker(handle: &Handle) -> Option<usize> {
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return None;
        }
        let m = handle.metrics();
        let sample = |w| (m.worker_poll_count(w), m.worker_park_unpark_count(w));
        let before: Vec<_> = (0..m.num_workers()).map(sample).collect();
        std::thread::sleep(BLOCKED_CHECK);
        before
            .iter()
            .enumerate()
            .find(|&(w, &(polls, parks))| parks % 2 == 0 && sample(w) == (polls, parks))
            .map(|(w, _)| w)
    }

    /// Symbolizes (on the calling thread, off the runtime) and formats.
    fn format(dump: &Dump) -> String {
        let tasks: Vec<_> = dump.tasks().iter().collect();
        let mut out = format!("{} tasks\n", tasks.len());
        for (i, task) in tasks.iter().enumerate() {
            if out.len() >= MAX_TASK_DUMP_BYTES {
                let _ = writeln!(
                    out,
                    "\n... {} more tasks left out (dump cut at {MAX_TASK_DUMP_BYTES} bytes)",
                    tasks.len() - i
                );
                break;
            }
            let _ = write!(out, "\nTASK {i} (id {}):\n{}\n", task.id(), task.trace());
        }
        out
    }
}

#[cfg(not(all(
    feature = "taskdump",
    tokio_unstable,
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "s390x"
    )
)))]
mod imp {
    use std::time::Duration;

    use tokio::runtime::Handle;

    use super::TaskDumpError;

    pub(super) fn task_dump(_: &Handle, _: Duration) -> Result<String, TaskDumpError> {
        Err(TaskDumpError::Unsupported(
            if !cfg!(all(
                target_os = "linux",
                any(
                    target_arch = "x86_64",
                    target_arch = "aarch64",
                    target_arch = "x86",
                    target_arch = "s390x"
                )
            )) {
                "task dumps are not available on this platform: Tokio takes them only on Linux \
             (x86_64, aarch64, x86, s390x)"
            } else if !cfg!(tokio_unstable) {
                "task dumps are not available in this build: Tokio takes them only when built with \
             RUSTFLAGS=\"--cfg tokio_unstable\" (and taskline's cargo feature `taskdump`)"
            } else {
                "task dumps are not available in this build: rebuild with taskline's cargo feature \
             `taskdump` (e.g. `cargo run --features taskdump`)"
            },
        ))
    }
}
