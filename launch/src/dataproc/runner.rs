//! The dataproc runner: per probe, a cluster is created, polled until running, given the job,
//! polled until the job ends, and deleted on every path (a normal end, a job failure, a timeout,
//! an interrupt, an error, a panic, a dropped probe future).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use optimizer::{ConfigId, Outcome, ProbeLimits, ProbeLog, Report, Runner, Space, SPEND_METRIC};
use reqwest::{Method, Url};
use serde_json::{json, Value as Json};

use super::api::{Api, ApiError};
use super::auth::{short, Credentials, Tokens};
use super::plan::{PlanError, ProbePlan};
use super::price::whole_workers;
use super::staging::{split_gs, staged_names, Staging, StagingError};
use super::{DataprocOptions, SEARCH_LABEL};
use crate::error::Error;
use crate::limits::{failed, over_limit};
use crate::pyspark::{error_line, parse_driver_output, JobParams, SparkShape};
use crate::spacefile::{Objective, SearchSpec};

/// Runs probes on Dataproc clusters made for them.
pub struct DataprocRunner {
    pub(super) spec: Arc<SearchSpec>,
    pub(super) api: Arc<Api>,
    /// The staging bucket (and driver outputs) through the workload's Cloud Storage client.
    pub(super) staging: Staging,
    pub(super) input: String,
    pub(super) staged: tokio::sync::OnceCell<(String, String)>,
    /// Object names of the staged binary and driver.
    pub(super) staged_names: (String, String),
    pub(super) probes: AtomicUsize,
    /// Clusters a probe could not delete (still billed until their scheduled deletion): once
    /// there is one, no further cluster is created.
    pub(super) undeleted: std::sync::Mutex<Vec<String>>,
}

impl DataprocRunner {
    pub fn new(
        spec: Arc<SearchSpec>,
        options: DataprocOptions,
        credentials: Credentials,
    ) -> Result<DataprocRunner, Error> {
        let setup = Error::Setup;
        for (name, v) in [
            ("project", &options.project),
            ("region", &options.region),
            ("bucket", &options.bucket),
        ] {
            if v.is_empty() {
                return Err(setup(format!("the dataproc backend needs a {name}")));
            }
        }
        for base in [&options.api_base, &options.storage_base] {
            Url::parse(base).map_err(|e| setup(format!("API base URL `{base}`: {e}")))?;
        }
        if !options
            .search_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || options.search_id.is_empty()
            || options.search_id.len() > 63
        {
            return Err(setup(format!(
                "search id `{}`: use 1-63 lowercase letters, digits or `-` (it is a label value)",
                options.search_id
            )));
        }
        if spec.backend_kind != crate::BackendKind::Dataproc {
            return Err(setup(format!(
                "{}: loaded for the {} backend, whose prices differ from a Dataproc cluster's",
                spec.path.display(),
                spec.backend_kind.name()
            )));
        }
        let workload = spec.workload.as_ref().ok_or_else(|| {
            setup(format!(
                "{}: the dataproc backend needs a [workload] section",
                spec.path.display()
            ))
        })?;
        let input = match &options.input {
            Some(i) => i.clone(),
            None => workload.dataset.display().to_string(),
        };
        if split_gs(&input).is_none() {
            return Err(setup(format!(
                "the dataproc backend reads the dataset from Cloud Storage: `{input}` is not gs://bucket/prefix \
                 (set [workload] dataset or the dataproc input option)"
            )));
        }
        if !options.dry_run && !options.binary.is_file() {
            return Err(setup(format!(
                "the binary to stage, {}, does not exist",
                options.binary.display()
            )));
        }
        for (i, info) in spec.configs.iter().enumerate() {
            let name = &spec.space.config(i).name;
            let check = || -> Result<(), PlanError> {
                whole_workers(info.count)?;
                SparkShape::of(info, 1024)?;
                JobParams::of(&spec, i, input.clone())?;
                Ok(())
            };
            check().map_err(|e| setup(format!("configuration `{name}`: {e}")))?;
        }
        let staged_names = staged_names(&options);
        // One token source for both clients: one token, fetched once.
        let tokens = Tokens::new(credentials);
        let staging = Staging::open(&options, tokens.clone()).map_err(|e| setup(e.to_string()))?;
        let api = Api::new(options, tokens).map_err(|e| setup(e.to_string()))?;
        let runner = DataprocRunner {
            spec,
            api: Arc::new(api),
            staging,
            input,
            staged: tokio::sync::OnceCell::new(),
            staged_names,
            probes: AtomicUsize::new(0),
            undeleted: std::sync::Mutex::new(Vec::new()),
        };
        // One price per configuration: the one the space file gave the strategy must be the
        // cluster's, disks as configured here included.
        for (i, info) in runner.spec.configs.iter().enumerate() {
            let cluster = runner.cluster_price(i)?.per_hour();
            if (cluster - info.price_per_hour).abs() > 1e-9 * cluster.max(1.0) {
                return Err(setup(format!(
                    "configuration `{}`: the space file prices it at {:.6} USD/hour but the cluster \
                     (with {} GB {} disks) costs {cluster:.6}",
                    runner.spec.space.config(i).name,
                    info.price_per_hour,
                    runner.options().boot_disk_gb,
                    runner.options().boot_disk_type
                )));
            }
        }
        Ok(runner)
    }

