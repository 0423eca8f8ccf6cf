//! [`Profiler::start`], the running profiler ([`ProfilerGuard`]), thread
//! registration ([`ProfilerHandle`]) and the collector thread that drains
//! the threads' rings into the aggregated [`Profile`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use taskline_core::{CpuSample, CpuSamples, NO_WORKER, SampledSite, TaskKind};

use crate::config::ProfilerConfig;
use crate::error::ProfileError;
use crate::profile::{Profile, ProfileSample, ProfilerStats, SpawnSite};
use crate::ring::{SampleMeta, SampleRing};
#[cfg(target_os = "linux")]
use crate::sys;

/// One profiler at a time per process (`SIGPROF` is process-wide).
static RUNNING: Mutex<bool> = Mutex::new(false);
/// Generations tell a stale timer signal from a current one.
static GENERATION: AtomicU32 = AtomicU32::new(1);

/// The entry point: [`Profiler::start`].
#[derive(Debug)]
pub struct Profiler;

impl Profiler {
    /// Validates `config`, installs the `SIGPROF` handler and starts the
    /// collector thread. No thread is sampled until it registers
    /// ([`ProfilerGuard::register_current_thread`], or every thread of a
    /// runtime through [`ProfileRuntimeExt`](crate::ProfileRuntimeExt)).
    ///
    /// Errors: a bad configuration ([`ProfileError::Config`]), another
    /// profiler running ([`ProfileError::AlreadyRunning`]), someone else's
    /// `SIGPROF` handler ([`ProfileError::SignalInUse`]), a platform without
    /// per-thread CPU timers ([`ProfileError::Unsupported`]).
    ///
    /// ```
    /// use taskline_profile::{Profiler, ProfilerConfig, ProfileError};
    /// let err = Profiler::start(ProfilerConfig::default().frequency_hz(5000)).unwrap_err();
    /// assert!(matches!(err, ProfileError::Config { field: "frequency_hz", .. }));
    /// ```
    pub fn start(config: ProfilerConfig) -> Result<ProfilerGuard, ProfileError> {
        config.validate()?;
        start_platform(config)
    }
}

#[cfg(not(target_os = "linux"))]
fn start_platform(_config: ProfilerConfig) -> Result<ProfilerGuard, ProfileError> {
    Err(ProfileError::Unsupported)
}

#[cfg(target_os = "linux")]
fn start_platform(config: ProfilerConfig) -> Result<ProfilerGuard, ProfileError> {
    if !sys::SUPPORTED {
        return Err(ProfileError::Unsupported);
    }
    let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    if *running {
        return Err(ProfileError::AlreadyRunning);
    }
    // The handler stamps samples with the recorder's clock, which it may
    // only read once initialized (calibration is not async-signal-safe).
    taskline_core::init_clock();
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(Shared::new(config, generation));
    sys::activate(Arc::as_ptr(&shared));
    let old_action = match sys::install_handler() {
        Ok(old) => old,
        Err(e) => {
            sys::deactivate();
            return Err(e);
        }
    };
    let collector = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("taskline-profiler".into())
            .spawn(move || collector_loop(&shared))
    };
    let collector = match collector {
        Ok(c) => c,
        Err(error) => {
            sys::deactivate();
            sys::restore_handler(&old_action);
            return Err(ProfileError::Os {
                call: "spawn the collector thread",
                error,
            });
        }
    };
    *running = true;
    Ok(ProfilerGuard {
        shared,
        collector: Some(collector),
        old_action: Some(old_action),
    })
}

/// What the handler, the collector and the registrations share.
pub(crate) struct Shared {
    config: ProfilerConfig,
    generation: u32,
    /// One ring per registration slot, allocated on first use, reused.
    rings: Box<[AtomicPtr<SampleRing>]>,
    state: Mutex<State>,
    /// Failed `on_thread_start` registrations.
    registration_failures: AtomicU64,
}

/// A registration slot.
struct SlotEntry {
    /// Which registration holds it (0 = free or retired).
    serial: u64,
    #[cfg(target_os = "linux")]
    timer: Option<sys::ThreadTimer>,
    /// Index into `Aggregate::threads` of the thread's name.
    thread: u32,
    /// The thread's OS thread id (0 if unknown).
    tid: u32,
    /// Registered and not yet drained after its thread went away.
    in_use: bool,
}

