//! Cloud Storage (`gs://bucket/prefix`) behind the [`Storage`](crate::storage::Storage) trait.
//!
//! Built on the `gcloud-storage` crate (formerly published as `google-cloud-storage`), which
//! speaks Cloud Storage's JSON API over HTTP. Chosen over Google's official Rust SDK because a
//! probe found it passes upload, list and download against PyPI's `gcp-storage-emulator` (what
//! CI runs), whereas the official SDK lists objects over gRPC, which no emulator here serves.
//!
//! `STORAGE_EMULATOR_HOST` (e.g. `http://127.0.0.1:9023`) points the client at an emulator
//! without authentication; otherwise requests are signed in by the [`SignIn`] the program
//! installed with [`set_sign_in`] (the cherrypick binary: application default credentials,
//! through launch's sign-in stack, the one its Dataproc client uses). [`GcsStorage::open_at`]
//! takes an explicit endpoint and token source instead (launch's Dataproc backend stages its
//! files and reads the driver's output that way, with the credentials and API root it was
//! given). Access tokens travel only in request headers and are never put into messages
//! ([`retry::scrub`] guards the rest).
//!
//! - [`client`]: where requests go and how they are signed in
//! - [`retry`]: classifying failures, retrying the transient ones, scrubbing messages

use std::future::Future;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use token_source::TokenSourceProvider;

use gcloud_storage::client::Client;
use gcloud_storage::http::buckets::get::GetBucketRequest;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::upload::{Media, UploadObjectRequest, UploadType};

use crate::storage::{ObjectInfo, ObjectWriter, Storage, StorageError, StorageErrorKind};

mod client;
mod retry;

use client::{make_client, Target};
pub use client::{set_sign_in, SignIn, SignInError, SignInFuture, SCOPES};
use retry::{classify, explain_missing, with_retry};

/// Objects under `gs://bucket/prefix`.
pub struct GcsStorage {
    bucket: String,
    /// Empty, or ending in `/`, so `prefix + key` is the object name.
    prefix: String,
    client: Client,
}

impl GcsStorage {
    /// Opens `bucket/prefix` (the part after `gs://`): builds a client for the emulator named by
    /// `STORAGE_EMULATOR_HOST`, or with application default credentials.
    pub fn open(rest: &str) -> Result<Self, StorageError> {
        let target = match std::env::var("STORAGE_EMULATOR_HOST") {
            Ok(host) if !host.trim().is_empty() => Target::Emulator(host),
            _ => Target::Google,
        };
        Self::open_with(rest, target)
    }

    /// Opens `bucket/prefix` (the part after `gs://`) on the Cloud Storage JSON API at
    /// `endpoint` (a URL such as `https://storage.googleapis.com`), signing requests in with the
    /// tokens `tokens` gives: for a program that holds its own credentials and endpoint rather
    /// than the installed [`SignIn`] or an emulator. Sends nothing until the first operation.
    pub fn open_at(
        rest: &str,
        endpoint: &str,
        tokens: Box<dyn TokenSourceProvider>,
    ) -> Result<Self, StorageError> {
        Self::open_with(
            rest,
            Target::At {
                endpoint: endpoint.to_string(),
                tokens,
            },
        )
    }

