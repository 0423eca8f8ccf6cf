//! The Go execution-tracer tutorial's I/O story, on Tokio, told by taskline:
//! HTTP requests one after the other against all at once.
//!
//! ```text
//! cargo run --release --example io                             # 50 requests of 20 ms, every variant
//! cargo run --release --example io -- --requests 200 --delay-ms 10
//! cargo run --release --example io -- --variants serial,concurrent --out /tmp/io
//! ```
//!
//! The example starts its own tiny HTTP/1.1 server (hyper) on 127.0.0.1 with
//! one endpoint, `/delay?ms=N`, that answers after sleeping N ms
//! (`tokio::time::sleep`), and a client (HTTP/1.1 by hand over
//! `tokio::net::TcpStream`, one connection per request) that sends the
//! requests
//!
//! - `serial`: one after the other, from one task;
//! - `concurrent`: all at once, one task per request;
//! - `bounded`: one task per request, at most `--concurrency` in flight
//!   (a semaphore).
//!
//! Each variant runs in a child process of its own under taskline (runtime
//! hooks, taskline's `tracing` subscriber with resource waits, so a timer
//! wake is told from an I/O wake) and writes a Perfetto trace to
//! `out/io-<variant>.perfetto-trace`. Server and client share the runtime;
//! their tasks are named (`client`, `request`; `accept`, `connection`), so
//! each spawn site is one row of the table. The parent prints, per variant,
//! every site's busy time and idle time split by why it ended
//! ([`WakeReason`]: `io` when the I/O driver woke it, `timer`, `sync` when
//! another task did, ...), then sentences derived from those numbers.
//!
//! What to expect: the client's wait for a response is I/O readiness on its
//! socket (reason `io`) even though the server merely sleeps: the server's
//! handler is woken by the timer, writes the response, and the client's
//! socket becomes readable.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use taskline::{IdleByReason, Recorder, Snapshot, Taskline, WakeReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const USAGE: &str = "usage: io [--requests N] [--delay-ms N] [--concurrency N] [--workers N] [--out DIR] [--variants a,b,..] [--no-trace]

  --requests N     HTTP requests per variant (default 50)
  --delay-ms N     the server answers each request after N ms (default 20)
  --concurrency N  requests in flight at most in the bounded variant (default 8)
  --workers N      Tokio worker threads (default 2)
  --out DIR        where the Perfetto traces go (default: out)
  --variants LIST  comma-separated subset of: serial, concurrent, bounded (default: all)
  --no-trace       do not write Perfetto traces";

/// How the client sends its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Serial,
    Concurrent,
    Bounded,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Serial, Variant::Concurrent, Variant::Bounded];

    fn name(self) -> &'static str {
        match self {
            Variant::Serial => "serial",
            Variant::Concurrent => "concurrent",
            Variant::Bounded => "bounded",
        }
    }

    fn description(self, o: &Options) -> String {
        match self {
            Variant::Serial => "one after the other, from one task".into(),
            Variant::Concurrent => "all at once, one task per request".into(),
            Variant::Bounded => {
                format!("one task per request, at most {} in flight", o.concurrency)
            }
        }
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown variant {s:?} (serial, concurrent, bounded)"))
    }
}

/// Which side of the connection a task is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// The example's task names (each spawned at one site), and their side.
const TASKS: [(&str, Side); 4] = [
    ("client", Side::Client),
    ("request", Side::Client),
    ("accept", Side::Server),
    ("connection", Side::Server),
];

/// The last row of each table: every task of the run.
const ALL_TASKS: &str = "all";

