//! The `command` backend: runs any job as a shell command rendered from a template, in its own
//! process group, measures its runtime, keeps a bounded tail of its output for the journal, and
//! enforces the probe's time limit by killing the whole group.
//!
//! A job may report its own figures on stdout as lines `CHERRYPICK_METRIC name=value`; a
//! `runtime_s` metric replaces the measured wall time (the job's own timing, as a Spark driver
//! reports it), and every metric is kept in the outcome.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use optimizer::journal::{ProbeLog, ProbeLogSlot};
use optimizer::{ConfigId, Outcome, ProbeLimits, Runner, Space};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::failed;
use super::spacefile::{render_with, CommandSpec, Objective, SearchSpec};

/// Prefix of a metric line on a job's stdout.
pub const METRIC_PREFIX: &str = "CHERRYPICK_METRIC ";
/// How long a job gets between SIGTERM and SIGKILL when it is stopped.
const GRACE: Duration = Duration::from_secs(2);

/// Runs probes as shell commands.
pub struct CommandRunner {
    spec: Arc<SearchSpec>,
    command: CommandSpec,
    workdir: PathBuf,
    logs: ProbeLogSlot,
}

impl CommandRunner {
    /// Needs a `[backend.command]` section in the space file.
    pub fn new(spec: Arc<SearchSpec>) -> Result<CommandRunner, String> {
        let command = spec.backend.command.clone().ok_or_else(|| {
            format!(
                "{}: the command backend needs a [backend.command] section with a template",
                spec.path.display()
            )
        })?;
        let workdir = match &command.workdir {
            Some(w) => spec.resolve(w),
            None => spec.base_dir().to_path_buf(),
        };
        Ok(CommandRunner {
            spec,
            command,
            workdir,
            logs: Arc::new(Mutex::new(None)),
        })
    }

    /// Where each probe's output is left for the journal.
    pub fn log_slot(&self) -> ProbeLogSlot {
        self.logs.clone()
    }

