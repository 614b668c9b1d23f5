//! Cloud Storage (`gs://bucket/prefix`) behind the [`Storage`](crate::storage::Storage) trait.

use crate::storage::{ObjectInfo, ObjectWriter, Storage, StorageError, StorageErrorKind};

pub struct GcsStorage {
    bucket: String,
    prefix: String,
}

impl GcsStorage {
    pub fn open(rest: &str) -> Result<Self, StorageError> {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        Err(StorageError {
            op: "open",
            location: format!("gs://{bucket}/{prefix}"),
            kind: StorageErrorKind::Other,
            message: "Cloud Storage support is not built yet".into(),
        })
    }
}

impl Storage for GcsStorage {
    fn location(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix)
    }
    fn list(&self) -> Result<Vec<ObjectInfo>, StorageError> {
        unreachable!()
    }
    fn get(&self, _key: &str) -> Result<Vec<u8>, StorageError> {
        unreachable!()
    }
    fn put(&self, _key: &str, _data: &[u8]) -> Result<(), StorageError> {
        unreachable!()
    }
    fn create(&self, _hint: &str) -> Result<Box<dyn ObjectWriter>, StorageError> {
        unreachable!()
    }
    fn prepare_output(&self) -> Result<(), StorageError> {
        unreachable!()
    }
}
