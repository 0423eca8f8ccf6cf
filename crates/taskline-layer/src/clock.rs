//! One monotonic clock for every thread.
//!
//! Every event's `ts_ns` comes from [`now_ns`]: nanoseconds since a
//! process-wide epoch taken from [`std::time::Instant`] the first time the
//! clock is read. All recorders in the process share the epoch, so their
//! timestamps are comparable. Keep every read of time behind this module so
//! the source can be swapped (e.g. for a TSC clock) in one place.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The process-wide epoch every timestamp is measured from.
#[inline]
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process-wide epoch (monotonic, same clock on every thread).
///
/// ```
/// let a = taskline_layer::clock::now_ns();
/// let b = taskline_layer::clock::now_ns();
/// assert!(b >= a);
/// ```
#[inline]
pub fn now_ns() -> u64 {
    // u64 nanoseconds cover 584 years; saturate rather than wrap.
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Converts an [`Instant`] to nanoseconds since the epoch (0 if it is earlier).
#[inline]
pub fn instant_to_ns(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_across_threads() {
        let a = now_ns();
        let b = std::thread::spawn(now_ns).join().expect("thread");
        let c = now_ns();
        assert!(a <= b && b <= c, "{a} {b} {c}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now_ns() - c >= 2_000_000);
    }
}
