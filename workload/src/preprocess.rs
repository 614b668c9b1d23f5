//! `preprocess`: every input JPEG decoded, fill-resized, re-encoded and written as a
//! `tf.train.Example` into `flowersNN-COUNT.tfrec` shards.
//!
//! Streaming: workers claim images one at a time and the writer (the calling thread) appends them
//! in a fixed order, so memory stays flat (a bounded window of finished images) and the output
//! bytes do not depend on the thread count. Each shard is written under a hidden temporary name
//! and renamed once complete; its final name carries its record count.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Instant;

use crate::dataset::{scan_input, InputImage, OutsideLayout};
use crate::example::encode_flower;
use crate::rng::SplitMix64;
use crate::storage::{self, ObjectWriter, Storage};
use crate::tfrecord;
use crate::transform::{TransformOptions, Transformer};
use crate::Error;

/// Options of one preprocessing run.
#[derive(Clone, Debug)]
pub struct PreprocessOptions {
    /// Folder or `gs://bucket/prefix` holding `<class>/*.jpg`.
    pub input: String,
    /// Folder or `gs://bucket/prefix` for the shards.
    pub output: String,
    /// Size, quality, chroma subsampling, filter.
    pub transform: TransformOptions,
    /// Number of shards (fewer when there are fewer images).
    pub shards: usize,
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// Seed of the shuffle that spreads classes over shards.
    pub seed: u64,
    /// Only the first N images after shuffling (None = all).
    pub limit: Option<usize>,
    /// Draw a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// Set by another thread to stop the run early ([`Error::Cancelled`]): no more images are
    /// started and unfinished shards are never committed.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        PreprocessOptions {
            input: String::new(),
            output: String::new(),
            transform: TransformOptions::default(),
            shards: 16,
            threads: 0,
            seed: 0,
            limit: None,
            progress: false,
            cancel: None,
        }
    }
}

/// An input that was reported and skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    pub reason: String,
}

/// One written shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardInfo {
    pub name: String,
    pub records: usize,
    pub bytes: u64,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct PreprocessSummary {
    pub classes: Vec<String>,
    pub images_found: usize,
    pub images_written: usize,
    pub skipped: Vec<Skipped>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub shards: Vec<ShardInfo>,
    /// Shards of an earlier run removed from the output folder before this one wrote its own.
    pub removed: Vec<String>,
    /// Files of the input that are not at `<class>/<image>` (at its top level, or in folders
    /// below a class folder): not read, only counted (and warned about on stderr).
    pub outside_layout: OutsideLayout,
    pub threads: usize,
    pub elapsed_s: f64,
    /// CPU seconds of the whole process during the run (all threads).
    pub cpu_s: f64,
}

impl PreprocessSummary {
    pub fn images_per_s(&self) -> f64 {
        self.images_written as f64 / self.elapsed_s.max(1e-9)
    }
    pub fn images_per_cpu_s(&self) -> f64 {
        self.images_written as f64 / self.cpu_s.max(1e-9)
    }
}

impl std::fmt::Display for PreprocessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "preprocessed {} of {} images into {} shards in {:.2} s ({:.0} images/s, {:.0} images per CPU-second, {} threads)",
            self.images_written,
            self.images_found,
            self.shards.len(),
            self.elapsed_s,
            self.images_per_s(),
            self.images_per_cpu_s(),
            self.threads
        )?;
        writeln!(
            f,
            "bytes in {:.1} MB, bytes out {:.1} MB",
            self.bytes_in as f64 / 1e6,
            self.bytes_out as f64 / 1e6
        )?;
        if !self.removed.is_empty() {
            writeln!(
                f,
                "removed {} shards of an earlier run: {}",
                self.removed.len(),
                self.removed.join(", ")
            )?;
        }
        if self.outside_layout.count() > 0 {
            writeln!(f, "{}", self.outside_layout)?;
        }
        if self.skipped.is_empty() {
            write!(f, "skipped: none")
        } else {
            write!(f, "skipped {} files:", self.skipped.len())?;
            for s in &self.skipped {
                write!(f, "\n  {}: {}", s.key, s.reason)?;
            }
            Ok(())
        }
    }
}

/// Shard file name, the coursework's convention: `flowers{index:02}-{records}.tfrec`.
pub fn shard_name(index: usize, records: usize) -> String {
    format!("flowers{index:02}-{records}.tfrec")
}

/// The (index, record count) of a shard name `flowersNN-COUNT.tfrec`, or `None` for any other name.
pub fn parse_shard_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("flowers")?.strip_suffix(".tfrec")?;
    let (index, count) = rest.split_once('-')?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if index.len() < 2 || !digits(index) || !digits(count) {
        return None;
    }
    Some((index.parse().ok()?, count.parse().ok()?))
}

/// The shard index of the hidden temporary a shard is written under until it is complete
/// (`.flowersNN.partial-<pid>`, see [`Storage::create`]) and the pid of the process writing it,
/// or `None` for any other name.
fn parse_partial_shard_name(name: &str) -> Option<(usize, u32)> {
    let (hint, pid) = storage::parse_partial_name(name)?;
    let index = hint.strip_prefix("flowers")?;
    if index.len() < 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((index.parse().ok()?, pid))
}

