//! `cherrypick workload ...`: the workload on its own (dataset generation, preprocessing,
//! read-speed test, regression). Thin: parses flags and prints; the work is in the `workload` crate.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args as ClapArgs, Subcommand};
use workload::transform::{Chroma, DecodeMode, Filter, TransformOptions};

use crate::exit::bad_input;

#[derive(Subcommand)]
pub enum Command {
    /// Generate a seeded synthetic stand-in for the flowers photos (`<class>/*.jpg`).
    GenDataset(GenArgs),
    /// Decode, resize "fill" and re-encode every image into TFRecord shards of tf.train.Example.
    Preprocess(PreprocessArgs),
    /// Time reading batch_size x batch_number records (or image files) over a grid; write a CSV.
    ReadSpeed(ReadSpeedArgs),
    /// OLS of read throughput on batch_size, batch_number and their product; JSON and a PNG plot.
    Regress(RegressArgs),
}

#[derive(ClapArgs)]
pub struct ReadSpeedArgs {
    /// Folder or gs://bucket/prefix with *.tfrec shards (or <class>/* images).
    #[arg(long)]
    input: String,
    /// tfrecord or images.
    #[arg(long, default_value = "tfrecord")]
    source: workload::readspeed::Source,
    /// A cell reads batch_size x batch_number images (at most 1000000000).
    #[arg(long, value_delimiter = ',', default_value = "8,16,32,64")]
    batch_sizes: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "10,30,60")]
    batch_numbers: Vec<usize>,
    /// Repetitions of each cell (at most 100000 cells in the grid).
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Decode each JPEG as well as reading it (images that fail to decode are counted apart).
    #[arg(long)]
    decode: bool,
    /// Cells timed at once (0 = all cores; at most 1024).
    #[arg(long, default_value_t = 0)]
    parallel: usize,
    /// CSV file to write (never one of the files read).
    #[arg(long)]
    out: PathBuf,
}

#[derive(ClapArgs)]
pub struct RegressArgs {
    /// CSV written by `read-speed`.
    csv: PathBuf,
    /// Folder for regression.json and regression.png.
    #[arg(long)]
    out: PathBuf,
}

