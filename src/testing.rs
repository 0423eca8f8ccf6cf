//! Tracing a test: the counterpart of `go test -trace`. [`trace_test`] (or
//! the [`TraceTest`] builder) runs one test's async body on a fresh Tokio
//! runtime instrumented for a recorder of its own and writes everything
//! that runtime did to `<dir>/<test name>.perfetto-trace`, a Perfetto trace
//! that `taskline report` / `inspect` and the Perfetto UI read.
//!
//! In a `#[test]` function (no `#[tokio::test]`: the helper makes the runtime):
//!
//! ```
//! taskline::testing::trace_test("handshake_completes", async {
//!     let (tx, rx) = tokio::sync::oneshot::channel();
//!     tokio::spawn(async move { tx.send(42).unwrap() });
//!     assert_eq!(rx.await.unwrap(), 42);
//! });
//! // target/taskline-traces/handshake_completes.perfetto-trace
//! # std::fs::remove_file(taskline::testing::TraceTest::new("handshake_completes").path()).unwrap();
//! ```
//!
//! The directory is `$TASKLINE_TEST_TRACE_DIR` ([`TRACE_DIR_ENV`]), else
//! [`DEFAULT_TRACE_DIR`] (relative to the working directory, which
//! `cargo test` sets to the package's root). The file is finished (end
//! marker, registry) when the body returns and also when it panics, so a
//! failing test leaves its trace behind (its path is printed on stderr)
//! before the panic goes on.
//!
//! # Tests run in parallel
//!
//! Each traced test has its own [`Recorder`], its own runtime (whose hooks
//! record into that recorder) and its own `tracing` dispatcher
//! ([`TasklineSubscriber`] over a bare `tracing_subscriber::registry()`:
//! wakes, task names, blocking sections), installed as the *thread-local*
//! default of the test's thread (for the `block_on` body) and of each
//! runtime thread (`on_thread_start`) — never as the process's global
//! subscriber. Other tests of the same binary, traced or not, run beside it
//! and none of their tasks reach its file. Two things do not follow a test
//! into its trace: tasks it hands to another runtime, and
//! [`crate::spawn`], which goes through the process's running
//! [`Taskline`](crate::Taskline) guard (use `tokio::spawn` in traced tests).
//!
//! Spawns, polls and terminations come from the runtime hooks, which need
//! `--cfg tokio_unstable`; wakes, names and blocking sections from Tokio's
//! `tracing` instrumentation (tokio's `tracing` feature, with the same cfg).
//! Without them the trace holds what the sources available saw.

use std::cell::RefCell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

use taskline_core::{Recorder, RecorderConfig, TasklineSubscriber};
use taskline_trace::PerfettoWriter;
use tokio::runtime::Builder;

use crate::SetupError;

/// The environment variable naming the directory of test traces.
pub const TRACE_DIR_ENV: &str = "TASKLINE_TEST_TRACE_DIR";
/// Where test traces go without [`TRACE_DIR_ENV`].
pub const DEFAULT_TRACE_DIR: &str = "target/taskline-traces";
/// The extension of a test trace's file name.
pub const TRACE_EXTENSION: &str = "perfetto-trace";

/// Runs `body` as the test `name` under a traced runtime (a multi-thread
/// runtime with 2 workers and every driver enabled) and writes its trace;
/// returns what `body` returns. See the [module docs](self) and
/// [`TraceTest`] for other runtimes and directories.
///
/// # Panics
///
/// When `body` panics (after writing the trace), and when the trace cannot
/// be set up or written (the message says why); use [`TraceTest::try_run`]
/// to get that as an error instead.
pub fn trace_test<F: Future>(name: &str, body: F) -> F::Output {
    TraceTest::new(name).run(body)
}

