//! Writer -> reader round trips: every event kind and field value comes back exactly.

mod common;

use std::io;

use common::{Rng, events, registry};
use taskline_layer::event::{Event, EventKind};
use taskline_layer::registry::Registry;
use taskline_layer::sink::Sink;
use taskline_trace::{PerfettoWriter, encode_trace, encode_trace_with_dropped, read_trace};

fn assert_same_registry(a: &Registry, b: &Registry) {
    assert_eq!(a.strings(), b.strings());
    assert_eq!(a.sites(), b.sites());
    assert_eq!(a.threads(), b.threads());
}

#[test]
fn one_shot_encode_is_lossless_for_random_events() {
    let reg = registry();
    for seed in 0..20 {
        let mut rng = Rng::new(seed);
        let evs = events(&mut rng, 500, 5);
        let mut buf = Vec::new();
        let n = encode_trace_with_dropped(&evs, &reg, seed * 7, &mut buf).unwrap();
        assert_eq!(n as usize, buf.len());
        let rec = read_trace(&buf).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        for (i, (a, b)) in evs.iter().zip(&rec.events).enumerate() {
            assert_eq!(a, b, "seed {seed}, event {i}");
        }
        assert_eq!(rec.events.len(), evs.len());
        assert_eq!(rec.dropped_events, seed * 7);
        assert_eq!(rec.events_skipped, 0);
        assert_same_registry(&reg, &rec.registry);
    }
}

#[test]
fn events_naming_no_kind_are_skipped_and_counted() {
    let reg = registry();
    let mut good = Event::new(EventKind::Terminate, 5, 9);
    good.thread = 1;
    let bad = Event { kind: 0, ..good };
    let bad2 = Event { kind: 200, ..good };
    let mut buf = Vec::new();
    encode_trace(&[bad, good, bad2], &reg, &mut buf).unwrap();
    let rec = read_trace(&buf).unwrap();
    assert_eq!(rec.events, vec![good]);
    assert_eq!(rec.events_skipped, 2);
}

#[test]
fn empty_trace_reads_back_empty() {
    let reg = Registry::new();
    let mut buf = Vec::new();
    encode_trace(&[], &reg, &mut buf).unwrap();
    let rec = read_trace(&buf).unwrap();
    assert!(rec.events.is_empty());
    assert_eq!(rec.dropped_events, 0);
}

#[test]
fn streaming_writer_in_batches_with_a_growing_registry() {
    let reg = registry();
    let mut rng = Rng::new(99);
    let evs = events(&mut rng, 3000, 5);
    let mut sink = PerfettoWriter::new(Vec::new());
    let handle = sink.handle();
    let mut i = 0;
    while i < evs.len() {
        let n = (1 + rng.below(300) as usize).min(evs.len() - i);
        if rng.below(3) == 0 {
            // Strings interned and workers learned mid-recording must be described.
            reg.intern(&format!("late string {i}"));
            reg.set_worker(3, 7);
        }
        sink.on_events(&evs[i..i + n], &reg);
        if rng.below(4) == 0 {
            sink.on_flush(&reg);
        }
        i += n;
    }
    reg.intern("interned after the last batch");
    handle.set_dropped_events(42);
    assert_eq!(handle.events_written(), evs.len() as u64);
    let bytes = handle.finish_with_registry(&reg).unwrap();
    assert_eq!(handle.bytes_written(), bytes.len() as u64);
    // Later events are ignored, a second finish is an error, nothing panics.
    sink.on_events(&evs[..10], &reg);
    assert_eq!(handle.events_ignored(), 10);
    assert!(handle.finish().is_err());

    let rec = read_trace(&bytes).unwrap();
    assert_eq!(rec.events, evs);
    assert_eq!(rec.dropped_events, 42);
    assert_same_registry(&reg, &rec.registry);
}

/// An output that fails after `ok` bytes.
#[derive(Debug)]
struct Failing {
    ok: usize,
}

impl io::Write for Failing {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if self.ok < b.len() {
            return Err(io::Error::other("disk full"));
        }
        self.ok -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_are_counted_and_returned_not_panicked() {
    let reg = registry();
    let mut rng = Rng::new(5);
    let evs = events(&mut rng, 20_000, 5);
    let mut sink = PerfettoWriter::new(Failing { ok: 100_000 });
    let handle = sink.handle();
    for chunk in evs.chunks(1000) {
        sink.on_events(chunk, &reg);
        sink.on_flush(&reg);
    }
    assert_eq!(
        handle.write_errors(),
        1,
        "reported once, then the trace stops"
    );
    assert!(handle.events_ignored() > 0);
    let err = handle.finish().unwrap_err();
    assert_eq!(err.to_string(), "disk full");
}
