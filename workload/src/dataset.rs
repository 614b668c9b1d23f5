//! The flowers dataset: the class list, a seeded synthetic stand-in generator (`gen-dataset`) and
//! the scan of any `<root>/<class>/*` folder (local or gs://) into labelled inputs.

use std::path::{Path, PathBuf};

use crate::rng::SplitMix64;
use crate::storage::{Storage, StorageError};
use crate::transform::{encode_jpeg, Chroma};
use crate::Error;

/// Class names, sorted: the label of a class is its index here.
pub const CLASSES: [&str; 5] = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
/// Image counts of the real flower_photos set (3670 in all).
pub const COUNTS: [usize; 5] = [633, 898, 641, 699, 799];
pub const TOTAL: usize = 3670;
/// Most images `gen-dataset` makes: about 270 times the real set, some 50 GB of JPEGs and hours
/// of generating. Past it a count is a typo, and its job list alone would not fit in memory.
pub const MAX_IMAGES: usize = 1_000_000;

/// Per-class counts for `total` images, proportional to the real set (largest remainder), so 3670
/// gives exactly the real counts. Any `usize` works: `total * count` is formed in 128 bits, where
/// it cannot overflow (in `usize` it wrapped, and the remainder loop never ended).
pub fn class_counts(total: usize) -> [usize; 5] {
    let mut out = [0usize; 5];
    let mut rem: Vec<(usize, usize)> = Vec::new();
    for (i, &c) in COUNTS.iter().enumerate() {
        let scaled = total as u128 * c as u128;
        // Both fit: the quotient is at most `total`, the remainder below TOTAL.
        out[i] = (scaled / TOTAL as u128) as usize;
        rem.push(((scaled % TOTAL as u128) as usize, i));
    }
    rem.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = total - out.iter().sum::<usize>();
    for &(_, i) in rem.iter().cycle() {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Options of `gen-dataset`.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub out: PathBuf,
    pub images: usize,
    pub seed: u64,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// JPEG quality of the generated photos (Flickr-like: 85).
    pub quality: u8,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            out: PathBuf::from("flowers"),
            images: TOTAL,
            seed: 1,
            threads: 0,
            quality: 85,
        }
    }
}

/// What `generate` wrote.
#[derive(Clone, Debug, Default)]
pub struct GenSummary {
    pub images: usize,
    pub bytes: u64,
    pub per_class: Vec<(String, usize)>,
    /// Mean bits per pixel of the JPEGs (photographic content sits around 2.5-3 at q85).
    pub bits_per_pixel: f64,
}

/// Width and height of generated image `idx` of `class`: long side mostly 320-500 px (most at
/// 500, like the Flickr originals), a few larger, mixed orientations and aspect ratios.
pub fn image_dims(rng: &mut SplitMix64) -> (u32, u32) {
    let r = rng.f32();
    let long = if r < 0.7 {
        500
    } else if r < 0.95 {
        320 + rng.below(180) as u32
    } else {
        501 + rng.below(300) as u32
    };
    let aspects = [0.75f32, 0.666, 0.75, 0.75, 0.8];
    let a = if rng.f32() < 0.8 {
        aspects[rng.below(aspects.len() as u64) as usize]
    } else {
        rng.range_f32(0.55, 1.0)
    };
    let short = ((long as f32 * a).round() as u32).max(16);
    if rng.f32() < 0.22 {
        (short, long)
    } else {
        (long, short)
    }
}

/// Value-noise lattice: smooth random field with features every `cell` pixels.
struct Lattice {
    cell: f32,
    cols: usize,
    vals: Vec<f32>,
}

