//! The Linux sampler: the `SIGPROF` handler, per-thread CPU-time timers,
//! the frame-pointer walk and thread stack bounds.
//!
//! Each registered thread gets a POSIX timer on its own CPU-time clock
//! (`timer_create(CLOCK_THREAD_CPUTIME_ID)`) that sends `SIGPROF` to that
//! thread (`SIGEV_THREAD_ID`) every period of CPU time it burns, with the
//! thread's ring slot and the profiler's generation in the signal's value.
//! The handler runs on the sampled thread, so it reads that thread's
//! taskline state ([`taskline_core::sample_state`]) and walks its stack
//! from the interrupted registers.
//!
//! Lifetime: the handler reaches the running profiler's rings through
//! [`ACTIVE`] only, bracketed by the [`IN_HANDLER`] count. Stopping clears
//! `ACTIVE`, waits for `IN_HANDLER` to reach zero (every later handler
//! sees no profiler and returns), deletes every timer (the kernel drops a
//! deleted timer's pending signal) and only then restores the previous
//! `SIGPROF` disposition and frees the rings.

use std::ffi::c_void;
use std::io;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::error::ProfileError;
use crate::profiler::Shared;

/// The running profiler, or null.
pub(crate) static ACTIVE: AtomicPtr<Shared> = AtomicPtr::new(ptr::null_mut());
/// Handlers between their first and last touch of [`ACTIVE`]'s profiler.
static IN_HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Whether this build can sample.
pub(crate) const SUPPORTED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// The signal value of ring `slot` of profiler generation `generation`.
pub(crate) fn signal_word(generation: u32, slot: u32) -> usize {
    ((generation as usize) << 32) | slot as usize
}

fn os_error(call: &'static str) -> ProfileError {
    ProfileError::Os {
        call,
        error: io::Error::last_os_error(),
    }
}

/// The current `SIGPROF` disposition.
pub(crate) fn sigprof_action() -> Result<libc::sigaction, ProfileError> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only queries; `old` is writable.
    if unsafe { libc::sigaction(libc::SIGPROF, ptr::null(), old.as_mut_ptr()) } != 0 {
        return Err(os_error("sigaction(SIGPROF) query"));
    }
    // SAFETY: initialized by the successful call.
    Ok(unsafe { old.assume_init() })
}

/// Whether `action` is the default or the ignore disposition (nobody's handler).
pub(crate) fn is_default_or_ignore(action: &libc::sigaction) -> bool {
    action.sa_sigaction == libc::SIG_DFL || action.sa_sigaction == libc::SIG_IGN
}

/// Installs the handler; returns the disposition it replaced.
pub(crate) fn install_handler() -> Result<libc::sigaction, ProfileError> {
    let old = sigprof_action()?;
    if !is_default_or_ignore(&old) {
        return Err(ProfileError::SignalInUse);
    }
    let mut action = MaybeUninit::<libc::sigaction>::zeroed();
    let handler: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) = on_sigprof;
    // SAFETY: zeroed is a valid `sigaction`; the fields are set below.
    let action = unsafe {
        let a = action.as_mut_ptr();
        (*a).sa_sigaction = handler as usize;
        // SA_RESTART: a sample must not make the host's system calls fail
        // with EINTR. No SA_ONSTACK: the handler needs little stack.
        (*a).sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigemptyset(&mut (*a).sa_mask);
        action.assume_init()
    };
    // SAFETY: a valid action for a catchable signal.
    if unsafe { libc::sigaction(libc::SIGPROF, &action, ptr::null_mut()) } != 0 {
        return Err(os_error("sigaction(SIGPROF)"));
    }
    Ok(old)
}

/// Puts `old` back as the `SIGPROF` disposition.
pub(crate) fn restore_handler(old: &libc::sigaction) {
    // SAFETY: `old` came from the kernel. Failure leaves our handler in
    // place, which ignores signals once `ACTIVE` is null: harmless.
    let _ = unsafe { libc::sigaction(libc::SIGPROF, old, ptr::null_mut()) };
}

