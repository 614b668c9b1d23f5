//! What a failed Cloud Storage request means (transient, not found, denied, ...), retrying the
//! transient ones with backoff, and keeping credentials out of every message.

use std::future::Future;
use std::time::Duration;

use gcloud_storage::http::Error as GcsError;

use crate::storage::{StorageError, StorageErrorKind};

/// Attempts per request for transient failures (timeouts, connection errors, 408, 429, 5xx).
pub(super) const ATTEMPTS: u32 = 5;
/// Backoff before the second attempt; doubles each time up to [`MAX_BACKOFF`] (~3 s in all).
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One failed attempt: its class and a message safe to show.
pub(super) type Failure = (StorageErrorKind, String);

/// Runs `attempt` until it succeeds, fails for a non-transient reason, or [`ATTEMPTS`] run out,
/// sleeping with exponential backoff in between.
pub(super) async fn with_retry<T, F, Fut>(
    op: &'static str,
    location: &str,
    mut attempt: F,
) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut delay = FIRST_BACKOFF;
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Ok(v) => return Ok(v),
            Err((kind, message)) => {
                if kind != StorageErrorKind::Transient || n >= ATTEMPTS {
                    let message = if kind == StorageErrorKind::Transient {
                        format!("{message} (gave up after {n} attempts)")
                    } else {
                        message
                    };
                    return Err(StorageError {
                        op,
                        location: location.to_string(),
                        kind,
                        message,
                    });
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A NotFound error gets `what` (e.g. which bucket is missing) in front of its message.
pub(super) fn explain_missing(mut e: StorageError, what: impl FnOnce() -> String) -> StorageError {
    if e.kind == StorageErrorKind::NotFound {
        e.message = format!("{} ({})", what(), e.message);
    }
    e
}

pub(super) fn status_kind(code: u16) -> StorageErrorKind {
    match code {
        404 => StorageErrorKind::NotFound,
        401 | 403 => StorageErrorKind::PermissionDenied,
        408 | 429 | 500..=599 => StorageErrorKind::Transient,
        _ => StorageErrorKind::Other,
    }
}

/// Classifies a failed request; the message names no URL (the location says where) and passes
/// through [`scrub`].
pub(super) fn classify(e: &GcsError) -> Failure {
    let (kind, message) = match e {
        GcsError::Response(r) => (
            status_kind(r.code),
            format!("HTTP {}: {}", r.code, r.message),
        ),
        GcsError::HttpClient(re) | GcsError::RawResponse(re, _) => classify_reqwest(re),
        GcsError::TokenSource(inner) => {
            // A network failure while refreshing a token is worth retrying; anything else
            // (revoked or malformed credentials) is not.
            let transient = find_reqwest(inner.as_ref())
                .is_some_and(|re| classify_reqwest(re).0 == StorageErrorKind::Transient);
            let kind = if transient {
                StorageErrorKind::Transient
            } else {
                StorageErrorKind::PermissionDenied
            };
            (
                kind,
                format!(
                    "getting an access token failed: {}",
                    error_chain(inner.as_ref())
                ),
            )
        }
        other => (StorageErrorKind::Other, error_chain(other)),
    };
    (kind, scrub(&message))
}

pub(super) fn classify_reqwest(re: &reqwest_gcs::Error) -> Failure {
    // reqwest's own Display includes the request URL; describe it from the causes instead.
    let causes = match std::error::Error::source(re) {
        Some(s) => format!(": {}", error_chain(s)),
        None => String::new(),
    };
    if let Some(status) = re.status() {
        (status_kind(status.as_u16()), format!("HTTP {status}"))
    } else if re.is_timeout() {
        (StorageErrorKind::Transient, format!("timed out{causes}"))
    } else if re.is_connect() {
        (
            StorageErrorKind::Transient,
            format!("connection failed{causes}"),
        )
    } else if re.is_request() || re.is_body() {
        (
            StorageErrorKind::Transient,
            format!("request failed{causes}"),
        )
    } else if re.is_decode() {
        (
            StorageErrorKind::Other,
            format!("unexpected response{causes}"),
        )
    } else {
        (
            StorageErrorKind::Other,
            format!("HTTP client error{causes}"),
        )
    }
}

pub(super) fn find_reqwest<'a>(
    mut e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a reqwest_gcs::Error> {
    loop {
        if let Some(re) = e.downcast_ref::<reqwest_gcs::Error>() {
            return Some(re);
        }
        e = e.source()?;
    }
}

/// `e` and its causes, each once.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

/// Blanks anything in `text` that looks like a credential: bearer and OAuth access tokens,
/// and the values of JSON keys that hold secrets. Messages should never contain them; this is
/// the safety net for third-party error texts.
pub(crate) fn scrub(text: &str) -> String {
    const TOKEN_MARKERS: [&str; 3] = ["Bearer ", "bearer ", "ya29."];
    const SECRET_KEYS: [&str; 5] = [
        "access_token",
        "refresh_token",
        "private_key",
        "client_secret",
        "id_token",
    ];
    let mut out = text.to_string();
    for marker in TOKEN_MARKERS {
        let mut from = 0;
        while let Some(i) = out[from..].find(marker).map(|i| i + from) {
            let start = i + marker.len();
            let end = out[start..]
                .find(|c: char| c.is_whitespace() || "\"',;)}]".contains(c))
                .map_or(out.len(), |j| start + j);
            out.replace_range(start..end, "[redacted]");
            from = start + "[redacted]".len();
        }
    }
    for key in SECRET_KEYS {
        let mut from = 0;
        while let Some(i) = out[from..].find(key).map(|i| i + from) {
            // Skip the key, its closing quote, `:`/`=` and spaces; blank the value up to the
            // next delimiter (a quoted value up to its closing quote).
            let mut start = i + key.len();
            let rest = &out[start..];
            let skipped = rest.len() - rest.trim_start_matches(['"', '\'', ':', '=', ' ']).len();
            if skipped == 0 {
                from = start;
                continue;
            }
            start += skipped;
            let quoted = out[..start].ends_with(['"', '\'']);
            let end = out[start..]
                .find(|c: char| {
                    if quoted {
                        c == '"' || c == '\''
                    } else {
                        c.is_whitespace() || ",;&}".contains(c)
                    }
                })
                .map_or(out.len(), |j| start + j);
            out.replace_range(start..end, "[redacted]");
            from = start + "[redacted]".len();
        }
    }
    out
}
