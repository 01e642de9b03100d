//! Where backups are kept: one object per device in FireFly's bucket (S3), or in memory
//! for local runs.

use crate::aws::s3::{S3Client, S3Error};
use crate::handler::BoxFuture;
use crate::sync::Locked;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// The metadata key of the plaintext's SHA-256, as FireFly stores it.
pub const ETAG_META: &str = "etag";

/// A stored backup: the encrypted blob and the device's ETag, if it sent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub body: Bytes,
    pub etag: Option<String>,
}

/// Storage for backups, keyed by device UUID.
pub trait ObjectStore: Send + Sync {
    /// Stores `body` under `key`, replacing whatever was there (and its ETag).
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>>;

    /// The stored backup, `None` when there is none.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, S3Error>>;

    /// The stored backup's ETag without its body: `None` when there is no backup or it was
    /// stored without one.
    fn etag<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, S3Error>>;

    /// Removes the backup (no backup: nothing to do).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), S3Error>>;
}

/// The bucket, through the process's S3 client.
pub struct S3Objects {
    client: S3Client,
    bucket: String,
}

impl S3Objects {
    pub fn new(client: S3Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

impl ObjectStore for S3Objects {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(async move {
            let meta: Vec<(&str, &str)> = etag.map(|e| (ETAG_META, e)).into_iter().collect();
            self.client
                .put_object(&self.bucket, key, body, "application/octet-stream", &meta)
                .await
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, S3Error>> {
        Box::pin(async move {
            Ok(self
                .client
                .get_object(&self.bucket, key)
                .await?
                .map(|o| Stored {
                    etag: o.meta(ETAG_META).map(str::to_owned),
                    body: o.body,
                }))
        })
    }

    fn etag<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, S3Error>> {
        Box::pin(async move {
            let meta = self.client.head_object(&self.bucket, key).await?;
            Ok(meta.and_then(|m| m.into_iter().find(|(k, _)| k == ETAG_META).map(|(_, v)| v)))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.client.delete_object(&self.bucket, key))
    }
}

/// Backups in memory (local runs): they vanish with the process.
#[derive(Default)]
pub struct MemoryObjects {
    objects: Mutex<HashMap<String, Stored>>,
}

impl ObjectStore for MemoryObjects {
    fn put<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        etag: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        let stored = Stored {
            body,
            etag: etag.map(str::to_owned),
        };
        self.objects.locked().insert(key.to_owned(), stored);
        Box::pin(std::future::ready(Ok(())))
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Stored>, S3Error>> {
        let found = self.objects.locked().get(key).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn etag<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, S3Error>> {
        let found = self.objects.locked().get(key).and_then(|s| s.etag.clone());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), S3Error>> {
        self.objects.locked().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
}
