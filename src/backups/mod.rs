//! Device backups: a controller stores ([`post`]), restores ([`get`]) and removes
//! ([`delete`]) its encrypted configuration backup, one object per device in FireFly's
//! backup bucket (key = the device's UUID, metadata `etag` = the SHA-256 of the plaintext
//! the device computed), and the device item's `last_backup_date` follows.
//!
//! Every route starts as FireFly's do: the device, or 401 `Device not registered` before
//! any header is read; then the signed headers ([`crate::devices::Devices::authenticate`],
//! which also refuses a replayed nonce).

pub mod delete;
pub mod get;
pub mod objects;
pub mod post;

use crate::deploy::{Resource, Use};
use crate::devices::Devices;
use crate::devices::signature::DeviceSignature;
use crate::error::{ApiError, StartupError};
use crate::handler::Deadline;
use crate::init::{Init, StoreMode};
use crate::route::Answer;
use lambda_http::http::StatusCode;
use objects::{MemoryObjects, ObjectStore, S3Objects};
use std::sync::Arc;

/// The variable that names the bucket (FireFly's).
pub const BUCKET_ENV: &str = crate::vars::S3_BACKUP_BUCKET_NAME.name;

/// FireFly's backup bucket (`templates/s3-device-backups.yaml`: versioned, SSE-KMS with
/// the AWS-managed key), named by the `BackupBucketName` parameter, as FireFly's
/// functions' templates name it; the deploy scripts read it from that stack's output
/// `BucketName`.
pub const BUCKET: Resource = Resource::Bucket {
    parameter: "BackupBucketName",
    output: "BucketName",
    env: BUCKET_ENV,
    stack: "firefly-s3-device-backups",
    workflow: "s3-device-backups",
};

/// What each route needs of the devices table besides its own writes: the device.
pub const READS_DEVICE: Use = Use {
    resource: &crate::devices::TABLE,
    actions: &["dynamodb:GetItem"],
    objects: &[],
};

/// The answers every backup route shares (the 413 is POST's alone).
pub const AUTH_ANSWERS: [Answer; 3] = [
    Answer::new(400, "A missing or malformed X-Device-* header"),
    Answer::new(
        401,
        "Device not registered (before any header is read), timestamp outside ±10 s, a signature that does not verify, or a nonce used before",
    ),
    Answer::new(403, "X-Device-UUID does not match the path"),
];

/// A dependency's failures, for every route.
pub const FAILURES: [Answer; 2] = [
    Answer::new(
        500,
        "An unexpected failure (S3 refused, a table is missing)",
    ),
    Answer::new(503, "DynamoDB or S3 unavailable"),
];

/// The answer for a device the table does not hold (FireFly's backup functions say 401,
/// where its registration check says 404).
pub const NOT_REGISTERED: ApiError = ApiError::Refused {
    status: StatusCode::UNAUTHORIZED,
    message: "Device not registered",
};

/// What the backup routes share.
#[derive(Clone)]
pub struct Backups {
    pub devices: Devices,
    pub objects: Arc<dyn ObjectStore>,
}

impl Backups {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let objects: Arc<dyn ObjectStore> = match init.store_mode() {
            StoreMode::Memory => {
                init.shared(|_| Ok(Arc::new(MemoryObjects::default())))? as Arc<dyn ObjectStore>
            }
            StoreMode::DynamoDb => {
                let bucket = init.var(BUCKET_ENV)?;
                Arc::new(S3Objects::new(init.s3(&bucket)?, bucket))
            }
        };
        Ok(Self {
            devices: Devices::build(init)?,
            objects,
        })
    }

    /// FireFly's start of every backup route: the device `uuid` must be registered (401
    /// before any header is read), then its signed headers must check out, once.
    pub async fn authenticate(
        &self,
        deadline: Deadline,
        uuid: &str,
        signature: &DeviceSignature,
    ) -> Result<(), ApiError> {
        self.devices
            .signed_device(deadline, uuid, signature, NOT_REGISTERED)
            .await
            .map(|_| ())
    }
}
