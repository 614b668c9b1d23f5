//! End to end: a live `cherrypick search` with the command backend is killed with SIGKILL
//! mid-way, resumed from its journal, and ends with the same answer and the same probes as an
//! uninterrupted search with the same seed; plus the spend limit and journal refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_cherrypick");

/// Each probe sleeps 0.3 s and reports a configuration-dependent runtime (3.6 to 15.1 s, within
/// the 20 s probe time limit), so answers are deterministic while the search is slow enough to
/// be killed between probes.
const SPACE: &str = r#"
[catalogue]
machine_types = ["e2-standard-2", "n2-standard-4"]
count = "workers"
[catalogue.dimensions]
workers = [1, 2, 4, 8]
partitions = [8, 32, 128]
[backend.command]
template = '''sleep 0.3; awk -v w={workers} -v c={vcpus} -v p={partitions} 'BEGIN {{ par = w * c; if (par > p) par = p; printf "CHERRYPICK_METRIC runtime_s=%.3f\n", 30 / par + 0.06 * w + 0.0005 * p }}' '''
"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cp-search-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("space.toml"), SPACE).unwrap();
    d
}

fn search(d: &Path, journal: &str, extra: &[&str]) -> Command {
    search_with_seed(d, journal, "5", extra)
}

fn search_with_seed(d: &Path, journal: &str, seed: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "search",
        "--backend",
        "command",
        "--strategy",
        "random",
        "--seed",
        seed,
    ])
    .args(["--probe-timeout", "20"])
    .arg("--space")
    .arg(d.join("space.toml"))
    .arg("--journal")
    .arg(d.join(journal))
    .args(extra);
    c
}

/// `--resume` of `journal` by the same search as [`search`], but with no limit given but
/// `extra`'s: what a resume keeps from the journal shows.
fn resume_with_only(d: &Path, journal: &str, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["search", "--backend", "command", "--strategy", "random"])
        .args(["--seed", "5", "--resume", "--space"])
        .arg(d.join("space.toml"))
        .arg("--journal")
        .arg(d.join(journal))
        .args(extra)
        .output()
        .unwrap()
}

