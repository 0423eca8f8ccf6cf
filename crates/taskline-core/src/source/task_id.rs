//! `tokio::task::Id` -> `u64` without parsing its `Display` output.
//!
//! Tokio's `Id` has no public `as_u64`, but it derives `Hash` over a
//! `NonZeroU64`, which hashes by a single `write_u64`. A tiny [`Hasher`] that
//! captures that value gives the number back for free.

use std::hash::{Hash, Hasher};

/// A hasher that remembers the last `u64` written to it.
#[derive(Default)]
struct Capture(u64);

impl Hasher for Capture {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Id`'s derived Hash; fold bytes in so a future change
        // still yields a stable (if different) number instead of 0.
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// The numeric value of a Tokio task id (the same number its `Display` prints).
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let h = rt.spawn(async {});
/// let id = h.id();
/// assert_eq!(taskline_core::task_id_u64(id).to_string(), id.to_string());
/// ```
#[inline]
pub fn task_id_u64(id: tokio::task::Id) -> u64 {
    let mut h = Capture::default();
    id.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_display_for_many_tasks() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        for _ in 0..100 {
            let h = rt.spawn(async { tokio::task::id() });
            let inner = rt.block_on(h).expect("join");
            let n = task_id_u64(inner);
            assert_ne!(n, 0);
            assert_eq!(n.to_string(), inner.to_string());
        }
    }
}
