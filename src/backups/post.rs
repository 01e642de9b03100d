//! `POST /devices/{uuid}/backup`: a controller stores its encrypted backup (an FFCE blob
//! of at most 512 KiB), as FireFly's `devices-backup-post` answers, with these differences:
//! a 304 only when the ETag already stored is the one the request names (FireFly compared
//! two headers of the same request), `last_backup_date` written only on a device that
//! still exists, and a body or ETag FireFly would have failed on with a 500 is a 400.

use super::{AUTH_ANSWERS, Backups, FAILURES};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::registration::DeviceUuid;
use crate::devices::signature::{self, DeviceSignature};
use crate::error::ApiError;
use crate::handler::{Deadline, FromRequest, HandlerResult, Path, Request};
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use bytes::Bytes;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde::Serialize;

pub const ROUTE: Route = Route {
    key: "POST /devices/{uuid}/backup",
    function: "firefly-func-api-devices-backup-post",
    summary: "A device stores its encrypted configuration backup (FFCE, at most 512 KiB)",
    uses: &[
        Use {
            resource: &crate::devices::TABLE,
            actions: &["dynamodb:GetItem", "dynamodb:UpdateItem"],
            objects: &[],
        },
        crate::devices::NONCE_USE,
        // HeadObject (to compare If-None-Match with what is stored) reads with GetObject;
        // ListBucket makes a missing object a 404 instead of AccessDenied.
        Use {
            resource: &super::BUCKET,
            actions: &["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Stored (the ETag header echoes the one sent, quoted)",
            schema: Some(STORED_SCHEMA),
            example: Some(
                r#"{"message":"Backup stored","last_backup_date":"2026-05-24T15:32:51Z"}"#,
            ),
        },
        Answer::new(
            304,
            "The backup stored already has this ETag (ETag and If-None-Match both name it): nothing written",
        ),
        AUTH_ANSWERS[0],
        AUTH_ANSWERS[1],
        AUTH_ANSWERS[2],
        Answer::new(
            413,
            "Payload exceeds maximum size of 512 KB (the encrypted blob)",
        ),
        FAILURES[0],
        FAILURES[1],
    ],
    scopes: &[],
    params: &[super::get::UUID_PARAM],
    headers: &HEADERS,
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: Some(REQUEST_SCHEMA),
    endpoint: crate::endpoint!(store, Backups::build),
};

const STORED_SCHEMA: &str = r#"{"title": "BackupStoredResponse", "type": "object", "required": ["message", "last_backup_date"], "additionalProperties": false, "properties": {"message": {"type": "string"}, "last_backup_date": {"type": "string"}}}"#;

const REQUEST_SCHEMA: &str =
    r#"{"title": "BackupBlob", "type": "string", "format": "binary", "maxLength": 524288}"#;

/// The signed headers, and the two optional ones.
pub const HEADERS: [Param; 6] = [
    signature::UUID_HEADER,
    signature::NONCE_HEADER,
    signature::TIMESTAMP_HEADER,
    signature::SIGNATURE_HEADER,
    Param {
        name: "ETag",
        description: "Optional: SHA-256 hex of the plaintext (quotes stripped), stored as the backup's etag",
        schema: r#"{"type": "string"}"#,
    },
    Param {
        name: "If-None-Match",
        description: "Optional: with an equal ETag, 304 when the stored backup already has it",
        schema: r#"{"type": "string"}"#,
    },
];

/// FireFly's limit on the blob (its own test needs it), although the firmware allows a
/// 512 KiB plaintext and encryption adds 37 bytes (docs/backups.md).
pub const MAX_BODY_BYTES: usize = 512 * 1024;

/// FFCE: the magic of FireFly-Controller's encrypted backups.
pub const MAGIC: &[u8; 4] = b"FFCE";

#[derive(Serialize)]
struct Stored<'a> {
    message: &'static str,
    last_backup_date: &'a str,
}

/// The body as API Gateway delivered it, read only after the device is authenticated
/// (FireFly answers 401 for an unknown device whatever the body).
pub struct RawBody {
    text: String,
    base64: bool,
}

impl FromRequest for RawBody {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        Ok(Self {
            text: req.event.body.clone().unwrap_or_default(),
            base64: req.event.is_base64_encoded,
        })
    }
}

const fn bad(message: &'static str) -> ApiError {
    ApiError::BadRequest { message }
}

impl RawBody {
    /// The bytes, as FireFly reads them: Base64 when `isBase64Encoded` (Python's lenient
    /// decoder: characters outside the alphabet skipped), else each character one Latin-1
    /// byte; a character past U+00FF is a 400 (FireFly's 500).
    pub fn bytes(&self) -> Result<Vec<u8>, ApiError> {
        if self.base64 {
            return decode_lenient(&self.text).ok_or(bad("Invalid base64-encoded body"));
        }
        self.text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).ok())
            .collect::<Option<Vec<u8>>>()
            .ok_or(bad("Body does not appear to be a valid FFCE backup"))
    }
}

