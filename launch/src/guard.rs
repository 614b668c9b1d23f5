//! Jobs do not outlive a search killed outright. A signal takes the orderly path (each probe's
//! process group is stopped and recorded), but SIGKILL, an out-of-memory kill or a crash ends
//! the search at once, and the command or spark-submit jobs it started would run on, unbounded
//! by their time limits and paid for by no record, while a resume starts the same
//! configurations again beside them.
//!
//! So a search that runs jobs first starts a guard: a second process of this binary
//! (`cherrypick guard`, in a process group of its own, so a Ctrl-C at the terminal reaches only
//! the search), told on its standard input the process group of each job as it starts (`+N G`,
//! G its backend's grace in milliseconds) and as it is gone (`-N`). The search holds the only
//! write end of that pipe; however the search ends, the kernel closes it, and the guard, reading
//! end of file, stops every group still listed the way a time limit does (SIGTERM, the longest
//! grace, SIGKILL) and exits. After an orderly end no group is listed and it just exits.
//!
//! A group id is not reused while any process of the group lives (the kernel keeps the id
//! while it names a group), so a listed group is the job's; the search tells `-N` as soon as it
//! sees the group gone (polling on when a process outlived its SIGKILL), which keeps a freed id,
//! maybe reused, off the list.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The guard of this process, once [`enable`] started one.
static GUARD: OnceLock<Mutex<Guard>> = OnceLock::new();

struct Guard {
    _child: Child,
    stdin: ChildStdin,
}

/// Starts the guard, `exe guard` (`exe`: this program's binary), for the jobs this process
/// starts from now on. Without it (a library caller, a test harness) jobs are stopped only on
/// the orderly path. Err when it cannot be started; calling it again does nothing.
pub fn enable(exe: &Path) -> std::io::Result<()> {
    if GUARD.get().is_some() {
        return Ok(());
    }
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg("guard")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the guard's input was not piped"))?;
    let _ = GUARD.set(Mutex::new(Guard {
        _child: child,
        stdin,
    }));
    Ok(())
}

/// Tells the guard (if any) that job group `pgid` started, with `grace` between SIGTERM and
/// SIGKILL should the guard have to stop it. A guard that went away is not an error: jobs are
/// still stopped on the orderly path.
pub fn started(pgid: i32, grace: Duration) {
    tell(&format!("+{pgid} {}\n", grace.as_millis()));
}

/// Tells the guard (if any) that job group `pgid` is gone.
pub fn gone(pgid: i32) {
    tell(&format!("-{pgid}\n"));
}

fn tell(line: &str) {
    let Some(guard) = GUARD.get() else {
        return;
    };
    if let Ok(mut g) = guard.lock() {
        let _ = g.stdin.write_all(line.as_bytes());
    }
}

/// `cherrypick guard`: reads `+N G` / `-N` lines until end of file, then stops every group
/// still listed (SIGTERM, the longest grace for all of them to be gone, SIGKILL). Signals that
/// would end it before its input does are ignored: it must outlive the search it guards.
pub fn serve(input: impl BufRead) {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: sets one signal's disposition, before this process starts any thread.
        unsafe {
            libc::signal(signal, libc::SIG_IGN);
        }
    }
    let running = read_groups(input);
    stop_groups(&running);
}

/// The groups `+N G` lines start and `-N` lines end, left at end of file, each with its grace.
/// Other lines are skipped.
fn read_groups(input: impl BufRead) -> BTreeMap<i32, Duration> {
    let mut running = BTreeMap::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let (sign, rest) = line.trim().split_at_checked(1).unwrap_or(("", ""));
        let (number, grace) = rest.split_once(' ').unwrap_or((rest, ""));
        let Ok(pgid) = number.parse::<i32>() else {
            continue;
        };
        if pgid <= 1 {
            continue;
        }
        match sign {
            "+" => {
                let grace = grace.parse().map_or(DEFAULT_GRACE, Duration::from_millis);
                running.insert(pgid, grace.min(MAX_GRACE));
            }
            "-" => {
                running.remove(&pgid);
            }
            _ => {}
        }
    }
    running
}

/// The grace of a group whose `+N` line gave none.
const DEFAULT_GRACE: Duration = Duration::from_secs(3);
/// The longest grace the guard waits, whatever a line says.
const MAX_GRACE: Duration = Duration::from_secs(60);

/// SIGTERM to each group, up to the longest grace for all of them to be gone, then SIGKILL.
fn stop_groups(groups: &BTreeMap<i32, Duration>) {
    let Some(&grace) = groups.values().max() else {
        return;
    };
    let signal_all = |signal: i32| {
        for &pgid in groups.keys() {
            // SAFETY: killpg only sends a signal; a group that is gone gives ESRCH.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    };
    signal_all(libc::SIGTERM);
    let started = Instant::now();
    while started.elapsed() < grace && groups.keys().any(|&g| crate::process::group_alive(g)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal_all(libc::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_left_are_those_started_and_not_ended() {
        let input = "+100 3000\n+200 2500\n-100\n+300\nnoise\n+1\n+-5\n-999\n+abc\n+400 9e9\n";
        let left = read_groups(input.as_bytes());
        assert_eq!(
            left.into_iter().collect::<Vec<_>>(),
            vec![
                (200, Duration::from_millis(2500)),
                (300, DEFAULT_GRACE),
                (400, DEFAULT_GRACE)
            ]
        );
        let huge = read_groups("+500 99999999\n".as_bytes());
        assert_eq!(huge[&500], MAX_GRACE);
    }

    /// A group a dead search left is stopped through its SIGTERM trap, within the grace.
    #[test]
    fn a_group_left_is_stopped_through_its_trap() {
        use std::os::unix::process::CommandExt;
        let marker = std::env::temp_dir().join(format!("cp-guard-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut job = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap 'touch {}; exit 0' TERM; sleep 30 & wait",
                marker.display()
            ))
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = job.id() as i32;
        // Let the shell install its trap.
        std::thread::sleep(Duration::from_millis(300));
        let input = format!("+{pgid} 2000\n");
        stop_groups(&read_groups(input.as_bytes()));
        let _ = job.wait();
        let started = Instant::now();
        while crate::process::group_alive(pgid) && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !crate::process::group_alive(pgid),
            "the group outlived the guard"
        );
        assert!(marker.exists(), "the job's trap did not run");
        let _ = std::fs::remove_file(&marker);
    }
}
