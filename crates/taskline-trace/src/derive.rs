//! What a version 2 thread sequence lets the reader derive, shared by the
//! encoder and the reader so both predict exactly the same values.
//!
//! Each recording thread's events form one packet sequence, in ring order.
//! Along that sequence both sides keep a [`SeqModel`]: the open slices
//! (polls, blocking sections, idle, spans), the last spawn, the last polled
//! and the last woken task, and the thread's worker index. Before writing an
//! event the encoder asks [`SeqModel::predict`] for the value of each field
//! and writes only the fields that differ (as debug annotations); the reader
//! starts from the same prediction and applies the annotations it finds.
//! Both then call [`SeqModel::apply`]. So the encoding is exact for any
//! input, and small for the usual one: a `PollEnd` that closes its poll, a
//! `Terminate` inside its task's last poll, a `Spawn` of the next task id
//! from the same site carry no annotation at all.

use taskline_core::{Event, EventKind, NO_VALUE, NO_WORKER};

/// Open slices tracked per track at most; deeper ones are not modelled (both
/// sides agree, so events are still exact, only less compact).
pub(crate) const MAX_DEPTH: usize = 64;

/// The per-sequence model. Starts empty on both sides.
#[derive(Clone, Debug)]
pub(crate) struct SeqModel {
    stack: Vec<Event>,
    span_stack: Vec<Event>,
    last_spawn: Event,
    last_poll_task: u64,
    /// A `Terminate` of `last_poll_task` came after its last poll began: it
    /// will not be polled again, and Tokio's run queues are FIFO in spawn
    /// order, so the next poll is most likely of the next task id.
    last_poll_terminated: bool,
    last_poll_flags: u8,
    last_wake: Event,
    /// A `Wake` came on this thread after the last poll began: Tokio puts
    /// a task woken from a worker in that worker's LIFO slot, so it is
    /// most likely the next one polled here.
    woke_since_poll: bool,
    worker: u32,
    /// Version 3: a `Wake` from the task the last `Wake` woke is predicted
    /// to wake that wake's waker back (a reply: request/response channels,
    /// ping-pong hand-offs).
    replies: bool,
}

impl Default for SeqModel {
    fn default() -> Self {
        SeqModel {
            stack: Vec::new(),
            span_stack: Vec::new(),
            last_spawn: Event::default(),
            last_poll_task: 0,
            last_poll_terminated: false,
            last_poll_flags: 0,
            last_wake: Event::default(),
            woke_since_poll: false,
            worker: NO_WORKER,
            replies: true,
        }
    }
}

/// The kind of slice end that closes a slice begun by `begin`.
fn end_of(begin: u8) -> Option<EventKind> {
    match EventKind::from_u8(begin)? {
        EventKind::PollStart => Some(EventKind::PollEnd),
        EventKind::BlockingStart => Some(EventKind::BlockingEnd),
        EventKind::Park => Some(EventKind::Unpark),
        EventKind::SpanEnter => Some(EventKind::SpanExit),
        _ => None,
    }
}

impl SeqModel {
    /// The model of a sequence of format `version` (2 or 3; [`Default`] is
    /// the version the encoder writes).
    pub(crate) fn for_version(version: u32) -> Self {
        SeqModel {
            replies: version >= 3,
            ..SeqModel::default()
        }
    }

