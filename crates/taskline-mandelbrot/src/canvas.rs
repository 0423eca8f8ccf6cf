//! A shared, lock-free pixel buffer for tasks and threads that write disjoint pixels.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{Image, MAX_PIXELS, RenderError};

/// Column-major pixels that many tasks may write at once, like Go's
/// `image.Gray` written by many goroutines.
///
/// Each cell is an `AtomicU8` written with `Relaxed` stores, which compile to
/// plain byte stores on x86-64 and aarch64: no lock, no per-pixel
/// synchronization cost, and no `unsafe`. Every pixel is written by exactly one
/// task; the reader ([`Canvas::to_image`]) runs only after every writer has been
/// joined (`JoinHandle`/`thread::scope`), which orders all the stores before the loads.
pub(crate) struct Canvas {
    width: u32,
    height: u32,
    cells: Box<[AtomicU8]>,
}

impl Canvas {
    /// A zeroed canvas; fails if the image would exceed [`MAX_PIXELS`].
    pub(crate) fn new(width: u32, height: u32) -> Result<Canvas, RenderError> {
        let len = checked_len(width, height)?;
        let cells = (0..len).map(|_| AtomicU8::new(0)).collect();
        Ok(Canvas {
            width,
            height,
            cells,
        })
    }

    /// Stores pixel `(i, j)`; out-of-range coordinates are ignored.
    #[inline]
    pub(crate) fn set(&self, i: u32, j: u32, value: u8) {
        let idx = i as usize * self.height as usize + j as usize;
        if let Some(cell) = self.cells.get(idx) {
            cell.store(value, Ordering::Relaxed);
        }
    }

    /// Computes and stores every pixel of column `i`.
    #[inline]
    pub(crate) fn render_column(&self, i: u32) {
        for j in 0..self.height {
            self.set(i, j, crate::pixel(i, j, self.width, self.height));
        }
    }

    /// Copies the pixels out; call only after every writer has been joined.
    pub(crate) fn to_image(&self) -> Image {
        let data = self
            .cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Image::from_parts(self.width, self.height, data)
    }
}

/// `width * height` as a `usize`, or [`RenderError::TooLarge`].
pub(crate) fn checked_len(width: u32, height: u32) -> Result<usize, RenderError> {
    let len = u64::from(width) * u64::from(height);
    if len > MAX_PIXELS {
        return Err(RenderError::TooLarge { width, height });
    }
    usize::try_from(len).map_err(|_| RenderError::TooLarge { width, height })
}
