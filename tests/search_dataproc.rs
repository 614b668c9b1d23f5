//! `cherrypick search --backend dataproc` through the command line against a local fake of the
//! Dataproc, Cloud Storage and OAuth token HTTP APIs (launch/tests/support/dataproc_api.rs):
//! application default credentials from a file, one cluster per probe created, polled, used and
//! deleted, the search id in the journal's header and on every cluster, the whole cluster bill
//! in the journal, no credential in the journal or the output, and `--resume` deleting a cluster
//! that a killed run left before it goes on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "../launch/tests/support/dataproc_api.rs"]
mod dataproc_api;
use dataproc_api::{serve, write_credentials, JobMode, Shared, TOKEN};

const BIN: &str = env!("CARGO_BIN_EXE_cherrypick");

const SPACE: &str = r#"
objective = "cost"
[catalogue]
machine_types = ["n2-standard-4"]
count = "workers"
[catalogue.dimensions]
workers = [2, 3, 4]
partitions = [6]
[workload]
dataset = "gs://data/flowers"
tasks = ["preprocess", "read-speed"]
"#;

struct Setup {
    _rt: tokio::runtime::Runtime,
    fake: Shared,
    base: String,
    dir: PathBuf,
}

fn setup(name: &str) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (fake, base) = rt.block_on(serve(JobMode::Done));
    let dir =
        std::env::temp_dir().join(format!("cp-search-dataproc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("space.toml"), SPACE).unwrap();
    std::fs::write(
        dir.join("cherrypick-linux"),
        b"\x7fELF staged, never run here",
    )
    .unwrap();
    write_credentials(&dir.join("adc.json"), &base);
    Setup {
        _rt: rt,
        fake,
        base,
        dir,
    }
}

impl Setup {
    fn search(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["search", "--backend", "dataproc", "--strategy", "grid"])
            .args([
                "--project",
                "test-proj",
                "--region",
                "europe-west1",
                "--bucket",
                "gs://stage",
            ])
            .args(["--probe-timeout", "60", "--space"])
            .arg(self.dir.join("space.toml"))
            .arg("--journal")
            .arg(self.dir.join("runs.jsonl"))
            .args(extra)
            .env("GOOGLE_APPLICATION_CREDENTIALS", self.dir.join("adc.json"))
            .env("CHERRYPICK_DATAPROC_API", &self.base)
            .env("CHERRYPICK_STORAGE_API", &self.base)
            .env("CHERRYPICK_DATAPROC_POLL_S", "0.02")
            .env("CHERRYPICK_BINARY", self.dir.join("cherrypick-linux"));
        c
    }

    fn count(&self, method: &str, path_end: &str) -> usize {
        let f = self.fake.lock().unwrap();
        f.requests
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(path_end))
            .count()
    }
}

fn journal(dir: &Path) -> (Value, Vec<Value>) {
    let text = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
    for secret in [TOKEN, "refresh-secret", "client-secret"] {
        assert!(!text.contains(secret), "a credential reached the journal");
    }
    let mut lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap());
    let header = lines.next().unwrap();
    (header, lines.collect())
}

