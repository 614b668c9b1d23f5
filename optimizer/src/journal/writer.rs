//! Appending to a journal: one process at a time (an advisory lock named in `<journal>.lock`),
//! every record one synced write with O_APPEND.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{
    AbandonedRecord, EventRef, Header, Journal, JournalError, LaunchRecord, ProbeRecord,
    ResumedRecord, StoppedRecord,
};

/// Appends records to a journal, syncing each one to disk before returning.
///
/// Holds the journal's exclusive lock from [`JournalWriter::create`] or
/// [`JournalWriter::append_to`] until it is dropped; a second writer on the same journal, in this
/// process or another, gets [`JournalError::Locked`] naming the holder's pid.
#[derive(Debug)]
pub struct JournalWriter {
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// The note naming this process as the lock holder, removed on drop.
    pub(super) note: Option<PathBuf>,
}

impl JournalWriter {
    /// Creates a new journal holding `header`. Refuses to replace a file that holds anything but
    /// an empty journal (or a header cut short by a crash before any record).
    pub fn create(path: &Path, header: &Header) -> Result<JournalWriter, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // No truncation on open: what is there is only looked at once the lock is held.
        let existed = std::fs::symlink_metadata(path).is_ok();
        let file = open_for_append(path, true)?;
        let mut w = JournalWriter::locked(path, file)?;
        if let Err(e) = w.start(header) {
            // A journal this call made and could not write its header into (a full disk) is
            // not left behind, empty, under the lock it holds; only if the name still leads to
            // the file this call opened (not one put in its place since).
            use std::os::unix::fs::MetadataExt;
            let ours = match (w.file.metadata(), std::fs::symlink_metadata(path)) {
                (Ok(opened), Ok(named)) => {
                    (opened.dev(), opened.ino()) == (named.dev(), named.ino())
                }
                _ => false,
            };
            if !existed && ours {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        Ok(w)
    }

    /// Writes `header` into the newly locked journal (emptying a journal with nothing
    /// recorded) and syncs its folder.
    fn start(&mut self, header: &Header) -> Result<(), JournalError> {
        let path = self.path.clone();
        let io = |error| JournalError::Io {
            path: path.clone(),
            error,
        };
        if self.file.metadata().map_err(io)?.len() > 0 {
            match Journal::read(&path) {
                // Nothing recorded (blank, or a header torn by a crash): safe to start over.
                Err(JournalError::Empty { .. }) => self.file.set_len(0).map_err(io)?,
                _ => {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        super::ALREADY_EXISTS,
                    )))
                }
            }
        }
        let line = serde_json::to_string(header).expect("a header always serialises");
        self.write_line(&line)?;
        // A new file's directory entry must reach the disk too, or a crash can lose the file.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }

    /// Opens `journal` at `path` for appending, cutting off a torn last line first. Refuses if
    /// another process holds the journal, or wrote to it since `journal` was read.
    pub fn append_to(path: &Path, journal: &Journal) -> Result<JournalWriter, JournalError> {
        let io = |error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        };
        let file = open_for_append(path, false)?;
        let mut w = JournalWriter::locked(path, file)?;
        // `journal` was read before the lock was taken: a search that was still running then
        // may have appended since, and its records must not be re-run or cut off.
        let now = Journal::read(path)?;
        if now.valid_len != journal.valid_len
            || now.records.len() != journal.records.len()
            || now.torn_tail != journal.torn_tail
        {
            return Err(JournalError::Changed {
                path: path.to_path_buf(),
            });
        }
        let file = &mut w.file;
        let len = file.metadata().map_err(io)?.len();
        if len > journal.valid_len {
            // Only a last line without its newline that does not parse: no record is lost.
            file.set_len(journal.valid_len).map_err(io)?;
        }
        // The intact part must end with a newline before anything is appended (reads may seek;
        // writes always go to the end, the file being opened with O_APPEND).
        if journal.valid_len > 0 {
            file.seek(SeekFrom::Start(journal.valid_len - 1))
                .map_err(io)?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        file.sync_data().map_err(io)?;
        Ok(w)
    }

    /// Deletes the journal at `path` under its lock, for a caller that starts afresh there
    /// (the demo): refuses with [`JournalError::Locked`] while another process writes it, so
    /// no running search's records go to a file that is no longer there. A missing file is
    /// nothing to do.
    pub fn discard(path: &Path) -> Result<(), JournalError> {
        let file = match open_for_append(path, false) {
            Err(JournalError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(())
            }
            other => other?,
        };
        let w = JournalWriter::locked(path, file)?;
        std::fs::remove_file(path).map_err(|error| JournalError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        drop(w);
        Ok(())
    }

    /// Takes the journal's lock on `file` and leaves a note with this process's pid.
    /// [`JournalError::Locked`] (naming the holder) while another process writes the journal at
    /// `path`; takes the lock and lets it go at once, writing nothing. A resume asks this first,
    /// so a journal in use is reported as such before anything read in it is questioned.
    pub fn ensure_free(path: &Path) -> Result<(), JournalError> {
        let file = open_for_append(path, false)?;
        lock_exclusive(&file, path)
    }

    fn locked(path: &Path, file: File) -> Result<JournalWriter, JournalError> {
        lock_exclusive(&file, path)?;
        let note = lock_note(path);
        let noted = write_note(&note).is_ok();
        Ok(JournalWriter {
            path: path.to_path_buf(),
            file,
            note: noted.then_some(note),
        })
    }

    /// Appends one probe record and syncs it.
    pub fn append(&mut self, record: &ProbeRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Probe(record))
            .expect("a probe record always serialises");
        self.write_line(&line)
    }

    /// Appends one launch event and syncs it.
    pub fn append_launch(&mut self, record: &LaunchRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Launch(record))
            .expect("a launch record always serialises");
        self.write_line(&line)
    }

    /// Appends one `abandoned` event (a probe a stop signal cancelled) and syncs it.
    pub fn append_abandoned(&mut self, record: &AbandonedRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Abandoned(record))
            .expect("an abandoned record always serialises");
        self.write_line(&line)
    }

    /// Appends one `stopped` event (the stop rule ended the search) and syncs it.
    pub fn append_stopped(&mut self, record: &StoppedRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Stopped(record))
            .expect("a stopped record always serialises");
        self.write_line(&line)
    }

    /// Appends one `resumed` event (the limits of a resumed run) and syncs it.
    pub fn append_resumed(&mut self, record: &ResumedRecord) -> Result<(), JournalError> {
        let line = serde_json::to_string(&EventRef::Resumed(record))
            .expect("a resumed record always serialises");
        self.write_line(&line)
    }

    fn write_line(&mut self, line: &str) -> Result<(), JournalError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        // One write of the whole line, then a data sync: a crash leaves either the whole record
        // or a torn tail without its newline, which the reader drops.
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .map_err(|error| JournalError::Io {
                path: self.path.clone(),
                error,
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        // Before the file (and with it the lock) is closed, so a next holder's note survives.
        if let Some(note) = self.note.take() {
            let _ = std::fs::remove_file(note);
        }
    }
}