    pub(super) fn options(&self) -> &DataprocOptions {
        &self.api.options
    }

    /// Deletes clusters left by an earlier run of this search (found by their label), for
    /// example after the process was killed. Returns the names it deleted.
    pub async fn delete_leftovers(&self) -> Result<Vec<String>, Error> {
        if self.options().dry_run {
            return Ok(Vec::new());
        }
        let mut url = Url::parse(&self.api.regional("clusters"))
            .map_err(|e| Error::Service(format!("listing leftover clusters: {e}")))?;
        url.query_pairs_mut().append_pair(
            "filter",
            &format!("labels.{SEARCH_LABEL} = {}", self.options().search_id),
        );
        let v = self
            .api
            .call(Method::GET, url.as_str(), None)
            .await
            .map_err(|e| Error::Service(format!("listing leftover clusters: {e}")))?;
        let mut deleted = Vec::new();
        for c in v
            .get("clusters")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let Some(name) = c.get("clusterName").and_then(Json::as_str) else {
                continue;
            };
            let state = c
                .pointer("/status/state")
                .and_then(Json::as_str)
                .unwrap_or("");
            // The server filtered by label; check again, so a cluster of another search is
            // never deleted whatever the listing returned.
            let ours = c
                .pointer(&format!("/labels/{SEARCH_LABEL}"))
                .and_then(Json::as_str)
                == Some(self.options().search_id.as_str());
            if state == "DELETING" || !ours {
                continue;
            }
            delete_cluster(&self.api, name).await?;
            deleted.push(name.to_string());
        }
        Ok(deleted)
    }

    /// Creates the cluster and runs the job on it; the caller deletes the cluster.
    async fn probe(
        &self,
        plan: &ProbePlan,
        limits: &ProbeLimits,
        created: &AtomicBool,
        started: Instant,
        log: &mut ProbeLog,
    ) -> Result<Finished, ProbeError> {
        let api = &self.api;
        let o = self.options();
        self.stage().await?;
        let create_url = format!("{}?requestId={}", api.regional("clusters"), plan.cluster);
        // Marked before the request: if the answer is lost, the cluster may still exist.
        created.store(true, Ordering::SeqCst);
        api.call(Method::POST, &create_url, Some(&plan.create))
            .await?;
        let cluster_url = api.regional(&format!("clusters/{}", plan.cluster));
        let create_deadline = Instant::now() + o.create_timeout;
        loop {
            if let Some(f) = stopped(limits) {
                return Ok(f);
            }
            let c = api.call(Method::GET, &cluster_url, None).await?;
            match c
                .pointer("/status/state")
                .and_then(Json::as_str)
                .unwrap_or("")
            {
                "RUNNING" => break,
                "ERROR" | "ERROR_DUE_TO_UPDATE" | "DELETING" | "STOPPED" => {
                    let detail = c
                        .pointer("/status/detail")
                        .and_then(Json::as_str)
                        .filter(|d| !d.trim().is_empty())
                        .unwrap_or(
                            "Dataproc gave no reason (the cluster's page in the Cloud console \
                             has its logs)",
                        );
                    return Ok(Finished::Failed(format!(
                        "cluster {} could not start: {detail}",
                        plan.cluster
                    )));
                }
                _ => {}
            }
            if Instant::now() >= create_deadline {
                return Ok(Finished::Failed(format!(
                    "cluster {} was not running after {} s",
                    plan.cluster,
                    o.create_timeout.as_secs()
                )));
            }
            tokio::time::sleep(o.poll_interval).await;
        }
        let cluster_ready_s = started.elapsed().as_secs_f64();
        api.call(
            Method::POST,
            &api.regional("jobs:submit"),
            Some(&plan.submit),
        )
        .await?;
        let job_url = api.regional(&format!("jobs/{}", plan.job_id));
        let job_started = Instant::now();
        let job = loop {
            if let Some(f) = stopped(limits) {
                cancel_job(api, &plan.job_id).await;
                return Ok(f);
            }
            if job_started.elapsed() >= plan.job_limit {
                cancel_job(api, &plan.job_id).await;
                return Ok(Finished::TimedOut);
            }
            let j = api.call(Method::GET, &job_url, None).await?;
            match j
                .pointer("/status/state")
                .and_then(Json::as_str)
                .unwrap_or("")
            {
                "DONE" | "ERROR" | "CANCELLED" => break j,
                _ => {}
            }
            tokio::time::sleep(
                o.poll_interval
                    .min(plan.job_limit.saturating_sub(job_started.elapsed())),
            )
            .await;
        };
        let state = job
            .pointer("/status/state")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let output = match job.get("driverOutputResourceUri").and_then(Json::as_str) {
            Some(uri) => self
                .staging
                .read_prefix(uri)
                .await
                .unwrap_or_else(|e| format!("(driver output unreadable: {e})")),
            None => String::new(),
        };
        let keep = o.log_bytes;
        let cut = {
            let mut i = output.len().saturating_sub(keep);
            while !output.is_char_boundary(i) {
                i += 1;
            }
            i
        };
        log.stdout = output[cut..].to_string();
        log.stdout_bytes = output.len() as u64;
        if state != "DONE" {
            let detail = job
                .pointer("/status/details")
                .and_then(Json::as_str)
                .unwrap_or("");
            let err = error_line(&output, 300);
            return Ok(Finished::Failed(format!(
                "job {} ended {state}: {}{}",
                plan.job_id,
                short(detail, 200),
                if err.is_empty() {
                    String::new()
                } else {
                    format!(" ({err})")
                }
            )));
        }
        match parse_driver_output(&output) {
            Ok(r) => {
                let mut metrics = r.metrics;
                metrics.insert("cluster_ready_s".into(), cluster_ready_s);
                metrics.insert("job_wall_s".into(), job_started.elapsed().as_secs_f64());
                Ok(Finished::Completed {
                    runtime_s: r.runtime_s,
                    metrics,
                })
            }
            Err(why) => Ok(Finished::Failed(format!(
                "job {} {why} in its driver output",
                plan.job_id
            ))),
        }
    }
}