impl Lattice {
    fn new(rng: &mut SplitMix64, w: u32, h: u32, cell: f32) -> Self {
        let cols = (w as f32 / cell) as usize + 2;
        let rows = (h as f32 / cell) as usize + 2;
        let vals = (0..cols * rows).map(|_| rng.f32() * 2.0 - 1.0).collect();
        Lattice { cell, cols, vals }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let fx = x / self.cell;
        let fy = y / self.cell;
        let (ix, iy) = (fx as usize, fy as usize);
        let (tx, ty) = (fx - ix as f32, fy - iy as f32);
        // Smoothstep weights avoid visible lattice creases.
        let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
        let i = iy * self.cols + ix;
        let a = self.vals[i] + (self.vals[i + 1] - self.vals[i]) * sx;
        let b = self.vals[i + self.cols]
            + (self.vals[i + self.cols + 1] - self.vals[i + self.cols]) * sx;
        a + (b - a) * sy
    }
}

/// Petal colour and centre colour per class, in RGB 0..1.
fn class_palette(class: usize, rng: &mut SplitMix64) -> ([f32; 3], [f32; 3], u32) {
    let j = |rng: &mut SplitMix64, c: [f32; 3]| {
        c.map(|v| (v + rng.range_f32(-0.08, 0.08)).clamp(0.0, 1.0))
    };
    match class {
        0 => (
            j(rng, [0.95, 0.95, 0.92]),
            j(rng, [0.95, 0.8, 0.15]),
            14 + rng.below(10) as u32,
        ),
        1 => (
            j(rng, [0.98, 0.85, 0.1]),
            j(rng, [0.9, 0.7, 0.05]),
            30 + rng.below(20) as u32,
        ),
        2 => (
            j(rng, [0.8, 0.1, 0.2]),
            j(rng, [0.55, 0.05, 0.1]),
            5 + rng.below(4) as u32,
        ),
        3 => (
            j(rng, [0.98, 0.78, 0.05]),
            j(rng, [0.35, 0.2, 0.05]),
            18 + rng.below(12) as u32,
        ),
        _ => {
            let tulips = [
                [0.9, 0.2, 0.3],
                [0.95, 0.5, 0.7],
                [0.6, 0.2, 0.7],
                [0.98, 0.85, 0.2],
            ];
            let c = tulips[rng.below(4) as usize];
            (j(rng, c), j(rng, [0.3, 0.5, 0.1]), 3 + rng.below(3) as u32)
        }
    }
}

