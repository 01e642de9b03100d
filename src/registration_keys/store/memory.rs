//! An in-memory [`KeyStore`] for local runs and tests. Chosen explicitly
//! (`FIREFLY_STORE=memory`), never as a fallback: its keys vanish with the process.

use super::{BoxFuture, Inserted, KeyStore, ListedKey, NewKey, Revoked, StoreError};
use crate::sync::Locked;
use std::collections::HashMap;
use std::sync::Mutex;

/// A stored item, as the DynamoDB table would hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub user_id: String,
    pub email: String,
    pub nonce: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    items: Mutex<HashMap<String, StoredKey>>,
}

impl MemoryKeyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The item stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<StoredKey> {
        self.lock().get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The items under the store's lock, for a change that must be atomic with another
    /// store's (a device registration redeems a key).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredKey>> {
        // A panic elsewhere while holding the lock leaves a consistent map (every write is a
        // single insert), so a poisoned lock is still safe to use.
        self.items.locked()
    }
}

impl KeyStore for MemoryKeyStore {
    fn insert_unless_live<'a>(
        &'a self,
        item: NewKey<'a>,
    ) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        let mut items = self.lock();
        let outcome = match items.get(item.key) {
            // Same condition as the DynamoDB store: attribute_not_exists OR ttl <= :now.
            Some(existing) if existing.expires_at > item.created_at => {
                if existing.nonce == item.nonce {
                    Inserted::AlreadyOurs
                } else {
                    Inserted::Taken
                }
            }
            _ => {
                items.insert(
                    item.key.to_owned(),
                    StoredKey {
                        user_id: item.user_id.to_owned(),
                        email: item.email.to_owned(),
                        nonce: item.nonce.to_owned(),
                        created_at: item.created_at,
                        expires_at: item.expires_at,
                    },
                );
                Inserted::Stored
            }
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn revoke<'a>(
        &'a self,
        key: &'a str,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Revoked, StoreError>> {
        let mut items = self.lock();
        // Same condition as the DynamoDB store: generated_by_sub = :sub AND ttl > :now.
        let outcome = match items.get(key) {
            Some(item) if item.user_id == user_id && item.expires_at > now => {
                items.remove(key);
                Revoked::Deleted
            }
            _ => Revoked::NotLive,
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn list_live<'a>(
        &'a self,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<ListedKey>, StoreError>> {
        let listed = self
            .lock()
            .iter()
            .filter(|(_, item)| item.user_id == user_id && item.expires_at > now)
            .map(|(key, item)| ListedKey {
                key: key.clone(),
                generated_at: item.created_at,
                expires_at: item.expires_at,
            })
            .collect();
        Box::pin(std::future::ready(Ok(listed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, user: &str, now: i64) -> NewKey<'static> {
        NewKey {
            key: Box::leak(key.to_owned().into_boxed_str()),
            user_id: Box::leak(user.to_owned().into_boxed_str()),
            email: "",
            nonce: Box::leak(format!("nonce-of-{user}").into_boxed_str()),
            created_at: now,
            expires_at: now + 1800,
        }
    }

    #[tokio::test]
    async fn live_keys_are_never_overwritten_and_expired_ones_are() {
        let store = MemoryKeyStore::new();
        let put = |k, u, now| store.insert_unless_live(item(k, u, now));
        assert_eq!(put("AAAAAA", "u1", 1000).await, Ok(Inserted::Stored));
        assert_eq!(put("AAAAAA", "u2", 1000).await, Ok(Inserted::Taken));
        // Live one second before its ttl; expired at it, as FireFly's listing filters.
        assert_eq!(put("AAAAAA", "u2", 2799).await, Ok(Inserted::Taken));
        assert_eq!(store.get("AAAAAA").unwrap().user_id, "u1");
        assert_eq!(put("AAAAAA", "u2", 2800).await, Ok(Inserted::Stored));
        assert_eq!(
            store.get("AAAAAA").unwrap(),
            StoredKey {
                user_id: "u2".into(),
                email: "".into(),
                nonce: "nonce-of-u2".into(),
                created_at: 2800,
                expires_at: 4600
            }
        );
        assert_eq!(store.len(), 1);
        // The same mint again (its answer was lost): the item is its own.
        assert_eq!(put("AAAAAA", "u2", 2800).await, Ok(Inserted::AlreadyOurs));
    }

    #[tokio::test]
    async fn revoke_deletes_only_the_owners_live_key() {
        let store = MemoryKeyStore::new();
        store
            .insert_unless_live(item("AAAAAA", "u1", 1000))
            .await
            .unwrap();
        assert_eq!(
            store.revoke("AAAAAA", "u2", 1000).await,
            Ok(Revoked::NotLive)
        );
        assert_eq!(
            store.revoke("BBBBBB", "u1", 1000).await,
            Ok(Revoked::NotLive)
        );
        // At its ttl (2800) the key is a leftover, not the caller's to revoke.
        assert_eq!(
            store.revoke("AAAAAA", "u1", 2800).await,
            Ok(Revoked::NotLive)
        );
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.revoke("AAAAAA", "u1", 2799).await,
            Ok(Revoked::Deleted)
        );
        assert!(store.is_empty());
        assert_eq!(
            store.revoke("AAAAAA", "u1", 2799).await,
            Ok(Revoked::NotLive)
        );
    }

    #[tokio::test]
    async fn listing_returns_only_the_callers_live_keys() {
        let store = MemoryKeyStore::new();
        for (k, u, now) in [
            ("AAAAAA", "u1", 1000),
            ("BBBBBB", "u2", 1000),
            ("CCCCCC", "u1", 10),
        ] {
            store.insert_unless_live(item(k, u, now)).await.unwrap();
        }
        let listed = store.list_live("u1", 1900).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "AAAAAA");
        assert_eq!((listed[0].generated_at, listed[0].expires_at), (1000, 2800));
        assert!(store.list_live("u1", 2800).await.unwrap().is_empty());
    }

    #[test]
    fn debug_of_a_new_key_hides_the_key() {
        assert!(!format!("{:?}", item("SECRET", "u", 0)).contains("SECRET"));
    }
}
