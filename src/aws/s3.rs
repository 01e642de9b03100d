//! S3's REST API as signed requests: SigV4 (aws-sigv4, already linked by the DynamoDB SDK)
//! over the process's one HTTP/1 transport ([`super::http1`]), with S3's XML errors read
//! into what the caller should hear.
//!
//! Why not `aws-sdk-s3`: measured beside the DynamoDB client it adds 1.44 MiB to the one
//! artifact every function ships and about 0.95 M instructions to each S3 function's init,
//! for the four object operations FireFly uses (docs/performance.md, "Which S3 client").
//! What the SDK would add for them is done here: the endpoint (virtual-hosted on AWS,
//! path-style on a local endpoint or a bucket name with dots), retries of throttling, 5xx
//! and broken connections, per-attempt timeouts, and the error codes. SSE-S3 and SSE-KMS
//! buckets need nothing from the caller: S3 encrypts with the bucket's default key and
//! decrypts on GET (FireFly's backup bucket uses the AWS-managed `aws/s3` key, whose policy
//! admits callers through S3).

use super::http1::Http1Client;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SigningSettings, UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use std::time::Duration;

/// Each attempt's bound: a 512 KiB object moves in well under a second inside a region.
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
/// Attempts per call, as the SDK's standard retry mode.
const MAX_ATTEMPTS: u32 = 3;
/// The largest object body read into memory: more than any Lambda response can carry.
pub const MAX_OBJECT_BYTES: usize = 6 * 1024 * 1024;
/// The prefix of user metadata headers.
const META: &str = "x-amz-meta-";

/// Why an S3 call failed. Texts are for operators (the log line); none reaches a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Error {
    /// Throttled, unreachable, timed out, 5xx after retries: worth retrying later (503).
    #[error("S3 unavailable: {0}")]
    Unavailable(String),
    /// Anything else: access denied, KMS refusing, no such bucket (500; ours to fix).
    #[error("S3 error: {0}")]
    Other(String),
    /// The object is larger than the caller reads into memory.
    #[error("S3 object larger than {0} bytes")]
    TooLarge(usize),
}

impl From<S3Error> for crate::error::ApiError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::Unavailable(_) => Self::unavailable(e.to_string()),
            S3Error::Other(_) | S3Error::TooLarge(_) => Self::internal(e.to_string()),
        }
    }
}

/// An object as GET returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Bytes,
    /// User metadata (`x-amz-meta-*`), names lower-case without the prefix.
    pub metadata: Vec<(String, String)>,
    /// `Content-Type` and `Cache-Control`, as stored.
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

