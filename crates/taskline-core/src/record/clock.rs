//! One monotonic clock for every thread.
//!
//! Every event's `ts_ns` comes from [`now_ns`]: nanoseconds since a
//! process-wide epoch. All recorders in the process share the epoch, so their
//! timestamps are comparable. Keep every read of time behind this module so
//! the source can be swapped in one place.
//!
//! The source is the CPU's time-stamp counter where it is invariant (constant
//! rate, synchronized across cores; checked with CPUID at start-up) and the
//! OS monotonic clock (`CLOCK_MONOTONIC`, what [`std::time::Instant`] reads)
//! otherwise. [`quanta`] does the detection and calibrates the counter against
//! the monotonic clock once, so a reading costs one `rdtsc` and a
//! multiply-shift (about 12 ns on a 2-core KVM guest, against about 34 ns for
//! `Instant::elapsed` through the vDSO). The hot path reads the clock two to
//! four times per task, so this is the single largest saving per event.
//!
//! Calibration busy-waits up to 200 ms the first time; [`init`] runs it, and
//! `Recorder::new` calls `init` so no runtime worker ever pays it.

use std::sync::OnceLock;
use std::time::Instant;

struct Clock {
    source: quanta::Clock,
    /// `source.raw()` at the epoch.
    epoch_raw: u64,
    /// The same moment as an `Instant`.
    epoch: Instant,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

#[inline]
fn clock() -> &'static Clock {
    CLOCK.get_or_init(|| {
        let source = quanta::Clock::new();
        let epoch = Instant::now();
        let epoch_raw = source.raw();
        Clock {
            source,
            epoch_raw,
            epoch,
        }
    })
}

/// Calibrates the clock and fixes the epoch now, if nothing did before.
/// Cheap after the first call.
///
/// ```
/// taskline_core::init_clock();
/// assert!(taskline_core::now_ns() < 60_000_000_000);
/// ```
pub fn init() {
    let _ = clock();
}

/// The process-wide epoch every timestamp is measured from.
#[inline]
pub fn epoch() -> Instant {
    clock().epoch
}

/// Nanoseconds since the process-wide epoch (monotonic, same clock on every thread).
///
/// ```
/// let a = taskline_core::now_ns();
/// let b = taskline_core::now_ns();
/// assert!(b >= a);
/// ```
#[inline]
pub fn now_ns() -> u64 {
    let c = clock();
    // 0 if the counter reads below the epoch (never, with an invariant TSC).
    c.source.delta_as_nanos(c.epoch_raw, c.source.raw())
}

/// [`now_ns`] for a signal handler: `None` when the clock was never
/// initialized ([`init`]), instead of initializing it (which calibrates and
/// may allocate). Once initialized it is async-signal-safe: an atomic load,
/// the counter (`rdtsc`, or `clock_gettime(CLOCK_MONOTONIC)` through the
/// vDSO where the counter is not invariant) and a multiply-shift: no lock,
/// no allocation. A sampling profiler stamps its samples with it, so they
/// sit on the trace's timeline.
///
/// ```
/// taskline_core::init_clock();
/// let t = taskline_core::now_ns_if_initialized().unwrap();
/// assert!(t <= taskline_core::now_ns());
/// ```
#[inline]
pub fn now_ns_if_initialized() -> Option<u64> {
    let c = CLOCK.get()?;
    Some(c.source.delta_as_nanos(c.epoch_raw, c.source.raw()))
}

/// Converts an [`Instant`] to nanoseconds since the epoch (0 if it is
/// earlier). Goes through the current time of both clocks, so it is exact to
/// within the clocks' calibration error (nanoseconds).
#[inline]
pub fn instant_to_ns(t: Instant) -> u64 {
    let now = now_ns();
    match Instant::now().checked_duration_since(t) {
        Some(ago) => now.saturating_sub(u64::try_from(ago.as_nanos()).unwrap_or(u64::MAX)),
        None => now.saturating_add(
            u64::try_from(t.saturating_duration_since(Instant::now()).as_nanos())
                .unwrap_or(u64::MAX),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn monotonic_across_threads() {
        let a = now_ns();
        let b = std::thread::spawn(now_ns).join().expect("thread");
        let c = now_ns();
        assert!(a <= b && b <= c, "{a} {b} {c}");
        std::thread::sleep(Duration::from_millis(2));
        assert!(now_ns() - c >= 2_000_000);
    }

    #[test]
    fn agrees_with_instant() {
        // Both clocks measure the same sleep to within a millisecond. The
        // first read calibrates the clock (up to 200 ms): not inside the pair.
        init();
        let (i0, n0) = (Instant::now(), now_ns());
        std::thread::sleep(Duration::from_millis(50));
        let (i1, n1) = (Instant::now(), now_ns());
        let by_instant = i1.duration_since(i0).as_nanos() as i128;
        let by_clock = i128::from(n1 - n0);
        assert!(
            (by_instant - by_clock).abs() < 1_000_000,
            "{by_instant} vs {by_clock}"
        );
        // instant_to_ns maps an Instant onto the same timeline.
        let mapped = instant_to_ns(i1);
        assert!(mapped.abs_diff(n1) < 1_000_000, "{mapped} vs {n1}");
        assert!(instant_to_ns(epoch()) < 1_000_000);
        if let Some(before) = epoch().checked_sub(Duration::from_secs(1)) {
            assert_eq!(instant_to_ns(before), 0);
        }
    }
}
