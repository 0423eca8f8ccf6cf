//! `TasklineLayer` alone (no runtime hooks) on real Tokio runtimes: the
//! shared exact-count cases of `wake_source/cases.rs`.
//!
//! Tokio emits its task, waker and resource instrumentation only with
//! `--cfg tokio_unstable` (set in the workspace's `.cargo/config.toml`); the
//! tests that need it are compiled only then.
#![cfg_attr(not(tokio_unstable), allow(unused))]

mod layer_support;

use layer_support::{Captured, fmt_layer};
use taskline_core::Recorder;
use taskline_core::TasklineLayer;
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

#[test]
fn a_global_env_filter_hides_tokio_from_the_layer_and_it_says_so() {
    use tracing_subscriber::filter::EnvFilter;
    let rec = Recorder::with_defaults();
    // The most common set-up: a global EnvFilter at info beside the layer.
    let hidden = Dispatch::new(
        tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(TasklineLayer::new(&rec)),
    );
    let warning = TasklineLayer::hidden_from_it(&hidden).expect("Tokio's TRACE is filtered out");
    assert!(warning.contains(".tracing(registry()"), "{warning}");
    // Letting Tokio's targets through, or filtering only the output, is fine.
    for ok in [
        Dispatch::new(
            tracing_subscriber::registry()
                .with(EnvFilter::new("info,tokio=trace"))
                .with(TasklineLayer::new(&rec)),
        ),
        Dispatch::new(
            tracing_subscriber::registry()
                .with(TasklineLayer::new(&rec))
                .with(tracing_subscriber::fmt::layer().with_filter(EnvFilter::new("info"))),
        ),
    ] {
        assert_eq!(TasklineLayer::hidden_from_it(&ok), None);
    }
    rec.shutdown();
}
