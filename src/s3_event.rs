//! Functions that S3 invokes: the notification event, what their handlers can take from
//! it, and what they return.
//!
//! S3 invokes a function asynchronously: nobody reads an answer, and Lambda retries a
//! failed invocation twice. So a handler returns `Ok(())` or a [`Failed`] that Lambda
//! retries, and takes its arguments from the event as an API handler takes its own from
//! a request (`async fn(state, Records, Deadline) -> EventResult`). The invocation-only
//! extractors ([`Deadline`], [`RequestId`]) serve both kinds; [`Records`] serves only
//! this one, and an HTTP extractor (a caller, a path) cannot be named by an S3 handler:
//! it does not implement [`FromS3`].

use crate::handler::{Deadline, RequestId, Stopped};
use serde::Deserialize;
use std::time::SystemTime;

/// The notification event as S3 sends it (only what the handlers read; real records carry
/// more, and moto's fewer: every field but the bucket and key may be absent).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct S3Event {
    /// Required: a payload without it is not S3's (an API event sent here by mistake).
    #[serde(rename = "Records")]
    pub records: Vec<S3Record>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct S3Record {
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    #[serde(rename = "eventTime", default)]
    pub event_time: String,
    pub s3: S3Entity,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct S3Object {
    /// URL-encoded as a form value (`+` for a space), as S3 writes it.
    pub key: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(rename = "versionId", default)]
    pub version_id: Option<String>,
    /// Orders the events of one key; present in every real record.
    #[serde(default)]
    pub sequencer: Option<String>,
}

impl S3Event {
    /// An event of one record, as S3 writes it (the key form-encoded): what a local run
    /// announces for a write.
    pub fn one(
        event: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        sequencer: &str,
        size: Option<u64>,
    ) -> Self {
        Self {
            records: vec![S3Record {
                event_name: event.to_owned(),
                event_time: String::new(),
                s3: S3Entity {
                    bucket: S3Bucket {
                        name: bucket.to_owned(),
                    },
                    object: S3Object {
                        key: quote_plus(key),
                        size,
                        version_id: version_id.map(str::to_owned),
                        sequencer: Some(sequencer.to_owned()),
                    },
                },
            }],
        }
    }
}

/// How S3 writes a key in a record (Python's `quote_plus`, `/` kept): the inverse of
/// [`unquote_plus`].
pub fn quote_plus(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One record as a handler reads it: the key decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `ObjectCreated:Put`, `ObjectRemoved:DeleteMarkerCreated`, ...
    pub event: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub size: Option<u64>,
}

impl Notice {
    /// What tells one upload of a key from another: its version, else its sequencer. `None`
    /// when the record carries neither (moto's records; real S3's always have a sequencer).
    pub fn upload_id(&self) -> Option<&str> {
        self.version_id
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "null")
            .or(self.sequencer.as_deref().filter(|s| !s.is_empty()))
    }
}

impl From<&S3Record> for Notice {
    fn from(r: &S3Record) -> Self {
        Self {
            event: r.event_name.clone(),
            bucket: r.s3.bucket.name.clone(),
            key: unquote_plus(&r.s3.object.key),
            version_id: r.s3.object.version_id.clone(),
            sequencer: r.s3.object.sequencer.clone(),
            size: r.s3.object.size,
        }
    }
}

/// Python's `unquote_plus`, as FireFly decodes keys: `+` is a space, `%XX` a byte, and
/// bytes that are not UTF-8 become U+FFFD.
pub fn unquote_plus(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why an invocation failed: Lambda retries it (twice, for S3's asynchronous calls). The
/// text is for operators (the log line and Lambda's record of the failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failed(pub String);

impl From<crate::aws::errors::StoreError> for Failed {
    fn from(e: crate::aws::errors::StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::aws::s3::S3Error> for Failed {
    fn from(e: crate::aws::s3::S3Error) -> Self {
        Self(e.to_string())
    }
}

impl From<crate::aws::cloudfront::CloudFrontError> for Failed {
    fn from(e: crate::aws::cloudfront::CloudFrontError) -> Self {
        Self(e.to_string())
    }
}

impl From<Stopped> for Failed {
    fn from(e: Stopped) -> Self {
        Self(e.to_string())
    }
}

/// What an S3 handler returns.
pub type EventResult = Result<(), Failed>;

/// One invocation as an S3 handler's extractors see it.
pub struct S3Call<'a> {
    pub request_id: &'a str,
    pub deadline: Option<SystemTime>,
    pub event: &'a S3Event,
}

/// Something an S3 handler takes from its invocation.
pub trait FromS3: Sized + Send + 'static {
    fn from_s3(call: &S3Call<'_>) -> Result<Self, Failed>;
}

/// Every record of the event, keys decoded (FireFly's uploaded function read the first
/// only).
#[derive(Debug, Clone)]
pub struct Records(pub Vec<Notice>);

impl FromS3 for Records {
    fn from_s3(call: &S3Call<'_>) -> Result<Self, Failed> {
        Ok(Self(call.event.records.iter().map(Notice::from).collect()))
    }
}

impl FromS3 for Deadline {
    fn from_s3(call: &S3Call<'_>) -> Result<Self, Failed> {
        Ok(Self(call.deadline))
    }
}

impl FromS3 for RequestId {
    fn from_s3(call: &S3Call<'_>) -> Result<Self, Failed> {
        Ok(Self(call.request_id.to_owned()))
    }
}

crate::event_handlers! {
    call: S3Call,
    result: EventResult,
    from: FromS3::from_s3,
    handler: S3Handler,
    erased: ErasedS3,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_python_unquote_plus_decodes_them() {
        for (raw, decoded) in [
            ("incoming/a+b.zip", "incoming/a b.zip"),
            ("incoming/x%2By.zip", "incoming/x+y.zip"),
            ("incoming/%E2%82%AC.zip", "incoming/€.zip"),
            ("incoming/100%", "incoming/100%"),
            ("incoming/%zz.zip", "incoming/%zz.zip"),
            ("incoming/%4", "incoming/%4"),
            ("%ff", "\u{fffd}"),
        ] {
            assert_eq!(unquote_plus(raw), decoded, "{raw}");
        }
        for key in [
            "incoming/a b+c%.zip",
            "incoming/€ é/x.zip",
            "processed/1.zip",
        ] {
            assert_eq!(unquote_plus(&quote_plus(key)), key);
        }
    }

    #[test]
    fn records_as_moto_and_as_s3_send_them_both_read() {
        let real = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2026-12-07T00:00:00.000Z","userIdentity":{"principalId":"X"},"s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"fw","ownerIdentity":{"principalId":"X"},"arn":"arn:aws:s3:::fw"},"object":{"key":"incoming/a+b.zip","size":10,"eTag":"e","versionId":"v1","sequencer":"00A"}}}]}"#;
        let moto = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"fw"},"object":{"key":"incoming/c.zip"}}}]}"#;
        let e: S3Event = serde_json::from_str(real).unwrap();
        let n = Notice::from(&e.records[0]);
        assert_eq!(n.key, "incoming/a b.zip");
        assert_eq!(n.upload_id(), Some("v1"));
        let e: S3Event = serde_json::from_str(moto).unwrap();
        let n = Notice::from(&e.records[0]);
        assert_eq!(n.upload_id(), None);
        // An unversioned bucket's "null" version is no version: the sequencer tells.
        let n = Notice {
            version_id: Some("null".into()),
            sequencer: Some("00B".into()),
            ..n
        };
        assert_eq!(n.upload_id(), Some("00B"));
    }
}
