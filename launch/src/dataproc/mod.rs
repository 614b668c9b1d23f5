//! The `dataproc` backend: per probe, creates a Google Dataproc cluster with the configuration's
//! machine type and worker count (with scheduled deletion as a safety net), stages our binary and
//! the PySpark driver on Cloud Storage, submits the job, polls it, reads the driver's output, and
//! deletes the cluster on every path (success, job failure, timeout, interrupt, an error or a
//! panic in our own code, and a dropped probe future). Talks to the Dataproc v1 REST API through
//! its own client, and to Cloud Storage through the workload's (`gcloud-storage`) client,
//! signed in with the same tokens; the base URLs are options so tests point them at a local
//! fake.
//!
//! Authentication uses application default credentials ([`Credentials`]); tokens never appear in
//! messages, logs or outcomes. `dry_run` prints every request with the price estimate and sends
//! nothing.
//!
//! - [`auth`]: application default credentials and access tokens
//! - [`api`]: the Dataproc REST client (retries, errors without credentials)
//! - [`staging`]: the binary and driver on Cloud Storage, and reading the driver's output,
//!   through the workload's Cloud Storage client
//! - [`price`]: what a cluster costs per hour (the space file prices configurations with it)
//! - [`plan`]: the requests of one probe, worked out before anything is sent (`--dry-run`)
//! - [`runner`]: the probe itself, and deleting clusters on every path

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod api;
pub mod auth;
pub mod plan;
pub mod price;
pub mod runner;
pub mod staging;

pub use api::{ApiError, PlannedRequest};
pub use auth::{storage_sign_in, Credentials, CredentialsError};
pub use price::{ClusterPrice, DISK_PRICES_PER_GB_MONTH, DISK_PRICE_SOURCE};
pub use runner::DataprocRunner;
pub use staging::StagingError;

/// Label that marks clusters of one search, so leftovers can be found and deleted.
pub const SEARCH_LABEL: &str = "cherrypick-search";

/// Where and how clusters are made.
#[derive(Debug, Clone)]
pub struct DataprocOptions {
    pub project: String,
    pub region: String,
    /// Zone for the cluster's VMs; empty lets Dataproc choose (Auto Zone).
    pub zone: Option<String>,
    /// Bucket (name, without gs://) for the staged binary, driver and probe outputs.
    pub bucket: String,
    /// Object prefix inside the bucket.
    pub prefix: String,
    /// Dataset as `gs://bucket/prefix` (else the space file's `[workload] dataset`, if gs://).
    pub input: Option<String>,
    /// The cherrypick binary to stage (a Linux x86-64 build; the VMs run Debian).
    pub binary: PathBuf,
    pub image_version: String,
    pub boot_disk_type: String,
    pub boot_disk_gb: u32,
    /// Dataproc API root, `https://dataproc.googleapis.com` (a fake in tests).
    pub api_base: String,
    /// Cloud Storage JSON API root, `https://storage.googleapis.com` (where staging and the
    /// driver output's reading send their requests).
    pub storage_base: String,
    pub poll_interval: Duration,
    /// How long a cluster may take to reach RUNNING.
    pub create_timeout: Duration,
    /// Value of the [`SEARCH_LABEL`] label on every cluster of this search.
    pub search_id: String,
    /// Print the requests instead of sending them.
    pub dry_run: bool,
    /// Bytes of driver output kept in the journal per probe (the tail).
    pub log_bytes: usize,
}

impl DataprocOptions {
    /// Defaults for everything but the project, region and bucket.
    pub fn new(project: &str, region: &str, bucket: &str) -> DataprocOptions {
        DataprocOptions {
            project: project.to_string(),
            region: region.to_string(),
            zone: None,
            bucket: bucket
                .trim_start_matches("gs://")
                .trim_end_matches('/')
                .to_string(),
            prefix: "cherrypick".to_string(),
            input: None,
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cherrypick")),
            image_version: "2.2-debian12".to_string(),
            boot_disk_type: price::DEFAULT_BOOT_DISK_TYPE.to_string(),
            boot_disk_gb: price::DEFAULT_BOOT_DISK_GB,
            api_base: "https://dataproc.googleapis.com".to_string(),
            storage_base: "https://storage.googleapis.com".to_string(),
            poll_interval: Duration::from_secs(5),
            create_timeout: Duration::from_secs(15 * 60),
            search_id: new_search_id(),
            dry_run: false,
            log_bytes: 8192,
        }
    }
}

/// A project, region, zone or bucket name that cannot go into a request URL, naming the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "--project `{project}`: a project id is 6 to 30 lowercase letters, digits and hyphens, \
         starting with a letter"
    )]
    Project { project: String },
    /// A region (`flag` is `region`) or zone (`zone`).
    #[error(
        "--{flag} `{value}`: expected lowercase letters, digits and hyphens (for example \
         europe-west1{})",
        zone_suffix(.flag)
    )]
    Location { flag: &'static str, value: String },
    #[error(
        "--bucket `gs://{bucket}`: a bucket name is 3 to 63 lowercase letters, digits, `-`, `_` \
         and `.` (objects go under it, so no `/`)"
    )]
    Bucket { bucket: String },
    /// A zone is a region's name and a letter: one outside `--region` fails every creation.
    #[error(
        "--zone `{zone}` is not in --region `{region}` (its zones are {region}-a, {region}-b, ...)"
    )]
    ZoneOutsideRegion { zone: String, region: String },
}