/// Removes the shards an earlier run left in `output` that this run replaces: every shard of a
/// whole run, or the shards numbered `part` of one part. Other files are left alone. The same
/// goes for the hidden temporaries of unfinished shards that a killed run (SIGINT, SIGKILL)
/// left, those of a process still running excepted (another part may be writing one). Only
/// the finished shards are listed in the summary.
fn remove_earlier_shards(output: &dyn Storage, part: Option<usize>) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for o in output.list().map_err(Error::Output)? {
        // Only the top level: shards are written there.
        if let Some((index, _)) = parse_shard_name(&o.key) {
            if part.is_none_or(|p| p == index) {
                output.delete(&o.key).map_err(Error::Output)?;
                removed.push(o.key);
            }
        } else if let Some((index, pid)) = parse_partial_shard_name(&o.key) {
            if part.is_none_or(|p| p == index) && !storage::process_running(pid) {
                output.delete(&o.key).map_err(Error::Output)?;
            }
        }
    }
    Ok(removed)
}

/// A local folder resolved as the kernel will once it exists: its nearest existing ancestor
/// with symlinks resolved, then the rest of the path (which, not existing yet, holds no link;
/// its `..` undo the component before). `None` when no ancestor resolves.
fn resolve_folder(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let mut base = loop {
        match std::fs::canonicalize(existing) {
            Ok(p) => break p,
            Err(_) => {
                rest.push(existing.components().next_back()?.as_os_str().to_owned());
                existing = existing.parent()?;
            }
        }
    };
    for component in rest.iter().rev() {
        match component.to_str() {
            Some("..") => {
                base.pop();
            }
            Some(".") => {}
            _ => base.push(component),
        }
    }
    Some(base)
}

/// Refuses an output folder that is the input folder or inside it (the next run would read its
/// shards as images of one more class, and remove them while reading them), and an input inside
/// the output folder (every run would list it among the outputs, and its files sit where the
/// shards go). Local paths are resolved first, so a symlink or `..` does not hide the overlap;
/// `gs://` locations are compared as bucket and prefix.
fn check_folders(input: &str, output: &str) -> Result<(), Error> {
    let (inside, same) = match (input.strip_prefix("gs://"), output.strip_prefix("gs://")) {
        (Some(i), Some(o)) => {
            let (i, o) = (i.trim_end_matches('/'), o.trim_end_matches('/'));
            let under = |a: &str, b: &str| {
                a.strip_prefix(b)
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            };
            ([under(o, i), under(i, o)], i == o)
        }
        (None, None) => {
            let (Some(i), Some(o)) = (
                resolve_folder(Path::new(input)),
                resolve_folder(Path::new(output)),
            ) else {
                return Ok(());
            };
            ([o.starts_with(&i), i.starts_with(&o)], i == o)
        }
        _ => return Ok(()),
    };
    let (why, harm) = if same {
        (
            "is the input folder",
            "the next run would read the shards as images",
        )
    } else if inside[0] {
        (
            "is inside the input folder",
            "the next run would read the shards as images",
        )
    } else if inside[1] {
        (
            "contains the input folder",
            "every run would list the images among its outputs",
        )
    } else {
        return Ok(());
    };
    Err(Error::Options(format!(
        "--output {output} {why} {input}: {harm}; choose an output folder outside the input \
         and not above it"
    )))
}

/// Removes the shards a failed run committed, so that none of them looks like a finished
/// run's; what cannot be removed is left (the run's error is the one reported).
fn remove_shards(output: &dyn Storage, shards: &[ShardInfo]) {
    for shard in shards {
        let _ = output.delete(&shard.name);
    }
}

/// Checks the options no input can make right, before any storage is opened or listed: at
/// least one shard, a `--limit` of at least one image, and an output `--size` and `--quality`
/// within their ranges (see [`TransformOptions::check`](crate::transform::TransformOptions::check)).
/// [`run`] and [`run_part`] call it first; it is public for callers that want to refuse bad
/// options before anything else.
pub fn check_options(opts: &PreprocessOptions) -> Result<(), Error> {
    if opts.shards == 0 {
        return Err(Error::Options("--shards must be at least 1".into()));
    }
    if opts.limit == Some(0) {
        return Err(Error::Options("--limit must be at least 1 image".into()));
    }
    opts.transform.check().map_err(Error::Options)
}

/// Runs preprocessing between the storages named in `opts`.
pub fn run(opts: &PreprocessOptions) -> Result<PreprocessSummary, Error> {
    check_options(opts)?;
    check_folders(&opts.input, &opts.output)?;
    let input = storage::open(&opts.input).map_err(Error::Input)?;
    let output = storage::open(&opts.output).map_err(Error::Output)?;
    run_with(opts, input.as_ref(), output.as_ref())
}

/// What a worker sends back for one image.
enum Done {
    Record { payload: Vec<u8>, bytes_in: u64 },
    Skip { reason: String, bytes_in: u64 },
}

/// Runs one part of a preprocessing split into `parts`: the images (shuffled as [`run`] does) are
/// cut into `parts` contiguous ranges and only range `part` (from 0) is processed, into the one
/// shard named with index `part`. Running every part, in any order or in parallel (the Spark
/// driver runs one per task), writes the same shards as [`run`] with `shards = parts`.
pub fn run_part(
    opts: &PreprocessOptions,
    part: usize,
    parts: usize,
) -> Result<PreprocessSummary, Error> {
    if part >= parts {
        return Err(Error::Options(format!(
            "--part {part}/{parts}: the part must be below {parts}"
        )));
    }
    // `--part` overrides `--shards`.
    let opts = PreprocessOptions {
        shards: parts,
        ..opts.clone()
    };
    check_options(&opts)?;
    check_folders(&opts.input, &opts.output)?;
    let input = storage::open(&opts.input).map_err(Error::Input)?;
    let output = storage::open(&opts.output).map_err(Error::Output)?;
    run_inner(&opts, input.as_ref(), output.as_ref(), Some(part))
}