/// The collector's aggregate, behind the lock.
struct State {
    stopped: bool,
    /// Timers disarmed ([`ProfilerGuard::pause`]); new ones start disarmed.
    paused: bool,
    /// Start of the samples in `agg` ([`ProfilerGuard::take_profile`] resets it).
    window_start: Instant,
    window_start_wall: SystemTime,
    slots: Vec<SlotEntry>,
    free: Vec<u32>,
    next_serial: u64,
    agg: Aggregate,
    /// Timed samples for a trace ([`ProfilerGuard::take_cpu_samples`]).
    timed: TimedLog,
}

/// The bounded log of timed samples, with its own stack table (the
/// aggregate's is reset with each window).
#[derive(Default)]
struct TimedLog {
    samples: Vec<CpuSample>,
    stack_ids: HashMap<Arc<[u64]>, u32>,
    stacks: Vec<Arc<[u64]>>,
    dropped: u64,
}

impl TimedLog {
    fn push(&mut self, max: usize, ts_ns: u64, tid: u32, frames: &[u64]) {
        if self.samples.len() >= max {
            self.dropped += 1;
            return;
        }
        let stack = match self.stack_ids.get(frames) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as u32;
                let s: Arc<[u64]> = Arc::from(frames);
                self.stacks.push(Arc::clone(&s));
                self.stack_ids.insert(s, id);
                id
            }
        };
        self.samples.push(CpuSample { ts_ns, tid, stack });
    }
}

