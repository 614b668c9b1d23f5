//! Making the `gcloud-storage` client: where it sends requests (Google, an emulator, or an
//! explicit endpoint) and how they are signed in (the program's installed [`SignIn`], none for
//! an emulator, or a token source the caller hands over).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use gcloud_storage::client::{Client, ClientConfig};
use token_source::TokenSourceProvider;

use super::retry::{classify_reqwest, error_chain, find_reqwest, scrub, with_retry};
use crate::storage::{StorageError, StorageErrorKind};

/// A stalled connection counts as transient instead of hanging the job.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Finding application default credentials may probe the metadata server; bound it.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Signs Cloud Storage requests in: a token source provider for the storage scopes
/// ([`SCOPES`]), or why there is none (a [`reqwest`](reqwest_gcs) error among its causes marks
/// a network failure, retried like any request).
pub type SignIn = fn() -> SignInFuture;

/// What a [`SignIn`] returns.
pub type SignInFuture =
    Pin<Box<dyn Future<Output = Result<Box<dyn TokenSourceProvider>, SignInError>> + Send>>;

/// Why a sign-in failed.
pub type SignInError = Box<dyn std::error::Error + Send + Sync>;

/// The OAuth scopes a sign-in asks for.
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/devstorage.full_control",
];

static SIGN_IN: OnceLock<SignIn> = OnceLock::new();

/// Installs how requests outside an emulator are signed in (once per process; a second call is
/// ignored and returns false).
pub fn set_sign_in(sign_in: SignIn) -> bool {
    SIGN_IN.set(sign_in).is_ok()
}

/// Where a client sends its requests and how it signs them in.
pub(super) enum Target {
    /// Google's endpoint, signed in by the installed [`SignIn`].
    Google,
    /// An emulator (`STORAGE_EMULATOR_HOST`): `host:port` or a URL, no authentication.
    Emulator(String),
    /// The JSON API at `endpoint` (a URL), signed in with `tokens`.
    At {
        endpoint: String,
        tokens: Box<dyn TokenSourceProvider>,
    },
}

/// `endpoint` without a trailing `/`, if it is an http(s) URL with a host.
pub(super) fn endpoint_url(endpoint: &str) -> Option<String> {
    let e = endpoint.trim().trim_end_matches('/');
    let host = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))?;
    let ok = !host.is_empty()
        && !host.starts_with('/')
        && !host.contains(['?', '#'])
        && !host.chars().any(char::is_whitespace);
    ok.then(|| e.to_string())
}

pub(super) async fn make_client(location: String, target: Target) -> Result<Client, StorageError> {
    let fail = |kind, message: String| StorageError {
        op: "open",
        location: location.clone(),
        kind,
        message,
    };
    let http = reqwest_gcs::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .build()
        .map_err(|e| {
            fail(
                StorageErrorKind::Other,
                format!("cannot build the HTTP client: {}", error_chain(&e)),
            )
        })?;
    let config = ClientConfig {
        http: Some(reqwest_middleware::ClientBuilder::new(http).build()),
        ..Default::default()
    };
    match target {
        Target::Emulator(host) => {
            let host = host.trim().trim_end_matches('/');
            // Google's tools accept `host:port` as well as a URL.
            let endpoint = if host.contains("://") {
                host.to_string()
            } else {
                format!("http://{host}")
            };
            Ok(Client::new(ClientConfig {
                storage_endpoint: endpoint,
                ..config.anonymous()
            }))
        }
        Target::At { endpoint, tokens } => {
            let storage_endpoint = endpoint_url(&endpoint).ok_or_else(|| {
                fail(
                    StorageErrorKind::Other,
                    format!("Cloud Storage endpoint `{endpoint}` is not an http(s) URL"),
                )
            })?;
            Ok(Client::new(ClientConfig {
                storage_endpoint,
                token_source_provider: Some(tokens),
                ..config
            }))
        }
        Target::Google => {
            // Signing in fetches a first token: a network failure there is retried like any
            // request; unreadable or rejected credentials are not.
            let Some(sign_in) = SIGN_IN.get().copied() else {
                return Err(fail(
                    StorageErrorKind::PermissionDenied,
                    "this program cannot sign in to Cloud Storage (no sign-in installed); \
                     set STORAGE_EMULATOR_HOST for an emulator"
                        .into(),
                ));
            };
            let http = config.http.clone();
            let config = with_retry("open", &location, || {
                let http = http.clone();
                async move {
                    match tokio::time::timeout(AUTH_TIMEOUT, sign_in()).await {
                        Ok(Ok(provider)) => Ok(ClientConfig {
                            http,
                            token_source_provider: Some(provider),
                            ..Default::default()
                        }),
                        Err(_) => Err((
                            StorageErrorKind::Transient,
                            format!(
                                "looking for application default credentials timed out after \
                                 {} s",
                                AUTH_TIMEOUT.as_secs()
                            ),
                        )),
                        Ok(Err(e)) => {
                            let transient = find_reqwest(&*e).is_some_and(|re| {
                                classify_reqwest(re).0 == StorageErrorKind::Transient
                            });
                            let kind = if transient {
                                StorageErrorKind::Transient
                            } else {
                                StorageErrorKind::PermissionDenied
                            };
                            Err((
                                kind,
                                format!(
                                    "no usable application default credentials ({}); set \
                                     GOOGLE_APPLICATION_CREDENTIALS to a key file, run `gcloud \
                                     auth application-default login`, or set \
                                     STORAGE_EMULATOR_HOST for an emulator",
                                    scrub(&error_chain(&*e))
                                ),
                            ))
                        }
                    }
                }
            })
            .await?;
            Ok(Client::new(config))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_http_urls() {
        assert_eq!(
            endpoint_url("http://127.0.0.1:9/").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            endpoint_url("https://storage.googleapis.com").as_deref(),
            Some("https://storage.googleapis.com")
        );
        for bad in [
            "",
            "storage.googleapis.com",
            "ftp://x",
            "http://",
            "http://a b",
        ] {
            assert_eq!(endpoint_url(bad), None, "{bad}");
        }
    }
}
