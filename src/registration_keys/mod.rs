//! Registration keys: one-time keys a signed-in user mints to register a device, lists,
//! and revokes when one was minted by mistake or seen by someone else.
//!
//! Everything about the feature lives here: the key ([`key`]), its store ([`store`]), its
//! settings section ([`settings`]) and one file per route ([`post`], [`get`], [`delete`]).
//! The table is FireFly-Cloud's `firefly-registration-keys`, made by its own stack.

pub mod delete;
pub mod get;
pub mod key;
pub mod post;
pub mod settings;
pub mod store;

use crate::clock::Clock;
use crate::config::Settings;
use crate::deploy::Resource;
use crate::error::StartupError;
use crate::init::{Init, StoreMode};
use crate::random::SecureRandom;
use crate::route::Answer;
use settings::RegistrationKeySettings;
use std::sync::Arc;
use store::{DynamoKeyStore, KeyStore, MemoryKeyStore};

/// The variable that names the table (FireFly's).
pub const TABLE_ENV: &str = crate::vars::DYNAMODB_REGISTRATION_KEYS_TABLE_NAME.name;

/// The workflow that deploys the table's stack.
pub const WORKFLOW: &str = "dynamodb-registration-keys";

/// The table, deployed by FireFly's `dynamodb-registration-keys` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-registration-keys",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-registration-keys",
    workflow: WORKFLOW,
};

/// The 500 every route of the feature can answer.
pub const UNEXPECTED: Answer = Answer::new(
    500,
    "An unexpected failure (for example the table is missing)",
);

/// What the feature's handlers share: their state, built once per process.
#[derive(Clone)]
pub struct Keys {
    pub store: Arc<dyn KeyStore>,
    pub settings: Arc<Settings<RegistrationKeySettings>>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn SecureRandom>,
}

impl Keys {
    /// The feature's state for one route's handler (the store is shared by every route of
    /// the function).
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            store: store(init)?,
            settings: init.settings()?,
            clock: init.clock(),
            random: init.random(),
        })
    }
}

/// The process's in-memory keys (local runs), shared with the devices feature, which
/// redeems them.
pub fn memory_store(init: &mut Init<'_>) -> Result<Arc<MemoryKeyStore>, StartupError> {
    init.shared(|_| Ok(Arc::new(MemoryKeyStore::new())))
}

/// The feature's store, shared by its routes within one process.
pub fn store(init: &mut Init<'_>) -> Result<Arc<dyn KeyStore>, StartupError> {
    init.shared(|init| {
        Ok(match init.store_mode() {
            StoreMode::Memory => memory_store(init)? as Arc<dyn KeyStore>,
            StoreMode::DynamoDb => {
                let table = init.var(TABLE_ENV)?;
                Arc::new(DynamoKeyStore::new(init.dynamodb()?, table))
            }
        })
    })
}
