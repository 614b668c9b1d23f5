//! End-to-end tests of `cherrypick compare`, `replay` and `paper` through the built binary:
//! output files and their schema, determinism, and exit code 2 with file/line/field on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_root() -> PathBuf {
    std::env::var_os("CHERRYPICK_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets"))
}

fn have_data() -> bool {
    let ok = data_root().join("scout").is_dir() && data_root().join("cherrypick").is_dir();
    if !ok {
        println!("skipped: no shared datasets at {}", data_root().display());
    }
    ok
}

fn cherrypick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cherrypick"))
        .args(args)
        .env("CHERRYPICK_DATA_DIR", data_root())
        .output()
        .expect("the cherrypick binary runs")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn compare_writes_summary_traces_and_plots_per_the_contract() {
    if !have_data() {
        return;
    }
    let out = temp_dir("compare");
    // A reused --out: an earlier compare's plot of another workload goes (its summary.json
    // names it); other files stay, a plot-like one no compare wrote too.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("plot_spark_kmeans_huge.png"), b"old").unwrap();
    std::fs::write(
        out.join("summary.json"),
        r#"{"format":"cherrypick.compare/1","results":[{"workload":"spark_kmeans_huge"}]}"#,
    )
    .unwrap();
    std::fs::write(out.join("plot_mine.png"), b"mine").unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let o = cherrypick(&[
        "compare",
        "--dataset",
        "scout",
        "--workloads",
        "spark_lr_huge,hadoop_wordcount_bigdata",
        "--strategies",
        "grid,random",
        "--seeds",
        "2",
        "--budget",
        "6",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("random"),
        "aggregate table printed: {}",
        text(&o)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["format"], "cherrypick.compare/1");
    assert_eq!(summary["dataset"], "scout");
    assert_eq!(summary["seeds"], 2);
    assert_eq!(summary["budget"], 6);
    let results = summary["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    let check_row = |r: &serde_json::Value| {
        let at = r["normalized_cost_at"].as_object().unwrap();
        assert_eq!(at.len(), 6);
        for k in 1..=6 {
            let q = &at[&k.to_string()];
            let (m, p) = (q["median"].as_f64().unwrap(), q["p90"].as_f64().unwrap());
            assert!(m >= 1.0 && p >= m, "{q}");
            let p_opt = r["p_optimum_at"][k.to_string()].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&p_opt));
        }
        assert!(r["stop"].is_null(), "grid and random have no stop rule");
        assert!(r["ms_per_ask_median"].as_f64().unwrap() >= 0.0);
    };
    for r in results {
        assert!(r["workload"].is_string() && r["strategy"].is_string());
        assert!(r["optimum_cost"].as_f64().unwrap() > 0.0);
        check_row(r);
    }
    let aggregate = summary["aggregate"].as_array().unwrap();
    assert_eq!(aggregate.len(), 2);
    aggregate.iter().for_each(check_row);

    let traces = std::fs::read_to_string(out.join("traces.csv")).unwrap();
    let mut lines = traces.lines();
    assert!(lines.next().unwrap().starts_with(
        "workload,strategy,seed,eval,config,status,runtime_s,cost,best_normalized_cost,ms_ask"
    ));
    assert_eq!(lines.count(), 2 * 2 * 2 * 6, "one row per probe per run");
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Aggregate") && md.contains("## spark_lr_huge"));
    for png in ["plot_aggregate.png", "plot_spark_lr_huge.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{png}");
    }
    assert!(!out.join("plot_spark_kmeans_huge.png").exists());
    assert_eq!(std::fs::read(out.join("plot_mine.png")).unwrap(), b"mine");
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    std::fs::remove_dir_all(&out).ok();
}

