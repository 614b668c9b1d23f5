//! The per-image work of preprocessing: JPEG decode (with DCT-domain downscaling), resize "fill"
//! (short side to the target, centre crop), JPEG encode. One [`Transformer`] per thread keeps its
//! codec handles and buffers, so the hot loop does not allocate.
//!
//! libjpeg-turbo has SIMD inverse DCTs only for 8x8, 4x4, 2x2 and 1x1 outputs, so the decoder
//! DCT-scales only by 1/8, 2/8 or 4/8 and decodes at full size where 5/8-7/8 would fit (those
//! run plain-C IDCTs, 10x10-14x14 for 4:2:0 chroma, and measured slower than full size).
//!
//! The decoder only decodes the centre square the fill crop keeps (plus the resize filter's
//! margin), which gives the same pixels as decoding the whole photo. By default it decodes as
//! libjpeg does by default (accurate IDCT, smooth chroma upsampling); [`DecodeMode::Fast`]
//! trades about 3% of preprocessing time for pixels that move by 40-53 dB PSNR.

use fast_image_resize as fir;
use std::sync::{Condvar, Mutex};
use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

pub use crate::jpeg::DecodeMode;
use crate::jpeg::{Decoder, Header, Region};

/// Chroma subsampling of the output JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// 4:4:4, full-resolution colour (TensorFlow's `encode_jpeg` default, the coursework's).
    Full444,
    /// 4:2:0, colour at half resolution both ways (smaller files, faster).
    Half420,
}

/// The name `--chroma` takes.
impl std::fmt::Display for Chroma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Chroma::Full444 => "444",
            Chroma::Half420 => "420",
        })
    }
}

impl std::str::FromStr for Chroma {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "444" | "4:4:4" => Ok(Chroma::Full444),
            "420" | "4:2:0" => Ok(Chroma::Half420),
            _ => Err(format!(
                "unknown chroma subsampling {s:?} (expected 444 or 420)"
            )),
        }
    }
}

/// Resize filter for the fill resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Antialiased bilinear (triangle) convolution, like Pillow's BILINEAR and TF's
    /// `resize(antialias=True)`.
    Bilinear,
    /// Catmull-Rom bicubic convolution.
    Bicubic,
    /// Lanczos-3 convolution.
    Lanczos3,
}

impl std::str::FromStr for Filter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bilinear" => Ok(Filter::Bilinear),
            "bicubic" => Ok(Filter::Bicubic),
            "lanczos3" => Ok(Filter::Lanczos3),
            _ => Err(format!(
                "unknown filter {s:?} (expected bilinear, bicubic or lanczos3)"
            )),
        }
    }
}

/// The name `--filter` takes.
impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Filter::Bilinear => "bilinear",
            Filter::Bicubic => "bicubic",
            Filter::Lanczos3 => "lanczos3",
        })
    }
}

/// Largest output side accepted: a 4096 x 4096 RGB image is 48 MiB in each worker's buffers,
/// already far past any photo set this is for; beyond it a typo only exhausts memory.
pub const MAX_SIZE: u32 = 4096;

/// Settings of the per-image work.
#[derive(Clone, Debug)]
pub struct TransformOptions {
    /// Output side in pixels (square).
    pub size: u32,
    /// JPEG quality 1..=100.
    pub quality: u8,
    pub chroma: Chroma,
    pub filter: Filter,
    /// Let the decoder shrink by M/8 in the DCT domain while the short side stays >= `size`.
    pub dct_scaling: bool,
    /// IDCT and chroma upsampling: accurate (the default) or fast.
    pub decode: DecodeMode,
}

impl TransformOptions {
    /// Checks the size and quality before any buffer is sized from them, with a message naming
    /// the command-line option and the range it takes (`--size 0` used to fail as "encode
    /// failed: ...", reading like a broken codec rather than a bad option).
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_SIZE).contains(&self.size) {
            return Err(format!(
                "--size {}: the output side must be 1 to {MAX_SIZE} pixels",
                self.size
            ));
        }
        if !(1..=100).contains(&self.quality) {
            return Err(format!(
                "--quality {}: the JPEG quality must be 1 to 100",
                self.quality
            ));
        }
        Ok(())
    }
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            size: 192,
            quality: 95,
            chroma: Chroma::Full444,
            filter: Filter::Bilinear,
            dct_scaling: true,
            decode: DecodeMode::Accurate,
        }
    }
}

