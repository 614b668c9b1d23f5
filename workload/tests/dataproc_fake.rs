//! The dataproc backend against a local fake of the Dataproc v1, Cloud Storage JSON and OAuth
//! token APIs (an axum server on 127.0.0.1:0) that records every request: the request order of a
//! probe, deletion of the cluster on every path, scheduled deletion, the dry run, and that the
//! access token never leaks into outcomes or logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use optimizer::{Outcome, ProbeLimits, Runner};
use serde_json::{json, Value};
use workload::launch::dataproc::{Credentials, DataprocOptions, DataprocRunner, SEARCH_LABEL};
use workload::launch::spacefile::{parse, BackendKind, LoadOptions, SearchSpec};

const TOKEN: &str = "ya29.fake-secret-token";

#[derive(Clone, Copy, PartialEq)]
enum JobMode {
    Done,
    Error,
    Hang,
}

#[derive(Clone, Debug)]
struct Req {
    method: String,
    path: String,
    query: String,
    auth: Option<String>,
    body: Value,
}

struct Fake {
    mode: JobMode,
    requests: Vec<Req>,
    /// Cluster name -> (state, GETs so far, labels).
    clusters: BTreeMap<String, (String, usize, Value)>,
    objects: BTreeMap<String, Vec<u8>>,
    /// Answer cluster creation with this status instead.
    create_status: Option<u16>,
}

type Shared = Arc<Mutex<Fake>>;

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn handle(
    State(fake): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut f = fake.lock().unwrap();
    f.requests.push(Req {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        auth: headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(String::from),
        body: body_json.clone(),
    });
    if path == "/token" {
        return json_response(
            StatusCode::OK,
            json!({"access_token": TOKEN, "expires_in": 3600}),
        );
    }
    if path != "/token"
        && headers.get("authorization").and_then(|h| h.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
    {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "no token"}}),
        );
    }
    let q: BTreeMap<String, String> = url_pairs(&query);
    // Cloud Storage.
    if let Some(bucket_rest) = path.strip_prefix("/upload/storage/v1/b/") {
        let bucket = bucket_rest.trim_end_matches("/o");
        let name = q.get("name").cloned().unwrap_or_default();
        f.objects.insert(format!("{bucket}/{name}"), body.to_vec());
        return json_response(StatusCode::OK, json!({"bucket": bucket, "name": name}));
    }
    if let Some(rest) = path.strip_prefix("/storage/v1/b/") {
        let (bucket, obj) = rest.split_once("/o").unwrap();
        if obj.is_empty() {
            let prefix = q.get("prefix").cloned().unwrap_or_default();
            let items: Vec<Value> = f
                .objects
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{bucket}/")))
                .filter(|k| k.starts_with(&prefix))
                .map(|k| json!({"name": k}))
                .collect();
            return json_response(StatusCode::OK, json!({"items": items}));
        }
        let name = percent_decode(obj.trim_start_matches('/'));
        return match f.objects.get(&format!("{bucket}/{name}")) {
            Some(b) => (StatusCode::OK, b.clone()).into_response(),
            None => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": {"message": "no such object"}}),
            ),
        };
    }
    // Dataproc.
    let Some(rest) = path.strip_prefix("/v1/projects/proj/regions/europe-west1/") else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("unknown path {path}")}}),
        );
    };
    match (method.as_str(), rest) {
        ("POST", "clusters") => {
            if let Some(s) = f.create_status {
                return json_response(
                    StatusCode::from_u16(s).unwrap(),
                    json!({"error": {"message": "quota exceeded"}}),
                );
            }
            let name = body_json["clusterName"].as_str().unwrap().to_string();
            f.clusters.insert(
                name.clone(),
                ("CREATING".into(), 0, body_json["labels"].clone()),
            );
            json_response(
                StatusCode::OK,
                json!({"name": format!("projects/proj/regions/europe-west1/operations/op-{name}"), "done": false}),
            )
        }
        ("GET", "clusters") => {
            let list: Vec<Value> = f
                .clusters
                .iter()
                .map(
                    |(n, (s, _, l))| json!({"clusterName": n, "status": {"state": s}, "labels": l}),
                )
                .collect();
            json_response(StatusCode::OK, json!({"clusters": list}))
        }
        ("GET", r) if r.starts_with("clusters/") => {
            let name = &r["clusters/".len()..];
            let Some(c) = f.clusters.get_mut(name) else {
                return json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "no cluster"}}),
                );
            };
            c.1 += 1;
            if c.1 >= 2 && c.0 == "CREATING" {
                c.0 = "RUNNING".into();
            }
            json_response(
                StatusCode::OK,
                json!({"clusterName": name, "status": {"state": c.0}}),
            )
        }
        ("DELETE", r) if r.starts_with("clusters/") => {
            let name = &r["clusters/".len()..];
            match f.clusters.get_mut(name) {
                Some(c) => {
                    c.0 = "DELETING".into();
                    json_response(StatusCode::OK, json!({"name": "op-delete", "done": false}))
                }
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "no cluster"}}),
                ),
            }
        }
        ("POST", "jobs:submit") => {
            let id = body_json["job"]["reference"]["jobId"]
                .as_str()
                .unwrap()
                .to_string();
            json_response(
                StatusCode::OK,
                json!({"reference": {"jobId": id}, "status": {"state": "PENDING"}}),
            )
        }
        ("POST", r) if r.ends_with(":cancel") => json_response(
            StatusCode::OK,
            json!({"status": {"state": "CANCEL_PENDING"}}),
        ),
        ("GET", r) if r.starts_with("jobs/") => {
            let id = &r["jobs/".len()..];
            let polls = f.requests.iter().filter(|q| q.path == path).count();
            let uri =
                format!("gs://stage/google-cloud-dataproc-metainfo/u1/jobs/{id}/driveroutput");
            let state = match (f.mode, polls) {
                (_, 1) | (JobMode::Hang, _) => "RUNNING",
                (JobMode::Done, _) => "DONE",
                (JobMode::Error, _) => "ERROR",
            };
            if state != "RUNNING" {
                let key = format!(
                    "stage/google-cloud-dataproc-metainfo/u1/jobs/{id}/driveroutput.000000000"
                );
                let out = match f.mode {
                    JobMode::Done => "25/11/25 INFO starting\nCHERRYPICK_RESULT {\"runtime_s\": 42.5, \"app_id\": \"application_1\", \"spark_tasks\": 6}\n",
                    _ => "Traceback (most recent call last):\nRuntimeError: workload preprocess ... exited with 2: no images found\n",
                };
                f.objects.insert(key, out.as_bytes().to_vec());
            }
            let details = if state == "ERROR" {
                "Job failed with message [RuntimeError]"
            } else {
                ""
            };
            json_response(
                StatusCode::OK,
                json!({"reference": {"jobId": id}, "status": {"state": state, "details": details}, "driverOutputResourceUri": uri}),
            )
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("unknown {method} {path}")}}),
        ),
    }
}

