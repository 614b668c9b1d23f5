//! scripts/fetch-datasets.sh against local git repositories standing in for the public ones:
//! only the files the loaders read are checked out (not the Scout traces beside them), they land
//! in the layout `$CHERRYPICK_DATA_DIR` expects, and a repository without them is an error.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository holding `files`, committed; returns its file:// URL and the commit.
fn repo(root: &Path, name: &str, files: &[(&str, &str)]) -> (String, String) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "data"]);
    // What GitHub allows: partial clones and fetching a commit by its id.
    git(&dir, &["config", "uploadpack.allowFilter", "true"]);
    git(&dir, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
    (
        format!("file://{}", dir.display()),
        git(&dir, &["rev-parse", "HEAD"]),
    )
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-fetch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const REPORT: &str = r#"{"completed": true, "elapsed_time": "301.5", "framework": "spark"}"#;
const CP_HEADER: &str = "\"exp_name\",\"exp_id\",\"config_id\",\"num_machines\",\"time\",\"num\",\"machine_id\",\"disk_id\",\"disk_name\",\"disk_count\",\"disk_speed\",\"disk_cost\",\"disk_size\",\"vm_id\",\"vm_name\",\"ram\",\"cpu_count\",\"vm_speed\",\"vm_cost\"\n";

fn script() -> Command {
    let mut c = Command::new("bash");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-datasets.sh"));
    c
}

#[test]
fn fetches_only_what_the_loaders_read_into_the_expected_layout() {
    let root = temp("ok");
    let (scout, scout_rev) = repo(
        &root,
        "scout",
        &[
            ("LICENSE", "MIT License\n"),
            (
                "dataset/osr_multiple_nodes/4_c4.large_lr_spark_huge_1/report.json",
                REPORT,
            ),
            (
                "dataset/osr_multiple_nodes/4_c4.large_lr_spark_huge_1/sar_node1.csv",
                "big trace\n",
            ),
            (
                "dataset/osr_multiple_nodes/6_m4.xlarge_lr_spark_huge_1/report.json",
                REPORT,
            ),
            ("dataset/osr_single_node/x/report.json", REPORT),
        ],
    );
    let row = "\"tpch\",\"16\",\"1\",\"10\",\"274.0\",\"1\",\"1\",\"1\",\"ebs\",\"2\",\"slow\",\"0.12\",\"500.0\",\"12\",\"c4.2xlarge\",\"15\",\"8\",\"fast\",\"0.419\"\n";
    let cp_files: Vec<(String, String)> = ["kmeans", "spark", "terasort", "tpcds", "tpch"]
        .iter()
        .map(|w| {
            (
                format!("data/cherrypick/CP_{w}.csv"),
                format!("{CP_HEADER}{row}"),
            )
        })
        .chain([("data/other/huge.bin".to_string(), "x".repeat(1000))])
        .collect();
    let cp_refs: Vec<(&str, &str)> = cp_files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (cherrypick, cherrypick_rev) = repo(&root, "lynceus", &cp_refs);

    let into = root.join("datasets");
    let out = script()
        .arg("--into")
        .arg(&into)
        .env("SCOUT_REPO", &scout)
        .env("SCOUT_REV", &scout_rev)
        .env("CHERRYPICK_REPO", &cherrypick)
        .env("CHERRYPICK_REV", &cherrypick_rev)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let runs = into.join("scout/dataset/osr_multiple_nodes");
    assert!(
        runs.join("4_c4.large_lr_spark_huge_1/report.json")
            .is_file(),
        "{text}"
    );
    assert!(runs
        .join("6_m4.xlarge_lr_spark_huge_1/report.json")
        .is_file());
    assert!(into.join("scout/LICENSE").is_file());
    assert!(
        !runs
            .join("4_c4.large_lr_spark_huge_1/sar_node1.csv")
            .exists(),
        "the traces beside the reports are not fetched"
    );
    assert!(!into.join("scout/dataset/osr_single_node").exists());
    for w in ["kmeans", "spark", "terasort", "tpcds", "tpch"] {
        assert!(into.join(format!("cherrypick/CP_{w}.csv")).is_file(), "{w}");
    }
    assert!(!into.join("cherrypick/huge.bin").exists());
    assert!(text.contains("scout: 2 runs"), "{text}");
    // No checkout folders are left behind.
    let left: Vec<String> = std::fs::read_dir(&into)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_repository_without_the_expected_files_is_an_error() {
    let root = temp("bad");
    let (scout, rev) = repo(&root, "scout", &[("README.md", "moved elsewhere\n")]);
    let out = script()
        .args(["scout", "--into"])
        .arg(root.join("datasets"))
        .env("SCOUT_REPO", &scout)
        .env("SCOUT_REV", &rev)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("scout: no LICENSE"), "{err}");
    let out = script().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&root);
}
