//! Fuzz `read_trace`: any input gives `Ok` or `Err`, never a panic or an
//! allocation beyond the input's size; and whatever reads back re-encodes to
//! a trace that reads back to the same events, thread by thread.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taskline_trace::{encode_trace_with_dropped, read_trace};

fuzz_target!(|data: &[u8]| {
    if let Ok(rec) = read_trace(data) {
        let mut again = Vec::new();
        encode_trace_with_dropped(&rec.events, &rec.registry, rec.dropped_events, &mut again)
            .expect("encoding into a Vec cannot fail");
        let back = read_trace(&again).expect("a re-encoded trace reads back");
        // Exact per recording thread; across threads the order comes from
        // the timestamps, which a hostile input need not keep in order.
        assert_eq!(back.by_thread(), rec.by_thread());
        assert_eq!(back.dropped_events, rec.dropped_events);
    }
});
