//! [`PerfettoWriter`]: a [`Sink`] that streams the recording into a Perfetto
//! trace file, and [`encode_trace`] for one-shot encodes.
//!
//! The writer buffers packets in memory (the buffer is handed to the output
//! whenever it passes [`FLUSH_THRESHOLD`] bytes, so it stays near that size)
//! and never panics:
//! the first write error is kept, reported once on stderr, and returned by
//! [`TraceHandle::finish`]; later events are counted but not written.
//!
//! The recorder owns a sink once it is added, so [`PerfettoWriter::handle`]
//! (and [`PerfettoWriter::create`]) give a cloneable [`TraceHandle`] to read
//! the counts and finish the file from any thread.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use taskline_core::Event;
use taskline_core::Recorder;
use taskline_core::Registry;
use taskline_core::Sink;

use crate::encoder::{EncodeOptions, Encoder};

/// Buffered packet bytes are written out once they exceed this many bytes.
pub const FLUSH_THRESHOLD: usize = 64 * 1024;
/// Default bound on per-task state (labels, pending flow arrows).
pub const DEFAULT_MAX_TRACKED_TASKS: usize = 65_536;
/// Batches (of up to the recorder's 1024 events) the writer thread's queue
/// holds; a batch that finds it full is dropped and counted.
pub const WRITER_QUEUE_BATCHES: usize = 256;
/// The process RSS is sampled at most this often (wall time) by a streaming writer.
pub const RSS_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// How a trace is written. [`TraceOptions::default`] is what
/// [`PerfettoWriter::new`] uses; [`TraceOptions::lossless`] what
/// [`encode_trace`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceOptions {
    /// Deflate packets into Perfetto `compressed_packets` blocks (the UI and
    /// the trace processor inflate them). About 5x smaller, but deflate
    /// costs a core's worth of time the 2-core bench machine does not have:
    /// the encoder does 10-14M events/s raw and 6.5-9M compressed on one
    /// core (`trace_size` example). Default false: compress the finished
    /// file offline, or turn this on where a spare core exists.
    pub compress: bool,
    /// Write a task's `Spawn` and `Terminate` once when both the runtime hooks
    /// and the tracing layer report them (the second report is counted in the
    /// end marker, not written). Default true.
    pub dedup_lifecycle: bool,
    /// Sample the process's resident set size (Linux `/proc/self/status`) at
    /// most every [`RSS_SAMPLE_INTERVAL`] into the `process RSS` counter
    /// track. Only a streaming writer samples (a one-shot encode of past
    /// events has no RSS to show). Default true.
    pub sample_rss: bool,
    /// Per-task state (poll names, pending flow arrows, lifecycle
    /// deduplication) is kept for at most this many live tasks. Default
    /// [`DEFAULT_MAX_TRACKED_TASKS`].
    pub max_tracked_tasks: usize,
    /// Encode on a writer thread of the sink's own instead of the recorder's
    /// consumer thread. The consumer only copies each batch into a bounded
    /// queue of [`WRITER_QUEUE_BATCHES`] batches, so a burst no longer holds
    /// up the draining of the rings (which is what overflowed them); a batch
    /// that finds the queue full is dropped and counted in the end marker's
    /// `dropped_events` (never blocking). Flush and finish wait for the
    /// queue to drain. Default true (streaming writers only).
    pub writer_thread: bool,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            compress: false,
            dedup_lifecycle: true,
            sample_rss: true,
            max_tracked_tasks: DEFAULT_MAX_TRACKED_TASKS,
            writer_thread: true,
        }
    }
}

impl TraceOptions {
    /// Every event written as given, uncompressed, no RSS samples: what
    /// [`encode_trace`] does, so reading back gives exactly the input.
    pub fn lossless() -> Self {
        TraceOptions {
            compress: false,
            dedup_lifecycle: false,
            sample_rss: false,
            max_tracked_tasks: DEFAULT_MAX_TRACKED_TASKS,
            writer_thread: false,
        }
    }

    fn encoder(&self) -> Encoder {
        Encoder::new(EncodeOptions {
            dedup_lifecycle: self.dedup_lifecycle,
            compress: self.compress,
            max_tracked_tasks: self.max_tracked_tasks,
        })
    }
}

