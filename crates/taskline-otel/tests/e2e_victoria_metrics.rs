//! End to end: export runtime and task metrics over OTLP/HTTP to a real
//! VictoriaMetrics (see scripts/e2e-otel.sh), then require every PromQL
//! expression of every panel of dashboards/taskline.json to return data,
//! and the process metrics to hold sane values (resident memory > 0, at
//! least one thread and one descriptor, CPU time in both modes).
//!
//! Runs only when TASKLINE_VM_URL is set (e.g. `http://127.0.0.1:8428`).
#![cfg(tokio_unstable)]

use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use serde_json::Value;
use taskline_core::{Recorder, RuntimeBuilderExt, TasklineSubscriber};
use taskline_otel::task::{TaskMetricsConfig, TaskMetricsSink};
use taskline_otel::{
    OtlpConfig, ProcessMetricsExporter, ProfileType, ProfilesCollected, RuntimeMetricsExporter,
    init_otlp,
};

const RUNTIME: &str = "e2e";
const SERVICE: &str = "taskline-e2e";

/// Dashboard variables and Grafana's built-ins, as concrete values.
const SUBSTITUTIONS: &[(&str, &str)] = &[
    ("$__rate_interval", "5m"),
    ("${__rate_interval}", "5m"),
    ("$__interval", "30s"),
    ("${__interval}", "30s"),
    ("$__range", "10m"),
    ("${service}", SERVICE),
    ("$service", SERVICE),
    ("${runtime}", RUNTIME),
    ("$runtime", RUNTIME),
];

fn vm_url() -> Option<String> {
    std::env::var("TASKLINE_VM_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn get_json(url: &str) -> Value {
    let body = reqwest::blocking::get(url)
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}"))
}

/// Every `expr` of every target of every panel (rows' nested panels too).
fn dashboard_exprs(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("?").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_string()));
                }
            }
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard["panels"].as_array().expect("panels"), &mut out);
    out
}

fn substitute(expr: &str) -> String {
    let mut e = expr.to_string();
    for (from, to) in SUBSTITUTIONS {
        e = e.replace(from, to);
    }
    assert!(!e.contains('$'), "unsubstituted variable in {e}");
    e
}

fn workload(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let mut hs = Vec::new();
        for i in 0..200u64 {
            hs.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1 + i % 5)).await;
                tokio::task::yield_now().await;
            }));
        }
        hs.push(tokio::spawn(async {
            std::thread::sleep(Duration::from_millis(25))
        }));
        // Idle for reason sync: a receiver woken by its sender's poll.
        for _ in 0..20 {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            hs.push(tokio::spawn(async move { rx.await.unwrap() }));
            hs.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                tx.send(()).unwrap();
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2)))
            .await
            .unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (a, b) = tokio::join!(l.accept(), tokio::net::TcpStream::connect(addr));
        drop((a.unwrap(), b.unwrap()));
    });
}

