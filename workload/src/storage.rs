//! Where inputs and outputs live: one [`Storage`] trait over local folders and Cloud Storage
//! (`gs://bucket/prefix`). Keys are `/`-separated and relative to the root.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Broad classes of storage failures (decides exit codes and whether to retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    NotFound,
    PermissionDenied,
    /// Timeouts, 429 and 5xx: retried with backoff before surfacing.
    Transient,
    /// The local disk is full, over its quota or failing (EIO): the machine's fault, not the
    /// input's, so not a usage error.
    Disk,
    Other,
}

/// A storage operation that failed, naming what it touched.
#[derive(Debug, thiserror::Error)]
#[error("{op} {location}: {message}")]
pub struct StorageError {
    pub op: &'static str,
    pub location: String,
    pub kind: StorageErrorKind,
    pub message: String,
}

impl StorageError {
    pub fn io(op: &'static str, location: impl std::fmt::Display, e: &io::Error) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::NotFound => StorageErrorKind::NotFound,
            io::ErrorKind::PermissionDenied => StorageErrorKind::PermissionDenied,
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut => StorageErrorKind::Transient,
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StorageErrorKind::Disk,
            _ if e.raw_os_error() == Some(libc::EIO) => StorageErrorKind::Disk,
            _ => StorageErrorKind::Other,
        };
        StorageError {
            op,
            location: location.to_string(),
            kind,
            message: e.to_string(),
        }
    }
}

/// An object (file) under a storage root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// `/`-separated key; a local name that is not UTF-8 appears here lossily (for messages).
    pub key: String,
    pub size: u64,
    /// The file itself, when the storage is a local folder. Read it through this path, not the
    /// key: a name that is not UTF-8 is kept exactly here, so the file opened is the file listed.
    pub path: Option<PathBuf>,
}

/// Reads a whole object listed by [`Storage::list`]: a local one through its exact path (see
/// [`ObjectInfo::path`]), any other through its key.
pub fn get_listed(
    storage: &dyn Storage,
    key: &str,
    path: Option<&Path>,
) -> Result<Vec<u8>, StorageError> {
    match path {
        Some(p) => read_regular_file(p).map_err(|e| StorageError::io("read", p.display(), &e)),
        None => storage.get(key),
    }
}

/// Opens a local file for reading, refusing anything that is not a regular file before a byte
/// is read: a FIFO would block until a writer came (its `open` too, hence `O_NONBLOCK`, which
/// changes nothing for a regular file), and a device such as `/dev/zero` would be read until
/// memory ran out. The check is on the opened descriptor, so the file checked is the file read.
pub fn open_regular(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({})", describe(meta.file_type())),
        ));
    }
    Ok(file)
}