/// Reads the process's resident set size in bytes (`VmRSS` of
/// `/proc/self/status`); `None` where that file does not exist or says nothing.
pub(crate) struct RssProbe {
    file: Option<File>,
    buf: Vec<u8>,
}

impl RssProbe {
    pub(crate) fn new() -> Self {
        RssProbe {
            file: File::open("/proc/self/status").ok(),
            buf: Vec::with_capacity(4096),
        }
    }

    pub(crate) fn read(&mut self) -> Option<u64> {
        use std::io::{Read, Seek, SeekFrom};
        let f = self.file.as_mut()?;
        f.seek(SeekFrom::Start(0)).ok()?;
        self.buf.clear();
        f.take(64 * 1024).read_to_end(&mut self.buf).ok()?;
        let text = std::str::from_utf8(&self.buf).ok()?;
        let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line
            .trim_start_matches("VmRSS:")
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib * 1024)
    }
}

struct State<W> {
    enc: Encoder,
    out: Option<W>,
    error: Option<io::Error>,
    rss: Option<RssProbe>,
    next_rss_ns: u64,
}

struct Shared<W> {
    state: Mutex<State<W>>,
    bytes_written: AtomicU64,
    events_written: AtomicU64,
    events_ignored: AtomicU64,
    write_errors: AtomicU64,
    dropped_events: AtomicU64,
    /// The writer thread's queue (None without one, or once finished).
    queue: Mutex<Option<SyncSender<Msg>>>,
    /// Events dropped because the writer thread's queue was full.
    queue_dropped: AtomicU64,
}

/// What the consumer hands the writer thread.
enum Msg {
    /// A batch and a registry snapshot naming everything it refers to.
    Events(Vec<Event>, Arc<Registry>),
    /// `on_flush`, acknowledged once done.
    Flush(Arc<Registry>, SyncSender<()>),
    /// Acknowledged once every earlier message is processed.
    Drain(SyncSender<()>),
}

/// The writer thread: encodes what the consumer queued, in order. Holds the
/// writer weakly, so it ends when the writer and its handles are gone.
fn writer_thread<W: Write + Send + 'static>(shared: Weak<Shared<W>>, rx: Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        let Some(sh) = shared.upgrade() else { break };
        match msg {
            Msg::Events(events, reg) => sh.on_events(&events, &reg),
            Msg::Flush(reg, ack) => {
                sh.on_flush(&reg);
                let _ = ack.send(());
            }
            Msg::Drain(ack) => {
                let _ = ack.send(());
            }
        }
    }
}

/// The consumer side of the writer thread: a registry snapshot, rebuilt
/// when the recorder's registry gained entries.
struct Mirror {
    reg: Arc<Registry>,
    strings: u32,
    sites: u32,
    threads: usize,
    workers: usize,
}

impl Mirror {
    fn new() -> Self {
        Mirror {
            reg: Arc::new(Registry::new()),
            strings: 0,
            sites: 0,
            threads: 0,
            workers: 0,
        }
    }

    /// The snapshot, refreshed if `reg` changed since the last batch.
    fn get(&mut self, reg: &Registry) -> Arc<Registry> {
        let threads = reg.threads();
        let workers = threads.iter().filter(|t| t.worker.is_some()).count();
        let changed = reg.string(self.strings).is_some()
            || reg.site(self.sites).is_some()
            || threads.len() != self.threads
            || workers != self.workers;
        if changed {
            let strings = reg.strings();
            let sites = reg.sites();
            self.strings = strings.len() as u32;
            self.sites = sites.len() as u32;
            self.threads = threads.len();
            self.workers = workers;
            self.reg = Arc::new(Registry::from_parts(strings, sites, threads));
        }
        self.reg.clone()
    }
}

