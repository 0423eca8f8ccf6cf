//! The per-pixel computation, bit-for-bit the Go tutorial's `pixel` function.

/// Escape radius squared: iteration stops once `x*x + y*y >= COMPLEXITY`
/// (the Go code's `const complexity = 1024`).
pub const COMPLEXITY: f64 = 1024.0;

/// Maximum number of iterations per pixel (the Go code's `const maxI = 1000`).
pub const MAX_ITERATIONS: u32 = 1000;

/// Maps `x` in `0..total` linearly onto the plane: `(max - min) * x / total - max`.
///
/// This is the Go tutorial's `norm`, evaluated in the same order
/// (`((max - min) * x) / total - max`, no fused multiply-add) so results are
/// bit-identical to Go on amd64. Note that with `min = -1, max = 2` it maps
/// `0..total` onto `[-2, 1)`, i.e. the formula subtracts `max`, not adds `min`.
#[inline]
pub fn norm(x: u32, total: u32, min: f64, max: f64) -> f64 {
    (max - min) * f64::from(x) / f64::from(total) - max
}

/// Go's `uint8(x)` for a `float64` as compiled for amd64: truncate toward zero to
/// `int32` (`CVTTSD2SL`), then keep the low byte.
///
/// Rust's `x as u8` saturates instead (`-1.5 as u8 == 0`, Go gives 255), which
/// changes about 1.8 million of the 2048x2048 image's pixels. Values outside the
/// `i32` range and NaN become `0x8000_0000` on amd64, whose low byte is 0; Rust's
/// `as i32` would saturate them, so they are handled explicitly. (Within
/// [`pixel`] `|x|` never exceeds ~1027, so that branch is for completeness.)
#[inline]
pub fn go_uint8(x: f64) -> u8 {
    // CVTTSD2SL succeeds iff trunc(x) fits in i32, i.e. -2^31 - 1 < x < 2^31.
    if x < 2_147_483_648.0 && x > -2_147_483_649.0 {
        (x as i32) as u8
    } else {
        // NaN or out of range: the "integer indefinite" value 0x8000_0000.
        0
    }
}

/// The gray level of pixel `(i, j)` of a `width` x `height` image: column `i`
/// (the real axis, `xi = norm(i, width, -1, 2)` in `[-2, 1)`), row `j` (the
/// imaginary axis, `yi = norm(j, height, -1, 1)` in `[-1, 1)`).
///
/// Exact loop semantics, as in Go's
/// `for i := 0; (x*x+y*y < complexity) && i < maxI; i++ { x, y = x*x-y*y+xi, 2*x*y+yi }`:
/// start at `x = y = 0`; before each step test `x*x + y*y < 1024` first, then the
/// step count; perform at most [`MAX_ITERATIONS`] simultaneous updates
/// `x' = (x*x - y*y) + xi`, `y' = (2*x)*y + yi`. The result is [`go_uint8`] of the
/// final `x` (not an iteration count). All arithmetic is `f64`, unfused.
///
/// Never panics; a zero `width` or `height` yields NaN coordinates and pixel 0.
///
/// ```
/// use taskline_mandelbrot::pixel;
/// // Top-left corner, c = -2 - 1i: (0,0) -> (-2,-1) -> (1,3) -> (-10,5) -> (73,-101), escaped.
/// assert_eq!(pixel(0, 0, 2048, 2048), 73);
/// ```
#[inline]
pub fn pixel(i: u32, j: u32, width: u32, height: u32) -> u8 {
    go_uint8(final_x(i, j, width, height))
}

/// Like [`pixel`] but with Rust's saturating `x as u8`: the *wrong* conversion,
/// kept only to measure how many pixels it would change (see the crate tests).
#[doc(hidden)]
#[inline]
pub fn pixel_saturating(i: u32, j: u32, width: u32, height: u32) -> u8 {
    final_x(i, j, width, height) as u8
}

/// The final `x` of the iteration for pixel `(i, j)` (see [`pixel`]).
#[doc(hidden)]
#[inline]
pub fn final_x(i: u32, j: u32, width: u32, height: u32) -> f64 {
    escape(norm(i, width, -1.0, 2.0), norm(j, height, -1.0, 1.0))
}

