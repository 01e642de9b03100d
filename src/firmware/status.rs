//! `PATCH /firmware/{zip_name}/status`: FireFly's `func-api-firmware-status-patch`, the
//! console's status changes (READY_TO_TEST → TESTING → RELEASED → REVOKED, and back from
//! TESTING), with FireFly's statuses, messages and bodies.
//!
//! A release publishes the ZIP's files to the public bucket and a revocation moves them to
//! `revoked/`, each with one CloudFront invalidation. FireFly ran that work before its
//! conditional write and undid nothing when the write lost, so two concurrent changes could
//! leave public files that contradict the status. Here a change with work elsewhere never
//! half-happens:
//! 1. it **claims** the record (a conditional write of [`CLAIM`] while the status is what
//!    was read and no live claim is held), so of two concurrent changes one wins;
//! 2. it does its work (a release verifies every member against the manifest first);
//! 3. it **completes** with a conditional write that needs its claim (status, history
//!    entry, `ttl`, claim removed).
//!
//! A failure part way is undone (files removed or moved back, claim removed) and answered.
//! An invocation that died part way leaves a claim older than the function's timeout: the
//! next change of that record completes it first (the work is idempotent) or, when that
//! cannot be, undoes it. The claim is invisible to FireFly's readers: the status does not
//! move until the work is done, no history entry is added for it, our answers strip it,
//! and OTA offers no version whose files are being revoked.

use super::archive::{self, Limits};
use super::bucket::{Bucket, Published};
use super::get::{ZipName, not_found};
use super::public::{self, Public};
use super::store::{CLAIM, Change, Claim, FirmwareStore};
use super::{DEBUG_VERSION, PROCESSED};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::store::Item;
use crate::error::ApiError;
use crate::handler::{Body, Deadline, HandlerResult, Path};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Route};
use bytes::Bytes;
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const FUNCTION: &str = "firefly-func-api-firmware-status-patch";

/// FireFly's 60 s: a release reads the ZIP and writes every file. A claim older than this
/// belongs to an invocation Lambda has stopped.
pub const TIMEOUT_S: u32 = 60;

/// FireFly's transitions (`VALID_TRANSITIONS`), in its order.
pub const TRANSITIONS: [(&str, &[&str]); 3] = [
    ("READY_TO_TEST", &["TESTING"]),
    ("TESTING", &["READY_TO_TEST", "RELEASED"]),
    ("RELEASED", &["REVOKED"]),
];

/// How long a REVOKED record stays listed (FireFly's 10 days), as a DELETED one.
pub const TTL_SECONDS: i64 = super::deleted::TTL_SECONDS;

/// How a published file is stored: binary, and cacheable by CloudFront for its default
/// day (a version's files change only when it is revoked, which invalidates them) while a
/// browser keeps it an hour.
pub const PUBLISHED: Published = Published {
    content_type: "application/octet-stream",
    cache_control: "public, max-age=3600, s-maxage=86400",
};

/// Files written at once during a release: bounded, so that a slow S3 costs rounds, not
/// one round per file (ten files at 2 s a call take three rounds).
pub const CONCURRENT_PUTS: usize = 4;

/// One S3 attempt's limit here: whole firmware files move, within a 60 s function, so a
/// slow S3 (2 s a call) is waited for, not cut off at an API answer's 2 s.
pub const TRANSFER_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(10);

const CONCURRENTLY: &str = "Status was modified concurrently; please retry.";