    /// The task running on the thread: the innermost open poll or blocking section's.
    fn current_task(&self) -> u64 {
        self.stack
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind(),
                    Some(EventKind::PollStart | EventKind::BlockingStart)
                )
            })
            .map_or(0, |e| e.task)
    }

    /// The slice-end kind the next `SLICE_END` on the thread track (or the
    /// span track when `span`) stands for, if the model knows.
    pub(crate) fn end_kind(&self, span: bool) -> Option<EventKind> {
        let top = if span {
            self.span_stack.last()
        } else {
            self.stack.last()
        };
        top.and_then(|b| end_of(b.kind))
    }

    /// The predicted `task`, `arg`, `aux` and `flags` of the next event of
    /// `kind` on this sequence (as an [`Event`] with `ts_ns` and `thread` 0).
    pub(crate) fn predict(&self, kind: EventKind) -> Event {
        let mut p = Event::new(kind, 0, 0);
        let closes = |stack: &[Event]| {
            stack
                .last()
                .filter(|b| end_of(b.kind) == Some(kind))
                .copied()
        };
        match kind {
            EventKind::Spawn => {
                p.task = self.last_spawn.task.wrapping_add(1);
                p.arg = self.last_spawn.arg;
                p.aux = self.last_spawn.aux;
                p.flags = self.last_spawn.flags;
            }
            EventKind::TaskName => {
                p.task = self.last_spawn.task;
                p.flags = taskline_core::flags::FROM_LAYER;
            }
            EventKind::PollStart => {
                p.task = if self.woke_since_poll {
                    self.last_wake.task
                } else if self.last_poll_terminated {
                    self.last_poll_task.wrapping_add(1)
                } else {
                    self.last_poll_task
                };
                p.arg = NO_VALUE;
                p.aux = self.worker;
                p.flags = self.last_poll_flags;
            }
            EventKind::Wake => {
                let running = self.current_task();
                p.task = if self.replies
                    && running != 0
                    && running == self.last_wake.task
                    && self.last_wake.arg != 0
                {
                    self.last_wake.arg
                } else {
                    self.last_wake.task
                };
                p.arg = running;
                p.flags = self.last_wake.flags;
            }
            EventKind::ResourceWait => p.task = self.current_task(),
            EventKind::Terminate => {
                p.task = self.current_task();
                p.flags = self.stack.last().map_or(0, |b| b.flags);
            }
            EventKind::BlockingStart | EventKind::Park => p.aux = self.worker,
            EventKind::PollEnd | EventKind::BlockingEnd | EventKind::Unpark => {
                match closes(&self.stack) {
                    Some(b) => {
                        p.task = b.task;
                        p.aux = b.aux;
                        p.flags = b.flags;
                    }
                    None => {
                        p.task = self.current_task();
                        p.aux = self.worker;
                    }
                }
            }
            EventKind::SpanEnter => {}
            EventKind::SpanExit => {
                if let Some(b) = closes(&self.span_stack) {
                    p.task = b.task;
                    p.arg = b.arg;
                    p.aux = b.aux;
                    p.flags = b.flags;
                }
            }
        }
        p
    }

    /// Updates the model with an event just written (or read).
    pub(crate) fn apply(&mut self, e: &Event) {
        let Some(kind) = e.kind() else { return };
        match kind {
            EventKind::Spawn => self.last_spawn = *e,
            EventKind::PollStart => {
                self.last_poll_task = e.task;
                self.last_poll_terminated = false;
                self.woke_since_poll = false;
                self.last_poll_flags = e.flags;
                self.worker = e.aux;
                if self.stack.len() < MAX_DEPTH {
                    self.stack.push(*e);
                }
            }
            EventKind::BlockingStart | EventKind::Park => {
                self.worker = e.aux;
                if self.stack.len() < MAX_DEPTH {
                    self.stack.push(*e);
                }
            }
            EventKind::PollEnd | EventKind::BlockingEnd | EventKind::Unpark => {
                self.worker = e.aux;
                self.stack.pop();
            }
            EventKind::SpanEnter => {
                if self.span_stack.len() < MAX_DEPTH {
                    self.span_stack.push(*e);
                }
            }
            EventKind::SpanExit => {
                self.span_stack.pop();
            }
            EventKind::Wake => {
                self.last_wake = *e;
                self.woke_since_poll = true;
            }
            EventKind::Terminate => {
                if e.task == self.last_poll_task {
                    self.last_poll_terminated = true;
                }
            }
            EventKind::TaskName | EventKind::ResourceWait => {}
        }
    }
}

/// The kind a version 2 `TrackEvent` without a category stands for: by its
/// type, its fixed name and its track, and for a slice end by the slice it
/// closes. The encoder writes the category whenever this would be wrong.
pub(crate) fn derived_kind(
    ty: u64,
    name: Option<u64>,
    on_span_track: bool,
    model: &SeqModel,
) -> Option<EventKind> {
    use crate::schema::track_event::*;
    match ty {
        TYPE_INSTANT => match name? {
            1 => Some(EventKind::Spawn),
            2 => Some(EventKind::TaskName),
            3 | crate::schema::NAME_IO_WAKE | crate::schema::NAME_TIMER_WAKE => {
                Some(EventKind::Wake)
            }
            4 => Some(EventKind::ResourceWait),
            5 => Some(EventKind::Terminate),
            _ => None,
        },
        TYPE_SLICE_BEGIN if on_span_track => Some(EventKind::SpanEnter),
        TYPE_SLICE_BEGIN if name == Some(crate::schema::NAME_IDLE) => Some(EventKind::Park),
        TYPE_SLICE_BEGIN => Some(EventKind::PollStart),
        TYPE_SLICE_END => match model.end_kind(on_span_track) {
            Some(k) => Some(k),
            None if on_span_track => Some(EventKind::SpanExit),
            None => None,
        },
        _ => None,
    }
}