/// Renders one photo-like RGB image: blurred foliage/sky background, one to three flowers with
/// petals, multi-octave texture and sensor grain (the grain is what gives JPEG its photographic
/// bit rate).
pub fn synth_image(rng: &mut SplitMix64, class: usize, w: u32, h: u32) -> Vec<u8> {
    let bg_a = [
        rng.range_f32(0.1, 0.4),
        rng.range_f32(0.3, 0.6),
        rng.range_f32(0.05, 0.3),
    ];
    let bg_b = [
        rng.range_f32(0.4, 0.8),
        rng.range_f32(0.5, 0.85),
        rng.range_f32(0.5, 0.95),
    ];
    let scale = w.max(h) as f32;
    let mix = Lattice::new(rng, w, h, scale / 3.0);
    let oct: Vec<(Lattice, f32)> = [(scale / 8.0, 0.16), (24.0, 0.10), (8.0, 0.07), (3.0, 0.05)]
        .iter()
        .map(|&(c, a)| (Lattice::new(rng, w, h, c), a))
        .collect();
    let n_flowers = 1 + rng.below(3) as usize;
    let short = w.min(h) as f32;
    let flowers: Vec<_> = (0..n_flowers)
        .map(|i| {
            let (petal, centre, k) = class_palette(class, rng);
            let r = short
                * if i == 0 {
                    rng.range_f32(0.25, 0.45)
                } else {
                    rng.range_f32(0.1, 0.25)
                };
            let cx = rng.range_f32(0.2, 0.8) * w as f32;
            let cy = rng.range_f32(0.2, 0.8) * h as f32;
            let phase = rng.range_f32(0.0, std::f32::consts::TAU);
            (cx, cy, r, petal, centre, k as f32, phase)
        })
        .collect();
    let grain = rng.range_f32(0.05, 0.08);
    let mut px = Vec::with_capacity((w * h * 3) as usize);
    let mut noise = SplitMix64::new(rng.next_u64());
    let mut bits = 0u64;
    let mut nbits = 0;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32, y as f32);
            let m = (mix.at(fx, fy) * 0.5 + 0.5).clamp(0.0, 1.0);
            let mut c = [0f32; 3];
            for i in 0..3 {
                c[i] = bg_a[i] + (bg_b[i] - bg_a[i]) * m;
            }
            let mut tex = 0.0;
            for (l, a) in &oct {
                tex += l.at(fx, fy) * a;
            }
            for &(cx, cy, r, petal, centre, k, phase) in &flowers {
                let (dx, dy) = (fx - cx, fy - cy);
                let d2 = dx * dx + dy * dy;
                if d2 > r * r {
                    continue;
                }
                let d = d2.sqrt();
                let theta = dy.atan2(dx) + phase;
                let edge = r * (0.55 + 0.45 * (k * theta * 0.5).cos().abs());
                if d < 0.22 * r {
                    c = centre;
                    tex *= 1.6;
                } else if d < edge {
                    let shade = 0.75 + 0.25 * (1.0 - d / edge);
                    c = petal.map(|v| v * shade);
                }
            }
            // Two grain values per 16-bit draw keeps the generator cheap.
            if nbits < 16 {
                bits = noise.next_u64();
                nbits = 64;
            }
            let g = ((bits & 0xff) as f32 / 255.0 - 0.5) * 2.0 * grain;
            let gc = (((bits >> 8) & 0xff) as f32 / 255.0 - 0.5) * grain;
            bits >>= 16;
            nbits -= 16;
            let lum = tex + g;
            px.push(((c[0] + lum + gc) * 255.0).clamp(0.0, 255.0) as u8);
            px.push(((c[1] + lum) * 255.0).clamp(0.0, 255.0) as u8);
            px.push(((c[2] + lum - gc) * 255.0).clamp(0.0, 255.0) as u8);
        }
    }
    px
}

/// Generates the synthetic dataset under `opts.out`: `<class>/<class>_NNNN.jpg`. Same seed, same
/// bytes (each image has its own generator stream, so thread count does not matter).
pub fn generate(opts: &GenOptions) -> Result<GenSummary, Error> {
    if opts.images == 0 {
        return Err(Error::Options("--images must be at least 1".into()));
    }
    if opts.images > MAX_IMAGES {
        return Err(Error::Options(format!(
            "--images {}: at most {MAX_IMAGES} images are generated",
            opts.images
        )));
    }
    // Into an empty or new folder only: images of an earlier set left beside these (a larger
    // one, another seed) would be read as one dataset, and shards as inputs.
    if let Ok(mut entries) = std::fs::read_dir(&opts.out) {
        if let Some(entry) = entries.next() {
            let name = entry.map_or_else(|_| "?".into(), |e| e.file_name().display().to_string());
            return Err(Error::Options(format!(
                "--out {}: the folder is not empty (it holds {name}, ...); generate into an \
                 empty or new folder, so that no earlier files mix with these",
                opts.out.display()
            )));
        }
    }
    let counts = class_counts(opts.images);
    let mut jobs = Vec::new();
    for (class, &n) in counts.iter().enumerate() {
        let dir = opts.out.join(CLASSES[class]);
        std::fs::create_dir_all(&dir).map_err(|e| Error::output(dir.display(), e))?;
        for i in 0..n {
            jobs.push((class, i));
        }
    }
    let threads = crate::resolve_threads(opts.threads).min(jobs.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<(u64, u64), Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(u64, u64), Error> {
                    let (mut bytes, mut pixels) = (0u64, 0u64);
                    loop {
                        let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&(class, i)) = jobs.get(j) else {
                            break;
                        };
                        let mut rng = SplitMix64::derive(opts.seed, class as u64, i as u64);
                        let (w, h) = image_dims(&mut rng);
                        let px = synth_image(&mut rng, class, w, h);
                        let jpeg =
                            encode_jpeg(&px, w, h, opts.quality, Chroma::Half420).map_err(|e| {
                                Error::Other(format!("encoding a generated image: {e}"))
                            })?;
                        let path = opts
                            .out
                            .join(CLASSES[class])
                            .join(format!("{}_{:04}.jpg", CLASSES[class], i));
                        std::fs::write(&path, &jpeg)
                            .map_err(|e| Error::output(path.display(), e))?;
                        bytes += jpeg.len() as u64;
                        pixels += (w * h) as u64;
                    }
                    Ok((bytes, pixels))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Other("generator thread panicked".into())))
            })
            .collect()
    });
    let (mut bytes, mut pixels) = (0, 0);
    for r in results {
        let (b, p) = r?;
        bytes += b;
        pixels += p;
    }
    Ok(GenSummary {
        images: opts.images,
        bytes,
        per_class: CLASSES
            .iter()
            .zip(counts)
            .map(|(c, n)| (c.to_string(), n))
            .collect(),
        bits_per_pixel: bytes as f64 * 8.0 / pixels.max(1) as f64,
    })
}

