//! Devices: controllers register themselves with a one-time registration key
//! ([`register`]), check their registration with a signed request ([`registration`]), and
//! super users list them all ([`get`]).
//!
//! The table is FireFly-Cloud's `firefly-devices` (hash key `uuid`, GSI
//! `product_hex-index`), made by its own stack; items are FireFly's, attribute by
//! attribute ([`store`]).

pub mod get;
pub mod register;
pub mod registration;
pub mod signature;
pub mod store;

use crate::clock::Clock;
use crate::deploy::{Resource, Use};
use crate::error::{ApiError, StartupError};
use crate::handler::Deadline;
use crate::init::{Init, StoreMode};
use crate::route::Answer;
use lambda_http::http::StatusCode;
use signature::DeviceSignature;
use std::sync::Arc;
use store::{DeviceStore, DynamoDeviceStore, MemoryDeviceStore};

/// The variable that names the table (FireFly's).
pub const TABLE_ENV: &str = crate::vars::DYNAMODB_DEVICES_TABLE_NAME.name;

/// The workflow that deploys the table's stack.
pub const WORKFLOW: &str = "dynamodb-devices";

/// The table, deployed by FireFly's `dynamodb-devices` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-devices",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-devices",
    workflow: WORKFLOW,
};

/// The 500 every route of the feature can answer.
pub const UNEXPECTED: Answer = Answer::new(
    500,
    "An unexpected failure (for example a table is missing)",
);

/// What the feature's handlers share.
#[derive(Clone)]
pub struct Devices {
    pub store: Arc<dyn DeviceStore>,
    pub clock: Arc<dyn Clock>,
}

impl Devices {
    /// The state of a route that reads or writes devices (and, to register, redeems keys).
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            store: store(init)?,
            clock: init.clock(),
        })
    }
}

/// The answer to a signed request whose nonce this device already used within the window.
pub const REPLAYED: ApiError = ApiError::Refused {
    status: StatusCode::UNAUTHORIZED,
    message: "X-Device-Nonce has already been used",
};

/// The actions a signed route needs on the registration-keys table, where used nonces
/// are recorded (docs/security.md, "Replayed device requests").
pub const NONCE_USE: Use = Use {
    resource: &crate::registration_keys::TABLE,
    actions: &["dynamodb:PutItem"],
    objects: &[],
};

impl Devices {
    /// FireFly's start of a signed device route: the device `uuid`, or `not_registered`
    /// before any header is read (its registration check says 404, its backups 401), then
    /// its signed headers, once ([`Devices::authenticate`]). The device's item.
    pub async fn signed_device(
        &self,
        deadline: Deadline,
        uuid: &str,
        signature: &DeviceSignature,
        not_registered: ApiError,
    ) -> Result<store::Item, ApiError> {
        self.signed_device_with(
            deadline,
            uuid,
            signature,
            not_registered,
            std::future::ready(()),
        )
        .await
        .map(|(item, ())| item)
    }

    /// As [`Self::signed_device`], with a read beside the nonce's write
    /// ([`Self::authenticate_with`]).
    pub async fn signed_device_with<T>(
        &self,
        deadline: Deadline,
        uuid: &str,
        signature: &DeviceSignature,
        not_registered: ApiError,
        read: impl std::future::Future<Output = T>,
    ) -> Result<(store::Item, T), ApiError> {
        // No key DynamoDB would accept is no device (FireFly's call failed with a 500).
        if uuid.is_empty() || uuid.len() > 1024 {
            return Err(not_registered);
        }
        let Some(item) = deadline.run(self.store.get(uuid)).await?? else {
            return Err(not_registered);
        };
        let out = self
            .authenticate_with(deadline, uuid, &item, signature, read)
            .await?;
        Ok((item, out))
    }

    /// Authenticates a signed request from the stored device `item`: FireFly's checks
    /// ([`DeviceSignature::verify`]), then its nonce, accepted once per device while its
    /// timestamp can still pass the window. A replay is 401; a store that cannot say is a
    /// 503 (refusing is the safe side).
    pub async fn authenticate(
        &self,
        deadline: Deadline,
        uuid: &str,
        item: &store::Item,
        signature: &DeviceSignature,
    ) -> Result<(), ApiError> {
        self.authenticate_with(deadline, uuid, item, signature, std::future::ready(()))
            .await
    }

    /// As [`Self::authenticate`], running `read` beside the nonce's write once the
    /// signature has checked out: a read whose result the caller releases only on `Ok`
    /// (a restore's object) costs no round trip of its own, and a request that is not the
    /// device's own never starts it.
    pub async fn authenticate_with<T>(
        &self,
        deadline: Deadline,
        uuid: &str,
        item: &store::Item,
        signature: &DeviceSignature,
        read: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        let public_key = item
            .get("public_key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let now = self.clock.now_epoch_micros();
        let sent = signature.verify(uuid, public_key, now)?;
        // Kept until the signed instant has left the window, rounded up, plus a second.
        let expires = (sent + signature::WINDOW_MICROS).div_euclid(1_000_000) + 2;
        let claim = deadline.run(self.store.claim_nonce(
            uuid,
            signature.nonce(),
            expires,
            now.div_euclid(1_000_000),
        ));
        let (fresh, out) = tokio::join!(claim, read);
        if !fresh?? {
            tracing::warn!("a device request's nonce was used before: replay refused");
            return Err(REPLAYED);
        }
        Ok(out)
    }
}

/// The feature's store, shared by its routes within one process. Registering redeems a
/// key too, so the DynamoDB store names the keys table when the route uses it.
fn store(init: &mut Init<'_>) -> Result<Arc<dyn DeviceStore>, StartupError> {
    Ok(match init.store_mode() {
        StoreMode::Memory => {
            let keys = crate::registration_keys::memory_store(init)?;
            init.shared(|_| Ok(Arc::new(MemoryDeviceStore::new(keys))))? as Arc<dyn DeviceStore>
        }
        StoreMode::DynamoDb => {
            let devices = init.var(TABLE_ENV)?;
            let keys = init.var_if_declared(crate::registration_keys::TABLE_ENV)?;
            Arc::new(DynamoDeviceStore::new(init.dynamodb()?, devices, keys))
        }
    })
}
