//! [`Suite`]: every renderer of the tutorial's comparison (the five Tokio
//! variants and the two non-Tokio peers), run the same way by every
//! measurement: the criterion bench (`cargo bench --bench mandelbrot`) and
//! the `compare` example's ratio table. The Tokio runtime and the rayon pool
//! are built once, outside any timing; the thread-scope peer spawns its
//! threads per run by design.

use std::fmt;

use crate::{Image, Peer, RenderError, Variant, render, render_rayon, render_thread_scope};

/// One renderer of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Renderer {
    /// A Tokio variant, on the suite's runtime.
    Tokio(Variant),
    /// A non-Tokio yardstick.
    Peer(Peer),
}

impl Renderer {
    /// Every renderer, in table order: the Tokio variants, then the peers.
    pub const ALL: [Renderer; Variant::ALL.len() + Peer::ALL.len()] = [
        Renderer::Tokio(Variant::ALL[0]),
        Renderer::Tokio(Variant::ALL[1]),
        Renderer::Tokio(Variant::ALL[2]),
        Renderer::Tokio(Variant::ALL[3]),
        Renderer::Tokio(Variant::ALL[4]),
        Renderer::Peer(Peer::ALL[0]),
        Renderer::Peer(Peer::ALL[1]),
    ];
}

impl fmt::Display for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Renderer::Tokio(v) => write!(f, "{v}"),
            Renderer::Peer(p) => write!(f, "{p} (not tokio)"),
        }
    }
}

/// The runtime and pool every renderer of one measurement runs on.
///
/// ```
/// use taskline_mandelbrot::{Renderer, Suite};
/// let suite = Suite::new(32, 2).unwrap();
/// let first = suite.run(Renderer::ALL[0]).unwrap();
/// for r in Renderer::ALL {
///     assert_eq!(suite.run(r).unwrap(), first, "{r} renders the same image");
/// }
/// ```
pub struct Suite {
    size: u32,
    workers: usize,
    runtime: tokio::runtime::Runtime,
    pool: rayon::ThreadPool,
}

impl Suite {
    /// A suite for `size` x `size` images with `workers` Tokio worker
    /// threads (also the pool size of v4/v5, the rayon threads and the
    /// scoped threads; `0` = [`crate::default_workers`]).
    pub fn new(size: u32, workers: usize) -> Result<Suite, RenderError> {
        let workers = crate::render::resolve_workers(workers)?;
        crate::canvas::checked_len(size, size)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .build()
            .map_err(RenderError::Runtime)?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map_err(|e| RenderError::ThreadPool(e.to_string()))?;
        Ok(Suite {
            size,
            workers,
            runtime,
            pool,
        })
    }

    /// The image side.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The worker count every renderer uses.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Renders one image with `renderer`.
    pub fn run(&self, renderer: Renderer) -> Result<Image, RenderError> {
        let (size, workers) = (self.size, self.workers);
        match renderer {
            Renderer::Tokio(v) => self.runtime.block_on(render(v, size, size, workers)),
            Renderer::Peer(Peer::Rayon) => self.pool.install(|| render_rayon(size, size)),
            Renderer::Peer(Peer::ThreadScope) => render_thread_scope(size, size, workers),
        }
    }
}
