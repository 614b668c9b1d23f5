//! The read-speed test: for each (batch_size, batch_number, repetition) cell, read
//! batch_size x batch_number records from the TFRecord shards (or image files), optionally
//! decoding the JPEGs, and time it. Cells run in parallel on `parallel` threads; the rows go to a
//! CSV that `regress` fits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::dataset::scan;
use crate::example;
use crate::storage::{self, Storage};
use crate::tfrecord::SliceReader;
use crate::transform::{DecodeMode, TransformOptions, Transformer};
use crate::Error;

/// What the test reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `*.tfrec` shards under the root.
    TfRecord,
    /// `<class>/*` image files under the root.
    Images,
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tfrecord" => Ok(Source::TfRecord),
            "images" => Ok(Source::Images),
            _ => Err(format!(
                "unknown source {s:?} (expected tfrecord or images)"
            )),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::TfRecord => "tfrecord",
            Source::Images => "images",
        })
    }
}

/// Options of one read-speed run.
#[derive(Clone, Debug)]
pub struct ReadSpeedOptions {
    pub input: String,
    pub source: Source,
    pub batch_sizes: Vec<usize>,
    pub batch_numbers: Vec<usize>,
    pub repetitions: usize,
    /// Decode each image's JPEG (full size) as well as reading it.
    pub decode: bool,
    /// Cells run at once (0 = all cores).
    pub parallel: usize,
    /// Set by another thread to stop the run early ([`Error::Cancelled`]): checked before each
    /// shard or image is read, so a cell of millions of images stops within one.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for ReadSpeedOptions {
    fn default() -> Self {
        ReadSpeedOptions {
            input: String::new(),
            source: Source::TfRecord,
            batch_sizes: vec![8, 16, 32, 64],
            batch_numbers: vec![10, 30, 60],
            repetitions: 3,
            decode: false,
            parallel: 0,
            cancel: None,
        }
    }
}

/// One timed cell.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadSpeedRow {
    pub source: Source,
    pub decode: bool,
    pub batch_size: usize,
    pub batch_number: usize,
    pub repetition: usize,
    pub images: usize,
    pub bytes: u64,
    pub seconds: f64,
}

impl ReadSpeedRow {
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// Header of the CSV [`write_csv`] writes (and `regress` reads).
pub const CSV_HEADER: &str =
    "source,decode,batch_size,batch_number,repetition,images,bytes,seconds,images_per_s,mb_per_s";

/// Renders rows as CSV, header first.
pub fn to_csv(rows: &[ReadSpeedRow]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{:.6},{:.3},{:.3}\n",
            r.source,
            r.decode,
            r.batch_size,
            r.batch_number,
            r.repetition,
            r.images,
            r.bytes,
            r.seconds,
            r.images_per_s(),
            r.mb_per_s()
        ));
    }
    s
}

/// The objects one cell reads through, in order; cycled when a cell wants more records than the
/// dataset holds (like `dataset.repeat()`), so every cell does the work its size says.
struct Plan {
    keys: Vec<String>,
    /// Set when the storage is a local folder: objects are then mapped, not copied.
    local_root: Option<PathBuf>,
}

/// A read-only memory map of a whole local file. Reading shards through the page cache this way
/// skips the kernel's copy into a user buffer, which was over 40% of the no-decode read time.
/// (A file truncated by someone else while mapped would fault; the test reads its own output.)
struct Mapped {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapped {
    /// Maps `path`; `None` for an empty file (mmap refuses length 0).
    fn open(path: &Path) -> std::io::Result<Option<Mapped>> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path)?;
        let len = usize::try_from(f.metadata()?.len())
            .map_err(|_| std::io::Error::other("file larger than the address space"))?;
        if len == 0 {
            return Ok(None);
        }
        // SAFETY: a fresh private read-only mapping of an open file; the fd may close after.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(Mapped { ptr, len }))
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is mapped readable until drop.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// One object's bytes, mapped or read.
enum Object {
    Mapped(Mapped),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Object {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Object::Mapped(m) => m.bytes(),
            Object::Owned(v) => v,
        }
    }
}

fn fetch(storage: &dyn Storage, plan: &Plan, key: &str) -> Result<Object, Error> {
    if let Some(root) = &plan.local_root {
        let path = root.join(key);
        return match Mapped::open(&path) {
            Ok(Some(m)) => Ok(Object::Mapped(m)),
            Ok(None) => Ok(Object::Owned(Vec::new())),
            Err(e) => Err(Error::Input(crate::StorageError::io(
                "read",
                path.display(),
                &e,
            ))),
        };
    }
    Ok(Object::Owned(storage.get(key).map_err(Error::Input)?))
}

