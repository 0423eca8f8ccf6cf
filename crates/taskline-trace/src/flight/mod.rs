//! The flight recorder: keep the last seconds of events in a bounded window
//! and dump them as a Perfetto trace on demand or when something goes wrong.
//!
//! [`FlightRecorder`] is a [`Sink`]: add it to a recorder and it keeps the
//! events of the last [`FlightConfig::max_age`] (by event time) in at most
//! [`FlightConfig::max_bytes`], compactly (about 8 to 10 bytes per event
//! instead of 32, see `window`), evicting the oldest first. A dump writes
//! the retained window with [`encode_window`] (lossless, deflated; the
//! spawns of long-lived tasks that left the window still name their polls)
//! atomically: a temporary file in the target directory, `fsync`, then
//! `rename`, so a reader never sees a partial file.
//!
//! Dumps run on a dedicated thread (`taskline-flight`), never on the thread
//! asking for one, and one at a time (so concurrent requests cannot corrupt
//! a file). Triggers:
//! - [`FlightRecorderHandle::dump_now`], from any thread; the returned
//!   [`DumpTicket`] can wait for the result or be dropped;
//! - a predicate over events ([`FlightRecorder::with_trigger`]), run on the
//!   recorder's consumer thread;
//! - a slow poll ([`FlightConfig::dump_on_slow_poll`], by the recorder's
//!   slow-poll threshold): when a `PollEnd` arrives for a poll longer than
//!   the threshold, and, by the dump thread's
//!   watchdog (every [`FlightConfig::watchdog_interval`]), when a poll whose
//!   `PollStart` was delivered has been running longer than the threshold,
//!   so a handler blocking its worker is dumped while it still blocks. The
//!   watchdog only sees a `PollStart` after the recorder drained it (its
//!   `drain_interval` + `reorder_window`), so it fires at most that late.
//!
//! Automatic dumps (predicate, slow poll) are rate-limited: at most one per
//! [`FlightConfig::min_auto_interval`]; the others are counted as suppressed.
//! They go to [`FlightConfig::dump_dir`] named
//! `taskline-<UTC time>-<seq>-<reason>.pftrace`.
//!
//! Memory: the window takes at most `max_bytes`, plus the spawn records of
//! at most `window::MAX_LABELS` tasks (about 5 MiB); a dump decodes the
//! window once (32 bytes per event while it is being written); the registry mirror the dump
//! thread names ids with is bounded by the recorder's `max_interned`; the
//! request queue holds at most [`MAX_PENDING_DUMPS`] requests.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use taskline_core::{Event, EventKind};
use taskline_core::{RecorderConfig, Sink};
use taskline_core::{Registry, Site, ThreadInfo};

use crate::encode_window;

mod window;
use window::Window;

/// Smallest `max_bytes`: room for one chunk of one event.
const MIN_WINDOW_BYTES: usize = 128;

/// Numbers every dump in the process, so names and temporary files stay
/// distinct when several flight recorders dump to the same directory.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Dump requests queued at most; more are refused with [`FlightError::Busy`].
pub const MAX_PENDING_DUMPS: usize = 64;

/// Configuration of a [`FlightRecorder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlightConfig {
    /// Keep events at most this much older than the newest one. Default 10 s.
    pub max_age: Duration,
    /// Keep at most this many bytes of events, as stored (about 8 to 10 per
    /// event; at least 128). Default 64 MiB: tens of seconds of a busy
    /// service.
    pub max_bytes: usize,
    /// Directory of automatic dumps (created when needed). Default `./taskline-flight`.
    pub dump_dir: PathBuf,
    /// Dump automatically when a poll is slow: longer than the recorder's
    /// one slow-poll threshold (`RecorderConfig::slow_poll_threshold`, the
    /// same rule the snapshot, the OTel metrics and `taskline report` count
    /// slow polls by; see [`FlightRecorder::for_recorder`]). Default true.
    pub dump_on_slow_poll: bool,
    /// How often the dump thread checks for polls still running past the threshold. Default 5 ms.
    pub watchdog_interval: Duration,
    /// Minimum time between two automatic dumps. Default 10 s.
    pub min_auto_interval: Duration,
}

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig {
            max_age: Duration::from_secs(10),
            max_bytes: 64 << 20,
            dump_dir: PathBuf::from("taskline-flight"),
            dump_on_slow_poll: true,
            watchdog_interval: Duration::from_millis(5),
            min_auto_interval: Duration::from_secs(10),
        }
    }
}

