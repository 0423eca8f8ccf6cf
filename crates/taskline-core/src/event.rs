//! The fixed-size record every source (runtime hooks, the tracing layer, the
//! runtime sampler) appends to its thread's buffer, and every consumer
//! (aggregation, trace writer, flight recorder) reads.
//!
//! An [`Event`] is 32 bytes, `Copy`, and holds no pointers: strings (spawn
//! sites, task names, resource names, span names) are interned once in the
//! recorder's [`Registry`](crate::record::registry::Registry) and referred to by id.
//!
//! Field meaning per [`EventKind`]:
//!
//! | kind | `task` | `arg` | `aux` | `flags` |
//! |---|---|---|---|---|
//! | `Spawn` | task id | size of the future in bytes (0 = unknown) | site id | [`TaskKind`] as u8, plus [`flags::FROM_LAYER`] |
//! | `TaskName` | task id | 0 | string id of the name | [`flags::FROM_LAYER`] |
//! | `PollStart` | task id | schedule latency in ns reported by Tokio (hooks with `track_schedule_latency`), or [`NO_VALUE`] | worker index or [`NO_WORKER`] | [`flags::FROM_LAYER`] |
//! | `PollEnd` | task id | 0 | worker index or [`NO_WORKER`] | [`flags::FROM_LAYER`]; in a thread ring only, [`flags::TERMINATED`] (never delivered) |
//! | `Wake` | woken task id | waking task id, 0 when woken from outside a task | 0 | [`WakeOp`] as u8, plus [`flags::SELF_WAKE`] |
//! | `ResourceWait` | task id | resource instance id (0 = unknown) | string id of the resource kind (e.g. `Semaphore`) | 0 |
//! | `BlockingStart` | task id of the `spawn_blocking` task, 0 for `block_in_place` | 0 | worker index or [`NO_WORKER`] | [`BlockingKind`] as u8 |
//! | `BlockingEnd` | same as `BlockingStart` | 0 | worker index or [`NO_WORKER`] | [`BlockingKind`] as u8 |
//! | `Terminate` | task id | 0 | 0 | [`flags::FROM_LAYER`] |
//! | `Park` / `Unpark` | 0 | 0 | worker index or [`NO_WORKER`] | 0 |
//! | `SpanEnter` / `SpanExit` | 0 | tracing span id | string id of the span name | 0 |
//! | `Counter` | 0 | value | 0 | [`CounterKind`] as u8 |
//!
//! `thread` is the recorder's own small number for the OS thread that wrote
//! the event (see [`Registry::thread`](crate::record::registry::Registry::thread));
//! `ts_ns` is nanoseconds since the recorder's clock epoch (one monotonic
//! clock for every thread, see [`clock`](crate::record::clock)).

/// Marker for "no value" in [`Event::arg`] (e.g. no schedule latency known).
pub const NO_VALUE: u64 = u64::MAX;
/// Marker for "not a runtime worker thread" in [`Event::aux`].
pub const NO_WORKER: u32 = u32::MAX;

/// One recorded runtime transition. 32 bytes, `Copy`, no pointers.
///
/// ```
/// use taskline_core::{Event, EventKind};
/// let e = Event::new(EventKind::PollStart, 1_000, 42);
/// assert_eq!(e.kind(), Some(EventKind::PollStart));
/// assert_eq!(std::mem::size_of::<Event>(), 32);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C)]
pub struct Event {
    /// Nanoseconds since the recorder's clock epoch.
    pub ts_ns: u64,
    /// Tokio task id (0 = none). See the table in the module docs.
    pub task: u64,
    /// Kind-specific 64-bit argument. See the table in the module docs.
    pub arg: u64,
    /// Kind-specific 32-bit argument (worker index, interned string id, ...).
    pub aux: u32,
    /// The recorder's number for the writing thread.
    pub thread: u16,
    /// [`EventKind`] as u8.
    pub kind: u8,
    /// Kind-specific flags. See the table in the module docs.
    pub flags: u8,
}

const _: () = assert!(std::mem::size_of::<Event>() == 32);

impl Event {
    /// A new event of `kind` at `ts_ns` for `task`, every other field zero.
    #[inline]
    pub const fn new(kind: EventKind, ts_ns: u64, task: u64) -> Self {
        Event {
            ts_ns,
            task,
            arg: 0,
            aux: 0,
            thread: 0,
            kind: kind as u8,
            flags: 0,
        }
    }

    /// The decoded kind, or `None` for a byte that names no kind (e.g. from a hostile file).
    #[inline]
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::from_u8(self.kind)
    }

    /// Whether the given flag bit(s) are set.
    #[inline]
    pub fn has_flag(&self, flag: u8) -> bool {
        self.flags & flag == flag
    }
}

