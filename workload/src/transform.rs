//! The per-image work of preprocessing: JPEG decode (with DCT-domain downscaling), resize "fill"
//! (short side to the target, centre crop), JPEG encode. One [`Transformer`] per thread keeps its
//! codec handles and buffers, so the hot loop does not allocate.
//!
//! libjpeg-turbo has SIMD inverse DCTs only for 8x8, 4x4, 2x2 and 1x1 outputs, so the decoder
//! DCT-scales only by 1/8, 2/8 or 4/8 and decodes at full size where 5/8-7/8 would fit (those
//! run plain-C IDCTs, 10x10-14x14 for 4:2:0 chroma, and measured slower than full size).
//!
//! An optional planar path ([`Transformer::set_planar`], off by default) decodes YCbCr JPEGs to
//! Y, Cb and Cr planes, interleaves the crop region, resizes and encodes from planes, skipping
//! both colour conversions; criterion measured it slower than the RGB path with SIMD-only scales
//! (542 vs 682 images/s), so it is kept for comparison only.

use fast_image_resize as fir;
use turbojpeg::{
    Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp, YuvImage,
};

/// Chroma subsampling of the output JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chroma {
    /// 4:4:4, full-resolution colour (TensorFlow's `encode_jpeg` default, the coursework's).
    Full444,
    /// 4:2:0, colour at half resolution both ways (smaller files, faster).
    Half420,
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
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            size: 192,
            quality: 95,
            chroma: Chroma::Full444,
            filter: Filter::Bilinear,
            dct_scaling: true,
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
}

/// Reject absurd headers before allocating (a corrupt file can claim 65535x65535).
const MAX_PIXELS: usize = 100_000_000;

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

/// Decoder, resizer and encoder with their reusable buffers.
pub struct Transformer {
    opts: TransformOptions,
    dec: Decompressor,
    enc: Compressor,
    resizer: fir::Resizer,
    decoded: Rgb,
    resized: Vec<u8>,
    /// Use the planar (YCbCr) path for YCbCr JPEGs.
    planar: bool,
    /// Only DCT-scale by 1/8, 2/8 or 4/8 (see [`Transformer::set_simd_scales_only`]).
    simd_scales_only: bool,
    /// Decoded Y, Cb, Cr planes (TurboJPEG's packed layout, row alignment 1).
    yuv: Vec<u8>,
    /// Resized output planes.
    yuv_out: Vec<u8>,
}

