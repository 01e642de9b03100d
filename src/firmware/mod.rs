//! Firmware records: what FireFly's console lists on its Firmware page
//! (`GET /firmware`, `GET /firmware/{zip_name}`: [`get`]), read from FireFly's
//! `firefly-firmware` table (hash key `pk` = `class#product_hex#application`, range key
//! `version`; GSIs `product_hex-index` and `zip_name-index`, projection ALL), made by its
//! own stack. Records are written by the ingest functions (S3-invoked, still FireFly's).

pub mod get;
pub mod store;

use crate::deploy::Resource;
use crate::error::StartupError;
use crate::init::{Init, StoreMode};
use std::sync::Arc;
use store::{DynamoFirmwareStore, FirmwareStore, MemoryFirmwareStore};

/// The variable that names the table (FireFly's).
pub const TABLE_ENV: &str = crate::vars::DYNAMODB_FIRMWARE_TABLE_NAME.name;

/// The table, deployed by FireFly's `dynamodb-firmware` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-firmware",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-firmware",
    workflow: "dynamodb-firmware",
};

/// What the feature's handlers share.
#[derive(Clone)]
pub struct Firmware {
    pub store: Arc<dyn FirmwareStore>,
}

impl Firmware {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let store: Arc<dyn FirmwareStore> = match init.store_mode() {
            // Nothing ingests firmware on a laptop yet: the console's page lists none.
            StoreMode::Memory => init.shared(|_| Ok(Arc::new(MemoryFirmwareStore::default())))?,
            StoreMode::DynamoDb => Arc::new(DynamoFirmwareStore::new(
                init.dynamodb()?,
                init.var(TABLE_ENV)?,
            )),
        };
        Ok(Self { store })
    }
}