pub const ROUTE: Route = Route {
    key: "PATCH /firmware/{zip_name}/status",
    function: FUNCTION,
    summary: "Move a firmware record through its lifecycle; a release publishes its files, a revocation withdraws them",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
            objects: &[],
        },
        Use {
            resource: &super::BUCKET,
            actions: &["s3:GetObject"],
            // Only released ZIPs are read (FireFly's grant).
            objects: &["processed/*"],
        },
        super::CHANGES_PUBLIC_FILES,
        super::INVALIDATES,
        Use {
            resource: &super::ENVIRONMENT,
            actions: &[],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "The record as it now is, without pk",
            schema: Some(r#"{"title": "FirmwareItem", "type": "object"}"#),
            example: Some(
                r#"{"zip_name":"1c9a5c1e-2f7b-4c1e-9d55-3b1f0f6a7e21.zip","version":"2026.03.01","release_status":"TESTING","status_history":[{"status":"READY_TO_TEST","timestamp":1767225600},{"status":"TESTING","timestamp":1767229200}]}"#,
            ),
        },
        Answer::new(
            400,
            "Invalid JSON body, or Missing required field: release_status",
        ),
        Answer::new(401, "No signed-in caller"),
        Answer::new(404, "Firmware not found: <zip_name>"),
        Answer::new(
            409,
            "DEBUG firmware cannot be transitioned to RELEASED (production), or Status was modified concurrently; please retry.",
        ),
        Answer::new(
            410,
            "The ZIP is no longer stored (ZIPs are kept 30 days): it cannot be released",
        ),
        Answer {
            status: 422,
            description: "Not an allowed transition (with current_status and allowed_transitions), or the ZIP fails verification",
            schema: Some(
                r#"{"title": "TransitionRefused", "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}, "current_status": {"type": "string"}, "allowed_transitions": {"type": "array", "items": {"type": "string"}}}}"#,
            ),
            example: Some(
                r#"{"message":"Cannot transition from 'READY_TO_TEST' to 'RELEASED'","current_status":"READY_TO_TEST","allowed_transitions":["TESTING"]}"#,
            ),
        },
        Answer::new(
            500,
            "An unexpected failure (for example the table is missing)",
        ),
        Answer::new(503, "DynamoDB, S3 or CloudFront unavailable"),
    ],
    scopes: &[],
    params: &[super::get::ZIP_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: Some(TIMEOUT_S),
    request: Some(
        r#"{"type": "object", "required": ["release_status"], "properties": {"release_status": {"type": "string", "enum": ["READY_TO_TEST", "TESTING", "RELEASED", "REVOKED"]}}}"#,
    ),
    endpoint: crate::endpoint!(patch, Releases::build),
};

/// What the status function needs.
#[derive(Clone)]
pub struct Releases {
    pub store: Arc<dyn FirmwareStore>,
    /// The private bucket, where `processed/<zip_name>` is read.
    pub bucket: Arc<dyn Bucket>,
    pub public: Public,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub random: Arc<dyn crate::random::SecureRandom>,
    /// `ENVIRONMENT_NAME=production`: the debug build is never released.
    pub production: bool,
    pub limits: Limits,
}

/// The handler.
pub async fn patch(
    releases: Releases,
    deadline: Deadline,
    _: Caller,
    Path(ZipName(zip_name)): Path<ZipName>,
    Body(body): Body,
) -> HandlerResult {
    let wanted = wanted_status(&body)?;
    if !super::get::plain_zip_name(&zip_name) {
        return Ok(not_found(&zip_name));
    }
    deadline.run(releases.change(&zip_name, wanted)).await?
}

/// The status the body asks for, as FireFly reads it (no body is `{}`); a body that is not
/// a JSON object is a 400 (FireFly's answer was a 500).
fn wanted_status(body: &str) -> Result<String, ApiError> {
    let body = if body.is_empty() { "{}" } else { body };
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return Err(ApiError::BadRequest {
            message: "Invalid JSON body",
        });
    };
    // FireFly's test of presence is Python's truth: null, "", 0, false, [] and {} are
    // missing.
    match fields.get("release_status").filter(|v| super::truthy(v)) {
        None => Err(missing()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::BadRequest {
            message: "release_status must be a string",
        }),
    }
}

fn missing() -> ApiError {
    ApiError::BadRequest {
        message: "Missing required field: release_status",
    }
}