/// Runs preprocessing with already-opened storages (`opts.input`/`output` are only used in
/// messages).
pub fn run_with(
    opts: &PreprocessOptions,
    input: &dyn Storage,
    output: &dyn Storage,
) -> Result<PreprocessSummary, Error> {
    run_inner(opts, input, output, None)
}

fn run_inner(
    opts: &PreprocessOptions,
    input: &dyn Storage,
    output: &dyn Storage,
    part: Option<usize>,
) -> Result<PreprocessSummary, Error> {
    let started = Instant::now();
    let cpu0 = crate::process_cpu_seconds();
    check_options(opts)?;
    // The codec itself, before touching storage.
    Transformer::new(&opts.transform).map_err(|e| Error::Options(e.to_string()))?;
    let (classes, mut images, outside_layout) = scan_input(input).map_err(Error::Input)?;
    if images.is_empty() {
        // The files left out, if any, are the likely mistake (an input one level too high or
        // too low): said here, in the one message.
        return Err(Error::Options(format!(
            "no images found under {} (expected <class>/<file> entries{})",
            input.location(),
            if outside_layout.count() > 0 {
                format!("; {outside_layout}")
            } else {
                String::new()
            }
        )));
    }
    SplitMix64::new(opts.seed).shuffle(&mut images);
    if let Some(limit) = opts.limit {
        images.truncate(limit);
    }
    output.prepare_output().map_err(Error::Output)?;
    // Stopped while listing: an earlier run's shards are left as they are, since this run
    // will write none to replace them.
    if opts
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return Err(Error::Cancelled);
    }
    // Shards of an earlier run into the same folder would be read with this run's as one set.
    let removed = remove_earlier_shards(output, part)?;

    let n = images.len();
    let shards = opts.shards.min(n);
    let mut bounds: Vec<usize> = (0..=shards).map(|s| s * n / shards).collect();
    // One part: keep its range of the shuffled list as a single shard numbered `part`.
    let first_shard = part.unwrap_or(0);
    if let Some(p) = part {
        let (lo, hi) = match bounds.get(p..=p + 1) {
            Some(b) => (b[0], b[1]),
            None => (n, n),
        };
        images.truncate(hi);
        images.drain(..lo);
        bounds = vec![0, hi - lo];
    }
    let n = images.len();
    let threads = crate::resolve_threads(opts.threads).min(n);
    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(n as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  eta {eta}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        indicatif::ProgressBar::hidden()
    };

    // Workers may run at most `window` images ahead of the writer: bounds memory.
    let window = 8 * threads + 16;
    let next_claim = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let gate = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = mpsc::channel::<(usize, Result<Done, Error>)>();

    let mut summary = PreprocessSummary {
        classes,
        images_found: n,
        removed,
        outside_layout,
        threads,
        ..Default::default()
    };
    let result = std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (images, next_claim, abort, gate) = (&images, &next_claim, &abort, &gate);
            s.spawn(move || worker(opts, input, images, next_claim, abort, gate, window, tx));
        }
        drop(tx);
        let r = write_all(
            &images,
            &bounds,
            first_shard,
            output,
            rx,
            &gate,
            &mut summary,
            &bar,
        );
        if r.is_err() {
            abort.store(true, Ordering::SeqCst);
            gate.1.notify_all();
        }
        r
    });
    bar.finish_and_clear();
    if let Err(e) = result {
        // The shards committed before the error would look like a finished run's.
        remove_shards(output, &summary.shards);
        return Err(e);
    }
    // A whole run that wrote nothing failed. One part of a split run may hold only a few
    // images, all bad, while the run as a whole is fine: its summary lists them instead.
    if part.is_none() && summary.images_written == 0 && !summary.skipped.is_empty() {
        let shown: Vec<String> = summary
            .skipped
            .iter()
            .take(3)
            .map(|k| format!("{}: {}", k.key, k.reason))
            .collect();
        let more = summary.skipped.len().saturating_sub(shown.len());
        return Err(Error::Options(format!(
            "no shard written: every one of the {} images under {} was skipped ({}{})",
            summary.skipped.len(),
            input.location(),
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        )));
    }
    summary.elapsed_s = started.elapsed().as_secs_f64();
    summary.cpu_s = crate::process_cpu_seconds() - cpu0;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn worker(
    opts: &PreprocessOptions,
    input: &dyn Storage,
    images: &[InputImage],
    next_claim: &AtomicUsize,
    abort: &AtomicBool,
    gate: &(Mutex<usize>, Condvar),
    window: usize,
    tx: mpsc::Sender<(usize, Result<Done, Error>)>,
) {
    let mut t = match Transformer::new(&opts.transform) {
        Ok(t) => t,
        Err(e) => {
            let _ = tx.send((0, Err(Error::Options(e.to_string()))));
            return;
        }
    };
    let mut jpeg = Vec::new();
    loop {
        let idx = next_claim.fetch_add(1, Ordering::Relaxed);
        if idx >= images.len() || abort.load(Ordering::Relaxed) {
            return;
        }
        if opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            // The writer stops at the first error it receives and commits nothing further.
            let _ = tx.send((idx, Err(Error::Cancelled)));
            return;
        }
        {
            let mut written = gate.0.lock().unwrap_or_else(|p| p.into_inner());
            while idx >= *written + window && !abort.load(Ordering::Relaxed) {
                written = gate.1.wait(written).unwrap_or_else(|p| p.into_inner());
            }
        }
        let img = &images[idx];
        if let Some(reason) = &img.unusable {
            let skip = Done::Skip {
                reason: reason.clone(),
                bytes_in: 0,
            };
            if tx.send((idx, Ok(skip))).is_err() {
                return;
            }
            continue;
        }
        let done = match storage::get_listed(input, &img.key, img.path.as_deref()) {
            Err(e) => Err(Error::Input(e)),
            Ok(data) => {
                let bytes_in = data.len() as u64;
                Ok(match t.process(&data, &mut jpeg) {
                    Ok(()) => {
                        let mut payload = Vec::with_capacity(jpeg.len() + 64);
                        encode_flower(&jpeg, img.class as i64, &img.label, &mut payload);
                        Done::Record { payload, bytes_in }
                    }
                    Err(e) => Done::Skip {
                        reason: e.to_string(),
                        bytes_in,
                    },
                })
            }
        };
        if tx.send((idx, done)).is_err() {
            return;
        }
    }
}

