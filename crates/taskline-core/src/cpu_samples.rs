//! [`CpuSamples`]: timed CPU samples with symbolized stacks, as a sampling
//! profiler hands them to a trace writer.
//!
//! Plain data, here in the core so that the profiler (`taskline-profile`)
//! and the trace writer (`taskline-trace`) need not depend on each other:
//! the profiler fills it, the writer turns it into callstack samples on the
//! threads' tracks. A sample names its thread by the OS thread id, which
//! is also what the trace names each recorded thread by
//! ([`ThreadInfo::tid`](crate::ThreadInfo::tid)).

use std::collections::HashMap;
use std::sync::Arc;

/// One timed sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSample {
    /// When it was taken, in nanoseconds since the recorder's clock epoch
    /// ([`now_ns`](crate::now_ns)): the trace's timeline.
    pub ts_ns: u64,
    /// The sampled thread's OS thread id.
    pub tid: u32,
    /// Index of its stack in [`CpuSamples::stacks`].
    pub stack: u32,
}

/// One source-level frame at an address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodeFrame {
    /// The (demangled) function name.
    pub function: Arc<str>,
    /// Its source file, empty when unknown.
    pub file: Arc<str>,
    /// Its line, 0 when unknown.
    pub line: u32,
}

/// An executable mapping of a file into the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub limit: u64,
    /// Offset in the file of `start`.
    pub offset: u64,
    /// The file's path (as `/proc/self/maps` names it).
    pub path: Arc<str>,
}

impl CodeMapping {
    /// The index in `mappings` (sorted by start, not overlapping) of the one
    /// holding `addr`.
    ///
    /// ```
    /// use taskline_core::CodeMapping;
    /// let maps = [CodeMapping { start: 0x1000, limit: 0x2000, offset: 0, path: "/bin/app".into() }];
    /// assert_eq!(CodeMapping::index_of(&maps, 0x1fff), Some(0));
    /// assert_eq!(CodeMapping::index_of(&maps, 0x0fff), None);
    /// ```
    pub fn index_of(mappings: &[CodeMapping], addr: u64) -> Option<usize> {
        let i = mappings.partition_point(|m| m.start <= addr);
        (i > 0 && addr < mappings[i - 1].limit).then(|| i - 1)
    }
}

/// Timed CPU samples of one process, with what names their addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSamples {
    /// The samples, in the order they were collected (per thread, in time order).
    pub samples: Vec<CpuSample>,
    /// Instruction addresses of each stack, innermost first (the
    /// interrupted instruction, then each return address minus one).
    pub stacks: Vec<Arc<[u64]>>,
    /// The source frames at each address, innermost (most inlined) first;
    /// an address missing here is unknown.
    pub symbols: HashMap<u64, Vec<CodeFrame>>,
    /// The process's executable mappings, by start address.
    pub mappings: Vec<CodeMapping>,
    /// Samples the profiler took but could not keep for the trace (its
    /// bound on timed samples was reached).
    pub dropped: u64,
}

impl CpuSamples {
    /// The index in [`mappings`](Self::mappings) of the one holding `addr`.
    ///
    /// ```
    /// use taskline_core::{CodeMapping, CpuSamples};
    /// let samples = CpuSamples {
    ///     mappings: vec![CodeMapping { start: 0x1000, limit: 0x2000, offset: 0, path: "/bin/app".into() }],
    ///     ..CpuSamples::default()
    /// };
    /// assert_eq!(samples.mapping_of(0x1fff), Some(0));
    /// assert_eq!(samples.mapping_of(0x2000), None);
    /// ```
    pub fn mapping_of(&self, addr: u64) -> Option<usize> {
        CodeMapping::index_of(&self.mappings, addr)
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}
