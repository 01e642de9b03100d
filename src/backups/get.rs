//! `GET /devices/{uuid}/backup`: a controller restores its backup, as FireFly's
//! `devices-backup-get` answers: the blob as `application/octet-stream` with its
//! `Content-Length` and the stored ETag, quoted (empty when none was stored). A missing
//! backup is 404; any other failure is a 5xx with a log line (FireFly answered 404 for
//! throttling, KMS and network errors alike).

use super::{AUTH_ANSWERS, Backups, FAILURES, READS_DEVICE};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::registration::DeviceUuid;
use crate::devices::signature::{self, DeviceSignature};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult, Path};
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use lambda_http::http::{HeaderValue, StatusCode, header};

pub const ROUTE: Route = Route {
    key: "GET /devices/{uuid}/backup",
    function: "firefly-func-api-devices-backup-get",
    summary: "A device restores its encrypted configuration backup",
    uses: &[
        READS_DEVICE,
        crate::devices::NONCE_USE,
        // ListBucket: a missing backup reads as missing (404), not as AccessDenied.
        Use {
            resource: &super::BUCKET,
            actions: &["s3:GetObject", "s3:ListBucket"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer::new(
            200,
            "The encrypted backup (application/octet-stream), its Content-Length, and its ETag quoted",
        ),
        AUTH_ANSWERS[0],
        AUTH_ANSWERS[1],
        AUTH_ANSWERS[2],
        Answer::new(404, "No backup found for this device"),
        FAILURES[0],
        FAILURES[1],
    ],
    scopes: &[],
    params: &[UUID_PARAM],
    headers: &signature::HEADERS,
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(restore, Backups::build),
};

/// The `{uuid}` of the backup routes.
pub const UUID_PARAM: Param = Param {
    name: "uuid",
    description: "The device's UUID, as it registered",
    schema: r#"{"type": "string", "minLength": 1}"#,
};

const NO_BACKUP: ApiError = ApiError::ResourceNotFound {
    message: "No backup found for this device",
};

/// The handler.
pub async fn restore(
    backups: Backups,
    deadline: Deadline,
    Path(DeviceUuid(uuid)): Path<DeviceUuid>,
    signature: DeviceSignature,
) -> HandlerResult {
    // The object is read beside the nonce's write, once the device's signature has checked
    // out (one round trip fewer), and released only if the nonce was fresh.
    let (_, read) = backups
        .devices
        .signed_device_with(
            deadline,
            &uuid,
            &signature,
            super::NOT_REGISTERED,
            deadline.run(backups.objects.get(&uuid)),
        )
        .await?;
    let Some(stored) = read?? else {
        return Err(NO_BACKUP);
    };
    let mut r = Response::binary(StatusCode::OK, "application/octet-stream", &stored.body);
    let etag = stored
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(&format!("\"{e}\"")).ok())
        .unwrap_or_else(|| HeaderValue::from_static(""));
    r.headers.insert(header::ETAG, etag);
    Ok(r)
}
