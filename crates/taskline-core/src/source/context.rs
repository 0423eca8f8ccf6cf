//! Thread-local "which task is this thread polling" state, shared by the
//! runtime hooks (which set it) and the tracing layer (which reads it to
//! attribute wakes and to avoid recording a poll twice).
//!
//! Crate-internal plumbing; `pub` only so the layer module can use it.

use std::cell::Cell;

use crate::event::NO_WORKER;

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// The task whose hooked poll runs on this thread; 0 = none.
    static HOOKED: Cell<u64> = const { Cell::new(0) };
    static TERMINATED: Cell<bool> = const { Cell::new(false) };
}

/// Marks the start of a hooked poll of `task` on this thread.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
#[inline]
pub fn enter_poll(task: u64) {
    let _ = CURRENT.try_with(|c| c.set(task));
    let _ = HOOKED.try_with(|c| c.set(task));
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
        enter_poll(7);
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
        enter_poll(5);
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
}
