//! The read-speed test: for each (batch_size, batch_number, repetition) cell, read
//! batch_size x batch_number records from the TFRecord shards (or image files), optionally
//! decoding the JPEGs, and time it. Cells run in parallel on `parallel` threads; the rows go to a
//! CSV that `regress` fits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::dataset::{scan_input, OutsideLayout};
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

/// Most images one cell may read (batch_size x batch_number): a thousand million, hours even
/// without decoding; past it a product is a typo (or wrapped around), not a measurement.
pub const MAX_CELL_IMAGES: usize = 1_000_000_000;
/// Most cells in a grid (batch sizes x batch numbers x repetitions): each is timed on its own.
pub const MAX_CELLS: usize = 100_000;
/// Most cells timed at once (`--parallel`), as for the other commands' thread counts.
pub const MAX_PARALLEL: usize = 1024;

/// One timed cell.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadSpeedRow {
    pub source: Source,
    pub decode: bool,
    pub batch_size: usize,
    pub batch_number: usize,
    pub repetition: usize,
    /// Images read (and, with `decode`, decoded): what the throughput counts.
    pub images: usize,
    /// With `decode`, images read that failed to decode: read but not counted in `images`
    /// (images + decode_failures = batch_size x batch_number).
    pub decode_failures: usize,
    /// Bytes read, the failed images' included.
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
pub const CSV_HEADER: &str = "source,decode,batch_size,batch_number,repetition,images,bytes,\
     seconds,images_per_s,mb_per_s,decode_failures";

/// Renders rows as CSV, header first.
pub fn to_csv(rows: &[ReadSpeedRow]) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{:.6},{:.3},{:.3},{}\n",
            r.source,
            r.decode,
            r.batch_size,
            r.batch_number,
            r.repetition,
            r.images,
            r.bytes,
            r.seconds,
            r.images_per_s(),
            r.mb_per_s(),
            r.decode_failures
        ));
    }
    s
}

/// Checks, before the grid runs, that the CSV can go to `out`: it is not one of the files the
/// run reads (the same device and inode, so through a symlink or a hard link too: writing it
/// would replace a shard or an image with the results), and it is a file that may be written
/// (see [`storage::write_output_file`]).
pub fn check_output(opts: &ReadSpeedOptions, out: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(target) = std::fs::metadata(out) {
        if !opts.input.starts_with("gs://") {
            let storage = storage::open(&opts.input).map_err(Error::Input)?;
            let plan = plan(storage.as_ref(), opts.source)?;
            for (key, path) in &plan.objects {
                let Some(meta) = path.as_deref().and_then(|p| std::fs::metadata(p).ok()) else {
                    continue;
                };
                if (meta.dev(), meta.ino()) == (target.dev(), target.ino()) {
                    return Err(Error::Options(format!(
                        "--out {}: that is {}/{key}, one of the files this run reads; choose \
                         another output file",
                        out.display(),
                        storage.location()
                    )));
                }
            }
        }
    }
    storage::check_output_file(out).map_err(Error::Output)
}

/// Writes the rows as CSV to `path` (creating its folder): whole or not at all, see
/// [`storage::write_output_file`]. A full disk is not the input's fault (exit 1, not 2).
pub fn write_csv(path: &Path, rows: &[ReadSpeedRow]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Output(crate::StorageError::io("create folder", dir.display(), &e))
        })?;
    }
    storage::write_output_file(path, to_csv(rows).as_bytes()).map_err(Error::Output)
}

/// The objects one cell reads through, in order; cycled when a cell wants more records than the
/// dataset holds (like `dataset.repeat()`), so every cell does the work its size says.
struct Plan {
    /// Key and, in a local folder, the file's exact path (objects are then mapped, not copied).
    objects: Vec<(String, Option<PathBuf>)>,
    /// For each object, the record count its name gives (`flowersNN-COUNT.tfrec`, see
    /// [`crate::preprocess::shard_name`]); `None` for a name without one, and for images.
    named_records: Vec<Option<usize>>,
}

/// Where an object of the plan is, for messages: the local file, or the object under the root
/// (`gs://bucket/prefix/key`).
fn object_location(storage: &dyn Storage, key: &str, path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => format!("{}/{key}", storage.location().trim_end_matches('/')),
    }
}