impl<W: Write> Shared<W> {
    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands buffered bytes to the output (all of them when `force`).
    fn drain(&self, st: &mut State<W>, force: bool) {
        if st.enc.out.is_empty() || (!force && st.enc.out.len() < FLUSH_THRESHOLD) {
            return;
        }
        let State {
            enc, out, error, ..
        } = st;
        if error.is_none()
            && let Some(w) = out.as_mut()
        {
            match w.write_all(&enc.out) {
                Ok(()) => {
                    self.bytes_written
                        .fetch_add(enc.out.len() as u64, Ordering::Relaxed);
                }
                Err(e) => self.fail(error, e),
            }
        }
        enc.out.clear();
    }

    fn fail(&self, slot: &mut Option<io::Error>, e: io::Error) {
        if self.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!("taskline: writing the trace failed ({e}); the rest of the trace is dropped");
        }
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    fn on_events(&self, events: &[Event], registry: &Registry) {
        let mut st = self.lock();
        if st.out.is_none() || st.error.is_some() {
            self.events_ignored
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            return;
        }
        st.enc.sync(registry);
        let st = &mut *st;
        if let Some(probe) = st.rss.as_mut() {
            let now = taskline_core::now_ns();
            if now >= st.next_rss_ns {
                st.next_rss_ns = now + RSS_SAMPLE_INTERVAL.as_nanos() as u64;
                match probe.read() {
                    Some(bytes) => st.enc.sample(crate::schema::SAMPLE_RSS, now, bytes as i64),
                    None => st.rss = None,
                }
            }
        }
        for i in 0..events.len() {
            st.enc.event_at(events, i, registry);
            if st.enc.out.len() >= FLUSH_THRESHOLD {
                self.drain(st, true);
            }
        }
        st.enc.seal(false);
        if st.enc.out.len() >= FLUSH_THRESHOLD {
            self.drain(st, true);
        }
        self.events_written
            .store(st.enc.stats.events_written, Ordering::Relaxed);
    }

    fn on_flush(&self, registry: &Registry) {
        let mut st = self.lock();
        if st.out.is_none() {
            return;
        }
        st.enc.sync(registry);
        st.enc.seal(true);
        self.drain(&mut st, true);
        let State { out, error, .. } = &mut *st;
        if error.is_none()
            && let Some(w) = out.as_mut()
            && let Err(e) = w.flush()
        {
            self.fail(error, e);
        }
    }

    fn write_cpu_samples(&self, samples: &taskline_core::CpuSamples) -> io::Result<u64> {
        let mut st = self.lock();
        if st.out.is_none() {
            return Err(io::Error::other("taskline trace already finished"));
        }
        if let Some(e) = &st.error {
            return Err(io::Error::new(e.kind(), e.to_string()));
        }
        let n = st.enc.cpu_samples(samples);
        st.enc.seal(false);
        self.drain(&mut st, false);
        Ok(n)
    }

    /// Waits until the writer thread processed everything queued so far.
    fn drain_queue(&self) {
        let tx = self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = tx {
            let (ack, done) = sync_channel(1);
            if tx.send(Msg::Drain(ack)).is_ok() {
                let _ = done.recv();
            }
        }
    }

    fn finish(&self, registry: Option<&Registry>) -> io::Result<W> {
        self.drain_queue();
        *self.queue.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut st = self.lock();
        if st.out.is_none() {
            return Err(io::Error::other("taskline trace already finished"));
        }
        if let Some(r) = registry {
            st.enc.sync(r);
        }
        let queue_dropped = self.queue_dropped.load(Ordering::Relaxed);
        if queue_dropped > 0 {
            eprintln!(
                "taskline: the trace writer's queue overflowed; {queue_dropped} events were dropped (counted in the trace)"
            );
        }
        st.enc
            .finish(self.dropped_events.load(Ordering::Relaxed) + queue_dropped);
        self.drain(&mut st, true);
        let Some(mut w) = st.out.take() else {
            return Err(io::Error::other("taskline trace already finished"));
        };
        if st.error.is_none()
            && let Err(e) = w.flush()
        {
            self.fail(&mut st.error, e);
        }
        match st.error.take() {
            Some(e) => Err(e),
            None => Ok(w),
        }
    }
}