/// One labelled input image found by [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputImage {
    /// Key relative to the storage root, `<class>/<file>` (a name that is not UTF-8 shown
    /// lossily).
    pub key: String,
    /// Index of `label` in the class list ([`NO_CLASS`] when `unusable`).
    pub class: usize,
    pub label: String,
    pub size: u64,
    /// The local file, named exactly (see [`crate::storage::ObjectInfo::path`]).
    pub path: Option<PathBuf>,
    /// Why the file cannot be a labelled example, when it cannot: preprocessing reports and
    /// skips it as it does a damaged JPEG, while the rest of the run goes on.
    pub unusable: Option<String>,
}

/// The class of an [`InputImage`] that has none (see [`InputImage::unusable`]).
pub const NO_CLASS: usize = usize::MAX;

/// Whether the class folder of a local `<class>/<file>` path has a name that is not UTF-8: a
/// label is text (TensorFlow reads it as a string), so such a folder gives none.
fn class_name_not_utf8(path: Option<&Path>) -> bool {
    path.and_then(Path::parent)
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_str().is_none())
}

/// The files under a scanned root that are not at `<class>/<file>`, which [`scan`] leaves out:
/// counted, with an example or two, so that a run can say what it did not read (a folder of
/// images one level too deep used to vanish without a word).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutsideLayout {
    /// Files directly under the root (`x.jpg`).
    pub top_level: usize,
    /// Files in folders below a class folder (`class/sub/x.jpg`).
    pub nested: usize,
    /// One or two of their keys, for messages: the first at the top level and the first nested
    /// one (by key), or the first two of the one kind there is.
    pub examples: Vec<String>,
}

impl OutsideLayout {
    /// Files left out, both kinds.
    pub fn count(&self) -> usize {
        self.top_level + self.nested
    }

    /// Counts one key that is not `<class>/<file>`, `nested` when it lies below a class folder
    /// rather than at the top level; `first` keeps the first two keys of each kind.
    fn add(&mut self, key: &str, nested: bool, first: &mut [Vec<String>; 2]) {
        if nested {
            self.nested += 1;
        } else {
            self.top_level += 1;
        }
        let kind = &mut first[usize::from(nested)];
        if kind.len() < 2 {
            kind.push(key.to_string());
        }
    }

    /// Picks the examples: the first of each kind, or the first two of the one kind there is.
    fn finish(&mut self, first: [Vec<String>; 2]) {
        let [top, nested] = first;
        self.examples = match (top.first(), nested.first()) {
            (Some(t), Some(n)) => vec![t.clone(), n.clone()],
            _ => top.into_iter().chain(nested).collect(),
        };
    }