/// Iterates `c = xi + yi*i` from 0 and returns the final `x` (see [`pixel`]).
///
/// Not inlined, so every variant runs the very same machine code per pixel.
/// `x*x` and `y*y` are computed once per step and shared by the escape test and
/// the update: the same operations, order and rounding as the Go expression.
/// When `xi` and `yi` were computed side by side in the caller, LLVM's SLP
/// vectorizer packed `x` and `y` into one register and the shuffles it added to
/// this latency-bound loop made it ~1.5x slower; taking them as two separate
/// arguments keeps the loop scalar (checked in the disassembly).
#[inline(never)]
fn escape(xi: f64, yi: f64) -> f64 {
    let (mut x, mut y) = (0.0_f64, 0.0_f64);
    let mut n = 0;
    loop {
        let (x2, y2) = (x * x, y * y);
        if !(x2 + y2 < COMPLEXITY && n < MAX_ITERATIONS) {
            return x;
        }
        y = 2.0 * x * y + yi; // uses the old x, like Go's tuple assignment
        x = x2 - y2 + xi;
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_matches_the_go_formula() {
        assert_eq!(norm(0, 2048, -1.0, 2.0), -2.0);
        assert_eq!(norm(1024, 2048, -1.0, 2.0), -0.5);
        assert_eq!(norm(0, 2048, -1.0, 1.0), -1.0);
        assert_eq!(norm(1024, 2048, -1.0, 1.0), 0.0);
        assert_eq!(norm(1, 4, -1.0, 2.0), -1.25);
    }

    #[test]
    fn go_uint8_truncates_then_wraps() {
        assert_eq!(go_uint8(73.9), 73);
        assert_eq!(go_uint8(-0.9), 0);
        assert_eq!(go_uint8(-1.5), 255);
        assert_eq!(go_uint8(-10.0), 246);
        assert_eq!(go_uint8(256.0), 0);
        assert_eq!(go_uint8(300.7), 44);
        assert_eq!(go_uint8(-1026.0), 254);
        assert_eq!(go_uint8(f64::NAN), 0);
        assert_eq!(go_uint8(1e10), 0);
        assert_eq!(go_uint8(-1e10), 0);
        assert_eq!(go_uint8(2_147_483_647.5), 255);
        assert_eq!(go_uint8(-2_147_483_648.5), 0);
    }

    #[test]
    fn corner_pixel_hand_checked() {
        // c = -2 - 1i; orbit (0,0) (-2,-1) (1,3) (-10,5) (73,-101): |z|^2 = 15530 >= 1024.
        assert_eq!(final_x(0, 0, 2048, 2048), 73.0);
        assert_eq!(pixel(0, 0, 2048, 2048), 73);
        assert_eq!(pixel(0, 0, 4, 4), 73);
    }

    #[test]
    fn negative_escape_wraps_like_go() {
        // 4x4 grid, pixel (1, 0): c = -1.25 - 1i. Orbit (exact binary fractions):
        // (0,0) -> (-1.25,-1) -> (-0.6875,1.5) -> (-3.02734375,-3.0625)
        // -> (-1.4640960693359375, 17.54248046875)   |z|^2 = 309.9 < 1024
        // -> (-306.845..., -52.367...)               escaped after 5 steps.
        let x4 = -1.4640960693359375_f64;
        let y4 = 17.54248046875_f64;
        assert_eq!((-3.02734375_f64).powi(2) - 3.0625_f64.powi(2) - 1.25, x4);
        let x5 = x4 * x4 - y4 * y4 + -1.25;
        assert!(-307.0 < x5 && x5 < -306.0);
        assert_eq!(final_x(1, 0, 4, 4), x5);
        // Go: uint8(int32(-306.8)) = uint8(-306) = 256 - 50 = 206.
        assert_eq!(pixel(1, 0, 4, 4), 206);
        // Rust's saturating cast would give 0: this is the pixel where they differ.
        assert_eq!(pixel_saturating(1, 0, 4, 4), 0);
    }

    #[test]
    fn in_set_pixel_runs_all_iterations() {
        // c = -0.5 + 0i converges to (1 - sqrt 3) / 2 = -0.366..., truncated to 0.
        assert_eq!(pixel(1024, 1024, 2048, 2048), 0);
        // c = -2 + 0i: orbit 0, -2, 2, 2, ... stays at 2 for all 1000 steps.
        assert_eq!(pixel(0, 1024, 2048, 2048), 2);
    }

    #[test]
    fn degenerate_sizes_do_not_panic() {
        assert_eq!(pixel(0, 0, 0, 0), 0);
        assert_eq!(
            pixel(u32::MAX, u32::MAX, 1, 1),
            pixel(u32::MAX, u32::MAX, 1, 1)
        );
    }
}