/// Why one input image could not be transformed (reported and skipped by preprocessing).
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("empty file")]
    Empty,
    #[error("not a JPEG file (starts with {0:02x?})")]
    NotJpeg(Vec<u8>),
    #[error("corrupt or truncated JPEG: {0}")]
    Corrupt(String),
    #[error("image too large ({0}x{1})")]
    TooLarge(usize, usize),
    #[error("resize failed: {0}")]
    Resize(String),
    #[error("encode failed: {0}")]
    Encode(String),
    /// Options no image can be transformed with (see [`TransformOptions::check`]).
    #[error("{0}")]
    Options(String),
}

/// Reject absurd headers before allocating (a corrupt file can claim 65535x65535).
const MAX_PIXELS: usize = 100_000_000;

/// Bytes decoding an image may take (its full-size output and, if progressive, the decoder's
/// coefficients: [`crate::jpeg::Header::decode_bytes`]) without asking [`Reservation`] for
/// room: 32 MiB, an 11-megapixel baseline photo. The flowers photos need under 2 MB.
const OWN_BYTES: usize = 32 << 20;

/// What the larger images being decoded at one time may take together, over all threads: a
/// 390 KB JPEG can declare 100 megapixels (300 MB of RGB), and sixteen threads each decoding
/// one took 4.7 GB. An image that needs more than this (a progressive CMYK one of 100
/// megapixels: 1.2 GB) still decodes, alone.
const SHARED_BYTES: usize = 1 << 30;

/// The bytes reserved by the images being decoded past [`OWN_BYTES`], and the signal that some
/// were given back.
static RESERVED: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Room for one large image's decoding, held until it is dropped: taken when the bytes fit in
/// [`SHARED_BYTES`] beside what others hold, or when nothing else is held. Each thread holds at
/// most one and gives it back when its image is done, so a wait always ends.
#[derive(Debug)]
struct Reservation(usize);

