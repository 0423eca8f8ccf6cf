//! The Tokio variants (v1..v5) and the runtime that runs them.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::canvas::{Canvas, checked_len};
use crate::{Image, RenderError, Variant, pixel};

/// Most worker threads/tasks a caller may ask for. Bigger requests get
/// [`RenderError::TooManyWorkers`] rather than thousands of OS threads.
pub const MAX_WORKERS: usize = 1024;

/// The default worker count: `std::thread::available_parallelism()`, or 1 if unknown.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `0` means [`default_workers`]; more than [`MAX_WORKERS`] is an error.
pub(crate) fn resolve_workers(workers: usize) -> Result<usize, RenderError> {
    match workers {
        0 => Ok(default_workers()),
        n if n > MAX_WORKERS => Err(RenderError::TooManyWorkers(n)),
        n => Ok(n),
    }
}

/// How the variants spawn their tasks: [`TokioSpawn`] is `tokio::spawn`; a
/// benchmark or a tool that instruments futures (rather than the runtime)
/// wraps each future in its own implementation and passes it to
/// [`render_with`], so every configuration runs exactly the same variants.
///
/// Implementations should be `#[track_caller]` and end in a spawn marked so
/// (like `tokio::spawn`), so each variant's tasks keep their own spawn site.
///
/// ```
/// use taskline_mandelbrot::{Spawn, Variant, render_with};
/// use tokio::task::JoinHandle;
///
/// /// Counts the tasks a variant spawns.
/// #[derive(Clone, Default)]
/// struct Counting(std::sync::Arc<std::sync::atomic::AtomicUsize>);
/// impl Spawn for Counting {
///     #[track_caller]
///     fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
///     where
///         F: std::future::Future + Send + 'static,
///         F::Output: Send + 'static,
///     {
///         self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         tokio::spawn(future)
///     }
/// }
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let counting = Counting::default();
/// rt.block_on(render_with(&counting, Variant::TaskPerColumn, 8, 8, 2)).unwrap();
/// assert_eq!(counting.0.load(std::sync::atomic::Ordering::Relaxed), 1 + 8); // driver + columns
/// ```
pub trait Spawn: Clone + Send + Sync + 'static {
    /// Spawns `future` on the current runtime.
    #[track_caller]
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

/// Plain `tokio::spawn`, what [`render`] uses.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioSpawn;

impl Spawn for TokioSpawn {
    #[inline]
    #[track_caller]
    fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(future)
    }
}

/// Renders a `width` x `height` image with `variant` on the **current** Tokio
/// runtime (any flavor), so the caller chooses and instruments the runtime.
///
/// `workers` is the pool size of v4/v5 (`0` = [`default_workers`]); the other
/// variants ignore it. Everything, including the loop that spawns tasks or feeds
/// the channel (Go's main goroutine), runs inside one spawned "driver" task, so
/// all the work happens on runtime workers wherever this future is awaited.
///
/// Dropping this future before it completes does not cancel the tasks already
/// spawned; they finish (or die with the runtime) in the background.
///
/// Memory: besides the image, v2 keeps one task and `JoinHandle` per pixel alive
/// until it is awaited (1.8 GB peak RSS at 2048x2048, the point of that variant);
/// the others hold at most `width` tasks or `workers` tasks.
///
/// Errors: [`RenderError::NoRuntime`] outside a Tokio runtime,
/// [`RenderError::TooLarge`], [`RenderError::TooManyWorkers`], and
/// [`RenderError::Task`] if the runtime shuts down mid-render.
pub async fn render(
    variant: Variant,
    width: u32,
    height: u32,
    workers: usize,
) -> Result<Image, RenderError> {
    render_with(&TokioSpawn, variant, width, height, workers).await
}

/// [`render`], spawning every task (the driver included) through `spawner`.
pub async fn render_with<S: Spawn>(
    spawner: &S,
    variant: Variant,
    width: u32,
    height: u32,
    workers: usize,
) -> Result<Image, RenderError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(RenderError::NoRuntime);
    }
    let workers = resolve_workers(workers)?;
    let canvas = Arc::new(Canvas::new(width, height)?);
    let driver = {
        let canvas = Arc::clone(&canvas);
        let s = spawner.clone();
        spawner.spawn(async move {
            match variant {
                Variant::Serial => serial(&canvas, width),
                Variant::TaskPerPixel => task_per_pixel(&s, &canvas, width, height).await?,
                Variant::TaskPerColumn => task_per_column(&s, &canvas, width).await?,
                Variant::WorkerPoolPixels => {
                    pool_pixels(&s, &canvas, width, height, workers).await?
                }
                Variant::WorkerPoolColumns => pool_columns(&s, &canvas, width, workers).await?,
            }
            Ok::<(), RenderError>(())
        })
    };
    driver.await??;
    Ok(canvas.to_image())
}

