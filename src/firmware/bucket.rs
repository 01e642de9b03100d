//! FireFly's private firmware bucket, as the ingest functions use it: read a ZIP, move it
//! between prefixes. Through S3, or in memory for local runs, where every write is
//! announced as S3 would announce it ([`Announce`]), so the local pipeline runs as the
//! deployed one does.

use crate::aws::s3::{S3Client, S3Error};
use crate::handler::BoxFuture;
use crate::s3_event::S3Event;
use crate::sync::Locked;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What a local run does with the events of its in-memory buckets (`firefly-local`
/// delivers them to the S3 functions whose notification matches).
pub type Announce = Arc<dyn Fn(S3Event) + Send + Sync>;

/// The bucket's operations.
pub trait Bucket: Send + Sync {
    /// The object (up to `limit` bytes: [`S3Error::TooLarge`] past it); `None`: none.
    fn get<'a>(
        &'a self,
        key: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Bytes>, S3Error>>;

    /// Copies one version of `from` (the current one for `None`) to `to`; `false` when
    /// there is no such object.
    fn copy<'a>(
        &'a self,
        from: &'a str,
        version: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, S3Error>>;

    /// Deletes one version for good, or the key (`None`).
    fn delete<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>>;

    /// The keys under `prefix`, in S3's order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, S3Error>>;

    /// Stores a published file: `body` with its `Content-Type` and `Cache-Control`.
    fn publish<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        headers: Published,
    ) -> BoxFuture<'a, Result<(), S3Error>>;

    /// Whether the key holds an object (`HeadObject`).
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, S3Error>>;

    /// A URL anyone may `GET` the object at until `expires` after `now`.
    fn presign_get(
        &self,
        key: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, S3Error>;
}

/// The headers a published file is stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// The bucket on S3.
pub struct S3Bucket {
    client: S3Client,
    bucket: String,
}

impl S3Bucket {
    pub fn new(client: S3Client, bucket: String) -> Self {
        Self { client, bucket }
    }
}

impl Bucket for S3Bucket {
    fn get<'a>(
        &'a self,
        key: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Bytes>, S3Error>> {
        Box::pin(async move {
            Ok(self
                .client
                .get_object_limited(&self.bucket, key, limit)
                .await?
                .map(|o| o.body))
        })
    }

    fn copy<'a>(
        &'a self,
        from: &'a str,
        version: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, S3Error>> {
        Box::pin(self.client.copy_object(&self.bucket, from, version, to))
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(self.client.delete_version(&self.bucket, key, version))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, S3Error>> {
        Box::pin(self.client.list_keys(&self.bucket, prefix))
    }

    fn publish<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        headers: Published,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        Box::pin(async move {
            let headers = [
                ("content-type".to_owned(), headers.content_type.to_owned()),
                ("cache-control".to_owned(), headers.cache_control.to_owned()),
            ];
            self.client
                .put_object_with(&self.bucket, key, body, &headers)
                .await
        })
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, S3Error>> {
        Box::pin(async move { Ok(self.client.head_object(&self.bucket, key).await?.is_some()) })
    }

    fn presign_get(
        &self,
        key: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, S3Error> {
        self.client.presign_get(&self.bucket, key, now, expires)
    }
}

/// One stored object of the memory bucket.
#[derive(Clone)]
struct Stored {
    body: Bytes,
    version: String,
    headers: Option<Published>,
}

/// A bucket in memory (local runs): one version per key, and S3's events announced.
pub struct MemoryBucket {
    name: String,
    objects: Mutex<BTreeMap<String, Stored>>,
    announce: Option<Announce>,
    counter: std::sync::atomic::AtomicU64,
    presigner: Mutex<Option<Presigner>>,
}

/// What makes a memory bucket's presigned URLs: the local S3 endpoint that serves it
/// (`bucket, key, now, expires` → URL).
pub type Presigner =
    Arc<dyn Fn(&str, &str, std::time::SystemTime, std::time::Duration) -> String + Send + Sync>;

impl MemoryBucket {
    pub fn new(name: &str, announce: Option<Announce>) -> Self {
        Self {
            name: name.to_owned(),
            objects: Mutex::new(BTreeMap::new()),
            announce,
            counter: std::sync::atomic::AtomicU64::new(0),
            presigner: Mutex::new(None),
        }
    }

    /// Presigned URLs of this bucket are made by `presigner` (the endpoint that serves it).
    pub fn presign_with(&self, presigner: Presigner) {
        *self.presigner.locked() = Some(presigner);
    }

    /// The headers an object was published with.
    pub fn published(&self, key: &str) -> Option<Published> {
        self.objects.locked().get(key).and_then(|s| s.headers)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn next(&self) -> u64 {
        self.counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    fn tell(&self, event: &str, key: &str, version: Option<&str>, size: Option<u64>, n: u64) {
        if let Some(announce) = &self.announce {
            announce(S3Event::one(
                event,
                &self.name,
                key,
                version,
                &format!("{n:016X}"),
                size,
            ));
        }
    }

    /// Stores an object (a `PutObject`), announced as `ObjectCreated:Put`; its version id.
    pub fn put(&self, key: &str, body: Bytes) -> String {
        let (version, n, size) = self.store(key, body);
        self.tell("ObjectCreated:Put", key, Some(&version), Some(size), n);
        version
    }

    /// [`MemoryBucket::put`] unannounced: for an S3 endpoint that announces its own writes.
    pub fn put_quietly(&self, key: &str, body: Bytes) -> String {
        self.store(key, body).0
    }

    fn store(&self, key: &str, body: Bytes) -> (String, u64, u64) {
        let n = self.next();
        let version = format!("v{n}");
        let size = body.len() as u64;
        self.objects.locked().insert(
            key.to_owned(),
            Stored {
                body,
                version: version.clone(),
                headers: None,
            },
        );
        (version, n, size)
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.objects
            .locked()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// The object and its version.
    pub fn object(&self, key: &str) -> Option<(Bytes, String)> {
        self.objects
            .locked()
            .get(key)
            .map(|s| (s.body.clone(), s.version.clone()))
    }

    /// Removes the key (a `DeleteObject`), announced as `ObjectRemoved:Delete` when there
    /// was one; whether there was.
    pub fn remove(&self, key: &str, version: Option<&str>) -> bool {
        let removed = self.remove_quietly(key, version);
        if removed {
            let n = self.next();
            self.tell("ObjectRemoved:Delete", key, version, None, n);
        }
        removed
    }

    /// [`MemoryBucket::remove`] unannounced.
    pub fn remove_quietly(&self, key: &str, version: Option<&str>) -> bool {
        let mut objects = self.objects.locked();
        match objects.get(key) {
            Some(s) if version.is_none_or(|v| v == s.version) => objects.remove(key).is_some(),
            _ => false,
        }
    }
}

impl Bucket for MemoryBucket {
    fn get<'a>(
        &'a self,
        key: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<Bytes>, S3Error>> {
        let found = self.objects.locked().get(key).map(|s| s.body.clone());
        Box::pin(std::future::ready(match found {
            Some(b) if b.len() > limit => Err(S3Error::TooLarge(limit)),
            other => Ok(other),
        }))
    }

    fn copy<'a>(
        &'a self,
        from: &'a str,
        version: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, S3Error>> {
        let source = self
            .objects
            .locked()
            .get(from)
            .filter(|s| version.is_none_or(|v| v == s.version))
            .cloned();
        let copied = source.map(|s| {
            let n = self.next();
            let version = format!("v{n}");
            let size = s.body.len() as u64;
            self.objects.locked().insert(
                to.to_owned(),
                Stored {
                    body: s.body,
                    version: version.clone(),
                    headers: s.headers,
                },
            );
            self.tell("ObjectCreated:Copy", to, Some(&version), Some(size), n);
        });
        Box::pin(std::future::ready(Ok(copied.is_some())))
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        version: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        self.remove(key, version);
        Box::pin(std::future::ready(Ok(())))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, S3Error>> {
        Box::pin(std::future::ready(Ok(self.keys(prefix))))
    }

    fn publish<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
        headers: Published,
    ) -> BoxFuture<'a, Result<(), S3Error>> {
        self.put(key, body);
        if let Some(s) = self.objects.locked().get_mut(key) {
            s.headers = Some(headers);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, S3Error>> {
        Box::pin(std::future::ready(Ok(self
            .objects
            .locked()
            .contains_key(key))))
    }

    fn presign_get(
        &self,
        key: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, S3Error> {
        let presigner = self.presigner.locked().clone();
        match presigner {
            Some(p) => Ok(p(&self.name, key, now, expires)),
            None => Err(S3Error::Other(format!(
                "no S3 endpoint serves the memory bucket {}: nothing to presign for",
                self.name
            ))),
        }
    }
}
