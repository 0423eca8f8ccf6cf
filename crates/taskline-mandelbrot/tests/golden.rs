//! Pinned checksums ([`Image::checksum`], FNV-1a over the row-major pixels).
//!
//! The small ones (up to 256x256) were computed independently by a pure-Python
//! transcription of the Go code (IEEE f64 floats, `int(x) & 0xff` for Go's
//! amd64 `uint8(x)`, the same FNV-1a) and agree with the Rust renderers. The
//! 2048x2048 one was computed once by the serial variant in release mode.

use taskline_mandelbrot::{Image, Variant, pixel, pixel_saturating, run};

#[test]
fn small_images_match_the_independent_reference() {
    // Python reference (IEEE f64 floats, Go amd64 uint8 semantics), same FNV-1a.
    let pinned = [
        ((1, 1), 0x5f49_5707_0d45_16b4_u64),
        ((4, 4), 0xc5e0_b377_7fef_39b5),
        ((7, 5), 0x9b09_7ded_c31b_d95a),
        ((64, 48), 0xc4f6_1742_8696_25b3),
    ];
    for ((w, h), sum) in pinned {
        let image = run(Variant::WorkerPoolColumns, w, h, 2).expect("render");
        assert_eq!(image.checksum(), sum, "{w}x{h}: {:#x}", image.checksum());
    }
}

#[test]
fn checksum_256x256_is_pinned() {
    let image = run(Variant::TaskPerColumn, 256, 256, 2).expect("render");
    assert_eq!(image.checksum(), GOLDEN_256, "{:#x}", image.checksum());
}

const GOLDEN_256: u64 = 0x2139_f7b2_f61b_7398;

#[test]
#[ignore = "renders the tutorial's full 2048x2048 image (~4 billion flops); run with --release -- --ignored"]
fn checksum_2048x2048_is_pinned() {
    let image = run(Variant::Serial, 2048, 2048, 1).expect("render");
    assert_eq!(image.checksum(), GOLDEN_2048, "{:#x}", image.checksum());
    let pool = run(Variant::WorkerPoolColumns, 2048, 2048, 0).expect("render");
    assert_eq!(pool, image);
}

const GOLDEN_2048: u64 = 0x35fd_7076_b289_7e8c;

/// At 2048x2048, Rust's saturating `x as u8` changes 1,848,154 of the 4,194,304
/// pixels (44%) compared with Go's `uint8(x)` (= `(x as i32) as u8`): those whose
/// final `x` truncates outside `0..=255` (`x <= -1` gives 0 instead of the
/// wrapped byte, `x >= 256` gives 255), except where the wrapped byte happens to
/// be the same. Measured with `cargo test --release -p taskline-mandelbrot --test
/// golden -- --ignored`.
#[test]
#[ignore = "renders 2048x2048 twice; run with --release -- --ignored"]
fn saturating_cast_differs_on_many_pixels_at_2048() {
    let (w, h) = (2048, 2048);
    let mut differ = 0_u64;
    for i in 0..w {
        for j in 0..h {
            if pixel(i, j, w, h) != pixel_saturating(i, j, w, h) {
                differ += 1;
            }
        }
    }
    eprintln!("pixels where (x as i32) as u8 != x as u8: {differ}");
    assert_eq!(differ, SATURATING_DIFFERENCES_2048);
}

const SATURATING_DIFFERENCES_2048: u64 = 1_848_154;

#[test]
fn saturating_cast_differs_already_at_64x48() {
    let (w, h) = (64, 48);
    let go: Vec<u8> = (0..w)
        .flat_map(|i| (0..h).map(move |j| pixel(i, j, w, h)))
        .collect();
    let sat: Vec<u8> = (0..w)
        .flat_map(|i| (0..h).map(move |j| pixel_saturating(i, j, w, h)))
        .collect();
    let go = Image::from_column_major(w, h, go).expect("size");
    let sat = Image::from_column_major(w, h, sat).expect("size");
    let differ = go.count_differences(&sat).expect("same size");
    assert!(differ > 0);
    assert_ne!(go.checksum(), sat.checksum());
}
