//! gs:// storage end to end against a Cloud Storage emulator: preprocess from gs:// to gs://,
//! read-speed on the gs:// shards, the Storage operations one by one, and the errors.
//!
//! Needs the emulator: `.ci/start-gcs.sh && source out/gcs/env` (sets STORAGE_EMULATOR_HOST;
//! CI does this). Without it the tests fail when CI=true and otherwise say so and pass.

use std::io::Write;

use workload::dataset::{generate, GenOptions};
use workload::preprocess::{run, shard_name, PreprocessOptions};
use workload::readspeed::{self, ReadSpeedOptions, Source};
use workload::storage::{self, Storage};
use workload::{GcsStorage, StorageErrorKind};

#[path = "../../tests/support/services.rs"]
mod services;

/// True when the emulator is configured (skipped locally, failed under CI, when it is not).
fn emulator() -> bool {
    services::service(
        "STORAGE_EMULATOR_HOST",
        "start the emulator with .ci/start-gcs.sh and `source out/gcs/env`",
    )
    .is_some()
}

/// Creates a fresh bucket through the JSON API (what `gcloud storage buckets create` does).
fn create_bucket(tag: &str) -> String {
    use gcloud_storage::client::{Client, ClientConfig};
    use gcloud_storage::http::buckets::insert::{InsertBucketParam, InsertBucketRequest};
    let name = format!("cp-{tag}-{}", std::process::id());
    let host = std::env::var("STORAGE_EMULATOR_HOST").expect("checked by emulator()");
    let config = ClientConfig {
        storage_endpoint: host.trim_end_matches('/').to_string(),
        ..Default::default()
    }
    .anonymous();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        Client::new(config)
            .insert_bucket(&InsertBucketRequest {
                name: name.clone(),
                param: InsertBucketParam {
                    project: "test".into(),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await
    })
    .unwrap_or_else(|e| panic!("creating bucket {name}: {e}"));
    name
}

#[test]
fn preprocess_and_read_speed_from_gs_to_gs() {
    if !emulator() {
        return;
    }
    let bucket = create_bucket("e2e");
    let local = std::env::temp_dir().join(format!("cp-gcs-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&local);
    generate(&GenOptions {
        out: local.clone(),
        images: 30,
        seed: 11,
        threads: 2,
        quality: 85,
    })
    .unwrap();
    // Upload the generated `<class>/*.jpg` tree under a prefix.
    let input = storage::open(&format!("gs://{bucket}/flowers")).unwrap();
    let files = storage::LocalStorage::new(&local).list().unwrap();
    assert_eq!(files.len(), 30);
    for f in &files {
        let data = std::fs::read(local.join(&f.key)).unwrap();
        input.put(&f.key, &data).unwrap();
    }
    // Keys and sizes; only the local listing names its files' paths.
    let key_size = |l: Vec<storage::ObjectInfo>| -> Vec<(String, u64)> {
        l.into_iter().map(|o| (o.key, o.size)).collect()
    };
    let listed = input.list().unwrap();
    assert_eq!(
        key_size(listed),
        key_size(files),
        "gs:// listing differs from the local tree"
    );

    let opts = PreprocessOptions {
        input: format!("gs://{bucket}/flowers"),
        output: format!("gs://{bucket}/tfrec/"),
        shards: 4,
        threads: 2,
        seed: 3,
        ..Default::default()
    };
    let summary = run(&opts).unwrap();
    assert_eq!(summary.images_written, 30);
    assert!(summary.skipped.is_empty(), "{:?}", summary.skipped);
    // 30 images over 4 shards: 7, 8, 7, 8 (bounds at i * n / shards).
    let expected: Vec<String> = [7, 8, 7, 8]
        .iter()
        .enumerate()
        .map(|(i, &n)| shard_name(i, n))
        .collect();
    let names: Vec<String> = summary.shards.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, expected);

    // Exactly the shards are visible (no temporaries, no write probe), with the sizes reported.
    let output = storage::open(&opts.output).unwrap();
    let objects = output.list().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (o, s) in objects.iter().zip(&summary.shards) {
        assert_eq!(o.size, s.bytes, "{}", o.key);
    }

    // Every record parses with our reader and carries a valid label and a 192x192 JPEG.
    let classes = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];
    let mut records = 0;
    for o in &objects {
        let data = output.get(&o.key).unwrap();
        for rec in workload::tfrecord::SliceReader::new(&data, &o.key) {
            let rec = rec.unwrap();
            let ex = workload::example::decode(rec).unwrap();
            let class = ex.int64("class").expect("class feature");
            let label = std::str::from_utf8(ex.bytes("label").expect("label")).unwrap();
            assert_eq!(classes[class as usize], label);
            let jpeg = ex.bytes("image").expect("image");
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG in {}", o.key);
            records += 1;
        }
    }
    assert_eq!(records, 30);

    // read-speed over the gs:// shards: one row per cell and repetition, each reading what it
    // says.
    let rows = readspeed::run(&ReadSpeedOptions {
        input: opts.output.clone(),
        source: Source::TfRecord,
        batch_sizes: vec![4, 8],
        batch_numbers: vec![2, 5],
        repetitions: 2,
        decode: true,
        parallel: 2,
        cancel: None,
    })
    .unwrap();
    assert_eq!(rows.len(), 2 * 2 * 2);
    for r in &rows {
        assert_eq!(r.images, r.batch_size * r.batch_number, "{r:?}");
        assert!(r.bytes > 0 && r.seconds > 0.0, "{r:?}");
    }

    // A shard cut short (the last one, uploaded again without its last record) is refused,
    // naming its gs:// object and both counts, instead of being measured.
    let last = &objects[3];
    let data = output.get(&last.key).unwrap();
    let mut cut = Vec::new();
    for rec in workload::tfrecord::SliceReader::new(&data, &last.key).take(7) {
        workload::tfrecord::append_record(&mut cut, rec.unwrap());
    }
    output.put(&last.key, &cut).unwrap();
    let e = readspeed::run(&ReadSpeedOptions {
        input: opts.output.clone(),
        source: Source::TfRecord,
        batch_sizes: vec![30],
        batch_numbers: vec![1],
        repetitions: 1,
        decode: false,
        parallel: 1,
        cancel: None,
    })
    .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "gs://{bucket}/tfrec/flowers03-8.tfrec: the shard's name says 8 records but it holds 7"
        )),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&local);
}

