//! Where registration keys are kept: a trait with a DynamoDB and an in-memory implementation.
//!
//! The contract both implement: a key is written only if no *live* item holds it. An item
//! whose `expiresAt` is in the past may be overwritten, because DynamoDB's TTL deletes
//! expired items lazily (up to days late) and a stale leftover must not block its key.

pub mod dynamodb;
mod http1;
pub mod memory;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use dynamodb::DynamoKeyStore;
pub use memory::MemoryKeyStore;

/// A boxed, sendable future: what a `dyn` trait method can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One key to store. Times are epoch seconds.
#[derive(Clone, Copy)]
pub struct NewKey<'a> {
    pub key: &'a str,
    pub user_id: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for NewKey<'_> {
    // The key is a secret: keep it out of any debug print of the record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// A live item already holds this key; nothing was written.
    Taken,
}

/// Why an insert failed. Texts are for operators; none reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Throttled, unreachable, timed out: worth retrying later (503).
    Unavailable(String),
    /// The table does not exist: a deployment order problem (500).
    TableMissing(String),
    /// Anything else (500).
    Other(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(m) => write!(f, "DynamoDB unavailable: {m}"),
            Self::TableMissing(t) => write!(
                f,
                "DynamoDB table {t} does not exist: deploy dynamodb-registration-keys first"
            ),
            Self::Other(m) => write!(f, "DynamoDB error: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Storage for registration keys.
pub trait KeyStore: Send + Sync {
    /// Writes `item` unless a live item (`expiresAt >= created_at`) holds its key.
    fn insert_unless_live<'a>(
        &'a self,
        item: NewKey<'a>,
    ) -> BoxFuture<'a, Result<Inserted, StoreError>>;
}
