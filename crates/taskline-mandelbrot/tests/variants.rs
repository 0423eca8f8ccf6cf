//! Every Tokio variant and every peer renders the same bytes, on real runtimes.

use taskline_mandelbrot::{
    Image, MAX_WORKERS, Peer, RenderError, Variant, pixel, render, render_rayon, run, run_peer,
};

/// The image computed directly from `pixel`, independent of every renderer.
fn reference(width: u32, height: u32) -> Image {
    let mut data = Vec::new();
    for i in 0..width {
        for j in 0..height {
            data.push(pixel(i, j, width, height));
        }
    }
    Image::from_column_major(width, height, data).expect("width * height pixels")
}

const SIZES: [(u32, u32); 6] = [(64, 48), (1, 1), (7, 5), (5, 7), (33, 1), (1, 17)];

#[test]
fn every_variant_and_peer_matches_the_reference() {
    for (w, h) in SIZES {
        let expected = reference(w, h);
        for variant in Variant::ALL {
            for workers in [1, 2, 3] {
                let image = run(variant, w, h, workers).expect("render");
                assert_eq!(image, expected, "{variant} {w}x{h} workers={workers}");
            }
        }
        for peer in Peer::ALL {
            for threads in [1, 3] {
                let image = run_peer(peer, w, h, threads).expect("render");
                assert_eq!(image, expected, "{peer} {w}x{h} threads={threads}");
            }
        }
    }
}

#[test]
fn default_worker_count_is_accepted() {
    let expected = reference(16, 12);
    for variant in Variant::ALL {
        assert_eq!(
            run(variant, 16, 12, 0).expect("render"),
            expected,
            "{variant}"
        );
    }
    for peer in Peer::ALL {
        assert_eq!(
            run_peer(peer, 16, 12, 0).expect("render"),
            expected,
            "{peer}"
        );
    }
}

#[test]
fn render_runs_on_the_callers_runtime_of_either_flavor() {
    let expected = reference(40, 30);
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    for variant in Variant::ALL {
        let a = current
            .block_on(render(variant, 40, 30, 4))
            .expect("current_thread");
        assert_eq!(a, expected, "{variant} current_thread");
        // Awaited from inside a task, as an instrumented application would.
        let b = multi
            .block_on(async { tokio::spawn(render(variant, 40, 30, 3)).await })
            .expect("join")
            .expect("render");
        assert_eq!(b, expected, "{variant} inside a task");
    }
    // Only the variants' own tasks ran: nothing is left behind on the runtime.
    // A worker releases a finished task just after its JoinHandle sees the
    // output, so give the count a moment to settle instead of racing it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while multi.metrics().num_alive_tasks() != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(multi.metrics().num_alive_tasks(), 0);
}

#[test]
fn rayon_on_the_global_pool_matches() {
    assert_eq!(render_rayon(50, 20).expect("render"), reference(50, 20));
}

#[test]
fn empty_images_render_without_tasks() {
    for variant in Variant::ALL {
        for (w, h) in [(0, 0), (0, 9), (9, 0)] {
            let image = run(variant, w, h, 2).expect("empty render");
            assert_eq!((image.width(), image.height()), (w, h));
            assert!(image.as_column_major().is_empty());
        }
    }
    for peer in Peer::ALL {
        assert!(
            run_peer(peer, 9, 0, 2)
                .expect("empty")
                .as_column_major()
                .is_empty()
        );
    }
}

#[test]
fn hostile_sizes_and_worker_counts_are_errors() {
    for variant in Variant::ALL {
        let err = run(variant, u32::MAX, u32::MAX, 1).expect_err("too large");
        assert!(matches!(err, RenderError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("4294967295x4294967295"), "{err}");
        let err = run(variant, 4, 4, MAX_WORKERS + 1).expect_err("too many workers");
        assert!(matches!(err, RenderError::TooManyWorkers(_)), "{err}");
    }
    for peer in Peer::ALL {
        let err = run_peer(peer, 1 << 20, 1 << 20, 1).expect_err("too large");
        assert!(matches!(err, RenderError::TooLarge { .. }), "{err}");
        let err = run_peer(peer, 4, 4, usize::MAX).expect_err("too many threads");
        assert!(matches!(err, RenderError::TooManyWorkers(_)), "{err}");
    }
}

#[test]
fn render_outside_a_runtime_is_an_error() {
    // A minimal executor that is not Tokio: poll once with a no-op waker.
    let mut future = std::pin::pin!(render(Variant::Serial, 4, 4, 1));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(RenderError::NoRuntime)) => {}
        other => panic!("expected NoRuntime, got {other:?}"),
    }
}