#[test]
fn list_get_put_and_the_streaming_writer() {
    if !emulator() {
        return;
    }
    let bucket = create_bucket("ops");
    let s = storage::open(&format!("gs://{bucket}/root")).unwrap();
    assert_eq!(s.location(), format!("gs://{bucket}/root"));
    s.prepare_output().unwrap();
    assert!(
        s.list().unwrap().is_empty(),
        "the write probe was left behind"
    );
    s.put("b/x.bin", b"abc").unwrap();
    // (Not empty: gcp-storage-emulator fails on zero-byte uploads; real Cloud Storage does not.)
    s.put("a.bin", b"z").unwrap();
    // Outside the prefix: not listed.
    storage::open(&format!("gs://{bucket}/rooted"))
        .unwrap()
        .put("y", b"no")
        .unwrap();

    let mut w = s.create("shard").unwrap();
    w.write_all(b"1234").unwrap();
    w.write_all(&[7u8; 100_000]).unwrap();
    // Before commit nothing new is visible.
    assert_eq!(s.list().unwrap().len(), 2);
    assert_eq!(w.commit("final.tfrec").unwrap(), 100_004);

    // A writer dropped without commit uploads nothing.
    let mut w = s.create("gone").unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);

    let listed: Vec<(String, u64)> = s
        .list()
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("a.bin".into(), 1),
            ("b/x.bin".into(), 3),
            ("final.tfrec".into(), 100_004)
        ]
    );
    assert_eq!(s.get("b/x.bin").unwrap(), b"abc");
    assert_eq!(s.get("a.bin").unwrap(), b"z");
    let big = s.get("final.tfrec").unwrap();
    assert_eq!(&big[..4], b"1234");
    assert!(big[4..].iter().all(|&b| b == 7));

    let e = s.get("missing").unwrap_err();
    assert_eq!(e.kind, StorageErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with(&format!("read gs://{bucket}/root/missing:")),
        "{e}"
    );
}