/// The record as answered: without `pk` and without a claim.
pub fn answered(mut item: Item) -> Response {
    item.remove("pk");
    item.remove(CLAIM);
    Response::json(StatusCode::OK, &Value::Object(item))
}

fn field<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// Why a change's work did not get done.
#[derive(Debug)]
enum Stop {
    /// The ZIP is no longer in `processed/`.
    Gone,
    /// The ZIP does not match its record or manifest.
    Unverified(String),
    Failed(ApiError),
}

macro_rules! stop_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Stop {
            fn from(e: $t) -> Self {
                Self::Failed(e.into())
            }
        }
    )*};
}
stop_from!(
    ApiError,
    crate::aws::errors::StoreError,
    crate::aws::s3::S3Error,
    crate::aws::cloudfront::CloudFrontError
);

impl From<public::PublicError> for Stop {
    fn from(e: public::PublicError) -> Self {
        match e {
            public::PublicError::Key(why) => Self::Unverified(why),
            public::PublicError::S3(e) => e.into(),
            public::PublicError::Cdn(e) => e.into(),
        }
    }
}

impl From<crate::aws::cloudfront::CloudFrontError> for ApiError {
    fn from(e: crate::aws::cloudfront::CloudFrontError) -> Self {
        match e {
            crate::aws::cloudfront::CloudFrontError::Unavailable(_) => {
                Self::unavailable(e.to_string())
            }
            crate::aws::cloudfront::CloudFrontError::Other(_) => Self::internal(e.to_string()),
        }
    }
}

impl Releases {
    /// [`Releases::change`] for tests.
    #[cfg(test)]
    pub(crate) async fn change_for_tests(&self, zip_name: &str, wanted: &str) -> HandlerResult {
        self.change(zip_name, wanted.to_owned()).await
    }

