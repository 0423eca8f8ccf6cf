//! The aggregation sink: per task, per spawn site and per worker statistics.
//! (Placeholder while the real aggregation lands.)

use crate::config::RecorderConfig;
use crate::event::Event;
use crate::recorder::RecorderStats;
use crate::registry::Registry;
use crate::sink::Sink;

/// Upper bound of the bytes one tracked task takes in the aggregator.
pub const TASK_STATE_BYTES_BOUND: usize = 160;

/// Upper bound of the aggregator's memory that does not depend on tasks.
pub fn fixed_bytes_bound() -> usize {
    16 << 20
}

/// Aggregates an event stream.
#[derive(Debug)]
pub struct Aggregator {
    events: u64,
}

impl Aggregator {
    /// A new aggregator bounded by `config`.
    pub fn new(config: &RecorderConfig) -> Self {
        let _ = config;
        Aggregator { events: 0 }
    }

    /// A copy of the aggregates.
    pub fn snapshot(&self, registry: &Registry) -> Snapshot {
        let _ = registry;
        Snapshot {
            events: self.events,
            recorder: None,
        }
    }
}

impl Sink for Aggregator {
    fn on_events(&mut self, events: &[Event], registry: &Registry) {
        let _ = registry;
        self.events += events.len() as u64;
    }
}

/// A copy of the aggregates.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Events the aggregator saw.
    pub events: u64,
    /// The recorder's counters, when taken from a recorder.
    pub recorder: Option<RecorderStats>,
}