/// A traced test run: [`new`](Self::new), options, then
/// [`run`](Self::run) (or [`run_with`](Self::run_with) for a body that
/// wants the test's recorder).
///
/// ```
/// use taskline::testing::TraceTest;
/// let dir = std::env::temp_dir().join(format!("taskline-doc-tt-{}", std::process::id()));
/// let test = TraceTest::new("suite::current_thread_case").current_thread().dir(&dir);
/// let path = test.path();
/// assert_eq!(path, dir.join("suite.current_thread_case.perfetto-trace"));
/// let polls = test.run_with(|recorder| async move {
///     tokio::spawn(async {}).await.unwrap();
///     recorder.snapshot().polls
/// });
/// # let _ = polls;
/// let trace = taskline::trace::read_trace(&std::fs::read(&path).unwrap()).unwrap();
/// assert!(!trace.unfinished);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
#[must_use = "call .run(body) to run the test"]
pub struct TraceTest {
    name: String,
    dir: Option<PathBuf>,
    /// `None`: a current-thread runtime.
    workers: Option<usize>,
    config: RecorderConfig,
    tracing: bool,
}

impl TraceTest {
    /// A traced run of the test `name` (which names the file): a
    /// multi-thread runtime with 2 workers, every driver enabled, taskline's
    /// `tracing` subscriber on its threads, the default recorder
    /// configuration.
    pub fn new(name: impl Into<String>) -> Self {
        TraceTest {
            name: name.into(),
            dir: None,
            workers: Some(2),
            config: RecorderConfig::default(),
            tracing: true,
        }
    }

    /// Like [`new`](Self::new), named after the current thread, which the
    /// standard test harness names after the running test
    /// (`module::test_name`); `test` when the thread has no name.
    pub fn for_this_test() -> Self {
        Self::new(std::thread::current().name().unwrap_or("test"))
    }

    /// A current-thread runtime instead (the body and every task on the
    /// test's thread, as `#[tokio::test]` does by default).
    pub fn current_thread(mut self) -> Self {
        self.workers = None;
        self
    }

    /// A multi-thread runtime with `n` workers (at least 1).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.workers = Some(n.max(1));
        self
    }

    /// The directory of the trace, instead of [`TRACE_DIR_ENV`] /
    /// [`DEFAULT_TRACE_DIR`].
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The recorder's configuration (ring sizes, slow-poll threshold, ...).
    pub fn recorder_config(mut self, config: RecorderConfig) -> Self {
        self.config = config;
        self
    }

    /// Whether taskline's `tracing` subscriber records Tokio's
    /// instrumentation (wakes, task names, blocking sections) on the test's
    /// threads; default true. Off, only the runtime hooks record.
    pub fn tracing(mut self, on: bool) -> Self {
        self.tracing = on;
        self
    }

    /// Where the trace goes: `<dir>/<name>.perfetto-trace`, the name with
    /// `::` turned into `.` and every character other than ASCII letters,
    /// digits, `-`, `_` and `.` into `_`.
    pub fn path(&self) -> PathBuf {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => std::env::var_os(TRACE_DIR_ENV)
                .filter(|d| !d.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_TRACE_DIR), PathBuf::from),
        };
        dir.join(format!("{}.{TRACE_EXTENSION}", file_stem(&self.name)))
    }

    /// Runs `body` under the traced runtime and writes the trace; returns
    /// what `body` returns.
    ///
    /// # Panics
    ///
    /// As [`trace_test`].
    pub fn run<F: Future>(self, body: F) -> F::Output {
        self.run_with(|_| body)
    }

    /// Like [`run`](Self::run), for a body made from the test's recorder
    /// (to take a [`Recorder::snapshot`] at the end, say).
    ///
    /// # Panics
    ///
    /// As [`trace_test`].
    pub fn run_with<B, F>(self, body: B) -> F::Output
    where
        B: FnOnce(Recorder) -> F,
        F: Future,
    {
        let name = self.name.clone();
        match self.try_run_with(body) {
            Ok(out) => out,
            Err(e) => panic!(
                "taskline: cannot trace test {name}: {}",
                crate::setup::ErrorChain(&e)
            ),
        }
    }

    /// Like [`run`](Self::run), returning why the trace could not be set up
    /// or written instead of panicking (a panic of `body` still goes on,
    /// after the trace is written).
    pub fn try_run<F: Future>(self, body: F) -> Result<F::Output, SetupError> {
        self.try_run_with(|_| body)
    }

    /// [`run_with`](Self::run_with), returning errors like [`try_run`](Self::try_run).
    pub fn try_run_with<B, F>(self, body: B) -> Result<F::Output, SetupError>
    where
        B: FnOnce(Recorder) -> F,
        F: Future,
    {
        let path = self.path();
        let recorder = Recorder::new(self.config).map_err(SetupError::Config)?;
        let result = run_traced(&recorder, path, self.workers, self.tracing, body);
        recorder.shutdown();
        result
    }
}