impl FlightConfig {
    /// Check the configuration.
    pub fn validate(&self) -> Result<(), FlightError> {
        let bad = |m: &'static str| Err(FlightError::Config(m));
        if self.max_bytes < MIN_WINDOW_BYTES {
            return bad("max_bytes must hold at least one event (128 bytes)");
        }
        if self.max_age.is_zero() {
            return bad("max_age must be non-zero");
        }
        if self.watchdog_interval < Duration::from_micros(100)
            || self.watchdog_interval > Duration::from_secs(60)
        {
            return bad("watchdog_interval must be between 100 µs and 60 s");
        }
        if self.dump_dir.as_os_str().is_empty() {
            return bad("dump_dir must not be empty");
        }
        Ok(())
    }

    fn max_age_ns(&self) -> u64 {
        u64::try_from(self.max_age.as_nanos()).unwrap_or(u64::MAX)
    }
}

/// What went wrong with the flight recorder or one of its dumps.
#[derive(Debug)]
pub enum FlightError {
    /// The configuration was refused.
    Config(&'static str),
    /// Writing the dump failed (the target is left untouched).
    Io(io::Error),
    /// Too many dumps are queued.
    Busy,
    /// The flight recorder was dropped (or its thread could not start).
    Stopped,
    /// The dump did not finish in the time waited for it.
    Timeout,
}

impl fmt::Display for FlightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlightError::Config(m) => write!(f, "invalid flight recorder config: {m}"),
            FlightError::Io(_) => f.write_str("flight recorder dump failed"),
            FlightError::Busy => {
                write!(f, "flight recorder busy: {MAX_PENDING_DUMPS} dumps queued")
            }
            FlightError::Stopped => write!(f, "flight recorder stopped"),
            FlightError::Timeout => write!(f, "flight recorder dump still running"),
        }
    }
}

impl std::error::Error for FlightError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlightError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a dump was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpReason {
    /// [`FlightRecorderHandle::dump_now`].
    Requested,
    /// A `PollEnd` of a poll longer than the threshold.
    SlowPoll {
        /// The task polled.
        task: u64,
        /// How long the poll ran (ns).
        duration_ns: u64,
    },
    /// The watchdog saw a poll running longer than the threshold.
    StuckPoll {
        /// The task being polled.
        task: u64,
        /// How long it had been running (ns) when seen.
        running_ns: u64,
    },
    /// A user trigger returned true.
    Trigger(String),
}

impl DumpReason {
    /// Short name used in file names.
    pub fn label(&self) -> String {
        match self {
            DumpReason::Requested => "requested".into(),
            DumpReason::SlowPoll { .. } => "slow-poll".into(),
            DumpReason::StuckPoll { .. } => "stuck-poll".into(),
            DumpReason::Trigger(name) => {
                let clean: String = name
                    .chars()
                    .take(32)
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("trigger-{clean}")
            }
        }
    }
}

/// A finished dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpInfo {
    /// Where the trace was written.
    pub path: PathBuf,
    /// Events in it.
    pub events: usize,
    /// File size.
    pub bytes: u64,
    /// Why it was written.
    pub reason: DumpReason,
}

