//! A JPEG decoder over libjpeg-turbo's TurboJPEG 3 API (the library the `turbojpeg` crate
//! bundles), for what that crate's `Decompressor` does not expose: partial decoding of a
//! region (`tj3SetCroppingRegion`) and the fast inverse DCT (`TJPARAM_FASTDCT`).
//!
//! Preprocessing keeps only the centre square of each photo, so decoding just that region
//! skips the inverse DCT, upsampling and colour conversion of the rest (entropy decoding still
//! reads every block: Huffman codes are sequential).

use std::ffi::CStr;
use std::ptr::NonNull;

use turbojpeg_sys as tj;

/// What the header says about a JPEG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: usize,
    pub height: usize,
    /// TurboJPEG's TJSAMP code (`-1` when the sampling is not one it knows).
    pub subsamp: i32,
    pub lossless: bool,
    /// Four-channel CMYK or YCCK (Adobe/Photoshop): TurboJPEG decodes these only to CMYK
    /// pixels, which are then converted to RGB (see [`cmyk_to_rgb_in_place`]).
    pub cmyk: bool,
    /// Progressive entropy coding: the decoder holds every DCT coefficient of the image.
    pub progressive: bool,
}

impl Header {
    /// Bytes a full-size decode of this image takes at most: the output (RGB, or CMYK before
    /// its conversion) and, for a progressive image, the decoder's coefficient buffers (two
    /// bytes per sample, the chroma's as subsampled).
    pub fn decode_bytes(&self) -> usize {
        let out = if self.cmyk { 4 } else { 3 };
        // Two bytes per coefficient times samples per pixel (4:2:0: one luma, two quarters).
        // TJSAMP order: 444, 422, 420, GRAY, 440, 411, 441.
        const COEFFICIENT_BYTES: [usize; 7] = [6, 4, 3, 2, 4, 3, 3];
        let coefficients = match (self.progressive, self.cmyk) {
            (false, _) => 0,
            (true, true) => 8,
            (true, false) => usize::try_from(self.subsamp)
                .ok()
                .and_then(|s| COEFFICIENT_BYTES.get(s).copied())
                .unwrap_or(6),
        };
        self.width
            .saturating_mul(self.height)
            .saturating_mul(out + coefficients)
    }

    /// Width in pixels of an iMCU (the unit a partial decode starts on), at full size; `None`
    /// for samplings TurboJPEG cannot crop.
    fn imcu_width(&self) -> Option<usize> {
        // tjMCUWidth in turbojpeg.h, indexed by TJSAMP: 444, 422, 420, GRAY, 440, 411, 441.
        const MCU_WIDTH: [usize; 7] = [8, 16, 16, 8, 8, 32, 8];
        usize::try_from(self.subsamp)
            .ok()
            .and_then(|s| MCU_WIDTH.get(s).copied())
    }
}

/// How the inverse DCT and chroma upsampling trade accuracy for speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeMode {
    /// libjpeg's accurate integer IDCT and smooth ("fancy") chroma upsampling: what TensorFlow's
    /// `decode_jpeg` and Pillow do by default.
    Accurate,
    /// The fast integer IDCT and plain (replicating) upsampling merged with the colour
    /// conversion. On photos that are then shrunk about 2x, the difference is below what the
    /// q95 re-encode itself changes (see the tests in `transform`).
    Fast,
}

/// The name `--decoder` takes.
impl std::fmt::Display for DecodeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeMode::Accurate => "accurate",
            DecodeMode::Fast => "fast",
        })
    }
}

impl std::str::FromStr for DecodeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "accurate" => Ok(DecodeMode::Accurate),
            "fast" => Ok(DecodeMode::Fast),
            _ => Err(format!(
                "unknown decode mode {s:?} (expected fast or accurate)"
            )),
        }
    }
}

/// The part of the (scaled) image to decode: columns `x0..x1`, rows `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

