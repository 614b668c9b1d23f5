//! End to end on a real Spark standalone cluster: a 3-probe `cherrypick search --backend spark`
//! over a small catalogue (executors x partitions), each probe a spark-submit of the PySpark driver that
//! runs `cherrypick workload preprocess --part I/N` in its tasks; then the journal is checked.
//!
//! Needs a cluster: `.ci/start-spark.sh 2 && source out/spark/env` (CI does this). Without
//! SPARK_MASTER_URL the test says so and passes without running, except under CI, where it fails.

use launch::spacefile::{load, BackendKind, LoadOptions};
use optimizer::journal::Journal;
use optimizer::Outcome;

#[path = "support/services.rs"]
mod services;

const SPARK_HINT: &str = "start a cluster with .ci/start-spark.sh 2 and `source out/spark/env`";

#[test]
fn a_three_probe_search_on_a_spark_cluster_fills_the_journal() {
    if services::service("SPARK_MASTER_URL", SPARK_HINT).is_none() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_cherrypick");
    let dir = std::env::temp_dir().join(format!("cp-spark-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Run the read-speed grid too once the binary has it.
    let read_speed = std::process::Command::new(bin)
        .args(["workload", "read-speed", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    let tasks = if read_speed {
        r#"["preprocess", "read-speed"]"#
    } else {
        r#"["preprocess"]"#
    };
    let space = dir.join("space.toml");
    std::fs::write(
        &space,
        format!(
            r#"
[catalogue]
count = "executors"
count_unit = "vcpu"
[[catalogue.machine]]
name = "local-core"
vcpus = 1
memory_gib = 2
price_per_hour = 0.05
[catalogue.dimensions]
executors = [1, 2]
partitions = [2, 4]
[workload]
dataset = "flowers"
tasks = {tasks}
[workload.generate]
images = 40
seed = 5
[workload.params]
batch_sizes = "4,8"
batch_numbers = "2"
"#
        ),
    )
    .unwrap();
    // The search itself goes through the command line, as a user runs it.
    let journal_path = dir.join("runs.jsonl");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(bin)
        .args([
            "search",
            "--backend",
            "spark",
            "--strategy",
            "grid",
            "--budget",
            "3",
        ])
        .args(["--probe-timeout", "240", "--keep-output", "--space"])
        .arg(&space)
        .arg("--journal")
        .arg(&journal_path)
        .env("CHERRYPICK_BINARY", bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "search failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "3 probes in {:.1} s\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert!(stdout.contains("best: "), "{stdout}");
    let spec = load(
        &space,
        &LoadOptions {
            backend: BackendKind::Spark,
            prices: None,
        },
    )
    .unwrap();

    // Several probes at once only while they fit the cluster's free cores: the widest
    // configuration takes 2 executor cores and the CI cluster has 4.
    let parallel = |n: &str, journal: &str| {
        std::process::Command::new(bin)
            .args(["search", "--backend", "spark", "--strategy", "grid"])
            .args(["--budget", "2", "--parallel", n, "--probe-timeout", "240"])
            .arg("--space")
            .arg(&space)
            .arg("--journal")
            .arg(dir.join(journal))
            .env("CHERRYPICK_BINARY", bin)
            .output()
            .unwrap()
    };
    let free = spark_free_cores();
    if let Some(free) = free.filter(|&f| f >= 4) {
        let too_many = (free / 2 + 1).to_string();
        let refused = parallel(&too_many, "refused.jsonl");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{err}");
        assert!(err.contains("probes sharing executors"), "{err}");
        assert!(!dir.join("refused.jsonl").exists());
        let two = parallel("2", "two.jsonl");
        let text = String::from_utf8_lossy(&two.stdout);
        assert!(
            two.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&two.stderr)
        );
        let j2 = Journal::read(&dir.join("two.jsonl")).unwrap();
        assert_eq!((j2.records.len(), j2.launches.len()), (2, 2), "{text}");
    } else {
        eprintln!("skipping the --parallel checks: the cluster has {free:?} free cores, not 4");
    }

    let j = Journal::read(&journal_path).unwrap();
    assert_eq!(j.header.strategy, "grid");
    assert_eq!(j.header.options["backend"], "spark");
    assert_eq!(j.records.len(), 3, "{stdout}");
    for r in &j.records {
        let log = r
            .log
            .as_ref()
            .expect("each probe keeps its spark-submit log");
        let Outcome::Completed {
            runtime_s,
            cost_usd,
            metrics,
        } = &r.outcome
        else {
            panic!(
                "probe {} ({}) did not complete: {:?}\nstderr tail:\n{}",
                r.index, r.config, r.outcome, log.stderr
            );
        };
        eprintln!(
            "probe {} {}: runtime {runtime_s:.2} s (wall {:.1} s), {:?}",
            r.index, r.config, metrics["wall_s"], metrics
        );
        let id = spec.space.find(&r.config).unwrap();
        let info = &spec.configs[id];
        assert!(
            *runtime_s > 0.0 && *runtime_s < metrics["wall_s"],
            "the driver's timing is inside the submission"
        );
        assert!((cost_usd - info.price_per_hour * runtime_s / 3600.0).abs() < 1e-12);
        let parts = info.params["partitions"].to_string();
        assert_eq!(metrics["partitions"].to_string(), parts);
        // Spark's REST API saw one task per partition for preprocessing (plus read-speed tasks).
        let spark = |key: &str| -> f64 {
            *metrics.get(key).unwrap_or_else(|| {
                panic!(
                    "probe {}: no `{key}` from Spark's REST API; stderr tail:\n{}",
                    r.index, log.stderr
                )
            })
        };
        assert!(spark("spark_tasks") >= metrics["partitions"], "{metrics:?}");
        assert_eq!(spark("spark_failed_tasks"), 0.0);
        assert!(spark("spark_executors") >= 1.0);
        let command = log.command.as_deref().unwrap();
        let executors = info.params["executors"].to_string();
        assert!(
            command.contains(&format!(
                "--total-executor-cores {executors} --executor-cores 1"
            )),
            "{command}"
        );
        assert!(
            command.contains(&format!("spark.default.parallelism={parts}")),
            "{command}"
        );
        assert!(log.stdout.contains("CHERRYPICK_RESULT"));
    }
    // Each probe wrote one shard per partition, 40 records in all.
    let mut probe_dirs: Vec<_> = std::fs::read_dir(dir.join("runs.scratch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    probe_dirs.sort();
    assert_eq!(probe_dirs.len(), 3);
    for (p, r) in probe_dirs.iter().zip(&j.records) {
        let names: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tfrec"))
            .collect();
        let id = spec.space.find(&r.config).unwrap();
        assert_eq!(
            names.len().to_string(),
            spec.configs[id].params["partitions"].to_string(),
            "{names:?}"
        );
        let records: usize = names
            .iter()
            .map(|n| {
                n.trim_end_matches(".tfrec")
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            })
            .sum();
        assert_eq!(records, 40, "{names:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Free cores of the Spark cluster, from the master's web UI (`SPARK_MASTER_WEBUI_URL`).
fn spark_free_cores() -> Option<usize> {
    let base = std::env::var("SPARK_MASTER_WEBUI_URL").ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let v: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("{}/json/", base.trim_end_matches('/')))
            .await
            .ok()?
            .json()
            .await
            .ok()
    })?;
    let cores = v.get("cores")?.as_u64()?;
    let used = v.get("coresused")?.as_u64()?;
    Some(cores.saturating_sub(used) as usize)
}
