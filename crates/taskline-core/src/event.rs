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
//! | `SpanEnter` / `SpanExit` | 0 | tracing span id, or the instance id of a future instrumented with [`Recorder::region`](crate::Recorder::region) | string id of the span (region) name | [`SpanMark`] as u8 (0 for a tracing span) |
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

/// An [`Event`] read once into typed fields: what the table in the module
/// docs says each kind's `task` / `arg` / `aux` / `flags` mean, decoded in
/// one place ([`Event::decode`]) so consumers never read those fields by
/// hand. `ts_ns` and `thread` stay on the [`Event`].
///
/// ```
/// use taskline_core::{DecodedEvent, Event, EventKind, NO_VALUE, NO_WORKER};
/// let mut e = Event::new(EventKind::PollStart, 1_000, 42);
/// e.arg = NO_VALUE;
/// e.aux = NO_WORKER;
/// assert_eq!(
///     e.decode(),
///     DecodedEvent::PollStart { task: 42, worker: None, latency_ns: None }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodedEvent {
    /// A task was spawned.
    Spawn {
        /// Task id.
        task: u64,
        /// Spawn site id (see [`Registry::site`](crate::record::registry::Registry::site)).
        site: u32,
        /// Size of the future in bytes, `None` when unknown.
        size: Option<u64>,
        /// What sort of task.
        kind: TaskKind,
        /// Reported by the tracing layer rather than the runtime hooks.
        from_layer: bool,
    },
    /// A task's name became known.
    TaskName {
        /// Task id.
        task: u64,
        /// String id of the name.
        name: u32,
    },
    /// A thread started polling a task.
    PollStart {
        /// Task id.
        task: u64,
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
        /// Tokio's schedule latency, when the hooks track it.
        latency_ns: Option<u64>,
    },
    /// A thread finished polling a task.
    PollEnd {
        /// Task id.
        task: u64,
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
    },
    /// A task was woken.
    Wake {
        /// The woken task.
        task: u64,
        /// The waking task, `None` when woken from outside a task.
        by: Option<u64>,
        /// The task woke itself (flag set, or waker and woken are one task).
        self_wake: bool,
        /// The waker operation.
        op: WakeOp,
    },
    /// A task polled a resource and waits on it.
    ResourceWait {
        /// Task id.
        task: u64,
        /// Resource instance id, `None` when unknown.
        instance: Option<u64>,
        /// String id of the resource kind.
        resource: u32,
    },
    /// A blocking section started.
    BlockingStart {
        /// The `spawn_blocking` task, `None` for `block_in_place`.
        task: Option<u64>,
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
        /// Which section, `None` for a byte naming none (hostile input).
        kind: Option<BlockingKind>,
    },
    /// A blocking section ended.
    BlockingEnd {
        /// The `spawn_blocking` task, `None` for `block_in_place`.
        task: Option<u64>,
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
        /// Which section, `None` for a byte naming none (hostile input).
        kind: Option<BlockingKind>,
    },
    /// A task terminated.
    Terminate {
        /// Task id.
        task: u64,
    },
    /// A worker parked.
    Park {
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
    },
    /// A worker unparked.
    Unpark {
        /// Runtime worker index, `None` off the workers.
        worker: Option<u32>,
    },
    /// An application span was entered (or a region future's poll began).
    SpanEnter {
        /// Tracing span id, or the region future's instance id.
        span: u64,
        /// String id of the span name.
        name: u32,
        /// What the enter stands for, `None` for bits naming nothing (hostile input).
        mark: Option<SpanMark>,
    },
    /// An application span was exited (or a region future's poll ended).
    SpanExit {
        /// Tracing span id, or the region future's instance id.
        span: u64,
        /// String id of the span name.
        name: u32,
        /// What the exit stands for, `None` for bits naming nothing (hostile input).
        mark: Option<SpanMark>,
    },
    /// A kind byte that names no kind (e.g. from a hostile file).
    Unknown {
        /// The byte.
        kind: u8,
    },
}

