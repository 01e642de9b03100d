//! `firefly-func-s3-firmware-deleted`: a ZIP leaves `processed/` or `errors/` (a delete,
//! or the 30-day lifecycle's delete marker); its records still in flight become DELETED,
//! to be purged by the table's TTL ten days later.
//!
//! Better than FireFly's function: the write is conditioned on the status the record was
//! read in (FireFly's read-then-write could turn a record released in between into
//! DELETED), a record whose status moved is read again and judged again, each DELETED gets
//! its `status_history` entry, and a ZIP with no record is logged once and done with
//! (FireFly raised, so Lambda retried it twice for nothing).

use super::Deletions;
use crate::handler::Deadline;
use crate::s3_event::{EventResult, Failed, Records};
use serde_json::Value;

/// Statuses the ZIP's deletion leaves alone: the public copies are what matter for the
/// first two, and the last is done.
const SETTLED: [&str; 3] = ["RELEASED", "REVOKED", "DELETED"];

/// How long a DELETED record stays listed, as FireFly keeps it.
pub const TTL_SECONDS: i64 = 10 * 24 * 3600;

/// Reads of a record whose status keeps moving under us, before the retry is Lambda's.
const ATTEMPTS: usize = 4;

pub async fn deleted(
    ingest: Deletions,
    Records(records): Records,
    deadline: Deadline,
) -> EventResult {
    for n in &records {
        let name = n.key.rsplit('/').next().unwrap_or(&n.key);
        if !name.ends_with(".zip") {
            tracing::warn!(key = %n.key, "not a .zip: ignored");
            continue;
        }
        if !(n.key.starts_with(super::PROCESSED) || n.key.starts_with(super::ERRORS)) {
            continue;
        }
        deadline.within(settle(&ingest, name)).await??;
    }
    Ok(())
}

async fn settle(ingest: &Deletions, zip_name: &str) -> EventResult {
    let records = ingest.store.all_by_zip(zip_name.to_owned()).await?;
    if records.is_empty() {
        tracing::warn!(zip_name, "a deleted ZIP with no record: nothing to do");
        return Ok(());
    }
    for record in records {
        let key = |f: &str| record.get(f).and_then(Value::as_str).map(str::to_owned);
        let (Some(pk), Some(version)) = (key("pk"), key("version")) else {
            continue;
        };
        let mut status = key("release_status").unwrap_or_default();
        for attempt in 0.. {
            if SETTLED.contains(&status.as_str()) {
                tracing::debug!(zip_name, pk = %pk, version = %version, status = %status, "left as it is");
                break;
            }
            if attempt == ATTEMPTS {
                return Err(Failed(format!(
                    "{pk} {version}: its status kept changing while its ZIP was deleted"
                )));
            }
            let now = ingest.clock.now_epoch_seconds();
            if ingest
                .store
                .transition(
                    pk.clone(),
                    version.clone(),
                    status.clone(),
                    "DELETED",
                    now,
                    now + TTL_SECONDS,
                )
                .await?
            {
                tracing::info!(zip_name, pk = %pk, version = %version, was = %status, "firmware DELETED with its ZIP");
                break;
            }
            // Moved since it was read (a release, a delete): judge what it is now.
            match ingest.store.get(pk.clone(), version.clone()).await? {
                Some(now) => {
                    status = now
                        .get("release_status")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                }
                None => break,
            }
        }
    }
    Ok(())
}