    fn open_with(rest: &str, target: Target) -> Result<Self, StorageError> {
        let location = format!("gs://{rest}");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(why) = bucket_name_problem(bucket) {
            return Err(StorageError {
                op: "open",
                location,
                kind: StorageErrorKind::Other,
                message: format!("{why}; expected gs://BUCKET/PREFIX"),
            });
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let client = block_on("open", &location, make_client(location.clone(), target))?;
        Ok(GcsStorage {
            bucket: bucket.to_string(),
            prefix,
            client,
        })
    }

    /// The objects whose keys start with `start` (all of them for `""`, which is
    /// [`Storage::list`]), sorted by key: one listing request per page with `prefix` set to the
    /// root's prefix followed by `start`. Keys need not end at a `/`: `driveroutput` finds
    /// `driveroutput.000000000`, `driveroutput.000000001`, ...
    pub fn list_starting(&self, start: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let location = if start.is_empty() {
            self.location()
        } else {
            self.object_location(&format!("{}{start}", self.prefix))
        };
        let (client, bucket, root, prefix, start) = (
            self.client.clone(),
            self.bucket.clone(),
            self.prefix.clone(),
            format!("{}{start}", self.prefix),
            start.to_string(),
        );
        let loc = location.clone();
        block_on("list", &location, async move {
            let mut out = Vec::new();
            let mut page_token = None;
            // Tokens already followed: a server that hands one back again would be listed for
            // ever, so the listing stops with an error naming it instead.
            let mut followed = std::collections::HashSet::new();
            loop {
                let req = ListObjectsRequest {
                    bucket: bucket.clone(),
                    prefix: (!prefix.is_empty()).then(|| prefix.clone()),
                    page_token: page_token.take(),
                    ..Default::default()
                };
                let (c, r) = (&client, &req);
                let page = with_retry("list", &loc, || async move {
                    c.list_objects(r).await.map_err(|e| classify(&e))
                })
                .await
                .map_err(|e| explain_missing(e, || format!("bucket `{bucket}` does not exist")))?;
                for o in page.items.unwrap_or_default() {
                    let Some(key) = o.name.strip_prefix(root.as_str()) else {
                        continue;
                    };
                    // Zero-byte `dir/` placeholders made by consoles are folders, not objects.
                    if key.is_empty() || key.ends_with('/') || !key.starts_with(&start) {
                        continue;
                    }
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: o.size.max(0) as u64,
                        path: None,
                    });
                }
                match page.next_page_token {
                    Some(t) if !t.is_empty() => {
                        if !followed.insert(t.clone()) {
                            return Err(StorageError {
                                op: "list",
                                location: loc.clone(),
                                kind: StorageErrorKind::Other,
                                message: format!(
                                    "the server gave page token `{t}` a second time after {} \
                                     pages; the listing would never end",
                                    followed.len() + 1
                                ),
                            });
                        }
                        page_token = Some(t)
                    }
                    _ => break,
                }
            }
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
    }

    fn object_location(&self, object: &str) -> String {
        format!("gs://{}/{object}", self.bucket)
    }
}

/// Why `name` cannot be a bucket name (Cloud Storage's rules, checked loosely), if it cannot.
fn bucket_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("no bucket name".into());
    }
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if !ok_chars || name.len() < 3 || name.len() > 222 {
        return Some(format!(
            "`{name}` is not a valid bucket name (3-222 characters of a-z, 0-9, -, _ and .)"
        ));
    }
    None
}

/// The runtime every Cloud Storage call runs on: shared, built on first use, never dropped (a
/// runtime dropped inside another one's async context would panic).
fn runtime(
    op: &'static str,
    location: &str,
) -> Result<&'static tokio::runtime::Runtime, StorageError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gcs-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| StorageError {
        op,
        location: location.to_string(),
        kind: StorageErrorKind::Other,
        message: format!("cannot start the I/O runtime: {e}"),
    })
}

/// Runs `fut` on the shared runtime and waits for it on this thread. Spawning and waiting on a
/// channel, rather than `block_on`, is what keeps this callable from inside another tokio
/// runtime (the search loop's) without panicking.
fn block_on<T: Send + 'static>(
    op: &'static str,
    location: &str,
    fut: impl Future<Output = Result<T, StorageError>> + Send + 'static,
) -> Result<T, StorageError> {
    let rt = runtime(op, location)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().unwrap_or_else(|_| {
        Err(StorageError {
            op,
            location: location.to_string(),
            kind: StorageErrorKind::Other,
            message: "the request task stopped without an answer".into(),
        })
    })
}

