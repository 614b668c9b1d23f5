//! Application default credentials, in Google's order of lookup, turned into access tokens by
//! `gcloud-auth`: the Dataproc client's sign-in, and (through [`storage_sign_in`], which the
//! binary installs in the workload) the Cloud Storage client's, so the build carries one sign-in
//! stack and the job crate none. [`Tokens`] serves both of a runner's clients: the Dataproc
//! client and the Cloud Storage client its staging uses. Secrets never appear in messages or
//! `Debug` output.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gcloud_auth::credentials::CredentialsFile;
use gcloud_auth::project::{
    create_token_source_from_credentials, create_token_source_from_project, Config, Project,
    ProjectInfo,
};
use gcloud_auth::token_source::TokenSource;
use serde_json::Value as Json;

/// What access tokens are for: every Google Cloud API.
const SCOPES: [&str; 1] = ["https://www.googleapis.com/auth/cloud-platform"];

/// Signs the workload's Cloud Storage client in with application default credentials and the
/// storage scopes (a [`workload::SignIn`]).
pub fn storage_sign_in() -> workload::SignInFuture {
    Box::pin(async {
        let config = Config::default().with_scopes(&workload::STORAGE_SCOPES);
        let provider = gcloud_auth::token::DefaultTokenSourceProvider::new(config).await?;
        Ok(Box::new(provider) as Box<dyn token_source::TokenSourceProvider>)
    })
}

/// Where access tokens come from.
#[derive(Clone)]
pub enum Credentials {
    /// A credentials file: a service-account key, or the user credentials
    /// `gcloud auth application-default login` writes.
    File {
        path: PathBuf,
        file: Box<CredentialsFile>,
    },
    /// The metadata server of a Google Cloud VM.
    Metadata,
    /// A token given directly (for example by a wrapper that already holds one).
    Token(String),
}

// Never print secrets: Debug names the kind of credential only.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::File { path, file } => write!(f, "File({}, {})", path.display(), file.tp),
            Credentials::Metadata => f.write_str("Metadata"),
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Why no access token can be had. Names the credentials file, never a secret in it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialsError {
    /// The credentials file cannot be read or lacks what its kind needs.
    #[error("credentials file {}: {problem}", .path.display())]
    File { path: PathBuf, problem: String },
    /// The credentials file was refused when exchanged for a token.
    #[error("access token from {}: {error}", .path.display())]
    Exchange { path: PathBuf, error: String },
    /// Neither a credentials file nor a metadata server.
    #[error(
        "no application default credentials: set GOOGLE_APPLICATION_CREDENTIALS to a key file, \
         run `gcloud auth application-default login`, or run on a Google Cloud VM (metadata \
         server: {0})"
    )]
    None(String),
    /// A token source that was working could not give a token.
    #[error("access token: {0}")]
    Token(String),
}

