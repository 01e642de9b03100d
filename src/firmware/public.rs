//! FireFly's public firmware bucket (`<class>/<hex>/<app>/<version>/<file>`, CloudFront in
//! front) as the firmware functions change it. A revocation moves a version's files to
//! `revoked/` (which the bucket's policy keeps private, and its lifecycle expires after 90
//! days) and tells CloudFront to forget its copies, as FireFly's status function does.

use super::bucket::Bucket;
use crate::aws::cloudfront::{CloudFrontClient, CloudFrontError};
use crate::devices::store::Item;
use crate::handler::BoxFuture;
use crate::s3_event::Failed;
use crate::sync::Locked;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Where revoked files go, under the same path.
pub const REVOKED: &str = "revoked/";

/// The CDN in front of the bucket: what it must forget.
pub trait Cdn: Send + Sync {
    /// Invalidates `path` (a CloudFront path: `/…`, `*` at the end). The same `reference`
    /// again is the same invalidation (CloudFront's `CallerReference`), so a retry adds none.
    fn invalidate<'a>(
        &'a self,
        path: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudFrontError>>;
}

/// The distribution on CloudFront.
pub struct CloudFront {
    client: CloudFrontClient,
    distribution: String,
}

impl CloudFront {
    pub fn new(client: CloudFrontClient, distribution: String) -> Self {
        Self {
            client,
            distribution,
        }
    }
}

impl Cdn for CloudFront {
    fn invalidate<'a>(
        &'a self,
        path: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudFrontError>> {
        Box::pin(async move {
            let id = self
                .client
                .create_invalidation(&self.distribution, &[path], reference)
                .await?;
            tracing::info!(path, invalidation = %id, "CloudFront invalidation created");
            Ok(())
        })
    }
}

/// A stand-in for local runs and tests: it remembers what it was told to forget.
#[derive(Default)]
pub struct MemoryCdn {
    invalidated: Mutex<Vec<String>>,
}

impl MemoryCdn {
    /// The paths invalidated so far, in order.
    pub fn invalidated(&self) -> Vec<String> {
        self.invalidated.locked().clone()
    }
}

