//! Registration keys: one-time keys a signed-in user mints to register a device, and
//! revokes when one was minted by mistake or seen by someone else.
//!
//! Everything about the feature lives here: the key ([`key`]), its store ([`store`]), its
//! settings section ([`settings`]) and one file per route ([`post`], [`delete`]).

pub mod delete;
pub mod key;
pub mod post;
pub mod settings;
pub mod store;

use crate::error::StartupError;
use crate::init::{Init, StoreMode};
use crate::route::{Answer, Resource};
use std::sync::Arc;
use store::{DynamoKeyStore, KeyStore, MemoryKeyStore};

const TABLE_ENV: &str = "REGISTRATION_KEYS_TABLE";

/// The table, deployed by the `dynamodb-registration-keys` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-registration-keys",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-registration-keys",
    workflow: "dynamodb-registration-keys",
};

/// The 500 every route of the feature can answer.
pub const UNEXPECTED: Answer = Answer::new(
    500,
    "An unexpected failure (for example the table is missing)",
);

/// The feature's store, shared by its routes within one process.
pub fn store(init: &mut Init<'_>) -> Result<Arc<dyn KeyStore>, StartupError> {
    init.shared(|init| {
        Ok(match init.store_mode() {
            StoreMode::Memory => Arc::new(MemoryKeyStore::new()) as Arc<dyn KeyStore>,
            StoreMode::DynamoDb => {
                let table = init.var(TABLE_ENV)?;
                Arc::new(DynamoKeyStore::new(init.dynamodb()?, table))
            }
        })
    })
}
