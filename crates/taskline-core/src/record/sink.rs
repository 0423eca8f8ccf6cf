//! [`Sink`]: what consumes the recorded event stream.

use crate::event::Event;
use crate::record::registry::Registry;

/// A consumer of recorded events (aggregation, trace writer, flight recorder, ...).
///
/// Sinks run on the recorder's consumer thread (or on a thread calling
/// [`Recorder::flush`](crate::record::recorder::Recorder::flush)), never on the
/// application's hot path. A sink that panics is disabled and counted; the
/// recorder and the other sinks carry on.
pub trait Sink: Send + 'static {
    /// A batch of events in nondecreasing `ts_ns` order. Across batches the
    /// order also holds, except that events recorded concurrently with an
    /// explicit flush may arrive slightly late.
    fn on_events(&mut self, events: &[Event], registry: &Registry);

    /// Called after an explicit flush and at shutdown, once every event
    /// recorded before it has been delivered.
    fn on_flush(&mut self, registry: &Registry) {
        let _ = registry;
    }
}

/// Names a sink added with [`Recorder::add_sink`](crate::Recorder::add_sink),
/// for [`Recorder::remove_sink`](crate::Recorder::remove_sink). Unique
/// in the process: no two sinks ever added to any recorders share one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SinkId(pub(crate) u64);
