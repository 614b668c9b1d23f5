//! Criterion benchmarks of the workload crate's per-image and per-record work: JPEG decode (full
//! size and DCT-scaled), the fill resize to 192x192, the q95 4:4:4 encode, and TFRecord write and
//! read. Inputs are photos from the crate's seeded generator (the same content `gen-dataset`
//! writes), built outside the timed closures.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use workload::dataset::{image_dims, synth_image};
use workload::example::{self, encode_flower};
use workload::rng::SplitMix64;
use workload::tfrecord::{self, SliceReader, Writer};
use workload::transform::{encode_jpeg, Chroma, DecodeMode, TransformOptions, Transformer};

/// Photos per iteration: enough sizes and orientations to be typical, few enough to stay quick.
const PHOTOS: u64 = 12;

/// Seeded photos as `gen-dataset` makes them (q85, 4:2:0), cycling over the five classes.
fn photos() -> Vec<Vec<u8>> {
    (0..PHOTOS)
        .map(|i| {
            let class = (i % 5) as usize;
            let mut rng = SplitMix64::derive(1, class as u64, i);
            let (w, h) = image_dims(&mut rng);
            let px = synth_image(&mut rng, class, w, h);
            encode_jpeg(&px, w, h, 85, Chroma::Half420).expect("encode generated photo")
        })
        .collect()
}

fn transformer(dct_scaling: bool) -> Transformer {
    Transformer::new(&TransformOptions {
        dct_scaling,
        ..Default::default()
    })
    .expect("default options are valid")
}

fn codec(c: &mut Criterion) {
    let photos = photos();
    let mut g = c.benchmark_group("jpeg");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(PHOTOS));

    // Whole-photo decodes (what libjpeg-turbo's decode-only rate measures is `decode_full`).
    for (name, dct, decode) in [
        ("decode_full", false, DecodeMode::Accurate),
        ("decode_full_fast", false, DecodeMode::Fast),
        ("decode_dct_scaled", true, DecodeMode::Fast),
    ] {
        let mut t = Transformer::new(&TransformOptions {
            dct_scaling: dct,
            decode,
            ..Default::default()
        })
        .expect("default options are valid");
        t.set_simd_scales_only(false);
        g.bench_function(name, |b| {
            b.iter(|| {
                for p in &photos {
                    black_box(t.decode(p).expect("decode").width);
                }
            })
        });
    }

    // Resize alone: each photo decoded (DCT-scaled, as preprocess does) once, outside the timing.
    let mut decoders: Vec<Transformer> = photos
        .iter()
        .map(|p| {
            let mut t = transformer(true);
            t.set_simd_scales_only(false);
            t.decode(p).expect("decode");
            t
        })
        .collect();
    g.bench_function("resize_fill_192", |b| {
        b.iter(|| {
            for t in decoders.iter_mut() {
                black_box(t.resize_decoded().expect("resize").len());
            }
        })
    });

    // Encode alone: the 192x192 results of the resize above.
    let resized: Vec<Vec<u8>> = decoders
        .iter_mut()
        .map(|t| t.resize_decoded().expect("resize").to_vec())
        .collect();
    let mut enc = transformer(true);
    let mut out = Vec::new();
    g.bench_function("encode_192_q95_444", |b| {
        b.iter(|| {
            for px in &resized {
                enc.encode_rgb(px, 192, 192, &mut out).expect("encode");
                black_box(out.len());
            }
        })
    });

    // The whole per-image step as preprocess runs it (the default: accurate decoding of the
    // centre region, SIMD DCT scales only), and with one choice changed each.
    // `fast`: fast IDCT and plain chroma upsampling (`--decoder fast`);
    // `whole`: the whole photo decoded, not just the region the crop and the filter read;
    // `all_scales`: DCT scales 5/8-7/8 (plain C IDCTs) used instead of decoding at 8/8.
    for (name, decode, region, simd) in [
        ("process", DecodeMode::Accurate, true, true),
        ("process_fast", DecodeMode::Fast, true, true),
        ("process_whole", DecodeMode::Accurate, false, true),
        ("process_all_scales", DecodeMode::Accurate, true, false),
    ] {
        let mut t = Transformer::new(&TransformOptions {
            decode,
            ..Default::default()
        })
        .expect("default options are valid");
        t.set_region_decode(region);
        t.set_simd_scales_only(simd);
        g.bench_function(name, |b| {
            b.iter(|| {
                for p in &photos {
                    t.process(p, &mut out).expect("process");
                    black_box(out.len());
                }
            })
        });
    }
    g.finish();
}

fn records(c: &mut Criterion) {
    // One shard's worth of preprocessed records (~230 of ~30 KB, the 3670-image job's shards).
    let mut t = transformer(true);
    let photos = photos();
    let payloads: Vec<Vec<u8>> = (0..230)
        .map(|i| {
            let mut jpeg = Vec::new();
            t.process(&photos[i % photos.len()], &mut jpeg)
                .expect("process");
            let mut payload = Vec::new();
            encode_flower(&jpeg, (i % 5) as i64, "tulips", &mut payload);
            payload
        })
        .collect();
    let mut shard = Vec::new();
    for p in &payloads {
        tfrecord::append_record(&mut shard, p);
    }
    let bytes = shard.len() as u64;

    let mut g = c.benchmark_group("tfrecord");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(bytes));
    let mut buf = Vec::with_capacity(shard.len());
    g.bench_function("write_shard", |b| {
        b.iter(|| {
            buf.clear();
            let mut w = Writer::new(&mut buf);
            for p in &payloads {
                w.write_record(p).expect("write to memory");
            }
            black_box(w.bytes_written());
        })
    });
    g.bench_function("read_shard_crc", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for rec in SliceReader::new(&shard, "bench") {
                n += rec.expect("valid record").len();
            }
            black_box(n);
        })
    });
    g.bench_function("read_shard_crc_parse_example", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for rec in SliceReader::new(&shard, "bench") {
                let ex = example::decode(rec.expect("valid record")).expect("valid example");
                n += ex.bytes("image").map_or(0, |i| i.len());
            }
            black_box(n);
        })
    });
    g.finish();
}

criterion_group!(benches, codec, records);
criterion_main!(benches);