/// The zone of the example region in [`NameError::Location`]'s message.
fn zone_suffix(flag: &str) -> &'static str {
    if flag == "zone" {
        "-b"
    } else {
        ""
    }
}

impl DataprocOptions {
    /// Checks the names that go into request URLs and paths: a project id (lowercase letters,
    /// digits, `-`; 6 to 30 characters, starting with a letter; a legacy `domain:` prefix
    /// allowed), a region and zone (lowercase letters, digits, `-`), and a bucket name (3 to 63
    /// of lowercase letters, digits, `-`, `_`, `.`). Anything else would be sent as part of a
    /// URL (`../`, `?`, spaces) and is refused naming the option.
    pub fn check_names(&self) -> Result<(), NameError> {
        let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let project = self
            .project
            .rsplit_once(':')
            .map_or(&*self.project, |(_, p)| p);
        let domain_ok = self
            .project
            .rsplit_once(':')
            .is_none_or(|(d, _)| !d.is_empty() && d.chars().all(|c| plain(c) || c == '.'));
        if !(domain_ok
            && (6..=30).contains(&project.len())
            && project.starts_with(|c: char| c.is_ascii_lowercase())
            && !project.ends_with('-')
            && project.chars().all(plain))
        {
            return Err(NameError::Project {
                project: self.project.clone(),
            });
        }
        let location = |flag: &'static str, v: &str| {
            if !v.is_empty()
                && v.len() <= 63
                && v.starts_with(|c: char| c.is_ascii_lowercase())
                && v.chars().all(plain)
            {
                Ok(())
            } else {
                Err(NameError::Location {
                    flag,
                    value: v.to_string(),
                })
            }
        };
        location("region", &self.region)?;
        if let Some(z) = &self.zone {
            location("zone", z)?;
            let in_region = z
                .strip_prefix(self.region.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|letter| !letter.is_empty() && !letter.contains('-'));
            if !in_region {
                return Err(NameError::ZoneOutsideRegion {
                    zone: z.clone(),
                    region: self.region.clone(),
                });
            }
        }
        let b = &self.bucket;
        if !((3..=63).contains(&b.len())
            && b.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && b.chars().all(|c| plain(c) || c == '_' || c == '.'))
        {
            return Err(NameError::Bucket { bucket: b.clone() });
        }
        Ok(())
    }
}

/// A search id no other search has: `s<unix seconds>-<pid>-<random>`, a valid label value
/// (lowercase letters, digits and `-`, at most 63 characters). Seconds alone were shared by two
/// searches started in the same second, and `--resume` of one then deleted the other's clusters.
pub fn new_search_id() -> String {
    format!(
        "s{}-{}-{:08x}",
        unix_secs(),
        std::process::id(),
        random_u32()
    )
}

/// 32 bits no other call returns alike: the standard library's per-process random hash keys,
/// mixed with the time and a counter (the same key is reused within a thread).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let x = h.finish();
    (x ^ (x >> 32)) as u32
}

pub(crate) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_go_into_urls_are_checked() {
        let ok = DataprocOptions::new("my-project-1", "europe-west1", "gs://stage.bucket_1/");
        assert_eq!(ok.check_names(), Ok(()));
        assert!(
            DataprocOptions::new("example.com:my-proj", "us-central1", "gs://b-1")
                .check_names()
                .is_ok()
        );
        for (project, region, bucket, flag) in [
            (
                "../other/projects/x",
                "europe-west1",
                "gs://b-1",
                "--project",
            ),
            ("short", "europe-west1", "gs://b-1", "--project"),
            ("My-Project", "europe-west1", "gs://b-1", "--project"),
            ("my-project-1", "europe-west1?x=1", "gs://b-1", "--region"),
            ("my-project-1", "", "gs://b-1", "--region"),
            (
                "my-project-1",
                "europe-west1",
                "gs://b/with/path",
                "--bucket",
            ),
            ("my-project-1", "europe-west1", "gs://ab", "--bucket"),
        ] {
            let err = DataprocOptions::new(project, region, bucket)
                .check_names()
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(flag), "{project} {region} {bucket}: {err}");
        }
        let mut zone = ok.clone();
        zone.zone = Some("europe-west1-b/../x".into());
        let err = zone.check_names().unwrap_err();
        assert_eq!(
            err,
            NameError::Location {
                flag: "zone",
                value: "europe-west1-b/../x".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "--zone `europe-west1-b/../x`: expected lowercase letters, digits and hyphens \
             (for example europe-west1-b)"
        );
        for (z, fits) in [
            ("europe-west1-b", true),
            ("us-central1-a", false),
            ("europe-west1", false),
            ("europe-west1-", false),
            ("europe-west12-a", false),
            ("europe-west1-b-c", false),
        ] {
            zone.zone = Some(z.into());
            let got = zone.check_names();
            assert_eq!(got.is_ok(), fits, "{z}: {got:?}");
            if !fits {
                assert_eq!(
                    got.unwrap_err().to_string(),
                    format!(
                        "--zone `{z}` is not in --region `europe-west1` (its zones are \
                         europe-west1-a, europe-west1-b, ...)"
                    )
                );
            }
        }
        let err = DataprocOptions::new("my-project-1", "Europe", "gs://b-1")
            .check_names()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--region `Europe`: expected lowercase letters, digits and hyphens \
             (for example europe-west1)"
        );
    }
}
