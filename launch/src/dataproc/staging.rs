//! Cloud Storage for the dataproc backend: the binary and the PySpark driver staged under
//! content-addressed names (a new build never runs an old staged binary), and the driver's output
//! read back from the objects Dataproc writes. Both go through the workload's Cloud Storage
//! client ([`workload::GcsStorage`], on `gcloud-storage`, with its retries and scrubbed
//! messages), opened at the options' storage API root and signed in with the runner's
//! [`Tokens`]: the build has one Cloud Storage client, and launch's REST client speaks only
//! the Dataproc API.

use std::path::PathBuf;
use std::sync::Arc;

use workload::storage::Storage;
use workload::{GcsStorage, StorageError};

use super::auth::{StorageTokens, Tokens};
use super::runner::DataprocRunner;
use super::DataprocOptions;
use crate::pyspark::JOB_PY;

/// Why staging a file or reading the driver's output failed. Storage errors name the object or
/// bucket (`write gs://b/o: HTTP 403: ...`); none carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// The Cloud Storage client could not be made (a bad storage API root or bucket name).
    #[error("Cloud Storage at {endpoint}: {error}")]
    Client {
        endpoint: String,
        error: StorageError,
    },
    /// A local file to stage could not be read.
    #[error("reading {} to stage it: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// Uploading a staged file failed.
    #[error("staging {what}: {error}")]
    Upload {
        what: &'static str,
        error: StorageError,
    },
    /// The driver's output could not be listed or read.
    #[error("driver output {uri}: {error}")]
    Output { uri: String, error: StorageError },
    /// Dataproc named a driver output that is not on Cloud Storage.
    #[error("driver output `{0}` is not a gs:// URI")]
    NotGs(String),
    /// A storage call ended without an answer (it panicked, or the runtime is shutting down).
    #[error("Cloud Storage call for {what} did not finish: {error}")]
    Stopped { what: String, error: String },
}

/// Object names of the staged binary and driver for `options` (the binary's CRC32C names it).
pub(super) fn staged_names(options: &DataprocOptions) -> (String, String) {
    let tag = std::fs::read(&options.binary)
        .map(|b| format!("{:08x}", crc32c::crc32c(&b)))
        .unwrap_or_else(|_| "unbuilt".to_string());
    let p = options.prefix.trim_matches('/');
    (
        format!("{p}/staging/{tag}/cherrypick"),
        format!(
            "{p}/staging/{:08x}/job.py",
            crc32c::crc32c(JOB_PY.as_bytes())
        ),
    )
}

/// The request [`Storage::put`] of `object` sends (a simple media upload, as `gcloud-storage`
/// builds it): what the dry run prints. A test compares it with what the client sends.
pub(super) fn upload_url(storage_base: &str, bucket: &str, object: &str) -> String {
    let query: String =
        reqwest::Url::parse_with_params("http://x/", [("uploadType", "media"), ("name", object)])
            .ok()
            .and_then(|u| u.query().map(String::from))
            .unwrap_or_default();
    format!(
        "{}/upload/storage/v1/b/{bucket}/o?{query}",
        storage_base.trim_end_matches('/')
    )
}

/// The runner's Cloud Storage: the staging bucket, and any other bucket a driver output is in.
pub(super) struct Staging {
    endpoint: String,
    tokens: Arc<Tokens>,
    bucket: String,
    storage: Arc<GcsStorage>,
}

impl Staging {
    /// A client for `options.bucket` at `options.storage_base`; sends nothing.
    pub(super) fn open(
        options: &DataprocOptions,
        tokens: Arc<Tokens>,
    ) -> Result<Staging, StagingError> {
        let endpoint = options.storage_base.clone();
        let storage = open_bucket(&endpoint, &tokens, &options.bucket)?;
        Ok(Staging {
            endpoint,
            tokens,
            bucket: options.bucket.clone(),
            storage,
        })
    }

    fn bucket(&self, bucket: &str) -> Result<Arc<GcsStorage>, StagingError> {
        if bucket == self.bucket {
            Ok(self.storage.clone())
        } else {
            open_bucket(&self.endpoint, &self.tokens, bucket)
        }
    }

    /// Uploads `bytes` as `object` in the staging bucket.
    async fn upload(
        &self,
        what: &'static str,
        object: String,
        bytes: Vec<u8>,
    ) -> Result<(), StagingError> {
        let storage = self.storage.clone();
        blocking(what, move || storage.put(&object, &bytes))
            .await?
            .map_err(|error| StagingError::Upload { what, error })
    }

    /// Concatenates the objects whose names start with `gs://bucket/prefix` in name order (the
    /// driver output Dataproc writes as `driveroutput.000000000`, `.000000001`, ...).
    pub(super) async fn read_prefix(&self, gs_uri: &str) -> Result<String, StagingError> {
        let (bucket, prefix) =
            split_gs(gs_uri).ok_or_else(|| StagingError::NotGs(gs_uri.to_string()))?;
        let storage = self.bucket(bucket)?;
        let prefix = prefix.to_string();
        let what = format!("driver output {gs_uri}");
        let read = blocking(&what, move || -> Result<Vec<u8>, StorageError> {
            let mut out = Vec::new();
            // Listed sorted by name.
            for o in storage.list_starting(&prefix)? {
                out.extend(storage.get(&o.key)?);
            }
            Ok(out)
        })
        .await?
        .map_err(|error| StagingError::Output {
            uri: gs_uri.to_string(),
            error,
        })?;
        Ok(String::from_utf8_lossy(&read).into_owned())
    }
}

fn open_bucket(
    endpoint: &str,
    tokens: &Arc<Tokens>,
    bucket: &str,
) -> Result<Arc<GcsStorage>, StagingError> {
    GcsStorage::open_at(bucket, endpoint, Box::new(StorageTokens(tokens.clone())))
        .map(Arc::new)
        .map_err(|error| StagingError::Client {
            endpoint: endpoint.to_string(),
            error,
        })
}

/// Runs a blocking storage call off the async workers.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StagingError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StagingError::Stopped {
            what: what.to_string(),
            error: e.to_string(),
        })
}

pub(super) fn split_gs(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("gs://")?;
    let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
    (!b.is_empty()).then_some((b, p))
}

impl DataprocRunner {
    /// Uploads the binary and the driver once per runner (every probe waits for the first).
    pub(super) async fn stage(&self) -> Result<&(String, String), StagingError> {
        self.staged
            .get_or_try_init(|| async {
                let (binary_obj, job_obj) = self.staged_names.clone();
                let path = self.options().binary.clone();
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|error| StagingError::Read { path, error })?;
                self.staging
                    .upload("the binary", binary_obj.clone(), bytes)
                    .await?;
                self.staging
                    .upload("the driver", job_obj.clone(), JOB_PY.as_bytes().to_vec())
                    .await?;
                Ok((binary_obj, job_obj))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs_uris_split_into_bucket_and_prefix() {
        assert_eq!(split_gs("gs://b/p/q"), Some(("b", "p/q")));
        assert_eq!(split_gs("gs://b"), Some(("b", "")));
        assert_eq!(split_gs("/local"), None);
        assert_eq!(split_gs("gs:///x"), None);
    }

    #[test]
    fn upload_urls_encode_the_object_name_as_a_query_value() {
        assert_eq!(
            upload_url("http://h:1/", "stage", "p/staging/0a/job.py"),
            "http://h:1/upload/storage/v1/b/stage/o?uploadType=media&name=p%2Fstaging%2F0a%2Fjob.py"
        );
    }
}