/// Numbers temporary files so writers in one process never collide.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl Storage for GcsStorage {
    fn location(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
    }

    fn list(&self) -> Result<Vec<ObjectInfo>, StorageError> {
        self.list_starting("")
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let object = format!("{}{key}", self.prefix);
        let location = self.object_location(&object);
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        let loc = location.clone();
        block_on("read", &location, async move {
            let req = GetObjectRequest {
                bucket: bucket.clone(),
                object,
                ..Default::default()
            };
            let (c, r) = (&client, &req);
            with_retry("read", &loc, || async move {
                c.download_object(r, &Range::default())
                    .await
                    .map_err(|e| classify(&e))
            })
            .await
            .map_err(|e| {
                explain_missing(e, || {
                    format!("no such object, or bucket `{bucket}` does not exist")
                })
            })
        })
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let object = format!("{}{key}", self.prefix);
        let location = self.object_location(&object);
        let body = bytes::Bytes::copy_from_slice(data);
        block_on(
            "write",
            &location,
            upload_bytes(
                self.client.clone(),
                self.bucket.clone(),
                object,
                body,
                location.clone(),
            ),
        )
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let object = format!("{}{key}", self.prefix);
        let location = self.object_location(&object);
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        let loc = location.clone();
        let deleted = block_on("remove", &location, async move {
            let req = DeleteObjectRequest {
                bucket,
                object,
                ..Default::default()
            };
            let (c, r) = (&client, &req);
            with_retry("remove", &loc, || async move {
                c.delete_object(r).await.map_err(|e| classify(&e))
            })
            .await
        });
        match deleted {
            Err(e) if e.kind != StorageErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn create(&self, hint: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        // Buffered in a local temporary file (memory stays flat) and uploaded under the final
        // name only on commit: Cloud Storage shows an object only once its upload completes, so
        // nothing partial is ever visible, and a dropped writer uploads nothing.
        let safe_hint: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let tmp = std::env::temp_dir().join(format!(
            "cherrypick-gcs-{}-{}-{safe_hint}.partial",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&tmp)
            .map_err(|e| StorageError::io("create temporary file", tmp.display(), &e))?;
        Ok(Box::new(GcsWriter {
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            tmp,
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            bytes: 0,
        }))
    }

    fn prepare_output(&self) -> Result<(), StorageError> {
        let bucket_location = format!("gs://{}", self.bucket);
        let (client, bucket) = (self.client.clone(), self.bucket.clone());
        let loc = bucket_location.clone();
        let checked = block_on("open bucket", &bucket_location, async move {
            let req = GetBucketRequest {
                bucket: bucket.clone(),
                ..Default::default()
            };
            let (c, r) = (&client, &req);
            with_retry("open bucket", &loc, || async move {
                c.get_bucket(r).await.map_err(|e| classify(&e))
            })
            .await
            .map_err(|e| explain_missing(e, || format!("bucket `{bucket}` does not exist")))
        });
        match checked {
            Ok(_) => {}
            // Writers often may create objects without seeing bucket metadata: let the probe
            // below decide.
            Err(e) if e.kind == StorageErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
        // Creating objects is what matters: write a tiny probe, then remove it (not empty:
        // gcp-storage-emulator fails on zero-byte media uploads).
        let object = format!("{}.write-probe-{}", self.prefix, std::process::id());
        let location = self.object_location(&object);
        let bucket = self.bucket.clone();
        block_on(
            "write to",
            &location,
            upload_bytes(
                self.client.clone(),
                bucket.clone(),
                object.clone(),
                bytes::Bytes::from_static(b"probe"),
                location.clone(),
            ),
        )
        .map_err(|mut e| {
            if e.kind == StorageErrorKind::PermissionDenied {
                e.message = format!(
                    "no permission to create objects in bucket `{bucket}` ({})",
                    e.message
                );
            }
            e
        })?;
        let client = self.client.clone();
        // Best effort: a writer without delete permission leaves the 5-byte probe behind.
        let _ = block_on("remove", &location, async move {
            let req = DeleteObjectRequest {
                bucket,
                object,
                ..Default::default()
            };
            client.delete_object(&req).await.map_err(|e| {
                let (kind, message) = classify(&e);
                StorageError {
                    op: "remove",
                    location: String::new(),
                    kind,
                    message,
                }
            })
        });
        Ok(())
    }
}

/// Uploads `body` as `object` in one request, retried as a whole.
async fn upload_bytes(
    client: Client,
    bucket: String,
    object: String,
    body: bytes::Bytes,
    location: String,
) -> Result<(), StorageError> {
    let req = UploadObjectRequest {
        bucket: bucket.clone(),
        ..Default::default()
    };
    let (c, r, o, b) = (&client, &req, &object, &body);
    with_retry("write", &location, || async move {
        let media = Media {
            content_length: Some(b.len() as u64),
            ..Media::new(o.clone())
        };
        c.upload_object(r, b.clone(), &UploadType::Simple(media))
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    })
    .await
    .map_err(|e| explain_missing(e, || format!("bucket `{bucket}` does not exist")))
}

/// A streamed object: bytes go to a local temporary file until [`ObjectWriter::commit`]
/// uploads it under its final name.
struct GcsWriter {
    file: Option<io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    client: Client,
    bucket: String,
    prefix: String,
    bytes: u64,
}

impl GcsWriter {
    fn file(&mut self) -> io::Result<&mut io::BufWriter<std::fs::File>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the object was already committed"))
    }
}

impl Write for GcsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file()?.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file()?.flush()
    }
}

