//! A per-thread single-producer/single-consumer ring of [`Event`]s.
//!
//! The owning thread pushes (no lock, no allocation); the recorder's consumer
//! reads `[tail, head)` in place through a [`RingView`] and then releases
//! what it used. `head` is only written by the producer
//! (release-store after the slot is written), `tail` only by the consumer
//! (release-store after the slots are read). Both counters grow without
//! wrapping in practice (u64 / usize on 64-bit), the slot is `index & mask`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::event::Event;

/// Pads a value to its own cache line so producer and consumer counters do not
/// false-share.
#[repr(align(128))]
struct Padded<T>(T);

/// What [`Ring::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Push {
    /// Stored.
    Stored,
    /// Stored, and the ring just became half full: time to wake the consumer.
    Half,
    /// The ring was full: dropped and counted.
    Full,
}

impl Push {
    /// Whether the event was stored.
    #[cfg(test)]
    pub(crate) fn stored(self) -> bool {
        self != Push::Full
    }
}

pub(crate) struct Ring {
    slots: Box<[UnsafeCell<Event>]>,
    mask: usize,
    /// `capacity / 2`: the length at which a push reports [`Push::Half`].
    half: usize,
    /// Next index the producer writes. Written by the producer only.
    head: Padded<AtomicUsize>,
    /// Next index the consumer reads. Written by the consumer only.
    tail: Padded<AtomicUsize>,
    /// Events the producer could not store because the ring was full.
    /// Written by the producer only (load + store, no RMW).
    dropped: AtomicU64,
    /// Set by the producer's thread-local destructor: no more pushes.
    finished: AtomicBool,
    /// The recorder's number for the producing thread.
    pub(crate) thread: u16,
}

// SAFETY: slots are only written by the single producer at indices in
// [head, tail + capacity) and only read by the single consumer in
// [tail, head); the release/acquire pairs on head and tail order those
// accesses, so no slot is accessed concurrently.
unsafe impl Sync for Ring {}
// SAFETY: see above; Event is plain data.
unsafe impl Send for Ring {}

/// `capacity` zeroed slots. An all-zero `Event` is valid (integers only), and
/// zeroed memory lets the allocator hand out fresh pages without touching
/// them, so registering a thread stays cheap even for large rings.
fn zeroed_slots(capacity: usize) -> Box<[UnsafeCell<Event>]> {
    use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
    let Ok(layout) = Layout::array::<UnsafeCell<Event>>(capacity) else {
        return Box::default();
    };
    if layout.size() == 0 {
        return Box::default();
    }
    // SAFETY: the layout has non-zero size; the memory is zeroed, which is a
    // valid `UnsafeCell<Event>` (repr(transparent) over plain integers); the
    // box takes ownership with the same layout it was allocated with.
    unsafe {
        let ptr = alloc_zeroed(layout).cast::<UnsafeCell<Event>>();
        if ptr.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, capacity))
    }
}

impl Ring {
    /// A ring of `capacity` events (a power of two), all slots preallocated.
    pub(crate) fn new(capacity: usize, thread: u16) -> Ring {
        debug_assert!(capacity.is_power_of_two());
        let slots = zeroed_slots(capacity);
        Ring {
            slots,
            mask: capacity - 1,
            half: capacity / 2,
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            dropped: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            thread,
        }
    }

    /// Producer only: appends `e`, or counts it as dropped when full.
    ///
    /// Returns [`Push::Half`] when this push made the ring exactly half full
    /// (as seen with the tail just read). The producer's view of the length
    /// grows by one per push and only shrinks when the consumer drains, so
    /// every crossing of half capacity is reported exactly once, and the
    /// check costs one comparison.
    #[inline]
    pub(crate) fn push(&self, e: Event) -> Push {
        let head = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Acquire);
        let len = head.wrapping_sub(tail);
        if len > self.mask {
            let d = self.dropped.load(Ordering::Relaxed);
            self.dropped.store(d + 1, Ordering::Relaxed);
            return Push::Full;
        }
        // SAFETY: head - tail < capacity, so the consumer is not reading this
        // slot, and only this (single) producer writes slots.
        unsafe { *self.slots[head & self.mask].get() = e };
        self.head.0.store(head.wrapping_add(1), Ordering::Release);
        if len + 1 == self.half {
            Push::Half
        } else {
            Push::Stored
        }
    }

    /// Consumer only: the events published so far and not yet consumed, read
    /// in place. They stay valid (the producer does not overwrite them) until
    /// [`RingView::consume`] releases them.
    pub(crate) fn view(&self) -> RingView<'_> {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Acquire);
        RingView {
            ring: self,
            tail,
            len: head.wrapping_sub(tail),
        }
    }

    /// Consumer only: appends every available event to `out`; returns how many.
    #[cfg(test)]
    pub(crate) fn drain_into(&self, out: &mut Vec<Event>) -> usize {
        let v = self.view();
        v.copy_prefix_into(v.len, out);
        v.consume(v.len);
        v.len
    }

    /// Events pushed so far (not counting drops).
    pub(crate) fn pushed(&self) -> u64 {
        self.head.0.load(Ordering::Acquire) as u64
    }

    /// Events dropped because the ring was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_finished(&self) {
        self.finished.store(true, Ordering::Release);
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

