//! The `command` backend: runs any job as a shell command rendered from a template, in its own
//! process group, measures its runtime, keeps a bounded tail of its output for the journal, and
//! enforces the probe's time limit by killing the whole group.
//!
//! A job may report its own figures on stdout as lines `CHERRYPICK_METRIC name=value`; a
//! `runtime_s` metric replaces the measured wall time as the runtime the model sees (the job's
//! own timing, as a Spark driver reports it), and every metric is kept in the outcome. What a
//! probe spends is never taken from the job: it is the wall time from launch until its process
//! group is gone, kept as the `spend_usd` metric when it is more than the modelled cost.
//!
//! Values are put into the template shell-quoted (a value that is only letters, digits and
//! `_-.,:/=+@%` as it is), so a value is always one word and never shell code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use optimizer::{ConfigId, ProbeLimits, Report, Runner, Space, SPEND_METRIC};

use crate::error::Error;
use crate::limits::{completed, failed, past_limit, timed_out, MAX_REPORTED_S};
use crate::process::{self, End, Keep};
use crate::spacefile::{CommandSpec, SearchSpec};
use crate::template::{placeholders, render_with, TemplateError};

pub use crate::process::METRIC_PREFIX;

/// How long a job gets between SIGTERM and SIGKILL when it is stopped.
const GRACE: Duration = Duration::from_secs(2);

/// Checks a command template against the names a configuration has (the space file calls this
/// for `[backend.command]`).
pub fn check_template(template: &str, known: &[&str]) -> Result<(), TemplateError> {
    let ps = placeholders(template)?;
    match ps.into_iter().find(|p| !known.contains(&p.as_str())) {
        Some(name) => Err(TemplateError::NotKnown {
            name,
            known: known.iter().map(|k| k.to_string()).collect(),
        }),
        None => Ok(()),
    }
}

/// Runs probes as shell commands.
pub struct CommandRunner {
    spec: Arc<SearchSpec>,
    command: CommandSpec,
    workdir: PathBuf,
}

impl CommandRunner {
    /// Needs a `[backend.command]` section in the space file.
    pub fn new(spec: Arc<SearchSpec>) -> Result<CommandRunner, Error> {
        let command = spec.backend.command.clone().ok_or_else(|| {
            Error::Setup(format!(
                "{}: the command backend needs a [backend.command] section with a template",
                spec.path.display()
            ))
        })?;
        let workdir = match &command.workdir {
            Some(w) => spec.resolve(w),
            None => spec.base_dir().to_path_buf(),
        };
        // Checked before any probe: else every probe fails to start, and the journal, which
        // keeps the job's settings, could not be resumed once the folder is put right.
        if !workdir.is_dir() {
            let why = match std::fs::metadata(&workdir) {
                Ok(_) => "not a folder".to_string(),
                Err(e) => e.to_string(),
            };
            return Err(Error::Setup(format!(
                "{}: backend.command.workdir: {} cannot be the jobs' working folder: {why}",
                spec.path.display(),
                workdir.display()
            )));
        }
        Ok(CommandRunner {
            spec,
            command,
            workdir,
        })
    }

    /// The command line for configuration `id`, every value shell-quoted.
    pub fn render(&self, id: ConfigId) -> Result<String, TemplateError> {
        let info = &self.spec.configs[id];
        let name = &self.spec.space.config(id).name;
        render_with(&self.command.template, |key| {
            Some(shell_quote(&match key {
                "machine_type" => info.machine_type.clone(),
                "vcpus" => info.vcpus.to_string(),
                "memory_gib" => info.memory_gib.to_string(),
                "count" => optimizer::Value::Num(info.count).to_string(),
                "price_per_hour" => info.price_per_hour.to_string(),
                "config" => name.clone(),
                other => info.params.get(other)?.to_string(),
            }))
        })
    }

    fn env(&self, id: ConfigId) -> Vec<(String, String)> {
        let info = &self.spec.configs[id];
        let mut env: Vec<(String, String)> = self
            .command
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push((
            "CHERRYPICK_CONFIG".into(),
            self.spec.space.config(id).name.clone(),
        ));
        env.push(("CHERRYPICK_MACHINE_TYPE".into(), info.machine_type.clone()));
        for (k, v) in &info.params {
            env.push((env_name(k), v.to_string()));
        }
        env
    }
}

