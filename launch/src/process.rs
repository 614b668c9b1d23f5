//! Running one probe's process (the command backend's shell command, the spark backend's
//! `spark-submit`): in its own process group, its output read concurrently with a bounded tail
//! kept, raced against the probe's limits, and the whole group stopped (SIGTERM, a grace period,
//! SIGKILL) when a limit ends it or the job exits leaving children behind. A probe is charged
//! from its launch until no process of its group is left, which is what the machines were busy
//! for, whatever the job says about its own runtime.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use optimizer::{ConfigId, ProbeLimits, ProbeLog, Space};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::limits::{limit_reached, LimitHit};

/// Prefix of a metric line on a job's stdout (`CHERRYPICK_METRIC name=value`).
pub const METRIC_PREFIX: &str = "CHERRYPICK_METRIC ";

/// How the process ended.
#[derive(Debug)]
pub enum End {
    Exited(std::io::Result<ExitStatus>),
    TimedOut,
    Interrupted,
}

/// What a reader kept of one output stream.
#[derive(Debug, Default)]
pub struct Captured {
    /// The last bytes (at most what was asked for).
    pub tail: Vec<u8>,
    /// Every byte's count.
    pub total: u64,
    /// `CHERRYPICK_METRIC` lines (stdout, when asked for).
    pub metrics: BTreeMap<String, f64>,
    /// Metric lines whose value is no finite number (`runtime_s=nan`, `=5s`), by name: the
    /// value as printed, when a name's last line was one of these.
    pub unreadable: BTreeMap<String, String>,
}

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.tail).into_owned()
    }
}

/// How much of each stream to keep, and how long the job gets to stop.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub stdout_bytes: usize,
    pub stderr_bytes: usize,
    /// Parse `CHERRYPICK_METRIC` lines on stdout.
    pub metrics: bool,
    /// Between SIGTERM and SIGKILL, and for the output readers to finish.
    pub grace: Duration,
}

/// How long after SIGKILL the group is given to be gone (the kernel ends it at once; this only
/// absorbs scheduling delays). Part of every worst case a spend limit checks before a launch.
pub const KILL_CONFIRM: Duration = Duration::from_secs(1);

/// The longest a probe of `limits` can be charged for when its job gets `grace` between SIGTERM
/// and SIGKILL: the time limit, the grace, and [`KILL_CONFIRM`]. `None` without a time limit.
pub fn longest_charge(limits: &ProbeLimits, grace: Duration) -> Option<Duration> {
    limits
        .timeout
        .map(|t| t.saturating_add(grace).saturating_add(KILL_CONFIRM))
}

/// The most a probe of `config` can be charged within `limits` at the space's price (what a
/// spend limit checks before launching it): the price for [`longest_charge`].
pub fn worst_case_usd(
    space: &Space,
    config: ConfigId,
    limits: &ProbeLimits,
    grace: Duration,
) -> f64 {
    match longest_charge(limits, grace) {
        Some(t) => space.config(config).price_per_hour * t.as_secs_f64() / 3600.0,
        None => f64::INFINITY,
    }
}

/// A finished (or stopped) process.
#[derive(Debug)]
pub struct Finished {
    pub end: End,
    /// Wall seconds from spawn to the end (before the group was stopped).
    pub elapsed_s: f64,
    /// Wall seconds from spawn until no process of the group was left (or, if one outlived
    /// SIGKILL by [`KILL_CONFIRM`], until then): what the probe is charged for.
    pub charged_s: f64,
    /// Whether the group was seen gone (false: a process outlived SIGKILL by [`KILL_CONFIRM`]).
    pub group_gone: bool,
    pub stdout: Captured,
    pub stderr: Captured,
}

impl Finished {
    /// Exit code when the process exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        match &self.end {
            End::Exited(Ok(s)) => s.code(),
            _ => None,
        }
    }

    /// The journal's log of this process: its command line, exit code and the output tails.
    pub fn log(&self, command: String, keep: usize) -> ProbeLog {
        ProbeLog {
            command: Some(command),
            exit_code: self.exit_code(),
            stdout: tail(&self.stdout.text(), keep),
            stdout_bytes: self.stdout.total,
            stderr: tail(&self.stderr.text(), keep),
            stderr_bytes: self.stderr.total,
        }
    }
}

