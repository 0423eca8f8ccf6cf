//! taskline's task recorder.
//!
//! Records what a Tokio runtime did (task spawn, poll start/end, wake, idle,
//! blocking sections, termination, worker park/unpark) from sources that
//! feed one [`Recorder`]:
//! - runtime hooks ([`instrument`]), the cheap source of spawns, polls and
//!   terminations;
//! - Tokio's `tracing` instrumentation, for wakes, task names, blocking
//!   sections and resource waits, through either
//!   [`TasklineSubscriber`] (recommended: in
//!   front of your subscriber stack, without the registry's per-span cost) or
//!   the plain [`tracing_subscriber::Layer`] [`TasklineLayer`].
//!
//! Events go into lock-free per-thread rings; a background consumer thread
//! merges them by timestamp and hands them to [`Sink`]s (the built-in
//! [`Aggregator`], trace writers, ...). Memory is bounded by
//! [`RecorderConfig`]; when a consumer falls behind, events are dropped and
//! counted, never blocking the application.
//!
//! ```
//! use taskline_core::{Recorder, RuntimeBuilderExt};
//!
//! let recorder = Recorder::with_defaults();
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(2)
//!     .taskline(&recorder)
//!     .build()
//!     .unwrap();
//! rt.block_on(async { tokio::spawn(async {}).await.unwrap() });
//! drop(rt);
//! let snapshot = recorder.snapshot();
//! # #[cfg(tokio_unstable)]
//! assert_eq!(snapshot.spawned, 1);
//! println!("{snapshot}");
//! ```
//!
//! The crate is laid out by the parts of that pipeline: `source/` (the
//! hooks, the subscriber and the layer), `record/` (rings, consumer, sinks,
//! registry, clock, configuration), `lifecycle/` (the task phase rules
//! every consumer applies: [`TaskLife`], [`TaskTracker`],
//! [`SlowPollThreshold`]) and `aggregate/` (aggregator, snapshot,
//! report). Its modules are private; every public item is re-exported here,
//! at one path. `docs/ARCHITECTURE.md` in the repository pins the contract
//! between the modules.

mod aggregate;
mod cpu_samples;
mod event;
mod id_map;
mod lifecycle;
mod record;
mod source;
#[cfg(test)]
mod test_rng;

pub use aggregate::{
    Aggregator, HISTOGRAM_MAX_NS, HistogramSummary, MAX_SITE_HISTOGRAMS, MAX_WAKER_SITES,
    SITE_BYTES_BOUND, SiteStats, Snapshot, TASK_STATE_BYTES_BOUND, TOP_SITES, TaskStats,
    WorkerStats, fixed_bytes_bound, fmt_ns,
};
pub use aggregate::{
    MAX_OPEN_REGION_FUTURES, MAX_OPEN_SPANS, MAX_REGION_NAMES, MAX_REGION_SITES, RegionLimits,
    RegionSite, RegionStats, RegionTable,
};
pub use cpu_samples::{CodeFrame, CodeMapping, CpuSample, CpuSamples};
pub use event::{
    BlockingKind, DecodedEvent, Event, EventKind, NO_VALUE, NO_WORKER, SpanMark, TaskKind, WakeOp,
    flags,
};
pub use id_map::{IdHasher, IdMap};
pub use lifecycle::{
    IdleByReason, NameLookup, PollEnded, PollStarted, SectionEnd, SlowPollThreshold, TaskLife,
    TaskPhase, TaskTracker, ThreadRoles, Transition, TurnMark, WakeCause, WakeReason, Woken,
    is_timer_resource,
};
pub use record::{
    ConfigError, Recorder, RecorderConfig, RecorderStats, Registry, Sink, SinkId, Site, ThreadInfo,
    clock_epoch, init_clock, instant_to_ns, now_ns, now_ns_if_initialized, os_thread_id,
};
#[doc(hidden)]
pub use source::set_current_task;
pub use source::{
    Capabilities, Instrumented, RegionFuture, RuntimeBuilderExt, STABLE_WARNING, SubscriberError,
    TaskSpan, TasklineLayer, TasklineSubscriber, after_global_install, block_in_place,
    capabilities, instrument, task_id_u64,
};
pub use source::{SampleState, SampledSite, sample_state};
