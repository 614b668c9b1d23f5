//! The dataproc backend against a local fake of the Dataproc v1, Cloud Storage JSON and OAuth
//! token APIs (an axum server on 127.0.0.1:0) that records every request: the request order of a
//! probe, deletion of the cluster on every path, scheduled deletion, the dry run, and that the
//! access token never leaks into outcomes or logs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use launch::dataproc::{Credentials, DataprocOptions, DataprocRunner, SEARCH_LABEL};
use launch::spacefile::{parse, BackendKind, LoadOptions, SearchSpec};
use optimizer::{Outcome, ProbeLimits, Report, Runner};
use serde_json::json;

#[path = "support/dataproc_api.rs"]
mod dataproc_api;
use dataproc_api::{serve, url_pairs, write_credentials, JobMode, Req, Shared, TOKEN};

#[path = "support/discovery.rs"]
mod discovery;

struct Harness {
    fake: Shared,
    base: String,
    dir: std::path::PathBuf,
}

impl Harness {
    async fn start(mode: JobMode, name: &str) -> Harness {
        let (fake, base) = serve(mode).await;
        let dir = std::env::temp_dir().join(format!("cp-dataproc-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cherrypick"), b"\x7fELF not really a binary").unwrap();
        Harness { fake, base, dir }
    }

    fn spec(&self) -> Arc<SearchSpec> {
        let text = r#"
[catalogue]
machine_types = ["n2-standard-4"]
count = "workers"
[catalogue.dimensions]
workers = [2, 3]
partitions = [6]
[workload]
dataset = "gs://data/flowers"
tasks = ["preprocess", "read-speed"]
"#;
        let opts = LoadOptions {
            backend: BackendKind::Dataproc,
            prices: None,
        };
        Arc::new(parse(text, &self.dir.join("space.toml"), &opts).unwrap())
    }

    fn options(&self) -> DataprocOptions {
        let mut o = DataprocOptions::new("test-proj", "europe-west1", "gs://stage");
        o.api_base = self.base.clone();
        o.storage_base = self.base.clone();
        o.binary = self.dir.join("cherrypick");
        o.poll_interval = Duration::from_millis(20);
        o.create_timeout = Duration::from_secs(10);
        o.search_id = "test-search".into();
        o
    }

    fn credentials(&self) -> Credentials {
        let path = self.dir.join("adc.json");
        write_credentials(&path, &self.base);
        Credentials::from_file(&path).unwrap()
    }

    fn runner(&self) -> DataprocRunner {
        DataprocRunner::new(self.spec(), self.options(), self.credentials()).unwrap()
    }

    fn requests(&self) -> Vec<Req> {
        self.fake.lock().unwrap().requests.clone()
    }

    /// Short labels of the Dataproc calls, in order, with repeats collapsed.
    fn calls(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.requests() {
            let label = if r.path == "/token" {
                "token".to_string()
            } else if r.path.starts_with("/upload/") {
                "upload".to_string()
            } else if r.path.starts_with("/storage/") {
                "read-output".to_string()
            } else {
                let rest = r.path.split("/regions/europe-west1/").nth(1).unwrap_or("");
                match (r.method.as_str(), rest) {
                    ("POST", "clusters") => "create".into(),
                    ("GET", x) if x.starts_with("clusters/") => "poll-cluster".into(),
                    ("POST", "jobs:submit") => "submit".into(),
                    ("GET", x) if x.starts_with("jobs/") => "poll-job".into(),
                    ("POST", x) if x.ends_with(":cancel") => "cancel".into(),
                    ("DELETE", _) => "delete".into(),
                    (m, x) => format!("{m} {x}"),
                }
            };
            if out.last() != Some(&label) {
                out.push(label);
            }
        }
        out
    }