/// Where the decoded pixels sit in the scaled image: the region actually decoded, which starts
/// at or left of the one asked for (TurboJPEG starts a partial decode on an iMCU boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
}

/// The most progressive scans a file may have (libjpeg-turbo's advice against crafted files
/// that make decoding take minutes).
const SCAN_LIMIT: i32 = 500;

/// One TurboJPEG decompression instance. Not shared between threads (each worker owns one).
pub struct Decoder {
    handle: NonNull<std::ffi::c_void>,
    mode: DecodeMode,
}

// SAFETY: a TurboJPEG instance has no thread affinity; `Decoder` is not `Sync`, so it is used by
// one thread at a time.
unsafe impl Send for Decoder {}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.handle.as_ptr()) }
    }
}

impl Decoder {
    pub fn new(mode: DecodeMode) -> Result<Decoder, String> {
        let mut d = Decoder {
            handle: Self::init()?,
            mode,
        };
        d.configure()?;
        Ok(d)
    }

    fn init() -> Result<NonNull<std::ffi::c_void>, String> {
        // SAFETY: plain constructor; a null return is handled.
        let raw = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) };
        NonNull::new(raw).ok_or_else(|| "cannot create a TurboJPEG decompressor".to_string())
    }

    fn configure(&mut self) -> Result<(), String> {
        let fast = (self.mode == DecodeMode::Fast) as i32;
        self.set(tj::TJPARAM_TJPARAM_FASTDCT, fast)?;
        self.set(tj::TJPARAM_TJPARAM_FASTUPSAMPLE, fast)?;
        self.set(tj::TJPARAM_TJPARAM_SCANLIMIT, SCAN_LIMIT)
    }

    fn set(&mut self, param: tj::TJPARAM, value: i32) -> Result<(), String> {
        // SAFETY: valid handle; TurboJPEG validates the parameter and value.
        let rc = unsafe { tj::tj3Set(self.handle.as_ptr(), param as i32, value) };
        self.check(rc)
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: valid handle; reading a parameter has no preconditions.
        unsafe { tj::tj3Get(self.handle.as_ptr(), param as i32) }
    }

    /// `Err` with TurboJPEG's message when `rc` is its failure code.
    fn check(&self, rc: i32) -> Result<(), String> {
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the instance, valid
        // until the next call on it; it is copied out at once.
        let msg = unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.handle.as_ptr())) };
        Err(msg.to_string_lossy().trim().replace('\n', " "))
    }

    /// After a failed decode libjpeg's state can poison the next image ("SOS before SOF"):
    /// start again from a fresh instance.
    fn reset(&mut self) -> Result<(), String> {
        let fresh = Self::init()?;
        // SAFETY: the old handle is destroyed once and replaced.
        unsafe { tj::tj3Destroy(self.handle.as_ptr()) };
        self.handle = fresh;
        self.configure()
    }

    /// Reads the header of `jpeg`.
    pub fn read_header(&mut self, jpeg: &[u8]) -> Result<Header, String> {
        // SAFETY: pointer and length describe `jpeg`, which outlives the call.
        let rc = unsafe {
            tj::tj3DecompressHeader(self.handle.as_ptr(), jpeg.as_ptr(), jpeg.len() as _)
        };
        self.check(rc)?;
        let dim = |v: i32| usize::try_from(v).unwrap_or(0);
        Ok(Header {
            width: dim(self.get(tj::TJPARAM_TJPARAM_JPEGWIDTH)),
            height: dim(self.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT)),
            subsamp: self.get(tj::TJPARAM_TJPARAM_SUBSAMP),
            lossless: self.get(tj::TJPARAM_TJPARAM_LOSSLESS) != 0,
            cmyk: matches!(
                self.get(tj::TJPARAM_TJPARAM_COLORSPACE) as tj::TJCS,
                tj::TJCS_TJCS_CMYK | tj::TJCS_TJCS_YCCK
            ),
            progressive: self.get(tj::TJPARAM_TJPARAM_PROGRESSIVE) != 0,
        })
    }

    /// Decodes `jpeg` to packed RGB in `out`, shrunk by `scale`/8 in the DCT domain and limited
    /// to (at least) `region` of the scaled image. `plan` sees the header and returns the scale
    /// (1..=8) and the region, or an error to stop before decoding. Lossless JPEGs and
    /// unknown samplings decode whole (TurboJPEG cannot crop them), at full size for lossless.
    pub fn decode_rgb<E>(
        &mut self,
        jpeg: &[u8],
        out: &mut Vec<u8>,
        plan: impl FnOnce(&Header) -> Result<(usize, Option<Region>), E>,
    ) -> Result<Result<Decoded, String>, E> {
        let header = match self.read_header(jpeg) {
            Ok(h) => h,
            Err(e) => {
                let _ = self.reset();
                return Ok(Err(e));
            }
        };
        let (scale, region) = plan(&header)?;
        let r = self.decode_planned(jpeg, &header, scale, region, out);
        if r.is_err() {
            let _ = self.reset();
        }
        Ok(r)
    }

    fn decode_planned(
        &mut self,
        jpeg: &[u8],
        header: &Header,
        scale: usize,
        region: Option<Region>,
        out: &mut Vec<u8>,
    ) -> Result<Decoded, String> {
        let scale = if header.lossless {
            8
        } else {
            scale.clamp(1, 8)
        };
        let scaled = |v: usize| (v * scale).div_ceil(8);
        let (sw, sh) = (scaled(header.width), scaled(header.height));
        let mut d = Decoded {
            left: 0,
            top: 0,
            width: sw,
            height: sh,
        };
        let mut crop = tj::tjregion {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
        };
        if let (Some(r), Some(mcu), false) = (region, header.imcu_width(), header.lossless) {
            let (x1, y1) = (r.x1.min(sw), r.y1.min(sh));
            if r.x0 < x1 && r.y0 < y1 && (x1 - r.x0 < sw || y1 - r.y0 < sh) {
                let step = scaled(mcu);
                let left = r.x0 / step * step;
                d = Decoded {
                    left,
                    top: r.y0,
                    width: x1 - left,
                    height: y1 - r.y0,
                };
                let int = |v: usize| i32::try_from(v).map_err(|_| "image too large".to_string());
                crop = tj::tjregion {
                    x: int(d.left)?,
                    y: int(d.top)?,
                    w: int(d.width)?,
                    h: int(d.height)?,
                };
            }
        }
        if crop.y > 0 {
            // Skipping rows from the top (jpeg_skip_scanlines) dereferences the instance's
            // colour converter, which with plain upsampling (merged with the colour conversion)
            // is not set up for this image: libjpeg-turbo 3.1.0 then writes into the one freed
            // with the previous image (valgrind: read_and_discard_scanlines, jdapistd.c:402).
            // A fresh instance has none, so the skip leaves it alone.
            self.reset()?;
            self.read_header(jpeg)?;
        }
        // TurboJPEG lists its factors in lowest terms (1/2, not 4/8).
        let g = [8, 4, 2, 1]
            .into_iter()
            .find(|g| scale % g == 0)
            .unwrap_or(1);
        let factor = tj::tjscalingfactor {
            num: (scale / g) as i32,
            denom: (8 / g) as i32,
        };
        // SAFETY: valid handle; the header has been read, so TurboJPEG checks the factor.
        let rc = unsafe { tj::tj3SetScalingFactor(self.handle.as_ptr(), factor) };
        self.check(rc)?;
        // SAFETY: valid handle, header read and scaling set (TurboJPEG validates the region).
        let rc = unsafe { tj::tj3SetCroppingRegion(self.handle.as_ptr(), crop) };
        self.check(rc)?;
        let (channels, format) = if header.cmyk {
            (4, tj::TJPF_TJPF_CMYK)
        } else {
            (3, tj::TJPF_TJPF_RGB)
        };
        let pitch = d
            .width
            .checked_mul(channels)
            .ok_or_else(|| "image too large".to_string())?;
        let len = pitch
            .checked_mul(d.height)
            .ok_or_else(|| "image too large".to_string())?;
        out.resize(len, 0);
        let pitch_c = i32::try_from(pitch).map_err(|_| "image too large".to_string())?;
        // SAFETY: `out` holds `height` rows of `pitch` bytes, exactly what TurboJPEG writes for
        // the cropping region (or the whole scaled image) set above; `jpeg` outlives the call.
        let rc = unsafe {
            tj::tj3Decompress8(
                self.handle.as_ptr(),
                jpeg.as_ptr(),
                jpeg.len() as _,
                out.as_mut_ptr(),
                pitch_c,
                format,
            )
        };
        // Warnings (a truncated file, for one) count as errors too: the pixels are incomplete.
        self.check(rc)?;
        if header.cmyk {
            cmyk_to_rgb_in_place(out);
        }
        Ok(d)
    }
}

