//! taskline in a real service: a small HTTP server on 127.0.0.1 with the
//! recorder, a flight recorder that dumps when a handler blocks its worker,
//! and OTLP metrics export.
//!
//! ```text
//! cargo run --release --example service                 # listens on 127.0.0.1:3000
//! curl 127.0.0.1:3000/                                   # a normal request
//! curl '127.0.0.1:3000/block?ms=300'                     # a handler that blocks its worker
//! ls target/flight/                                      # the flight recorder's dump of it
//! cargo run -p taskline-cli -- report target/flight/*.pftrace
//! curl 127.0.0.1:3000/report                             # the live report
//! curl -o next.pftrace '127.0.0.1:3000/trace?seconds=5'  # a trace of the next 5 s
//! curl 127.0.0.1:3000/tasks                              # task dump: where every task waits
//!                                                        # (needs --features taskdump; 501 otherwise)
//! curl -o heap.pb.gz 127.0.0.1:3000/heap                 # heap profile, pprof (needs --features heap)
//! cargo run -p taskline-cli -- report next.pftrace
//! curl -o cpu.pb.gz '127.0.0.1:3000/profile?seconds=5'  # a CPU profile of the next 5 s (Linux)
//! go tool pprof -top -tagfocus=spawn_site=examples/service.rs cpu.pb.gz
//! wrk -t2 -c32 -d10s http://127.0.0.1:3000/              # load (Debian package `wrk`)
//! cargo run --release --example service -- --no-taskline # the same service without taskline
//! cargo run --release --example service -- --profile-always # CPU profiler sampling all along (its cost)
//! ```
//!
//! Flags: `--addr ADDR` (default 127.0.0.1:3000), `--no-taskline`,
//! `--layer` (also taskline's `tracing` subscriber: wakes, task names and
//! blocking sections from Tokio's instrumentation; the runtime hooks alone
//! are the default and cover polls, slow polls, spawns and the flight
//! recorder), `--resources` (with `--layer`: resource waits too),
//! `--plain-layer` (the same through the plain `TasklineLayer` on a
//! registry, for comparison), `--registry-only` (measurement aid: Tokio's
//! span instrumentation under a bare `tracing_subscriber::registry()`
//! without taskline, the floor any layer over Tokio's spans pays), `--otlp`
//! (export to `OTEL_EXPORTER_OTLP_ENDPOINT`, default http://localhost:4318),
//! `--flight-dir DIR` (default target/flight), `--trace-dir DIR` (where
//! `/trace` writes its files, default target/on-demand), `--slow-poll-ms N` (default 50),
//! `--exit-after-secs N` (stop by itself, for scripted runs).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use taskline::Taskline;
use taskline::trace::flight::FlightConfig;
use tracing_subscriber::prelude::*;

// jemalloc with its heap profiler, for /heap (feature `heap`, Linux).
#[cfg(all(feature = "heap", target_os = "linux"))]
taskline::heap_profiling_allocator!();

struct Options {
    addr: SocketAddr,
    taskline: bool,
    layer: bool,
    resources: bool,
    plain_layer: bool,
    registry_only: bool,
    otlp: bool,
    flight_dir: PathBuf,
    trace_dir: PathBuf,
    slow_poll: Duration,
    exit_after: Option<Duration>,
    profile_always: bool,
}

