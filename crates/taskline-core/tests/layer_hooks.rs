//! `TasklineLayer` together with the runtime hooks on the same recorder: the
//! shared cases of `wake_source/with_hooks.rs`.
#![cfg(tokio_unstable)]

mod layer_support;

use taskline_core::Recorder;
use taskline_core::TasklineLayer;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// The source under test: the layer on a bare registry.
fn source(rec: &Recorder) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(TasklineLayer::new(rec)))
}

#[path = "wake_source/with_hooks.rs"]
mod with_hooks;
