//! `firefly-func-s3-firmware-uploaded`: a build's ZIP lands in `incoming/` of the private
//! firmware bucket; it moves to `processing/<uuid>.zip`, is checked
//! ([`super::archive`]), its record is filed (READY_TO_TEST, or ERROR with FireFly's
//! message) and it moves on to `processed/` or `errors/`.
//!
//! Better than FireFly's function:
//! - every record of an event is handled (it read the first);
//! - the ZIP's name comes from the upload itself (bucket, key and version, or sequencer),
//!   so a redelivered event finds the record it made and only finishes what is left (the
//!   last move), while the same bytes uploaded again are a new upload with a new name;
//!   a crash or timeout anywhere leaves a state the retry completes;
//! - a record that is RELEASED or REVOKED is never overwritten by an upload of its
//!   version: that upload becomes an ERROR record saying why; except the debug version's,
//!   which is revoked first (its public files moved, CloudFront told), then replaced;
//! - the archive is read in memory with limits, never extracted.

use super::archive;
use super::bucket::Bucket;
use super::{DEBUG_VERSION, ERRORS, Ingest, PROCESSED, PROCESSING};
use crate::devices::store::Item;
use crate::handler::Deadline;
use crate::s3_event::{EventResult, Failed, Notice, Records};
use serde_json::{Map, Value, json};

/// Statuses an upload never overwrites: their files are public, or were.
const PROTECTED: &[&str] = &["RELEASED", "REVOKED"];

/// The handler: every record, in order; the first failure is retried (the records
/// before it are finished, and finish again as no-ops).
pub async fn uploaded(
    ingest: Ingest,
    Records(records): Records,
    deadline: Deadline,
) -> EventResult {
    for notice in &records {
        deadline.within(one(&ingest, notice)).await??;
    }
    Ok(())
}

/// `<uuid>.zip`, the same for the same upload: a UUID (version 8, RFC 9562's custom
/// layout) from SHA-256 of the bucket, the key and what tells this upload of it from
/// another. Without that (moto's records), a random one, as FireFly names every upload.
fn zip_name(ingest: &Ingest, n: &Notice) -> Result<String, Failed> {
    if let Some(name) = upload_zip_name(n) {
        return Ok(name);
    }
    let mut bytes = [0u8; 16];
    ingest
        .random
        .fill(&mut bytes)
        .map_err(|e| Failed(e.to_string()))?;
    Ok(uuid_zip(bytes, 0x40))
}

/// The ZIP name of an upload S3 names (its version or sequencer); `None` when it does not.
pub fn upload_zip_name(n: &Notice) -> Option<String> {
    let id = n.upload_id()?;
    let text = format!("{}\0{}\0{}", n.bucket, n.key, id);
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d.as_ref()[..16]);
    Some(uuid_zip(bytes, 0x80))
}

