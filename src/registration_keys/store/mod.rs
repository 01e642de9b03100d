//! Where registration keys are kept: a trait with a DynamoDB and an in-memory implementation.
//!
//! Items are FireFly-Cloud's (`firefly-registration-keys`, hash key `key`, TTL attribute
//! `ttl`), so its Python functions and ours read each other's keys during a migration.
//! An item is *live* while `ttl > now`, as FireFly's `GET /registration-keys` filters.
//!
//! The contract both implement: a key is written only if no live item holds it. An expired
//! item may be overwritten, because DynamoDB's TTL deletes expired items lazily (up to days
//! late) and a stale leftover must not block its key.

pub mod dynamodb;
pub mod memory;

use std::fmt;

pub use crate::aws::errors::StoreError;
pub use crate::handler::BoxFuture;
pub use dynamodb::DynamoKeyStore;
pub use memory::MemoryKeyStore;

/// One key to store. Times are epoch seconds.
#[derive(Clone, Copy)]
pub struct NewKey<'a> {
    pub key: &'a str,
    /// `generated_by_sub`: the minting user.
    pub user_id: &'a str,
    /// `generated_by_email`: the `email` claim, or `""`.
    pub email: &'a str,
    /// One random value per mint request, stored with the item: when a write went through
    /// but its answer was lost, the retry finds this value on the item that blocks it and
    /// knows the item is its own (not a collision).
    pub nonce: &'a str,
    /// `generated_at`.
    pub created_at: i64,
    /// `ttl`.
    pub expires_at: i64,
}

/// A live key as `GET /registration-keys` lists it.
#[derive(Clone, PartialEq, Eq)]
pub struct ListedKey {
    pub key: String,
    pub generated_at: i64,
    pub expires_at: i64,
}

impl fmt::Debug for ListedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListedKey")
            .field("key", &"<redacted>")
            .field("generated_at", &self.generated_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Debug for NewKey<'_> {
    // The key is a secret: keep it out of any debug print of the record.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &"<redacted>")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("nonce", &self.nonce)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// The item is already there, written by this very mint (its nonce): a retried write
    /// whose first answer was lost.
    AlreadyOurs,
    /// A live item already holds this key; nothing was written.
    Taken,
}

/// What a revoke did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Deleted,
    /// No item with this key is both the caller's and live; nothing was deleted.
    NotLive,
}

/// Storage for registration keys.
pub trait KeyStore: Send + Sync {
    /// Writes `item` unless a live item (`ttl > created_at`) holds its key; a live item
    /// that carries `item.nonce` is this mint's own earlier write.
    fn insert_unless_live<'a>(
        &'a self,
        item: NewKey<'a>,
    ) -> BoxFuture<'a, Result<Inserted, StoreError>>;

    /// Deletes `key` if `user_id` minted it and it is live at `now` (`ttl > now`).
    fn revoke<'a>(
        &'a self,
        key: &'a str,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Revoked, StoreError>>;

    /// Every key `user_id` minted that is live at `now`, every page of the table read,
    /// in no particular order.
    fn list_live<'a>(
        &'a self,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<ListedKey>, StoreError>>;
}