/// `name` as a file name (see [`TraceTest::path`]).
fn file_stem(name: &str) -> String {
    let stem: String = name
        .replace("::", ".")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never empty, never a hidden file or a way up.
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        "test".into()
    } else {
        stem.into()
    }
}

thread_local! {
    /// The test's dispatcher as this runtime thread's default, from
    /// `on_thread_start` to `on_thread_stop`.
    static THREAD_DISPATCH: RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { RefCell::new(None) };
}

fn run_traced<B, F>(
    recorder: &Recorder,
    path: PathBuf,
    workers: Option<usize>,
    tracing: bool,
    body: B,
) -> Result<F::Output, SetupError>
where
    B: FnOnce(Recorder) -> F,
    F: Future,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SetupError::TraceFile {
            path: path.clone(),
            source,
        })?;
    }
    let (writer, trace) =
        PerfettoWriter::create(&path).map_err(|source| SetupError::TraceFile {
            path: path.clone(),
            source,
        })?;
    recorder.add_sink(writer);
    let dispatch = if tracing {
        let subscriber = TasklineSubscriber::new(recorder, tracing_subscriber::registry())
            .map_err(SetupError::Subscriber)?;
        Some(tracing::Dispatch::new(subscriber))
    } else {
        None
    };
    let mut builder = match workers {
        None => Builder::new_current_thread(),
        Some(n) => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    builder.enable_all();
    if let Some(d) = &dispatch {
        let d = d.clone();
        builder
            .on_thread_start(move || {
                let guard = tracing::dispatcher::set_default(&d);
                let _ = THREAD_DISPATCH.try_with(|g| *g.borrow_mut() = Some(guard));
            })
            .on_thread_stop(|| {
                let _ = THREAD_DISPATCH.try_with(|g| g.borrow_mut().take());
            });
    }
    taskline_core::instrument(&mut builder, recorder);
    let outcome = {
        // The test's thread runs the body: the dispatcher is its default
        // too, until the runtime (and every task it still holds) is gone.
        let _default = dispatch.as_ref().map(tracing::dispatcher::set_default);
        match builder.build() {
            Ok(rt) => {
                let body = body(recorder.clone());
                let outcome = catch_unwind(AssertUnwindSafe(|| rt.block_on(body)));
                drop(rt);
                Ok(outcome)
            }
            Err(e) => Err(SetupError::Runtime(e)),
        }
    };
    let finished = trace
        .finish_recorder(recorder)
        .map(drop)
        .map_err(SetupError::FinishTrace);
    match outcome {
        Ok(Ok(out)) => finished.map(|()| out),
        Ok(Err(panic)) => {
            match &finished {
                Ok(()) => eprintln!(
                    "taskline: the trace of the failed test is {}",
                    path.display()
                ),
                Err(e) => eprintln!(
                    "taskline: the trace of the failed test ({}) is incomplete: {}",
                    path.display(),
                    crate::setup::ErrorChain(e)
                ),
            }
            resume_unwind(panic)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(file_stem("tests::a_test"), "tests.a_test");
        assert_eq!(file_stem("a b/c\\d"), "a_b_c_d");
        assert_eq!(file_stem("../up"), "_up");
        assert_eq!(file_stem(""), "test");
        assert_eq!(file_stem("::x"), "x");
    }

    #[test]
    fn the_path_is_in_the_dir_asked_for() {
        let t = TraceTest::new("m::t").dir("/tmp/x");
        assert_eq!(t.path(), PathBuf::from("/tmp/x/m.t.perfetto-trace"));
    }
}