    /// The one-line warning a run prints when it leaves files out (`None` when it leaves none),
    /// naming how many of each kind and one or two of them, never a line per file.
    pub fn warning(&self, location: &str) -> Option<String> {
        (self.count() > 0).then(|| {
            format!(
                "warning: {location}: {self}; only files directly inside a class folder \
                 (<class>/<image>) are read"
            )
        })
    }
}

impl std::fmt::Display for OutsideLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.count();
        write!(
            f,
            "ignored {n} {} outside <class>/<image> (",
            if n == 1 { "file" } else { "files" }
        )?;
        let kinds: Vec<String> = [
            (self.top_level, "at the top level"),
            (self.nested, "in folders below a class folder"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, where_)| format!("{n} {where_}"))
        .collect();
        write!(f, "{}", kinds.join(", "))?;
        if !self.examples.is_empty() {
            write!(f, "; e.g. {}", self.examples.join(", "))?;
        }
        write!(f, ")")
    }
}

/// Lists `<root>/<class>/<file>`: classes are the first-level folders sorted by name (labels
/// 0..n), files inside them sorted by name; deeper files and files at the root are ignored (see
/// [`scan_input`], which counts them). The files of a class folder whose name is not UTF-8 are
/// listed as unusable (with no class), not dropped, so they are reported.
pub fn scan(storage: &dyn Storage) -> Result<(Vec<String>, Vec<InputImage>), StorageError> {
    scan_input(storage).map(|(classes, images, _)| (classes, images))
}