/// The writer: takes finished images in index order and appends them to the current shard.
#[allow(clippy::too_many_arguments)]
fn write_all(
    images: &[InputImage],
    bounds: &[usize],
    first_shard: usize,
    output: &dyn Storage,
    rx: mpsc::Receiver<(usize, Result<Done, Error>)>,
    gate: &(Mutex<usize>, Condvar),
    summary: &mut PreprocessSummary,
    bar: &indicatif::ProgressBar,
) -> Result<(), Error> {
    let n = images.len();
    let mut pending: BTreeMap<usize, Result<Done, Error>> = BTreeMap::new();
    let mut next = 0usize;
    let mut shard = 0usize;
    // Shard files are numbered from `first_shard` (a part of a split run writes its own number).
    let index = |shard: usize| first_shard + shard;
    let mut writer: Option<(Box<dyn ObjectWriter>, usize)> = None;
    let mut frame = Vec::new();
    while next < n {
        let Ok((idx, done)) = rx.recv() else {
            return Err(Error::Other("preprocessing workers stopped early".into()));
        };
        pending.insert(idx, done);
        let before = next;
        while let Some(done) = pending.remove(&next) {
            if writer.is_none() {
                let w = output
                    .create(&format!("flowers{:02}", index(shard)))
                    .map_err(Error::Output)?;
                writer = Some((w, 0));
            }
            let (w, count) = writer.as_mut().expect("opened above");
            match done? {
                Done::Record { payload, bytes_in } => {
                    frame.clear();
                    tfrecord::append_record(&mut frame, &payload);
                    w.write_all(&frame).map_err(|e| {
                        Error::output(
                            format!("{}/{}", output.location(), shard_name(index(shard), 0)),
                            e,
                        )
                    })?;
                    *count += 1;
                    summary.images_written += 1;
                    summary.bytes_in += bytes_in;
                }
                Done::Skip { reason, bytes_in } => {
                    summary.bytes_in += bytes_in;
                    summary.skipped.push(Skipped {
                        key: images[next].key.clone(),
                        reason,
                    });
                }
            }
            next += 1;
            bar.inc(1);
            if next == bounds[shard + 1] {
                let (w, count) = writer.take().expect("opened above");
                if count > 0 {
                    let name = shard_name(index(shard), count);
                    let bytes = w.commit(&name).map_err(Error::Output)?;
                    summary.bytes_out += bytes;
                    summary.shards.push(ShardInfo {
                        name,
                        records: count,
                        bytes,
                    });
                }
                shard += 1;
            }
        }
        if next != before {
            *gate.0.lock().unwrap_or_else(|p| p.into_inner()) = next;
            gate.1.notify_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{generate, GenOptions};
    use crate::storage::LocalStorage;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("cherrypick-pp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn shards_are_complete_ordered_and_thread_independent() {
        let data = tmp("data");
        generate(&GenOptions {
            out: data.clone(),
            images: 30,
            seed: 4,
            threads: 2,
            quality: 85,
        })
        .unwrap();
        // Damaged inputs: truncated, empty, not a JPEG.
        let good = std::fs::read(data.join("roses/roses_0000.jpg")).unwrap();
        std::fs::write(data.join("roses/zz_truncated.jpg"), &good[..good.len() / 3]).unwrap();
        std::fs::write(data.join("tulips/zz_empty.jpg"), b"").unwrap();
        std::fs::write(data.join("daisy/zz_notes.txt"), b"not an image").unwrap();

        let mut outs = Vec::new();
        for threads in [1, 2] {
            let out = tmp(&format!("out{threads}"));
            let opts = PreprocessOptions {
                input: data.display().to_string(),
                output: out.display().to_string(),
                shards: 4,
                threads,
                ..Default::default()
            };
            let s = run(&opts).unwrap();
            assert_eq!(s.images_found, 33);
            assert_eq!(s.images_written, 30);
            assert_eq!(s.skipped.len(), 3, "{:?}", s.skipped);
            let reasons: Vec<_> = s
                .skipped
                .iter()
                .map(|k| (k.key.as_str(), k.reason.as_str()))
                .collect();
            assert!(reasons
                .iter()
                .any(|(k, r)| k.ends_with("zz_empty.jpg") && r.contains("empty")));
            assert!(reasons
                .iter()
                .any(|(k, r)| k.ends_with("zz_notes.txt") && r.contains("not a JPEG")));
            assert!(reasons
                .iter()
                .any(|(k, r)| k.ends_with("zz_truncated.jpg") && r.contains("corrupt")));
            assert_eq!(s.shards.iter().map(|x| x.records).sum::<usize>(), 30);
            let files = LocalStorage::new(&out).list().unwrap();
            assert_eq!(files.len(), 4, "no temporaries left: {files:?}");
            let mut labels = std::collections::BTreeSet::new();
            for (i, info) in s.shards.iter().enumerate() {
                assert_eq!(info.name, shard_name(i, info.records));
                let bytes = std::fs::read(out.join(&info.name)).unwrap();
                assert_eq!(bytes.len() as u64, info.bytes);
                let recs: Vec<_> = tfrecord::SliceReader::new(&bytes, &info.name)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(recs.len(), info.records);
                for r in recs {
                    let ex = crate::example::decode(r).unwrap();
                    let class = ex.int64("class").unwrap() as usize;
                    let label = std::str::from_utf8(ex.bytes("label").unwrap())
                        .unwrap()
                        .to_string();
                    assert_eq!(crate::dataset::CLASSES[class], label);
                    labels.insert(label);
                    let img = crate::transform::decode_jpeg(ex.bytes("image").unwrap()).unwrap();
                    assert_eq!((img.width, img.height), (192, 192));
                }
            }
            assert_eq!(labels.len(), 5);
            outs.push(out);
        }
        // Same bytes whatever the thread count.
        for f in LocalStorage::new(&outs[0]).list().unwrap() {
            assert_eq!(
                std::fs::read(outs[0].join(&f.key)).unwrap(),
                std::fs::read(outs[1].join(&f.key)).unwrap()
            );
        }
        for d in outs.into_iter().chain([data]) {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn missing_input_and_unwritable_output_are_typed_errors() {
        let opts = PreprocessOptions {
            input: "/nonexistent/cherrypick/input".into(),
            output: tmp("never").display().to_string(),
            ..Default::default()
        };
        let e = run(&opts).unwrap_err();
        assert!(matches!(e, Error::Input(_)) && e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains("/nonexistent/cherrypick/input"),
            "{e}"
        );

        let data = tmp("data2");
        generate(&GenOptions {
            out: data.clone(),
            images: 5,
            seed: 1,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        // A regular file where the output folder should be.
        let blocker = tmp("blocker");
        std::fs::write(&blocker, b"x").unwrap();
        let opts = PreprocessOptions {
            input: data.display().to_string(),
            output: blocker.join("sub").display().to_string(),
            ..Default::default()
        };
        let e = run(&opts).unwrap_err();
        assert!(matches!(e, Error::Output(_)) && e.is_bad_input(), "{e}");
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_file(&blocker);
    }

    fn shard_files(out: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(out)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_rerun_with_fewer_shards_removes_the_earlier_runs_shards() {
        let data = tmp("rerun-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 20,
            seed: 2,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let out = tmp("rerun-out");
        let run_with_shards = |shards: usize| {
            run(&PreprocessOptions {
                input: data.display().to_string(),
                output: out.display().to_string(),
                shards,
                threads: 1,
                ..Default::default()
            })
            .unwrap()
        };
        let first = run_with_shards(4);
        assert!(first.removed.is_empty());
        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let second = run_with_shards(2);
        assert_eq!(second.removed.len(), 4, "{:?}", second.removed);
        // Only this run's shards (20 records, not 40), and other files are left alone.
        assert_eq!(
            shard_files(&out),
            vec!["flowers00-10.tfrec", "flowers01-10.tfrec", "notes.txt"]
        );
        // A part replaces only its own shard number.
        std::fs::write(out.join("flowers01-3.tfrec"), b"").unwrap();
        let part = run_part(
            &PreprocessOptions {
                input: data.display().to_string(),
                output: out.display().to_string(),
                threads: 1,
                ..Default::default()
            },
            1,
            2,
        )
        .unwrap();
        assert_eq!(
            part.removed,
            vec!["flowers01-10.tfrec", "flowers01-3.tfrec"]
        );
        assert_eq!(
            shard_files(&out),
            vec!["flowers00-10.tfrec", "flowers01-10.tfrec", "notes.txt"]
        );
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn limit_zero_and_an_all_skipped_input_are_errors() {
        let data = tmp("skipped-data");
        std::fs::create_dir_all(data.join("daisy")).unwrap();
        std::fs::write(data.join("daisy/a.jpg"), b"not a jpeg").unwrap();
        std::fs::write(data.join("daisy/b.jpg"), b"").unwrap();
        let out = tmp("skipped-out");
        let opts = PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            threads: 1,
            ..Default::default()
        };
        let e = run(&opts).unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("no shard written")
                && msg.contains("every one of the 2 images")
                && msg.contains("daisy/a.jpg: not a JPEG"),
            "{msg}"
        );
        assert!(shard_files(&out).is_empty());
        // One part of a split run reports its skipped images; the run as a whole may be fine.
        let s = run_part(&opts, 0, 1).unwrap();
        assert_eq!((s.images_written, s.skipped.len()), (0, 2));
        let e = run(&PreprocessOptions {
            limit: Some(0),
            ..opts
        })
        .unwrap_err();
        assert!(e.is_bad_input() && e.to_string().contains("--limit"), "{e}");
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    /// An output folder that is the input, inside it (however it is spelt) or around it is
    /// refused before anything is written: a second run used to read the first run's shards as
    /// a sixth class, remove them while reading them, and fail with a partial shard left.
    #[test]
    fn an_output_inside_the_input_or_around_it_is_refused() {
        use std::os::unix::fs::symlink;
        let data = tmp("nest-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 5,
            seed: 1,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let link = tmp("nest-link");
        symlink(&data, &link).unwrap();
        let d = data.display();
        let cases = [
            (format!("{d}"), format!("{d}"), "is the input folder"),
            (format!("{d}"), format!("{d}/"), "is the input folder"),
            (
                format!("{d}"),
                format!("{d}/shards"),
                "is inside the input folder",
            ),
            (
                format!("{d}"),
                format!("{d}/a/b/../shards"),
                "is inside the input folder",
            ),
            (
                format!("{d}"),
                format!("{d}/daisy/new"),
                "is inside the input folder",
            ),
            (
                format!("{d}"),
                format!("{}/shards", link.display()),
                "is inside the input folder",
            ),
            (
                format!("{d}/daisy"),
                format!("{d}"),
                "contains the input folder",
            ),
            (
                format!("{}/daisy", link.display()),
                format!("{d}/.."),
                "contains the input folder",
            ),
            (
                "gs://b/flowers".into(),
                "gs://b/flowers/out".into(),
                "is inside",
            ),
            (
                "gs://b/flowers/".into(),
                "gs://b/flowers".into(),
                "is the input",
            ),
            (
                "gs://b/flowers/x".into(),
                "gs://b/flowers".into(),
                "contains",
            ),
        ];
        for (input, output, why) in cases {
            let opts = PreprocessOptions {
                input: input.clone(),
                output: output.clone(),
                threads: 1,
                ..Default::default()
            };
            for e in [run(&opts).unwrap_err(), run_part(&opts, 0, 2).unwrap_err()] {
                assert!(e.is_bad_input(), "{input} {output}: {e}");
                assert!(
                    e.to_string().contains(&format!("--output {output} {why}")),
                    "{input} {output}: {e}"
                );
            }
        }
        // Nothing was created in the input.
        let mut top: Vec<String> = shard_files(&data);
        top.sort();
        assert_eq!(top, crate::dataset::CLASSES);
        // Beside the input (a name that merely starts the same), or a bucket's other prefix.
        let beside = format!("{d}-shards");
        for (input, output) in [
            (format!("{d}"), beside.clone()),
            ("gs://b/flowers".into(), "gs://b/flowers2".into()),
            ("gs://b/flowers".into(), "gs://c/flowers/out".into()),
        ] {
            assert!(check_folders(&input, &output).is_ok(), "{input} {output}");
        }
        let s = run(&PreprocessOptions {
            input: data.display().to_string(),
            output: beside.clone(),
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.images_written, 5);
        for p in [data, beside.into(), link] {
            let _ = std::fs::remove_dir_all(&p);
            let _ = std::fs::remove_file(&p);
        }
    }

    /// A file or class folder whose name is not UTF-8 used to be opened by its lossy name and
    /// stop the whole run with a false "No such file or directory": the file is opened by its
    /// exact name, and a class folder that cannot give a text label has its files reported and
    /// skipped, one by one, while the rest is written.
    #[test]
    fn names_that_are_not_utf8_are_opened_as_listed() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let data = tmp("utf8-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 10,
            seed: 5,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let good = std::fs::read(data.join("daisy/daisy_0000.jpg")).unwrap();
        std::fs::write(
            data.join("daisy").join(OsStr::from_bytes(b"caf\xe9.jpg")),
            &good,
        )
        .unwrap();
        let bad_class = data.join(OsStr::from_bytes(b"ros\xe9s"));
        std::fs::create_dir_all(&bad_class).unwrap();
        std::fs::write(bad_class.join("a.jpg"), &good).unwrap();
        std::fs::write(bad_class.join(OsStr::from_bytes(b"\xff.jpg")), &good).unwrap();
        let out = tmp("utf8-out");
        let s = run(&PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 2,
            threads: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.classes, crate::dataset::CLASSES);
        assert_eq!((s.images_found, s.images_written), (13, 11));
        assert_eq!(s.skipped.len(), 2, "{:?}", s.skipped);
        assert!(s
            .skipped
            .iter()
            .all(|k| k.key.starts_with("ros\u{fffd}s/") && k.reason.contains("not UTF-8")));
        // The file with the non-UTF-8 name is in a shard, labelled daisy.
        let mut daisies = 0;
        for info in &s.shards {
            let bytes = std::fs::read(out.join(&info.name)).unwrap();
            for r in tfrecord::SliceReader::new(&bytes, &info.name) {
                let ex = crate::example::decode(r.unwrap()).unwrap();
                daisies += usize::from(ex.bytes("label") == Some(b"daisy".as_slice()));
            }
        }
        assert_eq!(daisies, 1 + crate::dataset::class_counts(10)[0]);
        // Read-speed reads every image file, whatever its name.
        let rows = crate::readspeed::run(&crate::readspeed::ReadSpeedOptions {
            input: data.display().to_string(),
            source: crate::readspeed::Source::Images,
            batch_sizes: vec![13],
            batch_numbers: vec![1],
            repetitions: 1,
            decode: true,
            parallel: 1,
            cancel: None,
        })
        .unwrap();
        assert_eq!((rows[0].images, rows[0].decode_failures), (13, 0));
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    /// Fails reading one object after `ok` reads, like a disk error mid-run.
    struct FailingInput {
        inner: LocalStorage,
        ok: AtomicUsize,
    }

    impl Storage for FailingInput {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn list(&self) -> Result<Vec<storage::ObjectInfo>, storage::StorageError> {
            // Without paths, so that reads come through `get`.
            let mut l = self.inner.list()?;
            l.iter_mut().for_each(|o| o.path = None);
            Ok(l)
        }
        fn get(&self, key: &str) -> Result<Vec<u8>, storage::StorageError> {
            if self.ok.fetch_sub(1, Ordering::SeqCst) == 0 {
                return Err(storage::StorageError::io(
                    "read",
                    key,
                    &std::io::Error::from_raw_os_error(libc::EIO),
                ));
            }
            self.inner.get(key)
        }
        fn put(&self, key: &str, data: &[u8]) -> Result<(), storage::StorageError> {
            self.inner.put(key, data)
        }
        fn delete(&self, key: &str) -> Result<(), storage::StorageError> {
            self.inner.delete(key)
        }
        fn create(&self, hint: &str) -> Result<Box<dyn ObjectWriter>, storage::StorageError> {
            self.inner.create(hint)
        }
        fn prepare_output(&self) -> Result<(), storage::StorageError> {
            self.inner.prepare_output()
        }
    }

    /// A run that fails after committing some shards removes them: they looked like a whole
    /// run's (the names carry their counts), and read-speed would have measured them.
    #[test]
    fn a_failed_run_leaves_no_shard_that_looks_complete() {
        let data = tmp("fail-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 20,
            seed: 6,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let out = tmp("fail-out");
        let input = FailingInput {
            inner: LocalStorage::new(&data),
            ok: AtomicUsize::new(14),
        };
        let opts = PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 4,
            threads: 1,
            ..Default::default()
        };
        let e = run_with(&opts, &input, &LocalStorage::new(&out)).unwrap_err();
        // An EIO is the disk's failure, not the input's (exit 1).
        assert!(matches!(e, Error::Input(_)) && !e.is_bad_input(), "{e}");
        // Shards 0 and 1 (10 images) were committed before the 15th read failed.
        assert!(shard_files(&out).is_empty(), "{:?}", shard_files(&out));
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    /// The hidden temporaries of a run that was killed are removed by the next run into the
    /// folder (a part's run only its own number's); those of a running process, and files that
    /// merely look alike, are left.
    #[test]
    fn temporaries_of_a_killed_run_are_removed_by_the_next() {
        let data = tmp("partial-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 6,
            seed: 7,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let out = tmp("partial-out");
        std::fs::create_dir_all(&out).unwrap();
        // A process that has ended (waited for, so its pid is not running).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // init runs as long as the machine does (and is not this run, whose own temporaries
        // take its pid).
        let alive = 1;
        for name in [
            format!(".flowers00.partial-{dead}"),
            format!(".flowers01.partial-{dead}"),
            format!(".flowers02.partial-{alive}"),
            format!(".flowers1.partial-{dead}"),
            format!(".notes.partial-{dead}"),
            format!("flowers03.partial-{dead}"),
        ] {
            std::fs::write(out.join(name), b"half a shard").unwrap();
        }
        let opts = PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            threads: 1,
            ..Default::default()
        };
        run_part(&opts, 1, 2).unwrap();
        let names = shard_files(&out);
        assert!(
            names.contains(&format!(".flowers00.partial-{dead}")),
            "{names:?}"
        );
        assert!(
            !names.contains(&format!(".flowers01.partial-{dead}")),
            "{names:?}"
        );
        run(&opts).unwrap();
        let names = shard_files(&out);
        let left: Vec<&String> = names.iter().filter(|n| n.contains("partial")).collect();
        assert_eq!(
            left,
            [
                format!(".flowers02.partial-{alive}"),
                format!(".flowers1.partial-{dead}"),
                format!(".notes.partial-{dead}"),
                format!("flowers03.partial-{dead}"),
            ]
            .iter()
            .collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn shard_names_parse() {
        for (name, want) in [
            (".flowers00.partial-123", Some((0, 123))),
            (".flowers12.partial-4", Some((12, 4))),
            (".flowers0.partial-4", None),
            (".flowers00.partial-", None),
            (".flowers00.partial-1x", None),
            ("flowers00.partial-1", None),
            (".write-probe-1", None),
        ] {
            assert_eq!(parse_partial_shard_name(name), want, "{name}");
        }
        assert_eq!(parse_shard_name("flowers00-230.tfrec"), Some((0, 230)));
        assert_eq!(parse_shard_name("flowers123-1.tfrec"), Some((123, 1)));
        for other in [
            "flowers0-1.tfrec",
            "flowers00-.tfrec",
            "flowers00-1.tfrecord",
            "x.tfrec",
        ] {
            assert_eq!(parse_shard_name(other), None, "{other}");
        }
    }

    /// Files that are not at `<class>/<image>` (at the input's top level, or in folders below a
    /// class folder) used to be left out without a word. They still are left out (the same
    /// files are written), but counted in the summary with an example of each kind, and the
    /// warning is one line however many there are.
    #[test]
    fn files_outside_class_folders_are_counted_and_named_not_processed() {
        use crate::dataset::scan_input;
        let data = tmp("layout-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 10,
            seed: 9,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let input = LocalStorage::new(&data);
        // A clean input: nothing to say.
        let (_, _, clean) = scan_input(&input).unwrap();
        assert_eq!(clean, OutsideLayout::default());
        assert_eq!(clean.warning("x"), None);

        let good = std::fs::read(data.join("daisy/daisy_0000.jpg")).unwrap();
        for (key, bytes) in [
            ("stray.jpg", good.as_slice()),
            ("LICENSE.txt", b"licence text".as_slice()),
            ("daisy/more/a.jpg", good.as_slice()),
            ("daisy/more/deeper/b.jpg", good.as_slice()),
            ("roses/old/c.jpg", good.as_slice()),
            // Hidden files and folders stay out without being counted.
            (".DS_Store", b"x".as_slice()),
            ("daisy/.thumbs/d.jpg", good.as_slice()),
        ] {
            input.put(key, bytes).unwrap();
        }
        let out = tmp("layout-out");
        let s = run(&PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 2,
            threads: 1,
            ..Default::default()
        })
        .unwrap();
        // The same images as without the extra files, and no sixth class from `daisy/more`.
        assert_eq!((s.images_found, s.images_written), (10, 10));
        assert!(s.skipped.is_empty(), "{:?}", s.skipped);
        assert_eq!(s.classes, crate::dataset::CLASSES);
        assert_eq!(s.shards.iter().map(|k| k.records).sum::<usize>(), 10);
        assert_eq!(
            s.outside_layout,
            OutsideLayout {
                top_level: 2,
                nested: 3,
                examples: vec!["LICENSE.txt".into(), "daisy/more/a.jpg".into()],
            }
        );
        let text = s.to_string();
        assert!(
            text.contains(
                "\nignored 5 files outside <class>/<image> (2 at the top level, 3 in folders \
                 below a class folder; e.g. LICENSE.txt, daisy/more/a.jpg)\n"
            ),
            "{text}"
        );
        // Thousands of them: still one line, with two examples.
        for i in 0..2000 {
            input.put(&format!("tulips/many/{i:04}.jpg"), b"").unwrap();
        }
        let (_, images, outside) = scan_input(&input).unwrap();
        assert_eq!(images.len(), 10);
        assert_eq!((outside.top_level, outside.nested), (2, 2003));
        let warning = outside.warning(&input.location()).unwrap();
        assert!(
            warning.starts_with(&format!(
                "warning: {}: ignored 2005 files outside <class>/<image> (2 at the top level, \
                 2003 in folders below a class folder; e.g. LICENSE.txt, daisy/more/a.jpg)",
                data.display()
            )) && !warning.contains('\n')
                && !warning.contains("tulips/many/"),
            "{warning}"
        );
        // An input one level too deep (a class folder): its files are all at the top level,
        // two of them are named, and the error says what was left out.
        let class = LocalStorage::new(data.join("sunflowers"));
        let (_, images, outside) = scan_input(&class).unwrap();
        assert!(images.is_empty(), "{images:?}");
        assert_eq!((outside.top_level, outside.nested), (2, 0));
        assert_eq!(
            outside.examples,
            ["sunflowers_0000.jpg", "sunflowers_0001.jpg"]
        );
        let e = run(&PreprocessOptions {
            input: data.join("sunflowers").display().to_string(),
            output: out.display().to_string(),
            threads: 1,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.is_bad_input(), "{e}");
        assert!(
            e.to_string().contains("no images found under")
                && e.to_string().contains("files outside <class>/<image> (")
                && e.to_string().contains(
                    "ignored 2 files outside <class>/<image> (2 at the top level; e.g. \
                     sunflowers_0000.jpg, sunflowers_0001.jpg))"
                ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }

    /// `--size 0` used to fail as "encode failed: invalid size 0 or quality 95 (...)", as if
    /// the codec were broken; a size outside 1..=4096 (or a quality outside 1..=100) is refused
    /// before any storage is opened, naming the option and its range.
    #[test]
    fn a_size_out_of_range_is_refused_upfront_naming_the_option() {
        use crate::transform::{TransformOptions, MAX_SIZE};
        let out = tmp("size-out");
        let with = |size: u32, quality: u8| PreprocessOptions {
            // Not there: had it been listed, the error would be about the input.
            input: tmp("size-no-input").display().to_string(),
            output: out.display().to_string(),
            transform: TransformOptions {
                size,
                quality,
                ..Default::default()
            },
            threads: 1,
            ..Default::default()
        };
        for (size, quality, want) in [
            (0, 95, "--size 0: the output side must be 1 to 4096 pixels"),
            (
                MAX_SIZE + 1,
                95,
                "--size 4097: the output side must be 1 to 4096 pixels",
            ),
            (
                16385,
                95,
                "--size 16385: the output side must be 1 to 4096 pixels",
            ),
            (
                u32::MAX,
                95,
                "--size 4294967295: the output side must be 1 to 4096 pixels",
            ),
            (192, 0, "--quality 0: the JPEG quality must be 1 to 100"),
            (192, 101, "--quality 101: the JPEG quality must be 1 to 100"),
        ] {
            let opts = with(size, quality);
            for e in [
                check_options(&opts).unwrap_err(),
                run(&opts).unwrap_err(),
                run_part(&opts, 1, 2).unwrap_err(),
            ] {
                assert!(matches!(e, Error::Options(_)) && e.is_bad_input(), "{e}");
                assert_eq!(e.to_string(), want);
            }
        }
        assert!(!out.exists(), "the output folder was made");
        for size in [1, 192, MAX_SIZE] {
            check_options(&with(size, 95)).unwrap();
        }
    }

    #[test]
    fn a_cancelled_run_stops_and_commits_no_shard() {
        let data = tmp("cancel-data");
        generate(&GenOptions {
            out: data.clone(),
            images: 20,
            seed: 3,
            threads: 1,
            quality: 85,
        })
        .unwrap();
        let out = tmp("cancel-out");
        let opts = PreprocessOptions {
            input: data.display().to_string(),
            output: out.display().to_string(),
            shards: 2,
            threads: 2,
            cancel: Some(Arc::new(AtomicBool::new(true))),
            ..Default::default()
        };
        let e = run(&opts).unwrap_err();
        assert!(matches!(e, Error::Cancelled) && !e.is_bad_input(), "{e}");
        let left: Vec<_> = std::fs::read_dir(&out)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
        // Cancelled before its first image, a run leaves an earlier run's shards in place: it
        // writes none to replace them.
        let finished = PreprocessOptions {
            cancel: None,
            ..opts.clone()
        };
        run(&finished).unwrap();
        let shards = || {
            let mut names: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            names.sort();
            names
        };
        let before = shards();
        assert_eq!(before.len(), 2);
        assert!(matches!(run(&opts), Err(Error::Cancelled)));
        assert_eq!(shards(), before);
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_dir_all(&out);
    }
}
