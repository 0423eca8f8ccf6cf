//! The Mandelbrot workload of the Go execution tracer tutorial
//! (Francesc Campoy, "Using the Go execution tracer"), on Tokio.
//!
//! The tutorial renders a 2048x2048 grayscale Mandelbrot image five ways and
//! reads each run's execution trace; taskline reproduces the same five shapes of
//! concurrency with Tokio tasks so its recorder and report can tell the same story.
//! [`pixel`] is bit-identical to the Go code (including Go's wrapping
//! `uint8(x)`), so every variant produces the same image and [`Image::checksum`].
//!
//! Columns are very unequal (from about 9 thousand to 1.8 million iterations at
//! 2048x2048), so static splits are unfair and load balancing matters.
//!
//! # The Tokio variants ([`Variant`])
//!
//! - **v1 [`Variant::Serial`]**: one task loops over every pixel. The tutorial's
//!   trace shows a single busy goroutine and every other processor idle.
//! - **v2 [`Variant::TaskPerPixel`]**: one `tokio::spawn` per pixel (4M tasks at
//!   2048x2048), all spawned, then all awaited. The tutorial: the scheduler is
//!   flooded, tasks wait long to be scheduled, memory balloons, and it is slower
//!   than v3 although "more concurrent".
//! - **v3 [`Variant::TaskPerColumn`]**: one task per column. The tutorial: good
//!   parallelism with little overhead; tasks are coarse enough to amortize
//!   scheduling.
//! - **v4 [`Variant::WorkerPoolPixels`]**: a pool of `workers` tasks fed single
//!   pixels over a `tokio::sync::mpsc` channel of capacity 1 (Go uses an
//!   unbuffered channel; Tokio's minimum capacity is 1, the closest). The
//!   tutorial: workers spend most of their time blocked on the channel, and it is
//!   slow.
//! - **v5 [`Variant::WorkerPoolColumns`]**: a pool of `workers` tasks fed column
//!   indices over a channel buffered to the width. The tutorial's best: the
//!   feeder never blocks and workers block only briefly.
//!
//! Tokio's mpsc has a single receiver, so the pools share it behind a
//! `tokio::sync::Mutex` held only while receiving (Go's channel takes its own
//! lock on every receive too). Results are written without per-pixel locking:
//! v2's tasks return their pixel through their `JoinHandle`; the others store
//! into a shared buffer of `AtomicU8` cells with `Relaxed` stores (plain byte
//! stores on x86-64/aarch64), each pixel written by exactly one task, read only
//! after every writer has been joined. A `Mutex` per pixel would measure the
//! lock, not the scheduler.
//!
//! # The peers ([`Peer`], not Tokio)
//!
//! - [`Peer::Rayon`]: rayon's work-stealing pool over columns, in place.
//! - [`Peer::ThreadScope`]: `std::thread::scope` threads taking the next column
//!   from an atomic counter.
//!
//! # Entry points
//!
//! [`render`] runs on the current Tokio runtime (instrument it however you
//! like); [`run`] builds a multi-thread runtime with `workers` worker threads;
//! [`run_peer`] runs a peer. `workers == 0` means [`default_workers`].
//!
//! ```
//! use taskline_mandelbrot::{Peer, Variant, run, run_peer};
//!
//! # fn main() -> Result<(), taskline_mandelbrot::RenderError> {
//! let serial = run(Variant::Serial, 48, 32, 2)?;
//! for variant in Variant::ALL {
//!     assert_eq!(run(variant, 48, 32, 2)?, serial, "{variant}");
//! }
//! assert_eq!(run_peer(Peer::Rayon, 48, 32, 2)?, serial);
//! assert_eq!(serial.get(0, 0), Some(73));
//! println!("{:#x}", serial.checksum());
//! # Ok(())
//! # }
//! ```

mod canvas;
mod error;
mod image;
mod peers;
mod pixel;
mod render;
mod suite;
mod variant;

pub use error::RenderError;
pub use image::{Image, MAX_PIXELS};
pub use peers::{render_rayon, render_thread_scope, run_peer};
pub use pixel::{COMPLEXITY, MAX_ITERATIONS, go_uint8, norm, pixel};
#[doc(hidden)]
pub use pixel::{final_x, pixel_saturating};
pub use render::{MAX_WORKERS, Spawn, TokioSpawn, default_workers, render, render_with, run};
pub use suite::{Renderer, Suite};
pub use variant::{Peer, UnknownName, Variant};