/// A shard holding another number of records than its name says: cut short (a copy or upload
/// that stopped at a record boundary passes every CRC) or not the file preprocess wrote under
/// that name. Measuring it would time reads of data that is not there (a cell cycles sooner
/// through fewer records) or of records no run wrote.
fn count_mismatch(location: &str, named: usize, found: usize) -> Error {
    let what = if found < named {
        "it is truncated or not the shard preprocess wrote under that name"
    } else {
        "it is not the shard preprocess wrote under that name"
    };
    Error::Options(format!(
        "{location}: the shard's name says {named} records but it holds {found}: {what}; \
         re-run preprocess into this folder"
    ))
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
        let f = storage::open_regular(path)?;
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

fn fetch(storage: &dyn Storage, key: &str, path: Option<&Path>) -> Result<Object, Error> {
    if let Some(path) = path {
        return match Mapped::open(path) {
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
    let mut outside = OutsideLayout::default();
    let objects: Vec<(String, Option<PathBuf>)> = match source {
        // Hidden files and folders (`.old/`, a run's `.flowersNN.partial-PID`) are not shards,
        // as they are not inputs for preprocess.
        Source::TfRecord => storage
            .list()
            .map_err(Error::Input)?
            .into_iter()
            .filter(|o| o.key.ends_with(".tfrec") || o.key.ends_with(".tfrecord"))
            .filter(|o| !o.key.split('/').any(|part| part.starts_with('.')))
            .map(|o| (o.key, o.path))
            .collect(),
        // Every image file, also those a label could not be given to (no labels are read here).
        Source::Images => {
            let (_, images, left_out) = scan_input(storage).map_err(Error::Input)?;
            outside = left_out;
            images.into_iter().map(|i| (i.key, i.path)).collect()
        }
    };
    let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
    if source == Source::TfRecord {
        check_one_run(&keys, &storage.location())?;
    }
    let named_records = keys
        .iter()
        .map(|key| match source {
            Source::TfRecord => {
                let name = key.rsplit('/').next().unwrap_or(key);
                crate::preprocess::parse_shard_name(name).map(|(_, records)| records)
            }
            Source::Images => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(Error::Options(match source {
            Source::TfRecord => format!(
                "no *.tfrec shards found under {} (to time a folder of <class>/<image> photos, \
                 use --source images)",
                storage.location()
            ),
            Source::Images if outside.count() > 0 => format!(
                "no <class>/<file> images found under {}; {outside}",
                storage.location()
            ),
            Source::Images => format!(
                "no <class>/<file> images found under {}",
                storage.location()
            ),
        }));
    }
    Ok(Plan {
        objects,
        named_records,
    })
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

/// What one cell read.
#[derive(Default)]
struct Cell {
    /// Read, and decoded when decoding.
    images: usize,
    /// Read but not decodable (only when decoding).
    decode_failures: usize,
    bytes: u64,
    /// The first image that failed to decode and why, for the message when none decodes.
    first_failure: Option<String>,
}

impl Cell {
    /// Counts one image read, decoding it when asked: an image that fails to decode is read
    /// but not counted as decoded (the throughput would claim work that was not done).
    fn count(
        &mut self,
        decoder: Option<&mut Transformer>,
        jpeg: &[u8],
        what: impl FnOnce() -> String,
    ) {
        match decoder.map(|d| d.check_decodes(jpeg)) {
            Some(Err(e)) => {
                self.decode_failures += 1;
                if self.first_failure.is_none() {
                    self.first_failure = Some(format!("{}: {e}", what()));
                }
            }
            Some(Ok(())) | None => self.images += 1,
        }
    }

    fn done(&self) -> usize {
        self.images + self.decode_failures
    }
}

/// Reads `want` records (or files) starting at the first object, decoding if asked.
///
/// A shard whose name carries its record count (`flowersNN-COUNT.tfrec`) is checked against it
/// on the way, without a pass of its own: a record past the count is an error as soon as it is
/// read, and so are too few records when a pass reaches the shard's end. A cell that stops
/// inside a shard has read only records that exist, and leaves the rest to a larger cell.
fn read_cell(
    storage: &dyn Storage,
    plan: &Plan,
    source: Source,
    want: usize,
    decoder: Option<&mut Transformer>,
    cancel: Option<&AtomicBool>,
) -> Result<Cell, Error> {
    let mut decoder = decoder;
    let mut cell = Cell::default();
    let mut empty_pass = true;
    'outer: loop {
        for ((key, path), &named) in plan.objects.iter().zip(&plan.named_records) {
            if cell.done() >= want {
                break 'outer;
            }
            if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
                return Err(Error::Cancelled);
            }
            let data = fetch(storage, key, path.as_deref())?;
            match source {
                Source::Images => {
                    cell.bytes += data.len() as u64;
                    cell.count(decoder.as_deref_mut(), &data, || key.clone());
                    empty_pass = false;
                }
                Source::TfRecord => {
                    let mut records = SliceReader::new(&data, key);
                    let mut index = 0;
                    while cell.done() < want {
                        let Some(rec) = records.next() else {
                            // The shard's end, reached in this pass: all its records were read.
                            if let Some(named) = named.filter(|&n| n != index) {
                                let at = object_location(storage, key, path.as_deref());
                                return Err(count_mismatch(&at, named, index));
                            }
                            break;
                        };
                        let rec = rec?;
                        if let Some(named) = named.filter(|&n| index >= n) {
                            // More records than the name says: count them all for the message
                            // (only on this error path; a damaged one is reported as such).
                            let mut found = index + 1;
                            for rest in records.by_ref() {
                                rest?;
                                found += 1;
                            }
                            let at = object_location(storage, key, path.as_deref());
                            return Err(count_mismatch(&at, named, found));
                        }
                        let ex = example::decode(rec)
                            .map_err(|e| Error::Options(format!("{key}: {e}")))?;
                        let img = ex.bytes("image").ok_or_else(|| {
                            Error::Options(format!(
                                "{key}: record {index} has no single `image` bytes feature"
                            ))
                        })?;
                        cell.bytes += rec.len() as u64;
                        cell.count(decoder.as_deref_mut(), img, || {
                            format!("{key}: record {index}")
                        });
                        empty_pass = false;
                        index += 1;
                    }
                    if cell.done() >= want {
                        break 'outer;
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
    Ok(cell)
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
    let cells = grid(opts)?;
    let plan = plan(storage, opts.source)?;
    let threads = crate::resolve_threads(opts.parallel).min(cells.len());
    let next = AtomicUsize::new(0);
    type Timed = Result<(ReadSpeedRow, Option<String>), Error>;
    let rows: Mutex<Vec<(usize, Timed)>> = Mutex::new(Vec::new());
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
                        bs * bn, // checked by `grid`
                        decoder.as_mut(),
                        opts.cancel.as_deref(),
                    )
                    .map(|cell| {
                        let row = ReadSpeedRow {
                            source: opts.source,
                            decode: opts.decode,
                            batch_size: bs,
                            batch_number: bn,
                            repetition: rep,
                            images: cell.images,
                            decode_failures: cell.decode_failures,
                            bytes: cell.bytes,
                            seconds: t0.elapsed().as_secs_f64(),
                        };
                        (row, cell.first_failure)
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
    let rows: Vec<(ReadSpeedRow, Option<String>)> =
        rows.into_iter().map(|(_, r)| r).collect::<Result<_, _>>()?;
    // Some images that do not decode are the caller's to report (the rows count them apart);
    // none decoding at all measured nothing.
    let decoded: usize = rows.iter().map(|(r, _)| r.images).sum();
    if opts.decode && decoded == 0 {
        let failed: usize = rows.iter().map(|(r, _)| r.decode_failures).sum();
        let first = rows.iter().find_map(|(_, f)| f.as_deref()).unwrap_or("");
        return Err(Error::Options(format!(
            "--decode: none of the {failed} images read under {} could be decoded (first: \
             {first}); nothing was measured",
            storage.location()
        )));
    }
    Ok(rows.into_iter().map(|(r, _)| r).collect())
}

/// Checks the options' grid and parallelism as [`run`] does before reading anything: for a
/// caller that plans runs ahead (a search checks every configuration's before the first
/// probe, rather than fail each probe after its preprocessing was paid for).
pub fn check_options(opts: &ReadSpeedOptions) -> Result<(), Error> {
    grid(opts).map(|_| ())
}

/// The grid's cells (batch size, batch number, repetition) in order, after checking that each
/// cell's image count and the number of cells are numbers a run can mean: a product that
/// overflows used to wrap round to a cell of no images or of years.
fn grid(opts: &ReadSpeedOptions) -> Result<Vec<(usize, usize, usize)>, Error> {
    if opts.parallel > MAX_PARALLEL {
        return Err(Error::Options(format!(
            "--parallel {}: at most {MAX_PARALLEL} cells can be timed at once",
            opts.parallel
        )));
    }
    for &bs in &opts.batch_sizes {
        for &bn in &opts.batch_numbers {
            if bs.checked_mul(bn).is_none_or(|n| n > MAX_CELL_IMAGES) {
                return Err(Error::Options(format!(
                    "--batch-sizes {bs} x --batch-numbers {bn}: a cell reads batch_size x \
                     batch_number images, at most {MAX_CELL_IMAGES}"
                )));
            }
        }
    }
    let cells = opts
        .batch_sizes
        .len()
        .checked_mul(opts.batch_numbers.len())
        .and_then(|n| n.checked_mul(opts.repetitions))
        .filter(|&n| n <= MAX_CELLS)
        .ok_or_else(|| {
            Error::Options(format!(
                "{} --batch-sizes x {} --batch-numbers x --repetitions {}: more than {MAX_CELLS} \
                 cells",
                opts.batch_sizes.len(),
                opts.batch_numbers.len(),
                opts.repetitions
            ))
        })?;
    let mut out = Vec::with_capacity(cells);
    for &bs in &opts.batch_sizes {
        for &bn in &opts.batch_numbers {
            for rep in 0..opts.repetitions {
                out.push((bs, bn, rep));
            }
        }
    }
    Ok(out)
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

    /// Reads through [`Storage::get`], as from gs:// (the listing names no local paths).
    struct ThroughGet(storage::LocalStorage);

    impl Storage for ThroughGet {
        fn location(&self) -> String {
            self.0.location()
        }
        fn list(&self) -> Result<Vec<storage::ObjectInfo>, crate::StorageError> {
            let mut l = self.0.list()?;
            l.iter_mut().for_each(|o| o.path = None);
            Ok(l)
        }
        fn get(&self, key: &str) -> Result<Vec<u8>, crate::StorageError> {
            self.0.get(key)
        }
        fn put(&self, key: &str, data: &[u8]) -> Result<(), crate::StorageError> {
            self.0.put(key, data)
        }
        fn delete(&self, key: &str) -> Result<(), crate::StorageError> {
            self.0.delete(key)
        }
        fn create(
            &self,
            hint: &str,
        ) -> Result<Box<dyn storage::ObjectWriter>, crate::StorageError> {
            self.0.create(hint)
        }
        fn prepare_output(&self) -> Result<(), crate::StorageError> {
            self.0.prepare_output()
        }
    }

    /// A shard holding another number of records than its name says (cut short at a record
    /// boundary, which passes every CRC, or another file under a shard's name) used to be
    /// measured, a cell cycling sooner through what was there. It is refused naming the file
    /// and both counts, whether mapped from a local folder or fetched whole as from gs://, and
    /// checked in the read the cell does anyway.
    /// Shards in hidden folders (`.old/`) are not read, as preprocess does not read hidden
    /// inputs; a folder with no shards, or no photos where photos are timed, says what it holds.
    #[test]
    fn hidden_shards_are_not_read_and_an_empty_plan_says_what_is_there() {
        let base =
            std::env::temp_dir().join(format!("cherrypick-rs-hidden-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (data, out) = (base.join("data"), base.join("out"));
        generate(&GenOptions {
            out: data.clone(),
            images: 10,
            seed: 8,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        preprocess::run(&PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 1,
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        // A damaged shard under a hidden folder: read, it would fail the run.
        std::fs::create_dir_all(out.join(".old")).unwrap();
        std::fs::write(out.join(".old/flowers00-10.tfrec"), b"not a shard").unwrap();
        let opts = ReadSpeedOptions {
            input: out.display().to_string(),
            batch_sizes: vec![10],
            batch_numbers: vec![2],
            repetitions: 1,
            parallel: 1,
            ..Default::default()
        };
        assert_eq!(run(&opts).unwrap()[0].images, 20);
        let e = run(&ReadSpeedOptions {
            input: data.display().to_string(),
            ..opts.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("use --source images"), "{e}");
        let e = run(&ReadSpeedOptions {
            input: data.join("tulips").display().to_string(),
            source: Source::Images,
            ..opts.clone()
        })
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("ignored 2 files outside <class>/<image> (2 at the top level; e.g. tulips_0000.jpg, tulips_0001.jpg)"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn a_shard_holding_other_than_its_named_record_count_is_refused() {
        let base = std::env::temp_dir().join(format!("cherrypick-rs-count-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (data, out) = (base.join("data"), base.join("out"));
        generate(&GenOptions {
            out: data.clone(),
            images: 12,
            seed: 8,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let s = preprocess::run(&PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 2,
            threads: 1,
            seed: 8,
            ..Default::default()
        })
        .unwrap();
        let names: Vec<&str> = s.shards.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["flowers00-6.tfrec", "flowers01-6.tfrec"]);
        let records = |name: &str| -> Vec<Vec<u8>> {
            let bytes = std::fs::read(out.join(name)).unwrap();
            crate::tfrecord::SliceReader::new(&bytes, name)
                .map(|r| r.unwrap().to_vec())
                .collect()
        };
        let write_shard = |name: &str, recs: &[Vec<u8>]| {
            let mut shard = Vec::new();
            for r in recs {
                crate::tfrecord::append_record(&mut shard, r);
            }
            std::fs::write(out.join(name), shard).unwrap();
        };
        let (first, second) = (records("flowers00-6.tfrec"), records("flowers01-6.tfrec"));
        let opts = ReadSpeedOptions {
            input: out.display().to_string(),
            batch_sizes: vec![12],
            batch_numbers: vec![1],
            repetitions: 1,
            parallel: 1,
            ..Default::default()
        };
        let shard = out.join("flowers01-6.tfrec");
        let through_get = ThroughGet(storage::LocalStorage::new(&out));
        assert_eq!(run(&opts).unwrap()[0].images, 12);

        // Cut short after 4 of its 6 records.
        write_shard("flowers01-6.tfrec", &second[..4]);
        let want = "the shard's name says 6 records but it holds 4";
        for e in [
            run(&opts).unwrap_err(),
            run_with(&opts, &through_get).unwrap_err(),
            // Several cells at once: the same error.
            run(&ReadSpeedOptions {
                batch_sizes: vec![11, 12, 13],
                parallel: 3,
                ..opts.clone()
            })
            .unwrap_err(),
        ] {
            assert!(e.is_bad_input(), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("{}: {want}", shard.display())),
                "{e}"
            );
        }
        // A raised cancel flag is still a cancellation, not a count error.
        let e = run(&ReadSpeedOptions {
            cancel: Some(Arc::new(AtomicBool::new(true))),
            ..opts.clone()
        })
        .unwrap_err();
        assert!(matches!(e, Error::Cancelled), "{e}");

        // Two records more than the name says (another run's file under this name): refused as
        // soon as the first extra one is read, counting them all.
        let longer: Vec<Vec<u8>> = second.iter().chain(&first[..2]).cloned().collect();
        write_shard("flowers01-6.tfrec", &longer);
        for e in [
            run(&ReadSpeedOptions {
                batch_sizes: vec![13],
                ..opts.clone()
            })
            .unwrap_err(),
            run_with(
                &ReadSpeedOptions {
                    batch_sizes: vec![13],
                    ..opts.clone()
                },
                &through_get,
            )
            .unwrap_err(),
        ] {
            assert!(e.is_bad_input(), "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "{}: the shard's name says 6 records but it holds 8",
                    shard.display()
                )),
                "{e}"
            );
        }
        // Named for what it holds, the same file is read.
        std::fs::rename(&shard, out.join("flowers01-8.tfrec")).unwrap();
        let rows = run(&ReadSpeedOptions {
            batch_sizes: vec![14],
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(rows[0].images, 14);
        let _ = std::fs::remove_dir_all(&base);
    }

    /// A folder `tag` holding one shard of `records` copies of a record whose image is `jpeg`.
    fn one_shard(tag: &str, jpeg: &[u8], records: usize) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cherrypick-rs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut payload = Vec::new();
        crate::example::encode_flower(jpeg, 0, "daisy", &mut payload);
        let mut shard = Vec::new();
        for _ in 0..records {
            crate::tfrecord::append_record(&mut shard, &payload);
        }
        std::fs::write(dir.join(crate::preprocess::shard_name(0, records)), shard).unwrap();
        dir
    }

    /// Products and grids no run can mean are refused before anything is read, naming the
    /// options: `batch_size * batch_number` used to wrap round (4294967296 x 4294967296 read
    /// 0 images and "succeeded"; usize::MAX x 2 read for ever).
    #[test]
    fn cells_no_run_can_mean_are_refused_naming_the_options() {
        let dir = one_shard("huge", b"\xff\xd8\xff\xd9", 3);
        let opts = ReadSpeedOptions {
            input: dir.display().to_string(),
            repetitions: 1,
            parallel: 1,
            ..Default::default()
        };
        for (bs, bn) in [
            (1usize << 32, 1usize << 32),
            (usize::MAX, 2),
            (usize::MAX, 1),
            (MAX_CELL_IMAGES + 1, 1),
            (1, MAX_CELL_IMAGES + 1),
        ] {
            let started = Instant::now();
            let e = run(&ReadSpeedOptions {
                batch_sizes: vec![bs],
                batch_numbers: vec![bn],
                ..opts.clone()
            })
            .unwrap_err();
            assert!(started.elapsed().as_secs() < 5);
            assert!(e.is_bad_input(), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("--batch-sizes {bs} x --batch-numbers {bn}")),
                "{e}"
            );
        }
        for (repetitions, parallel, want) in [
            (
                usize::MAX,
                1,
                "--repetitions 18446744073709551615: more than 100000 cells",
            ),
            (MAX_CELLS, 1, "--repetitions 100000: more than 100000 cells"),
            (1, MAX_PARALLEL + 1, "--parallel 1025: at most 1024"),
        ] {
            let e = run(&ReadSpeedOptions {
                batch_sizes: vec![1, 2],
                batch_numbers: vec![1],
                repetitions,
                parallel,
                ..opts.clone()
            })
            .unwrap_err();
            assert!(e.is_bad_input() && e.to_string().contains(want), "{e}");
        }
        // The largest cell allowed is still taken (here only counted, not read).
        assert_eq!(
            grid(&ReadSpeedOptions {
                batch_sizes: vec![MAX_CELL_IMAGES],
                batch_numbers: vec![1],
                ..opts
            })
            .unwrap()
            .len(),
            1
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The CSV never replaces a file the run reads: the output is compared with every input by
    /// device and inode, so a symlink or a hard link to a shard is refused too.
    #[test]
    fn the_output_is_never_one_of_the_files_read() {
        use std::os::unix::fs::symlink;
        let dir = one_shard("out-in", b"\xff\xd8\xff\xd9", 2);
        let shard = dir.join("flowers00-2.tfrec");
        let before = std::fs::read(&shard).unwrap();
        let opts = ReadSpeedOptions {
            input: dir.display().to_string(),
            ..Default::default()
        };
        let elsewhere = dir.with_extension("links");
        let _ = std::fs::remove_dir_all(&elsewhere);
        std::fs::create_dir_all(&elsewhere).unwrap();
        symlink(&shard, elsewhere.join("link.csv")).unwrap();
        std::fs::hard_link(&shard, elsewhere.join("hard.csv")).unwrap();
        for out in [
            shard.clone(),
            elsewhere.join("link.csv"),
            elsewhere.join("hard.csv"),
            dir.join(".").join("flowers00-2.tfrec"),
        ] {
            let e = check_output(&opts, &out).unwrap_err();
            assert!(e.is_bad_input(), "{e}");
            assert!(
                e.to_string().contains("one of the files this run reads")
                    && e.to_string().contains("flowers00-2.tfrec"),
                "{e}"
            );
        }
        assert_eq!(std::fs::read(&shard).unwrap(), before);
        // The images a run reads, likewise; other files (and new ones) may be written.
        std::fs::create_dir_all(dir.join("daisy")).unwrap();
        std::fs::write(dir.join("daisy/a.jpg"), b"x").unwrap();
        let images = ReadSpeedOptions {
            source: Source::Images,
            ..opts.clone()
        };
        assert!(check_output(&images, &dir.join("daisy/a.jpg")).is_err());
        assert!(check_output(&images, &shard).is_ok());
        assert!(check_output(&opts, &dir.join("results.csv")).is_ok());
        assert!(check_output(&opts, &elsewhere.join("new/results.csv")).is_ok());
        // A folder in the way is refused before the run, not after it.
        let e = check_output(&opts, &elsewhere).unwrap_err();
        assert!(
            e.is_bad_input() && e.to_string().contains("a folder"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&elsewhere);
    }

    /// A disk that cannot take the CSV (here /dev/full) is an I/O failure, not the input's
    /// fault; a path that is a folder is the input's.
    #[test]
    fn a_full_disk_is_not_bad_input_but_a_folder_in_the_way_is() {
        let row = ReadSpeedRow {
            source: Source::TfRecord,
            decode: false,
            batch_size: 1,
            batch_number: 1,
            repetition: 0,
            images: 1,
            decode_failures: 0,
            bytes: 10,
            seconds: 0.5,
        };
        let e = write_csv(Path::new("/dev/full"), std::slice::from_ref(&row)).unwrap_err();
        assert!(!e.is_bad_input(), "{e}");
        assert!(e.to_string().contains("/dev/full"), "{e}");
        let e = write_csv(&std::env::temp_dir(), std::slice::from_ref(&row)).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        // A device with room takes it.
        write_csv(Path::new("/dev/null"), &[row]).unwrap();
    }

    /// Images that fail to decode are read but not counted as decoded (a folder of junk .jpg
    /// files used to report 156,000 decoded images/s); when none decodes, nothing was measured.
    #[test]
    fn images_that_fail_to_decode_are_not_counted_as_decoded() {
        let base = std::env::temp_dir().join(format!("cherrypick-rs-junk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("daisy")).unwrap();
        for i in 0..20 {
            std::fs::write(base.join(format!("daisy/{i:02}.jpg")), b"junk, not a JPEG").unwrap();
        }
        let opts = ReadSpeedOptions {
            input: base.display().to_string(),
            source: Source::Images,
            batch_sizes: vec![2, 4],
            batch_numbers: vec![3, 5],
            repetitions: 1,
            decode: true,
            parallel: 2,
            ..Default::default()
        };
        let e = run(&opts).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains("--decode: none of the")
                && e.to_string().contains("daisy/00.jpg: not a JPEG"),
            "{e}"
        );
        // Without decoding, the same files are read and counted.
        let rows = run(&ReadSpeedOptions {
            decode: false,
            ..opts.clone()
        })
        .unwrap();
        assert!(rows
            .iter()
            .all(|r| r.images == r.batch_size * r.batch_number && r.decode_failures == 0));
        // Two good images among the junk: only they count as decoded.
        generate(&GenOptions {
            out: base.join("gen"),
            images: 5,
            seed: 1,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        for (i, src) in ["daisy/daisy_0000.jpg", "roses/roses_0000.jpg"]
            .iter()
            .enumerate()
        {
            std::fs::copy(
                base.join("gen").join(src),
                base.join(format!("daisy/0{i}.jpg")),
            )
            .unwrap();
        }
        std::fs::remove_dir_all(base.join("gen")).unwrap();
        let rows = run(&opts).unwrap();
        for r in &rows {
            let want = r.batch_size * r.batch_number;
            assert_eq!(r.images + r.decode_failures, want, "{r:?}");
            // 22 files cycle from the two good ones: cells of 6 to 20 images decode just 2.
            assert_eq!(r.images, 2, "{r:?}");
        }
        let csv = to_csv(&rows);
        assert!(csv.lines().next().unwrap().ends_with(",decode_failures"));
        assert!(csv.lines().nth(1).unwrap().ends_with(",4"), "{csv}");
        let _ = std::fs::remove_dir_all(&base);
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