impl Object {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where requests go: S3's regional endpoint, or an override (a local server).
#[derive(Debug, Clone)]
enum Base {
    Aws { suffix: &'static str },
    Custom(String),
}

/// An S3 client for one region: signed requests on the shared transport.
#[derive(Clone)]
pub struct S3Client {
    http: Http1Client,
    region: String,
    base: Base,
    identity: Identity,
    attempt_timeout: Duration,
}

impl std::fmt::Debug for S3Client {
    // The identity holds the secret key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Client")
            .field("region", &self.region)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    /// From the Lambda environment: `AWS_REGION`, the role's credentials in
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` (fixed for a sandbox's
    /// life), and `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) for a local server.
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        use crate::vars;
        let region = super::region(env)?;
        let identity = super::identity(env)?;
        let base = match super::endpoint_override(env, vars::AWS_ENDPOINT_URL_S3.name)? {
            Some(url) => Base::Custom(url),
            None => Base::Aws {
                suffix: if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                },
            },
        };
        Ok(Self {
            http,
            region,
            base,
            identity,
            attempt_timeout: ATTEMPT_TIMEOUT,
        })
    }

    /// The same client, each attempt given `timeout` (a function with a long timeout that
    /// moves whole firmware files: a slow S3 must not be cut off at an API answer's pace).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The object's URL. Virtual-hosted on AWS (path-style is deprecated there), except for
    /// a bucket name with a dot, which the `*.s3` certificate cannot cover; path-style on an
    /// override, as local servers expect.
    fn url(&self, bucket: &str, key: &str) -> String {
        let key = encode_key(key);
        match &self.base {
            Base::Aws { suffix } if !bucket.contains('.') => {
                format!("https://{bucket}.s3.{}.{suffix}/{key}", self.region)
            }
            Base::Aws { suffix } => format!("https://s3.{}.{suffix}/{bucket}/{key}", self.region),
            Base::Custom(base) => format!("{base}/{bucket}/{key}"),
        }
    }

    /// What opens this client's connection to `bucket`'s endpoint during init, for the
    /// first request there.
    pub fn warm(&self, bucket: &str) -> super::Warm {
        super::Warm::new(self.http.clone(), Some(self.url(bucket, "")))
    }

    /// `PutObject`, with user metadata and a content type.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        metadata: &[(&str, &str)],
    ) -> Result<(), S3Error> {
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        for (k, v) in metadata {
            headers.push((format!("{META}{k}"), (*v).to_owned()));
        }
        self.call("PUT", bucket, key, &headers, body)
            .await
            .and_then(found)
    }

    /// `PutObject` with the headers a published file carries (`Content-Type`,
    /// `Cache-Control`).
    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        headers: &[(String, String)],
    ) -> Result<(), S3Error> {
        self.call("PUT", bucket, key, headers, body)
            .await
            .and_then(found)
    }

    /// A presigned `GetObject` URL of `key`, valid for `expires` from `now` (with the
    /// session token: Lambda's credentials are a role's). The URL works until the sooner
    /// of its expiry and the credentials' own.
    pub fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        now: std::time::SystemTime,
        expires: Duration,
    ) -> Result<String, S3Error> {
        super::Signer {
            identity: &self.identity,
            region: &self.region,
            service: "s3",
            settings: s3_settings(),
        }
        .presign_get(&self.url(bucket, key), now, expires)
        .map_err(S3Error::Other)
    }

    /// `GetObject` of an object that may be up to `limit` bytes ([`S3Error::TooLarge`]
    /// past it: nothing larger is held in memory).
    pub async fn get_object_limited(
        &self,
        bucket: &str,
        key: &str,
        limit: usize,
    ) -> Result<Option<Object>, S3Error> {
        self.call_limited("GET", bucket, key, &[], Bytes::new(), limit)
            .await
    }

    /// `CopyObject` within `bucket`, of one version of `from` when given (`false`: no such
    /// key or version). Needs `s3:GetObject` (and `s3:GetObjectVersion` for a version) on
    /// the source and `s3:PutObject` on the target.
    pub async fn copy_object(
        &self,
        bucket: &str,
        from: &str,
        version: Option<&str>,
        to: &str,
    ) -> Result<bool, S3Error> {
        let mut source = format!("/{bucket}/{}", encode_key(from));
        if let Some(v) = version {
            source.push_str("?versionId=");
            source.push_str(&encode_key(v));
        }
        let headers = [("x-amz-copy-source".to_owned(), source)];
        match self.call("PUT", bucket, to, &headers, Bytes::new()).await? {
            None => Ok(false),
            // S3 may answer a copy 200 and put its error in the body: retry-worthy.
            Some(o) if String::from_utf8_lossy(&o.body).contains("<Error>") => Err(
                S3Error::Unavailable(format!("copy to {to} failed after its 200")),
            ),
            Some(_) => Ok(true),
        }
    }

    /// `ListObjectsV2` of the keys under `prefix`, every page (`s3:ListBucket`).
    pub async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
        let base = match &self.base {
            Base::Custom(base) => format!("{base}/{bucket}"),
            _ => self.url(bucket, ""),
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            // Every byte of a query value encoded but the unreserved ones: SigV4's canonical
            // query string is then the URL's own.
            let mut url = format!("{base}?list-type=2&prefix={}", encode_query(prefix));
            if let Some(t) = &token {
                url.push_str("&continuation-token=");
                url.push_str(&encode_query(t));
            }
            let page = self
                .send("GET", bucket, url, &[], Bytes::new(), MAX_OBJECT_BYTES)
                .await?
                .ok_or_else(|| S3Error::Other(format!("404 listing s3://{bucket}")))?;
            let text = String::from_utf8_lossy(&page.body);
            keys.extend(xml_all(&text, "Key"));
            match (
                xml_text(&text, "IsTruncated").as_deref(),
                xml_text(&text, "NextContinuationToken"),
            ) {
                (Some("true"), Some(next)) => token = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    /// `DeleteObject` of one version (`s3:DeleteObjectVersion`: it is gone for good), or
    /// of the key (a delete marker in a versioned bucket) when `version` is `None`.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(), S3Error> {
        match version {
            None => self.delete_object(bucket, key).await,
            Some(v) => self
                .call_query("DELETE", bucket, (key, v))
                .await
                .map(|_| ()),
        }
    }

    /// `GetObject`: `None` when there is no such key (S3's `NoSuchKey`; the role needs
    /// `s3:ListBucket` on the bucket for S3 to say so instead of `AccessDenied`).
    pub async fn get_object(&self, bucket: &str, key: &str) -> Result<Option<Object>, S3Error> {
        self.call("GET", bucket, key, &[], Bytes::new()).await
    }

    /// `CreateBucket` in the client's region (local servers: tests, `firefly-local`); an
    /// existing bucket of ours is fine. Deployed functions never make buckets.
    #[cfg(any(feature = "test-hooks", feature = "tools"))]
    pub async fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let body = if self.region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                self.region
            ))
        };
        match self
            .call("PUT", bucket, "", &[], body)
            .await
            .and_then(found)
        {
            Err(S3Error::Other(e)) if e.contains("BucketAlreadyOwnedByYou") => Ok(()),
            other => other,
        }
    }

    /// `HeadObject`: the object's user metadata, `None` when there is no such key (as
    /// [`S3Client::get_object`]; S3 reads it with `s3:GetObject`).
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<(String, String)>>, S3Error> {
        let found = self.call("HEAD", bucket, key, &[], Bytes::new()).await?;
        Ok(found.map(|o| o.metadata))
    }

    /// `DeleteObject` (S3 answers 204 whether or not the key existed).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.call("DELETE", bucket, key, &[], Bytes::new())
            .await
            .map(|_| ())
    }

    /// One operation, with its retries: the object, `None` when there is no such key (an
    /// answer, not an error), or what failed.
    async fn call(
        &self,
        method: &'static str,
        bucket: &str,
        key: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Option<Object>, S3Error> {
        self.call_limited(method, bucket, key, headers, body, MAX_OBJECT_BYTES)
            .await
    }

    async fn call_limited(
        &self,
        method: &'static str,
        bucket: &str,
        key: &str,
        headers: &[(String, String)],
        body: Bytes,
        limit: usize,
    ) -> Result<Option<Object>, S3Error> {
        let url = self.url(bucket, key);
        self.send(method, bucket, url, headers, body, limit).await
    }

    /// A call on one version of a key.
    async fn call_query(
        &self,
        method: &'static str,
        bucket: &str,
        (key, version): (&str, &str),
    ) -> Result<Option<Object>, S3Error> {
        let url = format!(
            "{}?versionId={}",
            self.url(bucket, key),
            encode_key(version)
        );
        self.send(method, bucket, url, &[], Bytes::new(), MAX_OBJECT_BYTES)
            .await
    }

    async fn send(
        &self,
        method: &'static str,
        bucket: &str,
        url: String,
        headers: &[(String, String)],
        body: Bytes,
        limit: usize,
    ) -> Result<Option<Object>, S3Error> {
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                // Back off a little (25, then 100 ms): S3 asks for it on SlowDown.
                tokio::time::sleep(Duration::from_millis(25 << (2 * (attempt - 1)))).await;
            }
            crate::telemetry::metric("S3Attempts", crate::telemetry::Unit::Count, 1.0);
            let request = self.signed(method, &url, headers, body.clone())?;
            let outcome =
                tokio::time::timeout(self.attempt_timeout, self.exchange(request, limit)).await;
            match outcome {
                Err(_) => last = format!("{method} timed out after {:?}", self.attempt_timeout),
                Ok(Err(Exchange::Retry(why))) => last = why,
                Ok(Err(Exchange::Final(e))) => return Err(e),
                Ok(Ok(found)) => return Ok(found),
            }
            tracing::debug!(attempt, error = %last, "S3 attempt failed");
        }
        Err(S3Error::Unavailable(format!(
            "{method} s3://{bucket}/…: {last} ({MAX_ATTEMPTS} attempts)"
        )))
    }

    fn signed(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<hyper::Request<SdkBody>, S3Error> {
        let mut settings = s3_settings();
        // The payload hash travels in `x-amz-content-sha256`.
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let signer = super::Signer {
            identity: &self.identity,
            region: &self.region,
            service: "s3",
            settings,
        };
        signer
            .sign(method, url, headers, body)
            .map_err(S3Error::Other)
    }

    async fn exchange(
        &self,
        request: hyper::Request<SdkBody>,
        limit: usize,
    ) -> Result<Option<Object>, Exchange> {
        let response = self.http.send(request).await.map_err(|e| {
            match super::http1::is_tls_failure(&e) {
                Some(tls) => Exchange::Final(S3Error::Other(format!(
                    "TLS with the S3 endpoint failed: {tls} (check the endpoint and FIREFLY_EXTRA_CA_FILE)"
                ))),
                None => Exchange::Retry(format!("connection: {e}")),
            }
        })?;
        let status = response.status();
        let metadata: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                let name = k.as_str().strip_prefix(META)?;
                Some((name.to_owned(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        let header = |name: hyper::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header(hyper::header::CONTENT_TYPE);
        let cache_control = header(hyper::header::CACHE_CONTROL);
        let body = http_body_util::Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    Exchange::Final(S3Error::TooLarge(limit))
                } else {
                    Exchange::Retry(format!("reading the body: {e}"))
                }
            })?
            .to_bytes();
        if status.is_success() {
            return Ok(Some(Object {
                body,
                metadata,
                content_type,
                cache_control,
            }));
        }
        let text = String::from_utf8_lossy(&body);
        let code = xml_text(&text, "Code").unwrap_or_default();
        let message = xml_text(&text, "Message").unwrap_or_default();
        let why = format!("{} {code}: {message}", status.as_u16());
        match (status.as_u16(), code.as_str()) {
            // No body to read the code from (HEAD, or a proxy): missing is missing.
            (404, "NoSuchKey" | "NoSuchVersion" | "") => Ok(None),
            (500..=599, _) | (_, "SlowDown" | "RequestTimeout" | "Throttling") => {
                Err(Exchange::Retry(why))
            }
            _ => Err(Exchange::Final(S3Error::Other(why))),
        }
    }
}