#[test]
fn every_dashboard_query_returns_data_from_victoria_metrics() {
    let Some(url) = vm_url() else {
        println!("skipped: TASKLINE_VM_URL not set");
        return;
    };
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../dashboards/taskline.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 10, "dashboard has {} queries", exprs.len());

    let guard = init_otlp(
        OtlpConfig::new()
            .with_endpoint(format!("{url}/opentelemetry/v1/metrics"))
            .with_service_name(SERVICE)
            .with_interval(Duration::from_secs(3600))
            .with_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    let recorder = Recorder::with_defaults();
    // Tokio's instrumentation (wakes, resource waits) gives the idle
    // histogram its reasons beyond `unknown`.
    TasklineSubscriber::new(&recorder, tracing_subscriber::registry())
        .expect("registry")
        .with_resource_waits(true)
        .try_init()
        .expect("the only global subscriber of this test binary");
    recorder.add_sink(TaskMetricsSink::new(
        &guard.meter(),
        TaskMetricsConfig {
            by_spawn_site: true,
            attributes: vec![KeyValue::new("tokio.runtime.name", RUNTIME)],
            ..TaskMetricsConfig::default()
        },
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .enable_metrics_poll_time_histogram()
        .enable_metrics_schedule_latency_histogram()
        .taskline(&recorder)
        .build()
        .unwrap();
    let _reg = RuntimeMetricsExporter::register(&guard.meter(), rt.handle().clone(), RUNTIME);
    let process = ProcessMetricsExporter::register(&guard.meter());
    assert!(process.is_registered(), "Linux: /proc is read");
    let profiles = ProfilesCollected::new(&guard.meter());

    // Three exports a second apart: rate() needs two samples in its window.
    for _ in 0..3 {
        workload(&rt);
        profiles.add(ProfileType::Cpu);
        profiles.add(ProfileType::Heap);
        recorder.flush();
        guard.force_flush().expect("export to VictoriaMetrics");
        std::thread::sleep(Duration::from_millis(1100));
    }
    let stats = guard.export_stats();
    assert_eq!(stats.failed, 0, "{stats:?}");

    if std::env::var_os("TASKLINE_E2E_LIST_NAMES").is_some() {
        let names = get_json(&format!("{url}/api/v1/label/__name__/values"));
        println!("{}", serde_json::to_string_pretty(&names["data"]).unwrap());
        let series = get_json(&format!(
            "{url}/api/v1/series?match[]=tokio_worker_busy_time_seconds_total"
        ));
        println!("{}", serde_json::to_string_pretty(&series["data"]).unwrap());
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut pending: Vec<(String, String)> = exprs
        .iter()
        .map(|(t, e)| (t.clone(), substitute(e)))
        .collect();
    while !pending.is_empty() {
        pending.retain(|(_, q)| {
            let v = get_json(&format!("{url}/api/v1/query?query={}", percent_encode(q)));
            assert_eq!(v["status"], "success", "{q}: {v}");
            v["data"]["result"].as_array().is_none_or(|r| r.is_empty())
        });
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        pending.is_empty(),
        "{} of {} dashboard queries returned no data:\n{}",
        pending.len(),
        exprs.len(),
        pending
            .iter()
            .map(|(t, q)| format!("  [{t}] {q}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The idle-by-reason panel splits by the reasons the workload has:
    // timers (resource waits on) and cross-task wakes at least.
    let q = format!(
        "sum by (reason) (tokio_task_idle_duration_seconds_count{{service_name=\"{SERVICE}\", tokio_runtime_name=\"{RUNTIME}\"}})"
    );
    let v = get_json(&format!("{url}/api/v1/query?query={}", percent_encode(&q)));
    let reasons: Vec<&str> = v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["metric"]["reason"].as_str())
        .collect();
    for want in ["sync", "timer"] {
        assert!(reasons.contains(&want), "{want} missing in {reasons:?}");
    }
    process_metrics_are_sane(&url);
    recorder.shutdown();
}

/// The last value of each series `query` returns, by the value of `label`.
fn instant(url: &str, query: &str, label: &str) -> Vec<(String, f64)> {
    let v = get_json(&format!(
        "{url}/api/v1/query?query={}",
        percent_encode(query)
    ));
    assert_eq!(v["status"], "success", "{query}: {v}");
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let value = r["value"][1].as_str().and_then(|s| s.parse().ok());
            (
                r["metric"][label].as_str().unwrap_or("").to_string(),
                value.unwrap_or_else(|| panic!("{query}: {r}")),
            )
        })
        .collect()
}

fn process_metrics_are_sane(url: &str) {
    let one = |metric: &str| {
        let q = format!("{metric}{{service_name=\"{SERVICE}\"}}");
        let r = instant(url, &q, "service_name");
        assert_eq!(r.len(), 1, "{q}: {r:?}");
        r[0].1
    };
    let rss = one("process_memory_usage_bytes");
    let vsz = one("process_memory_virtual_bytes");
    let threads = one("process_thread_count");
    let fds = one("process_open_file_descriptor_count");
    println!("process: rss {rss} B, virtual {vsz} B, {threads} threads, {fds} fds");
    assert!(rss > 0.0 && vsz >= rss, "rss {rss}, virtual {vsz}");
    // Main thread + 2 workers at least (the SDK's reader too).
    assert!(threads >= 3.0, "{threads} threads");
    assert!(fds >= 1.0, "{fds} fds");
    let cpu = instant(
        url,
        &format!("process_cpu_time_seconds_total{{service_name=\"{SERVICE}\"}}"),
        "cpu_mode",
    );
    let mut modes: Vec<_> = cpu.iter().map(|(m, _)| m.as_str()).collect();
    modes.sort_unstable();
    assert_eq!(modes, ["system", "user"], "{cpu:?}");
    assert!(
        cpu.iter().all(|(_, s)| *s >= 0.0) && cpu.iter().any(|(_, s)| *s > 0.0),
        "{cpu:?}"
    );
    // The last export can take VictoriaMetrics a moment to make visible
    // (it buffers fresh samples): wait for the final count, bounded.
    let query = format!("taskline_profiles_collected_total{{service_name=\"{SERVICE}\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut profiles: Vec<_> = instant(url, &query, "profile_type");
        profiles.sort_by(|a, b| a.0.cmp(&b.0));
        let want = [("cpu".to_string(), 3.0), ("heap".to_string(), 3.0)];
        if profiles == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: {profiles:?}, expected {want:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