impl ObjectWriter for GcsWriter {
    fn commit(mut self: Box<Self>, key: &str) -> Result<u64, StorageError> {
        let object = format!("{}{key}", self.prefix);
        let location = format!("gs://{}/{object}", self.bucket);
        let file = self.file.take().ok_or_else(|| StorageError {
            op: "write",
            location: location.clone(),
            kind: StorageErrorKind::Other,
            message: "the object was already committed".into(),
        })?;
        file.into_inner()
            .map_err(|e| StorageError::io("write temporary file", self.tmp.display(), e.error()))?
            .sync_all()
            .map_err(|e| StorageError::io("write temporary file", self.tmp.display(), &e))?;
        let (client, bucket, tmp, size) = (
            self.client.clone(),
            self.bucket.clone(),
            self.tmp.clone(),
            self.bytes,
        );
        let loc = location.clone();
        block_on("write", &location, async move {
            let req = UploadObjectRequest {
                bucket: bucket.clone(),
                ..Default::default()
            };
            let (c, r, o, t) = (&client, &req, &object, &tmp);
            with_retry("write", &loc, || async move {
                // Reopened per attempt, so a retry streams the file from its start.
                let file = tokio::fs::File::open(t).await.map_err(|e| {
                    (
                        StorageErrorKind::Other,
                        format!("cannot reopen temporary file {}: {e}", t.display()),
                    )
                })?;
                let media = Media {
                    content_length: Some(size),
                    ..Media::new(o.clone())
                };
                c.upload_object(r, file, &UploadType::Simple(media))
                    .await
                    .map(|_| ())
                    .map_err(|e| classify(&e))
            })
            .await
            .map_err(|e| explain_missing(e, || format!("bucket `{bucket}` does not exist")))
        })?;
        Ok(self.bytes)
    }
}