impl Reservation {
    fn take(bytes: usize) -> Reservation {
        let (lock, freed) = &RESERVED;
        let mut used = lock.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && used.saturating_add(bytes) > SHARED_BYTES {
            used = freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Reservation(bytes)
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let (lock, freed) = &RESERVED;
        let mut used = lock.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.0;
        freed.notify_all();
    }
}

/// A decoded RGB image.
#[derive(Clone, Debug, Default)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Smallest M in 1..=8 with ceil(short * M / 8) >= `target`, i.e. the most DCT-domain shrinking
/// that keeps enough pixels for the final resize.
pub fn dct_scale_for(short_side: usize, target: usize) -> usize {
    (1..=8)
        .find(|&m| (short_side * m).div_ceil(8) >= target)
        .unwrap_or(8)
}

/// Source rectangle (left, top, width, height) of a centred crop with the aspect of a square.
pub fn fill_crop(width: u32, height: u32) -> (f64, f64, f64, f64) {
    let side = width.min(height) as f64;
    (
        (width as f64 - side) / 2.0,
        (height as f64 - side) / 2.0,
        side,
        side,
    )
}

/// Checks the first bytes (SOI marker) so non-JPEG files get a clear reason.
pub fn check_jpeg_magic(data: &[u8]) -> Result<(), TransformError> {
    if data.is_empty() {
        return Err(TransformError::Empty);
    }
    if data.len() < 3 || data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF {
        return Err(TransformError::NotJpeg(data[..data.len().min(4)].to_vec()));
    }
    Ok(())
}

/// Filter support radius in output-scale pixels (fast_image_resize's values).
fn filter_support(filter: Filter) -> f64 {
    match filter {
        Filter::Bilinear => 1.0,
        Filter::Bicubic => 2.0,
        Filter::Lanczos3 => 3.0,
    }
}

/// Decoder, resizer and encoder with their reusable buffers.
pub struct Transformer {
    opts: TransformOptions,
    dec: Decoder,
    enc: Compressor,
    resizer: fir::Resizer,
    decoded: Rgb,
    /// The fill crop (left, top, side) in the coordinates of `decoded`.
    crop: (f64, f64, f64),
    resized: Vec<u8>,
    /// The encoder's output buffer (worst-case size).
    encoded: Vec<u8>,
    /// Only DCT-scale by 1/8, 2/8 or 4/8 (see [`Transformer::set_simd_scales_only`]).
    simd_scales_only: bool,
    /// Decode only the region the fill crop and the resize filter read (see
    /// [`Transformer::set_region_decode`]).
    region_decode: bool,
    /// Room held for the last image decoded, when it was larger than [`OWN_BYTES`].
    reserved: Option<Reservation>,
}

impl Transformer {
    pub fn new(opts: &TransformOptions) -> Result<Self, TransformError> {
        opts.check().map_err(TransformError::Options)?;
        let dec = Decoder::new(opts.decode).map_err(TransformError::Corrupt)?;
        let mut enc = Compressor::new().map_err(|e| TransformError::Encode(e.to_string()))?;
        enc.set_quality(opts.quality as i32)
            .map_err(|e| TransformError::Encode(e.to_string()))?;
        enc.set_subsamp(match opts.chroma {
            Chroma::Full444 => Subsamp::None,
            Chroma::Half420 => Subsamp::Sub2x2,
        })
        .map_err(|e| TransformError::Encode(e.to_string()))?;
        Ok(Transformer {
            opts: opts.clone(),
            dec,
            enc,
            resizer: fir::Resizer::new(),
            decoded: Rgb::default(),
            crop: (0.0, 0.0, 0.0),
            resized: Vec::new(),
            encoded: Vec::new(),
            simd_scales_only: true,
            region_decode: true,
            reserved: None,
        })
    }

    /// Frees a large image's decode buffer and gives its room back: a thread keeps no more
    /// than [`OWN_BYTES`] between images.
    fn let_go(&mut self) {
        if self.reserved.take().is_some() || self.decoded.pixels.capacity() > OWN_BYTES {
            self.decoded.pixels = Vec::new();
        }
    }

    /// Decodes the image at full size as [`Transformer::decode`] does, keeping nothing: for a
    /// caller that only needs to know it decodes (the read-speed test).
    pub fn check_decodes(&mut self, jpeg: &[u8]) -> Result<(), TransformError> {
        let r = self.decode_inner(jpeg, false);
        self.let_go();
        r
    }

    /// libjpeg-turbo has SIMD IDCTs only for 8x8, 4x4, 2x2 and 1x1 outputs; scaling by 5/8, 6/8
    /// or 7/8 runs plain C IDCTs (10x10 to 14x14 for upsampled chroma) and measured slower than
    /// decoding at full size. When on (the default), those scales decode at 8/8 instead.
    pub fn set_simd_scales_only(&mut self, on: bool) {
        self.simd_scales_only = on;
    }

    /// When on (the default), [`Transformer::process`] decodes only the centre square plus the
    /// few pixels the resize filter reads around it, which gives the same output as decoding
    /// the whole photo.
    pub fn set_region_decode(&mut self, on: bool) {
        self.region_decode = on;
    }

    pub fn options(&self) -> &TransformOptions {
        &self.opts
    }

    /// Decodes the whole image into the internal buffer, shrinking in the DCT domain when
    /// allowed.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<&Rgb, TransformError> {
        self.decode_inner(jpeg, false)?;
        Ok(&self.decoded)
    }

