//! Hostile and damaged trace files: the reader answers with an error (with an
//! offset inside the input), never panics, and skips what it may skip.

mod common;

use common::{Rng, events, registry};
use taskline_trace::{
    TraceErrorKind, TraceOptions, encode_trace, encode_trace_with, events_by_thread, read_trace,
};

fn small_trace() -> Vec<u8> {
    let reg = registry();
    let mut rng = Rng::new(7);
    let evs = events(&mut rng, 30, 5);
    let mut buf = Vec::new();
    encode_trace(&evs, &reg, &mut buf).expect("encode");
    buf
}

/// Every cut of `bytes` is an error with an offset inside the cut, or a
/// partial read marked unfinished whose events are a prefix of each
/// thread's events.
fn check_every_truncation(bytes: &[u8]) {
    let full = read_trace(bytes).expect("the whole trace reads");
    assert!(!full.unfinished);
    let full = events_by_thread(&full.events);
    let mut partial = 0;
    for len in 0..bytes.len() {
        match read_trace(&bytes[..len]) {
            Ok(r) => {
                partial += 1;
                assert!(
                    r.unfinished,
                    "truncated at {len} of {} read as complete",
                    bytes.len()
                );
                for (t, evs) in events_by_thread(&r.events) {
                    assert_eq!(evs[..], full[&t][..evs.len()], "thread {t} cut at {len}");
                }
            }
            Err(e) => assert!(e.offset <= len, "offset {} past input {len}: {e}", e.offset),
        }
    }
    assert!(partial > 0, "some cuts read partially");
}

#[test]
fn every_truncation_is_an_error_or_an_unfinished_prefix() {
    check_every_truncation(&small_trace());
}

#[test]
fn every_truncation_of_a_compressed_trace_is_an_error_or_an_unfinished_prefix() {
    let reg = registry();
    let mut rng = Rng::new(8);
    let evs = events(&mut rng, 3000, 4);
    let mut buf = Vec::new();
    let opts = TraceOptions {
        compress: true,
        ..TraceOptions::lossless()
    };
    encode_trace_with(&evs, &reg, 0, opts, &mut buf).expect("encode");
    assert_eq!(read_trace(&buf).expect("reads").events.len(), evs.len());
    // Cutting a compressed trace at every byte is slow in debug builds: every 7th.
    let full = events_by_thread(&read_trace(&buf).unwrap().events);
    for len in (0..buf.len()).step_by(7) {
        match read_trace(&buf[..len]) {
            Ok(r) => {
                assert!(r.unfinished);
                for (t, e) in events_by_thread(&r.events) {
                    assert_eq!(e[..], full[&t][..e.len()]);
                }
            }
            Err(e) => assert!(e.offset <= len, "{e}"),
        }
    }
}

