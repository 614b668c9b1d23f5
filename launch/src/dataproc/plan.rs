//! One probe's requests, worked out before anything is sent: the cluster to create (with
//! scheduled deletion), the job to submit, and what `--dry-run` prints of them with the price.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use optimizer::{ConfigId, ProbeLimits};
use serde_json::{json, Value as Json};

use super::api::PlannedRequest;
use super::price::{whole_workers, ClusterPrice, PriceError};
use super::runner::DataprocRunner;
use super::staging::upload_url;
use super::{unix_secs, SEARCH_LABEL};
use crate::pyspark::{JobParams, JobParamsError, ShapeError, SparkShape};

/// Dataproc refuses scheduled-deletion times below ten minutes.
const MIN_TTL_S: u64 = 600;
/// Time allowed for a job when the probe has no time limit (bounds the cluster's lifetime).
pub(super) const DEFAULT_JOB_LIMIT_S: u64 = 3600;
/// Billing time allowed for a cluster's deletion in worst-case costs.
pub(super) const DELETE_ALLOWANCE: Duration = Duration::from_secs(5 * 60);

/// Why a probe of a configuration cannot be planned: its cluster, its Spark shape or its job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Price(#[from] PriceError),
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error(transparent)]
    Job(#[from] JobParamsError),
}

/// What one probe needs, worked out before anything is sent.
pub(super) struct ProbePlan {
    pub(super) cluster: String,
    pub(super) job_id: String,
    pub(super) price: ClusterPrice,
    pub(super) output: String,
    pub(super) create: Json,
    pub(super) submit: Json,
    pub(super) job_limit: Duration,
    /// The cluster's scheduled deletion after its creation (`autoDeleteTtl`): how long it is
    /// billed at most when this process cannot delete it.
    pub(super) auto_delete: Duration,
}

impl DataprocRunner {
    /// Cluster price of configuration `id` (master and workers, premium and disks included).
    pub fn cluster_price(&self, id: ConfigId) -> Result<ClusterPrice, PriceError> {
        let info = &self.spec.configs[id];
        let o = self.options();
        ClusterPrice::of(
            &self.spec.prices,
            &crate::prices::MachinePrice {
                vcpus: info.vcpus,
                memory_gib: info.memory_gib,
                price_per_hour: info.machine_price_per_hour,
                source: String::new(),
                date: String::new(),
            },
            whole_workers(info.count)?,
            &o.boot_disk_type,
            o.boot_disk_gb,
        )
    }

    pub(super) fn plan(
        &self,
        id: ConfigId,
        n: usize,
        limits: &ProbeLimits,
    ) -> Result<ProbePlan, PlanError> {
        let o = self.options();
        let info = &self.spec.configs[id];
        let workers = whole_workers(info.count)?;
        let price = self.cluster_price(id)?;
        let shape = SparkShape::of(
            info,
            default_executor_memory_mib(info.memory_gib, info.vcpus),
        )?;
        let params = JobParams::of(&self.spec, id, self.input.clone())?;
        let cluster = cluster_name(&o.search_id, n, (unix_secs() ^ n as u64) & 0xffff);
        let job_id = format!("{cluster}-job");
        let job_limit = limits
            .timeout
            .unwrap_or(Duration::from_secs(DEFAULT_JOB_LIMIT_S));
        // Scheduled deletion, in case this process is killed outright: the cluster goes once idle
        // for the job's limit, and in any case after creation plus the job's limit plus margin.
        let idle = job_limit.as_secs().clamp(MIN_TTL_S, 4 * 3600);
        let auto = (o.create_timeout + job_limit).as_secs() + MIN_TTL_S;
        let disk = json!({"bootDiskType": o.boot_disk_type, "bootDiskSizeGb": o.boot_disk_gb});
        let mut gce = json!({});
        if let Some(z) = &o.zone {
            gce["zoneUri"] = json!(z);
        }
        let create = json!({
            "projectId": o.project,
            "clusterName": cluster,
            "labels": {SEARCH_LABEL: o.search_id},
            "config": {
                "configBucket": o.bucket,
                "gceClusterConfig": gce,
                "masterConfig": {"numInstances": 1, "machineTypeUri": info.machine_type, "diskConfig": disk},
                "workerConfig": {"numInstances": workers, "machineTypeUri": info.machine_type, "diskConfig": disk},
                "softwareConfig": {"imageVersion": o.image_version},
                "lifecycleConfig": {"idleDeleteTtl": format!("{idle}s"), "autoDeleteTtl": format!("{auto}s")},
            },
        });
        let (binary_obj, job_obj) = self.staged_names.clone();
        let prefix = o.prefix.trim_matches('/');
        let output = format!("gs://{}/{prefix}/runs/{}/{cluster}", o.bucket, o.search_id);
        let mut props: BTreeMap<&str, String> = BTreeMap::new();
        props.insert("spark.executor.instances", shape.executors.to_string());
        props.insert("spark.executor.cores", shape.executor_cores.to_string());
        props.insert(
            "spark.executor.memory",
            format!("{}m", shape.executor_memory_mib),
        );
        props.insert("spark.default.parallelism", shape.partitions.to_string());
        props.insert("spark.dynamicAllocation.enabled", "false".into());
        props.insert("spark.task.maxFailures", "1".into());
        let submit = json!({
            "requestId": job_id,
            "job": {
                "placement": {"clusterName": cluster},
                "reference": {"projectId": o.project, "jobId": job_id},
                "labels": {SEARCH_LABEL: o.search_id},
                "pysparkJob": {
                    "mainPythonFileUri": format!("gs://{}/{job_obj}", o.bucket),
                    "fileUris": [format!("gs://{}/{binary_obj}", o.bucket)],
                    "args": params.args("cherrypick", &output, shape.partitions),
                    "properties": props,
                },
            },
        });
        Ok(ProbePlan {
            cluster,
            job_id,
            price,
            output,
            create,
            submit,
            job_limit,
            auto_delete: Duration::from_secs(auto),
        })
    }