/// The consumer's view of a ring's unconsumed events `[tail, tail + len)`,
/// indexed from 0. Only the consumer makes views, one at a time per ring.
pub(crate) struct RingView<'a> {
    ring: &'a Ring,
    tail: usize,
    len: usize,
}

impl RingView<'_> {
    /// Unconsumed events.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn slot(&self, i: usize) -> *const Event {
        debug_assert!(i < self.len);
        // `UnsafeCell<Event>` is `repr(transparent)` over `Event`.
        self.ring.slots[self.tail.wrapping_add(i) & self.ring.mask]
            .get()
            .cast_const()
    }

    /// Event `i` (`i < len()`).
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Event {
        assert!(i < self.len);
        // SAFETY: slots [tail, tail + len) were published by the producer's
        // release store of head (acquired when the view was made), and the
        // producer does not write them again until `consume` release-stores a
        // tail past them, so nothing writes this slot while we read it.
        unsafe { *self.slot(i) }
    }

    /// The timestamp of event `i` (`i < len()`).
    #[inline]
    pub(crate) fn ts(&self, i: usize) -> u64 {
        assert!(i < self.len);
        // SAFETY: as in `get`.
        unsafe { (*self.slot(i)).ts_ns }
    }

    /// Appends the first `n` events (`n <= len()`) to `out`: at most two
    /// slice copies.
    pub(crate) fn copy_prefix_into(&self, n: usize, out: &mut Vec<Event>) {
        let n = n.min(self.len);
        let start = self.tail & self.ring.mask;
        let first = n.min(self.ring.slots.len() - start);
        let base = self.ring.slots.as_ptr().cast::<Event>();
        // SAFETY: `UnsafeCell<Event>` is `repr(transparent)` over `Event`, so
        // the slots are a valid `[Event]`; the ranges are in bounds and hold
        // published events nobody writes until `consume` (see `get`).
        unsafe {
            out.extend_from_slice(std::slice::from_raw_parts(base.add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(base, n - first));
        }
    }

    /// The view of the first `n` events only (`n <= len()`).
    pub(crate) fn prefix(&self, n: usize) -> RingView<'_> {
        RingView {
            ring: self.ring,
            tail: self.tail,
            len: n.min(self.len),
        }
    }

    /// Releases the first `n` events (`n <= len()`) to the producer.
    pub(crate) fn consume(&self, n: usize) {
        debug_assert!(n <= self.len);
        self.ring
            .tail
            .0
            .store(self.tail.wrapping_add(n.min(self.len)), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use std::sync::Arc;

    #[test]
    fn full_ring_drops_and_counts() {
        let r = Ring::new(64, 0);
        for i in 0..100 {
            r.push(Event::new(EventKind::Wake, i, i));
        }
        assert_eq!(r.pushed(), 64);
        assert_eq!(r.dropped(), 36);
        let mut out = Vec::new();
        assert_eq!(r.drain_into(&mut out), 64);
        assert_eq!(
            out.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
            (0..64).collect::<Vec<_>>()
        );
        assert!(r.push(Event::new(EventKind::Wake, 1, 1)).stored());
    }

    #[test]
    fn drain_across_the_wrap_point_keeps_order() {
        let r = Ring::new(64, 0);
        let mut out = Vec::new();
        for i in 0..40 {
            r.push(Event::new(EventKind::Wake, i, i));
        }
        assert_eq!(r.drain_into(&mut out), 40);
        // Slots 40..64 then 0..26: two runs.
        for i in 40..90 {
            assert!(r.push(Event::new(EventKind::Wake, i, i)).stored());
        }
        assert_eq!(r.drain_into(&mut out), 50);
        assert_eq!(r.drain_into(&mut out), 0);
        assert_eq!(
            out.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
            (0..90).collect::<Vec<_>>()
        );
    }

    #[test]
    fn half_full_is_reported_once_per_crossing() {
        let r = Ring::new(64, 0);
        let halves = |r: &Ring, n: u64| {
            (0..n)
                .filter(|&i| r.push(Event::new(EventKind::Wake, i, i)) == Push::Half)
                .count()
        };
        assert_eq!(halves(&r, 31), 0);
        assert_eq!(halves(&r, 1), 1, "the 32nd event fills half of 64");
        assert_eq!(halves(&r, 40), 0, "beyond half (and full): no report");
        let mut out = Vec::new();
        r.drain_into(&mut out);
        assert_eq!(halves(&r, 32), 1, "after a drain, the next crossing");
    }

    #[test]
    fn concurrent_producer_consumer_keeps_order() {
        let r = Arc::new(Ring::new(128, 0));
        let p = r.clone();
        let n = 50_000u64;
        let t = std::thread::spawn(move || {
            let mut i = 0;
            while i < n {
                if p.push(Event::new(EventKind::Wake, i, i)).stored() {
                    i += 1;
                } else {
                    // undo the drop count for this test: retry instead
                    std::hint::spin_loop();
                }
            }
        });
        let mut out = Vec::new();
        while (out.len() as u64) < n {
            r.drain_into(&mut out);
        }
        t.join().expect("producer");
        for (i, e) in out.iter().enumerate() {
            assert_eq!(e.ts_ns, i as u64);
        }
    }
}