/// Counters of a flight recorder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlightStats {
    /// Events in the window now.
    pub retained_events: usize,
    /// The bytes they take, as stored (never more than `max_bytes`).
    pub retained_bytes: usize,
    /// Events evicted (by age or size).
    pub evicted: u64,
    /// Dumps written.
    pub dumps: u64,
    /// Of which automatic.
    pub auto_dumps: u64,
    /// Automatic dumps skipped by the rate limit.
    pub suppressed: u64,
    /// Dumps that failed.
    pub failed: u64,
}

/// The answer to a dump request.
#[derive(Debug)]
pub struct DumpTicket {
    rx: mpsc::Receiver<Result<DumpInfo, FlightError>>,
}

impl DumpTicket {
    /// Wait for the dump (at most `timeout`).
    pub fn wait(self, timeout: Duration) -> Result<DumpInfo, FlightError> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(FlightError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(FlightError::Stopped),
        }
    }
}

/// Ids → names, copied from the recorder's registry as it grows.
#[derive(Default)]
struct Mirror {
    strings: Vec<Arc<str>>,
    sites: Vec<Site>,
    threads: Vec<ThreadInfo>,
}

impl Mirror {
    /// Copy what is new in `reg` (the registry is append-only; thread worker
    /// indexes may be set later).
    fn sync(&mut self, reg: &Registry) {
        while let Some(s) = u32::try_from(self.strings.len())
            .ok()
            .and_then(|i| reg.string(i))
        {
            self.strings.push(s);
        }
        while let Some(s) = u32::try_from(self.sites.len())
            .ok()
            .and_then(|i| reg.site(i))
        {
            self.sites.push(s);
        }
        for (i, t) in self.threads.iter_mut().enumerate() {
            if t.worker.is_none()
                && let Some(n) = u16::try_from(i).ok().and_then(|i| reg.thread(i))
            {
                *t = n;
            }
        }
        while let Some(t) = u16::try_from(self.threads.len())
            .ok()
            .and_then(|i| reg.thread(i))
        {
            self.threads.push(t);
        }
    }

    fn registry(&self) -> Registry {
        Registry::from_parts(
            self.strings.clone(),
            self.sites.clone(),
            self.threads.clone(),
        )
    }
}

/// A poll whose `PollStart` was seen and `PollEnd` not yet.
#[derive(Clone, Copy, Debug)]
struct OpenPoll {
    start: u64,
    task: u64,
    dumped: bool,
}

struct Request {
    path: Option<PathBuf>,
    reason: DumpReason,
    reply: Option<mpsc::Sender<Result<DumpInfo, FlightError>>>,
}

#[derive(Default)]
struct Queue {
    requests: VecDeque<Request>,
    stop: bool,
}

struct Shared {
    /// The slow-poll threshold in ns, `None` without `dump_on_slow_poll`.
    slow_ns: Option<u64>,
    config: FlightConfig,
    window: Mutex<Window>,
    mirror: Mutex<Mirror>,
    /// Indexed by the recorder's thread number (grown on demand, so it is
    /// bounded by the number of recording threads).
    open_polls: Mutex<Vec<Option<OpenPoll>>>,
    queue: Mutex<Queue>,
    wake: Condvar,
    last_auto: Mutex<Option<Instant>>,
    evicted: AtomicU64,
    dumps: AtomicU64,
    auto_dumps: AtomicU64,
    suppressed: AtomicU64,
    failed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Queue a request; `Err` when full or stopped.
    fn submit(&self, req: Request) -> Result<(), (FlightError, Request)> {
        let mut q = lock(&self.queue);
        if q.stop {
            return Err((FlightError::Stopped, req));
        }
        if q.requests.len() >= MAX_PENDING_DUMPS {
            return Err((FlightError::Busy, req));
        }
        q.requests.push_back(req);
        drop(q);
        self.wake.notify_one();
        Ok(())
    }