fn probes(journal: &Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "probe")
        .map(|v| v["config"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The line naming the best configuration found (a search that found none exits 3, not 0).
fn best_line(out: &[u8]) -> String {
    let line = String::from_utf8_lossy(out)
        .lines()
        .find(|l| l.starts_with("best:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.starts_with("best: e2-") || line.starts_with("best: n2-"),
        "{line}"
    );
    line
}

#[test]
fn killed_search_resumes_to_the_same_answer() {
    let d = dir("resume");
    let whole = search(&d, "whole.jsonl", &["--budget", "8"])
        .output()
        .unwrap();
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let whole_probes = probes(&d.join("whole.jsonl"));
    assert_eq!(whole_probes.len(), 8);

    let journal = d.join("cut.jsonl");
    let mut child = search(&d, "cut.jsonl", &["--budget", "8"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while probes_or_empty(&journal) < 3 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let cut = probes(&journal).len();
    assert!((3..8).contains(&cut), "killed after {cut} probes");

    let resumed = search(&d, "cut.jsonl", &["--budget", "8", "--resume"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(resumed.status.success(), "{stdout}");
    assert!(stdout.contains("resuming"), "{stdout}");
    assert_eq!(probes(&journal), whole_probes, "same probes, none re-run");
    assert_eq!(best_line(&resumed.stdout), best_line(&whole.stdout));
}

/// The journal's events of one kind (`probe` or `launch`), as JSON.
fn events(journal: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(journal)
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == kind)
        .collect()
}

fn sorted_configs(events: &[serde_json::Value]) -> Vec<String> {
    let mut c: Vec<String> = events
        .iter()
        .map(|v| v["config"].as_str().unwrap_or_default().to_string())
        .collect();
    c.sort();
    c
}

#[test]
fn parallel_search_keeps_three_in_flight_and_a_killed_one_reruns_those_running() {
    let d = dir("parallel");
    let whole = search(&d, "whole.jsonl", &["--budget", "9", "--parallel", "3"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(whole.status.success(), "{stderr}");
    let journal = d.join("whole.jsonl");
    let header: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&journal)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["version"]["minor"], 1);
    assert_eq!(header["options"]["parallel"], 3);
    let launches = events(&journal, "launch");
    let finished = events(&journal, "probe");
    assert_eq!((launches.len(), finished.len()), (9, 9));
    // Every probe once, each with the number of its launch.
    let mut numbers: Vec<u64> = finished
        .iter()
        .map(|p| p["launch"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..9).collect::<Vec<u64>>());
    assert_eq!(sorted_configs(&launches), sorted_configs(&finished));
    // Never more than three running: at each launch, count the probes started and not yet
    // finished (RFC 3339 times of one format compare as strings).
    let span = |p: &serde_json::Value| {
        (
            p["started"].as_str().unwrap().to_string(),
            p["finished"].as_str().unwrap().to_string(),
        )
    };
    let spans: Vec<(String, String)> = finished.iter().map(span).collect();
    let most = spans
        .iter()
        .map(|(t, _)| spans.iter().filter(|(a, b)| a <= t && t < b).count())
        .max()
        .unwrap();
    assert!((2..=3).contains(&most), "{most} probes ran at once");
    // Replayed with as many in flight, each probe taking the time it took.
    let replay = Command::new(BIN)
        .args(["replay", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}");
    assert!(text.contains("up to 3 probes at once"), "{text}");
    assert!(
        text.contains("asked for exactly the recorded probes"),
        "{text}"
    );
    assert_eq!(best_line(&replay.stdout), best_line(&whole.stdout));

    // Killed with probes in flight, resumed: the ones running are run again first, every probe
    // ends up recorded once, and the answer is the uninterrupted one.
    let cut = d.join("cut.jsonl");
    let mut child = search(&d, "cut.jsonl", &["--budget", "9", "--parallel", "3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while (!cut.exists() || events(&cut, "probe").len() < 2)
        && t.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = events(&cut, "probe").len();
    let running = events(&cut, "launch").len() - done;
    assert!(
        (2..9).contains(&done) && running >= 1,
        "killed with {done} done, {running} running"
    );
    // Resumed with a budget the finished probes already reach, none of them runs again.
    std::fs::copy(&cut, d.join("full.jsonl")).unwrap();
    let budget = done.to_string();
    let full = search(
        &d,
        "full.jsonl",
        &["--budget", &budget, "--parallel", "3", "--resume"],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&full.stdout);
    assert!(full.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "the budget ({done} probes) is reached, so none runs again"
        )),
        "{stdout}"
    );
    assert_eq!(events(&d.join("full.jsonl"), "probe").len(), done);
    let resumed = search(
        &d,
        "cut.jsonl",
        &["--budget", "9", "--parallel", "3", "--resume"],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(resumed.status.success(), "{stdout}");
    assert!(stdout.contains("running them again first"), "{stdout}");
    let finished_after = events(&cut, "probe");
    assert_eq!(sorted_configs(&finished_after), sorted_configs(&finished));
    assert_eq!(best_line(&resumed.stdout), best_line(&whole.stdout));
}

fn probes_or_empty(journal: &Path) -> usize {
    std::fs::read_to_string(journal)
        .map(|t| {
            t.lines()
                .skip(1)
                .filter(|l| l.ends_with('}') && l.contains("\"event\":\"probe\""))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn resume_refuses_another_seed_and_spend_limit_holds() {
    let d = dir("refuse");
    let ok = search(&d, "j.jsonl", &["--budget", "2"]).output().unwrap();
    assert!(ok.status.success());
    let other = search_with_seed(&d, "j.jsonl", "6", &["--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{err}");
    assert!(err.contains("seed 5"), "{err}");
    // A dry run plans a new search and reads no journal: not with --resume.
    let dry = search(&d, "j.jsonl", &["--resume", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");

    // The same catalogue running another job (here the command's sleep changed) is another
    // search: its probes' figures would not compare with the recorded ones.
    let space = std::fs::read_to_string(d.join("space.toml")).unwrap();
    std::fs::write(
        d.join("space.toml"),
        space.replace("sleep 0.3;", "sleep 0.2;"),
    )
    .unwrap();
    let other_job = search(&d, "j.jsonl", &["--resume"]).output().unwrap();
    let err = String::from_utf8_lossy(&other_job.stderr);
    assert_eq!(other_job.status.code(), Some(2), "{err}");
    assert!(
        err.contains("belongs to another search: it ran another job: `backend.command.template`"),
        "{err}"
    );
    assert_eq!(
        probes_or_empty(&d.join("j.jsonl")),
        2,
        "nothing recorded was lost"
    );
    std::fs::write(d.join("space.toml"), space).unwrap();
    let same_job = search(&d, "j.jsonl", &["--resume", "--budget", "3"])
        .output()
        .unwrap();
    assert!(
        same_job.status.success(),
        "{}",
        String::from_utf8_lossy(&same_job.stderr)
    );

    // n2-standard-4 x 8 for 20 s is $0.0086: a $0.01 limit allows one such probe at most.
    let capped = search(&d, "s.jsonl", &["--budget", "8", "--max-spend", "0.01"])
        .output()
        .unwrap();
    assert!(capped.status.success());
    let out = String::from_utf8_lossy(&capped.stdout);
    assert!(out.contains("stopped: spend limit"), "{out}");
    let text = std::fs::read_to_string(d.join("s.jsonl")).unwrap();
    let spent: f64 = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["outcome"]["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(spent <= 0.01, "spent {spent}");

    // A journal whose launch numbers a hand edit pushed beyond any search's is not resumed
    // (the numbers it would write could not be read back), and is left as it was.
    let ok = search(&d, "l.jsonl", &["--budget", "2", "--parallel", "2"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let text = std::fs::read_to_string(d.join("l.jsonl")).unwrap();
    assert!(text.contains("\"launch\":1"), "{text}");
    let edited = text.replace("\"launch\":1", "\"launch\":3000000000");
    std::fs::write(d.join("l.jsonl"), &edited).unwrap();
    let refused = search(&d, "l.jsonl", &["--budget", "3", "--resume"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("its launch numbers reach 3000000000"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("l.jsonl")).unwrap(), edited);

    // Resumed without the options, the search keeps the budget and the spend limit it was
    // started with (its header records them): the cap is not passed by leaving the flag out.
    let resumed = search(&d, "s.jsonl", &["--resume"]).output().unwrap();
    let out = String::from_utf8_lossy(&resumed.stdout);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        out.contains("keeping the journal's budget 8 (--budget), spend limit $0.01 (--max-spend)"),
        "{out}"
    );
    // A resume that raises the budget is what a later bare resume keeps (the header holds
    // only the first run's): it goes on to the raised budget, not back to the first.
    let raised = search(
        &d,
        "s.jsonl",
        &["--resume", "--budget", "9", "--max-spend", "0.02"],
    )
    .output()
    .unwrap();
    assert!(raised.status.success());
    let again = search(&d, "s.jsonl", &["--resume"]).output().unwrap();
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{out}");
    assert!(
        out.contains("keeping the journal's budget 9 (--budget), spend limit $0.02 (--max-spend)"),
        "{out}"
    );
    let text = std::fs::read_to_string(d.join("s.jsonl")).unwrap();
    assert_eq!(text.matches("\"event\":\"resumed\"").count(), 3, "{text}");
    let after: f64 = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "probe")
        .map(|v| v["outcome"]["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(after <= 0.02, "spent {after} after the resumes");

    // The probe time limit is kept too, with or without a spend limit: a resume without
    // --probe-timeout (and no runtime limit in the space file) would otherwise let probes run
    // unbounded where the recorded ones were stopped at 20 s.
    assert!(search(&d, "t.jsonl", &["--budget", "1"])
        .output()
        .unwrap()
        .status
        .success());
    let bare = resume_with_only(&d, "t.jsonl", &["--budget", "2"]);
    let out = String::from_utf8_lossy(&bare.stdout);
    assert!(bare.status.success(), "{out}");
    assert!(
        out.contains("keeping the journal's probe time limit 20 s (--probe-timeout)"),
        "{out}"
    );
    let text = std::fs::read_to_string(d.join("t.jsonl")).unwrap();
    let resumed: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "resumed")
        .expect("a resumed event");
    assert_eq!(resumed["options"]["probe_timeout_s"], 20.0, "{text}");
    // Given now, it is not overridden and nothing is said of it.
    let given = search(&d, "t.jsonl", &["--resume", "--budget", "3"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&given.stdout);
    assert!(given.status.success(), "{out}");
    assert!(!out.contains("probe time limit"), "{out}");

    // A recorded limit that is there but is no limit (a hand edit) is refused, naming where:
    // read as "none", it would lift the cap a bare resume keeps. A whole number written as
    // 2.0 is a budget.
    let text = std::fs::read_to_string(d.join("t.jsonl")).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_resumed = lines.iter().rposition(|v| v["event"] == "resumed").unwrap();
    let options = lines[last_resumed]["options"].clone();
    for (key, value, ok) in [
        ("budget", serde_json::json!(3.0), true),
        ("budget", serde_json::json!(10_000_000_000u64), true),
        ("budget", serde_json::json!(2.5), false),
        ("budget", serde_json::json!("3"), false),
        ("max_spend_usd", serde_json::json!(-1), false),
        ("probe_timeout_s", serde_json::json!(1e308), false),
    ] {
        lines[last_resumed]["options"][key] = value.clone();
        let edited: String = lines.iter().map(|v| format!("{v}\n")).collect();
        std::fs::write(d.join("u.jsonl"), &edited).unwrap();
        let out = resume_with_only(&d, "u.jsonl", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        lines[last_resumed]["options"] = options.clone();
        if ok {
            assert!(out.status.success(), "{key} {value}: {err}");
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                said.contains(&format!("keeping the journal's budget {value}").replace(".0", "")),
                "{said}"
            );
        } else {
            assert_eq!(out.status.code(), Some(2), "{key} {value}: {err}");
            assert!(
                err.contains("u.jsonl: its last `resumed` event")
                    && err.contains(&format!("field `options.{key}`")),
                "{err}"
            );
            assert_eq!(std::fs::read_to_string(d.join("u.jsonl")).unwrap(), edited);
            // A flag that sets another value makes the recorded one moot: resumed.
            let flag = match key {
                "budget" => ["--budget", "3"],
                "max_spend_usd" => ["--max-spend", "1"],
                _ => ["--probe-timeout", "20"],
            };
            let given = resume_with_only(&d, "u.jsonl", &flag);
            assert!(
                given.status.success(),
                "{key} {value} with {flag:?}: {}",
                String::from_utf8_lossy(&given.stderr)
            );
        }
    }

    // --max-runtime sets the probe time limit as --probe-timeout does: given, the recorded
    // one is not kept.
    let out = resume_with_only(&d, "t.jsonl", &["--budget", "4", "--max-runtime", "60"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("probe time limit"), "{said}");
}

/// Probe rows of the progress table, with the replay's `*` (from the journal) removed.
fn probe_rows(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| {
            let mut f = l.split_whitespace();
            f.next().is_some_and(|n| n.parse::<usize>().is_ok())
                && f.next().is_some_and(|c| c.contains('/'))
        })
        .map(|l| l.replace('*', " "))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn replay_of_a_journal_shows_the_search_as_it_ran() {
    let d = dir("replay");
    // bo with a limit the jobs meet, so the rows have costs, a best and expected improvements.
    let ran = Command::new(BIN)
        .args(["search", "--backend", "command", "--budget", "6"])
        .args(["--probe-timeout", "1000", "--space"])
        .arg(d.join("space.toml"))
        .arg("--journal")
        .arg(d.join("j.jsonl"))
        .output()
        .unwrap();
    assert!(ran.status.success());
    let replay = Command::new(BIN)
        .args(["replay", "--journal"])
        .arg(d.join("j.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&replay.stdout);
    assert!(replay.status.success(), "{text}");
    assert_eq!(
        probe_rows(&replay.stdout),
        probe_rows(&ran.stdout),
        "{text}"
    );
    assert_eq!(probe_rows(&ran.stdout).len(), 6);
    assert!(text.contains("completed*"), "{text}");
    assert_eq!(best_line(&replay.stdout), best_line(&ran.stdout));
    assert!(
        text.contains("asked for exactly the recorded probes"),
        "{text}"
    );

    // Another seed chooses other configurations: the replay says so instead of inventing runs.
    let other = Command::new(BIN)
        .args(["replay", "--seed", "99", "--journal"])
        .arg(d.join("j.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(other.status.success(), "{text}");
    assert!(text.contains("not in the journal"), "{text}");
    assert!(text.contains("chooses differently"), "{text}");
    // With a budget it never reaches, that is still why: the budget cut nothing.
    let other = Command::new(BIN)
        .args(["replay", "--seed", "99", "--budget", "5", "--journal"])
        .arg(d.join("j.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&other.stdout);
    assert!(other.status.success(), "{text}");
    assert!(text.contains("chooses differently"), "{text}");
    assert!(!text.contains("--budget 5"), "{text}");

    // --budget replays the first probes only, and says so; the options of a dataset replay
    // are refused with a journal rather than ignored.
    let first = Command::new(BIN)
        .args(["replay", "--budget", "2", "--journal"])
        .arg(d.join("j.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert_eq!(
        probe_rows(&first.stdout),
        probe_rows(&ran.stdout)[..2],
        "{text}"
    );
    assert!(text.contains("budget of 2 evaluations used"), "{text}");
    assert!(
        text.contains(
            "--budget 2 of the journal's 6 probes: 4 of the recorded probes were not asked for"
        ),
        "{text}"
    );
    for option in [
        &["--json"][..],
        &["--workload", "w"],
        &["--data-dir", "/tmp"],
        &["--failed-runtime", "10"],
    ] {
        let refused = Command::new(BIN)
            .arg("replay")
            .args(option)
            .arg("--journal")
            .arg(d.join("j.jsonl"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{option:?}: {err}");
        assert!(err.contains("cannot be used with"), "{option:?}: {err}");
    }

    // A header claiming more probes in flight than any search runs (a hand edit) is refused,
    // not sized into memory.
    let text = std::fs::read_to_string(d.join("j.jsonl")).unwrap();
    assert!(text.contains("\"options\":{"));
    let edited = text.replacen(
        "\"options\":{",
        "\"options\":{\"parallel\":18446744073709551615,",
        1,
    );
    std::fs::write(d.join("wide.jsonl"), edited).unwrap();
    let wide = Command::new(BIN)
        .args(["replay", "--journal"])
        .arg(d.join("wide.jsonl"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&wide.stderr);
    assert_eq!(wide.status.code(), Some(2), "{err}");
    assert!(
        err.contains("its header's `parallel` is 18446744073709551615"),
        "{err}"
    );

    // A journal with no finished probe has nothing to replay, and says so.
    let header = std::fs::read_to_string(d.join("j.jsonl")).unwrap();
    let header = header.lines().next().unwrap();
    std::fs::write(d.join("none.jsonl"), format!("{header}\n")).unwrap();
    let none = Command::new(BIN)
        .args(["replay", "--journal"])
        .arg(d.join("none.jsonl"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&none.stdout);
    assert!(none.status.success(), "{text}");
    assert!(text.contains("holds no finished probe"), "{text}");
    assert!(probe_rows(&none.stdout).is_empty(), "{text}");

    // A journal that is not one is refused naming the file.
    std::fs::write(d.join("bad.jsonl"), "{\"hello\": 1}\n").unwrap();
    let bad = Command::new(BIN)
        .args(["replay", "--journal"])
        .arg(d.join("bad.jsonl"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad.jsonl"));
}
