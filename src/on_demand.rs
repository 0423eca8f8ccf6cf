//! On-demand traces: "record the next N seconds to this file", like Go's
//! `/debug/pprof/trace?seconds=5`, from a running service
//! ([`Taskline::trace_for`](crate::Taskline::trace_for)).
//!
//! # What a trace holds
//!
//! Exactly the window asked for: every event with a timestamp in
//! `[start, start + N)`, where `start` is read just after the call attached
//! the trace's sink. Nothing from before (a task spawned earlier has no
//! `Spawn` in the file) or after. Tasks spawned before the window are still
//! named: their polls carry their spawn site (or task name) because the
//! trace is encoded with [`encode_window`], given as context the spawns of
//! the tasks alive when it began (from the recorder's aggregates, and from
//! the spawns the sink was handed from just before `start`; without
//! aggregation, `RecorderConfig::aggregate == false`, only the latter).
//! The file is complete when [`OnDemandTrace::wait`] returns: registry
//! strings and sites, end marker, written atomically
//! ([`write_atomically`]: it appears whole or not at all), deflated
//! unless [`OnDemandConfig::compress`] is off, and
//! readable by `taskline inspect` / `taskline report` and the Perfetto UI.
//!
//! # Limits
//!
//! [`OnDemandConfig`] bounds every trace: at most
//! [`max_duration`](OnDemandConfig::max_duration) long (longer requests get
//! [`OnDemandError::TooLong`]), at most
//! [`max_events`](OnDemandConfig::max_events) events kept in memory (32
//! bytes each) until the file is written, plus the naming context (the
//! spawns and names of live tasks: at most three times the recorder's
//! `max_tracked_tasks` events). A trace that reaches the event
//! cap stops keeping events, goes on counting the ones it leaves out until
//! its window ends, and says it was cut short: [`OnDemandInfo::cut_short`],
//! and the file's end marker counts the events left out (plus those the
//! recorder dropped during the window) as dropped, so `taskline report`
//! warns. One trace runs at a time ([`OnDemandError::Busy`]), and the next
//! may start only [`min_interval`](OnDemandConfig::min_interval) after the
//! previous one ended ([`OnDemandError::TooSoon`]).
//!
//! # Off costs nothing
//!
//! While no trace runs, nothing of this module is on any path: the trace's
//! sink is attached to the recorder when a trace starts and removed
//! ([`Recorder::remove_sink`]) when it ends, so the recording threads and
//! the consumer do exactly the work they do without it (no flag, no atomic
//! load). While a trace runs, the consumer hands its sink each batch: two
//! binary searches for the window's bounds and one copy of the events
//! inside it. Encoding and writing happen on the trace's own thread
//! (`taskline-on-demand`) after the window, never on the consumer or on
//! the caller.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use taskline_core::{Event, EventKind, Recorder, Registry, Sink, SinkId};
use taskline_trace::{TraceOptions, encode_window, write_atomically};

/// Default [`OnDemandConfig::max_duration`]: one minute.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(60);
/// Default [`OnDemandConfig::max_events`]: 2 million events, 64 MiB while
/// the trace records (a file of roughly 10 to 40 MB).
pub const DEFAULT_MAX_EVENTS: usize = 2_000_000;
/// Default [`OnDemandConfig::min_interval`]: five seconds.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(5);

/// Bounds of the on-demand traces of one [`Taskline`](crate::Taskline)
/// (see [`TasklineBuilder::on_demand`](crate::TasklineBuilder::on_demand)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnDemandConfig {
    /// Longest trace that may be asked for. Default [`DEFAULT_MAX_DURATION`].
    pub max_duration: Duration,
    /// Events a trace keeps at most (32 bytes of memory each while it
    /// records); past it the trace is cut short. Default [`DEFAULT_MAX_EVENTS`].
    pub max_events: usize,
    /// Time from the end of one trace to the start of the next. Default
    /// [`DEFAULT_MIN_INTERVAL`].
    pub min_interval: Duration,
    /// Deflate the file (Perfetto `compressed_packets`, about 5x smaller;
    /// the encoding runs on the trace's own thread). Default true.
    pub compress: bool,
}