/// [`scan`], also counting the files it leaves out because they are not at `<class>/<file>`:
/// files at the root and files in folders below a class folder. Hidden files and folders (a
/// name starting with `.`, such as `.DS_Store` or an unfinished shard's temporary) are left out
/// without being counted.
pub fn scan_input(
    storage: &dyn Storage,
) -> Result<(Vec<String>, Vec<InputImage>, OutsideLayout), StorageError> {
    let objects = storage.list()?;
    let mut classes: Vec<String> = Vec::new();
    let mut images: Vec<InputImage> = Vec::new();
    let mut outside = OutsideLayout::default();
    let mut first = [Vec::new(), Vec::new()];
    for o in objects {
        if o.key.split('/').any(|p| p.starts_with('.')) {
            continue;
        }
        let mut parts = o.key.split('/');
        let (Some(class), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
            let nested = o.key.contains('/');
            outside.add(&o.key, nested, &mut first);
            continue;
        };
        if class.is_empty() || file.is_empty() {
            // `/x.jpg` (an object name with `//` under a gs:// prefix): a file at the top.
            outside.add(&o.key, !class.is_empty(), &mut first);
            continue;
        }
        let unusable = class_name_not_utf8(o.path.as_deref()).then(|| {
            format!(
                "the class folder's name ({class}) is not UTF-8, and a label must be text; \
                 rename the folder"
            )
        });
        if unusable.is_none() && !classes.iter().any(|c| c == class) {
            classes.push(class.to_string());
        }
        images.push(InputImage {
            label: class.to_string(),
            key: o.key,
            class: NO_CLASS,
            size: o.size,
            path: o.path,
            unusable,
        });
    }
    classes.sort();
    // Stable, after the listing's (key, path) order: names that are not UTF-8 and show as one
    // key keep a fixed order.
    images.sort_by(|a, b| a.key.cmp(&b.key));
    for image in &mut images {
        if image.unusable.is_none() {
            image.class = classes.binary_search(&image.label).unwrap_or(0);
        }
    }
    outside.finish(first);
    Ok((classes, images, outside))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_real_set_and_scale() {
        assert_eq!(class_counts(3670), COUNTS);
        for n in [1, 5, 40, 100, 1000, 7340] {
            assert_eq!(class_counts(n).iter().sum::<usize>(), n);
        }
        assert_eq!(class_counts(7340), COUNTS.map(|c| 2 * c));
    }

    /// Counts no machine can hold: `class_counts` used to overflow `total * count` (wrapping
    /// in a release build, whose remainder loop then never ended) and `generate` to allocate a
    /// job per image before the first was made.
    #[test]
    fn image_counts_no_machine_can_hold_are_refused_and_never_overflow() {
        for total in [
            usize::MAX,
            usize::MAX / 3,
            5_026_338_869_833,
            MAX_IMAGES + 1,
        ] {
            let counts = class_counts(total);
            assert_eq!(
                counts.iter().map(|&c| c as u128).sum::<u128>(),
                total as u128,
                "{total}"
            );
            // Proportional to the real set within one image.
            for (c, real) in counts.iter().zip(COUNTS) {
                let exact = total as f64 * real as f64 / TOTAL as f64;
                assert!((*c as f64 - exact).abs() <= 1.0 + exact * 1e-15, "{total}");
            }
        }
        let out = tempdir("gen-huge");
        for images in [MAX_IMAGES + 1, 5_026_338_869_833, usize::MAX] {
            let e = generate(&GenOptions {
                out: out.clone(),
                images,
                ..Default::default()
            })
            .unwrap_err();
            assert!(e.is_bad_input(), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("--images {images}: at most 1000000")),
                "{e}"
            );
            assert!(
                !out.exists(),
                "nothing is created before the count is checked"
            );
        }
    }

    #[test]
    fn dims_distribution_is_flowers_like() {
        let mut rng = SplitMix64::new(3);
        let dims: Vec<(u32, u32)> = (0..2000).map(|_| image_dims(&mut rng)).collect();
        let in_range = dims
            .iter()
            .filter(|(w, h)| (320..=500).contains(w.max(h)))
            .count();
        assert!(in_range > 1700, "{in_range}");
        let portrait = dims.iter().filter(|(w, h)| h > w).count();
        assert!((300..600).contains(&portrait), "{portrait}");
    }

    #[test]
    fn generation_is_deterministic_and_photographic() {
        let a = tempdir("gen-a");
        let b = tempdir("gen-b");
        let opts = |out: PathBuf, threads| GenOptions {
            out,
            images: 12,
            seed: 9,
            threads,
            quality: 85,
        };
        let sa = generate(&opts(a.clone(), 1)).unwrap();
        let sb = generate(&opts(b.clone(), 2)).unwrap();
        assert_eq!(sa.bytes, sb.bytes);
        for class in CLASSES {
            let mut names: Vec<_> = std::fs::read_dir(a.join(class))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                assert_eq!(
                    std::fs::read(a.join(class).join(&n)).unwrap(),
                    std::fs::read(b.join(class).join(&n)).unwrap()
                );
            }
        }
        assert!(
            (2.0..3.6).contains(&sa.bits_per_pixel),
            "bpp {}",
            sa.bits_per_pixel
        );
        // A second set into the same folder would mix with the first: refused, nothing written.
        let again = generate(&GenOptions {
            images: 5,
            ..opts(a.clone(), 1)
        })
        .unwrap_err();
        assert!(matches!(again, Error::Options(_)), "{again}");
        assert!(
            again.to_string().contains("the folder is not empty"),
            "{again}"
        );
        assert_eq!(
            std::fs::read_dir(a.join("daisy")).unwrap().count(),
            class_counts(12)[0]
        );
        // An empty folder is fine.
        let empty = tempdir("gen-empty");
        std::fs::create_dir_all(&empty).unwrap();
        generate(&opts(empty.clone(), 1)).unwrap();
        let _ = std::fs::remove_dir_all(a);
        let _ = std::fs::remove_dir_all(b);
        let _ = std::fs::remove_dir_all(empty);
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cherrypick-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