    fn decode_inner(&mut self, jpeg: &[u8], region: bool) -> Result<(), TransformError> {
        self.let_go();
        check_jpeg_magic(jpeg)?;
        let (opts, simd_only) = (&self.opts, self.simd_scales_only);
        let region = region && self.region_decode;
        let mut crop = (0.0, 0.0, 0.0);
        let reserved = &mut self.reserved;
        let plan = |h: &Header| {
            if h.width == 0 || h.height == 0 {
                return Err(TransformError::Corrupt("zero-sized image".into()));
            }
            if h.width.saturating_mul(h.height) > MAX_PIXELS {
                return Err(TransformError::TooLarge(h.width, h.height));
            }
            // Counted at full size whatever the scale or region, with a progressive image's
            // coefficients, which the decoder holds for the whole image.
            let bytes = h.decode_bytes();
            if bytes > OWN_BYTES {
                *reserved = Some(Reservation::take(bytes));
            }
            let m = if h.lossless {
                8
            } else {
                scale_for(opts, simd_only, h.width.min(h.height))
            };
            let (w, h) = ((h.width * m).div_ceil(8), (h.height * m).div_ceil(8));
            let (l, t, side, _) = fill_crop(w as u32, h as u32);
            crop = (l, t, side);
            if !region {
                return Ok((m, None));
            }
            // The resize reads up to support x scale pixels beyond the crop on each side; smooth
            // upsampling makes the region's outermost pixel differ from a whole decode's.
            let margin =
                (filter_support(opts.filter) * (side / opts.size as f64).max(1.0)).ceil() + 2.0;
            let lo = |v: f64| (v - margin).floor().max(0.0) as usize;
            let hi = |v: f64, n: usize| ((v + side + margin).ceil() as usize).min(n);
            Ok((
                m,
                Some(Region {
                    x0: lo(l),
                    y0: lo(t),
                    x1: hi(l, w),
                    y1: hi(t, h),
                }),
            ))
        };
        let d = self
            .dec
            .decode_rgb(jpeg, &mut self.decoded.pixels, plan)?
            .map_err(TransformError::Corrupt)?;
        self.decoded.width = d.width as u32;
        self.decoded.height = d.height as u32;
        self.crop = (crop.0 - d.left as f64, crop.1 - d.top as f64, crop.2);
        Ok(())
    }

    /// Resizes the last decoded image to `size` x `size` ("fill": centre crop to a square, then
    /// scale). Returns RGB pixels.
    pub fn resize_decoded(&mut self) -> Result<&[u8], TransformError> {
        let size = self.opts.size;
        let src = &self.decoded;
        let src_view =
            fir::images::ImageRef::new(src.width, src.height, &src.pixels, fir::PixelType::U8x3)
                .map_err(|e| TransformError::Resize(e.to_string()))?;
        self.resized.resize((size * size * 3) as usize, 0);
        let mut dst =
            fir::images::Image::from_slice_u8(size, size, &mut self.resized, fir::PixelType::U8x3)
                .map_err(|e| TransformError::Resize(e.to_string()))?;
        let (l, t, side) = self.crop;
        let filter = match self.opts.filter {
            Filter::Bilinear => fir::FilterType::Bilinear,
            Filter::Bicubic => fir::FilterType::CatmullRom,
            Filter::Lanczos3 => fir::FilterType::Lanczos3,
        };
        let options = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(filter))
            .crop(l, t, side, side);
        self.resizer
            .resize(&src_view, &mut dst, &options)
            .map_err(|e| TransformError::Resize(e.to_string()))?;
        Ok(&self.resized)
    }

    /// Encodes `size` x `size` RGB pixels as JPEG into `out` (replacing its contents).
    pub fn encode_rgb(
        &mut self,
        pixels: &[u8],
        width: u32,
        height: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        let image = Image {
            pixels,
            width: width as usize,
            pitch: width as usize * 3,
            height: height as usize,
            format: PixelFormat::RGB,
        };
        let need = self
            .enc
            .buf_len(width as usize, height as usize)
            .map_err(|e| TransformError::Encode(e.to_string()))?;
        // The worst-case buffer is several times the JPEG: keep it across images rather than
        // zero-filling it for each one, and copy out what was written.
        if self.encoded.len() < need {
            self.encoded.resize(need, 0);
        }
        let n = self
            .enc
            .compress_to_slice(image, &mut self.encoded)
            .map_err(|e| TransformError::Encode(e.to_string()))?;
        out.clear();
        out.extend_from_slice(&self.encoded[..n]);
        Ok(())
    }

    /// The whole per-image step: decode (the centre region), fill-resize, encode into `out`.
    pub fn process(&mut self, jpeg: &[u8], out: &mut Vec<u8>) -> Result<(), TransformError> {
        let r = self.decode_resize_encode(jpeg, out);
        self.let_go();
        r
    }

    fn decode_resize_encode(
        &mut self,
        jpeg: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), TransformError> {
        self.decode_inner(jpeg, true)?;
        self.resize_decoded()?;
        let size = self.opts.size;
        let resized = std::mem::take(&mut self.resized);
        let r = self.encode_rgb(&resized, size, size, out);
        self.resized = resized;
        r
    }
}