/// `--profile-always`: the CPU profiler samples from the start instead of
/// only while `/profile` runs (to measure what continuous profiling costs).
static PROFILE_ALWAYS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn parse() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:3000".parse().map_err(|e| format!("{e}"))?,
        taskline: true,
        layer: false,
        resources: false,
        plain_layer: false,
        registry_only: false,
        otlp: false,
        flight_dir: PathBuf::from("target/flight"),
        trace_dir: PathBuf::from("target/on-demand"),
        slow_poll: Duration::from_millis(50),
        exit_after: None,
        profile_always: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--addr" => {
                o.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?;
                if !o.addr.ip().is_loopback() {
                    return Err("--addr must be a loopback address (this is a demo)".into());
                }
            }
            "--no-taskline" => o.taskline = false,
            "--layer" => o.layer = true,
            "--resources" => o.resources = true,
            "--plain-layer" => o.plain_layer = true,
            "--registry-only" => o.registry_only = true,
            "--otlp" => o.otlp = true,
            "--profile-always" => o.profile_always = true,
            "--flight-dir" => o.flight_dir = PathBuf::from(value()?),
            "--trace-dir" => o.trace_dir = PathBuf::from(value()?),
            "--slow-poll-ms" => {
                let ms: u64 = value()?
                    .parse()
                    .map_err(|_| "--slow-poll-ms takes a whole number")?;
                if ms == 0 {
                    return Err("--slow-poll-ms must be at least 1".into());
                }
                o.slow_poll = Duration::from_millis(ms);
            }
            "--exit-after-secs" => {
                let s: u64 = value()?
                    .parse()
                    .map_err(|_| "--exit-after-secs takes a whole number")?;
                o.exit_after = Some(Duration::from_secs(s));
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (see the file's doc comment)"
                ));
            }
        }
    }
    Ok(o)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse()?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();

    // --- taskline: these lines are all a service needs -------------------
    let taskline = if o.taskline {
        let mut setup = taskline::Taskline::builder()
            // One slow-poll threshold: what the report counts as slow is what
            // makes the flight recorder dump.
            .recorder_config(taskline::RecorderConfig {
                slow_poll_threshold: o.slow_poll,
                ..taskline::RecorderConfig::default()
            })
            .flight_recorder(FlightConfig {
                dump_dir: o.flight_dir.clone(),
                ..FlightConfig::default()
            });
        if o.otlp {
            setup =
                setup.otlp(taskline::otel::OtlpConfig::new().with_service_name("taskline-service"));
        }
        if o.layer {
            // Your own layers go inside `registry()`, as before.
            setup = setup
                .tracing(tracing_subscriber::registry())
                .resource_waits(o.resources);
        }
        // The CPU profiler, paused until `/profile` asks (Linux only).
        #[cfg(target_os = "linux")]
        {
            setup = setup.cpu_profile(taskline::profile::ProfilerConfig::default());
        }
        let taskline = setup.start()?;
        PROFILE_ALWAYS.store(o.profile_always, Ordering::Relaxed);
        if let Some(p) = taskline.cpu_profiler()
            && !o.profile_always
        {
            p.pause()?;
        }
        if o.plain_layer {
            tracing_subscriber::registry().with(taskline.layer()).init();
        } else if o.registry_only {
            tracing_subscriber::registry().init();
        }
        Some(Arc::new(taskline))
    } else {
        None
    };
    // Hooks on the runtime, its metrics over OTLP (with --otlp).
    let runtime = match &taskline {
        Some(t) => t.build_runtime(&mut builder, "service")?,
        None => builder.build()?,
    };
    // -----------------------------------------------------------------------

    let served = runtime.block_on(serve(
        o.addr,
        o.exit_after,
        taskline.clone(),
        Arc::new(o.trace_dir),
    ))?;
    drop(runtime);
    eprintln!("served {served} requests");
    if let Some(t) = taskline {
        if let Some(f) = t.flight_recorder() {
            let stats = f.stats();
            eprintln!("flight recorder: {stats:?}");
        }
        // The runtime (and with it every handler's clone) is gone; if a clone
        // still lived, the last one to drop would finish the same way.
        if let Ok(t) = Arc::try_unwrap(t) {
            t.shutdown()?;
        }
    }
    Ok(())
}

async fn serve(
    addr: SocketAddr,
    exit_after: Option<Duration>,
    taskline: Option<Arc<Taskline>>,
    trace_dir: Arc<PathBuf>,
) -> std::io::Result<u64> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{}", listener.local_addr()?);
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = async {
        match exit_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut deadline => break,
        };
        let taskline = taskline.clone();
        let served = served.clone();
        let trace_dir = trace_dir.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                handle(req, taskline.clone(), trace_dir.clone())
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    Ok(served.load(std::sync::atomic::Ordering::Relaxed))
}