impl Transformer {
    pub fn new(opts: &TransformOptions) -> Result<Self, TransformError> {
        if opts.size == 0 || !(1..=100).contains(&opts.quality) {
            return Err(TransformError::Encode(format!(
                "invalid size {} or quality {} (size > 0, quality 1..=100)",
                opts.size, opts.quality
            )));
        }
        let dec = Decompressor::new().map_err(|e| TransformError::Corrupt(e.to_string()))?;
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
            resized: Vec::new(),
            planar: false,
            simd_scales_only: true,
            yuv: Vec::new(),
            yuv_out: Vec::new(),
        })
    }

    /// Turns the planar path of [`Transformer::process`] on or off (the default: always decode to
    /// RGB, measured faster).
    pub fn set_planar(&mut self, on: bool) {
        self.planar = on;
    }

    /// libjpeg-turbo has SIMD IDCTs only for 8x8, 4x4, 2x2 and 1x1 outputs; scaling by 5/8, 6/8
    /// or 7/8 runs plain C IDCTs (10x10 to 14x14 for upsampled chroma) and measured slower than
    /// decoding at full size. When on (the default), those scales decode at 8/8 instead.
    pub fn set_simd_scales_only(&mut self, on: bool) {
        self.simd_scales_only = on;
    }

    /// The DCT scale M (of 8) for an image with this short side.
    fn scale_for(&self, short_side: usize) -> usize {
        if !self.opts.dct_scaling {
            return 8;
        }
        let m = dct_scale_for(short_side, self.opts.size as usize);
        if self.simd_scales_only && m > 4 {
            8
        } else {
            m
        }
    }

    pub fn options(&self) -> &TransformOptions {
        &self.opts
    }

    /// Decodes into the internal buffer, shrinking in the DCT domain when allowed.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<&Rgb, TransformError> {
        check_jpeg_magic(jpeg)?;
        if let Err(e) = self.decode_inner(jpeg) {
            // libjpeg's state after a failed decode can poison the next image ("SOS before
            // SOF"): start from a fresh handle.
            self.dec = Decompressor::new().map_err(|e| TransformError::Corrupt(e.to_string()))?;
            return Err(e);
        }
        Ok(&self.decoded)
    }

    fn decode_inner(&mut self, jpeg: &[u8]) -> Result<(), TransformError> {
        let corrupt = |e: turbojpeg::Error| TransformError::Corrupt(e.to_string());
        self.dec
            .set_scaling_factor(ScalingFactor::ONE)
            .map_err(corrupt)?;
        let header = self.dec.read_header(jpeg).map_err(corrupt)?;
        if header.width == 0 || header.height == 0 {
            return Err(TransformError::Corrupt("zero-sized image".into()));
        }
        if header.width.saturating_mul(header.height) > MAX_PIXELS {
            return Err(TransformError::TooLarge(header.width, header.height));
        }
        let m = if header.is_lossless {
            8
        } else {
            self.scale_for(header.width.min(header.height))
        };
        let factor = ScalingFactor::new(m, 8);
        self.dec.set_scaling_factor(factor).map_err(corrupt)?;
        let scaled = header.scaled(factor);
        let (w, h) = (scaled.width, scaled.height);
        self.decoded.pixels.resize(w * h * 3, 0);
        let image = Image {
            pixels: &mut self.decoded.pixels[..],
            width: w,
            pitch: w * 3,
            height: h,
            format: PixelFormat::RGB,
        };
        // libjpeg-turbo reports truncated data as a warning and turbojpeg turns it into an error.
        self.dec.decompress(jpeg, image).map_err(corrupt)?;
        self.decoded.width = w as u32;
        self.decoded.height = h as u32;
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
        let (l, t, w, h) = fill_crop(src.width, src.height);
        let filter = match self.opts.filter {
            Filter::Bilinear => fir::FilterType::Bilinear,
            Filter::Bicubic => fir::FilterType::CatmullRom,
            Filter::Lanczos3 => fir::FilterType::Lanczos3,
        };
        let options = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(filter))
            .crop(l, t, w, h);
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
        out.clear();
        out.resize(need, 0);
        let n = self
            .enc
            .compress_to_slice(image, out)
            .map_err(|e| TransformError::Encode(e.to_string()))?;
        out.truncate(n);
        Ok(())
    }

    /// The whole per-image step: decode, fill-resize, encode into `out`.
    pub fn process(&mut self, jpeg: &[u8], out: &mut Vec<u8>) -> Result<(), TransformError> {
        check_jpeg_magic(jpeg)?;
        if self.planar {
            match self.process_planar(jpeg, out) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    // As in `decode`: a failed decode can poison the handle.
                    self.dec =
                        Decompressor::new().map_err(|e| TransformError::Corrupt(e.to_string()))?;
                    return Err(e);
                }
            }
        }
        self.decode(jpeg)?;
        self.resize_decoded()?;
        let size = self.opts.size;
        let resized = std::mem::take(&mut self.resized);
        let r = self.encode_rgb(&resized, size, size, out);
        self.resized = resized;
        r
    }

    /// The planar path; `Ok(false)` when the JPEG is not YCbCr 4:2:0, 4:2:2 or 4:4:4 (the caller
    /// then goes through RGB).
    fn process_planar(&mut self, jpeg: &[u8], out: &mut Vec<u8>) -> Result<bool, TransformError> {
        let corrupt = |e: turbojpeg::Error| TransformError::Corrupt(e.to_string());
        let resize_err = |e: &dyn std::fmt::Display| TransformError::Resize(e.to_string());
        self.dec
            .set_scaling_factor(ScalingFactor::ONE)
            .map_err(corrupt)?;
        let header = self.dec.read_header(jpeg).map_err(corrupt)?;
        if header.is_lossless
            || header.colorspace != Colorspace::YCbCr
            || !matches!(
                header.subsamp,
                Subsamp::None | Subsamp::Sub2x1 | Subsamp::Sub2x2
            )
        {
            return Ok(false);
        }
        if header.width == 0 || header.height == 0 {
            return Err(TransformError::Corrupt("zero-sized image".into()));
        }
        if header.width.saturating_mul(header.height) > MAX_PIXELS {
            return Err(TransformError::TooLarge(header.width, header.height));
        }
        let m = self.scale_for(header.width.min(header.height));
        let factor = ScalingFactor::new(m, 8);
        self.dec.set_scaling_factor(factor).map_err(corrupt)?;
        let scaled = header.scaled(factor);
        let src = YuvImage {
            pixels: (),
            width: scaled.width,
            align: 1,
            height: scaled.height,
            subsamp: header.subsamp,
        };
        let (yw, yh) = src.y_size();
        let (cw, ch) = src.uv_size();
        self.yuv.resize(yw * yh + 2 * cw * ch, 0);
        self.dec
            .decompress_to_yuv(
                jpeg,
                YuvImage {
                    pixels: &mut self.yuv[..],
                    width: src.width,
                    align: 1,
                    height: src.height,
                    subsamp: src.subsamp,
                },
            )
            .map_err(corrupt)?;

        let size = self.opts.size;
        let out_subsamp = match self.opts.chroma {
            Chroma::Full444 => Subsamp::None,
            Chroma::Half420 => Subsamp::Sub2x2,
        };
        let dst = YuvImage {
            pixels: (),
            width: size as usize,
            align: 1,
            height: size as usize,
            subsamp: out_subsamp,
        };
        let (oyw, oyh) = dst.y_size();
        let (ocw, och) = dst.uv_size();
        self.yuv_out.resize(oyw * oyh + 2 * ocw * och, 0);

        // The crop in luma pixels of the true (unpadded) image; chroma planes see it divided by
        // their subsampling factors (JPEG's centred chroma siting maps pixel areas that way).
        // Interleave the columns and rows the crop touches into one YCbCr image, chroma repeated
        // over its 2x1 or 2x2 block, and resize that with the 3-channel kernels (much faster per
        // pixel than three 1-channel resizes). Repeating chroma is libjpeg's plain upsampling;
        // the resize's triangle filter then smooths it.
        let (w, h) = (scaled.width, scaled.height);
        let (l, t, side, _) = fill_crop(w as u32, h as u32);
        let (x0, y0) = (l.floor() as usize, t.floor() as usize);
        let x1 = ((l + side).ceil() as usize).min(w);
        let y1 = ((t + side).ceil() as usize).min(h);
        let (rw, rh) = (x1 - x0, y1 - y0);
        let (shift_x, shift_y) = (
            header.subsamp.width().trailing_zeros(),
            header.subsamp.height().trailing_zeros(),
        );
        let (y_in, uv_in) = self.yuv.split_at(yw * yh);
        let (u_in, v_in) = uv_in.split_at(cw * ch);
        self.decoded.pixels.resize(rw * rh * 3, 0);
        for (r, dst) in self.decoded.pixels.chunks_exact_mut(rw * 3).enumerate() {
            let y = y0 + r;
            let yrow = &y_in[y * yw + x0..y * yw + x1];
            let c = (y >> shift_y) * cw;
            let (urow, vrow) = (&u_in[c..c + cw], &v_in[c..c + cw]);
            for ((px, &luma), x) in dst.chunks_exact_mut(3).zip(yrow).zip(x0..) {
                let cx = x >> shift_x;
                px[0] = luma;
                px[1] = urow[cx];
                px[2] = vrow[cx];
            }
        }
        self.decoded.width = rw as u32;
        self.decoded.height = rh as u32;
        let filter = match self.opts.filter {
            Filter::Bilinear => fir::FilterType::Bilinear,
            Filter::Bicubic => fir::FilterType::CatmullRom,
            Filter::Lanczos3 => fir::FilterType::Lanczos3,
        };
        let src_view = fir::images::ImageRef::new(
            rw as u32,
            rh as u32,
            &self.decoded.pixels,
            fir::PixelType::U8x3,
        )
        .map_err(|e| resize_err(&e))?;
        let n_px = (size * size) as usize;
        self.resized.resize(n_px * 3, 0);
        let mut dst_view =
            fir::images::Image::from_slice_u8(size, size, &mut self.resized, fir::PixelType::U8x3)
                .map_err(|e| resize_err(&e))?;
        let options = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(filter))
            .crop(l - x0 as f64, t - y0 as f64, side, side);
        self.resizer
            .resize(&src_view, &mut dst_view, &options)
            .map_err(|e| resize_err(&e))?;

        // Back to planes for the encoder (2x2 chroma averages for 4:2:0 output).
        let (y_out, uv_out) = self.yuv_out.split_at_mut(oyw * oyh);
        let (u_out, v_out) = uv_out.split_at_mut(ocw * och);
        let side_px = size as usize;
        if out_subsamp == Subsamp::None {
            for (i, px) in self.resized.chunks_exact(3).enumerate() {
                y_out[i] = px[0];
                u_out[i] = px[1];
                v_out[i] = px[2];
            }
        } else {
            for (i, px) in self.resized.chunks_exact(3).enumerate() {
                let (x, y) = (i % side_px, i / side_px);
                y_out[y * oyw + x] = px[0];
            }
            for cy in 0..och {
                for cx in 0..ocw {
                    let (mut su, mut sv, mut k) = (0u32, 0u32, 0u32);
                    for y in (2 * cy)..(2 * cy + 2).min(side_px) {
                        for x in (2 * cx)..(2 * cx + 2).min(side_px) {
                            let p = &self.resized[(y * side_px + x) * 3..];
                            su += p[1] as u32;
                            sv += p[2] as u32;
                            k += 1;
                        }
                    }
                    u_out[cy * ocw + cx] = ((su + k / 2) / k) as u8;
                    v_out[cy * ocw + cx] = ((sv + k / 2) / k) as u8;
                }
            }
        }

        let encode = |e: turbojpeg::Error| TransformError::Encode(e.to_string());
        let need = self
            .enc
            .buf_len(size as usize, size as usize)
            .map_err(encode)?;
        out.clear();
        out.resize(need, 0);
        let n = self
            .enc
            .compress_yuv_to_slice(
                YuvImage {
                    pixels: &self.yuv_out[..],
                    width: dst.width,
                    align: 1,
                    height: dst.height,
                    subsamp: dst.subsamp,
                },
                out,
            )
            .map_err(encode)?;
        out.truncate(n);
        Ok(true)
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

