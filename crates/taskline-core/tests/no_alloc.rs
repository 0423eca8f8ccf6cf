//! The hot path allocates nothing once a thread is warmed up. A counting
//! global allocator counts allocations made by the *recording thread only*
//! (a thread-local flag), so the consumer thread's work does not count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use taskline_core::{Event, EventKind};
use taskline_core::{Recorder, RecorderConfig, now_ns};

struct Counting;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn allocations_during(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    TRACK.with(|t| t.set(true));
    f();
    TRACK.with(|t| t.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn recording_allocates_nothing_after_the_first_event() {
    // The counter itself works (so the assertion below can fail).
    assert!(allocations_during(|| drop(std::hint::black_box(Box::new(1u64)))) >= 1);

    let cfg = RecorderConfig {
        ring_capacity: 4096,
        drain_interval: std::time::Duration::from_millis(1),
        ..RecorderConfig::default()
    };
    let a = Recorder::new(cfg.clone()).expect("config");
    let b = Recorder::new(cfg).expect("config");
    // Warm-up: the first event registers this thread's ring (allocates).
    let first = allocations_during(|| {
        a.record(Event::new(EventKind::Wake, now_ns(), 1));
        b.record(Event::new(EventKind::Wake, now_ns(), 1));
    });
    assert!(first >= 2, "ring registration allocates: {first}");

    const N: u64 = 100_000;
    let n = allocations_during(|| {
        for i in 0..N {
            let mut e = Event::new(EventKind::PollStart, now_ns(), i + 1);
            e.arg = i;
            a.record(e);
            if i % 4 == 0 {
                b.record(e);
            }
        }
    });
    assert_eq!(
        n, 0,
        "allocations on the recording thread while recording {N} events"
    );

    // Every event is accounted for: stored or dropped-and-counted (the ring
    // is smaller than the burst, so some may be dropped).
    a.flush();
    let s = a.stats();
    assert_eq!(s.recorded + s.dropped, N + 1, "{s:?}");
    assert_eq!(s.delivered, s.recorded);
}
