//! A thread's sample ring: single producer (the thread's own `SIGPROF`
//! handler), single consumer (the collector, under the profiler's lock),
//! fixed capacity, allocated once.
//!
//! The producer touches only atomics and its own slots: no lock, no
//! allocation, no panic (every index is masked), so it is
//! async-signal-safe. A full ring drops the sample and counts it. The
//! handler of one thread never runs twice at once (`SIGPROF` is blocked
//! while its handler runs), so there is one producer at a time; a ring is
//! handed to another thread only after its previous thread's timer is
//! deleted and the ring drained.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use taskline_core::SampleState;

/// What a sample carries besides its stack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SampleMeta {
    /// The recorder's per-thread state at signal time.
    pub state: SampleState,
    /// When the sample was taken, on the recorder's clock
    /// ([`taskline_core::now_ns_if_initialized`]; 0 if it was not initialized).
    pub ts_ns: u64,
    /// Frames in the slot's stack.
    pub depth: u32,
    /// Timer periods the sample stands for (1 + the timer's overrun).
    pub weight: u32,
    /// The stack was deeper than the slot.
    pub truncated: bool,
}

/// One thread's ring.
pub(crate) struct SampleRing {
    mask: usize,
    depth: usize,
    /// Next slot the producer writes (only the producer stores it).
    head: AtomicUsize,
    /// Next slot the consumer reads (only the consumer stores it).
    tail: AtomicUsize,
    /// Samples dropped because the ring was full.
    lost: AtomicU64,
    /// The thread's stack, `[lo, hi)`, for the frame-pointer walk; set
    /// before the thread's timer is armed, on that thread.
    pub stack_lo: AtomicUsize,
    /// See [`stack_lo`](Self::stack_lo).
    pub stack_hi: AtomicUsize,
    meta: Box<[UnsafeCell<SampleMeta>]>,
    ips: Box<[UnsafeCell<u64>]>,
}

// SAFETY: slots are written only by the single producer before it
// publishes them with a release store of `head`, and read only by the
// single consumer after an acquire load of `head` and before its release
// store of `tail`; the producer reuses a slot only after an acquire load of
// `tail` shows the consumer is done with it.
unsafe impl Sync for SampleRing {}
// SAFETY: plain data and atomics.
unsafe impl Send for SampleRing {}

impl SampleRing {
    /// A ring of `capacity` (a power of two) samples of `depth` frames.
    pub fn new(capacity: usize, depth: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        let empty = SampleMeta {
            state: taskline_core::sample_state(),
            ts_ns: 0,
            depth: 0,
            weight: 0,
            truncated: false,
        };
        SampleRing {
            mask: capacity - 1,
            depth,
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            lost: AtomicU64::new(0),
            stack_lo: AtomicUsize::new(0),
            stack_hi: AtomicUsize::new(0),
            meta: (0..capacity).map(|_| UnsafeCell::new(empty)).collect(),
            ips: (0..capacity * depth).map(|_| UnsafeCell::new(0)).collect(),
        }
    }

