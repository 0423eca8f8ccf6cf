//! Thread-local "which task is this thread polling" state, shared by the
//! runtime hooks (which set it) and the tracing layer (which reads it to
//! attribute wakes and to avoid recording a poll twice).
//!
//! A sampling profiler reads the same state from a signal handler on the
//! interrupted thread ([`sample_state`]): the task, and the spawn site and
//! worker of the thread's latest poll, which the hooks (and the wrapper
//! source) keep in one more thread-local, written with one store per poll.
//! Every thread-local here is a `const`-initialized `Cell` of plain data
//! (no destructor, no lazy initialization), so reading it is a plain load
//! from the thread's static TLS block: async-signal-safe.
//!
//! Crate-internal plumbing; `pub` only so the layer module can use it.

use std::cell::Cell;
use std::panic::Location;

use crate::event::NO_WORKER;

/// The spawn site and worker of a thread's latest poll, and the task it
/// belongs to (so a sampler never names the site of another task).
#[derive(Clone, Copy)]
struct PollSite {
    task: u64,
    /// A `&'static Location` address, or `site id << 1 | 1` (see [`SampledSite`]).
    site: usize,
    worker: u32,
}

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// The task whose hooked poll runs on this thread; 0 = none.
    static HOOKED: Cell<u64> = const { Cell::new(0) };
    static TERMINATED: Cell<bool> = const { Cell::new(false) };
    static POLL_SITE: Cell<PollSite> = const {
        Cell::new(PollSite { task: 0, site: 0, worker: NO_WORKER })
    };
}

/// Marks the start of a hooked poll of `task` on this thread, spawned at
/// `site`, on Tokio worker `worker` (or [`NO_WORKER`]).
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub fn enter_poll(task: u64, site: &'static Location<'static>, worker: u32) {
    let _ = CURRENT.try_with(|c| c.set(task));
    let _ = HOOKED.try_with(|c| c.set(task));
    let site = std::ptr::from_ref(site) as usize;
    let _ = POLL_SITE.try_with(|c| c.set(PollSite { task, site, worker }));
}

/// Marks the end of the hooked poll on this thread.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub fn exit_poll() {
    let _ = CURRENT.try_with(|c| c.set(0));
    let _ = HOOKED.try_with(|c| c.set(0));
}

/// Called by the terminate hook: if `task` is in a hooked poll on this
/// thread (Tokio runs the terminate callback inside the task's last poll),
/// remembers that its poll ended it and returns `true`; the after-poll hook
/// then folds the termination into its `PollEnd` (see
/// [`take_terminated`]). Returns `false` otherwise (the caller records a
/// `Terminate` of its own).
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub fn terminate_in_poll(task: u64) -> bool {
    if task == 0 || hooked_task() != task {
        return false;
    }
    TERMINATED.try_with(|c| c.set(true)).is_ok()
}

/// Whether the poll ending now terminated its task; clears the mark.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub fn take_terminated() -> bool {
    TERMINATED.try_with(|c| c.replace(false)).unwrap_or(false)
}

/// Sets the current task without claiming a hooked poll (used by the layer
/// when it tracks polls itself). Returns the previous value so nested polls
/// can restore it.
#[inline]
pub fn set_current_task(task: u64) -> u64 {
    CURRENT.try_with(|c| c.replace(task)).unwrap_or(0)
}

/// [`set_current_task`] for the wrapper source's poll of `task`, whose
/// spawn site has id `site` in its recorder's registry (the caller of
/// `Recorder::spawn`, more precise than the hooks' location of the
/// wrapper's own `tokio::spawn`, so it replaces it). Returns the previous
/// current task.
#[inline]
pub fn enter_wrapped_poll(task: u64, site: u32) -> u64 {
    let site = ((site as usize) << 1) | 1;
    let worker = worker();
    let _ = POLL_SITE.try_with(|c| c.set(PollSite { task, site, worker }));
    set_current_task(task)
}

/// Where the task a [`SampleState`] names was spawned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampledSite {
    /// Not known: no task, or a poll that no site-aware source recorded
    /// (the `tracing` sources keep no site here).
    Unknown,
    /// The spawn location Tokio's runtime hooks report.
    Location(&'static Location<'static>),
    /// A site id in the registry of the recorder whose wrapper source
    /// ([`Recorder::spawn`](crate::Recorder::spawn)) spawned the task.
    Id(u32),
}

/// What a thread is doing, as a sampling profiler sees it at signal time:
/// see [`sample_state`]. Plain data; decode the site with
/// [`SampleState::site`] outside the signal handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleState {
    /// The task the thread is polling, 0 for none.
    pub task: u64,
    /// The Tokio worker index of the thread's latest recorded poll, or
    /// [`NO_WORKER`] (never polled a task, or not a worker).
    pub worker: u32,
    /// The encoded spawn site of `task` (0 = unknown).
    site_word: usize,
}

