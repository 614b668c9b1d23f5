//! A local fake of the Dataproc v1, Cloud Storage JSON and OAuth token HTTP APIs (an axum server
//! on 127.0.0.1:0) that records every request; shared by workload/tests/dataproc_fake.rs (the
//! runner) and tests/search_dataproc.rs (the `cherrypick search` command line).
//! Project `test-proj`, region `europe-west1`; clusters become RUNNING on their second GET; jobs end
//! on their second poll as [`JobMode`] says. Every request is recorded with the response it got,
//! so tests can check both against Google's discovery documents (`support/discovery.rs`).
#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub const TOKEN: &str = "ya29.fake-secret-token";

/// Writes application default credentials (user credentials) at `path` whose token endpoint is
/// the fake's at `base`; its secrets are the ones tests check never leak.
pub fn write_credentials(path: &std::path::Path, base: &str) {
    std::fs::write(
        path,
        json!({
            "type": "authorized_user",
            "client_id": "client",
            "client_secret": "client-secret",
            "refresh_token": "refresh-secret",
            "token_uri": format!("{base}/token"),
        })
        .to_string(),
    )
    .unwrap();
}

#[derive(Clone, Copy, PartialEq)]
pub enum JobMode {
    Done,
    Error,
    Hang,
}

#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
    /// The `User-Agent` header (which client sent the request).
    pub user_agent: Option<String>,
    pub body: Value,
    /// The answer: its status and its body as JSON (`Null` when it is not JSON).
    pub status: u16,
    pub response: Value,
}

pub struct Fake {
    pub mode: JobMode,
    pub requests: Vec<Req>,
    /// Cluster name -> (state, GETs so far, labels).
    pub clusters: BTreeMap<String, (String, usize, Value)>,
    pub objects: BTreeMap<String, Vec<u8>>,
    /// `bucket/name` -> (generation, content type) of each object in [`Fake::objects`].
    pub object_meta: BTreeMap<String, (u64, String)>,
    /// Answer cluster creation with this status instead.
    pub create_status: Option<u16>,
    /// Answer cluster deletion with this status instead (the cluster stays).
    pub delete_status: Option<u16>,
    /// The result line a job that ends DONE prints instead of its usual one.
    pub driver_result: Option<String>,
    /// Clusters go to state ERROR with this `status.detail` instead of RUNNING.
    pub cluster_error: Option<String>,
}

pub type Shared = Arc<Mutex<Fake>>;