/// Reads a whole local file through [`open_regular`].
pub fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_regular(path)?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// What a file that is not a regular one is, for messages.
fn describe(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a folder"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// A streaming writer for one output object. Nothing is visible under the final name until
/// [`ObjectWriter::commit`]; dropping without committing leaves nothing that looks whole.
pub trait ObjectWriter: Write + Send {
    /// Makes the object visible under `key` and returns its size in bytes.
    fn commit(self: Box<Self>, key: &str) -> Result<u64, StorageError>;
}

/// Local folders and Cloud Storage behind one interface (blocking; safe to call from many
/// threads at once).
pub trait Storage: Send + Sync {
    /// The root, as the user wrote it (for messages).
    fn location(&self) -> String;
    /// All objects under the root, recursively, sorted by key.
    fn list(&self) -> Result<Vec<ObjectInfo>, StorageError>;
    /// The whole content of one object.
    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError>;
    /// Writes one object in full.
    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError>;
    /// Removes one object; one that is already gone is not an error.
    fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// Starts a streamed object; `hint` names the temporary object.
    fn create(&self, hint: &str) -> Result<Box<dyn ObjectWriter>, StorageError>;
    /// Checks early that outputs can be written (creating the root if needed).
    fn prepare_output(&self) -> Result<(), StorageError>;
}

/// Whether `location` is meant as Cloud Storage: `gs:` and anything after it (a `gs:/b`
/// typo included), which a place that takes only local paths must refuse rather than make a
/// local folder named `gs:` of.
pub fn names_cloud_storage(location: &str) -> bool {
    location.starts_with("gs:")
}

/// Opens `location`: `gs://bucket/prefix` or a local path.
pub fn open(location: &str) -> Result<Box<dyn Storage>, StorageError> {
    if let Some(rest) = location.strip_prefix("gs://") {
        Ok(Box::new(crate::gcs::GcsStorage::open(rest)?))
    } else {
        Ok(Box::new(LocalStorage::new(location)))
    }
}

/// A local folder.
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

/// Identity of a folder: (device, inode), the same however it is reached.
type FolderId = (u64, u64);

fn folder_id(meta: &std::fs::Metadata) -> FolderId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// Lists `dir` recursively. Symlinks are followed (datasets are often linked in), but each folder
/// is listed once: a link back to a folder that contains it (`a -> .`) is a loop, and is an error
/// naming the link; a second link to a folder already listed elsewhere is skipped with a warning
/// (its files would otherwise be counted twice). `ancestors` are the folders from the root down to
/// `dir`; `seen` every folder listed so far.
fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<ObjectInfo>,
    ancestors: &mut Vec<FolderId>,
    seen: &mut std::collections::HashSet<FolderId>,
) -> Result<(), StorageError> {
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io("list", dir.display(), &e))?;
    for entry in rd {
        let entry = entry.map_err(|e| StorageError::io("list", dir.display(), &e))?;
        // The key is for matching and messages; the file is opened through `path`, which keeps
        // a name that is not UTF-8 exactly.
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| StorageError::io("stat", path.display(), &e))?;
        let link = ft.is_symlink();
        // Follow links; a dangling one is skipped.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            let id = folder_id(&meta);
            if ancestors.contains(&id) {
                return Err(StorageError {
                    op: "list",
                    location: path.display().to_string(),
                    kind: StorageErrorKind::Other,
                    message: "symlink loop: this links back to a folder that contains it \
                              (remove the link, or point the input at a folder without it)"
                        .to_string(),
                });
            }
            if !seen.insert(id) {
                eprintln!(
                    "warning: {}: skipped: {} a folder already listed (its files would count twice)",
                    path.display(),
                    if link { "a symlink to" } else { "the same folder as" }
                );
                continue;
            }
            ancestors.push(id);
            let r = walk(&path, &key, out, ancestors, seen);
            ancestors.pop();
            r?;
        } else if meta.is_file() {
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                path: Some(path),
            });
        }
    }
    Ok(())
}