async fn handle(
    req: Request<Incoming>,
    taskline: Option<Arc<Taskline>>,
    trace_dir: Arc<PathBuf>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        Ok(r)
    };
    match req.uri().path() {
        "/" => {
            // A little async work, like a real handler awaiting something.
            tokio::task::yield_now().await;
            text(
                StatusCode::OK,
                "hello from taskline's demo service\n".into(),
            )
        }
        "/block" => {
            let ms = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(200)
                .min(5_000);
            // The bug taskline is here to find: blocking a runtime worker.
            std::thread::sleep(Duration::from_millis(ms));
            text(StatusCode::OK, format!("blocked a worker for {ms} ms\n"))
        }
        "/report" => match taskline {
            Some(t) => text(StatusCode::OK, t.report()),
            None => text(
                StatusCode::NOT_FOUND,
                "taskline is off (--no-taskline)\n".into(),
            ),
        },
        "/dump" => match taskline.as_ref().and_then(|t| t.flight_recorder()) {
            Some(f) => match f.dump_to_dir("on-demand").wait(Duration::from_secs(10)) {
                Ok(info) => text(StatusCode::OK, format!("{info:?}\n")),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "dump failed: {e}{}\n",
                        std::error::Error::source(&e)
                            .map(|c| format!(": {c}"))
                            .unwrap_or_default()
                    ),
                ),
            },
            None => text(
                StatusCode::NOT_FOUND,
                "taskline is off (--no-taskline)\n".into(),
            ),
        },
        "/trace" => match taskline {
            Some(t) => Ok(trace(t, req.uri().query(), &trace_dir).await),
            None => text(
                StatusCode::NOT_FOUND,
                "taskline is off (--no-taskline)\n".into(),
            ),
        },
        "/profile" => match taskline.filter(|t| t.cpu_profiler().is_some()) {
            Some(t) => Ok(profile(t, req.uri().query()).await),
            None => text(
                StatusCode::NOT_FOUND,
                "no CPU profiler (--no-taskline, or not Linux)\n".into(),
            ),
        },
        "/tasks" => Ok(tasks().await),
        "/heap" => Ok(heap(taskline).await),
        _ => text(
            StatusCode::NOT_FOUND,
            "try /, /block?ms=300, /report, /dump, /trace?seconds=5, /profile?seconds=5, /tasks, /heap\n"
                .into(),
        ),
    }
}

/// `/tasks`: a task dump of this runtime (Go's goroutine profile): 200 with
/// the text, 501 with the reason where this build cannot take one, 503
/// when Tokio did not finish within 10 s (a blocked worker) or a dump is
/// still under way.
async fn tasks() -> Response<Full<Bytes>> {
    let handle = tokio::runtime::Handle::current();
    // Tokio pauses the workers for the dump: wait for it off the workers.
    let result =
        tokio::task::spawn_blocking(move || taskline::task_dump(&handle, Duration::from_secs(10)))
            .await;
    let (status, body) = match result {
        Ok(Ok(dump)) => (StatusCode::OK, dump),
        Ok(Err(e @ taskline::TaskDumpError::Unsupported(_))) => {
            (StatusCode::NOT_IMPLEMENTED, format!("{e}\n"))
        }
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the task dump's thread failed: {e}\n"),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// `/heap`: a heap profile (pprof, gzipped protobuf) with feature `heap`,
/// counted in `taskline.profiles.collected`; 501 with the reason otherwise.
async fn heap(taskline: Option<Arc<Taskline>>) -> Response<Full<Bytes>> {
    use taskline::heap::HeapProfileError;
    let result = tokio::task::spawn_blocking(move || match &taskline {
        Some(t) => t.heap_profile(),
        None => taskline::heap::heap_profile(),
    })
    .await;
    let (status, body) = match result {
        Ok(Ok(pprof)) => (StatusCode::OK, Bytes::from(pprof)),
        Ok(Err(e @ HeapProfileError::Unsupported(_))) => {
            (StatusCode::NOT_IMPLEMENTED, format!("{e}\n").into())
        }
        Ok(Err(e @ HeapProfileError::Busy)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n").into())
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n").into()),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the heap profile's thread failed: {e}\n").into(),
        ),
    };
    let ok = status == StatusCode::OK;
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if ok {
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/octet-stream"),
        );
    }
    r
}