impl Cdn for MemoryCdn {
    fn invalidate<'a>(
        &'a self,
        path: &'a str,
        _reference: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudFrontError>> {
        tracing::info!(path, "CloudFront stand-in: invalidated");
        self.invalidated.locked().push(path.to_owned());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The public bucket and the CDN in front of it.
#[derive(Clone)]
pub struct Public {
    pub bucket: Arc<dyn Bucket>,
    pub cdn: Arc<dyn Cdn>,
}

/// `<class>/<hex>/<app>/<version>/` of a record: class, hex and application lower-cased,
/// as FireFly publishes them. A part that is empty or could leave its folder is refused
/// before it reaches a key.
pub fn prefix(record: &Item) -> Result<String, String> {
    let part = |name: &str, lower: bool| -> Result<String, String> {
        let v = record.get(name).and_then(Value::as_str).unwrap_or_default();
        let bad = v.is_empty()
            || v == "."
            || v == ".."
            || v.chars().any(|c| matches!(c, '/' | '\\') || c.is_control());
        if bad {
            return Err(format!(
                "the record's {name} {v:?} cannot name a public folder"
            ));
        }
        Ok(if lower {
            v.to_lowercase()
        } else {
            v.to_owned()
        })
    };
    Ok(format!(
        "{}/{}/{}/{}/",
        part("class", true)?,
        part("product_hex", true)?,
        part("application", true)?,
        part("version", false)?
    ))
}

/// Why a change of the public side stopped.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    /// The record cannot name a public folder.
    #[error("{0}")]
    Key(String),
    #[error(transparent)]
    S3(#[from] crate::aws::s3::S3Error),
    #[error(transparent)]
    Cdn(#[from] CloudFrontError),
}

impl From<PublicError> for Failed {
    fn from(e: PublicError) -> Self {
        Self(e.to_string())
    }
}

impl Public {
    /// A revocation's effects on the public side: each file under the record's folder moved
    /// to `revoked/` (a copy, then the delete: a retry moves what is left), then one
    /// invalidation of the folder. `moved` gets each file's name as it moves, so that a
    /// revocation stopped part way can be put back ([`Public::restore`]).
    pub async fn revoke(
        &self,
        record: &Item,
        reference: &str,
        moved: &mut Vec<String>,
    ) -> Result<(), PublicError> {
        let prefix = prefix(record).map_err(PublicError::Key)?;
        for key in self.bucket.list(&prefix).await? {
            let name = key.rsplit('/').next().unwrap_or(&key).to_owned();
            let to = format!("{REVOKED}{prefix}{name}");
            // Gone since the listing: another attempt moved it.
            if self.bucket.copy(&key, None, &to).await? {
                self.bucket.delete(&key, None).await?;
                moved.push(name);
            }
        }
        self.cdn
            .invalidate(&format!("/{prefix}*"), reference)
            .await?;
        Ok(())
    }

    /// Puts back the files a revocation moved (`moved`, as [`Public::revoke`] named them).
    pub async fn restore(&self, record: &Item, moved: &[String]) -> Result<(), PublicError> {
        let prefix = prefix(record).map_err(PublicError::Key)?;
        for name in moved {
            let revoked = format!("{REVOKED}{prefix}{name}");
            if self
                .bucket
                .copy(&revoked, None, &format!("{prefix}{name}"))
                .await?
            {
                self.bucket.delete(&revoked, None).await?;
            }
        }
        Ok(())
    }

    /// Removes every file of the record's folder (a release that did not complete).
    pub async fn withdraw(&self, record: &Item) -> Result<(), PublicError> {
        let prefix = prefix(record).map_err(PublicError::Key)?;
        for key in self.bucket.list(&prefix).await? {
            self.bucket.delete(&key, None).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::bucket::MemoryBucket;
    use super::*;
    use serde_json::json;

    fn record(version: &str) -> Item {
        let Value::Object(m) = json!({"class": "CONTROLLER", "product_hex": "0xABCD0001",
            "application": "Controller", "version": version})
        else {
            unreachable!()
        };
        m
    }

    #[test]
    fn a_folder_is_named_as_firefly_publishes_it_and_never_leaves_its_place() {
        assert_eq!(
            prefix(&record("9999.99.99")).unwrap(),
            "controller/0xabcd0001/controller/9999.99.99/"
        );
        for bad in ["", "..", "1/../../x", "a\\b", "1\n2"] {
            assert!(prefix(&record(bad)).is_err(), "{bad:?}");
        }
        let mut no_class = record("1.0.0");
        no_class.remove("class");
        assert!(prefix(&no_class).unwrap_err().contains("class"));
    }

    #[tokio::test]
    async fn a_revocation_moves_every_file_of_the_version_and_invalidates_once() {
        let bucket = Arc::new(MemoryBucket::new("public", None));
        let cdn = Arc::new(MemoryCdn::default());
        let folder = "controller/0xabcd0001/controller/9999.99.99/";
        for f in ["Controller.ino.bin", "ui.bin"] {
            bucket.put_quietly(&format!("{folder}{f}"), vec![1, 2].into());
        }
        let other = "controller/0xabcd0001/controller/9999.99.990/ui.bin";
        bucket.put_quietly(other, vec![3].into());
        let public = Public {
            bucket: bucket.clone(),
            cdn: cdn.clone(),
        };
        let mut moved = Vec::new();
        public
            .revoke(&record("9999.99.99"), "r", &mut moved)
            .await
            .unwrap();
        assert_eq!(moved, ["Controller.ino.bin", "ui.bin"]);
        let mut keys = bucket.keys("");
        keys.sort();
        assert_eq!(
            keys,
            [
                other.to_owned(),
                format!("{REVOKED}{folder}Controller.ino.bin"),
                format!("{REVOKED}{folder}ui.bin"),
            ]
        );
        assert_eq!(cdn.invalidated(), [format!("/{folder}*")]);
        // Again (a retry after a crash past the moves): nothing left to move, CloudFront
        // told again under the same reference.
        let mut again = Vec::new();
        public
            .revoke(&record("9999.99.99"), "r", &mut again)
            .await
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(bucket.keys(REVOKED).len(), 2);
    }
}