/// A [`Sink`] writing a Perfetto trace (TrackEvent protobuf) to `W` as events arrive.
///
/// ```no_run
/// use taskline_trace::PerfettoWriter;
/// let (sink, handle) = PerfettoWriter::create("trace.pftrace").unwrap();
/// let recorder = taskline_core::Recorder::with_defaults();
/// recorder.add_sink(sink);
/// // ... run an instrumented runtime ...
/// handle.finish_recorder(&recorder).unwrap();
/// ```
pub struct PerfettoWriter<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
    /// The registry snapshot handed to the writer thread (with one).
    mirror: Option<Mirror>,
}

/// A cloneable handle to a [`PerfettoWriter`]'s counts and its `finish`,
/// usable while the recorder owns the writer.
pub struct TraceHandle<W: Write + Send + 'static> {
    shared: Arc<Shared<W>>,
}

impl<W: Write + Send + 'static> Clone for TraceHandle<W> {
    fn clone(&self) -> Self {
        TraceHandle {
            shared: self.shared.clone(),
        }
    }
}

impl PerfettoWriter<File> {
    /// Creates (truncates) the file at `path` and returns the sink to add to
    /// the recorder plus a handle to finish the file later.
    pub fn create(path: impl AsRef<Path>) -> io::Result<(Self, TraceHandle<File>)> {
        Self::create_with(path, TraceOptions::default())
    }

    /// [`create`](Self::create) with the given [`TraceOptions`].
    pub fn create_with(
        path: impl AsRef<Path>,
        options: TraceOptions,
    ) -> io::Result<(Self, TraceHandle<File>)> {
        let w = PerfettoWriter::with_options(File::create(path)?, options);
        let h = w.handle();
        Ok((w, h))
    }
}

impl<W: Write + Send + 'static> PerfettoWriter<W> {
    /// A writer into `out`, keeping per-task state for at most
    /// [`DEFAULT_MAX_TRACKED_TASKS`] live tasks.
    pub fn new(out: W) -> Self {
        Self::with_max_tracked_tasks(out, DEFAULT_MAX_TRACKED_TASKS)
    }

    /// A writer into `out` keeping per-task state (poll names, pending flow
    /// arrows) for at most `max_tracked_tasks` live tasks; further tasks'
    /// polls are named `poll` and their wakes get no arrow.
    pub fn with_max_tracked_tasks(out: W, max_tracked_tasks: usize) -> Self {
        Self::with_options(
            out,
            TraceOptions {
                max_tracked_tasks,
                ..TraceOptions::default()
            },
        )
    }

    /// A writer into `out` with the given [`TraceOptions`].
    pub fn with_options(out: W, options: TraceOptions) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                enc: options.encoder(),
                out: Some(out),
                error: None,
                rss: options.sample_rss.then(RssProbe::new),
                next_rss_ns: 0,
            }),
            bytes_written: AtomicU64::new(0),
            events_written: AtomicU64::new(0),
            events_ignored: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            dropped_events: AtomicU64::new(0),
            queue: Mutex::new(None),
            queue_dropped: AtomicU64::new(0),
        });
        let mut mirror = None;
        if options.writer_thread {
            let (tx, rx) = sync_channel(WRITER_QUEUE_BATCHES);
            let weak = Arc::downgrade(&shared);
            let spawned = std::thread::Builder::new()
                .name("taskline-trace".into())
                .spawn(move || writer_thread(weak, rx));
            // Without a thread (spawn failed) the consumer encodes itself.
            if spawned.is_ok() {
                *shared.queue.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
                mirror = Some(Mirror::new());
            }
        }
        PerfettoWriter { shared, mirror }
    }

    /// A handle sharing this writer's state.
    pub fn handle(&self) -> TraceHandle<W> {
        TraceHandle {
            shared: self.shared.clone(),
        }
    }

    /// Bytes handed to the output so far.
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }

    /// Events encoded so far (some may still sit in the buffer).
    pub fn events_written(&self) -> u64 {
        self.shared.events_written.load(Ordering::Relaxed)
    }

    /// Writes the end marker, flushes, and gives the output back. Errors with
    /// the first write error if any write failed.
    pub fn finish(self) -> io::Result<W> {
        self.shared.finish(None)
    }
}