fn side_of(name: &str) -> Option<Side> {
    TASKS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Command-line options shared by parent and child.
#[derive(Clone, Debug)]
struct Options {
    requests: u32,
    delay_ms: u64,
    concurrency: usize,
    workers: usize,
    out: PathBuf,
    variants: Vec<Variant>,
    trace: bool,
}

fn parse(args: &[String]) -> Result<(Options, Option<Variant>), String> {
    let mut o = Options {
        requests: 50,
        delay_ms: 20,
        concurrency: 8,
        workers: 2,
        out: PathBuf::from("out"),
        variants: Variant::ALL.to_vec(),
        trace: true,
    };
    let mut child = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        let number = |v: String, name: &str, max: u64| -> Result<u64, String> {
            let n: u64 = v
                .parse()
                .map_err(|_| format!("{name} takes a whole number"))?;
            if n > max {
                return Err(format!("{name} is at most {max}"));
            }
            Ok(n)
        };
        match a.as_str() {
            "--requests" => {
                o.requests = number(value(a)?, a, 10_000)?.max(1) as u32;
            }
            "--delay-ms" => o.delay_ms = number(value(a)?, a, 10_000)?,
            "--concurrency" => o.concurrency = number(value(a)?, a, 10_000)?.max(1) as usize,
            "--workers" => o.workers = number(value(a)?, a, 256)?.max(1) as usize,
            "--out" => o.out = PathBuf::from(value(a)?),
            "--variants" => {
                o.variants = value(a)?
                    .split(',')
                    .map(|s| s.trim().parse::<Variant>())
                    .collect::<Result<_, _>>()?;
            }
            "--no-trace" => o.trace = false,
            "--child" => child = Some(value(a)?.parse::<Variant>()?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n\n{USAGE}")),
        }
    }
    Ok((o, child))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (options, child) = match parse(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match child {
        Some(variant) => run_child(&options, variant),
        None => run_parent(&options, &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("io: {e}");
            ExitCode::FAILURE
        }
    }
}

// --------------------------------------------------------------- server ----

/// Accepts `connections` connections (the client makes one per request,
/// so the accept loop's last wait is for the last request's connection, not
/// for the runtime's shutdown); one `connection` task each.
async fn serve(listener: TcpListener, connections: u32, recorder: Recorder) {
    for _ in 0..connections {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("io: accept failed: {e}");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = async move {
            let service = service_fn(handle);
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("io: connection failed: {e}");
            }
        };
        if let Err(e) = spawn(&recorder, "connection", connection) {
            eprintln!("io: {e}");
            return;
        }
    }
}

/// `/delay?ms=N`: answers after sleeping N ms; anything else is a 404.
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let ms = (req.uri().path() == "/delay")
        .then(|| req.uri().query())
        .flatten()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("ms=")))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&ms| ms <= 60_000);
    let response = match ms {
        Some(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(Full::new(Bytes::from(format!("slept {ms} ms\n"))))
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"try /delay?ms=N\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(response)
}

// --------------------------------------------------------------- client ----

/// Spawns a task named `name` at the caller's site: through Tokio's task
/// builder where the runtime hooks and Tokio's task spans record it (site
/// and name), through taskline's wrapper on stable Tokio.
#[track_caller]
fn spawn<F>(recorder: &Recorder, name: &str, future: F) -> Result<JoinHandle<F::Output>, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[cfg(tokio_unstable)]
    if taskline::capabilities().task_events {
        return tokio::task::Builder::new()
            .name(name)
            .spawn(future)
            .map_err(|e| format!("spawn {name}: {e}"));
    }
    Ok(recorder.spawn_named(name, future))
}

/// One `GET /delay?ms=N` on a connection of its own; the answer must be a 200.
async fn get(addr: SocketAddr, delay_ms: u64) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request =
        format!("GET /delay?ms={delay_ms} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::with_capacity(256);
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| format!("receive: {e}"))?;
    if response.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        let head = String::from_utf8_lossy(&response[..response.len().min(40)]).into_owned();
        Err(format!("unexpected answer {head:?}"))
    }
}