/// Decodes a JPEG to RGB at full size (tests, read-speed decode).
pub fn decode_jpeg(jpeg: &[u8]) -> Result<Rgb, TransformError> {
    let mut t = Transformer::new(&TransformOptions {
        dct_scaling: false,
        ..Default::default()
    })?;
    t.decode(jpeg)?;
    Ok(std::mem::take(&mut t.decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// PSNR of two equal-sized 8-bit buffers.
    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
    }

    #[test]
    fn planar_path_matches_the_rgb_path() {
        // Generated photos in the three subsamplings the planar path takes, both orientations,
        // with and without DCT scaling, 4:4:4 and 4:2:0 output.
        let cases = [
            (500u32, 375u32, Chroma::Half420),
            (333, 500, Chroma::Half420),
            (460, 300, Chroma::Full444),
            (1000, 760, Chroma::Half420),
            (180, 150, Chroma::Half420),
        ];
        for (i, &(w, h, sub)) in cases.iter().enumerate() {
            let mut rng = crate::rng::SplitMix64::new(i as u64);
            let px = crate::dataset::synth_image(&mut rng, i % 5, w, h);
            let src = encode_jpeg(&px, w, h, 85, sub).unwrap();
            for out_chroma in [Chroma::Full444, Chroma::Half420] {
                for simd in [true, false] {
                    let opts = TransformOptions {
                        chroma: out_chroma,
                        ..Default::default()
                    };
                    let mut outs = Vec::new();
                    for planar in [true, false] {
                        let mut t = Transformer::new(&opts).unwrap();
                        t.set_planar(planar);
                        t.set_simd_scales_only(simd);
                        let mut out = Vec::new();
                        t.process(&src, &mut out).unwrap();
                        let hdr = turbojpeg::read_header(&out).unwrap();
                        assert_eq!((hdr.width, hdr.height), (192, 192));
                        let want = match out_chroma {
                            Chroma::Full444 => Subsamp::None,
                            Chroma::Half420 => Subsamp::Sub2x2,
                        };
                        assert_eq!(hdr.subsamp, want);
                        outs.push(decode_jpeg(&out).unwrap().pixels);
                    }
                    let p = psnr(&outs[0], &outs[1]);
                    assert!(
                        p > 30.0,
                        "case {i} {w}x{h} {out_chroma:?} simd={simd}: PSNR {p:.1}"
                    );
                }
            }
        }
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
