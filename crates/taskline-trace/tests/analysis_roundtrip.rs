//! writer -> reader -> report equals the in-process report of the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use taskline_core::Recorder;
use taskline_core::RecorderConfig;
use taskline_core::RuntimeBuilderExt;
use taskline_trace::analysis::{AnalysisConfig, Analyzer};
use taskline_trace::{PerfettoWriter, read_trace};

#[test]
fn report_from_the_trace_file_equals_the_in_process_report() {
    let dir = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("roundtrip-{}.pftrace", std::process::id()));
    let recorder = Recorder::new(RecorderConfig {
        drain_interval: Duration::from_millis(2),
        ..RecorderConfig::default()
    })
    .expect("recorder");
    let (writer, trace) = PerfettoWriter::create(&path).expect("trace file");
    recorder.add_sink(writer);
    let config = AnalysisConfig {
        recorder: RecorderConfig {
            slow_poll_threshold: Duration::from_millis(5),
            ..RecorderConfig::default()
        },
        ..AnalysisConfig::default()
    };
    let (sink, analysis) = Analyzer::new(config.clone()).expect("config").shared();
    recorder.add_sink(sink);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .taskline(&recorder)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(1));
        let mut handles = Vec::new();
        for i in 0..40u64 {
            let sem = sem.clone();
            handles.push(tokio::spawn(async move {
                let _p = sem.acquire().await.expect("open");
                tokio::time::sleep(Duration::from_micros(200 * (i % 3))).await;
                if i == 7 {
                    std::thread::sleep(Duration::from_millis(8)); // one slow poll
                }
                tokio::task::yield_now().await;
            }));
        }
        for h in handles {
            h.await.expect("task");
        }
    });
    drop(rt);
    recorder.flush();
    let in_process = analysis.report(recorder.registry());
    trace.set_dropped_events(recorder.stats().dropped);
    trace
        .finish_with_registry(recorder.registry())
        .expect("finish trace");
    recorder.shutdown();

    let rec = read_trace(&std::fs::read(&path).expect("read")).expect("valid trace");
    let from_file = Analyzer::analyze(&rec.events, &rec.registry, config).expect("config");
    assert!(in_process.events > 100, "{in_process}");
    assert!(in_process.tasks_seen >= 40, "{in_process}");
    assert!(in_process.slow_polls.count >= 1, "{in_process}");
    assert!(!in_process.workers.workers.is_empty(), "{in_process}");
    eprintln!("{in_process}");
    assert_eq!(from_file, in_process);
    assert_eq!(from_file.to_string(), in_process.to_string());
    let _ = std::fs::remove_file(&path);
}
