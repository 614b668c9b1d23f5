//! Checks HTTP requests and responses against Google's discovery documents (the fixtures in
//! `fixtures/discovery/`): the method and path name a method of the API, every query parameter
//! is one that method (or every method) takes, with an allowed value, and every JSON body field
//! is in the schema with the right type and enum value; a request body has the fields the
//! schema's descriptions mark "Required.". An unknown field is an error.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// One API's discovery document.
pub struct Discovery {
    doc: Value,
    /// The path every method's `path` is relative to (`/` + servicePath).
    base: String,
}

/// A method the document describes.
pub struct Method<'a> {
    pub id: &'a str,
    spec: &'a Value,
}

impl Discovery {
    pub fn load(file: &str) -> Discovery {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/discovery")
            .join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        let base = format!("/{}", doc["servicePath"].as_str().unwrap_or(""));
        Discovery { doc, base }
    }

    fn methods(&self) -> Vec<Method<'_>> {
        fn walk<'a>(resources: &'a Value, out: &mut Vec<Method<'a>>) {
            let Some(map) = resources.as_object() else {
                return;
            };
            for r in map.values() {
                if let Some(ms) = r["methods"].as_object() {
                    for m in ms.values() {
                        out.push(Method {
                            id: m["id"].as_str().unwrap_or(""),
                            spec: m,
                        });
                    }
                }
                walk(&r["resources"], out);
            }
        }
        let mut out = Vec::new();
        walk(&self.doc["resources"], &mut out);
        out
    }

    /// The method `http_method path` calls, with its path parameters; media uploads match the
    /// method's upload path.
    pub fn method(&self, http_method: &str, path: &str) -> Result<(Method<'_>, bool), String> {
        for m in self.methods() {
            if m.spec["httpMethod"].as_str() != Some(http_method) {
                continue;
            }
            // flatPath spells every variable out (`path` may be `v1/{+name}`, which fits any path).
            let template = m.spec["flatPath"]
                .as_str()
                .or(m.spec["path"].as_str())
                .unwrap_or("");
            let full = format!("{}{template}", self.base);
            if matches_template(&full, path) {
                return Ok((m, false));
            }
            if let Some(upload) = m.spec.pointer("/mediaUpload/protocols/simple/path") {
                if matches_template(upload.as_str().unwrap_or(""), path) {
                    return Ok((m, true));
                }
            }
        }
        Err(format!(
            "{http_method} {path}: no method of {} has this path",
            self.name()
        ))
    }

    fn name(&self) -> &str {
        self.doc["id"].as_str().unwrap_or("the API")
    }

    /// Checks a request: method and path, query parameters, and (for JSON) the body.
    pub fn check_request(
        &self,
        http_method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: &Value,
    ) -> Result<String, String> {
        let (m, upload) = self.method(http_method, path)?;
        let at = format!("{http_method} {path} ({})", m.id);
        for (k, v) in query {
            let p = m.spec["parameters"]
                .get(k)
                .or_else(|| self.doc["parameters"].get(k))
                .ok_or_else(|| format!("{at}: unknown query parameter `{k}`"))?;
            if p["location"].as_str() == Some("path") {
                return Err(format!("{at}: `{k}` belongs in the path, not the query"));
            }
            check_scalar(
                p,
                &Value::String(v.clone()),
                &format!("{at}: query `{k}`"),
                true,
            )?;
        }
        if let Some(params) = m.spec["parameters"].as_object() {
            for (k, p) in params {
                let required = p["required"].as_bool() == Some(true);
                if required && p["location"].as_str() == Some("query") && !query.contains_key(k) {
                    return Err(format!("{at}: required query parameter `{k}` is missing"));
                }
            }
        }
        if upload {
            if query.get("uploadType").map(String::as_str) != Some("media") {
                return Err(format!("{at}: a simple upload needs uploadType=media"));
            }
            return Ok(m.id.to_string());
        }
        match m.spec["request"]["$ref"].as_str() {
            Some(schema) => {
                self.check_value(body, &serde_json::json!({"$ref": schema}), &at, true)?
            }
            None if !body.is_null() => return Err(format!("{at}: takes no body, got {body}")),
            None => {}
        }
        Ok(m.id.to_string())
    }

    /// Checks a JSON response of method `id` (2xx: its response schema; else Google's error
    /// shape).
    pub fn check_response(&self, id: &str, status: u16, body: &Value) -> Result<(), String> {
        let at = format!("response {status} of {id}");
        if !(200..300).contains(&status) {
            let ok = body["error"]["message"].is_string()
                && body["error"].as_object().is_some_and(|e| {
                    e.keys().all(|k| {
                        ["code", "message", "status", "errors", "details"].contains(&k.as_str())
                    })
                });
            return if ok {
                Ok(())
            } else {
                Err(format!("{at}: not Google's error shape: {body}"))
            };
        }
        let m = self
            .methods()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| format!("no method {id}"))?;
        match m.spec["response"]["$ref"].as_str() {
            Some(schema) => {
                self.check_value(body, &serde_json::json!({"$ref": schema}), &at, false)
            }
            None => Ok(()),
        }
    }

    /// Checks `v` against `schema`; `request` also checks the fields marked "Required.".
    pub fn check_value(
        &self,
        v: &Value,
        schema: &Value,
        at: &str,
        request: bool,
    ) -> Result<(), String> {
        if let Some(r) = schema["$ref"].as_str() {
            let s = &self.doc["schemas"][r];
            if s.is_null() {
                return Err(format!("{at}: the document has no schema {r}"));
            }
            return self.check_value(v, s, at, request);
        }
        match schema["type"].as_str().unwrap_or("any") {
            "object" => {
                let obj = v
                    .as_object()
                    .ok_or_else(|| format!("{at}: expected an object, got {v}"))?;
                let props = schema["properties"].as_object();
                for (k, x) in obj {
                    let here = format!("{at}.{k}");
                    match props.and_then(|p| p.get(k)) {
                        Some(s) => self.check_value(x, s, &here, request)?,
                        None => match schema.get("additionalProperties") {
                            Some(s) if s.is_object() => self.check_value(x, s, &here, request)?,
                            _ => return Err(format!("{here}: unknown field")),
                        },
                    }
                }
                if request {
                    for (k, s) in props.into_iter().flatten() {
                        let required = s["description"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("Required."));
                        if required && !obj.contains_key(k) {
                            return Err(format!("{at}: required field `{k}` is missing"));
                        }
                    }
                }
                Ok(())
            }
            "array" => {
                let items = v
                    .as_array()
                    .ok_or_else(|| format!("{at}: expected an array, got {v}"))?;
                for (i, x) in items.iter().enumerate() {
                    self.check_value(x, &schema["items"], &format!("{at}[{i}]"), request)?;
                }
                Ok(())
            }
            "any" => Ok(()),
            _ => check_scalar(schema, v, at, false),
        }
    }
}