/// Spawns `cmd` in its own process group with piped output and waits for it within `limits`.
/// Err only when it cannot be started.
pub async fn run(
    cmd: &mut tokio::process::Command,
    limits: &ProbeLimits,
    keep: Keep,
) -> std::io::Result<Finished> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a limit can stop everything the job started.
        .process_group(0)
        .kill_on_drop(true);
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pgid = child.id().map(|p| p as i32);
    // Should this process die outright, its guard stops the group (see `guard`).
    if let Some(g) = pgid {
        crate::guard::started(g, keep.grace);
    }
    let out = tokio::spawn(capture(
        child.stdout.take(),
        keep.stdout_bytes,
        keep.metrics,
    ));
    let err = tokio::spawn(capture(child.stderr.take(), keep.stderr_bytes, false));
    let end = tokio::select! {
        status = child.wait() => End::Exited(status),
        hit = limit_reached(limits) => match hit {
            LimitHit::TimedOut => End::TimedOut,
            LimitHit::Interrupted => End::Interrupted,
        },
    };
    let elapsed_s = start.elapsed().as_secs_f64();
    match &end {
        // The job is done; anything it left running in its group goes with it.
        End::Exited(_) => kill_group(pgid, libc::SIGKILL),
        _ => {
            // The grace is the group's, not only the shell's: `sh -c './job.sh'` dies of
            // SIGTERM at once while the job it started runs its clean-up (cancelling remote
            // work) in a trap, which a SIGKILL then would cut short.
            kill_group(pgid, libc::SIGTERM);
            let termed = Instant::now();
            let _ = tokio::time::timeout(keep.grace, child.wait()).await;
            wait_group_gone(pgid, keep.grace.saturating_sub(termed.elapsed())).await;
            kill_group(pgid, libc::SIGKILL);
            let _ = child.wait().await;
        }
    }
    let group_gone = wait_group_gone(pgid, KILL_CONFIRM).await;
    // A group seen gone is off the guard's list. One that is not stays on it, to be stopped
    // again should this process end first, and is watched until it is gone: its id, freed
    // then, could name another process's group by the time this process ends.
    match (pgid, group_gone) {
        (Some(g), true) => crate::guard::gone(g),
        (Some(g), false) => {
            tokio::spawn(async move {
                wait_group_gone(Some(g), Duration::MAX).await;
                crate::guard::gone(g);
            });
        }
        (None, _) => {}
    }
    let charged_s = start.elapsed().as_secs_f64();
    // Pipes close once the group is gone; a grandchild that left the group could hold them.
    let collect = |h: tokio::task::JoinHandle<Captured>| async move {
        tokio::time::timeout(keep.grace, h)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let (stdout, stderr) = (collect(out).await, collect(err).await);
    Ok(Finished {
        end,
        elapsed_s,
        charged_s,
        group_gone,
        stdout,
        stderr,
    })
}

/// "exit code N" or "killed by signal N".
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "failed".to_string(),
    }
}

/// At most `max` characters of `s`.
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The last `keep` bytes of `s`, starting at a character boundary.
pub fn tail(s: &str, keep: usize) -> String {
    let mut i = s.len().saturating_sub(keep);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].to_string()
}

fn kill_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid.filter(|&p| p > 0) {
        // SAFETY: killpg only sends a signal; a group that is already gone gives ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Waits up to `within` for process group `pgid` to have no process left; true when it has.
async fn wait_group_gone(pgid: Option<i32>, within: Duration) -> bool {
    let Some(pgid) = pgid.filter(|&p| p > 0) else {
        return true;
    };
    let started = Instant::now();
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if started.elapsed() >= within {
            return false;
        }
        // Every 5 ms at first (a group is usually gone at once), less often the longer it lives.
        let pause =
            (started.elapsed() / 10).clamp(Duration::from_millis(5), Duration::from_millis(200));
        tokio::time::sleep(pause).await;
    }
}

/// Whether a process of group `pgid` is still running. Zombies do not count: they run nothing
/// and hold no machine, and one whose parent is a container's init may never be reaped.
pub fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        // No /proc: a signal 0 to the group (which counts zombies too) is all there is.
        // SAFETY: killpg with signal 0 only checks that the group exists.
        return unsafe { libc::killpg(pgid, 0) } == 0;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        group == Some(pgid) && !matches!(state, Some("Z" | "X"))
    })
}

/// Reads a stream to its end, keeping its last `keep` bytes, its length, and (when `metrics`)
/// the metric lines it printed.
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
        if c.tail.len() > keep.saturating_mul(2).max(4096) {
            let cut = c.tail.len() - keep;
            c.tail.drain(..cut);
        }
        if metrics {
            for &b in &buf[..n] {
                if b == b'\n' {
                    if !line_too_long {
                        parse_metric(&line, &mut c);
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
        parse_metric(&line, &mut c);
    }
    if c.tail.len() > keep {
        let cut = c.tail.len() - keep;
        c.tail.drain(..cut);
    }
    c
}

/// Reads one `CHERRYPICK_METRIC name=value` line into `into`'s metrics, or, when its value is
/// no finite number, into its unreadable ones (the name's last line wins either way).
fn parse_metric(line: &[u8], into: &mut Captured) {
    let Ok(text) = std::str::from_utf8(line) else {
        return;
    };
    let Some(rest) = text.trim_end_matches('\r').strip_prefix(METRIC_PREFIX) else {
        return;
    };
    let Some((k, v)) = rest.trim().split_once('=') else {
        return;
    };
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty() {
        return;
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => {
            into.unreadable.remove(k);
            into.metrics.insert(k.to_string(), x);
        }
        _ => {
            into.metrics.remove(k);
            into.unreadable
                .insert(k.to_string(), truncate(v, 100).to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_are_parsed_and_others_ignored() {
        let mut c = Captured::default();
        parse_metric(b"CHERRYPICK_METRIC runtime_s=12.5\r", &mut c);
        parse_metric(b"CHERRYPICK_METRIC bad=nan", &mut c);
        parse_metric(b"CHERRYPICK_METRIC =3", &mut c);
        parse_metric(b"other=4", &mut c);
        assert_eq!(c.metrics.len(), 1);
        assert_eq!(c.metrics["runtime_s"], 12.5);
        assert_eq!(c.unreadable.len(), 1);
        assert_eq!(c.unreadable["bad"], "nan");
        // The last line of a name is what it reported.
        parse_metric(b"CHERRYPICK_METRIC runtime_s=5s", &mut c);
        assert!(!c.metrics.contains_key("runtime_s"));
        assert_eq!(c.unreadable["runtime_s"], "5s");
        parse_metric(b"CHERRYPICK_METRIC bad=1", &mut c);
        assert!(!c.unreadable.contains_key("bad"));
        assert_eq!(tail("h\u{e9}llo", 4), "llo");
        assert_eq!(truncate("abcdef", 3), "abc");
    }
}