    async fn change(&self, zip_name: &str, wanted: String) -> HandlerResult {
        // A crashed change found on the way is settled first; then the request is judged
        // against what that left.
        for _ in 0..3 {
            let Some(found) = self.store.by_zip(zip_name.to_owned()).await? else {
                return Ok(not_found(zip_name));
            };
            let (pk, version) = (
                field(&found, "pk").to_owned(),
                field(&found, "version").to_owned(),
            );
            // The index is read eventually; the record itself consistently (FireFly's order).
            let record = self
                .store
                .get(pk.clone(), version.clone())
                .await?
                .unwrap_or(found);
            let now = self.clock.now_epoch_seconds();
            if let Some(claim) = Claim::of(&record) {
                if claim.at >= now - i64::from(TIMEOUT_S) {
                    return Ok(Response::message(StatusCode::CONFLICT, CONCURRENTLY));
                }
                tracing::warn!(zip_name, pk = %pk, version = %version, from = %claim.from, to = %claim.to, "a change left part way by a stopped invocation: settling it first");
                self.settle(&record, &claim).await?;
                continue;
            }
            if wanted == "RELEASED" && version == DEBUG_VERSION && self.production {
                return Ok(Response::message(
                    StatusCode::CONFLICT,
                    "DEBUG firmware cannot be transitioned to RELEASED.",
                ));
            }
            let current = field(&record, "release_status").to_owned();
            let allowed: &[&str] = TRANSITIONS
                .iter()
                .find(|(from, _)| *from == current)
                .map_or(&[], |(_, to)| *to);
            if !allowed.contains(&wanted.as_str()) {
                // FireFly's body, its None as null.
                let current_value = record.get("release_status").cloned().unwrap_or(Value::Null);
                return Ok(Response::json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({
                        "message": format!("Cannot transition from '{}' to '{wanted}'", python_str(&current_value)),
                        "current_status": current_value,
                        "allowed_transitions": allowed,
                    }),
                ));
            }
            let done = if matches!(wanted.as_str(), "RELEASED" | "REVOKED") {
                let claim = Claim {
                    id: self.claim_id()?,
                    from: current,
                    to: wanted,
                    at: now,
                };
                match self.claimed(&record, claim).await {
                    Ok(done) => done,
                    Err(Stop::Gone) => {
                        return Ok(Response::message(
                            StatusCode::GONE,
                            "Firmware ZIP is no longer stored (ZIPs are kept 30 days); it cannot be released",
                        ));
                    }
                    Err(Stop::Unverified(why)) => {
                        tracing::warn!(zip_name, reason = %why, "release refused: the ZIP fails verification");
                        return Ok(Response::message(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            &format!("Firmware cannot be released: {why}"),
                        ));
                    }
                    Err(Stop::Failed(e)) => return Err(e),
                }
            } else {
                let change = Change {
                    was: current,
                    to: wanted,
                    now,
                    ttl: None,
                    claim: None,
                };
                self.store.set_status(pk, version, change).await?
            };
            return Ok(match done {
                Some(item) => {
                    tracing::info!(
                        zip_name,
                        status = field(&item, "release_status"),
                        "firmware status changed"
                    );
                    answered(item)
                }
                None => Response::message(StatusCode::CONFLICT, CONCURRENTLY),
            });
        }
        Ok(Response::message(StatusCode::CONFLICT, CONCURRENTLY))
    }

    fn claim_id(&self) -> Result<String, ApiError> {
        let mut bytes = [0u8; 12];
        self.random
            .fill(&mut bytes)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(archive::hex(&bytes))
    }

    /// Claims the record, does the change's work, completes it. The record as it now is;
    /// `None`: another change got there first (nothing of ours is left behind).
    async fn claimed(&self, record: &Item, claim: Claim) -> Result<Option<Item>, Stop> {
        let (pk, version) = (
            field(record, "pk").to_owned(),
            field(record, "version").to_owned(),
        );
        let stale_before = claim.at - i64::from(TIMEOUT_S);
        if !self
            .store
            .claim(pk.clone(), version.clone(), claim.clone(), stale_before)
            .await?
        {
            return Ok(None);
        }
        let mut moved = Vec::new();
        let work = match claim.to.as_str() {
            "RELEASED" => self.publish(record, &claim.id).await,
            _ => self
                .public
                .revoke(record, &claim.id, &mut moved)
                .await
                .map_err(Stop::from),
        };
        if let Err(stop) = work {
            self.undo(record, &claim, &moved).await;
            self.store.unclaim(pk, version, claim.id).await?;
            return Err(stop);
        }
        let now = self.clock.now_epoch_seconds();
        let change = Change {
            was: claim.from.clone(),
            to: claim.to.clone(),
            now,
            ttl: (claim.to == "REVOKED").then_some(now + TTL_SECONDS),
            claim: Some(claim.id.clone()),
        };
        let done = self.store.set_status(pk, version, change).await?;
        if done.is_none() {
            // The status moved under the claim (the ZIP's deletion marks it DELETED): what
            // was published must not outlive it.
            tracing::warn!(
                zip_name = field(record, "zip_name"),
                "the record changed during the transition: its work undone"
            );
            self.undo(record, &claim, &moved).await;
        }
        Ok(done)
    }

    /// A claim left by a stopped invocation: taken over and completed (the work is
    /// idempotent), or undone when the record has moved on or the work cannot be done.
    async fn settle(&self, record: &Item, stale: &Claim) -> Result<(), ApiError> {
        let (pk, version) = (
            field(record, "pk").to_owned(),
            field(record, "version").to_owned(),
        );
        if field(record, "release_status") != stale.from {
            self.undo(record, stale, &[]).await;
            self.store.unclaim(pk, version, stale.id.clone()).await?;
            return Ok(());
        }
        let claim = Claim {
            id: self.claim_id()?,
            from: stale.from.clone(),
            to: stale.to.clone(),
            at: self.clock.now_epoch_seconds(),
        };
        match self.claimed(record, claim).await {
            Ok(_) | Err(Stop::Gone) | Err(Stop::Unverified(_)) => Ok(()),
            Err(Stop::Failed(e)) => Err(e),
        }
    }

    /// A release's work: the ZIP read and verified whole, then every published file
    /// written (a bounded number at once), then one invalidation of the version's folder.
    async fn publish(&self, record: &Item, reference: &str) -> Result<(), Stop> {
        let zip_name = field(record, "zip_name");
        let zip = self
            .bucket
            .get(&format!("{PROCESSED}{zip_name}"), self.limits.zip_bytes)
            .await?
            .ok_or(Stop::Gone)?;
        let files = record_files(record).map_err(Stop::Unverified)?;
        let publish = archive::publishable(&zip, &files, &self.limits).map_err(Stop::Unverified)?;
        let prefix = public::prefix(record).map_err(Stop::Unverified)?;
        let mut pending = publish.into_iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < CONCURRENT_PUTS {
                let Some((name, sha256)) = pending.next() else {
                    break;
                };
                let (zip, bucket, limits) = (zip.clone(), self.public.bucket.clone(), self.limits);
                let key = format!("{prefix}{name}");
                running.spawn(async move {
                    let bytes =
                        archive::member(&zip, &name, &sha256, &limits).map_err(Stop::Unverified)?;
                    bucket.publish(&key, Bytes::from(bytes), PUBLISHED).await?;
                    Ok::<_, Stop>(())
                });
            }
            match running.join_next().await {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(stop))) => return Err(stop),
                Some(Err(e)) => return Err(Stop::Failed(ApiError::internal(e.to_string()))),
            }
        }
        self.public
            .cdn
            .invalidate(&format!("/{prefix}*"), reference)
            .await?;
        Ok(())
    }

    /// Undoes a change's work, as far as it got: a release's files removed, a revocation's
    /// moved back. Best effort: what fails is logged, and the claim it leaves (when the
    /// caller cannot remove it) is settled by the next change.
    async fn undo(&self, record: &Item, claim: &Claim, moved: &[String]) {
        let result = if claim.to == "RELEASED" {
            self.public.withdraw(record).await
        } else {
            self.public.restore(record, moved).await
        };
        match result {
            Ok(()) => {
                tracing::info!(zip_name = field(record, "zip_name"), to = %claim.to, "a transition's work undone")
            }
            Err(e) => {
                tracing::error!(zip_name = field(record, "zip_name"), to = %claim.to, error = %e, "undoing a transition's work failed: public files may not match the status until the next change of this record")
            }
        }
    }
}