/// Sends the requests as `variant` says; returns how many succeeded.
async fn run_client(
    variant: Variant,
    addr: SocketAddr,
    o: Options,
    recorder: Recorder,
) -> Result<u32, String> {
    let mut ok = 0;
    match variant {
        Variant::Serial => {
            for _ in 0..o.requests {
                get(addr, o.delay_ms).await?;
                ok += 1;
            }
        }
        Variant::Concurrent | Variant::Bounded => {
            let limit = if variant == Variant::Bounded {
                o.concurrency
            } else {
                o.requests as usize
            };
            let permits = Arc::new(tokio::sync::Semaphore::new(limit));
            let tasks = (0..o.requests)
                .map(|_| {
                    let permits = Arc::clone(&permits);
                    spawn(&recorder, "request", async move {
                        let _permit = permits.acquire().await.map_err(|e| e.to_string())?;
                        get(addr, o.delay_ms).await
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            for t in tasks {
                t.await.map_err(|e| format!("request task: {e}"))??;
                ok += 1;
            }
        }
    }
    Ok(ok)
}

// ---------------------------------------------------------------- child ----

/// What one site measured in one variant.
#[derive(Clone, Debug, Default)]
struct SiteRow {
    name: String,
    spawned: u64,
    polls: u64,
    busy_ns: u64,
    idle: IdleByReason,
}

/// What one child run measured, sent to the parent as `key=value` lines.
#[derive(Clone, Debug, Default)]
struct Row {
    variant: String,
    wall_ns: u64,
    requests: u64,
    ok: u64,
    dropped: u64,
    trace_bytes: u64,
    trace_events: u64,
    sites: Vec<SiteRow>,
}

impl Row {
    fn encode(&self) -> String {
        let mut lines = vec![format!(
            "TASKLINE_IO variant={} wall_ns={} requests={} ok={} dropped={} trace_bytes={} trace_events={}",
            self.variant,
            self.wall_ns,
            self.requests,
            self.ok,
            self.dropped,
            self.trace_bytes,
            self.trace_events
        )];
        for s in &self.sites {
            let mut line = format!(
                "TASKLINE_IO_SITE name={} spawned={} polls={} busy_ns={}",
                s.name, s.spawned, s.polls, s.busy_ns
            );
            for r in WakeReason::ALL {
                line.push_str(&format!(" {r}_ns={}", s.idle.ns(r)));
            }
            lines.push(line);
        }
        lines.join("\n")
    }

    fn decode(text: &str) -> Option<Row> {
        let mut row = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("TASKLINE_IO ") {
                let kv = pairs(rest);
                let n = |k: &str| kv.get(k).and_then(|v| v.parse().ok());
                row = Some(Row {
                    variant: kv.get("variant")?.to_string(),
                    wall_ns: n("wall_ns")?,
                    requests: n("requests")?,
                    ok: n("ok")?,
                    dropped: n("dropped")?,
                    trace_bytes: n("trace_bytes")?,
                    trace_events: n("trace_events")?,
                    sites: Vec::new(),
                });
            } else if let Some(rest) = line.strip_prefix("TASKLINE_IO_SITE ") {
                let kv = pairs(rest);
                let n = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
                let mut idle = IdleByReason::default();
                for r in WakeReason::ALL {
                    // The parent reads the times only (one period each).
                    let ns = n(&format!("{r}_ns"))?;
                    if ns > 0 {
                        idle.add(r, ns);
                    }
                }
                row.as_mut()?.sites.push(SiteRow {
                    name: kv.get("name")?.to_string(),
                    spawned: n("spawned")?,
                    polls: n("polls")?,
                    busy_ns: n("busy_ns")?,
                    idle,
                });
            }
        }
        row
    }
}

fn pairs(line: &str) -> BTreeMap<&str, &str> {
    line.split(' ').filter_map(|p| p.split_once('=')).collect()
}

fn trace_path(out: &Path, variant: Variant) -> PathBuf {
    out.join(format!("io-{}.perfetto-trace", variant.name()))
}

fn run_child(o: &Options, variant: Variant) -> Result<(), String> {
    // Hooks for polls and spawns; taskline's subscriber for wakes, task
    // names and resource waits (a `Sleep` is a resource: with it a timer
    // wake is told from an I/O wake).
    let mut setup = Taskline::builder()
        .tracing(tracing_subscriber::registry())
        .resource_waits(true);
    if o.trace {
        setup = setup.trace_file(trace_path(&o.out, variant));
    }
    let taskline = setup.start().map_err(|e| chain(&e))?;
    let recorder = taskline.recorder().clone();
    let runtime = taskline
        .build_runtime(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(o.workers)
                .enable_all(),
            "io",
        )
        .map_err(|e| chain(&e))?;

    let (ok, wall) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        spawn(
            &recorder,
            "accept",
            serve(listener, o.requests, recorder.clone()),
        )?;
        let started = Instant::now();
        let client = spawn(
            &recorder,
            "client",
            run_client(variant, addr, o.clone(), recorder.clone()),
        )?;
        let ok = client.await.map_err(|e| format!("client task: {e}"))??;
        let wall = started.elapsed();
        Ok::<_, String>((ok, wall))
    })?;
    drop(runtime);
    let snapshot = recorder.snapshot();
    let row = Row {
        variant: variant.name().to_string(),
        wall_ns: wall.as_nanos() as u64,
        requests: u64::from(o.requests),
        ok: u64::from(ok),
        dropped: recorder.stats().dropped,
        trace_bytes: 0,
        trace_events: 0,
        sites: site_rows(&snapshot),
    };
    let trace = taskline.trace_file().cloned();
    taskline.shutdown().map_err(|e| chain(&e))?;
    let (trace_bytes, trace_events) =
        trace.map_or((0, 0), |h| (h.bytes_written(), h.events_written()));
    println!(
        "{}",
        Row {
            trace_bytes,
            trace_events,
            ..row
        }
        .encode()
    );
    Ok(())
}

/// The example's sites (by task name) in [`TASKS`] order, with their idle
/// time by reason, then every task of the run ([`ALL_TASKS`]: the
/// snapshot's totals, the runtime's own and `block_on` included).
fn site_rows(s: &Snapshot) -> Vec<SiteRow> {
    let mut rows: Vec<SiteRow> = Vec::new();
    for (name, _) in TASKS {
        for site in s.sites.iter().filter(|site| site.name == name) {
            let row = match rows.iter_mut().find(|r| r.name == name) {
                Some(r) => r,
                None => {
                    rows.push(SiteRow {
                        name: name.to_string(),
                        ..SiteRow::default()
                    });
                    rows.last_mut().expect("just pushed")
                }
            };
            row.spawned += site.spawned;
            row.polls += site.polls;
            row.busy_ns += site.busy_ns;
            row.idle.merge(&site.idle_by_reason);
        }
    }
    rows.push(SiteRow {
        name: ALL_TASKS.to_string(),
        spawned: s.spawned,
        polls: s.polls,
        busy_ns: s.busy_ns,
        idle: s.idle_by_reason,
    });
    rows
}

/// An error and its causes, one after the other.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

// --------------------------------------------------------------- parent ----

fn run_parent(o: &Options, args: &[String]) -> Result<(), String> {
    std::fs::create_dir_all(&o.out)
        .map_err(|e| format!("cannot create {}: {e}", o.out.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    eprintln!(
        "{} HTTP requests to a local server that answers after {} ms, {} workers, {} variants, each in its own process under taskline",
        o.requests,
        o.delay_ms,
        o.workers,
        o.variants.len()
    );
    let mut rows = Vec::new();
    for (n, variant) in o.variants.iter().enumerate() {
        eprint!(
            "[{}/{}] {:<10} {} ... ",
            n + 1,
            o.variants.len(),
            variant.name(),
            variant.description(o)
        );
        let _ = std::io::stderr().flush();
        let row = run_variant(&exe, args, *variant)?;
        eprintln!("{:.2}s", row.wall_ns as f64 / 1e9);
        rows.push(row);
    }
    print_tables(o, &rows);
    Ok(())
}

fn run_variant(exe: &Path, args: &[String], variant: Variant) -> Result<Row, String> {
    let output = Command::new(exe)
        .args(args)
        .args(["--child", variant.name()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start child: {e}"))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", variant.name(), output.status));
    }
    Row::decode(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| format!("{}: child printed no result", variant.name()))
}

fn ms(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1e6)
}

/// A duration for a sentence: `1.05 s`, `35.2 ms`.
fn time(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// Idle time not ended by the driver (io, timer) or another task (sync).
fn other_ns(idle: &IdleByReason) -> u64 {
    idle.total_ns()
        .saturating_sub(idle.ns(WakeReason::Io))
        .saturating_sub(idle.ns(WakeReason::Timer))
        .saturating_sub(idle.ns(WakeReason::Sync))
}

/// The largest reason and its share of the idle time, e.g. `io 97%`.
fn largest(idle: &IdleByReason) -> String {
    match idle.largest() {
        Some(r) => format!(
            "{r} {:.0}%",
            100.0 * idle.ns(r) as f64 / idle.total_ns().max(1) as f64
        ),
        None => "-".into(),
    }
}

/// The client side's (or server side's) sites of a row, summed.
fn side_total(r: &Row, side: Side) -> SiteRow {
    let mut t = SiteRow::default();
    for s in r.sites.iter().filter(|s| side_of(&s.name) == Some(side)) {
        t.spawned += s.spawned;
        t.polls += s.polls;
        t.busy_ns += s.busy_ns;
        t.idle.merge(&s.idle);
    }
    t
}

fn print_tables(o: &Options, rows: &[Row]) {
    for r in rows {
        let description = r
            .variant
            .parse::<Variant>()
            .map(|v| v.description(o))
            .unwrap_or_default();
        println!();
        println!(
            "variant {}: {} ms wall, {} requests of {} ms, {} answered ({description})",
            r.variant,
            ms(r.wall_ns),
            r.requests,
            o.delay_ms,
            r.ok
        );
        println!();
        println!(
            "| tasks | side | spawned | polls | busy ms | idle ms | io ms | timer ms | sync ms | other ms | largest wait |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for s in &r.sites {
            let side = match side_of(&s.name) {
                Some(Side::Client) => "client",
                Some(Side::Server) => "server",
                None => "both",
            };
            println!(
                "| {} | {side} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.name,
                s.spawned,
                s.polls,
                ms(s.busy_ns),
                ms(s.idle.total_ns()),
                ms(s.idle.ns(WakeReason::Io)),
                ms(s.idle.ns(WakeReason::Timer)),
                ms(s.idle.ns(WakeReason::Sync)),
                ms(other_ns(&s.idle)),
                largest(&s.idle),
            );
        }
    }
    println!();
    println!(
        "idle = poll end -> wake, split by who woke the task: io = the I/O driver (socket readiness), timer = the runtime's timer (a Sleep), sync = another task (a semaphore permit, a finished JoinHandle), other = yield, blocking, foreign thread or no wake seen."
    );
    println!();
    println!("What the numbers say:");
    for r in rows {
        println!("  {:<10} {}", r.variant, verdict(r, rows));
    }
    if let Some(line) = server_verdict(rows) {
        println!("  {:<10} {line}", "server");
    }
    if o.trace {
        println!();
        println!(
            "Perfetto traces (open in https://ui.perfetto.dev, or `cargo run -p taskline-cli -- report FILE`):"
        );
        for r in rows {
            if let Ok(v) = r.variant.parse::<Variant>() {
                println!(
                    "  {}  ({:.1} KiB, {} events, {:.1} bytes/event, {} dropped)",
                    trace_path(&o.out, v).display(),
                    r.trace_bytes as f64 / 1024.0,
                    r.trace_events,
                    r.trace_bytes as f64 / r.trace_events.max(1) as f64,
                    r.dropped
                );
            }
        }
    }
}

/// One sentence per variant, derived from its numbers (and the other
/// variants' wall times), never from its name.
fn verdict(r: &Row, rows: &[Row]) -> String {
    let client = side_total(r, Side::Client);
    let io = client.idle.ns(WakeReason::Io);
    let sync = client.idle.ns(WakeReason::Sync);
    let client_time = client.busy_ns + client.idle.total_ns();
    // Network waits in flight at once, on average over the wall time.
    let overlap = io as f64 / r.wall_ns.max(1) as f64;
    let mut line = format!("{} for {} requests", time(r.wall_ns), r.requests);
    if r.ok < r.requests {
        line.push_str(&format!(" ({} answered)", r.ok));
    }
    if overlap < 1.5 {
        match client.idle.largest() {
            Some(WakeReason::Io) => line.push_str(&format!(
                ", {:.0}% of the client's time is network wait (idle, woken by the I/O driver): one wait at a time",
                100.0 * io as f64 / client_time.max(1) as f64
            )),
            Some(reason) => line.push_str(&format!(
                ", the client mostly waited for reason {reason} ({:.0}% of its time)",
                100.0 * client.idle.ns(reason) as f64 / client_time.max(1) as f64
            )),
            None => line.push_str(", the client never waited"),
        }
    } else {
        line.push_str(&format!(
            ", the {} waits overlap: the sum of network wait is {} over {} of wall time ({overlap:.1} at once on average)",
            r.requests,
            time(io),
            time(r.wall_ns)
        ));
    }
    if sync.saturating_mul(5) > io {
        line.push_str(&format!(
            "; the client's tasks also waited {} for each other (woken by another task)",
            time(sync)
        ));
    }
    let best = rows.iter().map(|x| x.wall_ns).min().unwrap_or(r.wall_ns);
    let slower = r.wall_ns as f64 / best.max(1) as f64;
    if slower > 1.05 {
        line.push_str(&format!(" ({slower:.1}x the fastest variant's wall time)"));
    } else {
        line.push_str(" (fastest)");
    }
    line
}

/// What the server's handlers waited on, over every variant.
fn server_verdict(rows: &[Row]) -> Option<String> {
    let mut handlers = IdleByReason::default();
    let mut client = IdleByReason::default();
    for r in rows {
        for s in r.sites.iter().filter(|s| s.name == "connection") {
            handlers.merge(&s.idle);
        }
        client.merge(&side_total(r, Side::Client).idle);
    }
    let reason = handlers.largest()?;
    let share = |idle: &IdleByReason, r: WakeReason| {
        100.0 * idle.ns(r) as f64 / idle.total_ns().max(1) as f64
    };
    let mut line = format!(
        "the connection tasks waited {}, {:.0}% of it for reason {reason}",
        time(handlers.total_ns()),
        share(&handlers, reason)
    );
    if reason == WakeReason::Timer && client.largest() == Some(WakeReason::Io) {
        line.push_str(&format!(
            " (their sleep), while the client saw the same time as I/O readiness on its sockets ({:.0}% of its waits are io)",
            share(&client, WakeReason::Io)
        ));
    }
    Some(line)
}
