//! The plain layer of recorder B in the global subscriber, with a runtime
//! instrumented for recorder A (what `taskline::layer()` next to a
//! `Taskline::builder()` recorder used to do silently): flagged.
#![cfg(all(feature = "trace", feature = "otel"))]

mod common;

use taskline::{Mixing, Taskline};
use tracing_subscriber::prelude::*;

#[test]
fn a_layer_of_another_recorder_is_detected() {
    let a = Taskline::builder().start().expect("start A");
    let b = Taskline::builder().start().expect("start B");
    tracing_subscriber::registry().with(b.layer()).init();
    assert_eq!(a.mixing(), None, "A instruments nothing yet");
    // A runtime built with the low-level call, outside the front door:
    // the recorder itself knows its hooks are attached.
    let mut builder = tokio::runtime::Builder::new_current_thread();
    a.instrument(&mut builder);
    let rt = builder.build().expect("runtime");
    let expected = Mixing {
        hooks_recorder: common::id(a.recorder()),
        tracing_recorder: common::id(b.recorder()),
    };
    assert_eq!(a.mixing(), Some(expected));
    assert_eq!(b.mixing(), Some(expected));
    drop(rt);
}

#[test]
fn a_recorder_without_hooks_is_not_flagged() {
    // Whether or not the test above has run: C instruments no runtime, so
    // none of its events can be split from another recorder's.
    let c = Taskline::builder().start().expect("start C");
    assert_eq!(c.mixing(), None);
    assert!(!c.report().contains("WARNING"));
}
