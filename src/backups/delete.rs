//! `DELETE /devices/{uuid}/backup`: a controller removes its backup, as FireFly's
//! `devices-backup-delete` answers: 200 `Backup deleted`, also when there was none, and
//! `last_backup_date` removed (only from a device that exists: never a stub item). The
//! bucket is versioned: earlier versions stay until FireFly's lifecycle removes them.

use super::{AUTH_ANSWERS, Backups, FAILURES};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::registration::DeviceUuid;
use crate::devices::signature::{self, DeviceSignature};
use crate::handler::{Deadline, HandlerResult, Path};
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::json;

pub const ROUTE: Route = Route {
    key: "DELETE /devices/{uuid}/backup",
    function: "firefly-func-api-devices-backup-delete",
    summary: "A device removes its configuration backup",
    uses: &[
        Use {
            resource: &crate::devices::TABLE,
            actions: &["dynamodb:GetItem", "dynamodb:UpdateItem"],
            objects: &[],
        },
        crate::devices::NONCE_USE,
        Use {
            resource: &super::BUCKET,
            actions: &["s3:DeleteObject"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Deleted, or there was none",
            schema: Some(
                r#"{"title": "MessageResponse", "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}"#,
            ),
            example: Some(r#"{"message":"Backup deleted"}"#),
        },
        AUTH_ANSWERS[0],
        AUTH_ANSWERS[1],
        AUTH_ANSWERS[2],
        FAILURES[0],
        FAILURES[1],
    ],
    scopes: &[],
    params: &[super::get::UUID_PARAM],
    headers: &signature::HEADERS,
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(remove, Backups::build),
};

/// The handler.
pub async fn remove(
    backups: Backups,
    deadline: Deadline,
    Path(DeviceUuid(uuid)): Path<DeviceUuid>,
    signature: DeviceSignature,
) -> HandlerResult {
    backups.authenticate(deadline, &uuid, &signature).await?;
    deadline.run(backups.objects.delete(&uuid)).await??;
    // The backup is gone; the date only informs the console: a failure is logged, as
    // FireFly does.
    match deadline
        .run(backups.devices.store.mark_backup(&uuid, None))
        .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "last_backup_date not removed"),
        Err(e) => tracing::error!(error = %e, "last_backup_date not removed"),
    }
    Ok(Response::json(
        StatusCode::OK,
        &json!({"message": "Backup deleted"}),
    ))
}
