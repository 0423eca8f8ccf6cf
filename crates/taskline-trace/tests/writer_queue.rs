//! The streaming writer's own thread: a stalled output fills its bounded
//! queue, later batches are dropped and counted (never blocking the
//! consumer), and the count lands in the end marker.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use taskline_core::{Event, EventKind};
use taskline_core::{Registry, Sink};
use taskline_trace::{PerfettoWriter, TraceOptions, WRITER_QUEUE_BATCHES, read_trace};

/// An output whose writes wait until `open` is set.
#[derive(Clone)]
struct Gate {
    open: Arc<AtomicBool>,
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        while !self.open.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stalled_output_drops_and_counts_whole_batches_without_blocking() {
    let gate = Gate {
        open: Arc::new(AtomicBool::new(false)),
        bytes: Arc::new(Mutex::new(Vec::new())),
    };
    let options = TraceOptions {
        sample_rss: false,
        ..TraceOptions::default()
    };
    assert!(
        options.writer_thread,
        "streaming writers encode on their own thread by default"
    );
    let mut sink = PerfettoWriter::with_options(gate.clone(), options);
    let handle = sink.handle();
    let registry = Registry::new();
    let batches = WRITER_QUEUE_BATCHES * 2 + 50;
    let mut ts = 0;
    let started = Instant::now();
    for b in 0..batches {
        let batch: Vec<Event> = (0..1024u64)
            .map(|i| {
                ts += 10;
                let kind = if i % 2 == 0 {
                    EventKind::PollStart
                } else {
                    EventKind::PollEnd
                };
                let mut e = Event::new(kind, ts, (b as u64) * 512 + i / 2 + 1);
                e.thread = 0;
                e
            })
            .collect();
        sink.on_events(&batch, &registry);
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the consumer side never waits for the stalled output"
    );
    let dropped = handle.events_dropped_by_writer();
    assert!(dropped > 0, "the queue overflowed");
    assert_eq!(dropped % 1024, 0, "whole batches are dropped");
    gate.open.store(true, Ordering::Release);
    handle.finish().expect("finish");
    let bytes = gate.bytes.lock().unwrap().clone();
    let back = read_trace(&bytes).expect("read back");
    assert!(!back.unfinished);
    assert_eq!(back.dropped_events, dropped, "the end marker counts them");
    assert_eq!(back.events.len() as u64 + dropped, (batches * 1024) as u64);
}