/// Why a probe stopped short: a Dataproc request or Cloud Storage.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Staging(#[from] StagingError),
}

enum Finished {
    Completed {
        runtime_s: f64,
        metrics: BTreeMap<String, f64>,
    },
    Failed(String),
    TimedOut,
    Interrupted,
}

fn stopped(limits: &ProbeLimits) -> Option<Finished> {
    limits
        .interrupt
        .as_ref()
        .filter(|f| f.load(Ordering::SeqCst))
        .map(|_| Finished::Interrupted)
}

async fn cancel_job(api: &Api, job_id: &str) {
    // Best effort: deleting the cluster ends the job anyway.
    let _ = api
        .call(
            Method::POST,
            &api.regional(&format!("jobs/{job_id}:cancel")),
            Some(&json!({})),
        )
        .await;
}

/// A cluster that could not be deleted, and so is still billed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// The delete request failed (the message says how to delete the cluster by hand).
    #[error(
        "DELETING CLUSTER {cluster} FAILED ({error}); it is still billed until its scheduled deletion: \
         delete it with `gcloud dataproc clusters delete {cluster} --region {region}`"
    )]
    Request {
        cluster: String,
        region: String,
        error: ApiError,
    },
    /// No runtime could be started to send the request.
    #[error("cannot delete cluster {cluster}: no runtime: {error}")]
    NoRuntime {
        cluster: String,
        error: std::io::Error,
    },
}

