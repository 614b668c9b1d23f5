//! One module per subcommand. Each has its clap arguments and a `run` function.

pub mod compare;
pub mod demo;
pub mod journal;
pub mod paper;
pub mod replay;
pub mod search;
pub mod tune;
pub mod workload;

use crate::exit::bad_input;

/// Every strategy, in the order the reports list them.
const DEFAULT_STRATEGIES: &str = "cherrypick,bo,random,grid,coordinate";

/// Most seeds a replay command takes: every seed's trace is held until the report is written,
/// so past this a run only exhausts memory.
pub const MAX_SEEDS: u64 = 10_000;
/// Most worker threads (`--jobs`): each holds a stack, and no machine this runs on has more
/// cores. (Probes in flight are bounded by `launch::search::MAX_IN_FLIGHT`, in replay too.)
pub const MAX_THREADS: u64 = 1024;

/// Refuses an output folder that cannot be one (an existing file), before any replay runs
/// rather than after.
pub fn check_out_folder(out: &std::path::Path) -> anyhow::Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(bad_input(anyhow::anyhow!(
            "--out {}: exists and is not a folder",
            out.display()
        )));
    }
    Ok(())
}

/// Makes the output folder of a command that reads `inputs` (files or folders), once every
/// other argument has been checked and before any replay runs, so a folder that cannot be made
/// is said at once rather than after the replays. Refuses a folder that holds an input or lies
/// in one: a report written there could replace the input (a dataset saved as `traces.csv` in
/// `--out`), or become part of it (a `summary.json` among a dataset's run folders).
///
/// The folders this call made are removed again if they are still empty when the returned
/// guard drops: a command that fails before writing a report leaves nothing behind.
pub fn make_out_folder(
    out: &std::path::Path,
    inputs: &[std::path::PathBuf],
    reports: &[&str],
) -> anyhow::Result<OutFolder> {
    check_out_folder(out)?;
    // A report is renamed over its name: a folder there would fail it after the others.
    if let Some(name) = reports.iter().find(|r| out.join(r).is_dir()) {
        return Err(bad_input(anyhow::anyhow!(
            "--out {}: `{name}` there is a folder, which the report of that name cannot replace",
            out.display()
        )));
    }
    // Made one folder at a time from the top, keeping those this call made: with `..` in the
    // path a folder that did not exist before can lead to one that did (`x/new/../sub` makes
    // `x/new` and may find `x/sub` there), and only what was made is removed again.
    let mut guard = OutFolder { made: Vec::new() };
    let mut above: Vec<&std::path::Path> = out.ancestors().collect();
    above.reverse();
    for dir in above {
        // `..`, `.` and the root name no folder to make.
        if dir.file_name().is_none() || dir.is_dir() {
            continue;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => guard.made.insert(0, dir.to_path_buf()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => {
                return Err(bad_input(anyhow::anyhow!(
                    "--out {}: cannot create the folder {}: {e}",
                    out.display(),
                    dir.display()
                )))
            }
        }
    }
    // A folder that exists but takes no file (read-only, another user's) fails the reports
    // after every replay: tried once here, with a file that is removed at once.
    let probe = out.join(format!(".cherrypick-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => {
            return Err(bad_input(anyhow::anyhow!(
                "--out {}: cannot write there: {e}",
                out.display()
            )))
        }
    }
    let resolved = out
        .canonicalize()
        .map_err(|e| bad_input(anyhow::anyhow!("--out {}: {e}", out.display())))?;
    for input in inputs {
        let Ok(read) = input.canonicalize() else {
            continue;
        };
        if read.starts_with(&resolved) || resolved.starts_with(&read) {
            return Err(bad_input(anyhow::anyhow!(
                "--out {}: {} is read from there, and the reports written there could replace \
                 it or mix with it; choose another output folder",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(guard)
}

/// An output folder a command made: removed on drop if it is still empty (see
/// [`make_out_folder`]).
#[derive(Debug)]
pub struct OutFolder {
    made: Vec<std::path::PathBuf>,
}

impl Drop for OutFolder {
    fn drop(&mut self) {
        for dir in &self.made {
            // Fails, leaving it and the folders above it, once anything was written there.
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Refuses a count given on the command line outside `lo..=hi`, naming the flag, before anything
/// is allocated for it.
pub fn check_count(flag: &str, value: u64, lo: u64, hi: u64) -> anyhow::Result<()> {
    if value < lo {
        return Err(bad_input(anyhow::anyhow!(
            "{flag} must be at least {lo}, got {value}"
        )));
    }
    if value > hi {
        return Err(bad_input(anyhow::anyhow!(
            "{flag} must be at most {hi}, got {value}"
        )));
    }
    Ok(())
}

/// Checks `--budget` against the catalogues a run replays on (`largest`: the most
/// configurations any of them has). No strategy evaluates a configuration twice, so a budget
/// past the largest catalogue adds nothing but size to summary.json and traces.csv (a million
/// made 200 MB); the default, 30, stays allowed for small catalogues, whose searches end when
/// the catalogue does.
pub fn check_budget(budget: usize, largest: usize) -> anyhow::Result<()> {
    check_count("--budget", budget as u64, 1, u64::MAX)?;
    let limit = largest.max(30);
    if budget > limit {
        return Err(bad_input(anyhow::anyhow!(
            "--budget {budget}: the largest selected catalogue has {largest} configurations, and \
             no strategy evaluates one twice; use --budget {limit} or less (up to 30, the \
             default, is taken on smaller catalogues: each run then ends with its catalogue)"
        )));
    }
    Ok(())
}

/// The strategies to run: the explicit list given by `option` (every name must exist), or every
/// strategy the optimiser provides now (those it does not know yet are skipped with a note).
pub fn strategy_list(
    option: &str,
    explicit: Option<&str>,
    space: &std::sync::Arc<optimizer::Space>,
) -> anyhow::Result<Vec<String>> {
    let opts = optimizer::StrategyOptions::default();
    match explicit {
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if names.is_empty() {
                return Err(bad_input(anyhow::anyhow!("{option} names no strategy")));
            }
            // The same strategy twice would be two identical rows, and a choice "by 0" in tune:
            // also when spelled twice (`bo` and `bo:initial=4`, which is `bo`'s own setting).
            let settings = |n: &str| {
                optimizer::strategies::ModelSettings::parse(n)
                    .and_then(Result::ok)
                    .map(|mut s| {
                        s.name.clear();
                        s
                    })
            };
            for (i, n) in names.iter().enumerate() {
                if names[..i].contains(n) {
                    return Err(bad_input(anyhow::anyhow!("strategy `{n}` is listed twice")));
                }
                if let Some(mine) = settings(n) {
                    if let Some(same) = names[..i]
                        .iter()
                        .find(|m| settings(m) == Some(mine.clone()))
                    {
                        return Err(bad_input(anyhow::anyhow!(
                            "{option}: `{n}` has the same settings as `{same}`, listed before it"
                        )));
                    }
                }
            }
            for n in &names {
                optimizer::build_strategy(n, space.clone(), &opts).map_err(bad_input)?;
            }
            Ok(names)
        }
        None => {
            let mut names = Vec::new();
            for n in DEFAULT_STRATEGIES.split(',') {
                match optimizer::build_strategy(n, space.clone(), &opts) {
                    Ok(_) => names.push(n.to_string()),
                    Err(_) => {
                        eprintln!("note: strategy `{n}` is not available in this build; skipped")
                    }
                }
            }
            if names.is_empty() {
                return Err(bad_input(anyhow::anyhow!("no strategy is available")));
            }
            Ok(names)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the folders a refused `--out` made are removed: with `..` in the path, a folder
    /// made on the way (`new`) can lead to one that was there before (`sub`), which stays.
    #[test]
    fn a_refused_out_folder_removes_only_what_it_made() {
        let d = std::env::temp_dir().join(format!("cp-out-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let sub = d.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let out = d.join("new/../sub");
        let err = make_out_folder(&out, std::slice::from_ref(&sub), &[]).unwrap_err();
        assert!(err.to_string().contains("is read from there"), "{err}");
        assert!(sub.is_dir(), "a folder that was there before was removed");
        assert!(
            !d.join("new").exists(),
            "the folder made on the way was left"
        );

        // A deeper path made from nothing is removed whole.
        let out = d.join("a/b/../b/c");
        let guard = make_out_folder(&out, &[], &[]).unwrap();
        assert!(d.join("a/b/c").is_dir());
        drop(guard);
        assert!(
            !d.join("a").exists(),
            "{:?}",
            std::fs::read_dir(&d).unwrap().count()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