impl Storage for LocalStorage {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let root = std::fs::metadata(&self.root)
            .map_err(|e| StorageError::io("list", self.root.display(), &e))?;
        let root = folder_id(&root);
        let mut seen = std::collections::HashSet::from([root]);
        walk(&self.root, "", &mut out, &mut vec![root], &mut seen)?;
        // Two names that are not UTF-8 can show as one key: their paths still order them.
        out.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.path.cmp(&b.path)));
        Ok(out)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let p = self.path(key);
        read_regular_file(&p).map_err(|e| StorageError::io("read", p.display(), &e))
    }

    fn put(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let p = self.path(key);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::io("create folder", parent.display(), &e))?;
        }
        std::fs::write(&p, data).map_err(|e| StorageError::io("write", p.display(), &e))
    }

    fn delete(&self, key: &str) -> Result<(), StorageError> {
        let p = self.path(key);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::io("remove", p.display(), &e))
            }
            _ => Ok(()),
        }
    }

    fn create(&self, hint: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        // Hidden temporary name in the same folder, so the final rename is atomic.
        let tmp = self.root.join(partial_name(hint, std::process::id()));
        let file = std::fs::File::create(&tmp)
            .map_err(|e| StorageError::io("create", tmp.display(), &e))?;
        Ok(Box::new(LocalWriter {
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            tmp,
            root: self.root.clone(),
            bytes: 0,
        }))
    }

    fn prepare_output(&self) -> Result<(), StorageError> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(StorageError {
                op: "create folder",
                location: self.root.display().to_string(),
                kind: StorageErrorKind::Other,
                message: "a file is there, not a folder; give an output folder".into(),
            });
        }
        std::fs::create_dir_all(&self.root)
            .map_err(|e| StorageError::io("create folder", self.root.display(), &e))?;
        // Creating the folder can succeed on an existing read-only one: probe a write.
        let probe = self
            .root
            .join(format!(".write-probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| StorageError::io("write to", self.root.display(), &e))?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

/// Name of the hidden temporary a local [`Storage::create`] writes: `.<hint>.partial-<pid>`.
fn partial_name(hint: &str, pid: u32) -> String {
    format!(".{hint}.partial-{pid}")
}

/// The (hint, pid) of a temporary named by [`Storage::create`] on a local folder, `None` for any
/// other name. A process killed while writing (SIGINT, SIGKILL) leaves such a file behind.
pub fn parse_partial_name(name: &str) -> Option<(&str, u32)> {
    let (hint, pid) = name.strip_prefix('.')?.rsplit_once(".partial-")?;
    if hint.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((hint, pid.parse().ok()?))
}

/// Whether a process with this pid runs on this machine (a temporary it names may be in use).
pub fn process_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The file an output path names: a symlink is followed to its target (the link stays, the
/// target gets the content), a dangling one is refused, and so is anything that exists and is
/// not a regular file (a folder, a FIFO, a device), unless `devices` allows a character device
/// (`/dev/null`, a terminal), which is then written directly.
fn output_target(path: &Path, devices: bool) -> Result<(PathBuf, bool), StorageError> {
    use std::os::unix::fs::FileTypeExt;
    let refuse = |message: String| StorageError {
        op: "write",
        location: path.display().to_string(),
        kind: StorageErrorKind::Other,
        message,
    };
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_symlink(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((path.to_path_buf(), false)),
        Err(e) => return Err(StorageError::io("write", path.display(), &e)),
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        refuse(format!(
            "a symlink whose target cannot be written ({e}); remove it or give another file"
        ))
    })?;
    let ft = meta.file_type();
    if ft.is_char_device() && devices {
        return Ok((path.to_path_buf(), true));
    }
    if !ft.is_file() {
        return Err(refuse(format!(
            "exists and is not a regular file ({}); refusing to replace it",
            describe(ft)
        )));
    }
    if !link {
        return Ok((path.to_path_buf(), false));
    }
    std::fs::canonicalize(path)
        .map(|p| (p, false))
        .map_err(|e| refuse(format!("a symlink whose target cannot be resolved: {e}")))
}

/// A local output file replaced whole or not at all: the content is written to a hidden
/// temporary beside the destination, which [`StagedFile::commit`] syncs and renames over it, so
/// a failure (a full disk, a plot that cannot be drawn) leaves the destination as it was. A
/// symlink is written through; a destination that is not a regular file is refused when staged,
/// before anything is written. Dropped uncommitted, the temporary is removed.
pub struct StagedFile {
    dest: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Checks `path` and names its temporary (nothing is created yet). The temporary keeps the
    /// destination's extension: a plot's encoder picks the image format from it.
    pub fn new(path: &Path) -> Result<StagedFile, StorageError> {
        let (dest, _) = output_target(path, false)?;
        let name = dest.file_name().ok_or_else(|| StorageError {
            op: "write",
            location: path.display().to_string(),
            kind: StorageErrorKind::Other,
            message: "not a file name".into(),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(Path::new(name).file_stem().unwrap_or(name));
        tmp_name.push(format!(".partial-{}", std::process::id()));
        if let Some(ext) = Path::new(name).extension() {
            tmp_name.push(".");
            tmp_name.push(ext);
        }
        let tmp = dest.with_file_name(tmp_name);
        Ok(StagedFile {
            dest,
            tmp,
            committed: false,
        })
    }

    /// Where the content goes until [`StagedFile::commit`].
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Writes `bytes` to the temporary.
    pub fn write(&self, bytes: &[u8]) -> Result<(), StorageError> {
        std::fs::write(&self.tmp, bytes)
            .map_err(|e| StorageError::io("write", self.tmp.display(), &e))
    }

    /// Syncs the temporary to the disk, where a full disk shows (before any rename): a caller
    /// committing several files syncs them all first.
    pub fn sync(&self) -> Result<(), StorageError> {
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StorageError::io("write", self.tmp.display(), &e))
    }

    /// Syncs the temporary and renames it over the destination.
    pub fn commit(mut self) -> Result<(), StorageError> {
        self.sync()?;
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| StorageError::io("rename to", self.dest.display(), &e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes a whole local output file: a regular file (or a new one) through a [`StagedFile`], a
/// character device (`/dev/null`, a terminal) directly, since it has no content to keep. A full
/// disk is a [`StorageErrorKind::Disk`] error; a folder, a FIFO or a dangling symlink in the
/// way is refused before anything is written.
pub fn write_output_file(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let (_, device) = output_target(path, true)?;
    if device {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.flush()))
            .map_err(|e| StorageError::io("write", path.display(), &e));
    }
    let staged = StagedFile::new(path)?;
    staged.write(bytes)?;
    staged.commit()
}

/// Checks, before a long run, that [`write_output_file`] could write `path`: what is there now
/// may be replaced (see there) and its folder exists or can be created.
pub fn check_output_file(path: &Path) -> Result<(), StorageError> {
    output_target(path, true)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError::io("create folder", dir.display(), &e))?;
    }
    Ok(())
}

struct LocalWriter {
    file: Option<io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    root: PathBuf,
    bytes: u64,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .expect("writer open until commit")
            .write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("writer open until commit")
            .flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn commit(mut self: Box<Self>, key: &str) -> Result<u64, StorageError> {
        let file = self.file.take().expect("commit once");
        let file = file
            .into_inner()
            .map_err(|e| StorageError::io("write", self.tmp.display(), e.error()))?;
        drop(file);
        let dest = self.root.join(key);
        std::fs::rename(&self.tmp, &dest)
            .map_err(|e| StorageError::io("rename to", dest.display(), &e))?;
        Ok(self.bytes)
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_list_get_put_and_atomic_writer() {
        let root = std::env::temp_dir().join(format!("cherrypick-storage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let s = LocalStorage::new(&root);
        assert_eq!(s.list().unwrap_err().kind, StorageErrorKind::NotFound);
        s.prepare_output().unwrap();
        s.put("a/x.bin", b"abc").unwrap();
        s.put("b.bin", b"z").unwrap();
        let mut w = s.create("shard").unwrap();
        w.write_all(b"12345").unwrap();
        // Before commit only the hidden temporary exists.
        assert!(s.list().unwrap().iter().all(|o| o.key != "final.tfrec"));
        assert_eq!(w.commit("final.tfrec").unwrap(), 5);
        let keys: Vec<_> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|o| (o.key, o.size))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("a/x.bin".into(), 3),
                ("b.bin".into(), 1),
                ("final.tfrec".into(), 5)
            ]
        );
        assert_eq!(s.get("a/x.bin").unwrap(), b"abc");
        // An abandoned writer leaves nothing behind.
        let mut w = s.create("gone").unwrap();
        w.write_all(b"x").unwrap();
        drop(w);
        assert_eq!(s.list().unwrap().len(), 3);
        // Deleting removes one object; a missing one is not an error.
        s.delete("b.bin").unwrap();
        s.delete("b.bin").unwrap();
        assert_eq!(s.list().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn symlink_loops_are_errors_and_second_links_are_listed_once() {
        use std::os::unix::fs::symlink;
        let root = std::env::temp_dir().join(format!("cherrypick-loops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("daisy")).unwrap();
        std::fs::write(root.join("daisy/a.jpg"), b"x").unwrap();
        // Two links to the root: before, the walk went a/b/a/b/... without end.
        symlink(".", root.join("a")).unwrap();
        symlink(".", root.join("b")).unwrap();
        let started = std::time::Instant::now();
        let e = LocalStorage::new(&root).list().unwrap_err();
        assert!(started.elapsed().as_secs() < 5);
        assert!(e.to_string().contains("symlink loop"), "{e}");
        assert!(
            e.location.ends_with("/a") || e.location.ends_with("/b"),
            "{e}"
        );
        // A link into a class folder from elsewhere is listed once, not twice.
        std::fs::remove_file(root.join("a")).unwrap();
        std::fs::remove_file(root.join("b")).unwrap();
        symlink(root.join("daisy"), root.join("daisy-again")).unwrap();
        let keys: Vec<_> = LocalStorage::new(&root)
            .list()
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
        // A loop deeper down is caught too.
        symlink("..", root.join("daisy/up")).unwrap();
        let e = LocalStorage::new(&root).list().unwrap_err();
        assert!(e.to_string().contains("symlink loop"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