impl SampleState {
    /// The spawn site of [`task`](Self::task).
    pub fn site(&self) -> SampledSite {
        match self.site_word {
            0 => SampledSite::Unknown,
            w if w & 1 == 1 => SampledSite::Id(u32::try_from(w >> 1).unwrap_or(u32::MAX)),
            // SAFETY: an even non-zero word is only ever stored from a
            // `&'static Location<'static>` (`enter_poll`), which lives forever.
            w => SampledSite::Location(unsafe { &*(w as *const Location<'static>) }),
        }
    }
}

/// The calling thread's task, spawn site and worker: for a sampling
/// profiler's signal handler. Async-signal-safe: two plain loads from
/// `const`-initialized thread-locals without destructors, no lock, no
/// allocation, no panic (in an executable's static TLS; a `dlopen`ed
/// library's TLS may be allocated on first touch).
///
/// ```
/// let state = taskline_core::sample_state();
/// assert_eq!((state.task, state.site()), (0, taskline_core::SampledSite::Unknown));
/// ```
#[inline]
pub fn sample_state() -> SampleState {
    let task = current_task();
    let poll = POLL_SITE.try_with(Cell::get).unwrap_or(PollSite {
        task: 0,
        site: 0,
        worker: NO_WORKER,
    });
    SampleState {
        task,
        worker: poll.worker,
        site_word: if task != 0 && poll.task == task {
            poll.site
        } else {
            0
        },
    }
}

/// The task this thread is polling, 0 if none (or unknown).
#[inline]
pub fn current_task() -> u64 {
    CURRENT.try_with(Cell::get).unwrap_or(0)
}

/// True between the runtime hooks' before-poll and after-poll callbacks.
#[inline]
pub fn in_hooked_poll() -> bool {
    hooked_task() != 0
}

/// The task the runtime hooks are polling on this thread (between their
/// before-poll and after-poll callbacks), 0 if none. Unlike
/// [`current_task`], a poll a `tracing` source records itself (a `LocalSet`
/// task polled inside a hooked task) does not change it.
#[inline]
pub fn hooked_task() -> u64 {
    HOOKED.try_with(Cell::get).unwrap_or(0)
}

/// The Tokio worker index of this thread, or [`NO_WORKER`] off the
/// runtime's workers (blocking pool, `block_on`, foreign threads).
#[inline]
pub fn worker() -> u32 {
    tokio::runtime::worker_index()
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or(NO_WORKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enter_exit() {
        assert_eq!(current_task(), 0);
        assert!(!in_hooked_poll());
        enter_poll(7, Location::caller(), 3);
        assert_eq!(current_task(), 7);
        assert!(in_hooked_poll());
        assert_eq!(hooked_task(), 7);
        assert_eq!(set_current_task(8), 7, "a nested poll the layer records");
        assert_eq!(hooked_task(), 7, "is not the hooked one");
        set_current_task(7);
        std::thread::spawn(|| assert_eq!(current_task(), 0))
            .join()
            .expect("thread");
        exit_poll();
        assert_eq!(current_task(), 0);
        assert!(!in_hooked_poll());
        assert_eq!(set_current_task(3), 0);
        assert_eq!(set_current_task(0), 3);
    }

    #[test]
    fn termination_is_folded_only_into_the_tasks_own_hooked_poll() {
        assert!(!terminate_in_poll(5), "outside a poll");
        enter_poll(5, Location::caller(), NO_WORKER);
        assert!(!terminate_in_poll(6), "another task");
        assert!(!take_terminated());
        assert!(terminate_in_poll(5));
        assert!(take_terminated());
        assert!(!take_terminated(), "taken once");
        exit_poll();
        set_current_task(5);
        assert!(!terminate_in_poll(5), "the layer's poll, not a hooked one");
        set_current_task(0);
    }

    #[test]
    fn sample_state_names_the_site_of_the_current_task_only() {
        let here = Location::caller();
        assert_eq!(sample_state().site(), SampledSite::Unknown);
        enter_poll(9, here, 2);
        let s = sample_state();
        assert_eq!(
            (s.task, s.worker, s.site()),
            (9, 2, SampledSite::Location(here))
        );
        assert_eq!(set_current_task(10), 9, "a nested poll the layer records");
        let s = sample_state();
        assert_eq!(
            (s.task, s.site()),
            (10, SampledSite::Unknown),
            "not task 9's site"
        );
        set_current_task(9);
        exit_poll();
        let s = sample_state();
        assert_eq!((s.task, s.worker, s.site()), (0, 2, SampledSite::Unknown));
        assert_eq!(enter_wrapped_poll(11, 4), 0);
        let s = sample_state();
        assert_eq!(
            (s.task, s.worker, s.site()),
            (11, NO_WORKER, SampledSite::Id(4))
        );
        set_current_task(0);
        enter_poll(12, here, 1);
        assert_eq!(enter_wrapped_poll(12, 4), 12);
        assert_eq!(
            sample_state().site(),
            SampledSite::Id(4),
            "the wrapper's caller, not its tokio::spawn"
        );
        exit_poll();
    }
}