/// Builds a multi-thread runtime with `workers` worker threads (`0` =
/// [`default_workers`]), renders with `variant` on it and shuts it down.
///
/// For repeated measurements build the runtime once and `block_on(render(..))`.
pub fn run(
    variant: Variant,
    width: u32,
    height: u32,
    workers: usize,
) -> Result<Image, RenderError> {
    let workers = resolve_workers(workers)?;
    checked_len(width, height)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .map_err(RenderError::Runtime)?;
    runtime.block_on(render(variant, width, height, workers))
}

/// v1: the serial loop, inside the driver task.
fn serial(canvas: &Canvas, width: u32) {
    for i in 0..width {
        canvas.render_column(i);
    }
}

/// v2: one task per pixel, all spawned, then all awaited (Go's `WaitGroup`).
/// Each task returns its pixel through its `JoinHandle`, so the tasks share
/// nothing (not even a reference count); the driver stores the results.
async fn task_per_pixel<S: Spawn>(
    spawner: &S,
    canvas: &Canvas,
    width: u32,
    height: u32,
) -> Result<(), RenderError> {
    let mut handles = Vec::with_capacity(checked_len(width, height)?);
    for i in 0..width {
        for j in 0..height {
            handles.push(spawner.spawn(async move { pixel(i, j, width, height) }));
        }
    }
    let mut handles = handles.into_iter();
    for i in 0..width {
        for j in 0..height {
            if let Some(handle) = handles.next() {
                canvas.set(i, j, handle.await?);
            }
        }
    }
    Ok(())
}

/// v3: one task per column, writing its column into the shared canvas.
async fn task_per_column<S: Spawn>(
    spawner: &S,
    canvas: &Arc<Canvas>,
    width: u32,
) -> Result<(), RenderError> {
    let handles: Vec<_> = (0..width)
        .map(|i| {
            let canvas = Arc::clone(canvas);
            spawner.spawn(async move { canvas.render_column(i) })
        })
        .collect();
    for handle in handles {
        handle.await?;
    }
    Ok(())
}

/// v4: `workers` tasks fed single pixels.
///
/// Go uses an unbuffered (rendezvous) channel; Tokio's bounded mpsc needs a
/// capacity of at least 1, so capacity 1 is the closest: the sender can be at
/// most one pixel ahead and otherwise waits for a worker. Tokio's mpsc has one
/// receiver, so the pool shares it behind a `tokio::sync::Mutex` held only while
/// receiving (Go's channel also takes its internal lock on every receive).
async fn pool_pixels<S: Spawn>(
    spawner: &S,
    canvas: &Arc<Canvas>,
    width: u32,
    height: u32,
    workers: usize,
) -> Result<(), RenderError> {
    let (tx, rx) = mpsc::channel::<(u32, u32)>(1);
    let rx = Arc::new(Mutex::new(rx));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (rx, canvas) = (Arc::clone(&rx), Arc::clone(canvas));
            spawner.spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some((i, j)) = next else { break };
                    canvas.set(i, j, pixel(i, j, width, height));
                }
            })
        })
        .collect();
    'feed: for i in 0..width {
        for j in 0..height {
            if tx.send((i, j)).await.is_err() {
                break 'feed; // every worker is gone; joining them reports why
            }
        }
    }
    drop(tx);
    for handle in handles {
        handle.await?;
    }
    Ok(())
}

/// v5: `workers` tasks fed column indices over a channel buffered to the width,
/// so the feeder never waits; same shared receiver as [`pool_pixels`].
async fn pool_columns<S: Spawn>(
    spawner: &S,
    canvas: &Arc<Canvas>,
    width: u32,
    workers: usize,
) -> Result<(), RenderError> {
    let capacity = usize::try_from(width).unwrap_or(usize::MAX).max(1);
    let (tx, rx) = mpsc::channel::<u32>(capacity);
    let rx = Arc::new(Mutex::new(rx));
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (rx, canvas) = (Arc::clone(&rx), Arc::clone(canvas));
            spawner.spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(i) = next else { break };
                    canvas.render_column(i);
                }
            })
        })
        .collect();
    for i in 0..width {
        if tx.send(i).await.is_err() {
            break;
        }
    }
    drop(tx);
    for handle in handles {
        handle.await?;
    }
    Ok(())
}