fn plan(storage: &dyn Storage, source: Source) -> Result<Plan, Error> {
    let keys: Vec<String> = match source {
        Source::TfRecord => storage
            .list()
            .map_err(Error::Input)?
            .into_iter()
            .filter(|o| o.key.ends_with(".tfrec") || o.key.ends_with(".tfrecord"))
            .filter(|o| !o.key.rsplit('/').next().unwrap_or("").starts_with('.'))
            .map(|o| o.key)
            .collect(),
        Source::Images => scan(storage)
            .map_err(Error::Input)?
            .1
            .into_iter()
            .map(|i| i.key)
            .collect(),
    };
    if source == Source::TfRecord {
        check_one_run(&keys, &storage.location())?;
    }
    if keys.is_empty() {
        return Err(Error::Options(format!(
            "no {} found under {}",
            match source {
                Source::TfRecord => "*.tfrec shards",
                Source::Images => "<class>/<file> images",
            },
            storage.location()
        )));
    }
    // A local folder (not gs://, and really there) is read through memory maps.
    let location = storage.location();
    let local_root = (!location.starts_with("gs://") && Path::new(&location).is_dir())
        .then(|| PathBuf::from(location));
    Ok(Plan { keys, local_root })
}

/// Refuses shards of two preprocessing runs in one folder: two `flowersNN-COUNT.tfrec` files of
/// one folder with the same number NN (an earlier run with other counts left its shards).
fn check_one_run(keys: &[String], location: &str) -> Result<(), Error> {
    let mut first: std::collections::HashMap<(&str, usize), &str> = Default::default();
    for key in keys {
        let (folder, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        let Some((index, _)) = crate::preprocess::parse_shard_name(name) else {
            continue;
        };
        if let Some(other) = first.insert((folder, index), key) {
            return Err(Error::Options(format!(
                "{location}: {other} and {key} are both shard {index:02}: shards of two \
                 preprocessing runs are mixed here; re-run preprocess into this folder (it \
                 removes the earlier run's shards) or into an empty one"
            )));
        }
    }
    Ok(())
}

/// Reads `want` records (or files) starting at the first object, decoding if asked.
fn read_cell(
    storage: &dyn Storage,
    plan: &Plan,
    source: Source,
    want: usize,
    decoder: Option<&mut Transformer>,
    cancel: Option<&AtomicBool>,
) -> Result<(usize, u64), Error> {
    let mut decoder = decoder;
    let (mut images, mut bytes) = (0usize, 0u64);
    let mut empty_pass = true;
    'outer: loop {
        for key in &plan.keys {
            if images >= want {
                break 'outer;
            }
            if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(Error::Cancelled);
            }
            let data = fetch(storage, plan, key)?;
            match source {
                Source::Images => {
                    bytes += data.len() as u64;
                    if let Some(d) = decoder.as_deref_mut() {
                        // A broken image counts as read; its decode error is not the reader's.
                        let _ = d.decode(&data);
                    }
                    images += 1;
                    empty_pass = false;
                }
                Source::TfRecord => {
                    for rec in SliceReader::new(&data, key) {
                        if images >= want {
                            break 'outer;
                        }
                        let rec = rec?;
                        let ex = example::decode(rec)
                            .map_err(|e| Error::Options(format!("{key}: {e}")))?;
                        let img = ex.bytes("image").ok_or_else(|| {
                            Error::Options(format!(
                                "{key}: record {images} has no single `image` bytes feature"
                            ))
                        })?;
                        bytes += rec.len() as u64;
                        if let Some(d) = decoder.as_deref_mut() {
                            let _ = d.decode(img);
                        }
                        images += 1;
                        empty_pass = false;
                    }
                }
            }
        }
        if empty_pass {
            return Err(Error::Options(format!(
                "{}: no records in any shard",
                storage.location()
            )));
        }
    }
    Ok((images, bytes))
}

/// Runs the grid on the storage named in `opts.input`.
pub fn run(opts: &ReadSpeedOptions) -> Result<Vec<ReadSpeedRow>, Error> {
    let storage = storage::open(&opts.input).map_err(Error::Input)?;
    run_with(opts, storage.as_ref())
}