/// Samples keyed by stack and labels.
#[derive(Default)]
struct Aggregate {
    stack_ids: HashMap<Arc<[u64]>, u32>,
    stacks: Vec<Arc<[u64]>>,
    samples: HashMap<SampleKey, u64>,
    /// Sites by their encoded word.
    site_ids: HashMap<SiteKey, u32>,
    sites: Vec<SpawnSite>,
    thread_ids: HashMap<Arc<str>, u32>,
    threads: Vec<Arc<str>>,
    stats: ProfilerStats,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SiteKey {
    Location(usize),
    Id(u32),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SampleKey {
    stack: u32,
    task: u64,
    site: u32,
    worker: u32,
    thread: u32,
}

const NO_SITE: u32 = u32::MAX;

impl Shared {
    fn new(config: ProfilerConfig, generation: u32) -> Self {
        let rings = (0..config.max_threads)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        Shared {
            config,
            generation,
            rings,
            state: Mutex::new(State {
                stopped: false,
                paused: false,
                window_start: Instant::now(),
                window_start_wall: SystemTime::now(),
                slots: Vec::new(),
                free: Vec::new(),
                next_serial: 1,
                agg: Aggregate::default(),
                timed: TimedLog::default(),
            }),
            registration_failures: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ring a timer signal with value `word` is for, if it is this
    /// profiler's. Async-signal-safe (atomic loads only).
    #[inline]
    pub(crate) fn ring_for_signal(&self, word: usize) -> Option<&SampleRing> {
        if (word >> 32) as u32 != self.generation {
            return None;
        }
        let ring = self.rings.get(word & 0xffff_ffff)?.load(Ordering::Acquire);
        // SAFETY: rings are freed only when `Shared` is dropped, which
        // happens after the handler was detached from it.
        unsafe { ring.as_ref() }
    }

    fn ring(&self, slot: u32) -> Option<&SampleRing> {
        // SAFETY: as in `ring_for_signal`.
        unsafe {
            self.rings
                .get(slot as usize)?
                .load(Ordering::Acquire)
                .as_ref()
        }
    }

    /// Registers the calling thread (see [`ProfilerHandle::register_current_thread`]).
    #[cfg(target_os = "linux")]
    fn register(self: &Arc<Self>) -> Result<(), ProfileError> {
        let already = REGISTRATION.with(|r| {
            r.borrow()
                .as_ref()
                .is_some_and(|reg| std::ptr::eq(reg.shared.as_ptr(), Arc::as_ptr(self)))
        });
        if already {
            return Ok(());
        }
        let (lo, hi) = sys::current_stack()?;
        let name: Arc<str> = Arc::from(std::thread::current().name().unwrap_or("<unnamed>"));
        let mut st = self.lock();
        if st.stopped {
            return Err(ProfileError::Stopped);
        }
        let slot = match st.free.pop() {
            Some(s) => s,
            None if st.slots.len() < self.config.max_threads => {
                st.slots.push(SlotEntry {
                    serial: 0,
                    timer: None,
                    thread: 0,
                    tid: 0,
                    in_use: false,
                });
                (st.slots.len() - 1) as u32
            }
            None => {
                return Err(ProfileError::TooManyThreads {
                    max_threads: self.config.max_threads,
                });
            }
        };
        let cell = &self.rings[slot as usize];
        if cell.load(Ordering::Acquire).is_null() {
            let ring = Box::new(SampleRing::new(
                self.config.ring_capacity,
                self.config.max_depth,
            ));
            cell.store(Box::into_raw(ring), Ordering::Release);
        }
        let ring = self.ring(slot).expect("allocated above");
        ring.stack_lo.store(lo, Ordering::Relaxed);
        ring.stack_hi.store(hi, Ordering::Relaxed);
        let period = if st.paused {
            0
        } else {
            self.config.period_ns()
        };
        let timer = match sys::ThreadTimer::arm(sys::signal_word(self.generation, slot), period) {
            Ok(t) => t,
            Err(e) => {
                st.free.push(slot);
                return Err(e);
            }
        };
        let serial = st.next_serial;
        st.next_serial += 1;
        let thread = st.agg.thread_index(name, self.config.max_entries);
        st.agg.stats.threads_registered += 1;
        st.slots[slot as usize] = SlotEntry {
            serial,
            timer: Some(timer),
            thread,
            tid: taskline_core::os_thread_id().unwrap_or(0),
            in_use: true,
        };
        drop(st);
        let previous = REGISTRATION.with(|r| {
            r.borrow_mut().replace(Registration {
                shared: Arc::downgrade(self),
                slot,
                serial,
            })
        });
        drop(previous);
        Ok(())
    }

    /// The thread of registration `serial` in `slot` went away: delete its
    /// timer; the collector frees the slot once drained.
    fn unregister(&self, slot: u32, serial: u64) {
        let mut st = self.lock();
        if let Some(entry) = st.slots.get_mut(slot as usize)
            && entry.serial == serial
        {
            #[cfg(target_os = "linux")]
            drop(entry.timer.take());
            entry.serial = 0;
        }
    }

    /// Drains every ring into the aggregate; frees the slots of threads
    /// that went away.
    fn collect(&self) {
        let mut st = self.lock();
        let State {
            slots,
            free,
            agg,
            timed,
            ..
        } = &mut *st;
        let max_timed = self.config.trace_samples;
        for (i, entry) in slots.iter_mut().enumerate() {
            if !entry.in_use {
                continue;
            }
            let Some(ring) = self.ring(i as u32) else {
                continue;
            };
            agg.stats.lost_ring_full += ring.take_lost();
            let (thread, tid) = (entry.thread, entry.tid);
            // SAFETY: one consumer: we hold the lock.
            unsafe {
                ring.drain(|meta, frames| {
                    agg.add(&self.config, meta, frames, thread);
                    timed.push(max_timed, meta.ts_ns, tid, frames);
                })
            };
            if entry.serial == 0 {
                entry.in_use = false;
                free.push(i as u32);
            }
        }
    }

    /// The aggregate so far as a [`Profile`]; with `reset`, the aggregate
    /// starts over (a new window).
    fn profile(&self, reset: bool) -> Profile {
        self.collect();
        let mut st = self.lock();
        let agg = &st.agg;
        let mut samples: Vec<ProfileSample> = agg
            .samples
            .iter()
            .map(|(k, &count)| ProfileSample {
                stack: Arc::clone(&agg.stacks[k.stack as usize]),
                task: k.task,
                site: agg.sites.get(k.site as usize).cloned(),
                worker: (k.worker != NO_WORKER).then_some(k.worker),
                thread: Arc::clone(&agg.threads[k.thread as usize]),
                count,
            })
            .collect();
        samples.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.stack.cmp(&b.stack)));
        let mut stats = agg.stats.clone();
        stats.registration_failures = self.registration_failures.load(Ordering::Relaxed);
        stats.threads_active = st.slots.iter().filter(|s| s.serial != 0).count();
        stats.trace_samples_dropped = st.timed.dropped;
        let profile = Profile {
            frequency_hz: self.config.frequency_hz,
            period_ns: self.config.period_ns(),
            start: st.window_start_wall,
            duration: st.window_start.elapsed(),
            samples,
            stats,
        };
        if reset {
            st.agg.reset();
            st.window_start = Instant::now();
            st.window_start_wall = SystemTime::now();
            self.registration_failures.store(0, Ordering::Relaxed);
        }
        profile
    }

    /// The timed samples logged so far, symbolized; the log starts over.
    fn take_cpu_samples(&self) -> CpuSamples {
        self.collect();
        let log = std::mem::take(&mut self.lock().timed);
        let mut addrs: Vec<u64> = log.stacks.iter().flat_map(|s| s.iter().copied()).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let symbols = crate::symbolize::symbolize_addrs(
            &mut crate::symbolize::SymbolCache::default(),
            &addrs,
        );
        CpuSamples {
            samples: log.samples,
            stacks: log.stacks,
            symbols: symbols.frames,
            mappings: symbols.mappings,
            dropped: log.dropped,
        }
    }

    /// Disarms (`paused`) or re-arms every thread's timer.
    #[cfg(target_os = "linux")]
    fn set_paused(&self, paused: bool) -> Result<(), ProfileError> {
        let mut st = self.lock();
        if st.stopped {
            return Err(ProfileError::Stopped);
        }
        st.paused = paused;
        let period = if paused { 0 } else { self.config.period_ns() };
        let mut result = Ok(());
        for timer in st.slots.iter().filter_map(|s| s.timer.as_ref()) {
            if let Err(e) = timer.set(period) {
                result = Err(e);
            }
        }
        result
    }

    /// Stops sampling: detaches the handler, deletes every timer.
    #[cfg(target_os = "linux")]
    fn stop_sampling(&self) {
        let mut st = self.lock();
        st.stopped = true;
        sys::deactivate();
        for entry in &mut st.slots {
            drop(entry.timer.take());
            entry.serial = 0;
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for cell in self.rings.iter() {
            let ring = cell.swap(std::ptr::null_mut(), Ordering::AcqRel);
            if !ring.is_null() {
                // SAFETY: allocated by `Box::into_raw` in `register`; the
                // handler is detached (stop ran before the last `Arc` went).
                drop(unsafe { Box::from_raw(ring) });
            }
        }
    }
}

impl Aggregate {
    /// Forgets the samples (a new window); thread names stay (registered
    /// threads keep their index).
    fn reset(&mut self) {
        let threads_registered = self.stats.threads_registered;
        self.stack_ids.clear();
        self.stacks.clear();
        self.samples.clear();
        self.site_ids.clear();
        self.sites.clear();
        self.stats = ProfilerStats {
            threads_registered,
            ..ProfilerStats::default()
        };
    }

    fn thread_index(&mut self, name: Arc<str>, max: usize) -> u32 {
        if let Some(&i) = self.thread_ids.get(&name) {
            return i;
        }
        if self.threads.len() >= max {
            // Bounded: later names share the last entry's name.
            return (self.threads.len() - 1) as u32;
        }
        let i = self.threads.len() as u32;
        self.threads.push(Arc::clone(&name));
        self.thread_ids.insert(name, i);
        i
    }

    fn site_index(&mut self, config: &ProfilerConfig, site: SampledSite) -> u32 {
        let key = match site {
            SampledSite::Unknown => return NO_SITE,
            SampledSite::Location(loc) => SiteKey::Location(std::ptr::from_ref(loc) as usize),
            SampledSite::Id(id) => SiteKey::Id(id),
        };
        if let Some(&i) = self.site_ids.get(&key) {
            return i;
        }
        if self.sites.len() >= config.max_entries {
            return NO_SITE;
        }
        let registry = config.recorder.as_ref().map(|r| r.registry());
        let named = match site {
            SampledSite::Location(loc) => {
                let id = registry
                    .map(|r| r.intern_site(loc.file(), loc.line(), loc.column(), TaskKind::Task));
                Some(SpawnSite {
                    name: format!("{}:{}:{}", loc.file(), loc.line(), loc.column()).into(),
                    id: id.filter(|&id| id != taskline_core::Registry::OVERFLOW),
                })
            }
            SampledSite::Id(id) => registry.and_then(|r| r.site(id)).map(|s| SpawnSite {
                name: s.to_string().into(),
                id: Some(id),
            }),
            SampledSite::Unknown => None,
        };
        let Some(named) = named else {
            return NO_SITE;
        };
        let i = self.sites.len() as u32;
        self.sites.push(named);
        self.site_ids.insert(key, i);
        i
    }

    fn add(&mut self, config: &ProfilerConfig, meta: &SampleMeta, frames: &[u64], thread: u32) {
        let weight = u64::from(meta.weight);
        self.stats.samples += weight;
        if meta.truncated {
            self.stats.truncated_stacks += 1;
        }
        let stack = match self.stack_ids.get(frames) {
            Some(&id) => id,
            None if self.stacks.len() < config.max_entries => {
                let id = self.stacks.len() as u32;
                let s: Arc<[u64]> = Arc::from(frames);
                self.stacks.push(Arc::clone(&s));
                self.stack_ids.insert(s, id);
                id
            }
            None => {
                self.stats.dropped_table_full += weight;
                return;
            }
        };
        let key = SampleKey {
            stack,
            task: meta.state.task,
            site: self.site_index(config, meta.state.site()),
            worker: meta.state.worker,
            thread,
        };
        if let Some(count) = self.samples.get_mut(&key) {
            *count += weight;
        } else if self.samples.len() < config.max_entries {
            self.samples.insert(key, weight);
        } else {
            self.stats.dropped_table_full += weight;
        }
    }
}

fn collector_loop(shared: &Arc<Shared>) {
    loop {
        std::thread::park_timeout(shared.config.collect_interval);
        if shared.lock().stopped {
            return;
        }
        shared.collect();
    }
}

/// A thread's registration; its drop (at thread exit) deletes the
/// thread's timer.
struct Registration {
    shared: Weak<Shared>,
    slot: u32,
    serial: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.unregister(self.slot, self.serial);
        }
    }
}

thread_local! {
    static REGISTRATION: RefCell<Option<Registration>> = const { RefCell::new(None) };
}

/// A running CPU profiler: samples every registered thread until
/// [`stop`](Self::stop) or drop, which deletes every timer and puts the
/// previous `SIGPROF` disposition back.
///
/// ```no_run
/// use taskline_profile::{ProfileRuntimeExt, Profiler, ProfilerConfig};
/// let profiler = Profiler::start(ProfilerConfig::default())?;
/// let rt = tokio::runtime::Builder::new_multi_thread()
///     .profile_threads(&profiler.handle()) // every worker and blocking thread
///     .build()?;
/// rt.block_on(async { /* the work */ });
/// profiler.stop()?.write_pprof("cpu.pb.gz")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProfilerGuard {
    shared: Arc<Shared>,
    collector: Option<JoinHandle<()>>,
    #[cfg(target_os = "linux")]
    old_action: Option<libc::sigaction>,
    #[cfg(not(target_os = "linux"))]
    old_action: Option<()>,
}

