//! The Dataproc REST client: bearer tokens from the runner's [`Tokens`], retries with backoff on
//! 429, 5xx, 401 and network errors, and errors that name the request but never a credential.
//! (Cloud Storage goes through the workload's client: see [`super::staging`].)

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;

use super::auth::{short, Tokens};
use super::DataprocOptions;

/// An HTTP error from an API, without any credential in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: Option<u16>,
    pub message: String,
}

impl std::error::Error for ApiError {}

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
    /// What the body uploads (the staged binary and driver).
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

pub(crate) struct Api {
    pub(super) http: reqwest::Client,
    tokens: Arc<Tokens>,
    pub(super) options: DataprocOptions,
}

impl Api {
    pub(super) fn new(options: DataprocOptions, tokens: Arc<Tokens>) -> Result<Api, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ApiError {
                status: None,
                message: format!("HTTP client: {}", e.without_url()),
            })?;
        Ok(Api {
            http,
            tokens,
            options,
        })
    }

    async fn token(&self) -> Result<String, ApiError> {
        self.tokens.access_token().await.map_err(|e| ApiError {
            status: None,
            message: e.to_string(),
        })
    }

    pub(super) fn regional(&self, tail: &str) -> String {
        format!(
            "{}/v1/projects/{}/regions/{}/{tail}",
            self.options.api_base.trim_end_matches('/'),
            self.options.project,
            self.options.region
        )
    }

    /// Sends a JSON request with retries on 429/5xx and network errors (every call here is
    /// idempotent: creates and submits carry a request id).
    pub(super) async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
    ) -> Result<Json, ApiError> {
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

    pub(super) async fn send(
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
}
