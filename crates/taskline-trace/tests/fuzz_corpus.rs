//! Runs the `read_trace` fuzz target's checks over the committed seed corpus
//! (`fuzz/corpus/read_trace/`) on stable Rust, so CI exercises it without
//! nightly. `TASKLINE_REGEN_CORPUS=1` rewrites the generated seeds first.

mod common;

use std::path::PathBuf;

use common::{Rng, events, registry};
use taskline_core::Registry;
use taskline_trace::{encode_trace, encode_trace_with_dropped, read_trace};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/read_trace")
}

/// Small valid traces covering every event kind, plus damaged variants.
fn regenerate() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).expect("corpus dir");
    let reg = registry();
    let write =
        |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("write seed");
    let mut empty = Vec::new();
    encode_trace(&[], &Registry::new(), &mut empty).expect("encode");
    write("empty.pftrace", &empty);
    for seed in 0..4u64 {
        let mut rng = Rng::new(seed);
        let evs = events(&mut rng, 14 + 10 * seed as usize, 5);
        let mut b = Vec::new();
        encode_trace_with_dropped(&evs, &reg, seed, &mut b).expect("encode");
        write(&format!("random-{seed}.pftrace"), &b);
        if seed == 0 {
            write("v4-cpu-samples.pftrace", &with_cpu_samples(&evs));
            write("truncated.pftrace", &b[..b.len() * 2 / 3]);
            let mut flipped = b.clone();
            let mid = flipped.len() / 2;
            flipped[mid] ^= 0x80;
            write("flipped.pftrace", &flipped);
        }
    }
}

/// `events` streamed through a writer that also gets a few CPU samples
/// (two stacks, an inlined frame, an unknown address, a mapping).
fn with_cpu_samples(events: &[taskline_core::Event]) -> Vec<u8> {
    use std::sync::Arc;
    use taskline_core::{CodeFrame, CodeMapping, CpuSample, CpuSamples, Sink};
    let reg = registry();
    let mut w = taskline_trace::PerfettoWriter::with_options(
        Vec::new(),
        taskline_trace::TraceOptions {
            writer_thread: false,
            ..taskline_trace::TraceOptions::lossless()
        },
    );
    w.on_events(events, &reg);
    let frame = |function: &str| CodeFrame {
        function: Arc::from(function),
        file: Arc::from("src/main.rs"),
        line: 7,
    };
    let samples = CpuSamples {
        samples: (0..6)
            .map(|i| CpuSample {
                ts_ns: 1000 + 10 * i,
                tid: if i % 2 == 0 { 4242 } else { 4243 },
                stack: (i % 2) as u32,
            })
            .collect(),
        stacks: vec![
            Arc::from(&[0x1010u64, 0x1020][..]),
            Arc::from(&[0x9000u64][..]),
        ],
        symbols: [
            (0x1010, vec![frame("inner"), frame("outer")]),
            (0x1020, vec![frame("main")]),
        ]
        .into_iter()
        .collect(),
        mappings: vec![CodeMapping {
            start: 0x1000,
            limit: 0x2000,
            offset: 0,
            path: Arc::from("/bin/app"),
        }],
        dropped: 0,
    };
    let h = w.handle();
    assert_eq!(h.write_cpu_samples(&samples).expect("samples"), 6);
    h.finish_with_registry(&reg).expect("finish")
}

#[test]
fn every_corpus_file_reads_without_panic_and_valid_ones_re_encode() {
    if std::env::var_os("TASKLINE_REGEN_CORPUS").is_some() {
        regenerate();
    }
    let mut files = 0;
    let mut valid = 0;
    for entry in std::fs::read_dir(corpus_dir()).expect("fuzz/corpus/read_trace exists") {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("read seed");
        files += 1;
        match read_trace(&data) {
            Ok(rec) => {
                valid += 1;
                if path.ends_with("v4-cpu-samples.pftrace") {
                    assert_eq!(rec.cpu_samples.len(), 6, "{}", path.display());
                    let s = rec.cpu_samples[0];
                    assert_eq!(rec.cpu_sample_thread(&s), Some(1), "tid 4242 is thread 1");
                    let names: Vec<_> = rec
                        .cpu_sample_frames(&s)
                        .iter()
                        .map(|f| &*f.function)
                        .collect();
                    assert_eq!(names, ["inner", "outer", "main"]);
                }
                let mut again = Vec::new();
                encode_trace_with_dropped(
                    &rec.events,
                    &rec.registry,
                    rec.dropped_events,
                    &mut again,
                )
                .expect("encode");
                let back = read_trace(&again)
                    .unwrap_or_else(|e| panic!("{}: re-encoded: {e}", path.display()));
                // Exact per recording thread (the cross-thread interleaving of
                // a hostile file's out-of-order timestamps is not kept).
                assert_eq!(back.by_thread(), rec.by_thread(), "{}", path.display());
                assert_eq!(back.events.len(), rec.events.len(), "{}", path.display());
                assert_eq!(back.dropped_events, rec.dropped_events);
            }
            Err(e) => assert!(e.offset <= data.len(), "{}: {e}", path.display()),
        }
    }
    assert!(files >= 5, "the seed corpus is committed ({files} files)");
    assert!(valid >= 4, "the seed corpus holds valid traces ({valid})");
}