/// The DCT scale M (of 8) for an image with this short side.
fn scale_for(opts: &TransformOptions, simd_scales_only: bool, short_side: usize) -> usize {
    if !opts.dct_scaling {
        return 8;
    }
    let m = dct_scale_for(short_side, opts.size as usize);
    if simd_scales_only && m > 4 {
        8
    } else {
        m
    }
}

/// Encodes RGB pixels as a JPEG (used by the dataset generator and tests).
pub fn encode_jpeg(
    pixels: &[u8],
    width: u32,
    height: u32,
    quality: u8,
    chroma: Chroma,
) -> Result<Vec<u8>, TransformError> {
    let mut t = Transformer::new(&TransformOptions {
        quality,
        chroma,
        ..Default::default()
    })?;
    let mut out = Vec::new();
    t.encode_rgb(pixels, width, height, &mut out)?;
    Ok(out)
}

/// Decodes a JPEG to RGB at full size with the accurate IDCT (tests, read-speed decode).
pub fn decode_jpeg(jpeg: &[u8]) -> Result<Rgb, TransformError> {
    let mut t = Transformer::new(&TransformOptions {
        dct_scaling: false,
        decode: DecodeMode::Accurate,
        ..Default::default()
    })?;
    t.decode(jpeg)?;
    Ok(std::mem::take(&mut t.decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large image's room and buffer are given back once it is processed or checked, so a
    /// thread between images holds neither.
    #[test]
    fn a_large_image_leaves_no_room_held_nor_its_buffer() {
        let (w, h) = (4000u32, 3000u32);
        let jpeg = encode_jpeg(
            &vec![128u8; (w * h * 3) as usize],
            w,
            h,
            80,
            Chroma::Half420,
        )
        .unwrap();
        let mut t = Transformer::new(&TransformOptions::default()).unwrap();
        let mut out = Vec::new();
        t.process(&jpeg, &mut out).unwrap();
        assert!(t.reserved.is_none() && t.decoded.pixels.capacity() <= OWN_BYTES);
        t.check_decodes(&jpeg).unwrap();
        assert!(t.reserved.is_none() && t.decoded.pixels.capacity() <= OWN_BYTES);
        // While the image is decoded (and read) the room is held.
        t.decode(&jpeg).unwrap();
        assert_eq!(t.reserved.as_ref().map(|r| r.0), Some(36_000_000));
    }

    #[test]
    fn decode_bytes_count_a_progressive_images_coefficients() {
        let header = |subsamp, cmyk, progressive| crate::jpeg::Header {
            width: 100,
            height: 10,
            subsamp,
            lossless: false,
            cmyk,
            progressive,
        };
        assert_eq!(header(2, false, false).decode_bytes(), 3000);
        assert_eq!(header(0, false, true).decode_bytes(), 9000);
        assert_eq!(header(2, false, true).decode_bytes(), 6000);
        assert_eq!(header(0, true, true).decode_bytes(), 12000);
        assert_eq!(header(-1, false, true).decode_bytes(), 9000);
    }

    /// Room past the shared budget waits until some is given back; an image larger than the
    /// whole budget still gets it when nothing else is held.
    #[test]
    fn large_decodes_wait_for_room_and_never_for_ever() {
        let first = Reservation::take(SHARED_BYTES);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let r = Reservation::take(OWN_BYTES + 1);
            tx.send(()).unwrap();
            drop(r);
            // Alone, more than the budget is given.
            drop(Reservation::take(2 * SHARED_BYTES));
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("room given back");
        waiter.join().unwrap();
    }

    /// The names options are shown by are the names they are given by.
    #[test]
    fn option_names_read_back() {
        for c in [Chroma::Full444, Chroma::Half420] {
            assert_eq!(c.to_string().parse::<Chroma>(), Ok(c));
        }
        for f in [Filter::Bilinear, Filter::Bicubic, Filter::Lanczos3] {
            assert_eq!(f.to_string().parse::<Filter>(), Ok(f));
        }
        for d in [DecodeMode::Accurate, DecodeMode::Fast] {
            assert_eq!(d.to_string().parse::<DecodeMode>(), Ok(d));
        }
    }

    fn gradient(w: u32, h: u32) -> Vec<u8> {
        let mut p = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            for x in 0..w {
                p.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        p
    }

    #[test]
    fn dct_scale_keeps_short_side() {
        assert_eq!(dct_scale_for(375, 192), 5); // 375*5/8 = 234.4 -> 235 >= 192; 4/8 -> 188
        assert_eq!(dct_scale_for(384, 192), 4);
        assert_eq!(dct_scale_for(100, 192), 8);
        assert_eq!(dct_scale_for(2000, 192), 1);
        for short in 1..1200 {
            let m = dct_scale_for(short, 192);
            assert!((short * m).div_ceil(8) >= 192 || m == 8);
        }
    }

    #[test]
    fn process_gives_square_jpeg_of_requested_size() {
        let (w, h) = (500u32, 333u32);
        let src = encode_jpeg(&gradient(w, h), w, h, 90, Chroma::Half420).unwrap();
        let mut t = Transformer::new(&TransformOptions::default()).unwrap();
        let mut out = Vec::new();
        t.process(&src, &mut out).unwrap();
        let back = decode_jpeg(&out).unwrap();
        assert_eq!((back.width, back.height), (192, 192));
        // The centre crop of a horizontal gradient keeps the middle: left edge ~ (500-333)/2/500*255.
        let left_red = back.pixels[3 * (96 * 192)] as i32;
        assert!((left_red - 42).abs() <= 6, "left red {left_red}");
        // 4:4:4 and quality survive into the header.
        assert_eq!(turbojpeg::read_header(&out).unwrap().subsamp, Subsamp::None);
    }

    /// Sum of squared differences of two equal-sized 8-bit buffers.
    fn sq_err(a: &[u8], b: &[u8]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum()
    }

    /// PSNR of two equal-sized 8-bit buffers.
    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = sq_err(a, b) / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
    }

    /// Generated photos (q85 like `gen-dataset`) in both orientations, sizes that DCT-scale and
    /// that do not, and the three common samplings.
    fn photos() -> Vec<(u32, u32, Vec<u8>)> {
        let cases = [
            (500u32, 375u32, Chroma::Half420),
            (333, 500, Chroma::Half420),
            (460, 300, Chroma::Full444),
            (1000, 760, Chroma::Half420),
            (180, 150, Chroma::Half420),
            (401, 401, Chroma::Half420),
        ];
        cases
            .iter()
            .enumerate()
            .map(|(i, &(w, h, sub))| {
                let mut rng = crate::rng::SplitMix64::new(i as u64);
                let px = crate::dataset::synth_image(&mut rng, i % 5, w, h);
                (w, h, encode_jpeg(&px, w, h, 85, sub).unwrap())
            })
            .collect()
    }

    fn resized(opts: &TransformOptions, region: bool, jpeg: &[u8]) -> Vec<u8> {
        let mut t = Transformer::new(opts).unwrap();
        t.set_region_decode(region);
        t.decode_inner(jpeg, true).unwrap();
        t.resize_decoded().unwrap().to_vec()
    }

    #[test]
    fn decoding_only_the_centre_gives_the_same_pixels() {
        for (w, h, jpeg) in photos() {
            for filter in [Filter::Bilinear, Filter::Lanczos3] {
                for dct_scaling in [true, false] {
                    for decode in [DecodeMode::Fast, DecodeMode::Accurate] {
                        let opts = TransformOptions {
                            filter,
                            dct_scaling,
                            decode,
                            ..Default::default()
                        };
                        assert_eq!(
                            resized(&opts, true, &jpeg),
                            resized(&opts, false, &jpeg),
                            "{w}x{h} {filter:?} dct_scaling={dct_scaling} {decode:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn fast_decoding_changes_about_as_much_as_the_q95_encode() {
        // How far the fast IDCT and plain upsampling move the resized pixels, against how far
        // the q95 4:4:4 encode that follows moves them anyway: at least 40 dB on every photo,
        // and less than the encode over all of them.
        let (mut se_fast, mut se_enc, mut n) = (0.0, 0.0, 0.0);
        for (w, h, jpeg) in photos() {
            let accurate = TransformOptions {
                decode: DecodeMode::Accurate,
                ..Default::default()
            };
            let exact = resized(&accurate, true, &jpeg);
            let fast_opts = TransformOptions {
                decode: DecodeMode::Fast,
                ..Default::default()
            };
            let fast = resized(&fast_opts, true, &jpeg);
            let mut t = Transformer::new(&accurate).unwrap();
            let mut out = Vec::new();
            t.process(&jpeg, &mut out).unwrap();
            let encoded = decode_jpeg(&out).unwrap().pixels;
            let p = psnr(&exact, &fast);
            assert!(p > 40.0, "{w}x{h}: fast decode PSNR {p:.1} dB");
            se_fast += sq_err(&exact, &fast);
            se_enc += sq_err(&exact, &encoded);
            n += exact.len() as f64;
        }
        let db = |se: f64| 10.0 * (255.0f64 * 255.0 * n / se).log10();
        let (p_fast, p_enc) = (db(se_fast), db(se_enc));
        assert!(
            p_fast > p_enc,
            "fast decode {p_fast:.1} dB, q95 encode {p_enc:.1} dB"
        );
    }

    #[test]
    fn a_size_or_quality_out_of_range_is_refused_before_any_buffer() {
        for (size, quality) in [
            (0, 95),
            (MAX_SIZE + 1, 95),
            (u32::MAX, 95),
            (192, 0),
            (192, 101),
        ] {
            let opts = TransformOptions {
                size,
                quality,
                ..TransformOptions::default()
            };
            let e = Transformer::new(&opts).err().expect("refused");
            let (option, value) = if quality == 95 {
                ("--size", size)
            } else {
                ("--quality", u32::from(quality))
            };
            assert!(
                e.to_string().starts_with(&format!("{option} {value}: "))
                    && !e.to_string().contains("encode failed"),
                "{e}"
            );
        }
        let largest = TransformOptions {
            size: MAX_SIZE,
            ..TransformOptions::default()
        };
        assert!(Transformer::new(&largest).is_ok());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut t = Transformer::new(&TransformOptions::default()).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            t.process(&[], &mut out),
            Err(TransformError::Empty)
        ));
        assert!(matches!(
            t.process(b"GIF89a....", &mut out),
            Err(TransformError::NotJpeg(_))
        ));
        let src = encode_jpeg(&gradient(300, 200), 300, 200, 90, Chroma::Half420).unwrap();
        let cut = &src[..src.len() / 2];
        assert!(
            matches!(t.process(cut, &mut out), Err(TransformError::Corrupt(_))),
            "truncated"
        );
        let mut garbled = src.clone();
        for b in garbled[20..200].iter_mut() {
            *b = 0x00;
        }
        assert!(t.process(&garbled, &mut out).is_err());
        // Still works after errors.
        t.process(&src, &mut out).unwrap();
    }
}