/// Opens the journal with O_APPEND (every write lands at the end, whatever else writes).
fn open_for_append(path: &Path, create: bool) -> Result<File, JournalError> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(create);
    super::open_regular(path, &mut options)
}

/// `<journal>.lock`: names the pid holding the journal's lock (informational: the lock itself is
/// on the journal file, so a note left by a killed process does no harm). A journal reached
/// through a symlink has its note beside the file it names, so every name of one journal
/// finds the same note.
pub fn lock_note(path: &Path) -> PathBuf {
    let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let target = if linked {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let mut name = target.into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Writes this process's pid into the lock note (never through a symlink planted there, and
/// never into a FIFO or device: the open would wait for a reader, or the write go elsewhere).
fn write_note(note: &Path) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let mut f = options.open(note)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let written = f
        .set_len(0)
        .and_then(|_| writeln!(f, "{}", std::process::id()));
    if written.is_err() {
        // An empty or partial note (a full disk) would name no holder and outlive the lock.
        let _ = std::fs::remove_file(note);
    }
    written
}

/// Takes the exclusive advisory lock on the journal. Refuses at once while the process named in
/// the lock note is alive; otherwise waits up to [`LOCK_GRACE`] for the lock: a search killed
/// just as it launched a job leaves the lock with the forked job until that job's exec closes the
/// journal (moments later), and a resume right after the kill must not fail on that.
#[cfg(unix)]
pub(super) fn lock_exclusive(file: &File, path: &Path) -> Result<(), JournalError> {
    use std::os::unix::io::AsRawFd;
    let started = std::time::Instant::now();
    loop {
        // SAFETY: flock on a descriptor `file` owns and keeps open for the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => {
                let pid: Option<u32> = crate::read_regular_string(&lock_note(path))
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                if pid.is_some_and(alive) || started.elapsed() >= LOCK_GRACE {
                    return Err(JournalError::Locked {
                        path: path.to_path_buf(),
                        pid,
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                return Err(JournalError::Io {
                    path: path.to_path_buf(),
                    error,
                })
            }
        }
    }
}

/// How long a lock whose noted holder has ended is waited for (see [`lock_exclusive`]).
#[cfg(unix)]
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Whether process `pid` exists (signal 0 checks without sending anything).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub(super) fn lock_exclusive(_file: &File, _path: &Path) -> Result<(), JournalError> {
    Ok(())
}
