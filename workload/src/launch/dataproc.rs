//! The `dataproc` backend: per probe, creates a Google Dataproc cluster with the configuration's
//! machine type and worker count (with scheduled deletion as a safety net), stages our binary and
//! the PySpark driver on Cloud Storage, submits the job, polls it, reads the driver's output, and
//! deletes the cluster on every path (success, job failure, timeout, interrupt, an error or a
//! panic in our own code, and a dropped probe future). Talks to the Dataproc v1 and Cloud Storage
//! JSON REST APIs; the base URLs are options so tests point them at a local fake.
//!
//! Authentication uses application default credentials ([`Credentials`]); tokens never appear in
//! messages, logs or outcomes. `dry_run` prints every request with the price estimate and sends
//! nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use optimizer::journal::{ProbeLog, ProbeLogSlot};
use optimizer::{ConfigId, Outcome, ProbeLimits, Runner, Space, SPEND_METRIC};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value as Json};

use super::failed;
use super::prices::PriceTable;
use super::spacefile::{Objective, SearchSpec};
use super::spark::{parse_driver_output, JobParams, SparkShape, JOB_PY};

/// Persistent-disk list prices, USD per GB-month (us-central1), for the price estimate.
pub const DISK_PRICES_PER_GB_MONTH: &[(&str, f64)] = &[
    ("pd-standard", 0.040),
    ("pd-balanced", 0.100),
    ("pd-ssd", 0.170),
];
pub const DISK_PRICE_SOURCE: &str =
    "https://cloud.google.com/compute/disks-image-pricing (us-central1, 2024-06 list prices)";
/// Hours in the month Google's per-GB-month disk prices are prorated over.
const HOURS_PER_MONTH: f64 = 730.0;
/// Dataproc refuses scheduled-deletion times below ten minutes.
const MIN_TTL_S: u64 = 600;
/// Time allowed for a job when the probe has no time limit (bounds the cluster's lifetime).
const DEFAULT_JOB_LIMIT_S: u64 = 3600;
/// Billing time allowed for a cluster's deletion in worst-case costs.
const DELETE_ALLOWANCE: Duration = Duration::from_secs(5 * 60);
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
    /// Cloud Storage JSON API root, `https://storage.googleapis.com`.
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
            boot_disk_type: "pd-standard".to_string(),
            boot_disk_gb: 50,
            api_base: "https://dataproc.googleapis.com".to_string(),
            storage_base: "https://storage.googleapis.com".to_string(),
            poll_interval: Duration::from_secs(5),
            create_timeout: Duration::from_secs(15 * 60),
            search_id: format!("s{}", unix_secs()),
            dry_run: false,
            log_bytes: 8192,
        }
    }
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Application default credentials, in Google's order of lookup.
#[derive(Clone)]
pub enum Credentials {
    /// A service-account key file: a JWT signed with its key is exchanged for a token.
    ServiceAccount {
        email: String,
        private_key_pem: String,
        token_uri: String,
    },
    /// A user's refresh token (`gcloud auth application-default login`).
    AuthorizedUser {
        client_id: String,
        client_secret: String,
        refresh_token: String,
        token_uri: String,
    },
    /// `gcloud auth print-access-token`.
    Gcloud,
    /// The metadata server of a Google Cloud VM.
    Metadata { base: String },
    /// A token given directly (for example by a wrapper that already holds one).
    Token(String),
}

