//! Workload time with the OTLP exporter pointed at a silent endpoint (accepts,
//! never answers) versus no exporter at all. Not a test: the ratio depends on
//! the machine; the tests assert only that nothing stalls.
//!
//! `cargo run --release -p taskline-otel --example dead_endpoint_ratio`

use std::net::TcpListener;
use std::time::{Duration, Instant};

use taskline_otel::{OtlpConfig, RuntimeMetricsExporter, init_otlp};

fn workload(rt: &tokio::runtime::Runtime) -> Duration {
    let t = Instant::now();
    rt.block_on(async {
        for _ in 0..3000 {
            let hs: Vec<_> = (0..500u64)
                .map(|i| {
                    tokio::spawn(
                        async move { std::hint::black_box((0..200u64).fold(i, |a, b| a ^ b)) },
                    )
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        }
    });
    t.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });

    let rt = runtime();
    workload(&rt); // warm up
    let base = workload(&rt);

    let guard = init_otlp(
        OtlpConfig::new()
            .with_endpoint(format!("http://127.0.0.1:{port}/v1/metrics"))
            .with_interval(Duration::from_millis(100))
            .with_timeout(Duration::from_millis(500))
            .on_export_error(|_| {}),
    )
    .unwrap();
    let rt2 = runtime();
    let _reg = RuntimeMetricsExporter::register(&guard.meter(), rt2.handle().clone(), "main");
    workload(&rt2);
    let with = workload(&rt2);
    let stats = guard.export_stats();
    println!(
        "no exporter: {:?}\nexporter to a silent endpoint: {:?} ({} failed exports)\nratio: {:.3}",
        base,
        with,
        stats.failed,
        with.as_secs_f64() / base.as_secs_f64()
    );
}
