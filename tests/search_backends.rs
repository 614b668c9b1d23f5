//! `cherrypick search` with the spark and dataproc backends, through the command line: the
//! dataproc dry run (requests, cluster prices and a worst case that counts cluster creation and
//! deletion, with nothing sent) and the refusals a user meets before anything is launched.
//! The end-to-end runs are in tests/spark_search.rs (a real Spark cluster) and
//! launch/tests/dataproc_fake.rs (a local fake of the Dataproc API).

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_cherrypick");

const DATAPROC_SPACE: &str = r#"
objective = "cost"
[catalogue]
machine_types = ["n2-standard-4", "e2-standard-4"]
count = "workers"
[catalogue.dimensions]
workers = [2, 4]
partitions = [16]
[workload]
dataset = "gs://data/flowers"
tasks = ["preprocess", "read-speed"]
"#;

fn space(name: &str, text: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-backends-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("space.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn dataproc(space: &PathBuf) -> Command {
    let mut c = Command::new(BIN);
    c.args(["search", "--backend", "dataproc", "--space"])
        .arg(space)
        // If anything were sent it would go here and fail: nothing listens on port 9.
        .env("CHERRYPICK_DATAPROC_API", "http://127.0.0.1:9")
        .env("CHERRYPICK_STORAGE_API", "http://127.0.0.1:9")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS");
    c
}

#[test]
fn dataproc_dry_run_prints_requests_and_a_worst_case_with_the_whole_cluster() {
    let p = space("dry", DATAPROC_SPACE);
    let (code, out, err) = run(dataproc(&p).args([
        "--project",
        "test-proj",
        "--region",
        "europe-west1",
        "--bucket",
        "gs://stage",
        "--dry-run",
        "--probe-timeout",
        "600",
        "--budget",
        "2",
    ]));
    assert_eq!(code, 0, "{out}\n{err}");
    for want in [
        "POST http://127.0.0.1:9/v1/projects/test-proj/regions/europe-west1/clusters?requestId=",
        "POST http://127.0.0.1:9/v1/projects/test-proj/regions/europe-west1/jobs:submit",
        "DELETE http://127.0.0.1:9/v1/projects/test-proj/regions/europe-west1/clusters/",
        "\"idleDeleteTtl\"",
        "/upload/storage/v1/b/stage/o?uploadType=media",
        "# price: ",
        "# dry run: nothing was sent",
        // What the model will see: the two types have one shape, so only the cluster size
        // varies; one partition count is no input.
        "model inputs (bo): workers; left out: partitions (constant)\n",
    ] {
        assert!(out.contains(want), "missing `{want}` in:\n{out}");
    }
    // Every configuration shows its cluster price (master and disks included), the same price
    // the model uses (one price per configuration).
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("USD/hour with master"))
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    for row in &rows {
        let f: Vec<&str> = row.split_whitespace().collect();
        let model: f64 = f[1].parse().unwrap();
        let cluster: f64 = f[3].parse().unwrap();
        assert!((cluster - model).abs() < 1e-4, "{row}");
    }
    // The worst case of the 2 dearest probes covers cluster creation (15 min limit), the probe's
    // 600 s and 5 min of deletion at the full cluster price: price x 1800 s each.
    let mut prices: Vec<f64> = rows
        .iter()
        .map(|r| r.split_whitespace().nth(3).unwrap().parse::<f64>().unwrap())
        .collect();
    prices.sort_by(|a, b| b.total_cmp(a));
    let plan = out.lines().find(|l| l.starts_with("plan:")).unwrap();
    let worst: f64 = plan.rsplit('$').next().unwrap().parse().unwrap();
    let expected = (prices[0] + prices[1]) * 1800.0 / 3600.0;
    assert!((worst - expected).abs() < 2e-3, "{plan} vs {expected}");
}