/// The environment variable a dimension's value reaches the job as: `CHERRYPICK_` and the
/// name upper-cased, `-` as `_`.
pub fn env_name(dimension: &str) -> String {
    format!(
        "CHERRYPICK_{}",
        dimension.to_ascii_uppercase().replace('-', "_")
    )
}

/// `value` as one shell word: unchanged when it holds only characters no shell treats
/// specially (so numbers stay numbers, for `$(( {workers} * 2 ))`), else in single quotes with
/// each `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,:/=+@%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', "'\\''"))
}

impl Runner for CommandRunner {
    /// The price for the time limit plus the kill grace and its confirmation: the longest a
    /// probe can be charged for (see [`process::longest_charge`]).
    fn worst_case_usd(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> f64 {
        process::worst_case_usd(space, config, limits, GRACE)
    }

    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Report {
        let price = space.config(config).price_per_hour;
        let true_price = self.spec.configs[config].price_per_hour;
        let line = match self.render(config) {
            Ok(l) => l,
            Err(e) => return Report::new(failed(format!("template: {e}"), 0.0, price)),
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&line)
            .current_dir(&self.workdir)
            .envs(self.env(config));
        let keep = self.command.log_bytes;
        let keep_both = Keep {
            stdout_bytes: keep,
            stderr_bytes: keep,
            metrics: true,
            grace: GRACE,
        };
        let done = match process::run(&mut cmd, limits, keep_both).await {
            Ok(d) => d,
            Err(e) => {
                return Report::new(failed(
                    format!("could not start `sh -c` in {}: {e}", self.workdir.display()),
                    0.0,
                    price,
                ))
            }
        };
        let elapsed = done.elapsed_s;
        // Charged from launch until the group was gone, kill grace included.
        let charged = done.charged_s;
        if !done.group_gone {
            crate::note!(
                "command: a process of the probe's group outlived SIGKILL by {} s",
                process::KILL_CONFIRM.as_secs()
            );
        }
        let log = done.log(line, keep);
        let last_err_line = log
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", process::truncate(l.trim(), 200)))
            .unwrap_or_default();
        let outcome = match done.end {
            End::TimedOut => timed_out(charged, price),
            End::Interrupted => failed("interrupted by the user".into(), charged, price),
            End::Exited(Err(e)) => failed(format!("waiting for the job: {e}"), charged, price),
            End::Exited(Ok(status)) if !status.success() => failed(
                format!("{}{last_err_line}", process::describe_exit(&status)),
                charged,
                price,
            ),
            // A runtime the job reports is what the model learns: one that is no runtime is
            // the job's bug, said rather than replaced by the wall time unannounced.
            End::Exited(Ok(_)) if done.stdout.unreadable.contains_key("runtime_s") => failed(
                format!(
                    "the job reported runtime_s={}: a runtime is a number of seconds > 0",
                    done.stdout.unreadable["runtime_s"]
                ),
                charged,
                price,
            ),
            End::Exited(Ok(_))
                if done
                    .stdout
                    .metrics
                    .get("runtime_s")
                    .is_some_and(|r| !(r.is_finite() && *r > 0.0)) =>
            {
                failed(
                    format!(
                        "the job reported runtime_s={}: a runtime is a number of seconds > 0 \
                         (print more decimals for a very short one)",
                        optimizer::Shown(done.stdout.metrics["runtime_s"])
                    ),
                    charged,
                    price,
                )
            }
            // (With a time limit, at most a year, such a runtime is past it: timed out below.)
            End::Exited(Ok(_))
                if limits.timeout.is_none()
                    && done.stdout.metrics.get("runtime_s") > Some(&MAX_REPORTED_S) =>
            {
                failed(
                    format!(
                        "the job reported runtime_s={}: more than any run can take (at most \
                         {MAX_REPORTED_S:e} s)",
                        optimizer::Shown(done.stdout.metrics["runtime_s"])
                    ),
                    charged,
                    price,
                )
            }
            End::Exited(Ok(_)) => {
                let mut metrics = done.stdout.metrics;
                // Checked above: absent, or a positive number.
                let runtime = metrics.get("runtime_s").copied().unwrap_or(elapsed);
                metrics.insert("wall_s".into(), elapsed);
                match past_limit(runtime, limits, charged, price) {
                    // A reported runtime past the probe's limit means the job would have been
                    // stopped there: it did not meet the limit. Charged what it ran.
                    Some(timed_out) => timed_out,
                    None => {
                        // The model learns the job's runtime; the spend is the wall time.
                        metrics.insert(SPEND_METRIC.into(), price * charged / 3600.0);
                        completed(runtime, price, true_price, self.spec.objective, metrics)
                    }
                }
            }
        };
        Report::new(outcome).with_log(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spacefile::{parse, BackendKind, LoadOptions};
    use optimizer::Outcome;
    use std::path::Path;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    fn spec(template: &str) -> Arc<SearchSpec> {
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"workers\"\n\
             [catalogue.dimensions]\nworkers = [1, 2]\nmode = [\"ok\", \"fail\"]\n\
             [backend.command]\ntemplate = '''{template}'''\nlog_bytes = 64\n"
        );
        Arc::new(
            parse(
                &text,
                Path::new("/tmp/space.toml"),
                &LoadOptions {
                    backend: BackendKind::Command,
                    prices: None,
                },
            )
            .unwrap(),
        )
    }

    fn run(r: &CommandRunner, id: ConfigId, limits: &ProbeLimits) -> Report {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(r.run(&r.spec.space, id, limits))
    }

    /// A working folder that is missing, or a file, is refused before any probe runs.
    #[test]
    fn a_workdir_that_is_no_folder_is_refused_up_front() {
        let file = std::env::temp_dir().join(format!("cp-workdir-{}", std::process::id()));
        std::fs::write(&file, "").unwrap();
        let file = file.to_str().unwrap();
        for (workdir, want) in [
            (
                "/nonexistent-cherrypick-folder",
                "No such file or directory",
            ),
            (file, "not a folder"),
        ] {
            let mut s = (*spec("true")).clone();
            s.backend.command.as_mut().unwrap().workdir = Some(workdir.into());
            let err = match CommandRunner::new(Arc::new(s)) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("{workdir} accepted"),
            };
            assert!(
                err.starts_with("/tmp/space.toml: backend.command.workdir: ")
                    && err.contains(workdir)
                    && err.contains(want),
                "{err}"
            );
        }
        std::fs::remove_file(file).ok();
    }

    #[test]
    fn completed_probe_uses_the_jobs_runtime_metric_and_keeps_a_bounded_tail() {
        let s = spec(
            "seq 1 200; echo CHERRYPICK_METRIC runtime_s=$(( {workers} * 30 )); \
             echo CHERRYPICK_METRIC images=7; echo warn >&2",
        );
        let r = CommandRunner::new(s.clone()).unwrap();
        let id = s.space.find("workers=2/mode=ok").unwrap();
        let report = run(&r, id, &ProbeLimits::default());
        let Outcome::Completed {
            runtime_s,
            cost_usd,
            metrics,
        } = report.outcome
        else {
            panic!("{report:?}")
        };
        assert_eq!(runtime_s, 60.0);
        assert!((cost_usd - 2.0 * 0.067006 * 60.0 / 3600.0).abs() < 1e-12);
        assert_eq!(metrics["images"], 7.0);
        assert!(metrics["wall_s"] < 30.0);
        let log = report.log.unwrap();
        assert!(log.stdout.len() <= 64, "{}", log.stdout.len());
        assert!(log.stdout_bytes > 600);
        assert!(log.stdout.ends_with("images=7\n"), "{:?}", log.stdout);
        assert_eq!(log.stderr, "warn\n");
        assert_eq!(log.exit_code, Some(0));
        assert!(log.command.unwrap().contains("* 30"));
    }

    #[test]
    fn non_zero_exit_is_a_failed_probe_with_the_last_error_line() {
        let s = spec("echo boom >&2; test {mode} = ok");
        let r = CommandRunner::new(s.clone()).unwrap();
        let id = s.space.find("workers=1/mode=fail").unwrap();
        let o = run(&r, id, &ProbeLimits::default()).outcome;
        match o {
            Outcome::Failed { reason, .. } => assert_eq!(reason, "exit code 1: boom"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn time_limit_kills_the_whole_process_group() {
        let marker = std::env::temp_dir().join(format!("cp-cmd-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        // A background grandchild would write the marker after 3 s if it survived the kill.
        let s = spec(&format!("(sleep 3; touch {}) & sleep 30", marker.display()));
        let r = CommandRunner::new(s.clone()).unwrap();
        let limits = ProbeLimits {
            timeout: Some(Duration::from_millis(300)),
            interrupt: None,
        };
        let t = Instant::now();
        let o = run(&r, 0, &limits).outcome;
        assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(o.elapsed_s() >= 0.3 && o.cost_paid() > 0.0);
        std::thread::sleep(Duration::from_millis(3500));
        assert!(
            !marker.exists(),
            "a process of the group outlived the time limit"
        );
    }

    /// The kill grace is the group's: a job under a shell that dies of SIGTERM at once (`sh -c
    /// './job.sh'; ...`) still has the grace to clean up in its trap before SIGKILL.
    #[test]
    fn the_kill_grace_lets_a_job_under_the_shell_clean_up() {
        let marker = std::env::temp_dir().join(format!("cp-cmd-trap-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let s = spec(&format!(
            "sh -c 'trap \"sleep 0.5; touch {}; exit 1\" TERM; sleep 30 & wait'; true",
            marker.display()
        ));
        let r = CommandRunner::new(s.clone()).unwrap();
        let limits = ProbeLimits {
            timeout: Some(Duration::from_millis(500)),
            interrupt: None,
        };
        let o = run(&r, 0, &limits).outcome;
        assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
        assert!(marker.exists(), "the job's trap did not run before SIGKILL");
        // Charged through its clean-up, never past the grace.
        assert!(o.elapsed_s() >= 1.0, "{o:?}");
        assert!(o.elapsed_s() < 0.5 + GRACE.as_secs_f64() + 1.0, "{o:?}");
        let _ = std::fs::remove_file(&marker);
    }

    /// A job that ignores SIGTERM runs on through the kill grace: the probe is charged until
    /// its group was killed, not up to the time limit only.
    #[test]
    fn a_job_ignoring_sigterm_is_charged_until_its_group_is_killed() {
        let s = spec("trap '' TERM; sleep 30");
        let r = CommandRunner::new(s.clone()).unwrap();
        let limits = ProbeLimits {
            timeout: Some(Duration::from_secs(1)),
            interrupt: None,
        };
        let price = s.space.config(0).price_per_hour;
        let report = run(&r, 0, &limits);
        let Outcome::TimedOut {
            elapsed_s,
            cost_usd,
        } = report.outcome
        else {
            panic!("{report:?}")
        };
        let ran = 1.0 + GRACE.as_secs_f64();
        assert!(
            elapsed_s >= ran,
            "charged {elapsed_s} s of at least {ran} s"
        );
        assert!(cost_usd >= price * ran / 3600.0, "{cost_usd}");
        assert!(report.billed_usd >= price * ran / 3600.0);
        // The check before a launch counts the grace too.
        let worst = r.worst_case_usd(&s.space, 0, &limits);
        assert!(worst >= price * ran / 3600.0, "{worst}");
    }

    /// A job's own runtime is what the model sees, but the spend is the wall time it ran.
    #[test]
    fn a_job_reporting_a_tiny_runtime_is_charged_its_wall_time() {
        let s = spec("sleep 1; echo CHERRYPICK_METRIC runtime_s=0.001");
        let r = CommandRunner::new(s.clone()).unwrap();
        let price = s.space.config(0).price_per_hour;
        let report = run(&r, 0, &ProbeLimits::default());
        let Outcome::Completed { runtime_s, .. } = &report.outcome else {
            panic!("{report:?}")
        };
        assert_eq!(*runtime_s, 0.001);
        let wall = price * 1.0 / 3600.0;
        assert!(report.billed_usd >= wall, "{} < {wall}", report.billed_usd);
        // What the journal keeps, so a resumed search counts it again.
        assert!(report.outcome.spend_usd() >= wall, "{:?}", report.outcome);
    }

    /// A runtime no run can take is the job's bug: the probe failed (charged its wall time),
    /// not a record whose cost the journal and the search's sums could not hold.
    #[test]
    fn a_job_reporting_an_impossible_runtime_failed() {
        let s = spec("echo CHERRYPICK_METRIC runtime_s=1e300");
        let r = CommandRunner::new(s.clone()).unwrap();
        let report = run(&r, 0, &ProbeLimits::default());
        let Outcome::Failed {
            reason, cost_usd, ..
        } = &report.outcome
        else {
            panic!("{report:?}")
        };
        assert!(
            reason
                .contains("reported runtime_s=1e300: more than any run can take (at most 1e15 s)"),
            "{reason}"
        );
        assert!(cost_usd.is_finite() && *cost_usd > 0.0);
        // Nor is a runtime of 0 or below one: failed, saying so, not the wall time unannounced.
        for bad in ["0", "-5", "nan", "inf", "abc", "5s", "0x10"] {
            let report = run(
                &CommandRunner::new(spec(&format!("echo CHERRYPICK_METRIC runtime_s={bad}")))
                    .unwrap(),
                0,
                &ProbeLimits::default(),
            );
            let Outcome::Failed { reason, .. } = &report.outcome else {
                panic!("{report:?}")
            };
            assert!(
                reason.contains(&format!("reported runtime_s={bad}: a runtime is a number")),
                "{reason}"
            );
        }
        let at_limit = run(
            &CommandRunner::new(spec("echo CHERRYPICK_METRIC runtime_s=1e15")).unwrap(),
            0,
            &ProbeLimits::default(),
        );
        assert_eq!(at_limit.outcome.completed_runtime(), Some(1e15));
        // With a time limit it is past the limit: timed out, as any runtime past it.
        let limited = run(
            &r,
            0,
            &ProbeLimits {
                timeout: Some(Duration::from_secs(10)),
                interrupt: None,
            },
        );
        assert!(
            matches!(limited.outcome, Outcome::TimedOut { elapsed_s, .. } if elapsed_s == 10.0),
            "{limited:?}"
        );
    }

    /// Values are substituted shell-quoted: a quote is kept, a command substitution not run.
    #[test]
    fn template_values_are_shell_quoted() {
        let dir = std::env::temp_dir().join(format!("cp-cmd-quote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let out = dir.join("out");
        let hostile = format!("$(touch {})", marker.display());
        let text = format!(
            "[catalogue]\nmachine_types = [\"e2-standard-2\"]\ncount = \"workers\"\n\
             [catalogue.dimensions]\nworkers = [1]\nlabel = [\"it's\", \"{hostile}\", \"a b\"]\n\
             [backend.command]\ntemplate = '''printf %s {{label}} > {}'''\n",
            out.display()
        );
        let spec = Arc::new(
            parse(
                &text,
                &dir.join("space.toml"),
                &LoadOptions {
                    backend: BackendKind::Command,
                    prices: None,
                },
            )
            .unwrap(),
        );
        let r = CommandRunner::new(spec.clone()).unwrap();
        for value in ["it's", hostile.as_str(), "a b"] {
            let id = (0..spec.space.len())
                .find(|&i| spec.configs[i].params["label"].to_string() == value)
                .unwrap();
            let _ = std::fs::remove_file(&out);
            let o = run(&r, id, &ProbeLimits::default()).outcome;
            assert!(matches!(o, Outcome::Completed { .. }), "{value}: {o:?}");
            assert_eq!(std::fs::read_to_string(&out).unwrap(), value);
        }
        assert!(!marker.exists(), "a value's command substitution ran");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_template_may_only_name_known_placeholders() {
        assert_eq!(check_template("run {workers} {{x}}", &["workers"]), Ok(()));
        let err = check_template("run {workers} {colour}", &["workers", "mode"]).unwrap_err();
        assert_eq!(
            err,
            TemplateError::NotKnown {
                name: "colour".into(),
                known: vec!["workers".into(), "mode".into()]
            }
        );
        assert_eq!(
            err.to_string(),
            "unknown placeholder {colour} (known: workers, mode)"
        );
        assert_eq!(
            check_template("{", &[]),
            Err(TemplateError::Unclosed { at: 0 })
        );
    }

    #[test]
    fn interrupt_stops_a_running_probe() {
        let s = spec("sleep 30");
        let r = CommandRunner::new(s.clone()).unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let limits = ProbeLimits {
            timeout: None,
            interrupt: Some(flag.clone()),
        };
        let f2 = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            f2.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let o = run(&r, 0, &limits).outcome;
        assert!(
            matches!(&o, Outcome::Failed { reason, .. } if reason.contains("interrupted")),
            "{o:?}"
        );
    }
}