    /// The requests a probe of `id` sends, in order (what `--dry-run` prints).
    pub fn requests(
        &self,
        id: ConfigId,
        limits: &ProbeLimits,
    ) -> Result<Vec<PlannedRequest>, PlanError> {
        let plan = self.plan(id, self.probes.load(Ordering::SeqCst), limits)?;
        let api = &self.api;
        let (storage, bucket) = (&self.options().storage_base, &self.options().bucket);
        let (binary_obj, job_obj) = self.staged_names.clone();
        let cluster_url = api.regional(&format!("clusters/{}", plan.cluster));
        let job_url = api.regional(&format!("jobs/{}", plan.job_id));
        let req = |m: &str, url: String, body: Option<Json>| PlannedRequest {
            method: m.into(),
            url,
            body,
            upload: None,
        };
        Ok(vec![
            PlannedRequest {
                upload: Some(self.options().binary.display().to_string()),
                ..req("POST", upload_url(storage, bucket, &binary_obj), None)
            },
            PlannedRequest {
                upload: Some("the embedded PySpark driver (workload/spark/job.py)".into()),
                ..req("POST", upload_url(storage, bucket, &job_obj), None)
            },
            req("POST", format!("{}?requestId={}", api.regional("clusters"), plan.cluster), Some(plan.create)),
            req("GET", format!("{cluster_url}   (repeated until status.state is RUNNING)"), None),
            req("POST", api.regional("jobs:submit"), Some(plan.submit)),
            req("GET", format!("{job_url}   (repeated until status.state is DONE, ERROR or CANCELLED)"), None),
            req("GET", format!("{}/storage/v1/b/<bucket>/o?prefix=<driverOutputResourceUri>   (then each object with alt=media)", self.options().storage_base.trim_end_matches('/')), None),
            req("DELETE", cluster_url, None),
        ])
    }

    /// The longest a probe can keep its cluster billed: creation (up to the creation limit), the
    /// job (up to the probe's time limit) and deletion. None without a time limit.
    pub fn billed_hours_at_most(&self, limits: &ProbeLimits) -> Option<f64> {
        limits
            .timeout
            .map(|t| (t + self.options().create_timeout + DELETE_ALLOWANCE).as_secs_f64() / 3600.0)
    }

    /// What `--dry-run` prints for configuration `id`: each request and the price estimate.
    pub fn dry_run_report(&self, id: ConfigId, limits: &ProbeLimits) -> Result<String, PlanError> {
        let price = self.cluster_price(id)?;
        let mut s = format!("# configuration {}\n", self.spec.space.config(id).name);
        for r in self.requests(id, limits)? {
            s.push_str(&r.to_string());
            s.push('\n');
        }
        let limit_h = self.billed_hours_at_most(limits);
        s.push_str(&format!(
            "# price: {:.4} USD/hour = compute {:.4} ({} nodes) + Dataproc premium {:.4} ({} vCPUs x {}) + disks {:.4} ({} x {} GB {})\n",
            price.per_hour(),
            price.compute_per_hour,
            price.nodes,
            price.premium_per_hour,
            price.vcpus,
            self.spec.prices.dataproc_premium_per_vcpu_hour,
            price.disks_per_hour,
            price.nodes,
            self.options().boot_disk_gb,
            self.options().boot_disk_type,
        ));
        if let Some(h) = limit_h {
            s.push_str(&format!(
                "# worst case for this probe (cluster creation limit + time limit + deletion): {:.4} USD\n",
                price.per_hour() * h
            ));
        }
        s.push_str("# dry run: nothing was sent\n");
        Ok(s)
    }
}

/// The longest cluster name Dataproc takes.
const MAX_CLUSTER_NAME: usize = 51;

/// `cp-<search id>-<probe number>-<salt>`. Names are lowercase letters, digits and `-`, start
/// with a letter and end with a letter or digit, at most [`MAX_CLUSTER_NAME`] characters: a long
/// search id is cut, never the probe number or the salt that keep names apart.
fn cluster_name(search_id: &str, n: usize, salt: u64) -> String {
    let suffix = format!("-{n}-{salt:04x}");
    let prefix = format!("cp-{search_id}");
    let room = MAX_CLUSTER_NAME.saturating_sub(suffix.len());
    let prefix: String = prefix.chars().take(room).collect();
    format!("{}{suffix}", prefix.trim_end_matches('-'))
}

pub(super) fn default_executor_memory_mib(machine_gib: f64, vcpus: u32) -> u32 {
    // YARN keeps a share of each node; give an executor about 60% of a core's memory.
    ((machine_gib * 1024.0 / f64::from(vcpus.max(1))) * 0.6).max(512.0) as u32
}