#[test]
fn every_single_byte_corruption_is_handled_without_panic() {
    let bytes = small_trace();
    let clean = read_trace(&bytes).expect("clean");
    let mut errors = 0;
    for i in 0..bytes.len() {
        for x in [0x01u8, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= x;
            match read_trace(&b) {
                Err(e) => {
                    assert!(e.offset <= b.len(), "{e}");
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
                Ok(r) if r.unfinished || r.events != clean.events => errors += 1,
                Ok(_) => {}
            }
        }
    }
    // Version 2 derives most fields, so a flipped bit in an event usually
    // changes it rather than breaking the file; flips in what the reader
    // skips (the names each sequence interns for the UI) change nothing.
    assert!(
        errors > bytes.len() / 2,
        "most corruptions are detected ({errors} of {})",
        2 * bytes.len()
    );
}

#[test]
fn unknown_fields_and_groups_are_skipped() {
    let bytes = small_trace();
    let clean = read_trace(&bytes).expect("clean");
    // Unknown top-level fields before the packets: a varint, a fixed32, a
    // fixed64, a nested group and a length-delimited blob.
    let mut b = vec![0x10, 0x05, 0x1d, 1, 2, 3, 4, 0x21, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&[0x2b, 0x33, 0x08, 0x01, 0x34, 0x2c]);
    b.extend_from_slice(&[0x32, 0x03, 0xaa, 0xbb, 0xcc]);
    b.extend_from_slice(&bytes);
    let r = read_trace(&b).expect("unknown fields are skipped");
    assert_eq!(r.events, clean.events);
}

#[test]
fn malformed_wire_data_is_named() {
    let bytes = small_trace();
    let kind = |b: &[u8]| read_trace(b).unwrap_err().kind;
    // A varint of 11 bytes.
    let mut b = vec![0x10];
    b.extend_from_slice(&[0xff; 10]);
    b.push(0x01);
    assert_eq!(kind(&b), TraceErrorKind::BadVarint);
    // A packet whose length runs past the end.
    assert!(matches!(
        kind(&[0x0a, 0x7f, 0x00]),
        TraceErrorKind::LengthPastEnd {
            len: 127,
            remaining: 1
        }
    ));
    // A huge declared length does not allocate: it is rejected against the input size.
    let mut b = vec![0x0a];
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    assert!(matches!(kind(&b), TraceErrorKind::LengthPastEnd { .. }));
    // Groups nested 1000 deep.
    let b: Vec<u8> = std::iter::repeat_n(0x2b, 1000).collect();
    assert_eq!(kind(&b), TraceErrorKind::TooDeep);
    // Wire types 6 and 7 do not exist; field number 0 neither.
    assert_eq!(kind(&[0x0e]), TraceErrorKind::BadWireType(6));
    assert_eq!(kind(&[0x00, 0x01]), TraceErrorKind::BadFieldNumber(0));
    // A trace missing its end marker (the writer never finished).
    let mut first = Vec::new();
    let mut pos = 0;
    // Keep every packet but the last one (the end marker).
    let mut last_start = 0;
    while pos < bytes.len() {
        last_start = pos;
        let mut len = 0usize;
        let mut shift = 0;
        pos += 1;
        loop {
            let byte = bytes[pos];
            pos += 1;
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        pos += len;
    }
    first.extend_from_slice(&bytes[..last_start]);
    let partial = read_trace(&first).expect("an unfinished trace reads up to its last packet");
    assert!(partial.unfinished);
    assert_eq!(partial.events, read_trace(&bytes).unwrap().events);
    // Data after the end marker.
    let mut b = bytes.clone();
    b.extend_from_slice(&bytes[..last_start.min(40)]);
    assert!(read_trace(&b).is_err());
}

#[test]
fn other_perfetto_traces_are_refused() {
    // A packet on sequence 1 with a track descriptor that is not taskline's.
    let foreign = [0x0a, 0x07, 0x50, 0x01, 0xe2, 0x03, 0x02, 0x08, 0x07];
    let e = read_trace(&foreign).unwrap_err();
    assert!(matches!(e.kind, TraceErrorKind::NotTaskline(_)), "{e}");
    assert!(e.to_string().contains("not a taskline trace"), "{e}");
}

/// The committed fuzz seed with CPU samples (`fuzz_corpus.rs` writes it):
/// every cut and every flipped byte of it is an error or a read, never a
/// panic, and a cut keeps a prefix of the samples.
#[test]
fn damaged_cpu_samples_are_errors_or_prefixes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus/read_trace/v4-cpu-samples.pftrace");
    let bytes = std::fs::read(path).expect("the seed is committed");
    let full = read_trace(&bytes).expect("reads");
    assert_eq!(full.cpu_samples.len(), 6);
    check_every_truncation(&bytes);
    for len in 0..bytes.len() {
        if let Ok(r) = read_trace(&bytes[..len]) {
            assert_eq!(
                r.cpu_samples[..],
                full.cpu_samples[..r.cpu_samples.len()],
                "cut at {len}"
            );
        }
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x41;
        if let Err(e) = read_trace(&b) {
            assert!(e.offset <= b.len(), "{e}");
        }
    }
}
