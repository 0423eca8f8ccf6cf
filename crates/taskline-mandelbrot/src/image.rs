//! The rendered image: dimensions, column-major pixels, checksum and PNG output.

use std::fmt;
use std::io::Write;
use std::path::Path;

/// Largest image (in pixels) the renderers accept: 2^28 (e.g. 16384x16384,
/// 256 MiB of pixels). Bigger requests get [`crate::RenderError::TooLarge`]
/// instead of an allocation failure.
pub const MAX_PIXELS: u64 = 1 << 28;

/// A grayscale image, 8 bits per pixel, stored **column-major**: pixel
/// `(i, j)` (column `i` in `0..width`, row `j` in `0..height`) is
/// `data[i * height + j]`.
///
/// Column-major because every parallel variant hands out whole columns, so a
/// column is one contiguous slice. PNG output and [`Image::checksum`] use the
/// usual row-major scanline order, so neither depends on this choice.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl Image {
    /// Builds an image from column-major pixel data; `None` if
    /// `data.len() != width * height`.
    pub fn from_column_major(width: u32, height: u32, data: Vec<u8>) -> Option<Image> {
        let expected = u64::from(width) * u64::from(height);
        (data.len() as u64 == expected).then_some(Image {
            width,
            height,
            data,
        })
    }

    /// Crate-internal constructor for data already known to be `width * height` long.
    pub(crate) fn from_parts(width: u32, height: u32, data: Vec<u8>) -> Image {
        debug_assert_eq!(data.len() as u64, u64::from(width) * u64::from(height));
        Image {
            width,
            height,
            data,
        }
    }

    /// Number of columns (the real axis).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Number of rows (the imaginary axis).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels, column-major (see the type documentation).
    pub fn as_column_major(&self) -> &[u8] {
        &self.data
    }

    /// Pixel at column `i`, row `j`; `None` outside the image.
    pub fn get(&self, i: u32, j: u32) -> Option<u8> {
        if i >= self.width || j >= self.height {
            return None;
        }
        let idx = i as usize * self.height as usize + j as usize;
        self.data.get(idx).copied()
    }

    /// The pixels in row-major (PNG scanline) order: row 0 left to right, then row 1, ...
    pub fn to_row_major(&self) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut out = Vec::with_capacity(self.data.len());
        for j in 0..h {
            out.extend((0..w).map(|i| self.data[i * h + j]));
        }
        out
    }

    /// 64-bit FNV-1a over `width` (u32 little-endian), `height` (u32
    /// little-endian), then every pixel in row-major order.
    ///
    /// FNV-1a: start from `0xcbf29ce484222325`; for each byte `b`,
    /// `hash = (hash ^ b) * 0x100000001b3` (wrapping). Not cryptographic; it
    /// pins images in tests and tells runs apart.
    pub fn checksum(&self) -> u64 {
        let mut hash = Fnv1a::new();
        hash.write(&self.width.to_le_bytes());
        hash.write(&self.height.to_le_bytes());
        let (w, h) = (self.width as usize, self.height as usize);
        for j in 0..h {
            for i in 0..w {
                hash.write(&[self.data[i * h + j]]);
            }
        }
        hash.finish()
    }

    /// Number of pixels that differ from `other`; `None` if the sizes differ.
    pub fn count_differences(&self, other: &Image) -> Option<usize> {
        if self.width != other.width || self.height != other.height {
            return None;
        }
        Some(
            self.data
                .iter()
                .zip(&other.data)
                .filter(|(a, b)| a != b)
                .count(),
        )
    }

    /// Writes the image as an 8-bit grayscale PNG. Fails (PNG forbids it) for
    /// a zero width or height, or if the writer fails.
    pub fn write_png<W: Write>(&self, writer: W) -> Result<(), png::EncodingError> {
        let mut encoder = png::Encoder::new(writer, self.width, self.height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.to_row_major())?;
        writer.finish()
    }

    /// Writes the image as an 8-bit grayscale PNG file at `path`.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<(), png::EncodingError> {
        let file = std::fs::File::create(path)?;
        let mut out = std::io::BufWriter::new(file);
        self.write_png(&mut out)?;
        out.flush()?;
        Ok(())
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("checksum", &format_args!("{:#018x}", self.checksum()))
            .finish()
    }
}

/// 64-bit FNV-1a state.
struct Fnv1a(u64);

impl Fnv1a {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv1a(Self::OFFSET)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Self::PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vectors() {
        // Published FNV-1a 64 test vectors.
        let mut h = Fnv1a::new();
        assert_eq!(h.finish(), 0xcbf29ce484222325);
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
        let mut h = Fnv1a::new();
        h.write(b"foobar");
        assert_eq!(h.finish(), 0x85944171f73967e8);
    }

    #[test]
    fn layout_and_row_major() {
        // 3 columns, 2 rows; column-major data.
        let img = Image::from_column_major(3, 2, vec![1, 2, 3, 4, 5, 6]).expect("size matches");
        assert_eq!(img.get(0, 1), Some(2));
        assert_eq!(img.get(2, 0), Some(5));
        assert_eq!(img.get(3, 0), None);
        assert_eq!(img.get(0, 2), None);
        assert_eq!(img.to_row_major(), vec![1, 3, 5, 2, 4, 6]);
        assert!(Image::from_column_major(3, 2, vec![0; 5]).is_none());
    }

    #[test]
    fn checksum_depends_on_shape_and_pixels() {
        let a = Image::from_column_major(2, 2, vec![1, 2, 3, 4]).expect("size");
        let b = Image::from_column_major(4, 1, vec![1, 3, 2, 4]).expect("size");
        assert_eq!(a.to_row_major(), b.to_row_major());
        assert_ne!(a.checksum(), b.checksum());
        let c = Image::from_column_major(2, 2, vec![1, 2, 3, 5]).expect("size");
        assert_ne!(a.checksum(), c.checksum());
        assert_eq!(a.count_differences(&c), Some(1));
        assert_eq!(a.count_differences(&b), None);
    }

    #[test]
    fn png_round_trip() {
        let img = Image::from_column_major(3, 2, vec![0, 255, 7, 8, 9, 10]).expect("size");
        let mut bytes = Vec::new();
        img.write_png(&mut bytes).expect("encode");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        assert_eq!(&buf[..info.buffer_size()], &img.to_row_major()[..]);
    }

    #[test]
    fn empty_png_is_an_error_not_a_panic() {
        let img = Image::from_column_major(0, 5, Vec::new()).expect("size");
        assert!(img.write_png(Vec::new()).is_err());
    }
}