/// A string, integer, number or boolean (`from_text`: the value came as query text).
fn check_scalar(schema: &Value, v: &Value, at: &str, from_text: bool) -> Result<(), String> {
    let ty = schema["type"].as_str().unwrap_or("string");
    let format = schema["format"].as_str().unwrap_or("");
    let text = v.as_str();
    let ok = match ty {
        // 64-bit integers travel as strings in Google's JSON; numbers are accepted too.
        "string" if format.ends_with("int64") => {
            v.is_i64() || v.is_u64() || text.is_some_and(|t| t.parse::<i64>().is_ok())
        }
        "string" => text.is_some(),
        "integer" => {
            v.is_i64()
                || v.is_u64()
                || (from_text && text.is_some_and(|t| t.parse::<i64>().is_ok()))
        }
        "number" => v.is_number() || (from_text && text.is_some_and(|t| t.parse::<f64>().is_ok())),
        "boolean" => v.is_boolean() || (from_text && matches!(text, Some("true" | "false"))),
        other => return Err(format!("{at}: schema type `{other}` not handled")),
    };
    if !ok {
        return Err(format!("{at}: expected {ty} ({format}), got {v}"));
    }
    if let (Some(allowed), Some(t)) = (schema["enum"].as_array(), text) {
        if !allowed.iter().any(|a| a.as_str() == Some(t)) {
            return Err(format!("{at}: `{t}` is not one of {allowed:?}"));
        }
    }
    Ok(())
}

/// Whether `path` fits `template`: `{name}` is one path segment without `:` (Google's resource
/// ids have none; `:verb` follows them), `{+name}` any text.
fn matches_template(template: &str, path: &str) -> bool {
    let Some(open) = template.find('{') else {
        return template == path;
    };
    if !path.starts_with(&template[..open]) {
        return false;
    }
    let close = match template[open..].find('}') {
        Some(c) => open + c,
        None => return false,
    };
    let reserved = template[open + 1..].starts_with('+');
    let rest_t = &template[close + 1..];
    let rest_p = &path[open..];
    // Try every split point for the variable's value (non-empty).
    (1..=rest_p.len()).any(|n| {
        let value = &rest_p[..n];
        rest_p.is_char_boundary(n)
            && (reserved || !value.contains(['/', ':']))
            && matches_template(rest_t, &rest_p[n..])
    })
}

#[test]
fn the_checker_finds_unknown_fields_bad_enums_and_missing_required_fields() {
    let d = Discovery::load("dataproc.v1.json");
    let path = "/v1/projects/p/regions/r/clusters";
    let q = BTreeMap::new();
    let good = serde_json::json!({"projectId": "p", "clusterName": "c", "config": {"workerConfig": {"numInstances": 2}}});
    assert_eq!(
        d.check_request("POST", path, &q, &good).unwrap(),
        "dataproc.projects.regions.clusters.create"
    );
    let typo = serde_json::json!({"projectId": "p", "clusterName": "c", "config": {"workerConfig": {"numInstance": 2}}});
    let err = d.check_request("POST", path, &q, &typo).unwrap_err();
    assert!(err.contains("numInstance: unknown field"), "{err}");
    let missing = serde_json::json!({"projectId": "p"});
    let err = d.check_request("POST", path, &q, &missing).unwrap_err();
    assert!(err.contains("clusterName"), "{err}");
    let wrong_type = serde_json::json!({"projectId": "p", "clusterName": "c", "config": {"workerConfig": {"numInstances": "two"}}});
    assert!(d.check_request("POST", path, &q, &wrong_type).is_err());
    let bad_query = BTreeMap::from([("requestID".to_string(), "x".to_string())]);
    assert!(d
        .check_request("POST", path, &bad_query, &good)
        .unwrap_err()
        .contains("unknown query parameter"));
    assert!(d
        .check_request("PATCH", "/v1/nowhere", &q, &Value::Null)
        .is_err());
    let bad_state = serde_json::json!({"clusterName": "c", "status": {"state": "SLEEPING"}});
    assert!(d
        .check_response("dataproc.projects.regions.clusters.get", 200, &bad_state)
        .unwrap_err()
        .contains("SLEEPING"));
    assert!(matches_template(
        "/v1/projects/{projectId}/regions/{region}/jobs/{jobId}:cancel",
        "/v1/projects/p/regions/r/jobs/j-1:cancel"
    ));
    assert!(!matches_template(
        "/v1/projects/{projectId}/regions/{region}/jobs/{jobId}",
        "/v1/projects/p/regions/r/jobs/j-1:cancel"
    ));
}
