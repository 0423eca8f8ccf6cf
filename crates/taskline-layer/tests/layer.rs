//! `TasklineLayer` alone (no runtime hooks) on real Tokio runtimes: the
//! shared exact-count cases of `wake_source/cases.rs`.
//!
//! Tokio emits its task, waker and resource instrumentation only with
//! `--cfg tokio_unstable` (set in the workspace's `.cargo/config.toml`); the
//! tests that need it are compiled only then.
#![cfg_attr(not(tokio_unstable), allow(unused))]

mod layer_support;

use layer_support::{Captured, fmt_layer};
use taskline_layer::layer::TasklineLayer;
use taskline_layer::recorder::Recorder;
use tracing::Dispatch;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// The source under test: the layer on a bare registry.
fn source(rec: &Recorder) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(rec)))
}

/// The layer beside a `fmt` layer writing to `out`, filtered by `targets`.
#[cfg_attr(not(tokio_unstable), allow(dead_code))]
fn source_with_fmt(rec: &Recorder, out: Captured, targets: Targets) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(TasklineLayer::new(rec))
            .with(fmt_layer(out, targets)),
    )
}

#[path = "wake_source/cases.rs"]
mod cases;