/// What happened. Stored as a `u8` in [`Event::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventKind {
    /// A task was spawned.
    Spawn = 1,
    /// A task's name became known (from `tokio::task::Builder::name`).
    TaskName = 2,
    /// A worker started polling a task.
    PollStart = 3,
    /// A worker finished polling a task.
    PollEnd = 4,
    /// A task was woken.
    Wake = 5,
    /// A task polled a resource (mutex, semaphore, sleep, ...) and waits on it.
    ResourceWait = 6,
    /// A blocking section started (`spawn_blocking` task running, or `block_in_place`).
    BlockingStart = 7,
    /// A blocking section ended.
    BlockingEnd = 8,
    /// A task terminated (completed, cancelled or panicked) and was dropped.
    Terminate = 9,
    /// A worker thread parked (went idle).
    Park = 10,
    /// A worker thread unparked.
    Unpark = 11,
    /// An application span was entered (only when span recording is enabled).
    SpanEnter = 12,
    /// An application span was exited.
    SpanExit = 13,
    /// A sampled runtime counter.
    Counter = 14,
}

impl EventKind {
    /// Every kind, in discriminant order.
    pub const ALL: [EventKind; 14] = [
        EventKind::Spawn,
        EventKind::TaskName,
        EventKind::PollStart,
        EventKind::PollEnd,
        EventKind::Wake,
        EventKind::ResourceWait,
        EventKind::BlockingStart,
        EventKind::BlockingEnd,
        EventKind::Terminate,
        EventKind::Park,
        EventKind::Unpark,
        EventKind::SpanEnter,
        EventKind::SpanExit,
        EventKind::Counter,
    ];

    /// Decode a stored byte.
    #[inline]
    pub fn from_u8(b: u8) -> Option<Self> {
        if (1..=14).contains(&b) {
            Some(Self::ALL[(b - 1) as usize])
        } else {
            None
        }
    }
}

/// What sort of task a `Spawn` event describes (Tokio's span field `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TaskKind {
    /// `tokio::spawn` and friends.
    Task = 0,
    /// `spawn_local` / `LocalSet`.
    Local = 1,
    /// `Runtime::block_on`.
    BlockOn = 2,
    /// `spawn_blocking`.
    Blocking = 3,
}

impl TaskKind {
    /// Decode the low bits of [`Event::flags`] of a `Spawn` event.
    pub fn from_flags(flags: u8) -> Self {
        match flags & 0x0f {
            1 => TaskKind::Local,
            2 => TaskKind::BlockOn,
            3 => TaskKind::Blocking,
            _ => TaskKind::Task,
        }
    }

    /// Tokio's name for the kind, as in the `kind` span field.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Task => "task",
            TaskKind::Local => "local",
            TaskKind::BlockOn => "block_on",
            TaskKind::Blocking => "blocking",
        }
    }
}

/// The waker operation behind a `Wake` event (low bits of [`Event::flags`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WakeOp {
    /// `Waker::wake` (consumes the waker).
    Wake = 0,
    /// `Waker::wake_by_ref`.
    WakeByRef = 1,
}

/// Which blocking section a `BlockingStart`/`BlockingEnd` describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlockingKind {
    /// A `spawn_blocking` task running on a blocking-pool thread.
    SpawnBlocking = 0,
    /// `block_in_place` on a worker thread.
    BlockInPlace = 1,
}

/// Which runtime value a `Counter` event samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CounterKind {
    /// Tasks alive in the runtime.
    AliveTasks = 0,
    /// Tasks runnable (woken, not yet polled), as counted by the recorder.
    RunnableTasks = 1,
    /// Depth of the runtime's global (injection) queue.
    GlobalQueueDepth = 2,
}

/// Flag bits for [`Event::flags`] (high bits; low 4 bits hold the kind-specific enum).
pub mod flags {
    /// The event came from the tracing layer rather than the runtime hooks.
    pub const FROM_LAYER: u8 = 0x80;
    /// A `Wake` where the waking task is the woken task.
    pub const SELF_WAKE: u8 = 0x40;
    /// In a thread ring only, never delivered: a `PollEnd` whose task
    /// terminated during that poll (the runtime hooks fold Tokio's terminate
    /// callback, which runs inside the task's last poll, into the poll's
    /// end). The recorder's consumer delivers it as a `Terminate` followed by
    /// the `PollEnd`, both at the `PollEnd`'s timestamp.
    pub const TERMINATED: u8 = 0x20;
    /// Mask for the kind-specific enum stored in the low bits.
    pub const ENUM_MASK: u8 = 0x0f;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_reject_unknown() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_u8(k as u8), Some(k));
        }
        assert_eq!(EventKind::from_u8(0), None);
        assert_eq!(EventKind::from_u8(15), None);
        assert_eq!(EventKind::from_u8(255), None);
    }
}