impl Default for OnDemandConfig {
    fn default() -> Self {
        OnDemandConfig {
            max_duration: DEFAULT_MAX_DURATION,
            max_events: DEFAULT_MAX_EVENTS,
            min_interval: DEFAULT_MIN_INTERVAL,
            compress: true,
        }
    }
}

impl OnDemandConfig {
    /// Checks the configuration: a non-zero maximum duration and event cap.
    ///
    /// ```
    /// use taskline::on_demand::OnDemandConfig;
    /// assert!(OnDemandConfig::default().validate().is_ok());
    /// assert!(OnDemandConfig { max_events: 0, ..Default::default() }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), OnDemandError> {
        if self.max_duration.is_zero() {
            return Err(OnDemandError::Config("max_duration must be non-zero"));
        }
        if self.max_events == 0 {
            return Err(OnDemandError::Config("max_events must be at least 1"));
        }
        Ok(())
    }
}

/// Why an on-demand trace was refused or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum OnDemandError {
    /// Another on-demand trace is running; it ends in `remaining`.
    Busy {
        /// Time left of the running trace's window.
        remaining: Duration,
    },
    /// The previous trace ended less than
    /// [`OnDemandConfig::min_interval`] ago.
    TooSoon {
        /// When the next trace may start, from now.
        retry_after: Duration,
    },
    /// The duration asked for is above [`OnDemandConfig::max_duration`].
    TooLong {
        /// What was asked for.
        asked: Duration,
        /// The maximum.
        max: Duration,
    },
    /// A zero duration was asked for: there is nothing to record.
    ZeroDuration,
    /// The configuration was refused ([`OnDemandConfig::validate`]).
    Config(&'static str),
    /// The trace's thread could not start, or writing the file failed (the
    /// target is left untouched).
    Io(io::Error),
    /// The trace's thread ended without an answer (it panicked).
    Stopped,
}

impl OnDemandError {
    /// When asking again may succeed: the time left for
    /// [`Busy`](Self::Busy) (plus nothing: `min_interval` starts when it
    /// ends) and [`TooSoon`](Self::TooSoon); `None` for the others, which
    /// asking again will not fix.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OnDemandError::Busy { remaining } => Some(*remaining),
            OnDemandError::TooSoon { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

impl fmt::Display for OnDemandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnDemandError::Busy { remaining } => write!(
                f,
                "another on-demand trace is running (it ends in {:.1} s)",
                remaining.as_secs_f64()
            ),
            OnDemandError::TooSoon { retry_after } => write!(
                f,
                "the previous on-demand trace ended too recently; retry in {:.1} s",
                retry_after.as_secs_f64()
            ),
            OnDemandError::TooLong { asked, max } => write!(
                f,
                "an on-demand trace of {:.1} s was asked for; the maximum is {:.1} s",
                asked.as_secs_f64(),
                max.as_secs_f64()
            ),
            OnDemandError::ZeroDuration => {
                f.write_str("an on-demand trace needs a non-zero duration")
            }
            OnDemandError::Config(m) => write!(f, "invalid on-demand trace config: {m}"),
            OnDemandError::Io(_) => f.write_str("the on-demand trace could not be written"),
            OnDemandError::Stopped => f.write_str("the on-demand trace stopped without a result"),
        }
    }
}

impl std::error::Error for OnDemandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OnDemandError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a trace holds less than its whole window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutReason {
    /// It reached [`OnDemandConfig::max_events`].
    MaxEvents,
    /// The [`Taskline`](crate::Taskline) guard shut down before the window
    /// ended; the window ends at the shutdown.
    Shutdown,
}

/// Where and why a trace was cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutShort {
    /// Why.
    pub reason: CutReason,
    /// Timestamp (ns since the recorder's clock epoch) of the first event
    /// left out ([`CutReason::MaxEvents`]) or of the shutdown.
    pub at_ns: u64,
    /// Events inside the window that are not in the file (0 for a shutdown).
    pub events_not_written: u64,
}