/// Converts packed CMYK pixels, as libjpeg hands over an Adobe CMYK or YCCK JPEG (inverted:
/// 255 = no ink, the convention Photoshop writes and TurboJPEG uses), to packed RGB in place:
/// R = C x K / 255 and likewise for G (M) and B (Y), rounded. This is the conversion TensorFlow's
/// `decode_jpeg` and Pillow's `convert("RGB")` apply, without colour management. The buffer
/// shrinks from 4 to 3 bytes per pixel.
pub fn cmyk_to_rgb_in_place(buf: &mut Vec<u8>) {
    let pixels = buf.len() / 4;
    for i in 0..pixels {
        // Pixel i is read (4i..4i+4) before anything is written at 3i..3i+3 <= 4i.
        let [c, m, y, k] = [buf[4 * i], buf[4 * i + 1], buf[4 * i + 2], buf[4 * i + 3]];
        let mix = |v: u8| ((u32::from(v) * u32::from(k) + 127) / 255) as u8;
        buf[3 * i] = mix(c);
        buf[3 * i + 1] = mix(m);
        buf[3 * i + 2] = mix(y);
    }
    buf.truncate(pixels * 3);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::{encode_jpeg, Chroma};

    fn photo(w: u32, h: u32, chroma: Chroma) -> Vec<u8> {
        let mut rng = crate::rng::SplitMix64::new(u64::from(w * 7 + h));
        let px = crate::dataset::synth_image(&mut rng, 2, w, h);
        encode_jpeg(&px, w, h, 85, chroma).unwrap()
    }

    #[test]
    fn a_region_decodes_to_the_same_pixels_as_the_whole_image() {
        for chroma in [Chroma::Half420, Chroma::Full444] {
            for mode in [DecodeMode::Accurate, DecodeMode::Fast] {
                let jpeg = photo(333, 250, chroma);
                let mut dec = Decoder::new(mode).unwrap();
                let mut whole = Vec::new();
                let full = dec
                    .decode_rgb(&jpeg, &mut whole, |_| Ok::<_, ()>((8, None)))
                    .unwrap()
                    .unwrap();
                assert_eq!((full.width, full.height), (333, 250));
                let want = Region {
                    x0: 41,
                    y0: 20,
                    x1: 292,
                    y1: 230,
                };
                let mut part = Vec::new();
                let d = dec
                    .decode_rgb(&jpeg, &mut part, |_| Ok::<_, ()>((8, Some(want))))
                    .unwrap()
                    .unwrap();
                let mcu = if chroma == Chroma::Half420 { 16 } else { 8 };
                assert_eq!(d.left, 41 / mcu * mcu);
                assert_eq!((d.top, d.width + d.left, d.height), (20, 292, 210));
                // Away from the region's left and right edges (where smooth upsampling sees
                // other neighbours) every pixel equals the whole decode's.
                let skip = if mode == DecodeMode::Accurate { 2 } else { 0 };
                for y in 0..d.height {
                    let row = &part[(y * d.width + skip) * 3..((y + 1) * d.width - skip) * 3];
                    let from = ((y + d.top) * 333 + d.left + skip) * 3;
                    assert_eq!(
                        row,
                        &whole[from..from + row.len()],
                        "{chroma:?} {mode:?} row {y}"
                    );
                }
            }
        }
    }

    #[test]
    fn one_decoder_crops_rows_after_any_other_image() {
        // A region starting below the top row, decoded with plain upsampling (merged with the
        // colour conversion) by an instance that last decoded a 4:4:4 photo (separate colour
        // converter): libjpeg-turbo's row skip then touches the earlier image's freed converter
        // unless the instance is fresh. `.ci/check-memory.sh` runs this under valgrind.
        let tall = photo(250, 400, Chroma::Half420);
        let region = Region {
            x0: 0,
            y0: 75,
            x1: 250,
            y1: 325,
        };
        let mut want = Vec::new();
        Decoder::new(DecodeMode::Fast)
            .unwrap()
            .decode_rgb(&tall, &mut want, |_| Ok::<_, ()>((8, Some(region))))
            .unwrap()
            .unwrap();
        let mut dec = Decoder::new(DecodeMode::Fast).unwrap();
        let mut out = Vec::new();
        for first in [photo(300, 200, Chroma::Full444), tall.clone()] {
            dec.decode_rgb(&first, &mut out, |_| Ok::<_, ()>((8, None)))
                .unwrap()
                .unwrap();
            let d = dec
                .decode_rgb(&tall, &mut out, |_| Ok::<_, ()>((8, Some(region))))
                .unwrap()
                .unwrap();
            assert_eq!((d.top, d.height), (75, 250));
            assert!(out == want);
        }
    }

    /// `rgb` as an Adobe (inverted) CMYK JPEG in `colorspace` (CMYK or YCCK), with black ink
    /// `k` everywhere (255 = none) and the colour inks chosen so that R = C x K / 255 gives back
    /// `rgb` as nearly as 8 bits allow.
    fn cmyk_jpeg(rgb: &[u8], w: u32, h: u32, k: u8, colorspace: turbojpeg::Colorspace) -> Vec<u8> {
        let ink = |v: u8| ((u32::from(v) * 255 + u32::from(k) / 2) / u32::from(k)).min(255) as u8;
        let cmyk: Vec<u8> = rgb
            .chunks(3)
            .flat_map(|p| [ink(p[0]), ink(p[1]), ink(p[2]), k])
            .collect();
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(95).unwrap();
        c.set_subsamp(turbojpeg::Subsamp::None).unwrap();
        c.set_colorspace(colorspace).unwrap();
        c.compress_to_vec(turbojpeg::Image {
            pixels: &cmyk[..],
            width: w as usize,
            pitch: w as usize * 4,
            height: h as usize,
            format: turbojpeg::PixelFormat::CMYK,
        })
        .unwrap()
    }

    #[test]
    fn adobe_cmyk_and_ycck_jpegs_decode_to_rgb() {
        let (w, h) = (160u32, 120u32);
        let mut rng = crate::rng::SplitMix64::new(11);
        // Kept below the darkest value K = 200 can reach through C x K / 255.
        let rgb: Vec<u8> = crate::dataset::synth_image(&mut rng, 3, w, h)
            .into_iter()
            .map(|v| (u32::from(v) * 190 / 255) as u8)
            .collect();
        let psnr = |a: &[u8], b: &[u8]| {
            let mse = a
                .iter()
                .zip(b)
                .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum::<f64>()
                / a.len() as f64;
            10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
        };
        for colorspace in [turbojpeg::Colorspace::CMYK, turbojpeg::Colorspace::YCCK] {
            for k in [255u8, 200] {
                let jpeg = cmyk_jpeg(&rgb, w, h, k, colorspace);
                let mut dec = Decoder::new(DecodeMode::Accurate).unwrap();
                assert!(dec.read_header(&jpeg).unwrap().cmyk);
                let mut out = Vec::new();
                let d = dec
                    .decode_rgb(&jpeg, &mut out, |_| Ok::<_, ()>((8, None)))
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{colorspace:?} k={k}: {e}"));
                assert_eq!((d.width, d.height), (160, 120));
                assert_eq!(out.len(), 160 * 120 * 3);
                let q = psnr(&out, &rgb);
                assert!(
                    q > 35.0,
                    "{colorspace:?} k={k}: {q:.1} dB from the RGB it encodes"
                );
                // Scaled and cropped as preprocessing decodes it, too.
                let region = Region {
                    x0: 8,
                    y0: 4,
                    x1: 60,
                    y1: 50,
                };
                let d = dec
                    .decode_rgb(&jpeg, &mut out, |_| Ok::<_, ()>((4, Some(region))))
                    .unwrap()
                    .unwrap();
                assert_eq!(out.len(), d.width * d.height * 3);
            }
        }
        // The whole per-image step takes it like any photo.
        let jpeg = cmyk_jpeg(&rgb, w, h, 255, turbojpeg::Colorspace::YCCK);
        let rgb_jpeg = crate::transform::encode_jpeg(&rgb, w, h, 95, Chroma::Full444).unwrap();
        let mut t = crate::transform::Transformer::new(&Default::default()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        t.process(&jpeg, &mut a).unwrap();
        t.process(&rgb_jpeg, &mut b).unwrap();
        let (a, b) = (
            crate::transform::decode_jpeg(&a).unwrap(),
            crate::transform::decode_jpeg(&b).unwrap(),
        );
        assert!(psnr(&a.pixels, &b.pixels) > 35.0);
    }

    #[test]
    fn cmyk_conversion_is_tensorflows() {
        // R = C x K / 255 on inverted values: no ink is white, full black is black.
        let mut px = vec![
            255, 255, 255, 255, 0, 0, 0, 0, 255, 128, 0, 128, 10, 20, 30, 255,
        ];
        cmyk_to_rgb_in_place(&mut px);
        assert_eq!(px, vec![255, 255, 255, 0, 0, 0, 128, 64, 0, 10, 20, 30]);
    }

    #[test]
    fn scaled_region_and_errors() {
        let jpeg = photo(500, 400, Chroma::Half420);
        let mut dec = Decoder::new(DecodeMode::Fast).unwrap();
        let mut out = Vec::new();
        let d = dec
            .decode_rgb(&jpeg, &mut out, |h| {
                assert_eq!((h.width, h.height, h.subsamp), (500, 400, 2));
                Ok::<_, ()>((
                    4,
                    Some(Region {
                        x0: 25,
                        y0: 0,
                        x1: 225,
                        y1: 200,
                    }),
                ))
            })
            .unwrap()
            .unwrap();
        // Scaled by 4/8 the iMCU is 8 pixels wide.
        assert_eq!(
            d,
            Decoded {
                left: 24,
                top: 0,
                width: 201,
                height: 200
            }
        );
        assert_eq!(out.len(), 201 * 200 * 3);
        // The plan can stop the decode.
        assert_eq!(dec.decode_rgb(&jpeg, &mut out, |_| Err("no")), Err("no"));
        // A truncated file is an error (libjpeg's warning), and the decoder works afterwards.
        let cut = &jpeg[..jpeg.len() / 2];
        let e = dec
            .decode_rgb(cut, &mut out, |_| Ok::<_, ()>((8, None)))
            .unwrap()
            .unwrap_err();
        assert!(
            e.contains("premature end") || e.contains("Premature end"),
            "{e}"
        );
        assert!(dec
            .decode_rgb(&jpeg, &mut out, |_| Ok::<_, ()>((8, None)))
            .unwrap()
            .is_ok());
        assert!(dec.read_header(b"not a jpeg").is_err());
    }
}
