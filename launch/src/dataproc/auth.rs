//! Application default credentials, in Google's order of lookup, and the access tokens they give.
//! Secrets never appear in messages or `Debug` output.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value as Json};

use super::unix_secs;

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
    pub(super) async fn fetch(&self, http: &reqwest::Client) -> Result<(String, Duration), String> {
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

pub(super) fn short(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
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
        let err = Credentials::from_file(&p).unwrap_err();
        assert!(err.contains("private_key"), "{err}");
        std::fs::write(&p, r#"{"type":"external_account"}"#).unwrap();
        assert!(Credentials::from_file(&p).unwrap_err().contains("type"));
        assert!(!format!("{:?}", Credentials::Token("tok".into())).contains("tok)"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