#[test]
fn a_dataproc_search_creates_uses_and_deletes_one_cluster_per_probe() {
    let s = setup("run");
    let out = s.search(&["--budget", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for secret in [TOKEN, "refresh-secret", "client-secret"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    let (header, records) = journal(&s.dir);
    let search_id = header["options"]["search_id"].as_str().unwrap().to_string();
    assert_eq!(records.len(), 2);
    for r in &records {
        let o = &r["outcome"];
        assert_eq!(o["status"], "completed", "{r}");
        // The fake's driver output says 42.5 s; the cost is the whole cluster's price for it,
        // and the bill from creation to deletion is kept beside it.
        assert_eq!(o["runtime_s"], 42.5);
        let price = o["metrics"]["cluster_price_per_hour"].as_f64().unwrap();
        let cost = o["cost_usd"].as_f64().unwrap();
        assert!((cost - price * 42.5 / 3600.0).abs() < 1e-9, "{r}");
        assert!(o["metrics"]["spend_usd"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["log"]["command"]
            .as_str()
            .unwrap()
            .contains("dataproc cluster cp-"));
    }
    // One create, one delete per probe, every cluster labelled with the journal's search id.
    assert_eq!(s.count("POST", "/clusters"), 2);
    assert_eq!(s.count("DELETE", ""), 2);
    let f = s.fake.lock().unwrap();
    assert_eq!(f.clusters.len(), 2);
    for (name, (state, _, labels)) in &f.clusters {
        assert_eq!(state, "DELETING", "{name}");
        assert_eq!(labels["cherrypick-search"], search_id.as_str());
    }
    // The binary and the driver were staged once for the whole search.
    let staged = f
        .requests
        .iter()
        .filter(|r| r.path.starts_with("/upload/"))
        .count();
    assert_eq!(staged, 2);
}

#[test]
fn resume_deletes_a_cluster_left_by_a_killed_run_then_carries_on() {
    let s = setup("resume");
    let first = s.search(&["--budget", "1"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let (header, _) = journal(&s.dir);
    let search_id = header["options"]["search_id"].as_str().unwrap().to_string();
    // A killed run leaves a RUNNING cluster of this search behind, and one of another search
    // that must be left alone.
    {
        let mut f = s.fake.lock().unwrap();
        f.clusters.insert(
            "cp-leftover".into(),
            ("RUNNING".into(), 5, json!({"cherrypick-search": search_id})),
        );
        f.clusters.insert(
            "cp-other".into(),
            (
                "RUNNING".into(),
                5,
                json!({"cherrypick-search": "someone-else"}),
            ),
        );
    }
    let resumed = s.search(&["--budget", "2", "--resume"]);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(stdout.contains("deleted cluster cp-leftover"), "{stdout}");
    let f = s.fake.lock().unwrap();
    assert_eq!(f.clusters["cp-leftover"].0, "DELETING");
    assert_eq!(f.clusters["cp-other"].0, "RUNNING");
    // The leftover search asked only for its own label.
    let list = f
        .requests
        .iter()
        .find(|r| r.method == "GET" && r.path.ends_with("/clusters"))
        .expect("a listing of leftover clusters");
    assert!(list.query.contains(&search_id), "{}", list.query);
    drop(f);
    let (_, events) = journal(&s.dir);
    // The probe records (the resume also wrote a `resumed` event).
    let records: Vec<&Value> = events.iter().filter(|e| e["event"] == "probe").collect();
    assert_eq!(
        records.len(),
        2,
        "one probe recorded, one more after the resume"
    );
}

/// Sends SIGTERM to a running search and waits for it: it must exit 143. Returns its stderr.
fn terminate(child: &mut std::process::Child, started: Instant) -> String {
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the search did not end after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}: {err}");
    err
}

/// SIGTERM (as a scheduler or `systemctl stop` sends) while a probe's job runs: the job is
/// cancelled, the cluster deleted, the journal kept, and the exit code is 143.
#[test]
fn sigterm_during_a_probe_deletes_its_cluster() {
    let s = setup("sigterm");
    s.fake.lock().unwrap().mode = JobMode::Hang;
    let mut child = s
        .command(&["--budget", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while s.count("POST", "jobs:submit") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no job was submitted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = terminate(&mut child, started);
    assert_eq!(s.count("POST", "/clusters"), 1);
    assert_eq!(s.count("DELETE", ""), 1, "{err}");
    {
        let f = s.fake.lock().unwrap();
        for (name, (state, _, _)) in &f.clusters {
            assert_eq!(state, "DELETING", "{name}");
        }
    }
    let (_, events) = journal(&s.dir);
    assert!(
        events.iter().all(|e| e["event"] != "probe"),
        "the cancelled probe is not recorded"
    );
    // What its cluster cost is kept, for a resumed search's spend limit.
    let abandoned: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "abandoned")
        .collect();
    assert_eq!(abandoned.len(), 1, "{events:?}");
    assert!(
        abandoned[0]["spend_usd"].as_f64().is_some_and(|s| s > 0.0),
        "{events:?}"
    );
}

impl Setup {
    /// The most clusters alive at once, from the order of creates and deletes the fake saw.
    fn most_alive(&self) -> usize {
        let f = self.fake.lock().unwrap();
        let (mut alive, mut most) = (0usize, 0usize);
        for r in &f.requests {
            if r.method == "POST" && r.path.ends_with("/clusters") {
                alive += 1;
                most = most.max(alive);
            } else if r.method == "DELETE" {
                alive = alive.saturating_sub(1);
            }
        }
        most
    }
}

/// Three probes in flight: three clusters at once, each deleted (after success and after a
/// failed job), the binary staged once, and on SIGTERM every running cluster is deleted.
#[test]
fn parallel_probes_run_one_cluster_each_and_every_one_is_deleted() {
    let s = setup("parallel");
    let out = s.search(&["--budget", "3", "--parallel", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let (header, events) = journal(&s.dir);
    assert_eq!(header["options"]["parallel"], 3);
    let probes = events.iter().filter(|e| e["event"] == "probe").count();
    assert_eq!(probes, 3);
    assert_eq!(s.count("POST", "/clusters"), 3);
    assert_eq!(s.count("DELETE", ""), 3);
    assert_eq!(s.most_alive(), 3, "the three probes ran at once");
    {
        let f = s.fake.lock().unwrap();
        let staged = f
            .requests
            .iter()
            .filter(|r| r.path.starts_with("/upload/"))
            .count();
        assert_eq!(staged, 2, "binary and driver staged once for all probes");
        for (name, (state, _, _)) in &f.clusters {
            assert_eq!(state, "DELETING", "{name}");
        }
    }

    // Three failing jobs at once: each cluster is still deleted.
    let s = setup("parallel-failing");
    s.fake.lock().unwrap().mode = JobMode::Error;
    let out = s.search(&["--budget", "3", "--parallel", "3"]);
    // No probe completed: the search has no answer (exit 3).
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, events) = journal(&s.dir);
    let failed = events
        .iter()
        .filter(|e| e["event"] == "probe" && e["outcome"]["status"] == "failed")
        .count();
    assert_eq!(failed, 3);
    assert_eq!(s.count("POST", "/clusters"), 3);
    assert_eq!(s.count("DELETE", ""), 3);
    assert_eq!(s.most_alive(), 3);

    let s = setup("parallel-sigterm");
    s.fake.lock().unwrap().mode = JobMode::Hang;
    let mut child = s
        .command(&["--budget", "3", "--parallel", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while s.count("POST", "jobs:submit") < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "three jobs were not submitted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = terminate(&mut child, started);
    assert_eq!(s.count("POST", "/clusters"), 3);
    assert_eq!(s.count("DELETE", ""), 3, "{err}");
    let f = s.fake.lock().unwrap();
    for (name, (state, _, _)) in &f.clusters {
        assert_eq!(state, "DELETING", "{name}");
    }
}

/// A cluster the search cannot delete is still billed: it is counted until its scheduled
/// deletion, no further cluster is created, and the search ends with exit 1 naming it.
#[test]
fn a_cluster_that_cannot_be_deleted_halts_the_search() {
    let s = setup("undeleted");
    s.fake.lock().unwrap().delete_status = Some(500);
    let out = s.search(&["--budget", "3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(
        s.count("POST", "/clusters"),
        1,
        "one cluster, no further one"
    );
    let cluster = {
        let f = s.fake.lock().unwrap();
        f.clusters.keys().next().unwrap().clone()
    };
    assert!(stdout.contains("stopped: halted: cluster"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "`gcloud dataproc clusters delete {cluster} --region europe-west1`"
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("cluster {cluster} could not be deleted")),
        "{stderr}"
    );
    let (_, records) = journal(&s.dir);
    assert_eq!(records.len(), 1);
    // Billed until the scheduled deletion: creation allowance + the 60 s limit + margin.
    let o = &records[0]["outcome"];
    let price = o["metrics"]["cluster_price_per_hour"].as_f64().unwrap();
    let spend = o["metrics"]["spend_usd"].as_f64().unwrap();
    assert!(spend >= price * 660.0 / 3600.0, "{o}");

    // A failed job's record keeps the same bill, and a resume counts it as spent.
    let s = setup("undeleted-failed");
    {
        let mut f = s.fake.lock().unwrap();
        f.delete_status = Some(500);
        f.mode = JobMode::Error;
    }
    let out = s.search(&["--budget", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let (_, records) = journal(&s.dir);
    assert_eq!(records[0]["outcome"]["status"], "failed", "{}", records[0]);
    let cost = records[0]["outcome"]["cost_usd"].as_f64().unwrap();
    let billed = records[0]["billed_usd"].as_f64().unwrap();
    assert!(
        billed >= price * 660.0 / 3600.0 && billed > cost,
        "{}",
        records[0]
    );
    s.fake.lock().unwrap().delete_status = None;
    let out = s.search(&["--budget", "1", "--resume"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("beyond their recorded cost"),
        "{stdout}\n{stderr}"
    );
    let spent: f64 = stdout
        .split_once(" spent;")
        .and_then(|(before, _)| before.rsplit_once('$'))
        .map(|(_, amount)| amount.parse().unwrap())
        .unwrap_or_else(|| panic!("no spend in {stdout}"));
    assert!(
        (spent - billed).abs() < 1e-5,
        "{spent} vs {billed}: {stdout}"
    );
    assert_eq!(s.count("POST", "/clusters"), 1, "no further cluster");
}

/// A job's reported runtime is checked as the command backend checks it: past the probe's
/// limit it timed out; one that is no runtime fails the probe saying what it was.
#[test]
fn a_reported_runtime_past_the_limit_or_no_runtime_is_not_completed() {
    let s = setup("runtime-past");
    s.fake.lock().unwrap().driver_result = Some("CHERRYPICK_RESULT {\"runtime_s\": 99999}".into());
    let out = s.search(&["--budget", "1"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, records) = journal(&s.dir);
    assert_eq!(
        records[0]["outcome"]["status"], "timed-out",
        "{}",
        records[0]
    );

    let s = setup("runtime-bad");
    s.fake.lock().unwrap().driver_result = Some("CHERRYPICK_RESULT {\"runtime_s\": -5}".into());
    let out = s.search(&["--budget", "1"]);
    assert_eq!(out.status.code(), Some(3));
    let (_, records) = journal(&s.dir);
    let reason = records[0]["outcome"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("reported runtime_s=-5: a runtime is a number of seconds > 0"),
        "{reason}"
    );
}