fn json_response(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn handle(
    State(fake): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = answer(&fake, method, uri, headers, body);
    let (parts, bytes) = response.into_parts();
    let bytes = axum::body::to_bytes(bytes, usize::MAX)
        .await
        .unwrap_or_default();
    if let Some(last) = fake.lock().unwrap().requests.last_mut() {
        last.status = parts.status.as_u16();
        last.response = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn answer(fake: &Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut f = fake.lock().unwrap();
    f.requests.push(Req {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        auth: headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .map(String::from),
        user_agent: headers
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .map(String::from),
        body: body_json.clone(),
        status: 0,
        response: Value::Null,
    });
    if path == "/token" {
        return json_response(
            StatusCode::OK,
            json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}),
        );
    }
    if path != "/token"
        && headers.get("authorization").and_then(|h| h.to_str().ok())
            != Some(&format!("Bearer {TOKEN}"))
    {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "no token"}}),
        );
    }
    let q: BTreeMap<String, String> = url_pairs(&query);
    // Cloud Storage: simple media uploads (`uploadType=media`, the name in the query, the body
    // the object's bytes), listing by prefix, and objects.get (metadata, or the bytes with
    // `alt=media`), answering with object resources as Google does.
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    if let Some(bucket_rest) = path.strip_prefix("/upload/storage/v1/b/") {
        let bucket = bucket_rest.trim_end_matches("/o").to_string();
        if method != Method::POST || q.get("uploadType").map(String::as_str) != Some("media") {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": 400, "message": "the fake takes simple media uploads only"}}),
            );
        }
        let Some(name) = q.get("name").filter(|n| !n.is_empty()).cloned() else {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"error": {"code": 400, "message": "Required parameter: name"}}),
            );
        };
        let content_type = headers
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let key = format!("{bucket}/{name}");
        let generation = 1_764_000_000_000_000 + f.requests.len() as u64;
        f.objects.insert(key.clone(), body.to_vec());
        f.object_meta.insert(key, (generation, content_type));
        let resource = object_resource(&f, &host, &bucket, &name);
        return json_response(StatusCode::OK, resource);
    }
    if let Some(rest) = path.strip_prefix("/storage/v1/b/") {
        let (bucket, obj) = rest.split_once("/o").unwrap();
        if obj.is_empty() {
            let prefix = q.get("prefix").cloned().unwrap_or_default();
            let items: Vec<Value> = f
                .objects
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{bucket}/")))
                .filter(|k| k.starts_with(&prefix))
                .map(|k| object_resource(&f, &host, bucket, k))
                .collect();
            let mut list = json!({"kind": "storage#objects"});
            if !items.is_empty() {
                list["items"] = json!(items);
            }
            return json_response(StatusCode::OK, list);
        }
        let name = percent_decode(obj.trim_start_matches('/'));
        return match f.objects.get(&format!("{bucket}/{name}")) {
            Some(b) if q.get("alt").map(String::as_str) == Some("media") => {
                (StatusCode::OK, b.clone()).into_response()
            }
            Some(_) => json_response(StatusCode::OK, object_resource(&f, &host, bucket, &name)),
            None => json_response(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": 404, "message": "No such object"}}),
            ),
        };
    }
    // Dataproc.
    let Some(rest) = path.strip_prefix("/v1/projects/test-proj/regions/europe-west1/") else {
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("unknown path {path}")}}),
        );
    };
    match (method.as_str(), rest) {
        ("POST", "clusters") => {
            if let Some(s) = f.create_status {
                return json_response(
                    StatusCode::from_u16(s).unwrap(),
                    json!({"error": {"message": "quota exceeded"}}),
                );
            }
            let name = body_json["clusterName"].as_str().unwrap().to_string();
            f.clusters.insert(
                name.clone(),
                ("CREATING".into(), 0, body_json["labels"].clone()),
            );
            json_response(
                StatusCode::OK,
                json!({"name": format!("projects/test-proj/regions/europe-west1/operations/op-{name}"), "done": false}),
            )
        }
        ("GET", "clusters") => {
            // Dataproc's list filter, in the one form the runner sends: `labels.K = V`.
            let wanted = q.get("filter").map(|flt| {
                let (k, v) = flt.split_once('=').unwrap_or((flt, ""));
                let key = k.trim().trim_start_matches("labels.").to_string();
                (key, v.trim().to_string())
            });
            let list: Vec<Value> = f
                .clusters
                .iter()
                .filter(|(_, (_, _, l))| match &wanted {
                    Some((k, v)) => l.get(k).and_then(Value::as_str) == Some(v.as_str()),
                    None => true,
                })
                .map(
                    |(n, (s, _, l))| json!({"clusterName": n, "status": {"state": s}, "labels": l}),
                )
                .collect();
            json_response(StatusCode::OK, json!({"clusters": list}))
        }
        ("GET", r) if r.starts_with("clusters/") => {
            let name = &r["clusters/".len()..];
            let error = f.cluster_error.clone();
            let Some(c) = f.clusters.get_mut(name) else {
                return json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "no cluster"}}),
                );
            };
            c.1 += 1;
            if let (Some(detail), "CREATING") = (error, c.0.as_str()) {
                return json_response(
                    StatusCode::OK,
                    json!({"clusterName": name, "status": {"state": "ERROR", "detail": detail}}),
                );
            }
            if c.1 >= 2 && c.0 == "CREATING" {
                c.0 = "RUNNING".into();
            }
            json_response(
                StatusCode::OK,
                json!({"clusterName": name, "status": {"state": c.0}}),
            )
        }
        ("DELETE", r) if r.starts_with("clusters/") => {
            if let Some(s) = f.delete_status {
                return json_response(
                    StatusCode::from_u16(s).unwrap(),
                    json!({"error": {"message": "backend error"}}),
                );
            }
            let name = &r["clusters/".len()..];
            match f.clusters.get_mut(name) {
                Some(c) => {
                    c.0 = "DELETING".into();
                    json_response(StatusCode::OK, json!({"name": "op-delete", "done": false}))
                }
                None => json_response(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"message": "no cluster"}}),
                ),
            }
        }
        ("POST", "jobs:submit") => {
            let id = body_json["job"]["reference"]["jobId"]
                .as_str()
                .unwrap()
                .to_string();
            json_response(
                StatusCode::OK,
                json!({"reference": {"jobId": id}, "status": {"state": "PENDING"}}),
            )
        }
        ("POST", r) if r.ends_with(":cancel") => json_response(
            StatusCode::OK,
            json!({"status": {"state": "CANCEL_PENDING"}}),
        ),
        ("GET", r) if r.starts_with("jobs/") => {
            let id = &r["jobs/".len()..];
            let polls = f.requests.iter().filter(|q| q.path == path).count();
            let uri =
                format!("gs://stage/google-cloud-dataproc-metainfo/u1/jobs/{id}/driveroutput");
            let state = match (f.mode, polls) {
                (_, 1) | (JobMode::Hang, _) => "RUNNING",
                (JobMode::Done, _) => "DONE",
                (JobMode::Error, _) => "ERROR",
            };
            if state != "RUNNING" {
                let key = format!(
                    "stage/google-cloud-dataproc-metainfo/u1/jobs/{id}/driveroutput.000000000"
                );
                let out = match (f.mode, &f.driver_result) {
                    (JobMode::Done, Some(line)) => format!("25/11/25 INFO starting\n{line}\n"),
                    (JobMode::Done, None) => "25/11/25 INFO starting\nCHERRYPICK_RESULT {\"runtime_s\": 42.5, \"app_id\": \"application_1\", \"spark_tasks\": 6}\n".to_string(),
                    _ => "Traceback (most recent call last):\nRuntimeError: workload preprocess ... exited with 2: no images found\n".to_string(),
                };
                f.objects.insert(key.clone(), out.as_bytes().to_vec());
                let generation = 1_764_000_000_000_000 + f.requests.len() as u64;
                f.object_meta
                    .insert(key, (generation, "text/plain; charset=utf-8".into()));
            }
            let details = if state == "ERROR" {
                "Job failed with message [RuntimeError]"
            } else {
                ""
            };
            json_response(
                StatusCode::OK,
                json!({"reference": {"jobId": id}, "status": {"state": state, "details": details}, "driverOutputResourceUri": uri}),
            )
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": {"message": format!("unknown {method} {path}")}}),
        ),
    }
}