/// `xxxxxxxx-xxxx-Vxxx-Nxxx-xxxxxxxxxxxx.zip` of `bytes`, with its version and variant.
fn uuid_zip(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | version;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = archive::hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}.zip",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn one(ingest: &Ingest, n: &Notice) -> EventResult {
    if !n.key.ends_with(".zip") {
        tracing::warn!(key = %n.key, "not a .zip: ignored");
        return Ok(());
    }
    if n.bucket != ingest.bucket_name {
        tracing::error!(bucket = %n.bucket, expected = %ingest.bucket_name, "an event of another bucket: ignored (check the bucket's notification)");
        return Ok(());
    }
    let original_name = n.key.rsplit('/').next().unwrap_or(&n.key).to_owned();
    let zip_name = zip_name(ingest, n)?;
    let processing = format!("{PROCESSING}{zip_name}");
    let bucket = ingest.bucket.as_ref();

    // A record for this upload: an earlier delivery filed it; only its move may be left.
    let filed = ingest.store.all_by_zip(zip_name.clone()).await?;
    if let Some(record) = filed.first() {
        let to = if record.get("release_status").and_then(Value::as_str) == Some("ERROR") {
            ERRORS
        } else {
            PROCESSED
        };
        tracing::info!(zip_name = %zip_name, "a redelivered upload: its record exists, finishing its move");
        finish_move(bucket, &processing, &format!("{to}{zip_name}")).await?;
        forget_incoming(bucket, n).await?;
        return Ok(());
    }

    // Into processing/ (unless an earlier attempt got it there), then out of incoming/.
    let mut body = bucket.get(&processing, ingest.limits.zip_bytes).await;
    if matches!(body, Ok(None)) {
        let version = n
            .version_id
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "null");
        if !bucket.copy(&n.key, version, &processing).await? {
            tracing::warn!(key = %n.key, zip_name = %zip_name, "the upload is gone from incoming/: a duplicate event whose upload is already handled");
            return Ok(());
        }
        body = bucket.get(&processing, ingest.limits.zip_bytes).await;
    }
    forget_incoming(bucket, n).await?;
    let now = ingest.clock.now_epoch_seconds();
    let checked = match body {
        Ok(Some(zip)) => archive::check(&zip, &ingest.limits).map(|c| (c, zip)),
        Ok(None) => return Err(Failed(format!("{processing} vanished while it was read"))),
        Err(crate::aws::s3::S3Error::TooLarge(_)) => Err(archive::Invalid {
            message: format!("ZIP is larger than {} MiB", ingest.limits.zip_bytes >> 20),
            manifest: None,
        }),
        Err(e) => return Err(e.into()),
    };
    let (record, to) = match checked {
        Ok((c, zip)) => {
            let record = ready_record(&c, &zip_name, &original_name, &zip, now);
            if ingest.store.put_unless(record.clone(), PROTECTED).await? {
                tracing::info!(zip_name = %zip_name, version = %c.manifest["version"], "firmware filed: READY_TO_TEST");
                (None, PROCESSED)
            } else if record["version"] == DEBUG_VERSION {
                replace_debug(ingest, record, &zip_name).await?;
                (None, PROCESSED)
            } else {
                let pk = record["pk"].as_str().unwrap_or_default().to_owned();
                let version = record["version"].as_str().unwrap_or_default().to_owned();
                let status = ingest
                    .store
                    .get(pk.clone(), version.clone())
                    .await?
                    .and_then(|r| {
                        r.get("release_status")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "RELEASED".into());
                let message = format!(
                    "Version {version} of {pk} is already {status}; an upload never replaces it: build and upload a new version"
                );
                (
                    Some(error_record(
                        &zip_name,
                        &original_name,
                        message,
                        Some(Value::Object(c.manifest)),
                        now,
                    )),
                    ERRORS,
                )
            }
        }
        Err(invalid) => (
            Some(error_record(
                &zip_name,
                &original_name,
                invalid.message,
                invalid.manifest,
                now,
            )),
            ERRORS,
        ),
    };
    if let Some(record) = record {
        tracing::warn!(zip_name = %zip_name, original_name = %original_name, error = %record["error"], "firmware refused: ERROR record filed");
        // Unconditional: its version names this ZIP, so only this upload ever writes it.
        ingest.store.put_unless(record, &[]).await?;
    }
    finish_move(bucket, &processing, &format!("{to}{zip_name}")).await
}

/// An upload of the debug version over a record that is RELEASED or REVOKED (FireFly's CI
/// uploads `9999.99.99` on every build; outside production it may be released). The old
/// record is revoked first, as a revocation revokes: RELEASED becomes REVOKED by a
/// conditional write (with its `ttl` and history entry), its public files move to
/// `revoked/` and CloudFront forgets them; then the new record takes its place, on the
/// condition that nobody released the version meanwhile. A crash anywhere leaves a state
/// the retry completes: the record stays REVOKED until the new one is filed, and moving
/// what is left of the files moves nothing when nothing is.
async fn replace_debug(ingest: &Ingest, record: Item, zip_name: &str) -> EventResult {
    let pk = text(&record, "pk");
    let version = text(&record, "version");
    let changed = || {
        Failed(format!(
            "{pk} {version}: the debug record changed while an upload replaced it; the retry reads it again"
        ))
    };
    let old = ingest
        .store
        .get(pk.clone(), version.clone())
        .await?
        .ok_or_else(changed)?;
    let now = ingest.clock.now_epoch_seconds();
    match old.get("release_status").and_then(Value::as_str) {
        Some("RELEASED") => {
            let ttl = now + super::deleted::TTL_SECONDS;
            let claimed = ingest
                .store
                .transition(
                    pk.clone(),
                    version.clone(),
                    "RELEASED".into(),
                    "REVOKED",
                    now,
                    ttl,
                )
                .await?;
            if !claimed {
                return Err(changed());
            }
            tracing::warn!(pk = %pk, version = %version, old_zip = %text(&old, "zip_name"), "a new debug build replaces the released one: revoked");
        }
        Some("REVOKED") => {}
        _ => return Err(changed()),
    }
    // The new upload's name: a retry's invalidation is the same one.
    let mut moved = Vec::new();
    ingest.public.revoke(&old, zip_name, &mut moved).await?;
    tracing::info!(pk = %pk, version = %version, moved = moved.len(), "the replaced debug build's public files moved to revoked/");
    if !ingest.store.put_unless(record, &["RELEASED"]).await? {
        return Err(changed());
    }
    tracing::info!(zip_name = %zip_name, version = %version, "firmware filed: READY_TO_TEST (the debug build replaced)");
    Ok(())
}

/// `processing/` to its end: a copy, then the delete; both no-ops when already done.
async fn finish_move(bucket: &dyn Bucket, processing: &str, to: &str) -> EventResult {
    if bucket.copy(processing, None, to).await? {
        bucket.delete(processing, None).await?;
    }
    Ok(())
}

