//! For tests that need a service started outside them (a Spark cluster, the Cloud Storage
//! emulator): the test runs when the service's variable is set; otherwise it is skipped with a
//! message locally, and FAILS under CI (`CI=true` or `CI=1`), so a CI run can never pass by
//! skipping. Included with `#[path]` by every such test.

#![allow(dead_code)]

/// What to do about a service.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Run(String),
    Skip,
    Fail(String),
}

/// Decides from the service variable's value and `CI`'s.
pub fn decide(value: Option<&str>, ci: Option<&str>, var: &str, hint: &str) -> Decision {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => Decision::Run(v.to_string()),
        None if matches!(ci, Some("true") | Some("1")) => {
            Decision::Fail(format!("CI is set but {var} is not: {hint}"))
        }
        None => Decision::Skip,
    }
}

/// The service's variable when it is set; `None` (the caller returns, skipping) when it is not,
/// outside CI. Under CI a missing service fails the test.
pub fn service(var: &str, hint: &str) -> Option<String> {
    let value = std::env::var(var).ok();
    let ci = std::env::var("CI").ok();
    match decide(value.as_deref(), ci.as_deref(), var, hint) {
        Decision::Run(v) => Some(v),
        Decision::Skip => {
            eprintln!("skipped: {var} is not set ({hint})");
            None
        }
        Decision::Fail(message) => panic!("{message}"),
    }
}

/// Checks the rule itself (runs in each test binary that includes this file; it is cheap).
#[test]
fn a_missing_service_skips_locally_and_fails_under_ci() {
    let d = |v, ci| decide(v, ci, "X_URL", "start it");
    assert_eq!(
        d(Some("spark://h:7077"), Some("true")),
        Decision::Run("spark://h:7077".into())
    );
    assert_eq!(d(None, None), Decision::Skip);
    assert_eq!(d(Some("  "), Some("false")), Decision::Skip);
    assert!(matches!(d(None, Some("true")), Decision::Fail(m) if m.contains("X_URL")));
    assert!(matches!(d(Some(""), Some("1")), Decision::Fail(_)));
}