/// A finished on-demand trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnDemandInfo {
    /// Where it was written.
    pub path: PathBuf,
    /// The window's start (ns since the recorder's clock epoch,
    /// [`taskline_core::now_ns`]): every event in the file is at or after it.
    pub start_ns: u64,
    /// The window's end, exclusive: every event in the file is before it.
    pub end_ns: u64,
    /// Events in the file.
    pub events: usize,
    /// File size.
    pub bytes: u64,
    /// Events the recorder dropped during the window (rings full), counted
    /// in the file's end marker.
    pub dropped_by_recorder: u64,
    /// `Some` when the file holds less than the whole window.
    pub cut_short: Option<CutShort>,
}

/// A running on-demand trace, from
/// [`Taskline::trace_for`](crate::Taskline::trace_for). It finishes by itself
/// when its window ends, whether this handle is waited on or dropped.
#[derive(Debug)]
#[must_use = "the trace runs anyway; wait() to know when its file is complete"]
pub struct OnDemandTrace {
    path: PathBuf,
    start_ns: u64,
    end_ns: u64,
    done: Arc<AtomicBool>,
    rx: mpsc::Receiver<Result<OnDemandInfo, OnDemandError>>,
}

impl OnDemandTrace {
    /// Where the file will be.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The window's start (ns since the recorder's clock epoch).
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// The window's end as asked for (exclusive; a shutdown ends it earlier).
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// Whether the file is written (or failed): [`wait`](Self::wait) then
    /// returns at once.
    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Blocks until the window has ended and the file is complete. From
    /// async code, call it inside `tokio::task::spawn_blocking`.
    pub fn wait(self) -> Result<OnDemandInfo, OnDemandError> {
        self.rx.recv().unwrap_or(Err(OnDemandError::Stopped))
    }
}

/// The events of one window, filled by its sink on the consumer thread.
struct Window {
    max_events: usize,
    /// `Spawn` / `TaskName` events from before `start` kept at most.
    max_context: usize,
    state: Mutex<WindowState>,
}

