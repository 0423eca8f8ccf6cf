//! Helpers shared by the facade's integration tests (`mod common;`).
#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use taskline::{EventKind, Recorder};

/// A fresh directory under Cargo's per-test temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Burns CPU for `wall` in a function of its own (never inlined), so a CPU
/// profile's stacks can be searched for it by name.
#[inline(never)]
pub fn spin_in_known_function(wall: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut x = 1u64;
    while start.elapsed() < wall {
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    std::hint::black_box(x)
}

/// How many events of `kind` a recording holds.
pub fn count(events: &[taskline::Event], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind() == Some(kind)).count()
}

/// Spawns `n` tasks that each wake another (a oneshot hand-over), so the
/// subscriber has wakes to record, and waits for all of them.
pub async fn hand_over(n: usize) {
    let mut handles = Vec::new();
    for i in 0..n {
        let (tx, rx) = tokio::sync::oneshot::channel::<usize>();
        handles.push(tokio::spawn(async move { rx.await.unwrap_or(0) }));
        handles.push(tokio::spawn(async move {
            tokio::task::yield_now().await;
            let _ = tx.send(i);
            0
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
}

/// The recorder's id, for comparing with `taskline::Mixing`.
pub fn id(recorder: &Recorder) -> u64 {
    recorder.id()
}

/// A minimal OTLP/HTTP endpoint on 127.0.0.1: answers every request with
/// an empty 200 (a valid, empty `ExportMetricsServiceResponse`) and keeps
/// the request bodies. Returns the metrics URL and the bodies received.
pub fn otlp_endpoint() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/v1/metrics",
        listener.local_addr().expect("local addr")
    );
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let kept = kept.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                // One connection may carry several requests (keep-alive).
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match stream.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    kept.lock().unwrap_or_else(|e| e.into_inner()).push(body);
                    let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, bodies)
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