#[inline]
fn worker_of(aux: u32) -> Option<u32> {
    (aux != NO_WORKER).then_some(aux)
}

impl Event {
    /// The typed view of this event (see [`DecodedEvent`]).
    #[inline(always)]
    pub fn decode(&self) -> DecodedEvent {
        let task = self.task;
        match self.kind() {
            Some(EventKind::Spawn) => DecodedEvent::Spawn {
                task,
                site: self.aux,
                size: (self.arg != 0).then_some(self.arg),
                kind: TaskKind::from_flags(self.flags),
                from_layer: self.has_flag(flags::FROM_LAYER),
            },
            Some(EventKind::TaskName) => DecodedEvent::TaskName {
                task,
                name: self.aux,
            },
            Some(EventKind::PollStart) => DecodedEvent::PollStart {
                task,
                worker: worker_of(self.aux),
                latency_ns: (self.arg != NO_VALUE).then_some(self.arg),
            },
            Some(EventKind::PollEnd) => DecodedEvent::PollEnd {
                task,
                worker: worker_of(self.aux),
            },
            Some(EventKind::Wake) => DecodedEvent::Wake {
                task,
                by: (self.arg != 0).then_some(self.arg),
                self_wake: self.has_flag(flags::SELF_WAKE) || (self.arg != 0 && self.arg == task),
                op: if self.flags & flags::ENUM_MASK == WakeOp::WakeByRef as u8 {
                    WakeOp::WakeByRef
                } else {
                    WakeOp::Wake
                },
            },
            Some(EventKind::ResourceWait) => DecodedEvent::ResourceWait {
                task,
                instance: (self.arg != 0).then_some(self.arg),
                resource: self.aux,
            },
            Some(EventKind::BlockingStart) => DecodedEvent::BlockingStart {
                task: (task != 0).then_some(task),
                worker: worker_of(self.aux),
                kind: BlockingKind::from_flags(self.flags),
            },
            Some(EventKind::BlockingEnd) => DecodedEvent::BlockingEnd {
                task: (task != 0).then_some(task),
                worker: worker_of(self.aux),
                kind: BlockingKind::from_flags(self.flags),
            },
            Some(EventKind::Terminate) => DecodedEvent::Terminate { task },
            Some(EventKind::Park) => DecodedEvent::Park {
                worker: worker_of(self.aux),
            },
            Some(EventKind::Unpark) => DecodedEvent::Unpark {
                worker: worker_of(self.aux),
            },
            Some(EventKind::SpanEnter) => DecodedEvent::SpanEnter {
                span: self.arg,
                name: self.aux,
                mark: SpanMark::from_flags(self.flags),
            },
            Some(EventKind::SpanExit) => DecodedEvent::SpanExit {
                span: self.arg,
                name: self.aux,
                mark: SpanMark::from_flags(self.flags),
            },
            None => DecodedEvent::Unknown { kind: self.kind },
        }
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
}

impl EventKind {
    /// Every kind, in discriminant order.
    pub const ALL: [EventKind; 13] = [
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
    ];

