//! Non-Tokio renderers, the yardsticks for the Tokio variants.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::canvas::{Canvas, checked_len};
use crate::render::resolve_workers;
use crate::{Image, Peer, RenderError, pixel};

/// Renders with `peer` on `threads` threads (`0` = [`crate::default_workers`]).
///
/// [`Peer::Rayon`] builds a dedicated rayon pool of that size for this call;
/// to exclude pool start-up from a measurement, `install` [`render_rayon`] in a
/// pool you keep. [`Peer::ThreadScope`] spawns its threads per call by design.
pub fn run_peer(peer: Peer, width: u32, height: u32, threads: usize) -> Result<Image, RenderError> {
    let threads = resolve_workers(threads)?;
    checked_len(width, height)?;
    match peer {
        Peer::Rayon => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|n| format!("mandel-rayon-{n}"))
                .build()
                .map_err(|e| RenderError::ThreadPool(e.to_string()))?;
            pool.install(|| render_rayon(width, height))
        }
        Peer::ThreadScope => render_thread_scope(width, height, threads),
    }
}

/// Rayon over columns on the *current* rayon pool (the global one unless called
/// inside `ThreadPool::install`): each column is one item of `par_chunks_mut`,
/// written in place, and rayon's adaptive splitting plus work stealing balances
/// the very unequal columns.
pub fn render_rayon(width: u32, height: u32) -> Result<Image, RenderError> {
    let mut data = vec![0_u8; checked_len(width, height)?];
    if height > 0 {
        data.par_chunks_mut(height as usize)
            .enumerate()
            .for_each(|(i, column)| {
                let i = i as u32; // i < width, a u32
                for (j, px) in (0..height).zip(column.iter_mut()) {
                    *px = pixel(i, j, width, height);
                }
            });
    }
    Ok(Image::from_parts(width, height, data))
}

/// `threads` scoped OS threads (`0` = [`crate::default_workers`]), each taking
/// the next column index from a shared atomic counter until none are left: the
/// simplest dynamic load balancing, with no channel and no task machinery.
pub fn render_thread_scope(width: u32, height: u32, threads: usize) -> Result<Image, RenderError> {
    let threads = resolve_workers(threads)?;
    let canvas = Canvas::new(width, height)?;
    let next = AtomicU64::new(0);
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Ok(i) = u32::try_from(i) else { break };
            if i >= width {
                break;
            }
            canvas.render_column(i);
        }
    };
    let spawned = std::thread::scope(|scope| {
        let mut result = Ok(());
        for n in 0..threads {
            let spawn = std::thread::Builder::new()
                .name(format!("mandel-scope-{n}"))
                .spawn_scoped(scope, worker);
            if let Err(e) = spawn {
                result = Err(RenderError::Runtime(e));
                break;
            }
        }
        result
    });
    spawned?;
    Ok(canvas.to_image())
}
