//! `cherrypick journal ...`: work with search journals (export to generic CSV v1).

use std::path::{Path, PathBuf};

use optimizer::journal::Journal;
use workload::storage::StagedFile;

use crate::exit::bad_input;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write a journal's probes as generic CSV v1 (one row per probe), so `compare` can use them.
    Export(ExportArgs),
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The journal (JSON Lines) to export.
    pub journal: PathBuf,
    /// Output CSV file.
    #[arg(long)]
    pub csv: PathBuf,
    /// Value of the `workload` column (default: the journal's file stem).
    #[arg(long)]
    pub workload: Option<String>,
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export(a) => export(&a),
    }
}

fn export(a: &ExportArgs) -> anyhow::Result<()> {
    // A blank workload name makes rows every reader of generic CSV refuses.
    if a.workload.as_deref().is_some_and(|w| w.trim().is_empty()) {
        return Err(bad_input(anyhow::anyhow!(
            "--workload names no workload; give a name or leave the option out (the journal's \
             file name is used)"
        )));
    }
    let journal = Journal::read(&a.journal).map_err(bad_input)?;
    // The header's catalogue is checked as a search or replay checks it: a configuration
    // whose values do not match the dimensions would make rows of the wrong width.
    journal
        .header
        .space
        .to_space()
        .map_err(|e| bad_input(anyhow::anyhow!("{}: line 1: {e}", a.journal.display())))?;
    if same_file(&a.journal, &a.csv) {
        return Err(bad_input(anyhow::anyhow!(
            "--csv {}: that is the journal being exported; choose another output file",
            a.csv.display()
        )));
    }
    // Another search's journal (perhaps one a search is writing now) is never replaced by a CSV.
    if optimizer::journal::is_journal(&a.csv) {
        return Err(bad_input(anyhow::anyhow!(
            "--csv {}: that file is a search journal; export never replaces one, choose another \
             output file",
            a.csv.display()
        )));
    }
    let workload = a.workload.clone().unwrap_or_else(|| {
        a.journal
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "journal".into())
    });
    // The file name stands in for --workload: blank, it would make rows no reader takes.
    if workload.trim().is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "the journal's file name {workload:?} gives a blank workload name; give --workload \
             NAME"
        )));
    }
    // `compare --workloads a,b` splits on commas: a name holding one could never be selected;
    // a line break or other control character would split the name across report lines.
    if workload.contains(',') || workload.chars().any(char::is_control) {
        return Err(bad_input(anyhow::anyhow!(
            "workload name {workload:?} ({}) holds a comma or a control character (a comma \
             is what `--workloads` separates names with); give --workload NAME without one",
            if a.workload.is_some() {
                "--workload"
            } else {
                "the journal's file name"
            }
        )));
    }
    if journal.torn_tail {
        eprintln!(
            "note: {}: its last line was cut short by a crash and is not exported (a resumed \
             search runs that probe again)",
            a.journal.display()
        );
    }
    let text = experiments::generic::journal_to_csv(&journal, &workload).map_err(bad_input)?;
    write_atomically(&a.csv, text.as_bytes())?;
    println!(
        "wrote {} rows ({} configurations) to {}",
        journal.records.len(),
        journal.header.space.configs.len(),
        a.csv.display()
    );
    Ok(())
}

/// Whether `a` and `b` name the same existing file (through links, `..` or other spellings).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Writes `bytes` to `path` so that it holds either its old content or all of the new, never a
/// part, through the workload's [`StagedFile`] (a temporary beside the destination, written,
/// synced and renamed over it; removed on every error).
///
/// Rules: a symlink is written through (its target is replaced and the link stays); a dangling
/// symlink, or a destination that exists and is not a regular file (a device, a FIFO, a
/// folder), is refused, as is a folder that does not exist (named as the user gave it).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // A missing folder is the user's to create: say so of the path they gave, not of the
    // temporary file beside it. (A symlink's folder exists: the link is in it.)
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(bad_input(anyhow::anyhow!(
                "{}: the folder {} does not exist",
                path.display(),
                dir.display()
            )));
        }
    }
    let staged = StagedFile::new(path).map_err(bad_input)?;
    staged.write(bytes)?;
    staged.commit()?;
    Ok(())
}
