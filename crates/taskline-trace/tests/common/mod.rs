//! Shared helpers for the trace tests: a seeded PRNG and synthetic recordings.
#![allow(dead_code)]

use std::sync::Arc;

use taskline_core::{Event, EventKind, NO_VALUE, NO_WORKER, TaskKind};
use taskline_core::{Registry, Site, ThreadInfo};

/// xorshift64*: small, seeded, good enough to shuffle test inputs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Mostly small values, sometimes the edge values that need special encodings.
    pub fn interesting_u64(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => u64::MAX,
            2 => self.next(),
            3 => 1 << self.below(64),
            _ => self.below(1000),
        }
    }
    pub fn interesting_u32(&mut self, ids: u32) -> u32 {
        match self.below(6) {
            0 => 0,
            1 => u32::MAX,
            2 => self.next() as u32,
            _ => self.below(u64::from(ids.max(1))) as u32,
        }
    }
}

/// A registry with a few strings, sites (some with awkward file names) and threads.
pub fn registry() -> Registry {
    let strings: Vec<Arc<str>> = [
        "render",
        "Semaphore",
        "Mutex",
        "span α",
        "",
        "with:colon (x)",
    ]
    .iter()
    .map(|s| Arc::from(*s))
    .collect();
    let sites = vec![
        Site {
            file: Arc::from("src/main.rs"),
            line: 10,
            col: 5,
            kind: TaskKind::Task,
        },
        Site {
            file: Arc::from("C:\\a:b (c).rs"),
            line: 0,
            col: 0,
            kind: TaskKind::Blocking,
        },
        Site {
            file: Arc::from("lib.rs"),
            line: u32::MAX,
            col: 7,
            kind: TaskKind::Local,
        },
        Site {
            file: Arc::from(""),
            line: 1,
            col: 1,
            kind: TaskKind::BlockOn,
        },
    ];
    let threads = vec![
        ThreadInfo {
            id: 0,
            name: Arc::from("main"),
            worker: None,
            tid: None,
        },
        ThreadInfo {
            id: 1,
            name: Arc::from("tokio-runtime-worker"),
            worker: Some(0),
            tid: Some(4242),
        },
        ThreadInfo {
            id: 2,
            name: Arc::from("tokio-runtime-worker"),
            worker: Some(1),
            tid: Some(4243),
        },
        ThreadInfo {
            id: 3,
            name: Arc::from("tokio-runtime-worker"),
            worker: None,
            tid: None,
        },
        ThreadInfo {
            id: 4,
            name: Arc::from("weird"),
            worker: Some(u32::MAX),
            tid: Some(u32::MAX),
        },
    ];
    Registry::from_parts(strings, sites, threads)
}

/// `n` random events of every kind with nondecreasing timestamps, on the registry's threads.
pub fn events(rng: &mut Rng, n: usize, threads: u16) -> Vec<Event> {
    let mut ts = rng.below(1 << 40);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        ts += rng.below(3) * rng.below(100_000);
        let kind = EventKind::ALL[i % EventKind::ALL.len()];
        let mut e = Event::new(kind, ts, 0);
        e.thread = rng.below(u64::from(threads)) as u16;
        e.task = if rng.below(4) == 0 {
            0
        } else {
            1 + rng.below(50)
        };
        e.arg = match kind {
            EventKind::PollStart if rng.below(2) == 0 => NO_VALUE,
            EventKind::Wake if rng.below(3) > 0 => 1 + rng.below(50),
            _ => rng.interesting_u64(),
        };
        e.aux = match kind {
            EventKind::PollStart | EventKind::PollEnd | EventKind::Park | EventKind::Unpark
                if rng.below(2) == 0 =>
            {
                if rng.below(2) == 0 {
                    NO_WORKER
                } else {
                    rng.below(3) as u32
                }
            }
            _ => rng.interesting_u32(6),
        };
        e.flags = match rng.below(3) {
            0 => 0,
            1 => rng.below(4) as u8,
            _ => rng.next() as u8,
        };
        out.push(e);
    }
    out
}