async fn delete_cluster(api: &Api, name: &str) -> Result<(), DeleteError> {
    let url = api.regional(&format!("clusters/{name}"));
    match api.call(Method::DELETE, &url, None).await {
        Ok(_) => Ok(()),
        Err(ApiError {
            status: Some(404), ..
        }) => Ok(()),
        Err(error) => Err(DeleteError::Request {
            cluster: name.to_string(),
            region: api.options.region.clone(),
            error,
        }),
    }
}

/// Deletes the cluster if the probe future is dropped or unwinds before the normal path did.
struct DeleteGuard {
    api: Arc<Api>,
    cluster: String,
    armed: Arc<AtomicBool>,
}

impl Drop for DeleteGuard {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let (api, name) = (self.api.clone(), self.cluster.clone());
        // Drop cannot await: delete on a thread with its own runtime and wait for it, so the
        // process does not exit before the request is sent.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt.block_on(delete_cluster(&api, &name)),
                Err(error) => Err(DeleteError::NoRuntime {
                    cluster: name,
                    error,
                }),
            }
        })
        .join();
        match done {
            Ok(Ok(())) => crate::note!(
                "dataproc: deleted cluster {} after an aborted probe",
                self.cluster
            ),
            Ok(Err(e)) => crate::note!("dataproc: {e}"),
            Err(_) => crate::note!("dataproc: deleting cluster {} panicked", self.cluster),
        }
    }
}

impl Runner for DataprocRunner {
    fn halted(&self) -> Option<String> {
        let list = self.undeleted.lock().ok()?;
        let region = &self.options().region;
        let (named, verb, whose) = match list.as_slice() {
            [] => return None,
            [one] => (format!("cluster {one}"), "is", "its"),
            many => (format!("clusters {}", many.join(", ")), "are", "their"),
        };
        let commands: Vec<String> = list
            .iter()
            .map(|c| format!("`gcloud dataproc clusters delete {c} --region {region}`"))
            .collect();
        Some(format!(
            "{named} could not be deleted and {verb} billed until {whose} scheduled deletion \
             (counted in the spend); no further cluster is created. Delete with {}, or resume \
             the search, which deletes the clusters its earlier runs left",
            commands.join(", ")
        ))
    }

