//! The recording pipeline: every source appends [`Event`](crate::Event)s to
//! its thread's lock-free ring ([`ring`]); the [`Recorder`]'s consumer thread
//! merges the rings by timestamp ([`merge`]) and hands the stream to its
//! [`Sink`]s. Strings, spawn sites and threads are interned once
//! ([`Registry`]); every timestamp comes from one clock ([`clock`]); every
//! bound the pipeline works within is in [`RecorderConfig`].

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod merge;
pub(crate) mod recorder;
pub(crate) mod registry;
pub(crate) mod ring;
pub(crate) mod sink;
pub(crate) mod stats;

pub use clock::{
    epoch as clock_epoch, init as init_clock, instant_to_ns, now_ns, now_ns_if_initialized,
};
pub use config::{ConfigError, RecorderConfig};
pub use recorder::Recorder;
pub use registry::{Registry, Site, ThreadInfo, os_thread_id};
pub use sink::{Sink, SinkId};
pub use stats::RecorderStats;
