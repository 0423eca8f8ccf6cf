//! # taskline-profile: CPU profiles per Tokio task and spawn site
//!
//! "pprof finds the hot function, the trace shows why": a sampling CPU
//! profiler for the threads of a Tokio runtime whose samples carry the
//! task being polled, its spawn site and the worker, read from taskline's
//! per-thread state at the moment of the sample. The output is a gzipped
//! pprof `profile.proto` with the sample labels `spawn_site`
//! (`file:line:col`), `task`, `worker` and `thread`, so
//!
//! ```text
//! go tool pprof -top -tagfocus=spawn_site=src/main.rs:42 cpu.pb.gz
//! taskline flamegraph cpu.pb.gz -o cpu.svg
//! ```
//!
//! show which functions one spawn site's tasks burn CPU in.
//!
//! The same samples can go into taskline's Perfetto trace, on the sampled
//! threads' tracks, so a slow poll and the stacks it burned are in one
//! view: besides the aggregate the profiler keeps a bounded log of timed
//! samples (the recorder's clock, the OS thread id, the stack;
//! [`ProfilerConfig::trace_samples`]), which
//! [`ProfilerGuard::take_cpu_samples`] hands over symbolized as a
//! [`taskline_core::CpuSamples`] for `TraceHandle::write_cpu_samples`
//! (the `taskline` front door does it at shutdown when it writes a trace).
//!
//! Also here: periodic collection into a bounded directory
//! ([`ProfileCollector`], `cpu-<UTC time>.pb.gz`, with a public count of
//! profiles written), pause/resume and windows on one profiler
//! ([`ProfilerGuard::pause`], [`ProfilerGuard::take_profile`]), and flame
//! graphs ([`flamegraph`]: SVG and folded stacks, behind `taskline
//! flamegraph`).
//!
//! ```no_run
//! use taskline_core::{Recorder, RuntimeBuilderExt};
//! use taskline_profile::{ProfileRuntimeExt, Profiler, ProfilerConfig};
//!
//! let recorder = Recorder::with_defaults();
//! let profiler = Profiler::start(ProfilerConfig::default().recorder(&recorder))?;
//! let rt = tokio::runtime::Builder::new_multi_thread()
//!     .taskline(&recorder)                 // the hooks keep the per-thread task state
//!     .profile_threads(&profiler.handle()) // sample every runtime thread
//!     .build()?;
//! rt.block_on(async { /* the work */ });
//! let profile = profiler.stop()?;
//! profile.write_pprof("cpu.pb.gz")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How it samples
//!
//! - **Per-thread CPU time.** Each registered thread gets a POSIX timer on
//!   its own CPU-time clock (`timer_create(CLOCK_THREAD_CPUTIME_ID)`,
//!   `SIGEV_THREAD_ID`) that sends it `SIGPROF` every `1/frequency_hz` s of
//!   CPU it burns (default 99 Hz, at most 1000 Hz). An idle thread costs
//!   nothing and every busy thread is sampled at the same rate, unlike a
//!   process-wide `setitimer(ITIMER_PROF)`, whose signal lands on whichever
//!   thread runs. Linux only (on x86_64 and aarch64).
//! - **An async-signal-safe handler.** It reads the thread's taskline state
//!   ([`taskline_core::sample_state`]: plain thread-local loads), walks the
//!   frame-pointer chain from the interrupted registers, reading only words
//!   inside the thread's own stack, and writes the sample into that
//!   thread's preallocated single-producer ring: no allocation, no lock,
//!   no system call. A full ring drops the sample and counts it. A
//!   collector thread (`taskline-profiler`) drains the rings every
//!   `collect_interval` into a bounded aggregate.
//! - **Off means off.** Before [`Profiler::start`] and after the guard
//!   stops, no handler and no timer exist: the `SIGPROF` disposition is the
//!   one the process had ([`sigprof_handler_installed`] checks it).
//!
//! ## Stacks: frame pointers
//!
//! The stack is the frame-pointer chain, so frames of code compiled
//! without frame pointers are cut: build with
//! `RUSTFLAGS="-C force-frame-pointers=yes"` (this workspace's
//! `.cargo/config.toml` does) for whole stacks. Rust's prebuilt standard
//! library keeps frame pointers (measured on 1.95: 225 of 309 std functions
//! of a small binary open with `push %rbp; mov %rsp,%rbp`, the rest are
//! leaves that do not touch it), glibc does not: the walk stops at the
//! thread's start routine. A leaf function without a frame hides its
//! caller. The interrupted instruction is always exact, so the function
//! that burns the CPU is found even without frame pointers.
//!
//! ## Why not pprof-rs, framehop, addr2line, prost
//!
//! - **pprof-rs** (`pprof` crate) samples with `setitimer(ITIMER_PROF)`
//!   (process CPU time, delivered to an arbitrary thread), owns the
//!   `SIGPROF` handler, and its samples carry only the thread name and the
//!   frames: there is no hook to read per-thread state (the task) at
//!   signal time. Its default unwinder (backtrace-rs over libgcc) is not
//!   async-signal-safe (pprof-rs issue 36); its frame-pointer and framehop
//!   backends are.
//! - **framehop** unwinds from `.eh_frame` (so it needs no frame pointers)
//!   and can run without allocating once its modules are loaded, but it
//!   needs every loaded module's unwind sections parsed up front, kept in
//!   sync with `dlopen`, and a guarded memory reader: far more than a
//!   frame-pointer walk, which is a dozen lines that cannot fault here.
//!   The walk is one private function (`walk_stack`); a DWARF unwinder
//!   can replace it without touching the rest.
//! - **Symbolization** uses **blazesym** (libbpf's maintained symbolizer,
//!   already in this workspace's lock file): it reads `/proc/self/maps`,
//!   handles PIE load addresses, DWARF line tables, inlined functions and
//!   Rust demangling in one call. `addr2line`/`gimli` alone would leave the
//!   maps parsing, ELF loading and address normalization to us.
//! - **The pprof file** is a dozen small protobuf messages: a ~100-line
//!   writer and reader ([`pprof`]) instead of `prost` and a build script.
//!
//! ## What a sample is labelled with
//!
//! - `task`: the Tokio task id being polled, read from the thread-local
//!   the runtime hooks (`.taskline(&recorder)`), the wrapper source
//!   (`Recorder::spawn`) or the `tracing` sources set; absent between
//!   polls (the runtime's own work: scheduling, I/O and timer drivers).
//! - `spawn_site`: where that task was spawned. Known when the hooks or
//!   the wrapper recorded the poll (the `tracing`-only sources keep no site
//!   in the thread-local, so their samples have a task but no site).
//! - `worker`: the worker index of the thread's latest recorded poll.
//! - `thread`: the thread's name.
//!
//! [`pprof`]: crate::pprof

mod collector;
mod config;
mod error;
pub mod flamegraph;
pub mod pprof;
mod profile;
mod profiler;
mod ring;
mod runtime;
mod symbolize;
#[cfg(target_os = "linux")]
mod sys;

pub use collector::{CollectedProfile, CollectorConfig, OnProfile, ProfileCollector};
pub use config::{MAX_DEPTH_LIMIT, MAX_FREQUENCY_HZ, ProfilerConfig};
pub use error::ProfileError;
pub use profile::{Profile, ProfileSample, ProfilerStats, SpawnSite};
pub use profiler::{Profiler, ProfilerGuard, ProfilerHandle, sigprof_handler_installed};
pub use runtime::ProfileRuntimeExt;
