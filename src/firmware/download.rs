//! `GET /firmware/{zip_name}/download`: FireFly's `func-api-firmware-download-get`, the
//! console's Download: a presigned S3 `GET` of the ZIP, `{"url", "expires_in": 900}`.
//!
//! Better than FireFly's: a ZIP that is gone or going (DELETING, or a `processed/` ZIP
//! past its 30 days) answers 410 with a message where FireFly answered 500, and a failing
//! S3 is a 503 with a log line.

use super::get::{ZipName, not_found, plain_zip_name};
use super::{ERRORS, Files, PROCESSED};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};

const FUNCTION: &str = "firefly-func-api-firmware-download-get";

/// FireFly's 15 minutes.
pub const EXPIRES_IN: u64 = 900;

pub const ROUTE: Route = Route {
    key: "GET /firmware/{zip_name}/download",
    function: FUNCTION,
    summary: "A presigned URL of a firmware ZIP, valid 900 s",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Query"],
            objects: &[],
        },
        // ListBucket: a ZIP past its 30 days reads as missing (410), not AccessDenied.
        Use {
            resource: &super::BUCKET,
            actions: &["s3:ListBucket", "s3:GetObject"],
            // A presigned URL can reach only what the role may read: filed ZIPs.
            objects: &["processed/*", "errors/*"],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "The URL, and how long it works",
            schema: Some(
                r#"{"title": "FirmwareDownload", "type": "object", "required": ["url", "expires_in"], "additionalProperties": false, "properties": {"url": {"type": "string"}, "expires_in": {"type": "integer"}}}"#,
            ),
            example: Some(
                r#"{"url":"https://firefly-firmware.s3.eu-west-1.amazonaws.com/processed/1c9a5c1e-2f7b-4c1e-9d55-3b1f0f6a7e21.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=…","expires_in":900}"#,
            ),
        },
        Answer::new(401, "No signed-in caller"),
        Answer::new(404, "Firmware not found: <zip_name>"),
        Answer::new(409, "Firmware is still being processed"),
        Answer::new(
            410,
            "Firmware has been deleted, is being deleted, or its ZIP is no longer stored",
        ),
        Answer::new(
            500,
            "An unexpected failure (for example the table is missing)",
        ),
        Answer::new(503, "DynamoDB or S3 unavailable"),
    ],
    scopes: &[],
    params: &[super::get::ZIP_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(download, Files::build),
};

/// The handler.
pub async fn download(
    files: Files,
    deadline: Deadline,
    _: Caller,
    Path(ZipName(zip_name)): Path<ZipName>,
) -> HandlerResult {
    if !plain_zip_name(&zip_name) {
        return Ok(not_found(&zip_name));
    }
    deadline.run(presign(&files, &zip_name)).await?
}

pub(crate) async fn presign(files: &Files, zip_name: &str) -> HandlerResult {
    let Some(record) = files.store.by_zip(zip_name.to_owned()).await? else {
        return Ok(not_found(zip_name));
    };
    let status = record
        .get("release_status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match status {
        "DELETED" => {
            return Ok(Response::message(
                StatusCode::GONE,
                "Firmware has been deleted",
            ));
        }
        "DELETING" => {
            return Ok(Response::message(
                StatusCode::GONE,
                "Firmware is being deleted",
            ));
        }
        "PROCESSING" => {
            return Ok(Response::message(
                StatusCode::CONFLICT,
                "Firmware is still being processed",
            ));
        }
        _ => {}
    }
    let prefix = if status == "ERROR" { ERRORS } else { PROCESSED };
    let key = format!("{prefix}{zip_name}");
    if !files.bucket.exists(&key).await? {
        tracing::warn!(zip_name, status, "the record's ZIP is no longer stored");
        return Ok(Response::message(
            StatusCode::GONE,
            "Firmware ZIP is no longer stored (ZIPs are kept 30 days)",
        ));
    }
    let now = UNIX_EPOCH
        + Duration::from_secs(u64::try_from(files.clock.now_epoch_seconds()).unwrap_or_default());
    let url = files
        .bucket
        .presign_get(&key, now, Duration::from_secs(EXPIRES_IN))?;
    tracing::debug!(zip_name, "presigned URL made");
    Ok(Response::json(
        StatusCode::OK,
        &json!({ "url": url, "expires_in": EXPIRES_IN }),
    ))
}