fn url_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(&v.replace('+', " "))))
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Harness {
    fake: Shared,
    base: String,
    dir: std::path::PathBuf,
}

impl Harness {
    async fn start(mode: JobMode, name: &str) -> Harness {
        let fake = Arc::new(Mutex::new(Fake {
            mode,
            requests: Vec::new(),
            clusters: BTreeMap::new(),
            objects: BTreeMap::new(),
            create_status: None,
        }));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
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
        let mut o = DataprocOptions::new("proj", "europe-west1", "gs://stage");
        o.api_base = self.base.clone();
        o.storage_base = self.base.clone();
        o.binary = self.dir.join("cherrypick");
        o.poll_interval = Duration::from_millis(20);
        o.create_timeout = Duration::from_secs(10);
        o.search_id = "test-search".into();
        o
    }

    fn credentials(&self) -> Credentials {
        Credentials::AuthorizedUser {
            client_id: "client".into(),
            client_secret: "client-secret".into(),
            refresh_token: "refresh-secret".into(),
            token_uri: format!("{}/token", self.base),
        }
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

fn no_token_in(o: &Outcome, runner: &DataprocRunner) {
    let text = format!("{o:?} {:?}", runner.log_slot().lock().unwrap());
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
    let o = r.run(&spec.space, 1, &limits).await;
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
    let log = r.log_slot().lock().unwrap().clone().unwrap();
    assert!(log.stdout.contains("CHERRYPICK_RESULT"));
    no_token_in(&o, &r);

    // A second probe reuses the staged files and the token.
    let o2 = r.run(&spec.space, 0, &limits).await;
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
    let o = r.run(&spec.space, 0, &ProbeLimits::default()).await;
    let Outcome::Failed { reason, .. } = &o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("ERROR") && reason.contains("no images found"),
        "{reason}"
    );
    assert_eq!(h.calls().last().unwrap(), "delete");
    assert_eq!(h.deletes(), 1);
    no_token_in(&o, &r);
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
    let o = r.run(&spec.space, 0, &limits).await;
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
    let o = r.run(&spec.space, 0, &limits).await;
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
    let o = r.run(&spec.space, 0, &ProbeLimits::default()).await;
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
    let outcome = r.run(&h.spec().space, 1, &limits).await;
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
        .unwrap();
    assert!(err.contains("search id"), "{err}");
    let mut o = h.options();
    o.input = Some("/local/flowers".into());
    let err = DataprocRunner::new(h.spec(), o, h.credentials())
        .err()
        .unwrap();
    assert!(err.contains("gs://"), "{err}");
    let text = "[catalogue]\nmachine_types = [\"n2-standard-4\"]\ncount = \"workers\"\n[catalogue.dimensions]\nworkers = [1]\n[workload]\ndataset = \"gs://d/f\"\ntasks = [\"preprocess\"]\n";
    let spec = parse(
        text,
        Path::new("s.toml"),
        &LoadOptions {
            backend: BackendKind::Dataproc,
            prices: None,
        },
    )
    .unwrap();
    let err = DataprocRunner::new(Arc::new(spec), h.options(), h.credentials())
        .err()
        .unwrap();
    assert!(err.contains("workers >= 2"), "{err}");
    assert!(h.requests().is_empty());
}