    /// The command line for configuration `id`.
    pub fn render(&self, id: ConfigId) -> Result<String, String> {
        let info = &self.spec.configs[id];
        let name = &self.spec.space.config(id).name;
        render_with(&self.command.template, |key| {
            Some(match key {
                "machine_type" => info.machine_type.clone(),
                "vcpus" => info.vcpus.to_string(),
                "memory_gib" => info.memory_gib.to_string(),
                "count" => optimizer::Value::Num(info.count).to_string(),
                "price_per_hour" => info.price_per_hour.to_string(),
                "config" => name.clone(),
                other => info.params.get(other)?.to_string(),
            })
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
            let key = format!("CHERRYPICK_{}", k.to_ascii_uppercase().replace('-', "_"));
            env.push((key, v.to_string()));
        }
        env
    }
}

/// How the process ended.
enum End {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    Interrupted,
}

/// What a reader kept of one output stream.
#[derive(Default)]
struct Captured {
    tail: Vec<u8>,
    total: u64,
    metrics: BTreeMap<String, f64>,
}

impl Runner for CommandRunner {
    async fn run(&self, space: &Space, config: ConfigId, limits: &ProbeLimits) -> Outcome {
        let price = space.config(config).price_per_hour;
        let true_price = self.spec.configs[config].price_per_hour;
        let line = match self.render(config) {
            Ok(l) => l,
            Err(e) => return failed(format!("template: {e}"), 0.0, price),
        };
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&line)
            .current_dir(&self.workdir)
            .envs(self.env(config))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a time limit can stop everything the job started.
            .process_group(0)
            .kill_on_drop(true);
        let start = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return failed(
                    format!("could not start `sh -c` in {}: {e}", self.workdir.display()),
                    0.0,
                    price,
                )
            }
        };
        let pgid = child.id().map(|p| p as i32);
        let keep = self.command.log_bytes;
        let out = tokio::spawn(capture(child.stdout.take(), keep, true));
        let err = tokio::spawn(capture(child.stderr.take(), keep, false));

        let end = tokio::select! {
            status = child.wait() => End::Exited(status),
            hit = super::limit_reached(limits) => match hit {
                super::LimitHit::TimedOut => End::TimedOut,
                super::LimitHit::Interrupted => End::Interrupted,
            },
        };
        let elapsed = start.elapsed().as_secs_f64();
        let end = match end {
            End::Exited(status) => {
                // The job is done; anything it left running in its group goes with it.
                kill_group(pgid, libc::SIGKILL);
                End::Exited(status)
            }
            other => {
                kill_group(pgid, libc::SIGTERM);
                if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                    kill_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                } else {
                    kill_group(pgid, libc::SIGKILL);
                }
                other
            }
        };
        // Pipes close once the group is gone; a grandchild that left the group could hold them.
        let collect = |h: tokio::task::JoinHandle<Captured>| async move {
            tokio::time::timeout(Duration::from_secs(2), h)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        let (stdout, stderr) = (collect(out).await, collect(err).await);
        let exit_code = match &end {
            End::Exited(Ok(s)) => s.code(),
            _ => None,
        };
        let log = ProbeLog {
            command: Some(line.clone()),
            exit_code,
            stdout: String::from_utf8_lossy(&stdout.tail).into_owned(),
            stdout_bytes: stdout.total,
            stderr: String::from_utf8_lossy(&stderr.tail).into_owned(),
            stderr_bytes: stderr.total,
        };
        let last_err_line = log
            .stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| format!(": {}", truncate(l.trim(), 200)))
            .unwrap_or_default();
        if let Ok(mut slot) = self.logs.lock() {
            *slot = Some(log);
        }
        match end {
            End::TimedOut => Outcome::TimedOut {
                elapsed_s: elapsed,
                cost_usd: price * elapsed / 3600.0,
            },
            End::Interrupted => failed("interrupted by the user".into(), elapsed, price),
            End::Exited(Err(e)) => failed(format!("waiting for the job: {e}"), elapsed, price),
            End::Exited(Ok(status)) if !status.success() => {
                use std::os::unix::process::ExitStatusExt;
                let how = match (status.code(), status.signal()) {
                    (Some(c), _) => format!("exit code {c}"),
                    (None, Some(s)) => format!("killed by signal {s}"),
                    _ => "failed".to_string(),
                };
                failed(format!("{how}{last_err_line}"), elapsed, price)
            }
            End::Exited(Ok(_)) => {
                let mut metrics = stdout.metrics;
                let runtime = match metrics.get("runtime_s") {
                    Some(&r) if r.is_finite() && r > 0.0 => r,
                    _ => elapsed,
                };
                metrics.insert("wall_s".into(), elapsed);
                // A reported runtime past the probe's limit means the job would have been
                // stopped there: charging more would break the spend limit's worst case.
                if let Some(limit) = limits.timeout.map(|t| t.as_secs_f64()) {
                    if runtime > limit {
                        return Outcome::TimedOut {
                            elapsed_s: limit,
                            cost_usd: price * limit / 3600.0,
                        };
                    }
                }
                if self.spec.objective == Objective::Runtime {
                    metrics.insert("true_cost_usd".into(), true_price * runtime / 3600.0);
                }
                Outcome::Completed {
                    runtime_s: runtime,
                    cost_usd: price * runtime / 3600.0,
                    metrics,
                }
            }
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn kill_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid.filter(|&p| p > 0) {
        // SAFETY: killpg only sends a signal; a group that is already gone gives ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Reads a stream to its end, keeping its last `keep` bytes, its length, and (for stdout) the
/// metric lines it printed.
async fn capture<R: AsyncRead + Unpin>(stream: Option<R>, keep: usize, metrics: bool) -> Captured {
    let mut c = Captured::default();
    let Some(mut stream) = stream else {
        return c;
    };
    let mut buf = vec![0u8; 16 * 1024];
    // Metric lines are short; a longer line is not one and is skipped.
    let mut line: Vec<u8> = Vec::new();
    let mut line_too_long = false;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        c.total += n as u64;
        c.tail.extend_from_slice(&buf[..n]);
        if c.tail.len() > keep.saturating_mul(2).max(1024) {
            let cut = c.tail.len() - keep;
            c.tail.drain(..cut);
        }
        if metrics {
            for &b in &buf[..n] {
                if b == b'\n' {
                    if !line_too_long {
                        parse_metric(&line, &mut c.metrics);
                    }
                    line.clear();
                    line_too_long = false;
                } else if line.len() < 1024 {
                    line.push(b);
                } else {
                    line_too_long = true;
                }
            }
        }
    }
    if metrics && !line_too_long {
        parse_metric(&line, &mut c.metrics);
    }
    if c.tail.len() > keep {
        let cut = c.tail.len() - keep;
        c.tail.drain(..cut);
    }
    c
}

fn parse_metric(line: &[u8], into: &mut BTreeMap<String, f64>) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let Some(rest) = text.trim_end_matches('\r').strip_prefix(METRIC_PREFIX) else {
        return;
    };
    if let Some((k, v)) = rest.trim().split_once('=') {
        if let Ok(x) = v.trim().parse::<f64>() {
            if x.is_finite() && !k.trim().is_empty() {
                into.insert(k.trim().to_string(), x);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::spacefile::{parse, BackendKind, LoadOptions};
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

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

    fn run(r: &CommandRunner, id: ConfigId, limits: &ProbeLimits) -> Outcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(r.run(&r.spec.space, id, limits))
    }

    #[test]
    fn completed_probe_uses_the_jobs_runtime_metric_and_keeps_a_bounded_tail() {
        let s = spec(
            "seq 1 200; echo CHERRYPICK_METRIC runtime_s=$(( {workers} * 30 )); \
             echo CHERRYPICK_METRIC images=7; echo warn >&2",
        );
        let r = CommandRunner::new(s.clone()).unwrap();
        let id = s.space.find("workers=2/mode=ok").unwrap();
        let o = run(&r, id, &ProbeLimits::default());
        let Outcome::Completed {
            runtime_s,
            cost_usd,
            metrics,
        } = o
        else {
            panic!("{o:?}")
        };
        assert_eq!(runtime_s, 60.0);
        assert!((cost_usd - 2.0 * 0.067006 * 60.0 / 3600.0).abs() < 1e-12);
        assert_eq!(metrics["images"], 7.0);
        assert!(metrics["wall_s"] < 30.0);
        let log = r.log_slot().lock().unwrap().take().unwrap();
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
        let o = run(&r, id, &ProbeLimits::default());
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
        let o = run(&r, 0, &limits);
        assert!(matches!(o, Outcome::TimedOut { .. }), "{o:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(o.elapsed_s() >= 0.3 && o.cost_paid() > 0.0);
        std::thread::sleep(Duration::from_millis(3500));
        assert!(
            !marker.exists(),
            "a process of the group outlived the time limit"
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
        let o = run(&r, 0, &limits);
        assert!(
            matches!(&o, Outcome::Failed { reason, .. } if reason.contains("interrupted")),
            "{o:?}"
        );
    }
}