impl Drop for GcsWriter {
    fn drop(&mut self) {
        // Committed or abandoned, the local copy is no longer needed.
        self.file.take();
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::retry::{scrub, status_kind, ATTEMPTS};
    use super::*;

    /// Outside an emulator a program must install how it signs in; without one, opening a
    /// bucket is refused with a message saying so (never an anonymous request to Google).
    #[test]
    fn without_a_sign_in_only_an_emulator_can_be_used() {
        let err = block_on(
            "open",
            "gs://bucket/p",
            make_client("gs://bucket/p".into(), Target::Google),
        )
        .err()
        .expect("refused");
        assert_eq!(err.kind, StorageErrorKind::PermissionDenied);
        assert!(
            err.message.contains("no sign-in installed"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("STORAGE_EMULATOR_HOST"),
            "{}",
            err.message
        );
    }

    #[test]
    fn scrub_blanks_tokens_and_secret_values() {
        let s = scrub("Authorization: Bearer ya29.a0AfH6SMBx-secret more");
        assert!(!s.contains("secret"), "{s}");
        assert!(s.contains("more"), "{s}");
        let s = scrub(r#"{"access_token":"abc.def","expires_in":3599}"#);
        assert!(!s.contains("abc.def"), "{s}");
        assert!(s.contains("expires_in"), "{s}");
        let s = scrub("token ya29.zzz failed; private_key=-----BEGIN-xyz, next");
        assert!(!s.contains("zzz") && !s.contains("xyz"), "{s}");
        assert!(s.contains("next"), "{s}");
        // Ordinary text is left alone.
        assert_eq!(scrub("HTTP 404: Not Found"), "HTTP 404: Not Found");
    }

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(status_kind(404), StorageErrorKind::NotFound);
        assert_eq!(status_kind(401), StorageErrorKind::PermissionDenied);
        assert_eq!(status_kind(403), StorageErrorKind::PermissionDenied);
        assert_eq!(status_kind(429), StorageErrorKind::Transient);
        assert_eq!(status_kind(503), StorageErrorKind::Transient);
        assert_eq!(status_kind(400), StorageErrorKind::Other);
    }

    #[test]
    fn bad_bucket_names_are_refused_before_any_request() {
        for bad in ["", "UPPER", "a", "sp ace"] {
            let e = match GcsStorage::open(&format!("{bad}/x")) {
                Err(e) => e,
                Ok(_) => panic!("`{bad}` accepted"),
            };
            assert_eq!(e.kind, StorageErrorKind::Other);
            assert!(e.to_string().contains("gs://"), "{e}");
        }
    }

    #[test]
    fn transient_failures_retry_then_surface_as_transient() {
        let rt = runtime("test", "test").unwrap();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), _> = rt.block_on(with_retry("read", "gs://b/k", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err((StorageErrorKind::Transient, "HTTP 503".to_string())) }
        }));
        let e = r.unwrap_err();
        assert_eq!(calls.load(Ordering::Relaxed), ATTEMPTS);
        assert_eq!(e.kind, StorageErrorKind::Transient);
        assert!(e.to_string().starts_with("read gs://b/k: HTTP 503"), "{e}");

        // A transient failure followed by success is invisible; a 404 is not retried.
        calls.store(0, Ordering::Relaxed);
        let r = rt.block_on(with_retry("read", "gs://b/k", || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if n == 0 {
                    Err((StorageErrorKind::Transient, "timed out".to_string()))
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(r.unwrap(), 1);
        calls.store(0, Ordering::Relaxed);
        let r: Result<(), _> = rt.block_on(with_retry("read", "gs://b/k", || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Err((StorageErrorKind::NotFound, "HTTP 404".to_string())) }
        }));
        assert_eq!(r.unwrap_err().kind, StorageErrorKind::NotFound);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    /// A token source for a local server that takes any token.
    #[derive(Debug)]
    struct AnyToken;

    #[async_trait::async_trait]
    impl token_source::TokenSource for AnyToken {
        async fn token(&self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            Ok("Bearer local".into())
        }
    }

    impl token_source::TokenSourceProvider for AnyToken {
        fn token_source(&self) -> std::sync::Arc<dyn token_source::TokenSource> {
            std::sync::Arc::new(AnyToken)
        }
    }

    /// A listing whose pages cycle through tokens (`a`, `b`, `a`, ...) ends with an error
    /// after the repeat instead of requesting pages for ever. The server is a local socket
    /// answering every request with the JSON API's object-list shape.
    #[test]
    fn a_listing_that_repeats_a_page_token_stops() {
        use std::io::{BufRead, BufReader, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("http://{}", listener.local_addr().unwrap());
        let requests = std::sync::Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let mut first = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if first.is_empty() {
                        first = line.clone();
                    }
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                counted.fetch_add(1, Ordering::Relaxed);
                let token = if first.contains("pageToken=a") {
                    "b"
                } else {
                    "a"
                };
                let body = format!(r#"{{"kind":"storage#objects","nextPageToken":"{token}"}}"#);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let s = GcsStorage::open_at("bkt", &host, Box::new(AnyToken)).unwrap();
        let e = s.list().unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Other);
        assert!(
            e.to_string()
                .starts_with("list gs://bkt/: the server gave page token `a` a second time"),
            "{e}"
        );
        // No token, `a`, `b`, then `a` again is seen: three requests.
        assert_eq!(requests.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn block_on_works_inside_another_runtime() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let v = outer.block_on(async { block_on("test", "here", async { Ok(7) }) });
        assert_eq!(v.unwrap(), 7);
    }
}