#[test]
fn replay_json_is_deterministic_per_seed() {
    if !have_data() {
        return;
    }
    let run = |seed: &str| {
        let o = cherrypick(&[
            "replay",
            "--dataset",
            "scout",
            "--workload",
            "spark_lr_huge",
            "--strategy",
            "random",
            "--seed",
            seed,
            "--budget",
            "8",
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        for p in v["probes"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("ms_ask");
        }
        v
    };
    let a = run("4");
    assert_eq!(a["probes"].as_array().unwrap().len(), 8);
    assert_eq!(a, run("4"));
    assert_ne!(a["probes"], run("5")["probes"]);
    let o = cherrypick(&[
        "replay",
        "--dataset",
        "scout",
        "--workload",
        "spark_lr_huge",
        "--strategy",
        "grid",
        "--budget",
        "3",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("10_c4.large") || text(&o).contains("best:"),
        "{}",
        text(&o)
    );
}

#[test]
fn paper_prints_table1_beside_the_published_figures() {
    if !have_data() {
        return;
    }
    let o = cherrypick(&["paper"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("| tpcds | TPC-DS | 50 |") && t.contains("3.39") && t.contains("9.57"),
        "{t}"
    );
    assert!(
        t.contains("(not in Table 1)"),
        "kmeans is not in the paper's table: {t}"
    );
}

/// `paper --compare` replays the variants of `bo` it is given and refuses a strategy with no
/// stop rule to compare, instead of quietly comparing nothing.
#[test]
fn paper_compares_the_variants_given_and_refuses_a_baseline() {
    if !have_data() {
        return;
    }
    let o = cherrypick(&["paper", "--compare", "--strategies", "cherrypick,random"]);
    assert_bad_input(&o, &["`random` has no stop rule to set beside the paper's"]);
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let o = cherrypick(&[
        "paper",
        "--compare",
        "--strategies",
        "bo:initial=3",
        "--seeds",
        "1",
        "--budget",
        "8",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("| bo:initial=3 |").count(), 5, "{t}");
    // Without --strategies: `cherrypick` and `bo`, as README shows it.
    let o = cherrypick(&["paper", "--compare", "--seeds", "1", "--budget", "8"]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("| cherrypick |").count(), 5, "{t}");
    assert_eq!(t.matches("| bo |").count(), 5, "{t}");
}

fn assert_bad_input(o: &Output, wants: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    for w in wants {
        assert!(err.contains(w), "`{w}` missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_exits_2_naming_file_line_and_field() {
    let dir = temp_dir("bad");
    let csv = dir.join("runs.csv");
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,nodes\nw,a,10,0.1,2\nw,b,fast,0.2,4\n",
    )
    .unwrap();
    let csv_s = csv.to_str().unwrap();
    let o = cherrypick(&[
        "compare",
        "--dataset",
        csv_s,
        "--strategies",
        "grid",
        "--seeds",
        "1",
    ]);
    assert_bad_input(&o, &["runs.csv", "line 3", "runtime_s"]);
    let o = cherrypick(&[
        "replay",
        "--dataset",
        csv_s,
        "--workload",
        "w",
        "--strategy",
        "grid",
    ]);
    assert_bad_input(&o, &["runs.csv", "line 3", "runtime_s"]);

    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,nodes\nw,a,10,0.1,2\nw,b,20,0.2,4\n",
    )
    .unwrap();
    let o = cherrypick(&[
        "replay",
        "--dataset",
        csv_s,
        "--workload",
        "w",
        "--strategy",
        "nope",
    ]);
    assert_bad_input(&o, &["unknown strategy `nope`"]);
    let o = cherrypick(&[
        "compare",
        "--dataset",
        csv_s,
        "--strategies",
        "grid,nope",
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    assert_bad_input(&o, &["unknown strategy `nope`"]);
    let o = cherrypick(&[
        "replay",
        "--dataset",
        csv_s,
        "--workload",
        "v",
        "--strategy",
        "grid",
    ]);
    assert_bad_input(&o, &["unknown workload `v`", "w"]);
    let o = cherrypick(&["compare", "--dataset", "nonsense"]);
    assert_bad_input(&o, &["unknown dataset `nonsense`"]);
    std::fs::write(&csv, "workload,config,runtime_s,cost_usd,nodes\n").unwrap();
    let o = cherrypick(&["compare", "--dataset", csv_s, "--strategies", "grid"]);
    assert_bad_input(&o, &["runs.csv", "empty"]);
    // Nothing at all in the file, a folder given as a dataset, --data-dir with a CSV, and a
    // workload list naming none: each says what is wrong rather than something beside it.
    std::fs::write(&csv, "").unwrap();
    let o = cherrypick(&["compare", "--dataset", csv_s, "--strategies", "grid"]);
    assert_bad_input(&o, &["runs.csv: the file is empty"]);
    let o = cherrypick(&["compare", "--dataset", dir.to_str().unwrap()]);
    assert_bad_input(&o, &["a folder, not a dataset name", "--data-dir"]);
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,nodes\nw,a,10,0.1,2\nw,b,20,0.05,4\n",
    )
    .unwrap();
    let o = cherrypick(&["compare", "--dataset", csv_s, "--data-dir", "/tmp"]);
    assert_bad_input(
        &o,
        &["runs.csv: --data-dir /tmp is for `scout` and `cherrypick`"],
    );
    let o = cherrypick(&["compare", "--dataset", csv_s, "--workloads", " , "]);
    assert_bad_input(&o, &["no workload named in ` , `"]);
    let o = cherrypick(&[
        "compare",
        "--dataset",
        "scout",
        "--data-dir",
        dir.join("missing").to_str().unwrap(),
    ]);
    assert_bad_input(&o, &["missing"]);

    // A good generic CSV runs end to end, with the grid finding the optimum after 2 probes.
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,nodes\nw,a,10,0.1,2\nw,b,20,0.05,4\n",
    )
    .unwrap();
    let out = dir.join("ok");
    let o = cherrypick(&[
        "compare",
        "--dataset",
        csv_s,
        "--strategies",
        "grid",
        "--seeds",
        "1",
        "--budget",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["aggregate"][0]["normalized_cost_at"]["1"]["median"], 2.0);
    assert_eq!(s["aggregate"][0]["p_optimum_at"]["2"], 1.0);
    std::fs::remove_dir_all(Path::new(&dir)).ok();
}

/// The replay table shows costs of a few micro-dollars (a local job's) instead of `0.0000`, and
/// lines its columns up past a long configuration name.
#[test]
fn replay_shows_small_costs_and_aligns_long_names() {
    let dir = temp_dir("replay-table");
    let csv = dir.join("runs.csv");
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,nodes\n\
         w,a-configuration-with-a-rather-long-name,10,0.000012,2\n\
         w,b,20,0.000008,4\n",
    )
    .unwrap();
    let o = cherrypick(&[
        "replay",
        "--dataset",
        csv.to_str().unwrap(),
        "--workload",
        "w",
        "--strategy",
        "grid",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("optimum 0.000008 USD"), "{out}");
    assert!(
        out.contains(" 0.000012 ") && out.contains(" 0.000008 "),
        "{out}"
    );
    assert!(out.contains("search cost 0.000020 USD"), "{out}");
    // The status column starts at one place on the header and on every probe's line.
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("complete") || l.contains("status"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    let at: Vec<usize> = lines
        .iter()
        .map(|l| l.find("status").or_else(|| l.find("completed")).unwrap())
        .collect();
    assert!(at.iter().all(|&a| a == at[0]), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