    /// Decode a stored byte.
    #[inline]
    pub fn from_u8(b: u8) -> Option<Self> {
        if (1..=13).contains(&b) {
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

impl BlockingKind {
    /// Decode the low bits of [`Event::flags`]; `None` for bits naming no kind.
    #[inline]
    pub fn from_flags(flags: u8) -> Option<Self> {
        match flags & flags::ENUM_MASK {
            0 => Some(BlockingKind::SpawnBlocking),
            1 => Some(BlockingKind::BlockInPlace),
            _ => None,
        }
    }
}

/// What a `SpanEnter` / `SpanExit` stands for (low bits of [`Event::flags`]):
/// a `tracing` span entered and exited (the layer and the subscriber), or a
/// poll of a future instrumented with [`Recorder::region`](crate::Recorder::region),
/// whose first enter and last exit mark the region instance's start and end.
///
/// ```
/// use taskline_core::{DecodedEvent, Event, EventKind, SpanMark};
/// let mut e = Event::new(EventKind::SpanExit, 10, 0);
/// e.arg = 7;
/// e.flags = SpanMark::Completed as u8;
/// assert!(matches!(
///     e.decode(),
///     DecodedEvent::SpanExit { span: 7, mark: Some(SpanMark::Completed), .. }
/// ));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SpanMark {
    /// A `tracing` span entered / exited: each enter and exit pair is one
    /// region instance.
    Span = 0,
    /// A poll of a region future that neither begins nor ends it.
    Poll = 1,
    /// On `SpanEnter`: the first poll of a region future (the instance starts).
    FirstPoll = 2,
    /// On `SpanExit`: the poll that completed a region future (the instance ends).
    Completed = 3,
    /// A zero-length `SpanEnter` + `SpanExit` pair: the region future was
    /// dropped after its first poll, before completing (the instance ends).
    /// A pair rather than a lone exit, so the trace's span track stays nested.
    Dropped = 4,
}

impl SpanMark {
    /// Decode the low bits of [`Event::flags`]; `None` for bits naming none.
    #[inline]
    pub fn from_flags(flags: u8) -> Option<Self> {
        match flags & flags::ENUM_MASK {
            0 => Some(SpanMark::Span),
            1 => Some(SpanMark::Poll),
            2 => Some(SpanMark::FirstPoll),
            3 => Some(SpanMark::Completed),
            4 => Some(SpanMark::Dropped),
            _ => None,
        }
    }

    /// Whether the event belongs to a region future rather than a `tracing` span.
    #[inline]
    pub fn is_future(self) -> bool {
        self != SpanMark::Span
    }
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

    #[test]
    fn decode_reads_each_kind_by_the_table() {
        let mut wake = Event::new(EventKind::Wake, 5, 9);
        wake.arg = 9;
        wake.flags = WakeOp::WakeByRef as u8;
        assert_eq!(
            wake.decode(),
            DecodedEvent::Wake {
                task: 9,
                by: Some(9),
                self_wake: true,
                op: WakeOp::WakeByRef
            }
        );
        let mut spawn = Event::new(EventKind::Spawn, 5, 3);
        spawn.aux = 7;
        spawn.flags = TaskKind::Blocking as u8 | flags::FROM_LAYER;
        assert_eq!(
            spawn.decode(),
            DecodedEvent::Spawn {
                task: 3,
                site: 7,
                size: None,
                kind: TaskKind::Blocking,
                from_layer: true
            }
        );
        let mut start = Event::new(EventKind::PollStart, 5, 3);
        start.arg = 120;
        start.aux = 1;
        assert_eq!(
            start.decode(),
            DecodedEvent::PollStart {
                task: 3,
                worker: Some(1),
                latency_ns: Some(120)
            }
        );
        let mut section = Event::new(EventKind::BlockingStart, 5, 0);
        section.flags = 9;
        section.aux = NO_WORKER;
        assert_eq!(
            section.decode(),
            DecodedEvent::BlockingStart {
                task: None,
                worker: None,
                kind: None
            }
        );
        let bad = Event {
            kind: 200,
            ..Event::default()
        };
        assert_eq!(bad.decode(), DecodedEvent::Unknown { kind: 200 });
    }

    #[test]
    fn span_marks_round_trip_and_reject_unknown_bits() {
        use SpanMark::*;
        for m in [Span, Poll, FirstPoll, Completed, Dropped] {
            assert_eq!(SpanMark::from_flags(m as u8), Some(m));
            assert_eq!(m.is_future(), m != Span);
        }
        for bits in 5..=15 {
            assert_eq!(SpanMark::from_flags(bits), None);
        }
        let mut exit = Event::new(EventKind::SpanExit, 5, 0);
        exit.arg = 3;
        exit.aux = 2;
        exit.flags = Dropped as u8;
        assert_eq!(
            exit.decode(),
            DecodedEvent::SpanExit {
                span: 3,
                name: 2,
                mark: Some(Dropped)
            }
        );
    }
}