/// Removes this upload from `incoming/`: its own version for good where S3 names one (a
/// newer upload of the key stays), else the key.
async fn forget_incoming(bucket: &dyn Bucket, n: &Notice) -> EventResult {
    let version = n
        .version_id
        .as_deref()
        .filter(|v| !v.is_empty() && *v != "null");
    bucket.delete(&n.key, version).await?;
    Ok(())
}

fn text(m: &Map<String, Value>, field: &str) -> String {
    m.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// FireFly's success record, attribute for attribute (numbers as numbers).
fn ready_record(
    c: &archive::Checked,
    zip_name: &str,
    original_name: &str,
    zip: &[u8],
    now: i64,
) -> Item {
    let m = &c.manifest;
    let class = text(m, "class").to_lowercase();
    let product_hex = text(m, "product_hex").to_lowercase();
    let application = text(m, "application");
    let mut item = Map::new();
    item.insert(
        "pk".into(),
        json!(format!(
            "{class}#{product_hex}#{}",
            application.to_lowercase()
        )),
    );
    item.insert("product_id".into(), m["product_id"].clone());
    item.insert("product_hex".into(), json!(product_hex));
    item.insert("firmware_type".into(), m["firmware_type"].clone());
    item.insert("main_binary".into(), json!(c.main_binary));
    item.insert("version".into(), m["version"].clone());
    item.insert("class".into(), json!(class));
    item.insert("application".into(), json!(application));
    item.insert("branch".into(), m["branch"].clone());
    item.insert("commit".into(), m["commit"].clone());
    item.insert("created".into(), m["created"].clone());
    item.insert("files".into(), m["files"].clone());
    item.insert("zip_name".into(), json!(zip_name));
    item.insert("original_name".into(), json!(original_name));
    item.insert("zip_sha256".into(), json!(archive::sha256_hex(zip)));
    item.insert("zip_size".into(), json!(zip.len()));
    item.insert("uploaded_at".into(), json!(now));
    item.insert("release_status".into(), json!("READY_TO_TEST"));
    item.insert("partition_offsets".into(), json!(c.partition_offsets));
    item.insert(
        "status_history".into(),
        json!([{ "status": "READY_TO_TEST", "timestamp": now }]),
    );
    // FireFly copies these when they are truthy.
    for field in ["bootloader_addr", "release_url"] {
        if let Some(v) = m.get(field).filter(|v| super::truthy(v)) {
            item.insert(field.into(), v.clone());
        }
    }
    item
}

/// FireFly's ERROR record: filed under what the manifest names, as far as it is read
/// (strings only: a field of another type is as good as missing).
fn error_record(
    zip_name: &str,
    original_name: &str,
    message: String,
    manifest: Option<Value>,
    now: i64,
) -> Item {
    let fields = manifest.as_ref().and_then(Value::as_object);
    let field = |name: &str| fields.and_then(|m| m.get(name)).and_then(Value::as_str);
    let class = field("class").map_or("__unknown_class__".into(), str::to_lowercase);
    let product_hex =
        field("product_hex").map_or("__unknown_product_hex__".into(), str::to_lowercase);
    let product_id = field("product_id").unwrap_or("__UNKNOWN_PRODUCT__");
    let version = field("version").unwrap_or("UNKNOWN");
    let application = field("application").map_or("unknown".into(), str::to_lowercase);
    let mut item = Map::new();
    item.insert(
        "pk".into(),
        json!(format!("{class}#{product_hex}#{application}")),
    );
    item.insert("product_id".into(), json!(product_id));
    item.insert("product_hex".into(), json!(product_hex));
    item.insert(
        "version".into(),
        json!(format!("ERROR#{version}#{zip_name}")),
    );
    item.insert("release_status".into(), json!("ERROR"));
    item.insert("error".into(), json!(message));
    item.insert("zip_name".into(), json!(zip_name));
    item.insert("timestamp".into(), json!(now));
    item.insert(
        "status_history".into(),
        json!([{ "status": "ERROR", "timestamp": now }]),
    );
    item.insert("original_name".into(), json!(original_name));
    // DynamoDB refuses what it cannot store (a number past its range): the record is
    // filed without the manifest rather than not at all.
    if let Some(m) = manifest.filter(crate::devices::store::storable) {
        item.insert("manifest".into(), m);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_record_is_filed_under_what_a_partial_manifest_names() {
        let m = json!({"product_hex": "0xABCD0001", "version": 7, "class": ["x"]});
        let r = error_record(
            "z.zip",
            "o.zip",
            "Manifest missing required field: class".into(),
            Some(m),
            5,
        );
        assert_eq!(r["pk"], "__unknown_class__#0xabcd0001#unknown");
        assert_eq!(r["product_hex"], "0xabcd0001");
        assert_eq!(r["version"], "ERROR#UNKNOWN#z.zip");
        assert_eq!(r["manifest"]["version"], 7);
        let r = error_record("z.zip", "o.zip", "File is not a zip file".into(), None, 5);
        assert_eq!(r["pk"], "__unknown_class__#__unknown_product_hex__#unknown");
        assert!(!r.contains_key("manifest"));
    }
}