// Never print secrets: Debug names the kind of credential only.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::ServiceAccount { email, .. } => write!(f, "ServiceAccount({email})"),
            Credentials::AuthorizedUser { .. } => f.write_str("AuthorizedUser"),
            Credentials::Gcloud => f.write_str("Gcloud"),
            Credentials::Metadata { base } => write!(f, "Metadata({base})"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

impl Credentials {
    /// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's well-known file, else `gcloud` on the
    /// PATH, else the metadata server.
    pub fn application_default() -> Result<Credentials, String> {
        if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Credentials::from_file(&PathBuf::from(p));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let p = PathBuf::from(home).join(".config/gcloud/application_default_credentials.json");
            if p.is_file() {
                return Credentials::from_file(&p);
            }
        }
        let gcloud = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("gcloud").is_file()));
        if gcloud {
            return Ok(Credentials::Gcloud);
        }
        Ok(Credentials::Metadata {
            base: "http://metadata.google.internal".to_string(),
        })
    }

    /// Reads a credentials JSON file (`service_account` or `authorized_user`).
    pub fn from_file(path: &std::path::Path) -> Result<Credentials, String> {
        let shown = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("credentials file {shown}: {e}"))?;
        let v: Json = serde_json::from_str(&text)
            .map_err(|e| format!("credentials file {shown}: not JSON ({e})"))?;
        let field = |k: &str| -> Result<String, String> {
            v.get(k)
                .and_then(Json::as_str)
                .map(String::from)
                .ok_or_else(|| format!("credentials file {shown}: field `{k}` is missing"))
        };
        let token_uri = |default: &str| {
            v.get("token_uri")
                .and_then(Json::as_str)
                .unwrap_or(default)
                .to_string()
        };
        match v.get("type").and_then(Json::as_str) {
            Some("service_account") => Ok(Credentials::ServiceAccount {
                email: field("client_email")?,
                private_key_pem: field("private_key")?,
                token_uri: token_uri("https://oauth2.googleapis.com/token"),
            }),
            Some("authorized_user") => Ok(Credentials::AuthorizedUser {
                client_id: field("client_id")?,
                client_secret: field("client_secret")?,
                refresh_token: field("refresh_token")?,
                token_uri: token_uri("https://oauth2.googleapis.com/token"),
            }),
            other => Err(format!(
                "credentials file {shown}: field `type` is {other:?}; expected \"service_account\" or \"authorized_user\""
            )),
        }
    }

    /// Fetches an access token and how long it lives.
    async fn fetch(&self, http: &reqwest::Client) -> Result<(String, Duration), String> {
        const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
        let from_response = |v: Json| -> Result<(String, Duration), String> {
            let token = v
                .get("access_token")
                .and_then(Json::as_str)
                .ok_or("the token response has no access_token")?;
            let ttl = v.get("expires_in").and_then(Json::as_u64).unwrap_or(300);
            Ok((token.to_string(), Duration::from_secs(ttl)))
        };
        let post_form = |uri: String, form: Vec<(&'static str, String)>| async move {
            let r = http
                .post(&uri)
                .form(&form)
                .send()
                .await
                .map_err(|e| format!("token request to {uri}: {}", e.without_url()))?;
            let status = r.status();
            if !status.is_success() {
                // The body says why (invalid_grant, ...) and holds no secret; the form is not shown.
                let body = r.text().await.unwrap_or_default();
                return Err(format!(
                    "token request to {uri}: HTTP {status}: {}",
                    short(&body, 300)
                ));
            }
            r.json::<Json>()
                .await
                .map_err(|e| format!("token response from {uri}: {}", e.without_url()))
        };
        match self {
            Credentials::Token(t) => Ok((t.clone(), Duration::from_secs(3000))),
            Credentials::ServiceAccount {
                email,
                private_key_pem,
                token_uri,
            } => {
                let now = unix_secs();
                let claims = json!({
                    "iss": email, "scope": SCOPE, "aud": token_uri,
                    "iat": now, "exp": now + 3600,
                });
                let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
                    .map_err(|e| {
                        format!("service account {email}: private_key is not an RSA PEM key ({e})")
                    })?;
                let jwt = jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                    &claims,
                    &key,
                )
                .map_err(|e| format!("service account {email}: signing the token request: {e}"))?;
                let v = post_form(
                    token_uri.clone(),
                    vec![
                        (
                            "grant_type",
                            "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                        ),
                        ("assertion", jwt),
                    ],
                )
                .await?;
                from_response(v)
            }
            Credentials::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => {
                let v = post_form(
                    token_uri.clone(),
                    vec![
                        ("grant_type", "refresh_token".into()),
                        ("client_id", client_id.clone()),
                        ("client_secret", client_secret.clone()),
                        ("refresh_token", refresh_token.clone()),
                    ],
                )
                .await?;
                from_response(v)
            }
            Credentials::Gcloud => {
                let out = tokio::process::Command::new("gcloud")
                    .args(["auth", "print-access-token"])
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .map_err(|e| format!("running `gcloud auth print-access-token`: {e}"))?;
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr);
                    return Err(format!(
                        "`gcloud auth print-access-token` failed: {}",
                        short(err.trim(), 300)
                    ));
                }
                let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
                Ok((token, Duration::from_secs(1800)))
            }
            Credentials::Metadata { base } => {
                let uri = format!(
                    "{}/computeMetadata/v1/instance/service-accounts/default/token",
                    base.trim_end_matches('/')
                );
                let r = http
                    .get(&uri)
                    .header("Metadata-Flavor", "Google")
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "no application default credentials: set GOOGLE_APPLICATION_CREDENTIALS \
                             to a key file, run `gcloud auth application-default login`, or run on a \
                             Google Cloud VM (metadata server {base}: {})",
                            e.without_url()
                        )
                    })?;
                if !r.status().is_success() {
                    return Err(format!("metadata server token: HTTP {}", r.status()));
                }
                let v = r
                    .json::<Json>()
                    .await
                    .map_err(|e| format!("metadata token: {e}"))?;
                from_response(v)
            }
        }
    }
}