    fn deletes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "DELETE")
            .count()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn no_token_in(report: &Report) {
    let text = format!("{report:?}");
    for secret in [TOKEN, "refresh-secret", "client-secret"] {
        assert!(!text.contains(secret), "a credential leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_creates_submits_polls_reads_output_and_deletes() {
    let h = Harness::start(JobMode::Done, "ok").await;
    let r = h.runner();
    let spec = h.spec();
    let limits = ProbeLimits {
        timeout: Some(Duration::from_secs(900)),
        interrupt: None,
    };
    let report = r.run(&spec.space, 1, &limits).await;
    let o = report.outcome.clone();
    let Outcome::Completed {
        runtime_s,
        cost_usd,
        metrics,
    } = &o
    else {
        panic!("{o:?}")
    };
    assert_eq!(*runtime_s, 42.5);
    assert_eq!(metrics["spark_tasks"], 6.0);
    // Master + 3 workers of n2-standard-4, the premium on 16 vCPUs, 4 x 50 GB pd-standard.
    let per_hour = 4.0 * 0.194236 + 16.0 * 0.010 + 4.0 * 50.0 * 0.04 / 730.0;
    assert!((metrics["cluster_price_per_hour"] - per_hour).abs() < 1e-9);
    assert!((cost_usd - per_hour * 42.5 / 3600.0).abs() < 1e-9);
    // One price: the strategy's model price of this configuration is the one its cost used.
    assert!((spec.space.config(1).price_per_hour - per_hour).abs() < 1e-12);
    assert_eq!(
        spec.space.config(1).price_per_hour,
        r.cluster_price(1).unwrap().per_hour()
    );
    // The bill runs from creation to deletion (the journal keeps it as a metric); what spend
    // limits count is never below the job's cost (the fake's job reports more time than passed).
    assert!(report.billed_usd >= metrics[optimizer::SPEND_METRIC]);
    assert_eq!(report.billed_usd, o.spend_usd());
    assert_eq!(
        h.calls(),
        [
            "token",
            "upload",
            "create",
            "poll-cluster",
            "submit",
            "poll-job",
            "read-output",
            "delete"
        ]
    );
    let reqs = h.requests();
    for q in reqs.iter().filter(|q| q.path != "/token") {
        assert_eq!(
            q.auth.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{} {}",
            q.method,
            q.path
        );
    }
    // Staging and reading the driver output went through the workload's gcloud-storage client
    // (its user agent), with the runner's token: a simple media upload each for the binary and
    // the driver, a listing by the output's prefix, then the object's bytes.
    let storage: Vec<&Req> = reqs
        .iter()
        .filter(|q| q.path.starts_with("/upload/") || q.path.starts_with("/storage/"))
        .collect();
    assert_eq!(storage.len(), 4, "{storage:?}");
    for q in &storage {
        assert_eq!(
            q.user_agent.as_deref(),
            Some("google-cloud-storage"),
            "{} {}",
            q.method,
            q.path
        );
    }
    let uploads: Vec<&&Req> = storage
        .iter()
        .filter(|q| q.path == "/upload/storage/v1/b/stage/o")
        .collect();
    assert_eq!(uploads.len(), 2);
    assert!(uploads
        .iter()
        .all(|q| q.query.starts_with("uploadType=media&name=")));
    let list = url_pairs(&storage[2].query);
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        list["prefix"].starts_with("google-cloud-dataproc-metainfo/u1/jobs/")
            && list["prefix"].ends_with("/driveroutput"),
        "{list:?}"
    );
    assert!(
        storage[3].path.ends_with("%2Fdriveroutput.000000000") && storage[3].query == "alt=media",
        "{:?}",
        storage[3]
    );
    let create = reqs
        .iter()
        .find(|q| q.method == "POST" && q.path.ends_with("/clusters"))
        .unwrap();
    let c = &create.body;
    assert_eq!(c["config"]["workerConfig"]["numInstances"], 3);
    assert_eq!(
        c["config"]["workerConfig"]["machineTypeUri"],
        "n2-standard-4"
    );
    assert_eq!(c["config"]["masterConfig"]["numInstances"], 1);
    // Scheduled deletion from the 900 s limit: idle after 900 s, at most the 10 s creation
    // limit + 900 s + a 600 s margin after creation.
    assert_eq!(c["config"]["lifecycleConfig"]["idleDeleteTtl"], "900s");
    assert_eq!(c["config"]["lifecycleConfig"]["autoDeleteTtl"], "1510s");
    assert_eq!(c["labels"][SEARCH_LABEL], "test-search");
    assert!(create.query.contains("requestId="));
    let submit = reqs
        .iter()
        .find(|q| q.path.ends_with("jobs:submit"))
        .unwrap();
    let job = &submit.body["job"]["pysparkJob"];
    assert_eq!(job["properties"]["spark.default.parallelism"], "6");
    assert_eq!(job["properties"]["spark.executor.instances"], "3");
    assert!(job["mainPythonFileUri"]
        .as_str()
        .unwrap()
        .starts_with("gs://stage/cherrypick/staging/"));
    assert!(job["fileUris"][0]
        .as_str()
        .unwrap()
        .ends_with("/cherrypick"));
    let args: Vec<&str> = job["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w == ["--input", "gs://data/flowers"]),
        "{args:?}"
    );
    // The binary and the driver were staged with their contents.
    let objects = h.fake.lock().unwrap().objects.clone();
    assert!(objects
        .iter()
        .any(|(k, v)| k.ends_with("/cherrypick") && v.starts_with(b"\x7fELF")));
    assert!(objects
        .iter()
        .any(|(k, v)| k.ends_with("/job.py") && v.starts_with(b"\"\"\"The cherrypick workload")));
    let log = report.log.clone().unwrap();
    assert!(log.stdout.contains("CHERRYPICK_RESULT"));
    no_token_in(&report);

    // A second probe reuses the staged files and the token.
    let o2 = r.run(&spec.space, 0, &limits).await.outcome;
    assert!(matches!(o2, Outcome::Completed { .. }), "{o2:?}");
    let reqs = h.requests();
    assert_eq!(
        reqs.iter()
            .filter(|q| q.path.starts_with("/upload/"))
            .count(),
        2
    );
    assert_eq!(reqs.iter().filter(|q| q.path == "/token").count(), 1);
    assert_eq!(h.deletes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_still_deletes_the_cluster() {
    let h = Harness::start(JobMode::Error, "fail").await;
    let r = h.runner();
    let spec = h.spec();
    let report = r.run(&spec.space, 0, &ProbeLimits::default()).await;
    let o = &report.outcome;
    let Outcome::Failed { reason, .. } = o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("ERROR") && reason.contains("no images found"),
        "{reason}"
    );
    assert_eq!(h.calls().last().unwrap(), "delete");
    assert_eq!(h.deletes(), 1);
    no_token_in(&report);
}

/// A cluster that goes to ERROR fails its probe with Dataproc's reason, or says there was none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_in_error_fails_the_probe_with_its_reason() {
    let h = Harness::start(JobMode::Done, "cluster-error").await;
    let r = h.runner();
    let spec = h.spec();
    for (detail, want) in [
        (
            "Insufficient 'CPUS' quota",
            "could not start: Insufficient 'CPUS' quota",
        ),
        ("", "could not start: Dataproc gave no reason"),
    ] {
        h.fake.lock().unwrap().cluster_error = Some(detail.into());
        let o = r.run(&spec.space, 0, &ProbeLimits::default()).await.outcome;
        let Outcome::Failed { reason, .. } = &o else {
            panic!("{o:?}")
        };
        assert!(reason.contains(want), "{reason}");
    }
    assert_eq!(h.deletes(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_job_is_cancelled_and_the_cluster_deleted() {
    let h = Harness::start(JobMode::Hang, "timeout").await;
    let r = h.runner();
    let spec = h.spec();
    let limits = ProbeLimits {
        timeout: Some(Duration::from_millis(300)),
        interrupt: None,
    };
    let o = r.run(&spec.space, 0, &limits).await.outcome;
    assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
    let calls = h.calls();
    assert_eq!(calls[calls.len() - 2..], ["cancel", "delete"]);
    // With a short limit the scheduled deletion stays at Dataproc's 10-minute minimum.
    let create = h
        .requests()
        .into_iter()
        .find(|q| q.method == "POST" && q.path.ends_with("/clusters"))
        .unwrap();
    assert_eq!(
        create.body["config"]["lifecycleConfig"]["idleDeleteTtl"],
        "600s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_the_probe_and_deletes_the_cluster() {
    let h = Harness::start(JobMode::Hang, "interrupt").await;
    let r = h.runner();
    let spec = h.spec();
    let flag = Arc::new(AtomicBool::new(false));
    let limits = ProbeLimits {
        timeout: None,
        interrupt: Some(flag.clone()),
    };
    let f2 = flag.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        f2.store(true, Ordering::SeqCst);
    });
    let o = r.run(&spec.space, 0, &limits).await.outcome;
    assert!(
        matches!(&o, Outcome::Failed { reason, .. } if reason.contains("interrupted")),
        "{o:?}"
    );
    assert_eq!(h.calls().last().unwrap(), "delete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_probe_deletes_its_cluster_from_the_guard() {
    // Dropping the probe future mid-job stands for every abort that skips the normal path
    // (a panic unwinding, a caller that gives up on the future).
    let h = Harness::start(JobMode::Hang, "drop").await;
    let r = h.runner();
    let spec = h.spec();
    let limits = ProbeLimits::default();
    let res =
        tokio::time::timeout(Duration::from_millis(400), r.run(&spec.space, 0, &limits)).await;
    assert!(
        res.is_err(),
        "the job hangs, so the probe cannot have finished"
    );
    assert!(h.calls().contains(&"submit".to_string()), "{:?}", h.calls());
    assert_eq!(h.calls().last().unwrap(), "delete");
    assert_eq!(h.deletes(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cluster_is_a_failed_probe_and_deletion_is_still_tried() {
    let h = Harness::start(JobMode::Done, "refused").await;
    h.fake.lock().unwrap().create_status = Some(400); // a client error: not retried
    let r = h.runner();
    let spec = h.spec();
    let o = r.run(&spec.space, 0, &ProbeLimits::default()).await.outcome;
    let Outcome::Failed { reason, .. } = &o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("HTTP 400") && reason.contains("quota exceeded"),
        "{reason}"
    );
    // The cluster may exist even when the answer was an error: delete is sent (404 = gone).
    assert_eq!(h.calls().last().unwrap(), "delete");
    assert!(!h.calls().contains(&"submit".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_requests_and_price_and_sends_nothing() {
    let h = Harness::start(JobMode::Done, "dry").await;
    let mut o = h.options();
    o.dry_run = true;
    let r = DataprocRunner::new(h.spec(), o, h.credentials()).unwrap();
    let limits = ProbeLimits {
        timeout: Some(Duration::from_secs(600)),
        interrupt: None,
    };
    let report = r.dry_run_report(1, &limits).unwrap();
    assert!(
        report.contains("POST ") && report.contains("/clusters?requestId=cp-test-search-"),
        "{report}"
    );
    assert!(report.contains("\"autoDeleteTtl\": \"1210s\""), "{report}");
    assert!(
        report.contains("jobs:submit") && report.contains("DELETE "),
        "{report}"
    );
    let per_hour = 4.0 * 0.194236 + 16.0 * 0.010 + 4.0 * 50.0 * 0.04 / 730.0;
    assert!(
        report.contains(&format!("# price: {per_hour:.4} USD/hour")),
        "{report}"
    );
    assert!(report.contains("nothing was sent"));
    let outcome = r.run(&h.spec().space, 1, &limits).await.outcome;
    assert!(
        matches!(&outcome, Outcome::Failed { reason, cost_usd, .. } if reason.contains("dry run") && *cost_usd == 0.0)
    );
    assert!(h.requests().is_empty(), "{:?}", h.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftover_clusters_of_the_search_are_found_by_label_and_deleted() {
    let h = Harness::start(JobMode::Done, "leftovers").await;
    {
        let mut f = h.fake.lock().unwrap();
        f.clusters.insert(
            "cp-test-search-0-aaaa".into(),
            ("RUNNING".into(), 5, json!({SEARCH_LABEL: "test-search"})),
        );
        f.clusters.insert(
            "cp-test-search-1-bbbb".into(),
            ("DELETING".into(), 5, json!({SEARCH_LABEL: "test-search"})),
        );
    }
    let r = h.runner();
    let deleted = r.delete_leftovers().await.unwrap();
    assert_eq!(deleted, ["cp-test-search-0-aaaa"]);
    let list = h
        .requests()
        .into_iter()
        .find(|q| q.method == "GET" && q.path.ends_with("/clusters"))
        .unwrap();
    assert!(
        list.query.contains("filter=labels.cherrypick-search"),
        "{}",
        list.query
    );
}

#[test]
fn bad_settings_are_refused_before_anything_is_sent() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(Harness::start(JobMode::Done, "bad"));
    let mut o = h.options();
    o.search_id = "Bad_Label".into();
    let err = DataprocRunner::new(h.spec(), o, h.credentials())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("search id"), "{err}");
    let mut o = h.options();
    o.input = Some("/local/flowers".into());
    let err = DataprocRunner::new(h.spec(), o, h.credentials())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("gs://"), "{err}");
    // Disks other than the ones the space file priced would make the model's price wrong.
    let mut o = h.options();
    o.boot_disk_gb = 500;
    let err = DataprocRunner::new(h.spec(), o, h.credentials())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("500 GB") && err.contains("USD/hour"), "{err}");
    let text = "[catalogue]\nmachine_types = [\"n2-standard-4\"]\ncount = \"workers\"\n[catalogue.dimensions]\nworkers = [1]\n[workload]\ndataset = \"gs://d/f\"\ntasks = [\"preprocess\"]\n";
    let err = parse(
        text,
        Path::new("s.toml"),
        &LoadOptions {
            backend: BackendKind::Dataproc,
            prices: None,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("workers >= 2"), "{err}");
    assert!(h.requests().is_empty());
}

/// Every request the runner sends and every answer of the fake, on the paths a probe can take
/// (a job that ends, one that fails, one past its time limit, the leftover sweep), checked against
/// Google's discovery documents: an unknown path, parameter or field fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_and_fake_answer_follows_googles_discovery_documents() {
    let dataproc = discovery::Discovery::load("dataproc.v1.json");
    let storage = discovery::Discovery::load("storage.v1.json");
    let mut seen = std::collections::BTreeSet::new();
    for (mode, name) in [
        (JobMode::Done, "conform-done"),
        (JobMode::Error, "conform-error"),
        (JobMode::Hang, "conform-hang"),
    ] {
        let h = Harness::start(mode, name).await;
        let r = h.runner();
        let spec = h.spec();
        let limits = ProbeLimits {
            timeout: Some(Duration::from_millis(300)),
            interrupt: None,
        };
        let limits = if mode == JobMode::Hang {
            limits
        } else {
            ProbeLimits::default()
        };
        let _ = r.run(&spec.space, 0, &limits).await;
        r.delete_leftovers().await.unwrap();
        for q in h.requests() {
            if q.path == "/token" {
                continue; // OAuth, not part of either API
            }
            let api = if q.path.starts_with("/v1/") {
                &dataproc
            } else {
                &storage
            };
            let query = url_pairs(&q.query);
            let id = api
                .check_request(&q.method, &q.path, &query, &q.body)
                .unwrap_or_else(|e| panic!("request: {e}"));
            let media = query.get("alt").map(String::as_str) == Some("media");
            if !media {
                api.check_response(&id, q.status, &q.response)
                    .unwrap_or_else(|e| panic!("fake's answer to {} {}: {e}", q.method, q.path));
            }
            seen.insert(id);
        }
    }
    for id in [
        "dataproc.projects.regions.clusters.create",
        "dataproc.projects.regions.clusters.get",
        "dataproc.projects.regions.clusters.list",
        "dataproc.projects.regions.clusters.delete",
        "dataproc.projects.regions.jobs.submit",
        "dataproc.projects.regions.jobs.get",
        "dataproc.projects.regions.jobs.cancel",
        "storage.objects.insert",
        "storage.objects.list",
        "storage.objects.get",
    ] {
        assert!(seen.contains(id), "{id} was never exercised: {seen:?}");
    }
}

/// Two searches started in the same second (same process even) get different ids, each a
/// valid label value: `--resume` of one must never find the other's clusters as its own.
#[test]
fn search_ids_are_unique_within_a_second_and_valid_labels() {
    let ids: Vec<String> = (0..200)
        .map(|_| DataprocOptions::new("p", "r", "gs://b").search_id)
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    for id in &ids {
        assert!(
            !id.is_empty()
                && id.len() <= 63
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
    }
}

/// A search id long enough that cluster names must be cut: the cut takes the prefix, so each
/// probe's number (and the names' uniqueness) survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_names_cut_to_the_limit_keep_the_probe_number() {
    let h = Harness::start(JobMode::Done, "long-id").await;
    let mut o = h.options();
    o.search_id = format!("s{}", "0123456789".repeat(6))
        .chars()
        .take(63)
        .collect();
    let r = DataprocRunner::new(h.spec(), o, h.credentials()).unwrap();
    let spec = h.spec();
    let limits = ProbeLimits {
        timeout: Some(Duration::from_secs(900)),
        interrupt: None,
    };
    for config in [0, 1] {
        let o = r.run(&spec.space, config, &limits).await.outcome;
        assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
    }
    let names: Vec<String> = h
        .requests()
        .into_iter()
        .filter(|q| q.method == "POST" && q.path.ends_with("/clusters"))
        .map(|q| q.body["clusterName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_ne!(names[0], names[1]);
    for (n, name) in names.iter().enumerate() {
        assert!(name.len() <= 51 && name.starts_with("cp-s0123"), "{name}");
        let parts: Vec<&str> = name.rsplitn(3, '-').collect();
        assert_eq!(parts[1], n.to_string(), "{name}");
        assert_eq!(parts[0].len(), 4, "{name}");
        assert!(!name.contains("--") && !name.ends_with('-'), "{name}");
    }
}

/// The dry run prints the uploads staging sends: the same URLs, byte for byte, as the requests
/// the Cloud Storage client made when a probe ran with the same options.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_prints_the_uploads_that_staging_sends() {
    let h = Harness::start(JobMode::Done, "plan-truth").await;
    let limits = ProbeLimits {
        timeout: Some(Duration::from_secs(900)),
        interrupt: None,
    };
    let o = h.runner().run(&h.spec().space, 0, &limits).await.outcome;
    assert!(matches!(o, Outcome::Completed { .. }), "{o:?}");
    let sent: Vec<String> = h
        .requests()
        .into_iter()
        .filter(|q| q.path.starts_with("/upload/"))
        .map(|q| format!("{} {}{}?{}", q.method, h.base, q.path, q.query))
        .collect();
    let mut options = h.options();
    options.dry_run = true;
    let dry = DataprocRunner::new(h.spec(), options, h.credentials()).unwrap();
    let planned: Vec<String> = dry
        .requests(0, &limits)
        .unwrap()
        .into_iter()
        .filter(|r| r.upload.is_some())
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert_eq!(planned, sent);
}

/// Staging needs the Bearer token like every request: a token the fake rejects fails the probe
/// before any cluster exists, naming the object it could not write and never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_fails_staging_naming_the_object_not_the_token() {
    let h = Harness::start(JobMode::Done, "bad-token").await;
    let r = DataprocRunner::new(
        h.spec(),
        h.options(),
        Credentials::Token("ya29.rejected-secret".into()),
    )
    .unwrap();
    let report = r.run(&h.spec().space, 0, &ProbeLimits::default()).await;
    let Outcome::Failed { reason, .. } = &report.outcome else {
        panic!("{:?}", report.outcome)
    };
    assert!(
        reason.contains("staging the binary")
            && reason.contains("gs://stage/cherrypick/staging/")
            && reason.contains("HTTP 401"),
        "{reason}"
    );
    assert!(
        !format!("{report:?}").contains("rejected-secret"),
        "{report:?}"
    );
    // Refused, not retried; nothing else was sent.
    assert_eq!(h.calls(), ["upload"]);
    assert_eq!(h.requests().len(), 1);
    assert!(h.fake.lock().unwrap().objects.is_empty());
}

/// A token source that gives one fixed token.
#[derive(Debug, Clone)]
struct FixedToken(&'static str);

#[async_trait::async_trait]
impl token_source::TokenSource for FixedToken {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        Ok(format!("Bearer {}", self.0))
    }
}

impl token_source::TokenSourceProvider for FixedToken {
    fn token_source(&self) -> Arc<dyn token_source::TokenSource> {
        Arc::new(self.clone())
    }
}

/// `workload::GcsStorage::open_at` against the fake's Cloud Storage API, which requires the
/// Bearer token: writes, lists by a name's start and reads back with the right token; with a
/// wrong one every operation is refused as permission denied, naming the object, not the token.
#[test]
fn the_storage_client_at_an_endpoint_signs_in_with_the_token_source_it_was_given() {
    use workload::storage::Storage;
    use workload::{GcsStorage, StorageErrorKind};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (fake, base) = rt.block_on(serve(JobMode::Done));
    let s = GcsStorage::open_at("stage/runs", &base, Box::new(FixedToken(TOKEN))).unwrap();
    s.put("j/driveroutput.000000001", b"two\n").unwrap();
    s.put("j/driveroutput.000000000", b"one\n").unwrap();
    s.put("j/other", b"x").unwrap();
    let listed: Vec<(String, u64)> = s
        .list_starting("j/driveroutput")
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("j/driveroutput.000000000".to_string(), 4),
            ("j/driveroutput.000000001".to_string(), 4)
        ]
    );
    assert_eq!(s.get("j/driveroutput.000000001").unwrap(), b"two\n");
    assert_eq!(s.list().unwrap().len(), 3);
    assert_eq!(
        fake.lock().unwrap().objects["stage/runs/j/other"],
        b"x".to_vec()
    );
    for q in &fake.lock().unwrap().requests {
        assert_eq!(
            q.auth.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{q:?}"
        );
    }

    let wrong =
        GcsStorage::open_at("stage/runs", &base, Box::new(FixedToken("ya29.wrong"))).unwrap();
    for e in [
        wrong.put("k", b"x").unwrap_err(),
        wrong.get("j/other").unwrap_err(),
        wrong.list_starting("j/").unwrap_err(),
    ] {
        assert_eq!(e.kind, StorageErrorKind::PermissionDenied, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("gs://stage/runs/") && text.contains("HTTP 401"),
            "{text}"
        );
        assert!(!text.contains("wrong"), "{text}");
    }
}