/// Python's `base64.b64decode(text)` (not `validate=True`): bytes outside the alphabet are
/// skipped, padding must complete the last group.
pub fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
            .with_decode_allow_trailing_bits(true),
    );
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    LENIENT.decode(kept).ok()
}

/// `ETag` and `If-None-Match` as FireFly reads them (trimmed, quotes stripped; empty when
/// absent), or a 400 for a value that is not ASCII (FireFly's 500, from S3's metadata).
pub struct Etags {
    etag: Result<String, ()>,
    if_none_match: Result<String, ()>,
}

impl FromRequest for Etags {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let read = |name: &str| match req.event.headers.get(name) {
            None => Ok(String::new()),
            Some(v) => std::str::from_utf8(v.as_bytes())
                .ok()
                .filter(|t| t.is_ascii())
                .map(|t| t.trim().trim_matches('"').to_owned())
                .ok_or(()),
        };
        // Read now, judged after the device is authenticated.
        Ok(Self {
            etag: read("etag"),
            if_none_match: read("if-none-match"),
        })
    }
}

impl Etags {
    fn read(self) -> Result<(String, String), ApiError> {
        match (self.etag, self.if_none_match) {
            (Ok(e), Ok(i)) => Ok((e, i)),
            _ => Err(bad("ETag and If-None-Match must be ASCII")),
        }
    }
}

fn quoted(etag: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("\"{etag}\"")).ok()
}

/// The handler.
pub async fn store(
    backups: Backups,
    deadline: Deadline,
    Path(DeviceUuid(uuid)): Path<DeviceUuid>,
    signature: DeviceSignature,
    etags: Etags,
    body: RawBody,
) -> HandlerResult {
    backups.authenticate(deadline, &uuid, &signature).await?;
    let bytes = body.bytes()?;
    if bytes.is_empty() {
        return Err(bad("Request body is required"));
    }
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: "Payload exceeds maximum size of 512 KB",
        });
    }
    if !bytes.starts_with(MAGIC) {
        return Err(bad("Body does not appear to be a valid FFCE backup"));
    }
    let (etag, if_none_match) = etags.read()?;
    // The device says the blob is unchanged: believed only if the backup stored now has
    // that very ETag.
    if !etag.is_empty() && etag == if_none_match {
        let stored = deadline.run(backups.objects.etag(&uuid)).await??;
        if stored.as_deref() == Some(etag.as_str()) {
            let mut r = Response::empty(StatusCode::NOT_MODIFIED);
            if let Some(v) = quoted(&etag) {
                r.headers.insert(header::ETAG, v);
            }
            return Ok(r);
        }
    }
    let etag = (!etag.is_empty()).then_some(etag);
    deadline
        .run(
            backups
                .objects
                .put(&uuid, Bytes::from(bytes), etag.as_deref()),
        )
        .await??;
    let now = crate::clock::rfc3339(backups.devices.clock.now_epoch_seconds());
    match deadline
        .run(backups.devices.store.mark_backup(&uuid, Some(now.clone())))
        .await
    {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            // Deleted since it was read: no stub item for it, and no orphan backup.
            tracing::warn!("the device was deleted while its backup was stored; backup removed");
            if let Err(e) = deadline.run(backups.objects.delete(&uuid)).await? {
                tracing::error!(error = %e, "the orphan backup could not be removed");
            }
            return Err(super::NOT_REGISTERED);
        }
        // The backup is stored; the date is a convenience for the console: logged, as
        // FireFly does.
        Ok(Err(e)) => tracing::error!(error = %e, "last_backup_date not updated"),
        Err(e) => tracing::error!(error = %e, "last_backup_date not updated"),
    }
    let mut r = Response::json(
        StatusCode::OK,
        &Stored {
            message: "Backup stored",
            last_backup_date: &now,
        },
    );
    if let Some(v) = etag.as_deref().and_then(quoted) {
        r.headers.insert(header::ETAG, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str, base64: bool) -> RawBody {
        RawBody {
            text: text.into(),
            base64,
        }
    }

    #[test]
    fn bodies_are_read_as_firefly_reads_them() {
        assert_eq!(
            raw("FFCE\u{1}\u{ff}", false).bytes().unwrap(),
            b"FFCE\x01\xff"
        );
        assert_eq!(raw("RkZDRQ==", true).bytes().unwrap(), b"FFCE");
        // Python's lenient decoder skips what is not Base64.
        assert_eq!(raw("Rk ZD\nRQ==", true).bytes().unwrap(), b"FFCE");
        let e = raw("RkZDRQ=", true).bytes().unwrap_err();
        assert_eq!(e.message(), "Invalid base64-encoded body");
        // Past Latin-1: FireFly's encode('latin-1') raised (500); here a 400.
        let e = raw("FFCE\u{20ac}", false).bytes().unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
