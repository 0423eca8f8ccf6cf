//! Instrument a `tokio::runtime::Builder` so its runtime records into a
//! [`Recorder`]: the cheap event source.
//!
//! With `--cfg tokio_unstable`: task spawn, poll start/end and termination,
//! plus worker park/unpark; `PollStart` carries Tokio's schedule latency only
//! when [`RecorderConfig::track_schedule_latency`] is set (it makes Tokio read
//! the clock on every schedule). Without `tokio_unstable`: park/unpark only,
//! and one line on stderr says so.
//!
//! [`RecorderConfig::track_schedule_latency`]: crate::record::config::RecorderConfig::track_schedule_latency
//!
//! Tokio keeps **one** callback per hook: [`instrument`] replaces any
//! `on_task_spawn`, `on_before_task_poll`, `on_after_task_poll`,
//! `on_task_terminate`, `on_thread_park` and `on_thread_unpark` set earlier,
//! and hooks set after it replace taskline's. Tokio runs the terminate
//! callback inside a task's last poll; the hooks fold that termination into
//! the poll's `PollEnd` (one event less per task), and the recorder delivers
//! it as a `Terminate` at the `PollEnd`'s timestamp followed by the
//! `PollEnd`. `spawn_blocking` tasks fire
//! terminate but not spawn; consumers treat a `Terminate` of an unknown task
//! as a no-op.

#[cfg(not(tokio_unstable))]
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::runtime::Builder;

use crate::event::{Event, EventKind};
use crate::record::clock;
use crate::record::recorder::Recorder;
use crate::source::context::worker;

/// What the runtime hooks can record in this build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Task spawn, poll start/end and termination (needs `--cfg tokio_unstable`).
    pub task_events: bool,
    /// Tokio's per-poll schedule latency in `PollStart` can be recorded (needs
    /// `tokio_unstable`). It is recorded only when the recorder's
    /// `RecorderConfig::track_schedule_latency` is set (off by default: Tokio
    /// then reads the clock on every schedule).
    pub schedule_latency: bool,
    /// Worker park/unpark (always).
    pub park_unpark: bool,
}

/// What [`instrument`] records in this build.
pub fn capabilities() -> Capabilities {
    Capabilities {
        task_events: cfg!(tokio_unstable),
        schedule_latency: cfg!(tokio_unstable),
        park_unpark: true,
    }
}

/// The line printed once per process when task events are unavailable.
pub const STABLE_WARNING: &str = "taskline: built without --cfg tokio_unstable: the runtime hooks record worker park/unpark only; spawn tasks through taskline::spawn / Recorder::spawn to record them (README: Stable Tokio)";

#[cfg(not(tokio_unstable))]
static WARNED: AtomicBool = AtomicBool::new(false);

/// Installs taskline's runtime hooks on `builder`, recording into `recorder`.
/// Replaces earlier callbacks for the same hooks (Tokio keeps one per hook).
pub fn instrument<'a>(builder: &'a mut Builder, recorder: &Recorder) -> &'a mut Builder {
    let r = recorder.clone();
    builder.on_thread_park(move || {
        let mut e = Event::new(EventKind::Park, clock::now_ns(), 0);
        e.aux = worker();
        r.record(e);
    });
    let r = recorder.clone();
    builder.on_thread_unpark(move || {
        let mut e = Event::new(EventKind::Unpark, clock::now_ns(), 0);
        e.aux = worker();
        r.record(e);
    });
    #[cfg(tokio_unstable)]
    {
        unstable::install(builder, recorder);
        recorder.set_hooks_attached();
    }
    #[cfg(not(tokio_unstable))]
    {
        if !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("{STABLE_WARNING}");
        }
    }
    builder
}

/// `builder.taskline(&recorder)`: [`instrument`] as a builder method.
pub trait RuntimeBuilderExt {
    /// Installs taskline's runtime hooks recording into `recorder`; see [`instrument`].
    fn taskline(&mut self, recorder: &Recorder) -> &mut Self;
}

impl RuntimeBuilderExt for Builder {
    fn taskline(&mut self, recorder: &Recorder) -> &mut Self {
        instrument(self, recorder)
    }
}

#[cfg(tokio_unstable)]
mod unstable {
    use tokio::runtime::{Builder, TaskMeta};

    use crate::event::{Event, EventKind, NO_VALUE, TaskKind, flags};
    use crate::record::clock;
    use crate::record::recorder::Recorder;
    use crate::source::context::{self, worker};
    use crate::source::intern_cache::site_of_location;
    use crate::source::task_id::task_id_u64;

    pub(super) fn install(builder: &mut Builder, recorder: &Recorder) {
        // Tokio reads the clock on every schedule when this is on: opt-in.
        if recorder.config().track_schedule_latency {
            builder.track_task_schedule_latency();
        }
        let r = recorder.clone();
        builder.on_task_spawn(move |meta: &TaskMeta<'_>| {
            let mut e = Event::new(EventKind::Spawn, clock::now_ns(), task_id_u64(meta.id()));
            e.aux = site_of_location(r.id(), r.registry(), meta.spawned_at());
            e.flags = TaskKind::Task as u8;
            r.record(e);
        });
        let r = recorder.clone();
        builder.on_before_task_poll(move |meta: &TaskMeta<'_>| {
            let task = task_id_u64(meta.id());
            let mut e = Event::new(EventKind::PollStart, clock::now_ns(), task);
            e.arg = meta
                .schedule_latency()
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1))
                .unwrap_or(NO_VALUE);
            e.aux = worker();
            context::enter_poll(task, meta.spawned_at(), e.aux);
            r.record(e);
        });
        let r = recorder.clone();
        builder.on_after_task_poll(move |meta: &TaskMeta<'_>| {
            let mut e = Event::new(EventKind::PollEnd, clock::now_ns(), task_id_u64(meta.id()));
            e.aux = worker();
            if context::take_terminated() {
                e.flags = flags::TERMINATED;
            }
            r.record(e);
            context::exit_poll();
        });
        let r = recorder.clone();
        builder.on_task_terminate(move |meta: &TaskMeta<'_>| {
            let task = task_id_u64(meta.id());
            // Inside the task's last poll (the usual case): one event less,
            // the `PollEnd` carries the termination.
            if !context::terminate_in_poll(task) {
                r.record(Event::new(EventKind::Terminate, clock::now_ns(), task));
            }
        });
    }
}