#[derive(ClapArgs)]
pub struct GenArgs {
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Number of images (split over the five classes like the real set's 633/898/641/699/799;
    /// at most 1000000).
    #[arg(long, default_value_t = 3670)]
    images: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(ClapArgs)]
pub struct PreprocessArgs {
    /// Folder or gs://bucket/prefix holding <class>/*.jpg.
    #[arg(long)]
    input: String,
    /// Folder or gs://bucket/prefix for the shards.
    #[arg(long)]
    output: String,
    /// Output side in pixels (1-4096).
    #[arg(long, default_value_t = 192)]
    size: u32,
    /// JPEG quality (1-100).
    #[arg(long, default_value_t = 95)]
    quality: u8,
    /// Chroma subsampling: 444 or 420.
    #[arg(long, default_value = "444")]
    chroma: Chroma,
    /// Resize filter: bilinear, bicubic or lanczos3.
    #[arg(long, default_value = "bilinear")]
    filter: Filter,
    /// Decode at full size instead of shrinking in the DCT domain first.
    #[arg(long)]
    no_dct_scaling: bool,
    /// JPEG decoding: accurate (libjpeg's accurate IDCT and smooth chroma upsampling) or fast
    /// (the fast integer IDCT, TensorFlow's decode_jpeg default, and plain upsampling: ~3%
    /// faster, pixels 40-53 dB PSNR from accurate).
    #[arg(long, default_value = "accurate")]
    decoder: DecodeMode,
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Seed of the shuffle that spreads classes over shards.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only the first N images (after shuffling).
    #[arg(long)]
    limit: Option<usize>,
    /// Process only part I (from 0) of a run split into N parts, writing its one shard
    /// `flowersII-COUNT.tfrec`; the N parts together equal a run with `--shards N` (how the Spark
    /// job spreads preprocessing over its tasks). Overrides --shards.
    #[arg(long, value_name = "I/N", value_parser = parse_part)]
    part: Option<(usize, usize)>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `I/N` with I < N.
fn parse_part(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}`: expected I/N, for example 0/4"))?;
    let (i, n) = (
        i.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}`: I is not a whole number"))?,
        n.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{s}`: N is not a whole number"))?,
    );
    if i >= n {
        return Err(format!(
            "`{s}`: I must be below N (parts are numbered from 0)"
        ));
    }
    Ok((i, n))
}

/// Maps a library error to the CLI's exit codes (bad input or unwritable output -> 2; a full or
/// failing disk -> 1, see `workload::Error::is_bad_input`).
fn lib_err(e: workload::Error) -> anyhow::Error {
    if e.is_bad_input() {
        bad_input(e)
    } else {
        anyhow::Error::new(e)
    }
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::GenDataset(a) => gen_dataset(a),
        Command::Preprocess(a) => preprocess(a),
        Command::ReadSpeed(a) => read_speed(a),
        Command::Regress(a) => regress(a),
    }
}

/// Refuses a Cloud Storage location where only a local path is read or written: taken as a
/// path, `gs://b/x` became a local folder `gs:/b/x` and the message said the bucket was written.
fn local_only(flag: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if workload::storage::names_cloud_storage(&path.to_string_lossy()) {
        return Err(bad_input(anyhow::anyhow!(
            "{flag} {}: this takes a local path; Cloud Storage (gs://) is read by `preprocess \
             --input`, `read-speed --input` and written by `preprocess --output`",
            path.display()
        )));
    }
    Ok(())
}

fn gen_dataset(a: GenArgs) -> anyhow::Result<()> {
    local_only("--out", &a.out)?;
    super::check_count("--threads", a.threads as u64, 0, super::MAX_THREADS)?;
    let started = std::time::Instant::now();
    let s = workload::dataset::generate(&workload::dataset::GenOptions {
        out: a.out.clone(),
        images: a.images,
        seed: a.seed,
        threads: a.threads,
        ..Default::default()
    })
    .map_err(lib_err)?;
    let per_class: Vec<String> = s
        .per_class
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    println!(
        "wrote {} images ({}) to {} in {:.1} s: {:.1} MB, mean {:.1} KB, {:.2} bits/pixel",
        s.images,
        per_class.join(", "),
        a.out.display(),
        started.elapsed().as_secs_f64(),
        s.bytes as f64 / 1e6,
        s.bytes as f64 / 1e3 / s.images as f64,
        s.bits_per_pixel
    );
    Ok(())
}

fn preprocess(a: PreprocessArgs) -> anyhow::Result<()> {
    // Each is a thread spawned: past this many, spawning fails partway instead of a refusal.
    super::check_count("--threads", a.threads as u64, 0, super::MAX_THREADS)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = workload::preprocess::PreprocessOptions {
        input: a.input,
        output: a.output,
        transform: TransformOptions {
            size: a.size,
            quality: a.quality,
            chroma: a.chroma,
            filter: a.filter,
            dct_scaling: !a.no_dct_scaling,
            decode: a.decoder,
        },
        shards: a.shards,
        threads: a.threads,
        seed: a.seed,
        limit: a.limit,
        progress: !a.json,
        cancel: Some(cancel.clone()),
    };
    let watch = watch_signals(
        cancel,
        "no new image; unless every image was already done, the shards this run committed are \
         removed, so none looks finished",
    )?;
    let s = match a.part {
        Some((i, n)) => workload::preprocess::run_part(&opts, i, n),
        None => workload::preprocess::run(&opts),
    };
    let s = stopped_by(&watch, s)?;
    // One line on stderr however many files there are (the summary counts them too).
    if let Some(warning) = s.outside_layout.warning(&opts.input) {
        eprintln!("{warning}");
    }
    if a.json {
        let skipped: Vec<_> = s
            .skipped
            .iter()
            .map(|k| serde_json::json!({"file": k.key, "reason": k.reason}))
            .collect();
        let shards: Vec<_> = s
            .shards
            .iter()
            .map(|k| serde_json::json!({"name": k.name, "records": k.records, "bytes": k.bytes}))
            .collect();
        let v = serde_json::json!({
            "images_found": s.images_found, "images_written": s.images_written,
            "bytes_in": s.bytes_in, "bytes_out": s.bytes_out, "threads": s.threads,
            "elapsed_s": s.elapsed_s, "cpu_s": s.cpu_s,
            "images_per_s": s.images_per_s(), "images_per_cpu_s": s.images_per_cpu_s(),
            "peak_rss_bytes": workload::peak_rss_bytes(),
            "shards": shards, "skipped": skipped,
            "outside_layout": {
                "top_level": s.outside_layout.top_level,
                "nested": s.outside_layout.nested,
                "examples": s.outside_layout.examples,
            },
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{s}");
        println!(
            "peak memory {:.0} MB",
            workload::peak_rss_bytes() as f64 / 1e6
        );
    }
    Ok(())
}

fn read_speed(a: ReadSpeedArgs) -> anyhow::Result<()> {
    local_only("--out", &a.out)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = workload::readspeed::ReadSpeedOptions {
        input: a.input,
        source: a.source,
        batch_sizes: a.batch_sizes,
        batch_numbers: a.batch_numbers,
        repetitions: a.repetitions,
        decode: a.decode,
        parallel: a.parallel,
        cancel: Some(cancel.clone()),
    };
    // Before the run: an output that is one of the inputs, or cannot be written, is refused
    // without spending the run.
    workload::readspeed::check_output(&opts, &a.out).map_err(lib_err)?;
    let watch = watch_signals(cancel, "no further read; nothing is written")?;
    let started = std::time::Instant::now();
    let rows = stopped_by(&watch, workload::readspeed::run(&opts))?;
    let wall = started.elapsed().as_secs_f64();
    // A signal after the last read: nothing is written, as the message said.
    if let Some(signal) = watch.signal() {
        return Err(anyhow::Error::new(crate::exit::Interrupted(signal)));
    }
    workload::readspeed::write_csv(&a.out, &rows).map_err(lib_err)?;
    println!(
        "{:>10} {:>12} {:>4} {:>8} {:>12} {:>10}",
        "batch_size", "batch_number", "rep", "images", "images/s", "MB/s"
    );
    for r in &rows {
        println!(
            "{:>10} {:>12} {:>4} {:>8} {:>12.0} {:>10.1}",
            r.batch_size,
            r.batch_number,
            r.repetition,
            r.images,
            r.images_per_s(),
            r.mb_per_s()
        );
    }
    let images: usize = rows.iter().map(|r| r.images).sum();
    let failures: usize = rows.iter().map(|r| r.decode_failures).sum();
    let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
    if failures > 0 {
        eprintln!(
            "warning: {failures} of the {} images read could not be decoded; they are not \
             counted in images or images/s (column decode_failures)",
            images + failures
        );
    }
    println!(
        "{} cells, {} images, {:.1} MB in {:.2} s wall: {:.0} images/s, {:.1} MB/s overall; wrote {}",
        rows.len(),
        images,
        bytes as f64 / 1e6,
        wall,
        images as f64 / wall,
        bytes as f64 / 1e6 / wall,
        a.out.display()
    );
    Ok(())
}

/// Sets `cancel` at SIGINT, SIGTERM or SIGHUP, saying `stopping`.
fn watch_signals(
    cancel: Arc<AtomicBool>,
    stopping: &'static str,
) -> anyhow::Result<launch::session::SignalWatch> {
    launch::session::SignalWatch::start(cancel, stopping)
        .map_err(|e| anyhow::anyhow!("cannot watch for stop signals: {e}"))
}

/// The run's result, or the signal that stopped it (exit 128 + its number). Only a run that
/// was cancelled is reported as stopped: another error that met a signal is still said.
fn stopped_by<T>(
    watch: &launch::session::SignalWatch,
    result: Result<T, workload::Error>,
) -> anyhow::Result<T> {
    match (watch.signal(), result) {
        (Some(signal), Err(workload::Error::Cancelled)) => {
            Err(anyhow::Error::new(crate::exit::Interrupted(signal)))
        }
        (_, r) => r.map_err(lib_err),
    }
}

fn regress(a: RegressArgs) -> anyhow::Result<()> {
    local_only("the CSV", &a.csv)?;
    local_only("--out", &a.out)?;
    let points = workload::regress::read_csv(&a.csv).map_err(lib_err)?;
    let fit = workload::regress::fit(&points).map_err(lib_err)?;
    println!("{fit}");
    let w = workload::regress::write_outputs(&points, &fit, &a.out).map_err(lib_err)?;
    if let Some(warning) = &w.font_warning {
        eprintln!("warning: {warning}");
    }
    println!("wrote {} and {}", w.json.display(), w.png.display());
    Ok(())
}