fn short(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

// ---------------------------------------------------------------------------------------------
// REST client

/// An HTTP error from an API, without any credential in it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: Option<u16>,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One request, as sent or as a dry run prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRequest {
    pub method: String,
    pub url: String,
    pub body: Option<Json>,
    /// Bytes uploaded from a local file (the staged binary and driver).
    pub upload: Option<String>,
}

impl std::fmt::Display for PlannedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        if let Some(u) = &self.upload {
            write!(f, "\n  <body: {u}>")?;
        }
        if let Some(b) = &self.body {
            let text = serde_json::to_string_pretty(b).unwrap_or_default();
            for line in text.lines() {
                write!(f, "\n  {line}")?;
            }
        }
        Ok(())
    }
}

struct Api {
    http: reqwest::Client,
    credentials: Credentials,
    token: tokio::sync::Mutex<Option<(String, Instant)>>,
    options: DataprocOptions,
}

impl Api {
    fn new(options: DataprocOptions, credentials: Credentials) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Api {
            http,
            credentials,
            token: tokio::sync::Mutex::new(None),
            options,
        })
    }

    async fn token(&self) -> Result<String, ApiError> {
        let mut slot = self.token.lock().await;
        if let Some((t, until)) = slot.as_ref() {
            if Instant::now() < *until {
                return Ok(t.clone());
            }
        }
        let (t, ttl) = self
            .credentials
            .fetch(&self.http)
            .await
            .map_err(|message| ApiError {
                status: None,
                message,
            })?;
        // Refresh a minute early so a token never expires mid-request.
        let until = Instant::now() + ttl.saturating_sub(Duration::from_secs(60));
        *slot = Some((t.clone(), until));
        Ok(t)
    }

    fn regional(&self, tail: &str) -> String {
        format!(
            "{}/v1/projects/{}/regions/{}/{tail}",
            self.options.api_base.trim_end_matches('/'),
            self.options.project,
            self.options.region
        )
    }

    /// Sends a JSON request with retries on 429/5xx and network errors (every call here is
    /// idempotent: creates and submits carry a request id).
    async fn call(&self, method: Method, url: &str, body: Option<&Json>) -> Result<Json, ApiError> {
        self.send(
            method,
            url,
            body.map(|b| (b.to_string().into_bytes(), "application/json")),
        )
        .await
        .and_then(|bytes| {
            if bytes.is_empty() {
                return Ok(Json::Null);
            }
            serde_json::from_slice(&bytes).map_err(|e| ApiError {
                status: None,
                message: format!("{url}: response is not JSON: {e}"),
            })
        })
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<(Vec<u8>, &'static str)>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut delay = Duration::from_millis(500);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.token().await?;
            let mut req = self.http.request(method.clone(), url).bearer_auth(&token);
            if let Some((bytes, kind)) = &body {
                req = req.header("Content-Type", *kind).body(bytes.clone());
            }
            let transient = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    return r.bytes().await.map(|b| b.to_vec()).map_err(|e| ApiError {
                        status: None,
                        message: format!(
                            "{method} {url}: reading the response: {}",
                            e.without_url()
                        ),
                    });
                }
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    let message = serde_json::from_str::<Json>(&text)
                        .ok()
                        .and_then(|v| {
                            v.pointer("/error/message")
                                .and_then(Json::as_str)
                                .map(String::from)
                        })
                        .unwrap_or_else(|| short(&text, 300).to_string());
                    let err = ApiError {
                        status: Some(status.as_u16()),
                        message: format!("{method} {url}: {message}"),
                    };
                    if status == StatusCode::UNAUTHORIZED {
                        // The token may have been revoked early: fetch a new one next time.
                        *self.token.lock().await = None;
                    }
                    if !(status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::UNAUTHORIZED)
                    {
                        return Err(err);
                    }
                    err
                }
                Err(e) => ApiError {
                    status: None,
                    message: format!("{method} {url}: {}", e.without_url()),
                },
            };
            if attempt >= 4 {
                return Err(transient);
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    fn object_url(&self, bucket: &str, object: &str) -> Result<Url, ApiError> {
        let mut url = Url::parse(&format!(
            "{}/storage/v1/b/{bucket}/o",
            self.options.storage_base.trim_end_matches('/')
        ))
        .map_err(|e| ApiError {
            status: None,
            message: format!("storage URL: {e}"),
        })?;
        url.path_segments_mut()
            .map_err(|_| ApiError {
                status: None,
                message: "storage URL cannot have a path".into(),
            })?
            .push(object);
        Ok(url)
    }

    fn upload_url(&self, object: &str) -> String {
        let mut url = Url::parse(&format!(
            "{}/upload/storage/v1/b/{}/o",
            self.options.storage_base.trim_end_matches('/'),
            self.options.bucket
        ))
        .expect("storage base URL was checked when the runner was made");
        url.query_pairs_mut()
            .append_pair("uploadType", "media")
            .append_pair("name", object);
        url.to_string()
    }

    /// Concatenates the objects under `gs://bucket/prefix*` in name order (the driver output
    /// Dataproc writes as `driveroutput.000000000`, `.000000001`, ...).
    async fn read_prefix(&self, gs_uri: &str) -> Result<String, ApiError> {
        let (bucket, prefix) = split_gs(gs_uri).ok_or_else(|| ApiError {
            status: None,
            message: format!("not a gs:// URI: {gs_uri}"),
        })?;
        let mut list = Url::parse(&format!(
            "{}/storage/v1/b/{bucket}/o",
            self.options.storage_base.trim_end_matches('/')
        ))
        .map_err(|e| ApiError {
            status: None,
            message: e.to_string(),
        })?;
        list.query_pairs_mut().append_pair("prefix", prefix);
        let v = self.call(Method::GET, list.as_str(), None).await?;
        let mut names: Vec<String> = v
            .get("items")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|o| o.get("name").and_then(Json::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let mut url = self.object_url(bucket, &n)?;
            url.query_pairs_mut().append_pair("alt", "media");
            out.extend(self.send(Method::GET, url.as_str(), None).await?);
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

fn split_gs(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("gs://")?;
    let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
    (!b.is_empty()).then_some((b, p))
}

// ---------------------------------------------------------------------------------------------
// Prices

/// What one configuration's cluster costs per hour, by part.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPrice {
    pub nodes: u32,
    pub vcpus: u32,
    pub compute_per_hour: f64,
    pub premium_per_hour: f64,
    pub disks_per_hour: f64,
}

impl ClusterPrice {
    /// A master plus `workers` workers of `machine`, each with a boot disk.
    pub fn of(
        prices: &PriceTable,
        machine: &str,
        workers: u32,
        disk_type: &str,
        disk_gb: u32,
    ) -> Result<ClusterPrice, String> {
        let m = prices
            .get(machine)
            .ok_or_else(|| format!("machine type `{machine}` is not in the price table"))?;
        let disk = DISK_PRICES_PER_GB_MONTH
            .iter()
            .find(|(n, _)| *n == disk_type)
            .map(|(_, p)| *p)
            .ok_or_else(|| format!("disk type `{disk_type}` has no price (known: pd-standard, pd-balanced, pd-ssd)"))?;
        let nodes = workers + 1;
        let vcpus = nodes * m.vcpus;
        Ok(ClusterPrice {
            nodes,
            vcpus,
            compute_per_hour: f64::from(nodes) * m.price_per_hour,
            premium_per_hour: f64::from(vcpus) * prices.dataproc_premium_per_vcpu_hour,
            disks_per_hour: f64::from(nodes) * f64::from(disk_gb) * disk / HOURS_PER_MONTH,
        })
    }

    pub fn per_hour(&self) -> f64 {
        self.compute_per_hour + self.premium_per_hour + self.disks_per_hour
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

/// Runs probes on Dataproc clusters made for them.
pub struct DataprocRunner {
    spec: Arc<SearchSpec>,
    api: Arc<Api>,
    input: String,
    staged: tokio::sync::OnceCell<(String, String)>,
    /// Object names of the staged binary and driver.
    staged_names: (String, String),
    probes: AtomicUsize,
    logs: ProbeLogSlot,
}

/// What one probe needs, worked out before anything is sent.
struct ProbePlan {
    cluster: String,
    job_id: String,
    price: ClusterPrice,
    output: String,
    create: Json,
    submit: Json,
    job_limit: Duration,
}

impl DataprocRunner {
    pub fn new(
        spec: Arc<SearchSpec>,
        options: DataprocOptions,
        credentials: Credentials,
    ) -> Result<DataprocRunner, String> {
        for (name, v) in [
            ("project", &options.project),
            ("region", &options.region),
            ("bucket", &options.bucket),
        ] {
            if v.is_empty() {
                return Err(format!("the dataproc backend needs a {name}"));
            }
        }
        for base in [&options.api_base, &options.storage_base] {
            Url::parse(base).map_err(|e| format!("API base URL `{base}`: {e}"))?;
        }
        if !options
            .search_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || options.search_id.is_empty()
            || options.search_id.len() > 63
        {
            return Err(format!(
                "search id `{}`: use 1-63 lowercase letters, digits or `-` (it is a label value)",
                options.search_id
            ));
        }
        let workload = spec.workload.as_ref().ok_or_else(|| {
            format!(
                "{}: the dataproc backend needs a [workload] section",
                spec.path.display()
            )
        })?;
        let input = match &options.input {
            Some(i) => i.clone(),
            None => workload.dataset.display().to_string(),
        };
        if split_gs(&input).is_none() {
            return Err(format!(
                "the dataproc backend reads the dataset from Cloud Storage: `{input}` is not gs://bucket/prefix \
                 (set [workload] dataset or the dataproc input option)"
            ));
        }
        if !options.dry_run && !options.binary.is_file() {
            return Err(format!(
                "the binary to stage, {}, does not exist",
                options.binary.display()
            ));
        }
        for (i, info) in spec.configs.iter().enumerate() {
            let name = &spec.space.config(i).name;
            let workers =
                whole_workers(info.count).map_err(|e| format!("configuration `{name}`: {e}"))?;
            ClusterPrice::of(
                &spec.prices,
                &info.machine_type,
                workers,
                &options.boot_disk_type,
                options.boot_disk_gb,
            )
            .and_then(|_| SparkShape::of(info, 1024))
            .and_then(|_| JobParams::of(&spec, info, input.clone()))
            .map_err(|e| format!("configuration `{name}`: {e}"))?;
        }
        // Content-addressed, so a new build never runs an old staged binary.
        let tag = std::fs::read(&options.binary)
            .map(|b| format!("{:08x}", crc32c::crc32c(&b)))
            .unwrap_or_else(|_| "unbuilt".to_string());
        let p = options.prefix.trim_matches('/');
        let staged_names = (
            format!("{p}/staging/{tag}/cherrypick"),
            format!(
                "{p}/staging/{:08x}/job.py",
                crc32c::crc32c(JOB_PY.as_bytes())
            ),
        );
        Ok(DataprocRunner {
            spec,
            api: Arc::new(Api::new(options, credentials)?),
            input,
            staged: tokio::sync::OnceCell::new(),
            staged_names,
            probes: AtomicUsize::new(0),
            logs: Arc::new(Mutex::new(None)),
        })
    }

    /// Where each probe's driver output is left for the journal.
    pub fn log_slot(&self) -> ProbeLogSlot {
        self.logs.clone()
    }

    fn options(&self) -> &DataprocOptions {
        &self.api.options
    }

    /// Cluster price of configuration `id` (master and workers, premium and disks included).
    pub fn cluster_price(&self, id: ConfigId) -> Result<ClusterPrice, String> {
        let info = &self.spec.configs[id];
        let o = self.options();
        ClusterPrice::of(
            &self.spec.prices,
            &info.machine_type,
            whole_workers(info.count)?,
            &o.boot_disk_type,
            o.boot_disk_gb,
        )
    }

    fn staged_names(&self) -> (String, String) {
        self.staged_names.clone()
    }

    fn plan(&self, id: ConfigId, n: usize, limits: &ProbeLimits) -> Result<ProbePlan, String> {
        let o = self.options();
        let info = &self.spec.configs[id];
        let workers = whole_workers(info.count)?;
        let price = self.cluster_price(id)?;
        let shape = SparkShape::of(
            info,
            default_executor_memory_mib(info.memory_gib, info.vcpus),
        )?;
        let params = JobParams::of(&self.spec, info, self.input.clone())?;
        // Dataproc names: lowercase, digits and '-', starting with a letter, at most 51 chars.
        let cluster = format!(
            "cp-{}-{n}-{:04x}",
            o.search_id,
            (unix_secs() ^ n as u64) & 0xffff
        );
        let cluster: String = cluster.chars().take(51).collect();
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
        let (binary_obj, job_obj) = self.staged_names();
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
        })
    }

    /// The requests a probe of `id` sends, in order (what `--dry-run` prints).
    pub fn requests(
        &self,
        id: ConfigId,
        limits: &ProbeLimits,
    ) -> Result<Vec<PlannedRequest>, String> {
        let plan = self.plan(id, self.probes.load(Ordering::SeqCst), limits)?;
        let api = &self.api;
        let (binary_obj, job_obj) = self.staged_names();
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
                ..req("POST", api.upload_url(&binary_obj), None)
            },
            PlannedRequest {
                upload: Some("the embedded PySpark driver (workload/spark/job.py)".into()),
                ..req("POST", api.upload_url(&job_obj), None)
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
    pub fn dry_run_report(&self, id: ConfigId, limits: &ProbeLimits) -> Result<String, String> {
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

    /// Deletes clusters left by an earlier run of this search (found by their label), for
    /// example after the process was killed. Returns the names it deleted.
    pub async fn delete_leftovers(&self) -> Result<Vec<String>, String> {
        if self.options().dry_run {
            return Ok(Vec::new());
        }
        let mut url = Url::parse(&self.api.regional("clusters")).map_err(|e| e.to_string())?;
        url.query_pairs_mut().append_pair(
            "filter",
            &format!("labels.{SEARCH_LABEL} = {}", self.options().search_id),
        );
        let v = self
            .api
            .call(Method::GET, url.as_str(), None)
            .await
            .map_err(|e| format!("listing leftover clusters: {e}"))?;
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

    async fn stage(&self) -> Result<&(String, String), ApiError> {
        self.staged
            .get_or_try_init(|| async {
                let (binary_obj, job_obj) = self.staged_names();
                let bytes = std::fs::read(&self.options().binary).map_err(|e| ApiError {
                    status: None,
                    message: format!("reading {}: {e}", self.options().binary.display()),
                })?;
                self.api
                    .send(
                        Method::POST,
                        &self.api.upload_url(&binary_obj),
                        Some((bytes, "application/octet-stream")),
                    )
                    .await?;
                self.api
                    .send(
                        Method::POST,
                        &self.api.upload_url(&job_obj),
                        Some((JOB_PY.as_bytes().to_vec(), "text/x-python")),
                    )
                    .await?;
                Ok((binary_obj, job_obj))
            })
            .await
    }

    /// Creates the cluster and runs the job on it; the caller deletes the cluster.
    async fn probe(
        &self,
        plan: &ProbePlan,
        limits: &ProbeLimits,
        created: &AtomicBool,
        started: Instant,
        log: &mut ProbeLog,
    ) -> Result<Finished, ApiError> {
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
                        .unwrap_or("");
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
            Some(uri) => api
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
            let err = super::spark::error_line(&output, 300);
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
            Some(r) => {
                let mut metrics = r.metrics;
                metrics.insert("cluster_ready_s".into(), cluster_ready_s);
                metrics.insert("job_wall_s".into(), job_started.elapsed().as_secs_f64());
                Ok(Finished::Completed {
                    runtime_s: r.runtime_s,
                    metrics,
                })
            }
            None => Ok(Finished::Failed(format!(
                "job {} printed no `CHERRYPICK_RESULT` line in its driver output",
                plan.job_id
            ))),
        }
    }
}

fn default_executor_memory_mib(machine_gib: f64, vcpus: u32) -> u32 {
    // YARN keeps a share of each node; give an executor about 60% of a core's memory.
    ((machine_gib * 1024.0 / f64::from(vcpus.max(1))) * 0.6).max(512.0) as u32
}

fn whole_workers(count: f64) -> Result<u32, String> {
    // Dataproc standard clusters need at least two primary workers.
    if count.fract() == 0.0 && (2.0..=1000.0).contains(&count) {
        Ok(count as u32)
    } else {
        Err(format!(
            "a Dataproc cluster needs a whole number of workers >= 2, got {count}"
        ))
    }
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

async fn delete_cluster(api: &Api, name: &str) -> Result<(), String> {
    let url = api.regional(&format!("clusters/{name}"));
    match api.call(Method::DELETE, &url, None).await {
        Ok(_) => Ok(()),
        Err(ApiError { status: Some(404), .. }) => Ok(()),
        Err(e) => Err(format!(
            "DELETING CLUSTER {name} FAILED ({e}); it is still billed until its scheduled deletion: \
             delete it with `gcloud dataproc clusters delete {name} --region {}`",
            api.options.region
        )),
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
                Err(e) => Err(format!("cannot delete cluster {name}: no runtime: {e}")),
            }
        })
        .join();
        match done {
            Ok(Ok(())) => eprintln!(
                "dataproc: deleted cluster {} after an aborted probe",
                self.cluster
            ),
            Ok(Err(e)) => eprintln!("dataproc: {e}"),
            Err(_) => eprintln!("dataproc: deleting cluster {} panicked", self.cluster),
        }
    }
}

impl Runner for DataprocRunner {
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

    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Outcome {
        let space_price = space.config(config).price_per_hour;
        let n = self.probes.fetch_add(1, Ordering::SeqCst);
        let plan = match self.plan(config, n, limits) {
            Ok(p) => p,
            Err(e) => return failed(e, 0.0, 0.0),
        };
        if self.options().dry_run {
            match self.dry_run_report(config, limits) {
                Ok(r) => print!("{r}"),
                Err(e) => return failed(e, 0.0, 0.0),
            }
            return failed("dry run: nothing was sent".into(), 0.0, 0.0);
        }
        let full_price = plan.price.per_hour();
        // Cost in the strategy's units: the space's price, or the full cluster price for a cost
        // objective (what is really paid: master, premium and disks included).
        let price = match self.spec.objective {
            Objective::Cost => full_price,
            Objective::Runtime => space_price,
        };
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
            eprintln!("dataproc: {e}");
            log.stderr = e.clone();
            log.stderr_bytes = e.len() as u64;
        }
        if let Ok(mut slot) = self.logs.lock() {
            *slot = Some(log);
        }
        let with_deletion = |reason: String| match &deletion {
            Ok(()) => reason,
            Err(e) => format!("{reason}; {e}"),
        };
        match result {
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
                metrics.insert(SPEND_METRIC.into(), full_price * elapsed / 3600.0);
                if self.spec.objective == Objective::Runtime {
                    metrics.insert("true_cost_usd".into(), full_price * runtime_s / 3600.0);
                }
                Outcome::Completed {
                    runtime_s,
                    cost_usd: price * runtime_s / 3600.0,
                    metrics,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_price_counts_master_premium_and_disks() {
        let t = PriceTable::builtin();
        let p = ClusterPrice::of(&t, "n2-standard-4", 2, "pd-standard", 50).unwrap();
        assert_eq!((p.nodes, p.vcpus), (3, 12));
        assert!((p.compute_per_hour - 3.0 * 0.194236).abs() < 1e-12);
        assert!((p.premium_per_hour - 0.12).abs() < 1e-12);
        assert!((p.disks_per_hour - 3.0 * 50.0 * 0.04 / 730.0).abs() < 1e-12);
        assert!(ClusterPrice::of(&t, "n9-x", 2, "pd-standard", 50).is_err());
        assert!(ClusterPrice::of(&t, "n2-standard-4", 2, "floppy", 50).is_err());
    }

    #[test]
    fn credentials_files_are_read_and_never_shown() {
        let dir = std::env::temp_dir().join(format!("cp-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("user.json");
        std::fs::write(
            &p,
            r#"{"type":"authorized_user","client_id":"id","client_secret":"s3cret","refresh_token":"r3fresh"}"#,
        )
        .unwrap();
        let c = Credentials::from_file(&p).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("r3fresh"),
            "{shown}"
        );
        std::fs::write(&p, r#"{"type":"service_account","client_email":"a@b"}"#).unwrap();
        let err = Credentials::from_file(&p).unwrap_err();
        assert!(err.contains("private_key"), "{err}");
        std::fs::write(&p, r#"{"type":"external_account"}"#).unwrap();
        assert!(Credentials::from_file(&p).unwrap_err().contains("type"));
        assert!(!format!("{:?}", Credentials::Token("tok".into())).contains("tok)"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workers_must_be_whole_and_at_least_two() {
        assert_eq!(whole_workers(4.0), Ok(4));
        assert!(whole_workers(1.0).is_err());
        assert!(whole_workers(2.5).is_err());
        assert_eq!(split_gs("gs://b/p/q"), Some(("b", "p/q")));
        assert_eq!(split_gs("gs://b"), Some(("b", "")));
        assert_eq!(split_gs("/local"), None);
    }
}