#[test]
fn a_missing_bucket_is_a_clear_not_found() {
    if !emulator() {
        return;
    }
    let bucket = format!("cp-no-such-bucket-{}", std::process::id());
    let s = storage::open(&format!("gs://{bucket}/p")).unwrap();
    for e in [
        s.list().unwrap_err(),
        s.prepare_output().unwrap_err(),
        s.put("k", b"x").unwrap_err(),
    ] {
        assert_eq!(e.kind, StorageErrorKind::NotFound, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("bucket `{bucket}` does not exist")),
            "{text}"
        );
    }
    // Through preprocess: an input error (exit code 2 in the CLI) naming the bucket.
    let e = run(&PreprocessOptions {
        input: format!("gs://{bucket}/in"),
        output: std::env::temp_dir().display().to_string(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains(&bucket), "{e}");
}

/// A token source that always gives the same token (the emulator takes any).
#[derive(Debug)]
struct FixedToken;

#[async_trait::async_trait]
impl token_source::TokenSource for FixedToken {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok("Bearer emulator-token".into())
    }
}

impl token_source::TokenSourceProvider for FixedToken {
    fn token_source(&self) -> std::sync::Arc<dyn token_source::TokenSource> {
        std::sync::Arc::new(FixedToken)
    }
}

/// `GcsStorage::open_at`: the client at an explicit endpoint, signed in by a token source the
/// caller gives (not the emulator mode), and listing by a name's start that need not end at `/`.
#[test]
fn an_explicit_endpoint_with_a_token_source() {
    if !emulator() {
        return;
    }
    let bucket = create_bucket("at");
    let host = std::env::var("STORAGE_EMULATOR_HOST").expect("checked by emulator()");
    let s = GcsStorage::open_at(&bucket, &host, Box::new(FixedToken)).unwrap();
    assert_eq!(s.location(), format!("gs://{bucket}/"));
    for (name, data) in [
        ("jobs/j1/driveroutput.000000001", "second\n"),
        ("jobs/j1/driveroutput.000000000", "first\n"),
        ("jobs/j1/driveroutputs-not", "no"),
        ("jobs/j10/driveroutput.000000000", "other job"),
    ] {
        s.put(name, data.as_bytes()).unwrap();
    }
    let keys: Vec<String> = s
        .list_starting("jobs/j1/driveroutput.")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        keys,
        [
            "jobs/j1/driveroutput.000000000",
            "jobs/j1/driveroutput.000000001"
        ]
    );
    assert_eq!(s.get(&keys[1]).unwrap(), b"second\n");
    assert_eq!(s.list().unwrap().len(), 4);
    // Under a prefix, keys stay relative to it.
    let under =
        GcsStorage::open_at(&format!("{bucket}/jobs"), &host, Box::new(FixedToken)).unwrap();
    let keys: Vec<String> = under
        .list_starting("j1/")
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("j1/")), "{keys:?}");

    // Not a URL: refused before any request, naming the endpoint.
    let e = match GcsStorage::open_at(&bucket, "127.0.0.1:9023", Box::new(FixedToken)) {
        Err(e) => e,
        Ok(_) => panic!("a bare host:port was taken as an endpoint"),
    };
    assert!(e.to_string().contains("127.0.0.1:9023"), "{e}");
}