impl<W: Write + Send + 'static> TraceHandle<W> {
    /// Bytes handed to the output so far.
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes_written.load(Ordering::Relaxed)
    }

    /// Events encoded so far.
    pub fn events_written(&self) -> u64 {
        self.shared.events_written.load(Ordering::Relaxed)
    }

    /// Lifecycle reports (`Spawn`, `Terminate`) not written because the
    /// other source already reported them.
    pub fn duplicates_skipped(&self) -> u64 {
        self.shared.lock().enc.stats.duplicates
    }

    /// Events delivered after `finish` or after a write error, not written.
    pub fn events_ignored(&self) -> u64 {
        self.shared.events_ignored.load(Ordering::Relaxed)
    }

    /// Events dropped because the writer thread's queue was full (also
    /// counted in the end marker's `dropped_events`).
    pub fn events_dropped_by_writer(&self) -> u64 {
        self.shared.queue_dropped.load(Ordering::Relaxed)
    }

    /// Failed writes (the first one stops the trace).
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }

    /// Writes a CPU profiler's timed samples into the trace now, as
    /// callstack samples on the tracks of the threads they sampled (Perfetto
    /// UI: a "Perf Callstacks" track in each thread's group; select a range
    /// for a flame graph of it). The one line that puts a
    /// `taskline_profile` profiler's samples in a trace, before `finish`:
    ///
    /// ```text
    /// trace.write_cpu_samples(&profiler.take_cpu_samples())?;
    /// ```
    ///
    /// Call it once at the end, or now and then to stream (each call writes
    /// what it is given; stacks already written are not interned again).
    /// Samples with an empty stack are skipped. Returns how many were
    /// written; errors after `finish` or a write error.
    pub fn write_cpu_samples(&self, samples: &taskline_core::CpuSamples) -> io::Result<u64> {
        self.shared.write_cpu_samples(samples)
    }

    /// CPU samples written so far ([`write_cpu_samples`](Self::write_cpu_samples)).
    pub fn cpu_samples_written(&self) -> u64 {
        self.shared.lock().enc.stats.cpu_samples
    }

    /// Sets the recorder's dropped-event count that `finish` records in the
    /// end marker (e.g. `recorder.stats().dropped`), so readers know data was lost.
    pub fn set_dropped_events(&self, dropped: u64) {
        self.shared.dropped_events.store(dropped, Ordering::Relaxed);
    }

    /// Writes the end marker, flushes, and gives the output back; the sink
    /// ignores every later event. Call the recorder's `flush` first so every
    /// recorded event is in. Errors with the first write error if any
    /// failed, or if the trace was already finished.
    pub fn finish(&self) -> io::Result<W> {
        self.shared.finish(None)
    }

    /// Like [`finish`](Self::finish), and first describes registry entries
    /// the sink has not seen yet (interned after the last delivered batch).
    pub fn finish_with_registry(&self, registry: &Registry) -> io::Result<W> {
        self.shared.finish(Some(registry))
    }

    /// Finishes a trace whose writer was added to `recorder`: flushes the
    /// recorder so every recorded event is in, records its dropped-event
    /// count in the end marker, describes the whole registry, then finishes
    /// like [`finish`](Self::finish). Recording may go on; later events are ignored.
    pub fn finish_recorder(&self, recorder: &Recorder) -> io::Result<W> {
        recorder.flush();
        self.set_dropped_events(recorder.stats().dropped);
        self.shared.finish(Some(recorder.registry()))
    }
}

impl<W> Shared<W> {
    /// The writer thread's queue, `None` once the writer is finished (or
    /// encodes on the consumer thread).
    fn sender(&self) -> Option<SyncSender<Msg>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<W: Write + Send + 'static> Sink for PerfettoWriter<W> {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        let Some(mirror) = self.mirror.as_mut() else {
            self.shared.on_events(events, registry);
            return;
        };
        let tx = self.shared.sender();
        let Some(tx) = tx else {
            // Finished: what `Shared::on_events` does after `finish`.
            self.shared.on_events(events, registry);
            return;
        };
        match tx.try_send(Msg::Events(events.to_vec(), mirror.get(registry))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared
                    .queue_dropped
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => self.shared.on_events(events, registry),
        }
    }

    fn on_flush(&mut self, registry: &Registry) {
        let tx = self.shared.sender();
        if let (Some(mirror), Some(tx)) = (self.mirror.as_mut(), tx) {
            let (ack, done) = sync_channel(1);
            if tx.send(Msg::Flush(mirror.get(registry), ack)).is_ok() {
                let _ = done.recv();
                return;
            }
        }
        self.shared.on_flush(registry);
    }
}