    /// The full cluster price (master, premium, disks) for as long as a probe can keep it.
    fn worst_case_usd(&self, _space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        match (
            self.cluster_price(config),
            self.billed_hours_at_most(limits),
        ) {
            (Ok(price), Some(hours)) => price.per_hour() * hours,
            _ => f64::INFINITY,
        }
    }

    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Report {
        let n = self.probes.fetch_add(1, Ordering::SeqCst);
        let plan = match self.plan(config, n, limits) {
            Ok(p) => p,
            Err(e) => return Report::new(failed(e.to_string(), 0.0, 0.0)),
        };
        if self.options().dry_run {
            return Report::new(match self.dry_run_report(config, limits) {
                Ok(r) => {
                    crate::say_part!("{r}");
                    failed("dry run: nothing was sent".into(), 0.0, 0.0)
                }
                Err(e) => failed(e.to_string(), 0.0, 0.0),
            });
        }
        // The cluster's price (master, premium and disks included) is the space's price with a
        // cost objective (checked when the runner was made); a runtime objective gives every
        // configuration the catalogue's highest price instead.
        let full_price = plan.price.per_hour();
        let price = space.config(config).price_per_hour;
        let created = AtomicBool::new(false);
        let armed = Arc::new(AtomicBool::new(true));
        let _guard = DeleteGuard {
            api: self.api.clone(),
            cluster: plan.cluster.clone(),
            armed: armed.clone(),
        };
        let started = Instant::now();
        let mut log = ProbeLog {
            command: Some(format!(
                "dataproc cluster {} ({} x {} workers) job {} output {}",
                plan.cluster,
                self.spec.configs[config].count,
                self.spec.configs[config].machine_type,
                plan.job_id,
                plan.output
            )),
            ..ProbeLog::default()
        };
        let result = self.probe(&plan, limits, &created, started, &mut log).await;
        let deletion = if created.load(Ordering::SeqCst) {
            delete_cluster(&self.api, &plan.cluster).await
        } else {
            Ok(())
        };
        armed.store(false, Ordering::SeqCst);
        let elapsed = started.elapsed().as_secs_f64();
        if let Err(e) = &deletion {
            crate::note!("dataproc: {e}");
            log.stderr = e.to_string();
            log.stderr_bytes = log.stderr.len() as u64;
        }
        let with_deletion = |reason: String| match &deletion {
            Ok(()) => reason,
            Err(e) => format!("{reason}; {e}"),
        };
        // A cluster left standing is billed until its scheduled deletion, counted from about
        // when this probe started (creation is its first request).
        let billed = if deletion.is_err() {
            if let Ok(mut list) = self.undeleted.lock() {
                list.push(plan.cluster.clone());
            }
            full_price * elapsed.max(plan.auto_delete.as_secs_f64()) / 3600.0
        } else {
            full_price * elapsed / 3600.0
        };
        // A runtime the job reports past the probe's time limit did not meet it: timed out, as
        // a job the limit stopped (the cluster is billed all the same).
        let result = match result {
            Ok(Finished::Completed { runtime_s, .. }) if over_limit(runtime_s, limits) => {
                Ok(Finished::TimedOut)
            }
            other => other,
        };
        let outcome = match result {
            Err(e) => failed(with_deletion(e.to_string()), elapsed, price),
            Ok(Finished::Failed(reason)) => failed(with_deletion(reason), elapsed, price),
            Ok(Finished::Interrupted) => failed(
                with_deletion("interrupted by the user".into()),
                elapsed,
                price,
            ),
            Ok(Finished::TimedOut) => Outcome::TimedOut {
                elapsed_s: elapsed,
                cost_usd: price * elapsed / 3600.0,
            },
            Ok(Finished::Completed {
                runtime_s,
                mut metrics,
            }) => {
                if deletion.is_err() {
                    // The run is valid, but the user must hear about the cluster: it is in stderr
                    // above and in the journal's log.
                    metrics.insert("cluster_delete_failed".into(), 1.0);
                }
                metrics.insert("cluster_price_per_hour".into(), full_price);
                metrics.insert("probe_wall_s".into(), elapsed);
                // Billed from creation to deletion: what spend limits count.
                metrics.insert(SPEND_METRIC.into(), billed);
                if self.spec.objective == Objective::Runtime {
                    metrics.insert("true_cost_usd".into(), full_price * runtime_s / 3600.0);
                }
                Outcome::Completed {
                    runtime_s,
                    cost_usd: price * runtime_s / 3600.0,
                    metrics,
                }
            }
        };
        Report {
            // A cluster is billed from creation to deletion, whatever became of the job.
            billed_usd: billed.max(outcome.spend_usd()),
            ..Report::new(outcome).with_log(log)
        }
    }
}
