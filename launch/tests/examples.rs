//! Every space file in examples/ loads for its backend, and every backend has an example.

use std::path::Path;

use launch::spacefile::{load, BackendKind, LoadOptions};

/// The backend each example is written for.
const EXAMPLES: &[(&str, BackendKind)] = &[
    ("local-preprocess.toml", BackendKind::Local),
    ("command-sleep.toml", BackendKind::Command),
    ("cluster-job.toml", BackendKind::Command),
    ("spark.toml", BackendKind::Spark),
    ("dataproc.toml", BackendKind::Dataproc),
];

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

#[test]
fn every_example_loads_for_its_backend() {
    for (file, backend) in EXAMPLES {
        let spec = load(
            &examples().join(file),
            &LoadOptions {
                backend: *backend,
                prices: None,
            },
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            spec.space.len() >= 4,
            "{file}: {} configurations",
            spec.space.len()
        );
        if matches!(
            backend,
            BackendKind::Local | BackendKind::Spark | BackendKind::Dataproc
        ) {
            assert!(spec.workload.is_some(), "{file} has no [workload]");
        }
        if *backend == BackendKind::Command {
            assert!(
                spec.backend.command.is_some(),
                "{file} has no [backend.command]"
            );
        }
    }
}

#[test]
fn every_backend_has_an_example_and_every_example_is_listed() {
    for b in BackendKind::ALL {
        assert!(
            EXAMPLES.iter().any(|(_, e)| *e == b),
            "no example for the {} backend",
            b.name()
        );
    }
    for entry in std::fs::read_dir(examples()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            assert!(
                EXAMPLES.iter().any(|(f, _)| *f == name),
                "examples/{name} is not loaded by this test"
            );
        }
    }
}