/// Encodes `events` (each thread's in the order recorded) and the
/// `registry` they refer to as one complete trace into `out`, losslessly
/// ([`TraceOptions::lossless`]); returns the bytes written.
pub fn encode_trace<W: Write>(events: &[Event], registry: &Registry, out: W) -> io::Result<u64> {
    encode_trace_with_dropped(events, registry, 0, out)
}

/// Like [`encode_trace`], recording `dropped_events` in the end marker.
pub fn encode_trace_with_dropped<W: Write>(
    events: &[Event],
    registry: &Registry,
    dropped_events: u64,
    out: W,
) -> io::Result<u64> {
    encode_trace_with(
        events,
        registry,
        dropped_events,
        TraceOptions::lossless(),
        out,
    )
}

/// Like [`encode_trace_with_dropped`], with the given [`TraceOptions`]
/// (`sample_rss` is ignored: past events have no RSS to show).
pub fn encode_trace_with<W: Write>(
    events: &[Event],
    registry: &Registry,
    dropped_events: u64,
    options: TraceOptions,
    out: W,
) -> io::Result<u64> {
    encode_window(&[], events, registry, dropped_events, options, out)
}

/// Like [`encode_trace_with`], for a window cut out of a longer recording:
/// `context` holds events from before the window, the `Spawn` (spawn site)
/// and `TaskName` events of tasks that were alive when it began, in the
/// order they happened. None of them is written (the trace holds `events`
/// only, and reads back as exactly those); they only name those tasks'
/// polls and blocking sections inside the window, which would otherwise be
/// called `poll` / `blocking`. Other kinds in `context` are ignored.
///
/// ```
/// use taskline_core::{Event, EventKind, Registry, TaskKind};
/// let registry = Registry::new();
/// let site = registry.intern_site("src/main.rs", 7, 5, TaskKind::Task);
/// let mut spawn = Event::new(EventKind::Spawn, 10, 42); // before the window
/// spawn.aux = site;
/// let poll = [Event::new(EventKind::PollStart, 100, 42), Event::new(EventKind::PollEnd, 110, 42)];
/// let opts = taskline_trace::TraceOptions::lossless();
/// let encode = |context: &[Event]| {
///     let mut bytes = Vec::new();
///     taskline_trace::encode_window(context, &poll, &registry, 0, opts, &mut bytes).unwrap();
///     bytes
/// };
/// let (named, unnamed) = (encode(&[spawn]), encode(&[]));
/// // The spawn is not in the file ...
/// assert_eq!(taskline_trace::read_trace(&named).unwrap().events, poll);
/// // ... but the poll slice is named after its site: the file interns the
/// // event name `src/main.rs:7:5` (field 2, 15 bytes).
/// let name = b"\x12\x0fsrc/main.rs:7:5";
/// let interns = |b: &[u8]| b.windows(name.len()).any(|w| w == name);
/// assert!(interns(&named) && !interns(&unnamed));
/// ```
pub fn encode_window<W: Write>(
    context: &[Event],
    events: &[Event],
    registry: &Registry,
    dropped_events: u64,
    options: TraceOptions,
    mut out: W,
) -> io::Result<u64> {
    let mut enc = options.encoder();
    let mut total = 0u64;
    enc.sync(registry);
    for e in context {
        enc.learn_label(e, registry);
    }
    for i in 0..events.len() {
        enc.event_at(events, i, registry);
        enc.seal(false);
        if enc.out.len() >= FLUSH_THRESHOLD {
            out.write_all(&enc.out)?;
            total += enc.out.len() as u64;
            enc.out.clear();
        }
    }
    enc.sync(registry);
    enc.finish(dropped_events);
    out.write_all(&enc.out)?;
    total += enc.out.len() as u64;
    out.flush()?;
    Ok(total)
}
