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
    pub key: String,
    pub size: u64,
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
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        let p = self.path(key);
        std::fs::read(&p).map_err(|e| StorageError::io("read", p.display(), &e))
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
        let tmp = self
            .root
            .join(format!(".{hint}.partial-{}", std::process::id()));
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