impl Credentials {
    /// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's well-known file, else the metadata server.
    pub fn application_default() -> Result<Credentials, CredentialsError> {
        if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            return Credentials::from_file(Path::new(&p));
        }
        if let Some(home) = std::env::var_os("HOME") {
            let p = PathBuf::from(home).join(".config/gcloud/application_default_credentials.json");
            if p.is_file() {
                return Credentials::from_file(&p);
            }
        }
        Ok(Credentials::Metadata)
    }

    /// Reads a credentials JSON file (`service_account` or `authorized_user`), checking the
    /// fields its kind needs.
    pub fn from_file(path: &Path) -> Result<Credentials, CredentialsError> {
        let problem = |problem: String| CredentialsError::File {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        let v: Json =
            serde_json::from_str(&text).map_err(|e| problem(format!("not JSON ({e})")))?;
        let needs: &[&str] = match v.get("type").and_then(Json::as_str) {
            Some("service_account") => &["client_email", "private_key"],
            Some("authorized_user") => &["client_id", "client_secret", "refresh_token"],
            other => {
                return Err(problem(format!(
                    "field `type` is {other:?}; expected \"service_account\" or \"authorized_user\""
                )))
            }
        };
        if let Some(k) = needs
            .iter()
            .find(|k| v.get(**k).and_then(Json::as_str).is_none())
        {
            return Err(problem(format!("field `{k}` is missing")));
        }
        let file: CredentialsFile =
            serde_json::from_value(v).map_err(|e| problem(e.to_string()))?;
        Ok(Credentials::File {
            path: path.to_path_buf(),
            file: Box::new(file),
        })
    }

    /// A source of access tokens (it caches them and fetches anew before they expire); `None`
    /// for a token given directly.
    pub(super) async fn source(&self) -> Result<Option<Box<dyn TokenSource>>, CredentialsError> {
        match self {
            Credentials::Token(_) => Ok(None),
            Credentials::File { path, file } => {
                let config = Config::default().with_scopes(&SCOPES);
                create_token_source_from_credentials(file, &config)
                    .await
                    .map(Some)
                    .map_err(|e| CredentialsError::Exchange {
                        path: path.clone(),
                        error: e.to_string(),
                    })
            }
            Credentials::Metadata => {
                let project = Project::FromMetadataServer(ProjectInfo { project_id: None });
                let config = Config::default().with_scopes(&SCOPES);
                // This fetches a token: no metadata server fails here, with advice.
                create_token_source_from_project(&project, config)
                    .await
                    .map(Some)
                    .map_err(|e| CredentialsError::None(e.to_string()))
            }
        }
    }
}

/// Access tokens from [`Credentials`]: the token source is made on first use (it may fetch a
/// token), then caches and refreshes tokens itself. One per runner, shared by its Dataproc client
/// and its Cloud Storage client ([`StorageTokens`]), so both use the same token.
pub(crate) struct Tokens {
    credentials: Credentials,
    source: tokio::sync::OnceCell<Box<dyn TokenSource>>,
}

impl Tokens {
    pub(crate) fn new(credentials: Credentials) -> Arc<Tokens> {
        Arc::new(Tokens {
            credentials,
            source: tokio::sync::OnceCell::new(),
        })
    }

    /// A current access token (never put into a message).
    pub(crate) async fn access_token(&self) -> Result<String, CredentialsError> {
        if let Credentials::Token(t) = &self.credentials {
            return Ok(t.clone());
        }
        let source = self
            .source
            .get_or_try_init(|| async {
                self.credentials
                    .source()
                    .await?
                    .ok_or_else(|| CredentialsError::Token("no token source".into()))
            })
            .await?;
        source
            .token()
            .await
            .map(|t| t.access_token)
            .map_err(|e| CredentialsError::Token(e.to_string()))
    }
}

/// [`Tokens`] as the token source of the workload's Cloud Storage client
/// ([`workload::GcsStorage::open_at`]), which sends what it gives as the `Authorization` header.
#[derive(Clone)]
pub(crate) struct StorageTokens(pub(crate) Arc<Tokens>);

// Never print secrets: Debug names the kind of credential only.
impl std::fmt::Debug for StorageTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StorageTokens({:?})", self.0.credentials)
    }
}

#[async_trait::async_trait]
impl token_source::TokenSource for StorageTokens {
    async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let token = self.0.access_token().await?;
        Ok(format!("Bearer {token}"))
    }
}

impl token_source::TokenSourceProvider for StorageTokens {
    fn token_source(&self) -> Arc<dyn token_source::TokenSource> {
        Arc::new(self.clone())
    }
}

/// At most `max` characters of `s`.
pub(super) fn short(s: &str, max: usize) -> &str {
    crate::process::truncate(s, max)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = Credentials::from_file(&p).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("credentials file {}: ", p.display()))
                && err.contains("private_key"),
            "{err}"
        );
        std::fs::write(&p, r#"{"type":"external_account"}"#).unwrap();
        assert!(Credentials::from_file(&p)
            .unwrap_err()
            .to_string()
            .contains("field `type`"));
        assert!(!format!("{:?}", Credentials::Token("tok".into())).contains("tok)"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