    /// Appends a sample: `walk` fills the frame slice (its length is the
    /// ring's depth) and returns how many frames it wrote and whether the
    /// stack went deeper. Returns `false` (and counts it) when full.
    ///
    /// # Safety
    /// Only one producer at a time (the ring's thread's signal handler).
    #[inline]
    pub unsafe fn push(
        &self,
        state: SampleState,
        ts_ns: u64,
        weight: u32,
        walk: impl FnOnce(&mut [u64]) -> (usize, bool),
    ) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) > self.mask {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let slot = head & self.mask;
        let start = slot * self.depth;
        // SAFETY: the slot is not visible to the consumer (it is at or past
        // `head`) and this is the only producer; `start + depth` is within
        // `ips` (`slot < capacity`). `UnsafeCell<u64>` has `u64`'s layout,
        // so the cells form a `[u64]` slice.
        let frames = unsafe { std::slice::from_raw_parts_mut(self.ips[start].get(), self.depth) };
        let (depth, truncated) = walk(frames);
        // SAFETY: as above.
        unsafe {
            *self.meta[slot].get() = SampleMeta {
                state,
                ts_ns,
                depth: depth.min(self.depth) as u32,
                weight,
                truncated,
            };
        }
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Hands every published sample to `f`, oldest first, then frees the
    /// slots.
    ///
    /// # Safety
    /// Only one consumer at a time (callers hold the profiler's lock).
    pub unsafe fn drain(&self, mut f: impl FnMut(&SampleMeta, &[u64])) {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let mut at = tail;
        while at != head {
            let slot = at & self.mask;
            // SAFETY: published by the producer's release store of `head`,
            // not reused until the release store of `tail` below.
            let meta = unsafe { *self.meta[slot].get() };
            let start = slot * self.depth;
            // SAFETY: as above; `UnsafeCell<u64>` has `u64`'s layout.
            let frames = unsafe {
                std::slice::from_raw_parts(self.ips[start].get().cast_const(), meta.depth as usize)
            };
            f(&meta, frames);
            at = at.wrapping_add(1);
        }
        self.tail.store(head, Ordering::Release);
    }

    /// Takes the count of samples dropped because the ring was full.
    pub fn take_lost(&self) -> u64 {
        self.lost.swap(0, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(ring: &SampleRing, frames: &[u64]) -> bool {
        // SAFETY: one producer (this test).
        unsafe {
            ring.push(taskline_core::sample_state(), frames[0], 1, |out| {
                let n = frames.len().min(out.len());
                out[..n].copy_from_slice(&frames[..n]);
                (n, frames.len() > out.len())
            })
        }
    }

    #[test]
    fn fifo_with_overflow_counted_and_truncation_marked() {
        let ring = SampleRing::new(8, 3);
        for i in 0..10u64 {
            assert_eq!(push(&ring, &[i, i + 100]), i < 8, "sample {i}");
        }
        assert_eq!(ring.take_lost(), 2);
        assert_eq!(ring.take_lost(), 0);
        let mut seen = Vec::new();
        // SAFETY: one consumer.
        unsafe {
            ring.drain(|m, f| {
                assert_eq!(m.ts_ns, f[0], "the time travels with its sample");
                seen.push((f.to_vec(), m.truncated))
            })
        };
        let want: Vec<_> = (0..8u64).map(|i| (vec![i, i + 100], false)).collect();
        assert_eq!(seen, want);
        assert!(push(&ring, &[1, 2, 3, 4]));
        seen.clear();
        // SAFETY: one consumer.
        unsafe { ring.drain(|m, f| seen.push((f.to_vec(), m.truncated))) };
        assert_eq!(
            seen,
            vec![(vec![1, 2, 3], true)],
            "wraps around, keeps the innermost"
        );
    }

    #[test]
    fn concurrent_producer_and_consumer_lose_nothing_they_do_not_count() {
        let ring = std::sync::Arc::new(SampleRing::new(16, 2));
        let r = std::sync::Arc::clone(&ring);
        let n = 200_000u64;
        let producer = std::thread::spawn(move || {
            let mut pushed = 0u64;
            for i in 0..n {
                if push(&r, &[i, !i]) {
                    pushed += 1;
                }
            }
            pushed
        });
        let mut got = 0u64;
        let mut last = None;
        while !producer.is_finished() || got + ring.lost.load(Ordering::Relaxed) < n {
            // SAFETY: one consumer.
            unsafe {
                ring.drain(|_, f| {
                    assert_eq!(f[1], !f[0], "a torn sample");
                    assert!(last.is_none_or(|l| f[0] > l), "out of order");
                    last = Some(f[0]);
                    got += 1;
                })
            };
        }
        let pushed = producer.join().expect("producer");
        assert_eq!(got, pushed);
        assert_eq!(got + ring.take_lost(), n);
    }
}