/// The record's `files`, as `(name, sha256)`.
fn record_files(record: &Item) -> Result<Vec<(String, String)>, String> {
    let Some(Value::Array(files)) = record.get("files") else {
        return Err("the record lists no files".into());
    };
    files
        .iter()
        .map(|f| {
            match (
                f.get("name").and_then(Value::as_str),
                f.get("sha256").and_then(Value::as_str),
            ) {
                (Some(n), Some(s)) => Ok((n.to_owned(), s.to_owned())),
                _ => Err("a file of the record has no name or sha256".into()),
            }
        })
        .collect()
}

/// A value as Python's `str()` shows it in FireFly's message (None for null).
fn python_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_a_json_object_is_a_400_never_a_500() {
        // FireFly's json.loads raised on these, and its handler answered 500.
        for body in ["not json", "[1, 2]", "\"RELEASED\"", "5", "null", "{"] {
            let e = wanted_status(body).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.message(), "Invalid JSON body", "{body}");
        }
        for body in [
            "",
            "{}",
            r#"{"release_status": ""}"#,
            r#"{"release_status": null}"#,
        ] {
            assert_eq!(
                wanted_status(body).unwrap_err().message(),
                "Missing required field: release_status",
                "{body}"
            );
        }
        assert_eq!(
            wanted_status(r#"{"release_status": 5}"#)
                .unwrap_err()
                .message(),
            "release_status must be a string"
        );
        assert_eq!(
            wanted_status(r#"{"release_status": "TESTING", "x": 1}"#).unwrap(),
            "TESTING"
        );
    }
}