struct WindowState {
    /// The window, `[start, end)`. Set under this lock right after the sink
    /// is attached (`u64::MAX` until then: everything is "before"), so a
    /// batch is cut either before the clock read (all of it older) or after.
    start: u64,
    /// Lowered to the shutdown time by a shutdown.
    end: u64,
    events: Vec<Event>,
    context: Vec<Event>,
    cut_at: Option<u64>,
    not_written: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sink attached while a window runs.
struct WindowSink(Arc<Window>);

impl Sink for WindowSink {
    fn on_events(&mut self, events: &[Event], _registry: &Registry) {
        let w = &*self.0;
        let mut st = lock(&w.state);
        let st = &mut *st;
        // A batch is in timestamp order.
        let lo = events.partition_point(|e| e.ts_ns < st.start);
        let hi = events.partition_point(|e| e.ts_ns < st.end).max(lo);
        // Spawns (and names) from just before the window name its tasks.
        for e in &events[..lo] {
            if matches!(e.kind(), Some(EventKind::Spawn | EventKind::TaskName))
                && st.context.len() < w.max_context
            {
                st.context.push(*e);
            }
        }
        let inside = &events[lo..hi];
        let room = w.max_events.saturating_sub(st.events.len());
        let take = room.min(inside.len());
        if take > 0 {
            let needed = st.events.len() + take;
            if needed > st.events.capacity() {
                // Grow (doubling, from 4096) but never past the cap.
                let target = needed
                    .max(st.events.capacity().saturating_mul(2).max(4096))
                    .min(w.max_events);
                let len = st.events.len();
                st.events.reserve_exact(target - len);
            }
            st.events.extend_from_slice(&inside[..take]);
        }
        if take < inside.len() {
            st.cut_at.get_or_insert(inside[take].ts_ns);
            st.not_written += (inside.len() - take) as u64;
        }
    }
}

/// The running trace.
struct Run {
    /// Its window's planned end (ns).
    end: u64,
    /// A shutdown asked it to stop now.
    stop: bool,
}

/// Whether a trace runs, and when the last one ended.
#[derive(Default)]
struct Limits {
    running: Option<Run>,
    last_end: Option<Instant>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    config: OnDemandConfig,
    limits: Mutex<Limits>,
    /// Signalled when a shutdown asks the running trace to stop.
    wake: Condvar,
}

/// The on-demand traces of one guard: the limits and the running trace.
pub(crate) struct OnDemand {
    shared: Arc<Shared>,
}

/// Clears "running" when the trace's thread is done, also if it panicked.
struct Release(Arc<Shared>);

impl Drop for Release {
    fn drop(&mut self) {
        let mut l = lock(&self.0.limits);
        l.running = None;
        l.last_end = Some(Instant::now());
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the trace's thread needs.
struct Job {
    shared: Arc<Shared>,
    recorder: Recorder,
    window: Arc<Window>,
    sink: SinkId,
    /// `Spawn` / `TaskName` of the tasks alive when the window opened.
    context: Vec<Event>,
    path: PathBuf,
    start: u64,
    end: u64,
    dropped_at_start: u64,
}

impl OnDemand {
    /// The limits for a guard; `config` must have passed `validate`.
    pub(crate) fn new(config: OnDemandConfig) -> Self {
        OnDemand {
            shared: Arc::new(Shared {
                config,
                limits: Mutex::new(Limits::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// Starts a trace of the next `duration` into `path` (see
    /// [`Taskline::trace_for`](crate::Taskline::trace_for)).
    pub(crate) fn start(
        &self,
        recorder: &Recorder,
        duration: Duration,
        path: PathBuf,
    ) -> Result<OnDemandTrace, OnDemandError> {
        let config = &self.shared.config;
        if duration.is_zero() {
            return Err(OnDemandError::ZeroDuration);
        }
        if duration > config.max_duration {
            return Err(OnDemandError::TooLong {
                asked: duration,
                max: config.max_duration,
            });
        }
        if path.file_name().is_none() {
            return Err(OnDemandError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", path.display()),
            )));
        }
        let mut limits = lock(&self.shared.limits);
        if let Some(run) = &limits.running {
            let left = run.end.saturating_sub(taskline_core::now_ns());
            return Err(OnDemandError::Busy {
                remaining: Duration::from_nanos(left),
            });
        }
        if let Some(last) = limits.last_end {
            let since = last.elapsed();
            if since < config.min_interval {
                return Err(OnDemandError::TooSoon {
                    retry_after: config.min_interval - since,
                });
            }
        }
        // The previous trace's thread has finished its work: reap it.
        if let Some(t) = limits.thread.take() {
            let _ = t.join();
        }
        // Taken; the lock is not held while the window opens (a snapshot).
        limits.running = Some(Run {
            end: taskline_core::now_ns().saturating_add(duration_ns(duration)),
            stop: false,
        });
        drop(limits);
        let window = Arc::new(Window {
            max_events: config.max_events,
            max_context: recorder.config().max_tracked_tasks,
            state: Mutex::new(WindowState {
                start: u64::MAX,
                end: u64::MAX,
                events: Vec::new(),
                context: Vec::new(),
                cut_at: None,
                not_written: 0,
            }),
        });
        let dropped_at_start = recorder.stats().dropped;
        let sink = recorder.add_sink(WindowSink(window.clone()));
        // The tasks alive now, to name those spawned before the window: a
        // snapshot after the attach (a task spawned since is handed to the
        // sink) and before the window opens (a task alive when it opens is
        // in it, also if it ends right after).
        let context = live_tasks(recorder);
        // The window opens after the sink is attached, so the sink is handed
        // every event stamped inside it (see `WindowState::start`).
        let (start, end) = {
            let mut st = lock(&window.state);
            st.start = taskline_core::now_ns();
            st.end = st.start.saturating_add(duration_ns(duration));
            (st.start, st.end)
        };
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let job = Job {
            shared: self.shared.clone(),
            recorder: recorder.clone(),
            window,
            sink,
            context,
            path: path.clone(),
            start,
            end,
            dropped_at_start,
        };
        let finished = done.clone();
        let spawned = std::thread::Builder::new()
            .name("taskline-on-demand".into())
            .spawn(move || {
                let release = Release(job.shared.clone());
                let result = job.run();
                drop(release);
                finished.store(true, Ordering::Release);
                let _ = tx.send(result);
            });
        let mut limits = lock(&self.shared.limits);
        match spawned {
            Ok(handle) => {
                if let Some(run) = limits.running.as_mut() {
                    run.end = end;
                }
                limits.thread = Some(handle);
                Ok(OnDemandTrace {
                    path,
                    start_ns: start,
                    end_ns: end,
                    done,
                    rx,
                })
            }
            Err(e) => {
                limits.running = None;
                drop(limits);
                recorder.remove_sink(sink);
                Err(OnDemandError::Io(e))
            }
        }
    }

    /// Ends the running trace now (its window ends here) and waits until
    /// its file is written. Called by the guard's shutdown, before the
    /// recorder stops.
    pub(crate) fn stop(&self) {
        let thread = {
            let mut l = lock(&self.shared.limits);
            if let Some(run) = l.running.as_mut() {
                run.stop = true;
            }
            l.thread.take()
        };
        self.shared.wake.notify_all();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// The `Spawn` (and `TaskName`) of every live task the recorder's
/// aggregates track, as context for [`encode_window`]; empty without
/// aggregation.
fn live_tasks(recorder: &Recorder) -> Vec<Event> {
    let registry = recorder.registry();
    let mut context = Vec::new();
    for t in recorder.snapshot().tasks {
        let mut spawn = Event::new(EventKind::Spawn, 0, t.id);
        spawn.aux = t.site;
        context.push(spawn);
        if let Some(name) = &t.name {
            // Interned when the task was named: this finds its id.
            let mut named = Event::new(EventKind::TaskName, 0, t.id);
            named.aux = registry.intern(name);
            context.push(named);
        }
    }
    context
}

impl Job {
    /// The trace's thread: names, waits for the window to end, collects,
    /// encodes and writes.
    fn run(self) -> Result<OnDemandInfo, OnDemandError> {
        let registry = self.recorder.registry();
        let mut context = self.context;
        let mut end = self.end;
        let stopped = {
            let mut l = lock(&self.shared.limits);
            loop {
                let now = taskline_core::now_ns();
                if l.running.as_ref().is_some_and(|r| r.stop) {
                    break Some(now.min(end));
                }
                if now >= end {
                    break None;
                }
                l = self
                    .shared
                    .wake
                    .wait_timeout(l, Duration::from_nanos(end - now))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        if let Some(at) = stopped {
            end = at;
            lock(&self.window.state).end = end;
        } else {
            // Events stamped just before the end may still be on their way
            // into a ring: give them the recorder's reorder window.
            std::thread::sleep(self.recorder.config().reorder_window);
        }
        self.recorder.flush();
        self.recorder.remove_sink(self.sink);
        let dropped_by_recorder = self
            .recorder
            .stats()
            .dropped
            .saturating_sub(self.dropped_at_start);
        let mut st = std::mem::replace(
            &mut *lock(&self.window.state),
            WindowState {
                start: u64::MAX,
                end: 0,
                events: Vec::new(),
                context: Vec::new(),
                cut_at: None,
                not_written: 0,
            },
        );
        // A shutdown may have lowered the end after a batch went in.
        st.events.retain(|e| e.ts_ns < end);
        context.append(&mut st.context);
        let cut_short = match (stopped, st.cut_at) {
            (_, Some(at)) => Some(CutShort {
                reason: CutReason::MaxEvents,
                at_ns: at,
                events_not_written: st.not_written,
            }),
            (Some(at), None) => Some(CutShort {
                reason: CutReason::Shutdown,
                at_ns: at,
                events_not_written: 0,
            }),
            (None, None) => None,
        };
        let options = TraceOptions {
            compress: self.shared.config.compress,
            ..TraceOptions::default()
        };
        let dropped = dropped_by_recorder + st.not_written;
        let bytes = write_atomically(&self.path, |out| {
            encode_window(&context, &st.events, registry, dropped, options, out)
        })
        .map_err(OnDemandError::Io)?;
        Ok(OnDemandInfo {
            path: self.path,
            start_ns: self.start,
            end_ns: end,
            events: st.events.len(),
            bytes,
            dropped_by_recorder,
            cut_short,
        })
    }
}