/// S3's own signing rules: the path is encoded once (keys keep their `/`) and never
/// normalised.
fn s3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings
}

/// A write's answer: done, or the 404 that only a read may read as "missing".
fn found(answer: Option<Object>) -> Result<(), S3Error> {
    answer
        .map(|_| ())
        .ok_or_else(|| S3Error::Other("404 NoSuchKey".into()))
}

/// An attempt's end when it brings no answer: worth another attempt, or final.
enum Exchange {
    Retry(String),
    Final(S3Error),
}

/// A key as S3 wants it in a path: every byte but the unreserved ones and `/` encoded.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query value as SigV4 encodes it: every byte but the unreserved ones.
fn encode_query(value: &str) -> String {
    encode_key(value).replace('/', "%2F")
}

/// The text of every `<tag>…</tag>` of a document, in order (entities decoded).
pub fn xml_all(xml: &str, tag: &str) -> Vec<String> {
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(text) = xml_text(rest, tag) {
        out.push(text);
        match rest.find(&close) {
            Some(at) => rest = &rest[at + close.len()..],
            None => break,
        }
    }
    out
}

/// The text of the first `<tag>…</tag>` of an S3 error document (its `Code` and
/// `Message` are plain text; the five XML entities are decoded).
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(&xml[start..end]))
}

