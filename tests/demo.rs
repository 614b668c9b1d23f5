//! `cherrypick demo` end to end in a temporary cache: it generates its dataset, runs a bo search
//! with the local backend over the built-in catalogue, journals every probe and reports a choice
//! that is the cheapest configuration it saw; a second run reuses the dataset.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cherrypick");

#[test]
fn demo_runs_a_local_search_and_reports_its_choice() {
    let cache = std::env::temp_dir().join(format!("cp-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let demo = || {
        Command::new(BIN)
            .args(["demo", "--images", "40", "--budget", "8", "--cache"])
            .arg(&cache)
            .output()
            .unwrap()
    };
    let out = demo();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("generated 40 synthetic images"), "{text}");
    // Every probe of the table is in the journal, and all of them completed.
    let journal = std::fs::read_to_string(cache.join("demo.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = journal
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "probe")
        .collect();
    assert!((3..=8).contains(&records.len()), "{text}");
    for r in &records {
        assert_eq!(r["outcome"]["status"], "completed", "{r}");
    }
    // The chosen configuration is the cheapest of the journal.
    let cheapest = records
        .iter()
        .min_by(|a, b| {
            let c = |r: &serde_json::Value| r["outcome"]["cost_usd"].as_f64().unwrap();
            c(a).total_cmp(&c(b))
        })
        .unwrap();
    let chosen = text
        .lines()
        .find_map(|l| l.strip_prefix("chosen: "))
        .expect("a chosen configuration");
    assert_eq!(chosen, cheapest["config"].as_str().unwrap(), "{text}");
    assert!(text.contains("(+0.0%)"), "{text}");
    assert!(text.contains("grid search (catalogue order) reaches this configuration at probe"));

    // The dataset is cached: a second demo does not generate it again.
    let again = demo();
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{text}");
    assert!(!text.contains("generated"), "{text}");
    let _ = std::fs::remove_dir_all(&cache);
}

/// A relative `--cache` holds everything the demo writes, its dataset included (the built-in
/// space file resolves paths against its own `examples/` folder, where the dataset once went).
#[test]
fn a_relative_cache_holds_the_dataset_too() {
    let cwd = std::env::temp_dir().join(format!("cp-demo-rel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cwd);
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(BIN)
        .current_dir(&cwd)
        .args(["demo", "--images", "10", "--budget", "1", "--cache", "rel"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut top: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["rel"], "{text}");
    assert!(cwd.join("rel/flowers-10-seed1/daisy").is_dir(), "{text}");
    assert!(cwd.join("rel/demo.jsonl").is_file(), "{text}");
    let _ = std::fs::remove_dir_all(&cwd);
}
