//! Heap profiles (Go's `/debug/pprof/heap`): which call stacks hold the
//! memory that is allocated now, sampled by jemalloc, as a pprof profile
//! (gzipped protobuf) for `pprof` or any pprof viewer.
//!
//! Needs cargo feature `heap` (off by default) on Linux, and jemalloc as
//! the program's global allocator with its profiler on from the start:
//! put [`heap_profiling_allocator!`](crate::heap_profiling_allocator) once
//! in the binary (it installs `tikv_jemallocator::Jemalloc` and sets
//! jemalloc's `malloc_conf` to `prof:true,prof_active:true,lg_prof_sample:19`,
//! one sample per 512 KiB allocated on average). A library cannot choose
//! the allocator for its program, so taskline never does it by itself.
//! Then [`heap_profile`] (or [`Taskline::heap_profile`](crate::Taskline::heap_profile),
//! which also counts it in `taskline.profiles.collected`) returns the
//! profile; everywhere else it says what is missing.
//!
//! The dump goes through a temporary file (jemalloc writes its own
//! format, `jemalloc_pprof` converts it); addresses are not symbolized in
//! the process: give the binary to the viewer, e.g.
//! `pprof -http=: target/release/examples/service heap.pb.gz`.

use std::fmt;

/// Why [`heap_profile`] gave no profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeapProfileError {
    /// This build cannot take heap profiles, or jemalloc's profiler is
    /// off; the sentence says what is missing.
    Unsupported(&'static str),
    /// Another heap profile is being taken right now.
    Busy,
    /// jemalloc or the conversion to pprof failed.
    Dump(String),
}

impl fmt::Display for HeapProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapProfileError::Unsupported(why) => f.write_str(why),
            HeapProfileError::Busy => f.write_str("a heap profile is being taken already"),
            HeapProfileError::Dump(e) => write!(f, "the heap profile failed: {e}"),
        }
    }
}

impl std::error::Error for HeapProfileError {}

/// Whether this build has heap profiles (feature `heap`, Linux); whether
/// the profiler is on is only known at run time ([`heap_profile`] says).
pub const HEAP_PROFILES_SUPPORTED: bool = cfg!(all(feature = "heap", target_os = "linux"));

/// jemalloc, the global allocator [`heap_profiling_allocator!`](crate::heap_profiling_allocator) installs.
#[cfg(all(feature = "heap", target_os = "linux"))]
pub use tikv_jemallocator::Jemalloc;

/// Installs jemalloc (`taskline::heap::Jemalloc`) as the global allocator
/// with its sampling heap profiler on, for [`heap::heap_profile`](crate::heap::heap_profile).
/// Use it once, at the top level of the binary crate, with feature `heap`
/// on Linux.
///
/// ```ignore
/// taskline::heap_profiling_allocator!();
/// ```
#[cfg(all(feature = "heap", target_os = "linux"))]
#[macro_export]
macro_rules! heap_profiling_allocator {
    () => {
        #[global_allocator]
        static TASKLINE_HEAP_PROFILING_ALLOCATOR: $crate::heap::Jemalloc = $crate::heap::Jemalloc;
        /// jemalloc's start-up options (prefixed build: `_rjem_malloc_conf`).
        #[allow(non_upper_case_globals)]
        #[unsafe(export_name = "_rjem_malloc_conf")]
        pub static _rjem_malloc_conf: &[u8] = b"prof:true,prof_active:true,lg_prof_sample:19\0";
    };
}

/// Takes a heap profile now: pprof (gzipped protobuf) of the sampled
/// allocations still live, `inuse_space` in bytes. Blocks while jemalloc
/// writes and the profile is converted (milliseconds to a second for large
/// heaps): call it off the runtime's workers (`spawn_blocking`).
///
/// ```
/// match taskline::heap::heap_profile() {
///     Ok(pprof) => assert_eq!(&pprof[..2], &[0x1f, 0x8b]), // gzip
///     Err(e) => println!("no heap profile: {e}"),
/// }
/// ```
pub fn heap_profile() -> Result<Vec<u8>, HeapProfileError> {
    imp::heap_profile()
}

#[cfg(all(feature = "heap", target_os = "linux"))]
mod imp {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use super::HeapProfileError;

    pub(super) fn heap_profile() -> Result<Vec<u8>, HeapProfileError> {
        // jemalloc_pprof's first use reads jemalloc's options and unwraps;
        // never let a surprise there reach the caller as a panic.
        let ctl = catch_unwind(|| jemalloc_pprof::PROF_CTL.as_ref()).map_err(|_| {
            HeapProfileError::Dump("cannot read jemalloc's profiling options".into())
        })?;
        let Some(ctl) = ctl else {
            return Err(HeapProfileError::Unsupported(
                "jemalloc's heap profiler is off: the program must install it with \
                 taskline::heap_profiling_allocator!() (jemalloc as global allocator, prof:true)",
            ));
        };
        let mut ctl = ctl.try_lock().map_err(|_| HeapProfileError::Busy)?;
        if !ctl.activated() {
            return Err(HeapProfileError::Unsupported(
                "jemalloc's heap profiler is not active (prof_active:false)",
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| ctl.dump_pprof())) {
            Ok(Ok(pprof)) => Ok(pprof),
            Ok(Err(e)) => Err(HeapProfileError::Dump(format!("{e:#}"))),
            Err(_) => Err(HeapProfileError::Dump("jemalloc_pprof panicked".into())),
        }
    }
}

#[cfg(not(all(feature = "heap", target_os = "linux")))]
mod imp {
    use super::HeapProfileError;

    pub(super) fn heap_profile() -> Result<Vec<u8>, HeapProfileError> {
        Err(HeapProfileError::Unsupported(
            if cfg!(target_os = "linux") {
                "heap profiles are not available in this build: rebuild with taskline's cargo \
             feature `heap` (e.g. `cargo run --features heap`)"
            } else {
                "heap profiles are not available on this platform: taskline takes them from \
             jemalloc on Linux only"
            },
        ))
    }
}