/// Runs the grid on an opened storage. Rows come back in grid order.
pub fn run_with(
    opts: &ReadSpeedOptions,
    storage: &dyn Storage,
) -> Result<Vec<ReadSpeedRow>, Error> {
    if opts.batch_sizes.is_empty() || opts.batch_numbers.is_empty() || opts.repetitions == 0 {
        return Err(Error::Options(
            "need at least one batch size, batch number and repetition".into(),
        ));
    }
    if opts.batch_sizes.contains(&0) || opts.batch_numbers.contains(&0) {
        return Err(Error::Options(
            "batch sizes and batch numbers must be positive".into(),
        ));
    }
    let plan = plan(storage, opts.source)?;
    let mut cells = Vec::new();
    for &bs in &opts.batch_sizes {
        for &bn in &opts.batch_numbers {
            for rep in 0..opts.repetitions {
                cells.push((bs, bn, rep));
            }
        }
    }
    let threads = crate::resolve_threads(opts.parallel).min(cells.len());
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<(usize, Result<ReadSpeedRow, Error>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                // Decode at full size (no DCT scaling): the test measures reading, not resizing.
                // The fast IDCT is what tf.data's decode_jpeg uses by default (TensorFlow's
                // dct_method "" = INTEGER_FAST); the records are 4:4:4, so upsampling is moot.
                let mut decoder = if opts.decode {
                    match Transformer::new(&TransformOptions {
                        dct_scaling: false,
                        decode: DecodeMode::Fast,
                        ..Default::default()
                    }) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            rows.lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push((0, Err(Error::Other(e.to_string()))));
                            return;
                        }
                    }
                } else {
                    None
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(bs, bn, rep)) = cells.get(i) else {
                        return;
                    };
                    let t0 = Instant::now();
                    let r = read_cell(
                        storage,
                        &plan,
                        opts.source,
                        bs * bn,
                        decoder.as_mut(),
                        opts.cancel.as_deref(),
                    )
                    .map(|(images, bytes)| ReadSpeedRow {
                        source: opts.source,
                        decode: opts.decode,
                        batch_size: bs,
                        batch_number: bn,
                        repetition: rep,
                        images,
                        bytes,
                        seconds: t0.elapsed().as_secs_f64(),
                    });
                    let failed = r.is_err();
                    rows.lock().unwrap_or_else(|p| p.into_inner()).push((i, r));
                    if failed {
                        // Skip the remaining cells: the same error would repeat.
                        next.store(cells.len(), Ordering::Relaxed);
                        return;
                    }
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{generate, GenOptions};
    use crate::preprocess::{self, PreprocessOptions};

    #[test]
    fn shards_of_two_runs_in_one_folder_are_refused() {
        let dir = std::env::temp_dir().join(format!("cherrypick-rs-mixed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut payload = Vec::new();
        crate::example::encode_flower(b"\xff\xd8\xff\xd9", 0, "daisy", &mut payload);
        for (name, records) in [("flowers00-2.tfrec", 2), ("flowers01-1.tfrec", 1)] {
            let mut shard = Vec::new();
            for _ in 0..records {
                crate::tfrecord::append_record(&mut shard, &payload);
            }
            std::fs::write(dir.join(name), shard).unwrap();
        }
        let opts = ReadSpeedOptions {
            input: dir.display().to_string(),
            batch_sizes: vec![1],
            batch_numbers: vec![1],
            repetitions: 1,
            parallel: 1,
            ..Default::default()
        };
        assert!(run(&opts).is_ok());
        // An earlier run's shard 00 (with another count) beside this run's.
        std::fs::copy(dir.join("flowers01-1.tfrec"), dir.join("flowers00-1.tfrec")).unwrap();
        let e = run(&opts).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains(
                "flowers00-1.tfrec and flowers00-2.tfrec are both shard 00: shards of two"
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn grid_over_shards_and_images() {
        let base = std::env::temp_dir().join(format!("cherrypick-rs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let data = base.join("data");
        let out = base.join("out");
        generate(&GenOptions {
            out: data.clone(),
            images: 20,
            seed: 2,
            threads: 2,
            quality: 85,
        })
        .unwrap();
        preprocess::run(&PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 3,
            threads: 2,
            ..Default::default()
        })
        .unwrap();
        let opts = ReadSpeedOptions {
            input: out.display().to_string(),
            batch_sizes: vec![2, 8],
            batch_numbers: vec![1, 4],
            repetitions: 2,
            decode: true,
            parallel: 2,
            ..Default::default()
        };
        let rows = run(&opts).unwrap();
        assert_eq!(rows.len(), 8);
        // Grid order, and 8 x 4 = 32 > 20 records: the reader cycles to do the full cell.
        assert_eq!(
            (rows[0].batch_size, rows[0].batch_number, rows[0].repetition),
            (2, 1, 0)
        );
        assert_eq!(rows[7].images, 32);
        assert!(rows
            .iter()
            .all(|r| r.images == r.batch_size * r.batch_number && r.bytes > 0));
        let csv = to_csv(&rows);
        assert_eq!(csv.lines().count(), 9);
        assert!(csv.starts_with(CSV_HEADER));

        let img_rows = run(&ReadSpeedOptions {
            input: data.display().to_string(),
            source: Source::Images,
            repetitions: 1,
            batch_sizes: vec![4],
            batch_numbers: vec![3],
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(img_rows[0].images, 12);

        // A raised cancel flag stops the grid before it reads anything, from either source.
        for source in [Source::TfRecord, Source::Images] {
            let input = match source {
                Source::TfRecord => &out,
                Source::Images => &data,
            };
            let e = run(&ReadSpeedOptions {
                input: input.display().to_string(),
                source,
                cancel: Some(Arc::new(AtomicBool::new(true))),
                ..opts.clone()
            })
            .unwrap_err();
            assert!(matches!(e, Error::Cancelled), "{e}");
        }

        // A damaged shard is an error naming the file.
        let shard = std::fs::read_dir(&out)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&shard).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&shard, bytes).unwrap();
        let e = run(&ReadSpeedOptions {
            batch_sizes: vec![64],
            batch_numbers: vec![1],
            repetitions: 1,
            ..opts
        })
        .unwrap_err();
        assert!(matches!(e, Error::Record(_)), "{e}");
        let name = shard.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            e.to_string().contains(&name) && e.to_string().contains("offset"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
