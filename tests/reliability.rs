//! Hostile and careless use of the binary (issue 12): one process per journal, output files that
//! are never an input, a symlink or a device, a journal path holding something else, and numbers
//! no command can mean. Each test fails on the code before its fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use optimizer::journal::{rfc3339, Header, Journal, JournalWriter, ProbeRecord};
use optimizer::{Config, Dimension, Kind, Outcome, Space, Value};

const BIN: &str = env!("CARGO_BIN_EXE_cherrypick");

/// Probes sleep `{sleep}` s and report a configuration-dependent runtime.
fn space_file(sleep: &str) -> String {
    format!(
        r#"
[catalogue]
machine_types = ["e2-standard-2", "n2-standard-4"]
count = "workers"
[catalogue.dimensions]
workers = [1, 2, 4, 8]
partitions = [8, 32, 128]
[backend.command]
template = '''sleep {sleep}; awk -v w={{workers}} -v c={{vcpus}} -v p={{partitions}} 'BEGIN {{{{ par = w * c; if (par > p) par = p; printf "CHERRYPICK_METRIC runtime_s=%.3f\n", 3000 / par + 6 * w + 0.05 * p }}}}' '''
"#
    )
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-reliability-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn search(d: &Path, journal: &Path, sleep: &str, extra: &[&str]) -> Command {
    search_with_timeout(d, journal, sleep, "30", extra)
}

/// [`search`] with another probe time limit: the jobs report runtimes of 380 s and more, so with
/// 30 s every probe times out and nothing is feasible.
fn search_with_timeout(
    d: &Path,
    journal: &Path,
    sleep: &str,
    timeout: &str,
    extra: &[&str],
) -> Command {
    std::fs::write(d.join("space.toml"), space_file(sleep)).unwrap();
    let mut c = Command::new(BIN);
    c.args(["search", "--backend", "command", "--seed", "3"])
        .args(["--probe-timeout", timeout])
        .arg("--space")
        .arg(d.join("space.toml"))
        .arg("--journal")
        .arg(journal)
        .args(extra);
    c
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// `cherrypick workload preprocess --input INPUT --output OUTPUT EXTRA...`.
fn preprocess(input: &str, output: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "workload",
        "preprocess",
        "--input",
        input,
        "--output",
        output,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts `o` was refused as bad input (exit 2) with `want` in its stderr.
fn refused(o: &Output, want: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(want), "{}", stderr(o));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small journal written through the library.
fn journal(path: &Path, options: serde_json::Value, probes: usize) {
    let dims = vec![Dimension {
        name: "workers".into(),
        kind: Kind::Numeric { log: false },
    }];
    let configs = (1..=4)
        .map(|w| Config {
            name: format!("w{w}"),
            values: vec![Value::Num(w as f64)],
            price_per_hour: 0.1 * w as f64,
        })
        .collect();
    let space = Space::new(dims, configs).unwrap();
    let mut w = JournalWriter::create(path, &Header::new(&space, "grid", 1, options)).unwrap();
    for i in 0..probes {
        w.append(&ProbeRecord {
            index: i,
            config: format!("w{}", i + 1),
            outcome: Outcome::Completed {
                runtime_s: 100.0 / (i + 1) as f64,
                cost_usd: 0.001,
                metrics: Default::default(),
            },
            started: rfc3339(std::time::SystemTime::now()),
            finished: rfc3339(std::time::SystemTime::now()),
            expected_improvement: None,
            log: None,
            launch: None,
            billed_usd: None,
        })
        .unwrap();
    }
}

#[test]
fn a_second_search_on_a_running_journal_is_refused_naming_its_pid() {
    let d = dir("lock");
    let path = d.join("runs.jsonl");
    // Probes that complete (a search with no answer exits 3).
    let mut first = search_with_timeout(
        &d,
        &path,
        "1",
        "5000",
        &["--strategy", "grid", "--budget", "6"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Wait for its first record: the journal is open and locked.
    let started = Instant::now();
    while Journal::read(&path).map_or(true, |j| j.records.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(60), "no record");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = search(
        &d,
        &path,
        "0",
        &["--strategy", "grid", "--budget", "6", "--resume"],
    )
    .output()
    .unwrap();
    let err = stderr(&second);
    // Exit 2: the journal given is in use, the user's input (not a failure of this tool).
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("another cherrypick process"),
        "{err}"
    );
    // Without --resume it is named as held too, not as a journal to resume.
    let third = search(&d, &path, "0", &["--strategy", "grid", "--budget", "6"])
        .output()
        .unwrap();
    let err = stderr(&third);
    assert_eq!(third.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id())) && !err.contains("--resume"),
        "{err}"
    );
    // The first search is unharmed and ends normally with all its probes.
    assert!(first.wait().unwrap().success());
    let j = Journal::read(&path).unwrap();
    assert_eq!(j.records.len(), 6);
    assert!(!d.join("runs.jsonl.lock").exists());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn resume_never_deletes_a_file_without_a_trailing_newline() {
    let d = dir("foreign");
    let path = d.join("notes.txt");
    std::fs::write(&path, "my notes, no newline").unwrap();
    let o = search(
        &d,
        &path,
        "0",
        &["--strategy", "grid", "--budget", "2", "--resume"],
    )
    .output()
    .unwrap();
    refused(&o, "not a cherrypick journal");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "my notes, no newline"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn journal_export_never_overwrites_its_input_a_device_or_a_symlink() {
    let d = dir("export");
    let j = d.join("runs.jsonl");
    journal(&j, serde_json::json!({}), 2);
    let before = std::fs::read(&j).unwrap();
    let js = j.to_str().unwrap();
    // The journal itself, and the journal through a symlink.
    std::os::unix::fs::symlink(&j, d.join("alias.csv")).unwrap();
    for out in [js.to_string(), d.join("alias.csv").display().to_string()] {
        let o = run(&["journal", "export", js, "--csv", &out]);
        assert_eq!(o.status.code(), Some(2), "{out}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("the journal being exported"),
            "{}",
            stderr(&o)
        );
        assert_eq!(std::fs::read(&j).unwrap(), before, "{out}");
    }
    // A blank workload name would write rows no reader of generic CSV takes; nor would a name
    // with a comma, which `compare --workloads` could never select.
    let blank = d.join("blank.csv");
    for (name, want) in [
        (" ", "--workload names no workload"),
        ("a,b", "workload name \"a,b\" (--workload) holds a comma"),
        (
            "a\nb",
            "workload name \"a\\nb\" (--workload) holds a comma or a control",
        ),
    ] {
        let o = run(&[
            "journal",
            "export",
            js,
            "--csv",
            blank.to_str().unwrap(),
            "--workload",
            name,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(want), "{}", stderr(&o));
        assert!(!blank.exists());
    }
    // Nor a blank file name standing in for --workload.
    let spaced = d.join(" .jsonl");
    std::fs::copy(&j, &spaced).unwrap();
    let o = run(&[
        "journal",
        "export",
        spaced.to_str().unwrap(),
        "--csv",
        blank.to_str().unwrap(),
    ]);
    refused(
        &o,
        "the journal's file name \" \" gives a blank workload name",
    );
    assert!(!blank.exists());
    // Another journal (perhaps one a running search writes) is never replaced by a CSV.
    let other = d.join("other.jsonl");
    journal(&other, serde_json::json!({}), 1);
    let kept = std::fs::read(&other).unwrap();
    let o = run(&["journal", "export", js, "--csv", other.to_str().unwrap()]);
    refused(&o, "other.jsonl: that file is a search journal");
    assert_eq!(std::fs::read(&other).unwrap(), kept);
    // A device is never replaced.
    let o = run(&["journal", "export", js, "--csv", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A symlink to another file is written through: the link stays, its target gets the CSV.
    std::fs::write(d.join("target.csv"), "old").unwrap();
    std::os::unix::fs::symlink(d.join("target.csv"), d.join("link.csv")).unwrap();
    let link = d.join("link.csv").display().to_string();
    let o = run(&["journal", "export", js, "--csv", &link]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(d.join("target.csv"))
        .unwrap()
        .starts_with("workload,config"));
    // A failed export (a folder in the way) leaves no temporary file behind (hidden, beside it).
    std::fs::create_dir(d.join("out.csv")).unwrap();
    let o = run(&[
        "journal",
        "export",
        js,
        "--csv",
        &d.join("out.csv").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.contains("tmp") || n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // A folder that does not exist is named as the user gave it (not the temporary file).
    let nowhere = d.join("nodir").join("x.csv").display().to_string();
    let o = run(&["journal", "export", js, "--csv", &nowhere]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("nodir") && stderr(&o).contains("does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(
        !stderr(&o).contains(".x.csv.tmp") && !stderr(&o).contains(".x.partial"),
        "{}",
        stderr(&o)
    );
    // A header whose configurations do not match its dimensions is refused, not exported
    // into rows of the wrong width.
    let text = std::fs::read_to_string(&j).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut header: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    header["space"]["dimensions"] = serde_json::json!([]);
    lines[0] = header.to_string();
    let bad = d.join("nodims.jsonl");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let o = run(&[
        "journal",
        "export",
        bad.to_str().unwrap(),
        "--csv",
        &d.join("nodims.csv").display().to_string(),
    ]);
    refused(&o, "nodims.jsonl: line 1");
    assert!(!d.join("nodims.csv").exists());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn replay_of_a_journal_goes_as_far_as_the_search_did_without_its_stop_rule() {
    let d = dir("nostop");
    let stopped = d.join("stopped.jsonl");
    // Probes must complete: no stop rule fires before something feasible is found.
    let o = search_with_timeout(
        &d,
        &stopped,
        "0",
        "5000",
        &["--strategy", "cherrypick", "--budget", "14"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let with_stop = Journal::read(&stopped).unwrap().records.len();
    assert!(
        with_stop < 14,
        "the stop rule must fire for this test to mean anything"
    );
    let all = d.join("all.jsonl");
    let o = search_with_timeout(
        &d,
        &all,
        "0",
        "5000",
        &["--strategy", "cherrypick", "--budget", "14", "--no-stop"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(Journal::read(&all).unwrap().records.len(), 14);
    let o = run(&["replay", "--journal", all.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        out.contains("asked for exactly the recorded probes"),
        "{out}"
    );
    assert!(!out.contains("stop rule"), "{out}");
    let _ = std::fs::remove_dir_all(d);
}

/// The spend of probes a stop signal cancelled is in the replay's total, said apart.
#[test]
fn replay_of_a_journal_counts_the_probes_a_signal_cancelled() {
    let d = dir("abandoned");
    let j = d.join("runs.jsonl");
    journal(&j, serde_json::json!({}), 2);
    let mut w = JournalWriter::append_to(&j, &Journal::read(&j).unwrap()).unwrap();
    let now = rfc3339(std::time::SystemTime::now());
    w.append_abandoned(&optimizer::journal::AbandonedRecord {
        config: "w3".into(),
        spend_usd: 0.25,
        started: now.clone(),
        finished: now,
        launch: None,
    })
    .unwrap();
    drop(w);
    let o = run(&["replay", "--journal", j.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "the journal's 2 probes cost $0.002000, and the 1 cancelled by a stop signal \
             $0.250000: $0.252000 in all"
        ),
        "{}",
        stdout(&o)
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn numbers_no_command_can_mean_are_refused() {
    let d = dir("numbers");
    let j = d.join("runs.jsonl");
    journal(&j, serde_json::json!({}), 2);
    let js = j.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--max-runtime", "nan"],
            "--max-runtime must be a positive number",
        ),
        (
            vec!["--max-runtime=-5"],
            "--max-runtime must be a positive number",
        ),
        (vec!["--budget", "0"], "--budget must be at least 1"),
    ] {
        let o = run(&[&["replay", "--journal", js][..], &args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    let csv = d.join("runs.csv");
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,20,1,2\nw,c,30,3,3\n",
    )
    .unwrap();
    let out = d.join("cmp");
    let o = run(&[
        "compare",
        "--dataset",
        csv.to_str().unwrap(),
        "--seeds",
        "2",
        "--budget",
        "1000000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("--budget 1000000: the largest selected catalogue has 3 configurations, and no strategy evaluates one twice; use --budget 30 or less (up to 30, the default,"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing written");
    let o = run(&[
        "compare",
        "--dataset",
        csv.to_str().unwrap(),
        "--seeds",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Counts past what any machine holds are refused before anything is allocated for them.
    let huge = u64::MAX.to_string();
    let csv_arg = csv.to_str().unwrap();
    for (args, want) in [
        (
            vec!["compare", "--dataset", csv_arg, "--seeds", &huge],
            "--seeds must be at most 10000",
        ),
        (
            vec!["compare", "--dataset", csv_arg, "--jobs", &huge],
            "--jobs must be at most 1024",
        ),
        (
            vec!["compare", "--dataset", csv_arg, "--parallel", &huge],
            "--parallel must be at most 1024",
        ),
        (
            vec![
                "workload",
                "preprocess",
                "--input",
                csv_arg,
                "--output",
                csv_arg,
                "--threads",
                "100000",
            ],
            "--threads must be at most 1024",
        ),
        (
            vec![
                "workload",
                "gen-dataset",
                "--out",
                csv_arg,
                "--threads",
                "100000",
            ],
            "--threads must be at most 1024",
        ),
        // A folder that takes no file (read-only even for root): said before any replay.
        (
            vec![
                "compare",
                "--dataset",
                csv_arg,
                "--seeds",
                "1",
                "--out",
                "/proc",
            ],
            "--out /proc: cannot write there",
        ),
        (
            vec!["workload", "gen-dataset", "--out", "gs://b/x"],
            "--out gs://b/x: this takes a local path",
        ),
        (
            vec!["workload", "regress", "gs://b/r.csv", "--out", "x"],
            "the CSV gs://b/r.csv: this takes a local path",
        ),
        (
            vec![
                "workload",
                "read-speed",
                "--input",
                csv_arg,
                "--batch-sizes",
                "1",
                "--batch-numbers",
                "1",
                "--out",
                "gs://b/r.csv",
            ],
            "--out gs://b/r.csv: this takes a local path",
        ),
        (
            vec!["tune", "--dataset", csv_arg, "--budget", &huge],
            "the largest selected catalogue has 3 configurations,",
        ),
        (
            vec!["compare", "--dataset", csv_arg, "--out", csv_arg],
            "exists and is not a folder",
        ),
        (
            vec!["tune", "--dataset", csv_arg, "--folds", "7"],
            "tune holds workloads out, so it needs at least two: the datasets hold 1 workload\n",
        ),
        (
            vec!["tune", "--dataset", csv_arg],
            "tune holds workloads out, so it needs at least two: the datasets hold 1 workload\n",
        ),
        (
            vec![
                "tune",
                "--dataset",
                csv_arg,
                "--dataset",
                csv_arg,
                "--folds",
                "datasets",
            ],
            "is given twice",
        ),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    for (flag, want) in [
        ("--parallel=0", "--parallel must be at least 1"),
        (
            "--launch-overhead=-1",
            "--launch-overhead must be between 0 and 86400",
        ),
        // Echoed as given, not as 309 digits.
        (
            "--launch-overhead=1e308",
            "--launch-overhead must be between 0 and 86400 seconds, got 1e308\n",
        ),
    ] {
        let o = run(&["compare", "--dataset", csv.to_str().unwrap(), flag]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{flag}: {}", stderr(&o));
    }
    assert!(!out.exists(), "nothing written");
    // A replay refuses a strategy it cannot build before printing anything, and says what an
    // empty option or a key without a value is.
    for (strategy, want) in [
        (
            "bo:foo",
            "strategy `bo:foo`: strategy option `foo`: unknown key",
        ),
        ("bo:", "strategy `bo:`: strategy option: an empty option"),
        ("cherrypick::initial=4", "an empty option"),
    ] {
        let o = run(&[
            "replay",
            "--dataset",
            csv_arg,
            "--workload",
            "w",
            "--strategy",
            strategy,
        ]);
        assert_eq!(o.status.code(), Some(2), "{strategy}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{strategy}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{strategy}: no banner before the error");
    }
    // `paper`'s replay options mean nothing without --compare: refused, not ignored.
    for flag in ["--seeds=3", "--budget=10", "--strategies=bo"] {
        let o = run(&["paper", flag]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains("--compare"), "{flag}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{flag}");
    }
    // Probes that could share the cores they are measured on are refused (spark: checked against
    // the real cluster's free cores in tests/spark_search.rs).
    let root = env!("CARGO_MANIFEST_DIR");
    for (backend, file, want) in [
        (
            "local",
            "local-preprocess.toml",
            "the local backend measures probes on this machine's",
        ),
        (
            "command",
            "command-sleep.toml",
            "--parallel must be at least 1",
        ),
    ] {
        // No machine has a thousand cores for a thousand probes of one thread or more.
        let n = match backend {
            "command" => "0",
            "local" => "1000",
            _ => "2",
        };
        let space = format!("{root}/examples/{file}");
        let o = run(&[
            "search",
            "--backend",
            backend,
            "--space",
            &space,
            "--parallel",
            n,
            "--dry-run",
        ]);
        assert_eq!(o.status.code(), Some(2), "{backend}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{backend}: {}", stderr(&o));
    }
    // A dry run refuses the strategies the run would, each cause said once.
    let space = format!("{root}/examples/command-sleep.toml");
    for (strategy, want) in [
        ("nosuch", "unknown strategy `nosuch`"),
        (
            "bo:initial=0",
            "strategy `bo:initial=0`: strategy option `initial=0`: expected a whole number",
        ),
    ] {
        let o = run(&[
            "search",
            "--backend",
            "command",
            "--space",
            &space,
            "--strategy",
            strategy,
            "--dry-run",
        ]);
        assert_eq!(o.status.code(), Some(2), "{strategy}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{strategy}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).matches("expected a whole").count(),
            usize::from(strategy != "nosuch")
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn preprocess_refuses_limit_zero_and_an_input_it_cannot_use_at_all() {
    let d = dir("preprocess");
    let input = d.join("in");
    std::fs::create_dir_all(input.join("daisy")).unwrap();
    std::fs::write(input.join("daisy/a.jpg"), b"not a jpeg").unwrap();
    let (i, o) = (
        input.display().to_string(),
        d.join("out").display().to_string(),
    );
    let r = preprocess(&i, &o, &["--threads", "1"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("no shard written"), "{}", stderr(&r));
    let r = preprocess(&i, &o, &["--limit", "0"]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--limit must be at least 1"),
        "{}",
        stderr(&r)
    );
    // A symlink loop in the input ends at once with an error naming the link.
    std::os::unix::fs::symlink(".", input.join("loop")).unwrap();
    let started = Instant::now();
    let r = preprocess(&i, &o, &[]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("symlink loop") && stderr(&r).contains("loop"),
        "{}",
        stderr(&r)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// Files outside `<class>/<image>` are named in one stderr line and counted in `--json`, and an
/// output size no image can have is refused before anything is read, naming the option.
#[test]
fn preprocess_says_what_it_left_out_and_refuses_a_size_naming_the_option() {
    let d = dir("preprocess-layout");
    let input = d.join("in");
    let (i, o) = (
        input.display().to_string(),
        d.join("out").display().to_string(),
    );
    let r = run(&[
        "workload",
        "gen-dataset",
        "--out",
        &i,
        "--images",
        "5",
        "--threads",
        "1",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    std::fs::write(input.join("stray.jpg"), b"x").unwrap();
    std::fs::create_dir_all(input.join("daisy/more")).unwrap();
    std::fs::write(input.join("daisy/more/a.jpg"), b"x").unwrap();
    let r = preprocess(&i, &o, &["--threads", "1", "--json"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).unwrap();
    assert_eq!(v["images_written"], 5);
    assert_eq!(
        v["outside_layout"],
        serde_json::json!({"top_level": 1, "nested": 1, "examples": ["stray.jpg", "daisy/more/a.jpg"]})
    );
    assert_eq!(
        stderr(&r)
            .matches("ignored 2 files outside <class>/<image>")
            .count(),
        1,
        "{}",
        stderr(&r)
    );
    for (option, value, want) in [
        (
            "--size",
            "0",
            "--size 0: the output side must be 1 to 4096 pixels",
        ),
        (
            "--quality",
            "0",
            "--quality 0: the JPEG quality must be 1 to 100",
        ),
    ] {
        let r = preprocess(&i, &o, &[option, value]);
        assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
        assert!(stderr(&r).contains(want), "{}", stderr(&r));
    }
    // An output that is a file, not a folder, is said to be one.
    let file = d.join("file");
    std::fs::write(&file, b"kept").unwrap();
    let r = preprocess(&i, file.to_str().unwrap(), &[]);
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("a file is there, not a folder"),
        "{}",
        stderr(&r)
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"kept");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn errors_are_reported_once() {
    let d = dir("crc");
    let shard = d.join("flowers00-1.tfrec");
    let mut bytes = Vec::new();
    workload::tfrecord::append_record(&mut bytes, b"payload");
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&shard, bytes).unwrap();
    let r = run(&[
        "workload",
        "read-speed",
        "--input",
        d.to_str().unwrap(),
        "--batch-sizes",
        "1",
        "--batch-numbers",
        "1",
        "--repetitions",
        "1",
        "--out",
        d.join("r.csv").to_str().unwrap(),
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("payload CRC mismatch").count(), 1, "{err}");
    // A cost so small its price would underflow to 0 (a tiny cost over a long run) is
    // refused once, where it is read, naming line and field.
    let csv = d.join("free.csv");
    std::fs::write(
        &csv,
        "workload,config,runtime_s,cost_usd,x\nw,a,10000000000,1e-320,1\nw,b,20,1,2\n",
    )
    .unwrap();
    let r = run(&[
        "replay",
        "--dataset",
        csv.to_str().unwrap(),
        "--workload",
        "w",
    ]);
    let err = stderr(&r);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert_eq!(
        err.matches("is outside what a recorded run can hold")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("line 2: field `cost_usd`"), "{err}");
    let _ = std::fs::remove_dir_all(d);
}

/// Whether any live (not zombie) process is in process group `pgid`.
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.len() > 2 && f[2].parse::<i32>() == Ok(pgid) && !matches!(f[0], "Z" | "X")
    })
}

/// A command search whose third probe hangs: the first two finish quickly, the third writes
/// its process group id (the shell leads the group) and sleeps; `trap` is put before it.
fn hanging_search(d: &Path, trap: &str) -> std::process::Child {
    let space = format!(
        r#"
[catalogue]
machine_types = ["e2-standard-2"]
count = "workers"
[catalogue.dimensions]
workers = [1, 2, 3, 4, 5, 6]
[backend.command]
template = '''n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count; if [ "$n" -ge 2 ]; then {trap} echo $$ > pgid; sleep 60; fi; echo CHERRYPICK_METRIC runtime_s={{workers}}'''
"#
    );
    std::fs::write(d.join("space.toml"), space).unwrap();
    default_stop_signals(
        Command::new(BIN)
            .args(["search", "--backend", "command", "--strategy", "grid"])
            .args(["--budget", "6", "--probe-timeout", "120", "--space"])
            .arg(d.join("space.toml"))
            .arg("--journal")
            .arg(d.join("runs.jsonl"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .spawn()
    .unwrap()
}

/// `c` with SIGINT, SIGTERM and SIGHUP at their default disposition in the child: a harness
/// that runs the tests as a background job (SIGINT ignored) or under `nohup` (SIGHUP) would
/// pass them on ignored, and a stop signal a process inherits ignored it lets pass.
fn default_stop_signals(c: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls signal(), which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        c.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::signal(s, libc::SIG_DFL);
            }
            Ok(())
        })
    }
}

/// Waits until the hanging probe runs; returns its process group.
fn hanging_group(d: &Path) -> i32 {
    let started = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(d.join("pgid")) {
            if let Ok(p) = t.trim().parse::<i32>() {
                return p;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the third probe never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    limit: Duration,
) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the search did not end within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the binary with `args`, failing the test if it has not ended within a minute (a
/// FIFO it waits on, say); its exit status and stderr.
fn run_within_a_minute(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

fn send(pid: u32, signal: i32) {
    // SAFETY: kill only sends a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

/// SIGINT, SIGTERM and SIGHUP take one orderly path: the running job's whole process group is
/// stopped, the finished probes stay in an intact journal (the stopped one is not recorded, so
/// a resume runs it again), the lock note is removed, and the exit code names the signal.
#[test]
fn every_stop_signal_cancels_the_probe_keeps_the_journal_and_names_itself_in_the_exit_code() {
    for (signal, code) in [
        (libc::SIGINT, 130),
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
    ] {
        let d = dir(&format!("signal-{signal}"));
        let mut search = hanging_search(&d, "");
        let pgid = hanging_group(&d);
        assert!(group_alive(pgid));
        send(search.id(), signal);
        let status = wait_with_deadline(&mut search, Duration::from_secs(60));
        let mut err = String::new();
        std::io::Read::read_to_string(search.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(
            status.code(),
            Some(code),
            "signal {signal}: {status:?}\n{err}"
        );
        assert!(
            !group_alive(pgid),
            "signal {signal}: the job's group outlived the search"
        );
        let j = Journal::read(&d.join("runs.jsonl")).unwrap();
        assert_eq!(j.records.len(), 2, "signal {signal}");
        assert!(!j.torn_tail);
        assert!(!d.join("runs.jsonl.lock").exists(), "signal {signal}");
        // The cancelled probe is not a record, but what it cost is kept ...
        assert_eq!(j.abandoned.len(), 1, "signal {signal}");
        assert!(j.abandoned[0].spend_usd > 0.0, "signal {signal}");
        let recorded: f64 = j.records.iter().map(|r| r.outcome.spend_usd()).sum();
        // ... and a resumed search counts it in what was spent (and against --max-spend).
        let resumed = Command::new(BIN)
            .args(["search", "--backend", "command", "--strategy", "grid"])
            .args([
                "--budget",
                "2",
                "--probe-timeout",
                "120",
                "--resume",
                "--space",
            ])
            .arg(d.join("space.toml"))
            .arg("--journal")
            .arg(d.join("runs.jsonl"))
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&resumed.stdout).into_owned()
            + &String::from_utf8_lossy(&resumed.stderr);
        assert!(resumed.status.success(), "{out}");
        let want = format!("${:.6} spent", recorded + j.abandoned_spend());
        assert!(out.contains(&want), "want {want}:\n{out}");
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A second signal while the first is being handled (a job that ignores SIGTERM takes the
/// whole kill grace) does not end the process early: the group is still killed.
#[test]
fn a_second_signal_does_not_skip_the_cleanup() {
    let d = dir("signal-twice");
    let mut search = hanging_search(&d, "trap '' TERM INT HUP;");
    let pgid = hanging_group(&d);
    send(search.id(), libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    send(search.id(), libc::SIGINT);
    let status = wait_with_deadline(&mut search, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(!group_alive(pgid), "the job's group outlived the search");
    assert_eq!(
        Journal::read(&d.join("runs.jsonl")).unwrap().records.len(),
        2
    );
    let _ = std::fs::remove_dir_all(d);
}

/// `cherrypick search ... | head -1`: the reader goes away, the search goes on to its budget
/// and records every probe.
#[test]
fn a_closed_stdout_stops_the_printing_not_the_search() {
    use std::io::BufRead;
    let d = dir("sigpipe");
    let path = d.join("runs.jsonl");
    let mut child = search_with_timeout(
        &d,
        &path,
        "0.3",
        "5000",
        &["--strategy", "grid", "--budget", "4"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty());
    // The reader (and with it the pipe) is gone here.
    let status = wait_with_deadline(&mut child, Duration::from_secs(120));
    assert!(status.success(), "{status:?}");
    assert_eq!(Journal::read(&path).unwrap().records.len(), 4);
    let _ = std::fs::remove_dir_all(d);
}

/// Time limits too long for a `Duration` are refused naming the option or field, with and
/// without `--dry-run`, never a panic (exit 101).
#[test]
fn huge_time_limits_are_refused_naming_the_option() {
    let d = dir("huge");
    let path = d.join("runs.jsonl");
    std::fs::write(d.join("space.toml"), space_file("0")).unwrap();
    for (args, want) in [
        (
            vec!["--probe-timeout", "1e20", "--dry-run"],
            "--probe-timeout",
        ),
        (vec!["--probe-timeout", "1e20"], "--probe-timeout"),
        (vec!["--max-runtime", "1e20", "--dry-run"], "--max-runtime"),
        (vec!["--max-runtime", "1e20"], "--max-runtime"),
    ] {
        let o = Command::new(BIN)
            .args(["search", "--backend", "command", "--space"])
            .arg(d.join("space.toml"))
            .arg("--journal")
            .arg(&path)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    let mut text = std::fs::read_to_string(d.join("space.toml")).unwrap();
    text.insert_str(0, "max_runtime_s = 1e20\n");
    std::fs::write(d.join("limit.toml"), text).unwrap();
    let o = run(&[
        "search",
        "--backend",
        "command",
        "--dry-run",
        "--space",
        d.join("limit.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("limit.toml:1"), "{}", stderr(&o));
    assert!(stderr(&o).contains("max_runtime_s"), "{}", stderr(&o));
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(d);
}

/// `--resume` names a journal to continue: a path with nothing there is a mistake (a typo),
/// not a request to start afresh.
#[test]
fn resume_of_a_missing_journal_is_an_error() {
    let d = dir("resume-missing");
    let path = d.join("typo.jsonl");
    let o = search(&d, &path, "0", &["--budget", "1", "--resume"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("typo.jsonl") && stderr(&o).contains("--resume"),
        "{}",
        stderr(&o)
    );
    assert!(!path.exists());
    let _ = std::fs::remove_dir_all(d);
}

/// A journal with no header yet that another process holds: `--resume` is refused (exit 2,
/// naming the holder), and the file is neither removed nor replaced.
#[test]
fn resume_of_an_empty_journal_held_by_another_process_leaves_it_alone() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let d = dir("empty-held");
    let path = d.join("runs.jsonl");
    let held = std::fs::File::create(&path).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    std::fs::write(
        d.join("runs.jsonl.lock"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    let o = search(&d, &path, "0", &["--budget", "1", "--resume"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("pid {}", std::process::id())),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert!(
        !stderr(&o).contains("starting a new search"),
        "{}",
        stderr(&o)
    );
    drop(held);
    // Once free, the resume starts the search over, and says so.
    let o = search_with_timeout(&d, &path, "0", "5000", &["--budget", "1", "--resume"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "the journal holds no header (its search was stopped before writing one): \
             nothing to resume, starting a new search there"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(Journal::read(&path).unwrap().records.len(), 1);
    let _ = std::fs::remove_dir_all(d);
}

/// `--max-spend` after a resume counts every probe of the journal, whatever the new run's
/// `--max-runtime` makes of them: the journal's whole spend stays under the cap.
#[test]
fn a_resumed_search_with_another_runtime_limit_keeps_the_spend_cap() {
    let d = dir("resume-spend");
    let path = d.join("runs.jsonl");
    let cap = 0.3;
    let first = search_with_timeout(
        &d,
        &path,
        "0",
        "1000",
        &[
            "--max-runtime",
            "500",
            "--max-spend",
            "0.3",
            "--no-stop",
            "--budget",
            "3",
        ],
    )
    .output()
    .unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    let spent = |j: &Journal| -> f64 { j.records.iter().map(|r| r.outcome.spend_usd()).sum() };
    let before = Journal::read(&path).unwrap();
    assert_eq!(before.records.len(), 3);
    let resumed = search_with_timeout(
        &d,
        &path,
        "0",
        "1000",
        &[
            "--max-runtime",
            "2000",
            "--max-spend",
            "0.3",
            "--no-stop",
            "--budget",
            "30",
            "--resume",
        ],
    )
    .output()
    .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stdout(&resumed).contains("spend limit"),
        "{}",
        stdout(&resumed)
    );
    let after = Journal::read(&path).unwrap();
    assert!(after.records.len() > 3, "the resume ran nothing");
    assert!(
        spent(&after) <= cap,
        "spent {} against a cap of {cap}",
        spent(&after)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A command search with three probes in flight, each job sleeping a minute in a process
/// group whose id it wrote to `pgid-<workers>`: the search and those groups.
fn three_probes_in_flight(d: &Path) -> (std::process::Child, Vec<i32>) {
    let space = r#"
[catalogue]
machine_types = ["e2-standard-2"]
count = "workers"
[catalogue.dimensions]
workers = [1, 2, 3, 4, 5, 6]
[backend.command]
template = '''echo $$ > pgid-{workers}; sleep 60; echo CHERRYPICK_METRIC runtime_s={workers}'''
"#;
    std::fs::write(d.join("space.toml"), space).unwrap();
    let mut search = Command::new(BIN);
    search
        .args(["search", "--backend", "command", "--strategy", "grid"])
        .args(["--budget", "6", "--parallel", "3", "--probe-timeout", "120"])
        .arg("--space")
        .arg(d.join("space.toml"))
        .arg("--journal")
        .arg(d.join("runs.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = default_stop_signals(&mut search).spawn().unwrap();
    let started = Instant::now();
    let groups: Vec<i32> = loop {
        let found: Vec<i32> = (1..=6)
            .filter_map(|w| std::fs::read_to_string(d.join(format!("pgid-{w}"))).ok())
            .filter_map(|t| t.trim().parse().ok())
            .collect();
        if found.len() == 3 {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "three probes never ran at once: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (child, groups)
}

/// A search killed outright (SIGKILL: no orderly path) leaves no job running: its guard
/// process stops every group the search had in flight, within the kill grace.
#[test]
fn a_search_killed_outright_leaves_no_job_running() {
    let d = dir("parallel-kill");
    let (mut child, groups) = three_probes_in_flight(&d);
    send(child.id(), libc::SIGKILL);
    let _ = wait_with_deadline(&mut child, Duration::from_secs(60));
    let started = Instant::now();
    while groups.iter().any(|g| group_alive(*g)) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for g in &groups {
        assert!(
            !group_alive(*g),
            "probe group {g} outlived the killed search"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

/// SIGTERM with three probes in flight: each one's process group is stopped, none is recorded
/// as finished, and the exit code names the signal.
#[test]
fn a_stop_signal_cancels_every_probe_in_flight() {
    let d = dir("parallel-signal");
    let (mut child, groups) = three_probes_in_flight(&d);
    send(child.id(), libc::SIGTERM);
    let status = wait_with_deadline(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(143), "{err}");
    for g in &groups {
        assert!(!group_alive(*g), "probe group {g} still runs: {err}");
    }
    let text = std::fs::read_to_string(d.join("runs.jsonl")).unwrap();
    assert_eq!(text.matches("\"event\":\"launch\"").count(), 3, "{text}");
    assert_eq!(text.matches("\"event\":\"probe\"").count(), 0, "{text}");
    let _ = std::fs::remove_dir_all(d);
}

/// A journal that cannot be opened as asked (one there without `--resume`, none there with
/// it) is refused before the local backend generates its dataset: nothing is made first.
#[test]
fn a_journal_that_cannot_be_opened_is_refused_before_the_dataset_is_made() {
    let d = dir("early");
    std::fs::write(
        d.join("space.toml"),
        "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"threads\"\n\
         count_unit = \"vcpu\"\n[catalogue.dimensions]\nthreads = [1, 2]\n\
         [workload]\ndataset = \"photos\"\ngenerate = { images = 40, seed = 1 }\n\
         tasks = [\"preprocess\"]\n",
    )
    .unwrap();
    let j = d.join("runs.jsonl");
    journal(&j, serde_json::json!({}), 1);
    let before = std::fs::read(&j).unwrap();
    let space = d.join("space.toml").display().to_string();
    let search = |journal: &Path, resume: bool| {
        let mut args = vec![
            "search",
            "--backend",
            "local",
            "--space",
            &space,
            "--journal",
        ];
        let journal = journal.display().to_string();
        args.push(&journal);
        if resume {
            args.push("--resume");
        }
        run(&args)
    };
    let o = search(&j, false);
    refused(&o, "journal already exists");
    assert_eq!(std::fs::read(&j).unwrap(), before);
    let o = search(&d.join("none.jsonl"), true);
    refused(&o, "no journal there to --resume");
    assert!(!d.join("photos").exists(), "a dataset was made first");
    let _ = std::fs::remove_dir_all(d);
}

/// `compare` and `tune` never write their reports over (or into) what they read, refuse an output
/// folder they cannot make before any replay runs, take one dataset under two spellings as given
/// twice, and refuse a FIFO or a device as a dataset instead of blocking on it or reading it for
/// ever.
#[test]
fn reports_never_replace_what_they_read_and_datasets_are_regular_files() {
    let d = dir("reports-inputs");
    let same = d.join("same");
    std::fs::create_dir_all(&same).unwrap();
    let csv = same.join("traces.csv");
    let text = "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,20,1,2\nw,c,30,3,3\n\
                v,a,30,3,1\nv,b,20,1,2\nv,c,10,1,3\n";
    std::fs::write(&csv, text).unwrap();
    let csv_arg = csv.to_str().unwrap();
    let same_arg = same.to_str().unwrap();
    let under_a_file = csv.join("sub");
    // Resolves to the dataset's folder only once `new` is made: refused, and `new` removed.
    let through_new = format!("{}/new/..", same.display());
    let respelled = format!("{}/./traces.csv", same.display());
    let fifo = d.join("fifo.csv");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo_arg = fifo.to_str().unwrap();
    let zero = d.join("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let out = d.join("out");
    let out_arg = out.to_str().unwrap();
    let quick = ["--seeds", "1", "--budget", "3"];
    for (args, want) in [
        (
            vec!["compare", "--dataset", csv_arg, "--out", same_arg],
            "traces.csv is read from there",
        ),
        (
            vec!["compare", "--dataset", csv_arg, "--out", &through_new],
            "traces.csv is read from there",
        ),
        (
            vec![
                "tune",
                "--dataset",
                csv_arg,
                "--folds",
                "2",
                "--out",
                same_arg,
            ],
            "traces.csv is read from there",
        ),
        (
            vec![
                "compare",
                "--dataset",
                csv_arg,
                "--out",
                under_a_file.to_str().unwrap(),
            ],
            "cannot create the folder",
        ),
        (
            vec![
                "tune",
                "--dataset",
                csv_arg,
                "--dataset",
                &respelled,
                "--folds",
                "datasets",
            ],
            "is given twice",
        ),
        (
            vec![
                "tune",
                "--dataset",
                csv_arg,
                "--folds",
                "datasets",
                "--out",
                out_arg,
            ],
            "needs at least two --dataset",
        ),
        (
            vec![
                "compare",
                "--dataset",
                csv_arg,
                "--strategies",
                "bo,random,bo",
            ],
            "strategy `bo` is listed twice",
        ),
        (
            vec![
                "tune",
                "--dataset",
                csv_arg,
                "--candidates",
                "bo,bo:initial=4",
                "--folds",
                "2",
            ],
            "--candidates: `bo:initial=4` has the same settings as `bo`",
        ),
        (
            vec!["compare", "--dataset", fifo_arg, "--out", out_arg],
            "not a regular file",
        ),
        (
            vec![
                "tune",
                "--dataset",
                zero.to_str().unwrap(),
                "--out",
                out_arg,
            ],
            "not a regular file",
        ),
    ] {
        let (status, err) = run_within_a_minute(&[&args[..], &quick[..]].concat());
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("comparing") && !err.contains("tuning"),
            "{args:?} ran: {err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        text,
        "the dataset is intact"
    );
    assert_eq!(
        std::fs::read_dir(&same).unwrap().count(),
        1,
        "nothing written beside it"
    );
    // An --out holding a link to the dataset under a report's name, a hard link to it, and a
    // FIFO: each is replaced by the report, never written through or waited on.
    let links = d.join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(&csv, links.join("traces.csv")).unwrap();
    std::fs::hard_link(&csv, links.join("summary.md")).unwrap();
    let c =
        std::ffi::CString::new(links.join("summary.json").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let links_arg = links.to_str().unwrap();
    let compare = ["compare", "--dataset", csv_arg, "--strategies", "grid"];
    let (status, err) =
        run_within_a_minute(&[&compare[..], &quick[..], &["--out", links_arg]].concat());
    assert!(status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        text,
        "the dataset is intact"
    );
    for report in ["traces.csv", "summary.md", "summary.json"] {
        let meta = std::fs::symlink_metadata(links.join(report)).unwrap();
        assert!(meta.is_file(), "{report} is a file of its own: {meta:?}");
    }
    assert!(std::fs::read_to_string(links.join("traces.csv"))
        .unwrap()
        .starts_with("workload,strategy,seed"));
    let hidden: Vec<_> = std::fs::read_dir(&links)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "temporaries left: {hidden:?}");
    // A compare that fails after making its output folders (no configuration meets a 1 s
    // limit) leaves none of them behind.
    let made = d.join("new").join("deeper");
    let o = run(&[
        "compare",
        "--dataset",
        csv_arg,
        "--max-runtime",
        "1",
        "--seeds",
        "1",
        "--budget",
        "3",
        "--out",
        made.to_str().unwrap(),
    ]);
    refused(&o, "runtime limit of 1 s");
    assert!(!d.join("new").exists(), "an empty output folder was left");
    // A folder under a report's name is refused before anything is replayed or written.
    let taken = d.join("taken");
    std::fs::create_dir_all(taken.join("traces.csv")).unwrap();
    let o = run(&[
        "compare",
        "--dataset",
        csv_arg,
        "--seeds",
        "1",
        "--out",
        taken.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`traces.csv` there is a folder") && !stderr(&o).contains("comparing"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(&taken).unwrap().count(),
        1,
        "nothing written"
    );
    // Without --folds, tune takes one fold per workload when there are fewer than 6.
    let tuned = run(&[
        "tune",
        "--dataset",
        csv_arg,
        "--candidates",
        "bo,bo:initial=2",
        "--seeds",
        "1",
        "--budget",
        "3",
        "--out",
        d.join("tuned").to_str().unwrap(),
    ]);
    assert!(tuned.status.success(), "{}", stderr(&tuned));
    assert!(
        stderr(&tuned).contains("2 folds: one per workload (the datasets hold 2)"),
        "{}",
        stderr(&tuned)
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A space file or a price file that is a FIFO or a device is refused at once, naming it: a
/// FIFO used to block the search until a writer came, `/dev/zero` to be read without end.
#[test]
fn a_space_or_price_file_that_is_not_a_regular_file_is_refused_at_once() {
    let d = dir("space-fifo");
    let fifo = d.join("space.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let o = run(&[
        "search",
        "--backend",
        "command",
        "--dry-run",
        "--space",
        fifo.to_str().unwrap(),
    ]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("space.toml") && stderr(&o).contains("not a regular file"),
        "{}",
        stderr(&o)
    );
    let space = d.join("real.toml");
    std::fs::write(&space, space_file("0")).unwrap();
    let o = run(&[
        "search",
        "--backend",
        "command",
        "--dry-run",
        "--space",
        space.to_str().unwrap(),
        "--prices",
        "/dev/zero",
    ]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/dev/zero") && stderr(&o).contains("not a regular file"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A signal during `workload preprocess` stops it the orderly way: no new image, the shards
/// this run committed removed (none is left looking finished), exit 128 + the signal.
#[test]
fn a_signal_during_preprocess_leaves_no_finished_looking_shard() {
    let d = dir("preprocess-signal");
    let data = d.join("data");
    let gen = run(&[
        "workload",
        "gen-dataset",
        "--out",
        data.to_str().unwrap(),
        "--images",
        "400",
    ]);
    assert!(gen.status.success(), "{}", stderr(&gen));
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let out = d.join(format!("out-{signal}"));
        // Large outputs and many shards: slow enough that shards are committed well before
        // the end, which the test waits to see before it signals.
        let mut child = preprocess_command(&data, &out, "1536").spawn().unwrap();
        let started = std::time::Instant::now();
        while shard_names(&out).is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no shard committed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        send(child.id(), signal);
        let (status, err) = finish(&mut child);
        assert_eq!(status.code(), Some(code), "{err}");
        assert!(err.contains("stopping: no new image"), "{err}");
        assert_eq!(shard_names(&out), Vec::<String>::new(), "{err}");
    }
    // Started with SIGHUP ignored (as `nohup` starts it), a hangup is let pass: the run ends
    // as it would have, every shard written.
    let out = d.join("out-nohup");
    let mut nohup = preprocess_command(&data, &out, "256");
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: as in default_stop_signals (run after it: the later closure wins).
        unsafe {
            nohup.pre_exec(|| {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    let mut child = nohup.spawn().unwrap();
    let started = std::time::Instant::now();
    while !out.exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "no output");
        std::thread::sleep(Duration::from_millis(5));
    }
    send(child.id(), libc::SIGHUP);
    let (status, err) = finish(&mut child);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("SIGHUP"), "{err}");
    assert_eq!(shard_names(&out).len(), 40, "{err}");
    let _ = std::fs::remove_dir_all(d);
}

/// `workload preprocess` of `data` into `out` at output side `size`, 40 shards, one thread,
/// with the stop signals at their defaults.
fn preprocess_command(data: &Path, out: &Path, size: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["workload", "preprocess", "--input"])
        .arg(data)
        .arg("--output")
        .arg(out)
        .args(["--shards", "40", "--size", size, "--threads", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    default_stop_signals(&mut c);
    c
}

/// The `*.tfrec` files in `out` (none when it is missing).
fn shard_names(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tfrec"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (at most a minute) for `child`; its status and stderr.
fn finish(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let status = wait_with_deadline(child, Duration::from_secs(60));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status, err)
}

/// `demo` whose journal's name is taken by a folder says so as bad input (exit 2), as a search
/// starting its journal does, before anything is generated.
#[test]
fn a_demo_whose_journal_is_a_folder_is_refused() {
    let d = dir("demo-folder");
    std::fs::create_dir_all(d.join("demo.jsonl")).unwrap();
    let o = run(&["demo", "--cache", d.to_str().unwrap()]);
    refused(&o, "demo.jsonl: not a regular file");
    assert_eq!(
        std::fs::read_dir(&d).unwrap().count(),
        1,
        "nothing generated"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A search in which no probe completed ran as asked but has no answer: it exits 3, not 0, so a
/// script cannot take it for one; a resume that completes a probe ends with 0.
#[test]
fn a_search_that_completes_no_probe_exits_3() {
    let d = dir("no-answer");
    std::fs::write(
        d.join("space.toml"),
        r#"
[catalogue]
machine_types = ["e2-standard-2"]
count = "workers"
[catalogue.dimensions]
workers = [1, 2, 4]
[backend.command]
template = "test {workers} -ge 4 || exit 1; echo CHERRYPICK_METRIC runtime_s=5"
"#,
    )
    .unwrap();
    let search = |budget: &str, resume: bool| {
        let mut c = Command::new(BIN);
        c.args(["search", "--backend", "command", "--strategy", "grid"])
            .args(["--budget", budget, "--space"])
            .arg(d.join("space.toml"))
            .arg("--journal")
            .arg(d.join("runs.jsonl"));
        if resume {
            c.arg("--resume");
        }
        c.output().unwrap()
    };
    let first = search("2", false);
    assert_eq!(first.status.code(), Some(3), "{}", stderr(&first));
    assert!(stdout(&first).contains("best: none"), "{}", stdout(&first));
    assert!(
        stderr(&first).contains("the search has no answer: none of the 2 probes completed"),
        "{}",
        stderr(&first)
    );
    let journal = Journal::read(&d.join("runs.jsonl")).unwrap();
    assert_eq!(journal.records.len(), 2);
    assert!(journal
        .records
        .iter()
        .all(|r| r.outcome.completed_cost().is_none()));
    let resumed = search("3", true);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert!(
        stdout(&resumed).contains("best: workers=4"),
        "{}",
        stdout(&resumed)
    );
    // A spend limit that lets no probe run says so.
    let broke = Command::new(BIN)
        .args(["search", "--backend", "command", "--strategy", "grid"])
        .args(["--max-spend", "1e-9", "--probe-timeout", "10", "--space"])
        .arg(d.join("space.toml"))
        .arg("--journal")
        .arg(d.join("broke.jsonl"))
        .output()
        .unwrap();
    assert_eq!(broke.status.code(), Some(3), "{}", stderr(&broke));
    assert!(
        stderr(&broke).contains("the search has no answer: no probe ran (spend limit: $0 spent"),
        "{}",
        stderr(&broke)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// A search whose journal cannot take its header (writes past the file-size limit fail, as on
/// a full disk) leaves neither an empty journal nor a lock note naming no one.
#[test]
fn a_journal_whose_header_cannot_be_written_is_not_left_behind() {
    use std::os::unix::process::CommandExt;
    let d = dir("no-room");
    let path = d.join("runs.jsonl");
    let mut c = search(&d, &path, "0", &["--budget", "1"]);
    // SAFETY: between fork and exec the closure only calls signal() and setrlimit(), which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        c.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &none) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = c.output().unwrap();
    // The machine's failure, not the user's input: exit 1.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("runs.jsonl"), "{}", stderr(&o));
    assert!(!path.exists(), "an empty journal was left");
    assert!(!d.join("runs.jsonl.lock").exists(), "a lock note was left");
    let _ = std::fs::remove_dir_all(d);
}

/// A `$CHERRYPICK_FONT` that cannot be used is said, naming it and why, by both commands that
/// draw plots (it was passed over in silence for the system's font).
#[test]
fn a_font_that_cannot_be_used_is_named() {
    let d = dir("font");
    let not_a_font = d.join("font.ttf");
    std::fs::write(&not_a_font, "not a font\n").unwrap();
    let csv = d.join("rs.csv");
    std::fs::write(
        &csv,
        "batch_size,batch_number,images_per_s\n8,2,100\n16,4,150\n32,8,230\n8,8,120\n16,2,140\n",
    )
    .unwrap();
    let traces = d.join("traces.csv");
    std::fs::write(
        &traces,
        "workload,config,runtime_s,cost_usd,x\nw,a,10,1,1\nw,b,20,1,2\nw,c,30,3,3\n",
    )
    .unwrap();
    let mut regress = Command::new(BIN);
    regress
        .args(["workload", "regress"])
        .arg(&csv)
        .arg("--out")
        .arg(d.join("regress"));
    let mut compare = Command::new(BIN);
    compare
        .args([
            "compare",
            "--strategies",
            "grid",
            "--seeds",
            "1",
            "--budget",
            "2",
        ])
        .arg("--dataset")
        .arg(&traces)
        .arg("--out")
        .arg(d.join("compare"));
    for c in [&mut regress, &mut compare] {
        let o = c.env("CHERRYPICK_FONT", &not_a_font).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let want = format!(
            "warning: CHERRYPICK_FONT={} cannot be used (not a TrueType or OpenType font)",
            not_a_font.display()
        );
        assert_eq!(stderr(&o).matches(&want).count(), 1, "{}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(d);
}