/// Makes `shared` the profiler the handler serves.
pub(crate) fn activate(shared: *const Shared) {
    ACTIVE.store(shared.cast_mut(), Ordering::SeqCst);
}

/// Detaches the handler from the running profiler and waits until no
/// handler still uses it.
pub(crate) fn deactivate() {
    ACTIVE.store(ptr::null_mut(), Ordering::SeqCst);
    while IN_HANDLER.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// A thread's CPU-time timer.
#[derive(Debug)]
pub(crate) struct ThreadTimer(libc::timer_t);

// SAFETY: a timer id is a process-wide handle, usable from any thread.
unsafe impl Send for ThreadTimer {}

impl ThreadTimer {
    /// Creates a timer on the calling thread's CPU-time clock that sends
    /// `SIGPROF` with value `word` to this thread, and arms it to fire
    /// every `period_ns` of that thread's CPU time (0: created disarmed).
    pub fn arm(word: usize, period_ns: u64) -> Result<ThreadTimer, ProfileError> {
        // SAFETY: zeroed is a valid `sigevent`; the fields are set below.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGPROF;
        // SAFETY: gettid has no preconditions.
        sev.sigev_notify_thread_id = unsafe { libc::gettid() };
        sev.sigev_value = libc::sigval {
            sival_ptr: word as *mut c_void,
        };
        let mut timer: libc::timer_t = ptr::null_mut();
        // SAFETY: valid pointers to initialized structs.
        if unsafe { libc::timer_create(libc::CLOCK_THREAD_CPUTIME_ID, &mut sev, &mut timer) } != 0 {
            return Err(os_error("timer_create(CLOCK_THREAD_CPUTIME_ID)"));
        }
        let timer = ThreadTimer(timer);
        timer.set(period_ns)?;
        Ok(timer)
    }

    /// Re-arms the timer with period `period_ns` of thread CPU time, or
    /// disarms it (0): a disarmed timer sends nothing.
    pub fn set(&self, period_ns: u64) -> Result<(), ProfileError> {
        let period = libc::timespec {
            tv_sec: (period_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (period_ns % 1_000_000_000) as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: period,
            it_value: period,
        };
        // SAFETY: a timer we created and have not deleted; valid spec.
        if unsafe { libc::timer_settime(self.0, 0, &spec, ptr::null_mut()) } != 0 {
            return Err(os_error("timer_settime"));
        }
        Ok(())
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: our timer, deleted once (here). The kernel drops its
        // pending signal, if any.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// The calling thread's stack, `[lo, hi)`.
pub(crate) fn current_stack() -> Result<(usize, usize), ProfileError> {
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::zeroed();
    // SAFETY: `attr` is writable; destroyed below after a successful init.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return Err(os_error("pthread_getattr_np"));
        }
        let mut addr: *mut c_void = ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 {
            return Err(os_error("pthread_attr_getstack"));
        }
        Ok((addr as usize, addr as usize + size))
    }
}

/// The `SIGPROF` handler. Async-signal-safe: atomics, plain loads of the
/// thread's own state and stack, a clock read (`rdtsc`, or the vDSO's
/// `clock_gettime`), stores into a preallocated ring; no system call (so
/// `errno` is untouched), no lock, no allocation.
unsafe extern "C" fn on_sigprof(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    IN_HANDLER.fetch_add(1, Ordering::SeqCst);
    let shared = ACTIVE.load(Ordering::SeqCst);
    // Only our timers' signals (a `kill -PROF` has no slot in it).
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    if !shared.is_null() && !info.is_null() && unsafe { (*info).si_code } == libc::SI_TIMER {
        // SAFETY: as above; timer signals carry the value and the overrun.
        let (word, overrun) =
            unsafe { ((*info).si_value().sival_ptr as usize, (*info).si_overrun()) };
        // SAFETY: `ACTIVE` is non-null only while its profiler is alive,
        // and stop waits for `IN_HANDLER` before freeing it.
        let shared = unsafe { &*shared };
        let weight = 1u32.saturating_add(u32::try_from(overrun).unwrap_or(0));
        if let Some(ring) = shared.ring_for_signal(word) {
            let lo = ring.stack_lo.load(Ordering::Relaxed);
            let hi = ring.stack_hi.load(Ordering::Relaxed);
            let state = taskline_core::sample_state();
            // The trace's clock (initialized by `Profiler::start`): an
            // atomic load, the TSC (or the vDSO's monotonic clock) and a
            // multiply, no system call.
            let ts_ns = taskline_core::now_ns_if_initialized().unwrap_or(0);
            // SAFETY: one producer: this thread's handler (SIGPROF is
            // blocked while it runs); `ctx` is the interrupted context.
            unsafe {
                ring.push(state, ts_ns, weight, |frames| {
                    walk_stack(ctx, lo, hi, frames)
                });
            }
        }
    }
    IN_HANDLER.fetch_sub(1, Ordering::SeqCst);
}

/// The interrupted instruction pointer, stack pointer and frame pointer.
///
/// # Safety
/// `ctx` is the `ucontext_t` a signal handler received.
#[cfg(target_arch = "x86_64")]
unsafe fn registers(ctx: *const c_void) -> (usize, usize, usize) {
    // SAFETY: per the contract.
    let g = unsafe { &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    (
        g[libc::REG_RIP as usize] as usize,
        g[libc::REG_RSP as usize] as usize,
        g[libc::REG_RBP as usize] as usize,
    )
}

/// See the x86_64 version.
///
/// # Safety
/// `ctx` is the `ucontext_t` a signal handler received.
#[cfg(target_arch = "aarch64")]
unsafe fn registers(ctx: *const c_void) -> (usize, usize, usize) {
    // SAFETY: per the contract.
    let m = unsafe { &(*ctx.cast::<libc::ucontext_t>()).uc_mcontext };
    (m.pc as usize, m.sp as usize, m.regs[29] as usize)
}

/// See the x86_64 version; [`SUPPORTED`] is false here, so no timer fires.
///
/// # Safety
/// None needed.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn registers(_ctx: *const c_void) -> (usize, usize, usize) {
    (0, 0, 0)
}

/// Walks the frame-pointer chain of the interrupted code into `out`
/// (innermost first: the interrupted instruction, then each return address
/// minus one, so it points into its call instruction). Reads only words
/// inside the thread's stack `[lo, hi)` at or above the interrupted stack
/// pointer, so a function that uses the frame pointer register for data
/// ends the walk early (or adds a bogus frame) but never faults. Returns
/// the frames written and whether the chain went on past `out`.
///
/// # Safety
/// `ctx` is the `ucontext_t` a signal handler received on the thread whose
/// stack is `[lo, hi)` (or `lo == hi == 0`: the instruction only).
unsafe fn walk_stack(ctx: *const c_void, lo: usize, hi: usize, out: &mut [u64]) -> (usize, bool) {
    if out.is_empty() || ctx.is_null() {
        return (0, false);
    }
    // SAFETY: per the contract.
    let (ip, sp, mut fp) = unsafe { registers(ctx) };
    out[0] = ip as u64;
    let mut n = 1;
    // Off the thread's stack (e.g. a signal alternate stack): no walk.
    if sp < lo || sp >= hi {
        return (n, false);
    }
    const WORD: usize = std::mem::size_of::<usize>();
    loop {
        if fp < sp || fp % WORD != 0 || fp > hi.saturating_sub(2 * WORD) {
            return (n, false);
        }
        // SAFETY: `[fp, fp + 2 words)` lies inside the thread's mapped
        // stack between the interrupted stack pointer and its top.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + WORD) as *const usize)) };
        if ret == 0 {
            return (n, false);
        }
        if n == out.len() {
            return (n, true);
        }
        out[n] = (ret - 1) as u64;
        n += 1;
        if next <= fp {
            return (n, false);
        }
        fp = next;
    }
}

/// `SIGPROF` disposition as seen by a test: whether a handler (anyone's) is installed.
pub(crate) fn sigprof_has_handler() -> Result<bool, ProfileError> {
    Ok(!is_default_or_ignore(&sigprof_action()?))
}
