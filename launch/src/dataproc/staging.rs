//! Cloud Storage for the dataproc backend: the binary and the PySpark driver staged under
//! content-addressed names (a new build never runs an old staged binary), and the driver's output
//! read back from the objects Dataproc writes.

use reqwest::{Method, Url};
use serde_json::Value as Json;

use super::api::{Api, ApiError};
use super::runner::DataprocRunner;
use super::DataprocOptions;
use crate::pyspark::JOB_PY;

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

impl Api {
    pub(super) fn object_url(&self, bucket: &str, object: &str) -> Result<Url, ApiError> {
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

    pub(super) fn upload_url(&self, object: &str) -> String {
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
    pub(super) async fn read_prefix(&self, gs_uri: &str) -> Result<String, ApiError> {
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

pub(super) fn split_gs(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("gs://")?;
    let (b, p) = rest.split_once('/').unwrap_or((rest, ""));
    (!b.is_empty()).then_some((b, p))
}

impl DataprocRunner {
    pub(super) async fn stage(&self) -> Result<&(String, String), ApiError> {
        self.staged
            .get_or_try_init(|| async {
                let (binary_obj, job_obj) = self.staged_names.clone();
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
}