/// XML text with its five entities decoded.
pub fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Text made safe for an XML document: the five entities escaped.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::aws::testing::{CREDS, env_of, http};

    fn client(pairs: &[(&str, &str)]) -> Result<S3Client, String> {
        S3Client::from_env(&env_of(pairs), http())
    }

    /// A presigned URL's query, as `(name, value)` pairs sorted.
    fn query_of(url: &str) -> Vec<(String, String)> {
        let mut q: Vec<(String, String)> = url
            .split_once('?')
            .unwrap()
            .1
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        q.sort();
        q
    }

    #[test]
    fn a_presigned_get_is_the_one_aws_documents_to_the_signature() {
        // "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)",
        // Amazon S3 API Reference: its example, its signature.
        let identity = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        )
        .into();
        let url = crate::aws::Signer {
            identity: &identity,
            region: "us-east-1",
            service: "s3",
            settings: s3_settings(),
        }
        .presign_get(
            "https://examplebucket.s3.amazonaws.com/test.txt",
            std::time::UNIX_EPOCH + Duration::from_secs(1_369_353_600),
            Duration::from_secs(86_400),
        )
        .unwrap();
        assert!(url.starts_with("https://examplebucket.s3.amazonaws.com/test.txt?"));
        let expected = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            (
                "X-Amz-Credential",
                "AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request",
            ),
            ("X-Amz-Date", "20130524T000000Z"),
            ("X-Amz-Expires", "86400"),
            (
                "X-Amz-Signature",
                "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
            ),
            ("X-Amz-SignedHeaders", "host"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(query_of(&url), expected);
    }

    #[test]
    fn a_presigned_get_carries_the_session_token_and_fireflys_expiry() {
        let mut pairs = CREDS.to_vec();
        pairs.push(("AWS_SESSION_TOKEN", "IQoJb3JpZ2lu/+="));
        let c = client(&pairs).unwrap();
        let url = c
            .presign_get(
                "firefly-firmware",
                "processed/a b.zip",
                std::time::SystemTime::now(),
                Duration::from_secs(900),
            )
            .unwrap();
        assert!(
            url.starts_with(
                "https://firefly-firmware.s3.eu-west-1.amazonaws.com/processed/a%20b.zip?"
            ),
            "{url}"
        );
        let q = query_of(&url);
        let value = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(value("X-Amz-Expires"), Some("900"));
        assert_eq!(value("X-Amz-Security-Token"), Some("IQoJb3JpZ2lu%2F%2B%3D"));
        assert_eq!(value("X-Amz-Signature").map(str::len), Some(64));
    }

    #[test]
    fn urls_are_virtual_hosted_on_aws_and_path_style_elsewhere() {
        let aws = client(&CREDS).unwrap();
        assert_eq!(
            aws.url("backups", "6f1c-ab/x y+z"),
            "https://backups.s3.eu-west-1.amazonaws.com/6f1c-ab/x%20y%2Bz"
        );
        assert_eq!(
            aws.url("my.backups", "k"),
            "https://s3.eu-west-1.amazonaws.com/my.backups/k"
        );
        let mut local = CREDS.to_vec();
        local.push(("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000/"));
        assert_eq!(
            client(&local).unwrap().url("b", "k"),
            "http://127.0.0.1:5000/b/k"
        );
        let mut remote = CREDS.to_vec();
        remote.push(("AWS_ENDPOINT_URL_S3", "http://s3.internal:5000"));
        assert!(client(&remote).unwrap_err().contains("plaintext"));
    }

    #[test]
    fn credentials_are_required_and_never_printed() {
        let err = client(&[("AWS_REGION", "eu-west-1")]).unwrap_err();
        assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
        let c = client(&CREDS).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("AKID"),
            "{shown}"
        );
    }

    #[test]
    fn requests_are_signed_for_s3_with_the_payload_hash() {
        let c = client(&CREDS).unwrap();
        let url = c.url("b", "k");
        let Ok(r) = c.signed(
            "PUT",
            &url,
            &[("x-amz-meta-etag".into(), "abc".into())],
            Bytes::from_static(b"FFCE"),
        ) else {
            panic!("not signed")
        };
        let auth = r.headers()["authorization"].to_str().unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert!(auth.contains("/eu-west-1/s3/aws4_request"), "{auth}");
        assert!(auth.contains("x-amz-meta-etag"), "{auth}");
        assert_eq!(
            r.headers()["x-amz-content-sha256"],
            sha256_hex(b"FFCE").as_str()
        );
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        ring::digest::digest(&ring::digest::SHA256, bytes)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn error_documents_give_their_code_and_message() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist &amp; never did.</Message><Key>k</Key></Error>"#;
        assert_eq!(xml_text(xml, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(
            xml_text(xml, "Message").as_deref(),
            Some("The specified key does not exist & never did.")
        );
        assert_eq!(xml_text(xml, "Nope"), None);
        let listing = "<ListBucketResult><Contents><Key>a/1&amp;2</Key></Contents><Contents><Key>a/3</Key></Contents><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(xml_all(listing, "Key"), ["a/1&2", "a/3"]);
        assert!(xml_all(listing, "Nope").is_empty());
        assert_eq!(encode_query("revoked/a b"), "revoked%2Fa%20b");
        assert_eq!(xml_text("<Code>unterminated", "Code"), None);
    }
}