    /// An automatic dump, unless rate-limited.
    fn auto_dump(&self, reason: DumpReason) {
        {
            let mut last = lock(&self.last_auto);
            let now = Instant::now();
            if last.is_some_and(|l| now.duration_since(l) < self.config.min_auto_interval) {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return;
            }
            *last = Some(now);
        }
        let req = Request {
            path: None,
            reason,
            reply: None,
        };
        if self.submit(req).is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> FlightStats {
        let window = lock(&self.window);
        let (retained_events, retained_bytes) = (window.len(), window.bytes());
        drop(window);
        FlightStats {
            retained_events,
            retained_bytes,
            evicted: self.evicted.load(Ordering::Relaxed),
            dumps: self.dumps.load(Ordering::Relaxed),
            auto_dumps: self.auto_dumps.load(Ordering::Relaxed),
            suppressed: self.suppressed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    /// Check running polls against the threshold (the watchdog).
    fn watchdog(&self, threshold_ns: u64) {
        let now = taskline_core::now_ns();
        let mut stuck = None;
        for p in lock(&self.open_polls).iter_mut().flatten() {
            let running = now.saturating_sub(p.start);
            if !p.dumped && running > threshold_ns {
                p.dumped = true;
                stuck.get_or_insert(DumpReason::StuckPoll {
                    task: p.task,
                    running_ns: running,
                });
            }
        }
        if let Some(reason) = stuck {
            self.auto_dump(reason);
        }
    }

    /// The events of the last `max_age` in `window`, oldest first.
    fn retained(&self, window: &Window) -> Vec<Event> {
        let newest = window.newest().unwrap_or(0);
        window.events(newest.saturating_sub(self.config.max_age_ns()))
    }

    /// Write one dump.
    fn dump(&self, req: &Request) -> Result<DumpInfo, FlightError> {
        let (context, events) = {
            let window = lock(&self.window);
            (window.labels(), self.retained(&window))
        };
        let registry = lock(&self.mirror).registry();
        let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = match &req.path {
            Some(p) => p.clone(),
            None => self.config.dump_dir.join(format!(
                "taskline-{}-{seq}-{}.pftrace",
                utc_stamp(SystemTime::now()),
                req.reason.label()
            )),
        };
        // Lossless (the window is what was recorded), deflated.
        let options = crate::TraceOptions {
            compress: true,
            ..crate::TraceOptions::lossless()
        };
        let bytes = crate::write_atomically(&path, |out| {
            encode_window(&context, &events, &registry, 0, options, out)
        })
        .map_err(FlightError::Io)?;
        Ok(DumpInfo {
            path,
            events: events.len(),
            bytes,
            reason: req.reason.clone(),
        })
    }
}

/// `YYYYmmddTHHMMSS.mmmZ` for a wall-clock time (UTC).
fn utc_stamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The dump thread: serves requests one at a time and runs the watchdog.
fn dump_loop(shared: Arc<Shared>) {
    let threshold = shared.slow_ns;
    loop {
        let req = {
            let mut q = lock(&shared.queue);
            if q.requests.is_empty() && !q.stop {
                q = shared
                    .wake
                    .wait_timeout(q, shared.config.watchdog_interval)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            match q.requests.pop_front() {
                Some(r) => Some(r),
                None if q.stop => return,
                None => None,
            }
        };
        if let Some(t) = threshold {
            shared.watchdog(t);
        }
        let Some(req) = req else { continue };
        let result = shared.dump(&req);
        match &result {
            Ok(_) => {
                shared.dumps.fetch_add(1, Ordering::Relaxed);
                if req.reply.is_none() {
                    shared.auto_dumps.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(reply) = req.reply {
            let _ = reply.send(result);
        }
    }
}

/// A user predicate deciding from one event that a dump is due.
type Trigger = Box<dyn FnMut(&Event, &Registry) -> bool + Send>;

/// The flight recorder [`Sink`] (see the module docs). Dropping it stops the
/// dump thread after the queued dumps are written.
pub struct FlightRecorder {
    shared: Arc<Shared>,
    triggers: Vec<(String, Trigger)>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FlightRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightRecorder")
            .field("config", &self.shared.config)
            .field("triggers", &self.triggers.len())
            .finish()
    }
}

/// Asks a [`FlightRecorder`] for dumps and reads its counters, from any
/// thread. Cheap to clone.
#[derive(Clone)]
pub struct FlightRecorderHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for FlightRecorderHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlightRecorderHandle")
            .field("stats", &self.stats())
            .finish()
    }
}

impl FlightRecorder {
    /// A new flight recorder and its handle, with the default recorder
    /// configuration's slow-poll threshold; starts the dump thread. Use
    /// [`for_recorder`](Self::for_recorder) for a recorder configured
    /// otherwise.
    pub fn new(config: FlightConfig) -> Result<(Self, FlightRecorderHandle), FlightError> {
        Self::for_recorder(config, &RecorderConfig::default())
    }

    /// A new flight recorder for a recorder configured with `recorder`: a
    /// slow poll (for [`FlightConfig::dump_on_slow_poll`]) is one longer
    /// than `recorder.slow_poll_threshold`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskline_core::RecorderConfig;
    /// use taskline_trace::flight::{FlightConfig, FlightRecorder};
    /// let recorder = RecorderConfig { slow_poll_threshold: Duration::from_millis(50), ..Default::default() };
    /// let dir = std::env::temp_dir().join("taskline-doc-flight");
    /// let (_sink, handle) =
    ///     FlightRecorder::for_recorder(FlightConfig { dump_dir: dir, ..Default::default() }, &recorder)
    ///         .unwrap();
    /// assert_eq!(handle.stats().dumps, 0);
    /// ```
    pub fn for_recorder(
        config: FlightConfig,
        recorder: &RecorderConfig,
    ) -> Result<(Self, FlightRecorderHandle), FlightError> {
        config.validate()?;
        let slow_ns = config
            .dump_on_slow_poll
            .then(|| u64::try_from(recorder.slow_poll_threshold.as_nanos()).unwrap_or(u64::MAX));
        let shared = Arc::new(Shared {
            slow_ns,
            config,
            window: Mutex::new(Window::default()),
            mirror: Mutex::new(Mirror::default()),
            open_polls: Mutex::new(Vec::new()),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            last_auto: Mutex::new(None),
            evicted: AtomicU64::new(0),
            dumps: AtomicU64::new(0),
            auto_dumps: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("taskline-flight".into())
            .spawn(move || dump_loop(for_thread))
            .map_err(FlightError::Io)?;
        Ok((
            FlightRecorder {
                shared: shared.clone(),
                triggers: Vec::new(),
                thread: Some(thread),
            },
            FlightRecorderHandle { shared },
        ))
    }

    /// Add a predicate: when it returns true for an event, an automatic dump
    /// (reason `trigger-<name>`) is requested. It runs on the recorder's
    /// consumer thread for every event, so it should be cheap.
    pub fn with_trigger(
        mut self,
        name: impl Into<String>,
        trigger: impl FnMut(&Event, &Registry) -> bool + Send + 'static,
    ) -> Self {
        self.triggers.push((name.into(), Box::new(trigger)));
        self
    }

    /// Add events (also what [`Sink::on_events`] does).
    pub fn record(&mut self, events: &[Event], registry: &Registry) {
        lock(&self.shared.mirror).sync(registry);
        let mut auto = None;
        {
            let mut polls = lock(&self.shared.open_polls);
            for e in events {
                match e.kind() {
                    Some(EventKind::PollStart) => {
                        let th = usize::from(e.thread);
                        if polls.len() <= th {
                            polls.resize(th + 1, None);
                        }
                        polls[th] = Some(OpenPoll {
                            start: e.ts_ns,
                            task: e.task,
                            dumped: false,
                        });
                    }
                    Some(EventKind::PollEnd) => {
                        if let Some(p) = polls.get_mut(usize::from(e.thread)).and_then(Option::take)
                            && let Some(t) = self.shared.slow_ns
                        {
                            let d = e.ts_ns.saturating_sub(p.start);
                            if d > t && !p.dumped && auto.is_none() {
                                auto = Some(DumpReason::SlowPoll {
                                    task: p.task,
                                    duration_ns: d,
                                });
                            }
                        }
                    }
                    _ => {}
                }
                for (name, t) in &mut self.triggers {
                    if t(e, registry) && auto.is_none() {
                        auto = Some(DumpReason::Trigger(name.clone()));
                    }
                }
            }
        }
        self.push(events);
        if let Some(reason) = auto {
            self.shared.auto_dump(reason);
        }
    }

    /// Append to the window, evicting by size and age.
    fn push(&self, events: &[Event]) {
        let config = &self.shared.config;
        let evicted = lock(&self.shared.window).push(events, config.max_bytes, config.max_age_ns());
        self.shared.evicted.fetch_add(evicted, Ordering::Relaxed);
    }
}

impl Sink for FlightRecorder {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        self.record(events, registry);
    }

    fn on_flush(&mut self, registry: &Registry) {
        lock(&self.shared.mirror).sync(registry);
    }
}

impl Drop for FlightRecorder {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FlightRecorderHandle {
    /// Ask for a dump of the retained window to `path` (written atomically).
    /// Returns at once; the dump thread writes the file. Never rate-limited.
    pub fn dump_now(&self, path: impl Into<PathBuf>) -> DumpTicket {
        self.request(Some(path.into()), DumpReason::Requested)
    }

    /// Ask for a dump into the configured directory, named with `reason`.
    pub fn dump_to_dir(&self, reason: impl Into<String>) -> DumpTicket {
        self.request(None, DumpReason::Trigger(reason.into()))
    }

    fn request(&self, path: Option<PathBuf>, reason: DumpReason) -> DumpTicket {
        let (tx, rx) = mpsc::channel();
        let req = Request {
            path,
            reason,
            reply: Some(tx),
        };
        if let Err((e, req)) = self.shared.submit(req)
            && let Some(reply) = req.reply
        {
            let _ = reply.send(Err(e));
        }
        DumpTicket { rx }
    }

    /// The counters.
    pub fn stats(&self) -> FlightStats {
        self.shared.stats()
    }

    /// A copy of the events retained now, oldest first.
    pub fn retained(&self) -> Vec<Event> {
        let window = lock(&self.shared.window);
        self.shared.retained(&window)
    }
}

/// How long a panic dump may take before the panicking thread goes on.
pub const PANIC_DUMP_TIMEOUT: Duration = Duration::from_secs(5);

/// Installs a panic hook that dumps `handle`'s window into its
/// [`FlightConfig::dump_dir`] (reason `panic`) before the panic goes on,
/// then calls the hook that was installed before (so the usual message and
/// backtrace still print). `recorder` is flushed first, so events still in
/// the threads' rings are in the dump.
///
/// Every panic runs the hook, also one that Tokio catches in a task; dumps
/// are rate-limited to one per [`FlightConfig::min_auto_interval`]. The
/// panicking thread waits for the dump at most [`PANIC_DUMP_TIMEOUT`]. A
/// panic on the recorder's consumer thread dumps without flushing, and one
/// on the dump thread itself does not dump (either would wait on itself).
/// The hook keeps `recorder` and the flight recorder alive for the rest of
/// the process.
pub fn dump_on_panic(recorder: &taskline_core::Recorder, handle: &FlightRecorderHandle) {
    let recorder = recorder.clone();
    let handle = handle.clone();
    let last = Mutex::new(None::<Instant>);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let name = std::thread::current().name().map(str::to_owned);
        let due = {
            let mut last = lock(&last);
            let interval = handle.shared.config.min_auto_interval;
            let due = last.is_none_or(|t| t.elapsed() >= interval);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due && name.as_deref() != Some("taskline-flight") {
            if name.as_deref() != Some("taskline-consumer") {
                recorder.flush();
            }
            match handle.dump_to_dir("panic").wait(PANIC_DUMP_TIMEOUT) {
                Ok(d) => eprintln!(
                    "taskline: panic: flight recorder dumped {} events to {}",
                    d.events,
                    d.path.display()
                ),
                Err(e) => {
                    let cause = std::error::Error::source(&e)
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default();
                    eprintln!("taskline: panic: {e}{cause}");
                }
            }
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(utc_stamp(t), "20231114T221320.123Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc_stamp(leap), "20000229T000000.000Z");
    }

    #[test]
    fn labels_are_file_name_safe() {
        assert_eq!(
            DumpReason::Trigger("a/b c..".into()).label(),
            "trigger-a_b_c__"
        );
        assert_eq!(DumpReason::Requested.label(), "requested");
    }

    #[test]
    fn the_window_keeps_the_newest_by_size_and_exactly_the_last_max_age() {
        let dir = std::env::temp_dir().join(format!("taskline-flight-unit-{}", std::process::id()));
        let (mut fr, handle) = FlightRecorder::new(FlightConfig {
            max_bytes: 4096,
            max_age: Duration::from_nanos(1_000),
            dump_dir: dir,
            dump_on_slow_poll: false,
            ..FlightConfig::default()
        })
        .expect("config");
        let reg = Registry::new();
        let ev = |ts: u64| Event::new(EventKind::Wake, ts, ts);
        let mut all = Vec::new();
        for b in 0..50u64 {
            let batch: Vec<Event> = (0..30).map(|i| ev(b * 30 + i)).collect();
            fr.record(&batch, &reg);
            all.extend(batch);
            let kept = handle.retained();
            // The newest events, and exactly those of the last 1000 ns.
            let newest = all.last().map_or(0, |e| e.ts_ns);
            let by_age: Vec<Event> = all
                .iter()
                .copied()
                .filter(|e| e.ts_ns >= newest.saturating_sub(1_000))
                .collect();
            assert_eq!(kept, by_age[by_age.len() - kept.len()..], "batch {b}");
            let stats = handle.stats();
            assert!(stats.retained_bytes <= 4096, "{stats:?}");
            assert_eq!(stats.evicted as usize + stats.retained_events, all.len());
        }
        // 4 KiB hold far more than 4096 / 32 = 128 events.
        assert!(handle.stats().retained_events > 300, "{:?}", handle.stats());
        // Age: everything older than newest - 1000 ns goes.
        fr.record(&[ev(100_000)], &reg);
        assert_eq!(handle.retained(), vec![ev(100_000)]);
    }

    #[test]
    fn open_polls_are_tracked_per_thread() {
        let dir =
            std::env::temp_dir().join(format!("taskline-flight-unit2-{}", std::process::id()));
        let (mut fr, _handle) = FlightRecorder::new(FlightConfig {
            dump_dir: dir,
            ..FlightConfig::default()
        })
        .expect("config");
        let reg = Registry::new();
        let mut start = Event::new(EventKind::PollStart, 10, 7);
        start.thread = 5;
        let mut other = Event::new(EventKind::PollStart, 20, 8);
        other.thread = 1;
        let mut end = Event::new(EventKind::PollEnd, 30, 8);
        end.thread = 1;
        fr.record(&[start, other, end], &reg);
        let polls = lock(&fr.shared.open_polls);
        let open: Vec<(usize, u64, u64)> = polls
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p.task, p.start)))
            .collect();
        assert_eq!(open, vec![(5, 7, 10)]);
    }

    #[test]
    fn bad_configs_are_refused() {
        for c in [
            FlightConfig {
                max_bytes: 127,
                ..FlightConfig::default()
            },
            FlightConfig {
                max_age: Duration::ZERO,
                ..FlightConfig::default()
            },
            FlightConfig {
                watchdog_interval: Duration::ZERO,
                ..FlightConfig::default()
            },
        ] {
            assert!(matches!(c.validate(), Err(FlightError::Config(_))), "{c:?}");
        }
        assert!(FlightConfig::default().validate().is_ok());
    }
}