/// The object resource Cloud Storage returns for `bucket/name` (fields as in Google's `Object`
/// schema: 64-bit numbers as strings, CRC32C in base64, RFC 3339 times).
fn object_resource(f: &Fake, host: &str, bucket: &str, name: &str) -> Value {
    let key = format!("{bucket}/{name}");
    let data = f.objects.get(&key).cloned().unwrap_or_default();
    let (generation, content_type) = f
        .object_meta
        .get(&key)
        .cloned()
        .unwrap_or((1_764_000_000_000_000, "application/octet-stream".into()));
    let escaped = percent_encode(name);
    let time = "2025-11-25T10:00:00.000Z";
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/{generation}"),
        "selfLink": format!("http://{host}/storage/v1/b/{bucket}/o/{escaped}"),
        "mediaLink": format!("http://{host}/download/storage/v1/b/{bucket}/o/{escaped}?generation={generation}&alt=media"),
        "name": name,
        "bucket": bucket,
        "generation": generation.to_string(),
        "metageneration": "1",
        "contentType": content_type,
        "storageClass": "STANDARD",
        "size": data.len().to_string(),
        "crc32c": base64(&crc32c(&data).to_be_bytes()),
        "etag": base64(&generation.to_be_bytes()),
        "timeCreated": time,
        "updated": time,
        "timeStorageClassUpdated": time,
        "timeFinalized": time,
    })
}

/// CRC32C (Castagnoli), the checksum Cloud Storage reports.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn url_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(&v.replace('+', " "))))
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Starts the fake on the current tokio runtime; returns its state and base URL.
pub async fn serve(mode: JobMode) -> (Shared, String) {
    let fake = Arc::new(Mutex::new(Fake {
        mode,
        requests: Vec::new(),
        clusters: BTreeMap::new(),
        objects: BTreeMap::new(),
        object_meta: BTreeMap::new(),
        create_status: None,
        delete_status: None,
        driver_result: None,
        cluster_error: None,
    }));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (fake, base)
}

#[test]
fn object_checksums_are_googles_crc32c_in_base64() {
    assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
    assert_eq!(base64(&0u32.to_be_bytes()), "AAAAAA==");
}
