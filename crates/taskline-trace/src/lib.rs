//! taskline's trace format: a Perfetto trace writer and reader.
//!
//! - [`PerfettoWriter`] is a [`Sink`](taskline_core::Sink) that streams
//!   the recording into a Perfetto protobuf trace (TrackEvent format) which
//!   opens in <https://ui.perfetto.dev>: a track per worker thread with a
//!   slice per poll, a track per blocking-pool thread with its blocking
//!   sections, instants for spawn/wake/terminate/resource waits, `idle`
//!   slices from park to unpark, flow arrows to the woken task's next poll
//!   from the waking poll or from the worker whose I/O driver or timer woke
//!   it (`io wake` / `timer wake` instants), and counter tracks for sampled
//!   runtime counters.
//! - [`TraceHandle::write_cpu_samples`] adds a CPU profiler's timed samples
//!   ([`taskline_core::CpuSamples`], e.g. `taskline-profile`'s
//!   `take_cpu_samples`) as callstack samples on the sampled threads'
//!   tracks (Perfetto `PerfSample`s; thread tracks carry the OS tid so
//!   they match).
//! - [`encode_trace`] writes a whole event slice at once (the flight recorder).
//! - [`read_trace`] reads such a file back into exactly the events written,
//!   the registry naming their ids, the flow arrows ([`FlowArrow`]) and
//!   the CPU samples ([`Recording::cpu_samples`]).
//!
//! The protobuf encoder and decoder are hand-written for the subset used
//! (no dependency); see `docs/trace-format.md` in the crate directory for the
//! layout.

pub mod analysis;
mod atomic_file;
mod callstacks;
mod derive;
mod encoder;
mod error;
pub mod flight;
mod reader;
mod reader_common;
mod reader_v1;
mod schema;
mod wire;
mod writer;

pub use atomic_file::write_atomically;
pub use error::{TraceError, TraceErrorKind};
pub use reader::{CounterSample, FlowArrow, FlowStart, Recording, events_by_thread, read_trace};
pub use writer::{
    DEFAULT_MAX_TRACKED_TASKS, FLUSH_THRESHOLD, PerfettoWriter, RSS_SAMPLE_INTERVAL, TraceHandle,
    TraceOptions, WRITER_QUEUE_BATCHES, encode_trace, encode_trace_with, encode_trace_with_dropped,
    encode_window,
};