impl std::fmt::Debug for ProfilerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilerGuard")
            .field("frequency_hz", &self.shared.config.frequency_hz)
            .finish_non_exhaustive()
    }
}

impl ProfilerGuard {
    /// A cloneable handle that registers threads (for `on_thread_start`
    /// callbacks and other threads).
    pub fn handle(&self) -> ProfilerHandle {
        ProfilerHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Samples the calling thread from now on (until it exits or the
    /// profiler stops). Registering twice is a no-op.
    pub fn register_current_thread(&self) -> Result<(), ProfileError> {
        self.handle().register_current_thread()
    }

    /// Everything sampled since the start (or the last
    /// [`take_profile`](Self::take_profile)); the profiler keeps running.
    pub fn profile(&self) -> Profile {
        self.shared.profile(false)
    }

    /// Like [`profile`](Self::profile), then starts a new window: the next
    /// profile holds only later samples. For periodic collection
    /// ([`ProfileCollector`](crate::ProfileCollector)).
    pub fn take_profile(&self) -> Profile {
        self.shared.profile(true)
    }

    /// The timed samples (time on the recorder's clock, OS thread id,
    /// stack) taken since the start or the last call, symbolized in this
    /// process, for a trace: `trace_handle.write_cpu_samples(&profiler.take_cpu_samples())`
    /// puts them on the threads' tracks of a taskline trace. The log
    /// starts over (so calling it now and then streams them); it holds at
    /// most [`ProfilerConfig::trace_samples`] samples in between, later ones
    /// are counted in [`CpuSamples::dropped`].
    pub fn take_cpu_samples(&self) -> CpuSamples {
        self.shared.take_cpu_samples()
    }

    /// Disarms every thread's timer (threads registering meanwhile get a
    /// disarmed one): no signal arrives until [`resume`](Self::resume).
    /// The handler stays installed; samples taken so far are kept.
    pub fn pause(&self) -> Result<(), ProfileError> {
        #[cfg(target_os = "linux")]
        {
            self.shared.set_paused(true)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(ProfileError::Unsupported)
        }
    }

    /// Re-arms every thread's timer after [`pause`](Self::pause).
    pub fn resume(&self) -> Result<(), ProfileError> {
        #[cfg(target_os = "linux")]
        {
            self.shared.set_paused(false)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(ProfileError::Unsupported)
        }
    }

    /// Stops sampling and returns the profile of the current window (the
    /// whole run unless [`take_profile`](Self::take_profile) was used).
    pub fn stop(mut self) -> Result<Profile, ProfileError> {
        self.shutdown();
        Ok(self.shared.profile(false))
    }

    fn shutdown(&mut self) {
        let Some(old) = self.old_action.take() else {
            return;
        };
        #[cfg(target_os = "linux")]
        {
            self.shared.stop_sampling();
            sys::restore_handler(&old);
        }
        #[cfg(not(target_os = "linux"))]
        let () = old;
        if let Some(c) = self.collector.take() {
            c.thread().unpark();
            let _ = c.join();
        }
        *RUNNING.lock().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

impl Drop for ProfilerGuard {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Registers threads with a running profiler; cheap to clone.
#[derive(Clone)]
pub struct ProfilerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ProfilerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfilerHandle").finish_non_exhaustive()
    }
}

impl ProfilerHandle {
    /// Samples the calling thread from now on: arms a timer on its CPU-time
    /// clock. The registration ends when the thread exits (its timer is
    /// deleted then) or the profiler stops. Registering twice is a no-op.
    ///
    /// Errors: the profiler is stopped, `max_threads` threads are
    /// registered, or the timer could not be created.
    pub fn register_current_thread(&self) -> Result<(), ProfileError> {
        #[cfg(target_os = "linux")]
        {
            self.shared.register()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Err(ProfileError::Unsupported)
        }
    }

    /// [`register_current_thread`](Self::register_current_thread) that
    /// counts a failure in [`ProfilerStats::registration_failures`] instead
    /// of returning it (for callbacks that cannot return errors).
    pub fn register_or_count(&self) {
        if self.register_current_thread().is_err() {
            self.shared
                .registration_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whether any `SIGPROF` handler is installed in this process (taskline's
/// or anyone's): `false` means the default disposition or ignore. For
/// checking that a stopped (or never started) profiler left nothing behind.
///
/// ```
/// assert!(!taskline_profile::sigprof_handler_installed().unwrap());
/// ```
pub fn sigprof_handler_installed() -> Result<bool, ProfileError> {
    #[cfg(target_os = "linux")]
    {
        sys::sigprof_has_handler()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(false)
    }
}