#[test]
fn dataproc_needs_project_region_and_bucket_and_a_gs_dataset() {
    let p = space("flags", DATAPROC_SPACE);
    let (code, _, err) = run(dataproc(&p).args([
        "--region",
        "europe-west1",
        "--bucket",
        "stage-bucket",
        "--dry-run",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--backend dataproc needs --project"), "{err}");

    let local = space(
        "local-data",
        &DATAPROC_SPACE.replace("gs://data/flowers", "flowers"),
    );
    let (code, _, err) = run(dataproc(&local).args([
        "--project",
        "my-project",
        "--region",
        "europe-west1",
        "--bucket",
        "stage-bucket",
        "--dry-run",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("is not gs://bucket/prefix"), "{err}");

    // Names that go into request URLs are checked first.
    let (code, _, err) = run(dataproc(&p).args([
        "--project",
        "../../other",
        "--region",
        "europe-west1",
        "--bucket",
        "stage-bucket",
        "--dry-run",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("--project `../../other`"), "{err}");

    // Another backend's options are refused, not ignored as if applied.
    for (backend, flag, value, owner) in [
        ("local", "--project", Some("p"), "dataproc"),
        ("spark", "--bucket", Some("gs://b"), "dataproc"),
        ("local", "--keep-output", None, "spark"),
        ("dataproc", "--keep-output", None, "spark"),
    ] {
        let mut c = Command::new(BIN);
        c.args(["search", "--backend", backend, "--dry-run", "--space"])
            .arg(&p)
            .arg(flag)
            .args(value);
        let (code, _, err) = run(&mut c);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(&format!(
                "{flag} is an option of the {owner} backend, not of the {backend} backend"
            )),
            "{err}"
        );
    }
}

/// A Spark space file whose dataset is generated on first use.
const SPARK_SPACE: &str = r#"
[catalogue]
count = "executors"
count_unit = "vcpu"
[[catalogue.machine]]
name = "core"
vcpus = 1
memory_gib = 2
price_per_hour = 0.05
[catalogue.dimensions]
executors = [1, 2]
partitions = [2]
[workload]
dataset = "flowers"
tasks = ["preprocess"]
[workload.generate]
images = 10
"#;

#[test]
fn spark_without_a_cluster_says_how_to_start_one() {
    let p = space("spark", SPARK_SPACE);
    let (code, _, err) = run(Command::new(BIN)
        .args(["search", "--backend", "spark", "--space"])
        .arg(&p)
        .arg("--journal")
        .arg(p.with_file_name("runs.jsonl"))
        .env_remove("SPARK_MASTER_URL"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SPARK_MASTER_URL is not set"), "{err}");
}

/// A dry run prints each probe's spark-submit line and touches nothing: no dataset generated,
/// no driver script or scratch folder written, no journal.
#[test]
fn a_spark_dry_run_writes_nothing() {
    let p = space("spark-dry-run", SPARK_SPACE);
    let d = p.parent().unwrap();
    let (code, out, err) = run(Command::new(BIN)
        .args(["search", "--backend", "spark", "--dry-run", "--space"])
        .arg(&p)
        .arg("--journal")
        .arg(d.join("runs.jsonl"))
        .env("SPARK_MASTER_URL", "spark://127.0.0.1:1")
        .env("SPARK_SUBMIT", "/opt/spark/bin/spark-submit"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.matches("/opt/spark/bin/spark-submit --master spark://127.0.0.1:1")
            .count(),
        2,
        "{out}"
    );
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["space.toml"], "{out}");
    // Without [workload.generate], a missing dataset is the dry run's error too, as it would
    // be the search's.
    let text = SPARK_SPACE.replace("[workload.generate]\nimages = 10\n", "");
    assert_ne!(text, SPARK_SPACE);
    std::fs::write(&p, text).unwrap();
    for backend in ["spark", "local"] {
        let (code, _, err) = run(Command::new(BIN)
            .args(["search", "--backend", backend, "--dry-run", "--space"])
            .arg(&p)
            .env("SPARK_MASTER_URL", "spark://127.0.0.1:1"));
        assert_eq!(code, 2, "{backend}: {err}");
        assert!(err.contains("is missing or empty"), "{backend}: {err}");
    }
    let _ = std::fs::remove_dir_all(d);
}

/// Files of a local dataset that no probe reads (not at `<class>/<image>`) are named once for
/// the search, not once per probe.
#[test]
fn a_local_search_names_the_files_it_leaves_out_once() {
    let p = space(
        "local-outside",
        r#"
[catalogue]
machine_types = ["e2-standard-2"]
count = "threads"
count_unit = "vcpu"
[catalogue.dimensions]
threads = [1, 2]
[workload]
dataset = "flowers"
generate = { images = 10, seed = 1 }
tasks = ["preprocess"]
params = { size = 32 }
"#,
    );
    let d = p.parent().unwrap();
    let search = || {
        run(Command::new(BIN)
            .args([
                "search",
                "--backend",
                "local",
                "--strategy",
                "grid",
                "--space",
            ])
            .arg(&p)
            .arg("--journal")
            .arg(d.join("runs.jsonl")))
    };
    let (code, _, err) = search();
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("outside <class>/<image>"), "{err}");
    // The probes' folder the search made is gone with their output; one that was there stays.
    assert!(!d.join("runs.scratch").exists());
    std::fs::create_dir(d.join("runs.scratch")).unwrap();
    std::fs::write(d.join("flowers/README.txt"), "about").unwrap();
    std::fs::remove_file(d.join("runs.jsonl")).unwrap();
    let (code, out, err) = search();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches(" completed ").count(), 2, "{out}");
    assert_eq!(
        err.matches("ignored 1 file outside <class>/<image> (1 at the top level; e.g. README.txt)")
            .count(),
        1,
        "{err}"
    );
    assert!(d.join("runs.scratch").is_dir());
    let _ = std::fs::remove_dir_all(d);
}