/// `/trace?seconds=N`: records the next N seconds (whole or fractional) into
/// a file under `dir` and answers with it, or with why not: 400 for a bad or
/// too long duration, 409 while another trace runs, 429 right after one
/// (both with `Retry-After`), 500 if the file could not be written.
async fn trace(taskline: Arc<Taskline>, query: Option<&str>, dir: &Path) -> Response<Full<Bytes>> {
    use taskline::on_demand::OnDemandError;
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r
    };
    let seconds = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="))
        .unwrap_or("1")
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0);
    let Some(seconds) = seconds else {
        return reply(
            StatusCode::BAD_REQUEST,
            "seconds= takes a number of seconds, e.g. /trace?seconds=5\n".into(),
        );
    };
    let duration = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("trace-{}-{n}.pftrace", std::process::id()));
    // Starting takes a snapshot and waiting blocks: both off the workers.
    let result = tokio::task::spawn_blocking(move || {
        let info = taskline.trace_for(duration, &path)?.wait()?;
        let bytes = std::fs::read(&info.path).map_err(OnDemandError::Io)?;
        Ok::<_, OnDemandError>((info, bytes))
    })
    .await;
    match result {
        Ok(Ok((info, bytes))) => {
            let mut r = reply(StatusCode::OK, Bytes::from(bytes));
            let headers = r.headers_mut();
            headers.insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = hyper::header::HeaderValue::from_str(&format!(
                "attachment; filename=\"{}\"",
                info.path.file_name().unwrap_or_default().to_string_lossy()
            )) {
                headers.insert(hyper::header::CONTENT_DISPOSITION, v);
            }
            if let Some(cut) = info.cut_short {
                eprintln!("on-demand trace {} cut short: {cut:?}", info.path.display());
            }
            r
        }
        Ok(Err(e)) => {
            let status = match e {
                OnDemandError::Busy { .. } => StatusCode::CONFLICT,
                OnDemandError::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
                OnDemandError::TooLong { .. } | OnDemandError::ZeroDuration => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            let mut r = reply(status, format!("{e}{cause}\n").into());
            if let Some(after) = e.retry_after() {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                r.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from(secs),
                );
            }
            r
        }
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the trace's task failed: {e}\n").into(),
        ),
    }
}

/// The longest `/profile` (Go's `/debug/pprof/profile` has no limit; a
/// demo keeps one so a typo cannot hold the profiler for hours).
const MAX_PROFILE_SECONDS: f64 = 60.0;

/// `/profile?seconds=N` (default 30, like Go's): samples every runtime
/// thread's CPU for the next N seconds and answers with the pprof file
/// (gzipped `profile.proto`, samples labelled `spawn_site`, `task`,
/// `worker`, `thread`). 400 for a bad N (not a number, not in (0, 60]),
/// 409 while another profile runs, 500 if it could not be made.
async fn profile(taskline: Arc<Taskline>, query: Option<&str>) -> Response<Full<Bytes>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r
    };
    let seconds = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("seconds="))
        .unwrap_or("30")
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= MAX_PROFILE_SECONDS);
    let Some(seconds) = seconds else {
        return reply(
            StatusCode::BAD_REQUEST,
            format!("seconds= takes a number of seconds in (0, {MAX_PROFILE_SECONDS}], e.g. /profile?seconds=5\n").into(),
        );
    };
    /// One profile at a time: the profiler has one window.
    static RUNNING: AtomicBool = AtomicBool::new(false);
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::Release);
        }
    }
    if RUNNING.swap(true, Ordering::AcqRel) {
        return reply(
            StatusCode::CONFLICT,
            "a CPU profile is running already\n".into(),
        );
    }
    let running = Running;
    // Sleeping and symbolizing block: off the workers.
    let result = tokio::task::spawn_blocking(move || {
        let _running = running;
        let profiler = taskline.cpu_profiler().expect("checked by the caller");
        let _ = profiler.take_profile(); // start a fresh window
        profiler.resume()?;
        std::thread::sleep(Duration::from_secs_f64(seconds));
        if !PROFILE_ALWAYS.load(Ordering::Relaxed) {
            profiler.pause()?;
        }
        let profile = profiler.take_profile();
        let pprof = profile.to_pprof()?;
        // Counted in the OTLP export's taskline.profiles.collected{profile.type=cpu}.
        if let Some(p) = taskline.profiles_collected() {
            p.add(taskline::otel::ProfileType::Cpu);
        }
        Ok::<_, taskline::profile::ProfileError>((pprof, profile.total()))
    })
    .await;
    match result {
        Ok(Ok((bytes, samples))) => {
            eprintln!("CPU profile: {samples} samples over {seconds} s");
            let mut r = reply(StatusCode::OK, Bytes::from(bytes));
            let headers = r.headers_mut();
            headers.insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(
                hyper::header::CONTENT_DISPOSITION,
                hyper::header::HeaderValue::from_static("attachment; filename=\"cpu.pb.gz\""),
            );
            r
        }
        Ok(Err(e)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("CPU profile failed: {e}\n").into(),
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the profile's task failed: {e}\n").into(),
        ),
    }
}
