//! `DELETE /firmware/{zip_name}`: FireFly's `func-api-firmware-delete`, the console's
//! Delete: 404 and 409 as FireFly's, then 202 `Deletion initiated`.
//!
//! FireFly deleted the ZIP first and then wrote DELETING unconditionally: when the ZIP's
//! ObjectRemoved event was handled first, DELETING overwrote DELETED, and a DELETING record
//! has no TTL, so it stayed forever, hidden by the console; a release in between was
//! overwritten too. Here the status is written first, conditionally (the status read, no
//! transition in progress), and then the ZIP goes, so the event always finds DELETING and
//! completes it to DELETED ([`super::deleted`]). An ERROR record, whose `errors/` ZIP no
//! event completes, becomes DELETED at once, with FireFly's `ttl`. When the ZIP cannot be
//! deleted the write is undone (status, history entry and `ttl`) and the answer says so.

use super::get::{ZipName, not_found, plain_zip_name};
use super::status::TTL_SECONDS;
use super::store::{Change, Claim, Revert};
use super::{ERRORS, Files, PROCESSED};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::Value;

const FUNCTION: &str = "firefly-func-api-firmware-delete";

/// Statuses whose ZIP is gone, going, or must stay (FireFly's `ALREADY_REMOVED_STATES`).
const SETTLED: [&str; 4] = ["DELETED", "DELETING", "REVOKED", "RELEASED"];

pub const ROUTE: Route = Route {
    key: "DELETE /firmware/{zip_name}",
    function: FUNCTION,
    summary: "Delete a firmware ZIP: its record becomes DELETING, then DELETED when S3 reports the ZIP gone (an ERROR record at once)",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"],
            objects: &[],
        },
        Use {
            resource: &super::BUCKET,
            actions: &["s3:DeleteObject"],
            // Only filed ZIPs are deleted (FireFly's grant): never an upload in flight.
            objects: &["processed/*", "errors/*"],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 202,
            description: "Deletion initiated",
            schema: Some(
                r#"{"title": "Message", "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}"#,
            ),
            example: Some(r#"{"message":"Deletion initiated"}"#),
        },
        Answer::new(401, "No signed-in caller"),
        Answer::new(404, "Firmware not found: <zip_name>"),
        Answer::new(
            409,
            "Firmware is already in state '<status>', or a status change is in progress",
        ),
        Answer::new(
            500,
            "An unexpected failure (for example the table is missing)",
        ),
        Answer::new(503, "DynamoDB or S3 unavailable (nothing changed)"),
    ],
    scopes: &[],
    params: &[super::get::ZIP_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(delete, Files::build),
};

/// The handler.
pub async fn delete(
    files: Files,
    deadline: Deadline,
    _: Caller,
    Path(ZipName(zip_name)): Path<ZipName>,
) -> HandlerResult {
    if !plain_zip_name(&zip_name) {
        return Ok(not_found(&zip_name));
    }
    deadline.run(remove(&files, &zip_name)).await?
}

pub(crate) async fn remove(files: &Files, zip_name: &str) -> HandlerResult {
    let Some(found) = files.store.by_zip(zip_name.to_owned()).await? else {
        return Ok(not_found(zip_name));
    };
    let text = |item: &crate::devices::store::Item, f: &str| {
        item.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (pk, version) = (text(&found, "pk"), text(&found, "version"));
    let record = files
        .store
        .get(pk.clone(), version.clone())
        .await?
        .unwrap_or(found);
    let status = text(&record, "release_status");
    if SETTLED.contains(&status.as_str()) {
        return Ok(Response::message(
            StatusCode::CONFLICT,
            &format!("Firmware is already in state '{status}'"),
        ));
    }
    if Claim::of(&record).is_some() {
        return Ok(Response::message(
            StatusCode::CONFLICT,
            "Firmware status is being changed; please retry.",
        ));
    }
    let now = files.clock.now_epoch_seconds();
    let error = status == "ERROR";
    let (to, ttl, prefix) = if error {
        ("DELETED", Some(now + TTL_SECONDS), ERRORS)
    } else {
        ("DELETING", None, PROCESSED)
    };
    let entry = record
        .get("status_history")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let change = Change {
        was: status.clone(),
        to: to.to_owned(),
        now,
        ttl,
        claim: None,
    };
    if files
        .store
        .set_status(pk.clone(), version.clone(), change)
        .await?
        .is_none()
    {
        return Ok(Response::message(
            StatusCode::CONFLICT,
            "Status was modified concurrently; please retry.",
        ));
    }
    if let Err(e) = files
        .bucket
        .delete(&format!("{prefix}{zip_name}"), None)
        .await
    {
        let revert = Revert {
            from: to.to_owned(),
            to: status.clone(),
            entry,
        };
        match files.store.revert(pk, version, revert).await {
            Ok(true) => {
                tracing::warn!(zip_name, error = %e, "the ZIP could not be deleted: its status is back to {status}")
            }
            Ok(false) => {
                tracing::error!(zip_name, error = %e, "the ZIP could not be deleted and its record has moved on since: left as it is")
            }
            Err(store) => {
                tracing::error!(zip_name, error = %e, store = %store, "the ZIP could not be deleted, nor its status put back: it stays {to} until deleted again")
            }
        }
        return Err(e.into());
    }
    tracing::info!(zip_name, was = %status, now = to, "firmware deletion initiated");
    Ok(Response::message(
        StatusCode::ACCEPTED,
        "Deletion initiated",
    ))
}
