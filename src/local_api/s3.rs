//! `firefly-local serve`'s S3 endpoint: where a laptop's S3 writes go, so that S3's
//! notifications reach the S3 functions as they do on AWS.
//!
//! moto's S3 stores a bucket's notification but delivers only to its own Docker-run
//! Lambda, and sends nothing at all for a delete in a versioned bucket (FireFly's firmware
//! bucket is one). So the writes themselves are watched: every request to this endpoint
//! goes to the store behind it (the memory bucket of `--store memory`, or moto's S3,
//! unchanged), and each write it accepts (a put, a copy, a completed multipart upload, a
//! delete, a batch delete) becomes the event S3 would send: its version id, a sequencer,
//! the key form-encoded. The functions' own S3 calls come here too, so their moves are
//! events as well. Each event goes to every S3 function whose declared notification
//! (src/routes.rs) matches its bucket, event and key, one at a time, retried twice on
//! failure, as Lambda retries an asynchronous invocation (docs/local.md).

use crate::app::{App, Invocation};
use crate::aws::s3::{xml_all, xml_escape};
use crate::firmware::bucket::MemoryBucket;
use crate::route::{Route, Trigger};
use crate::s3_event::S3Event;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use lambda_http::http::{self, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

/// The largest request body accepted (a firmware ZIP, a backup).
const MAX_BODY: usize = 64 << 20;

/// What is behind the endpoint.
pub enum Store {
    /// `--store memory`: the one in-memory bucket (FireFly's firmware bucket).
    Memory(Arc<MemoryBucket>),
    /// An S3 server on this machine (moto's), at this base URL.
    Upstream(String),
}

/// Presigned URLs of the memory bucket, made and checked here as S3 makes and checks its
/// own: the URL names the object and when it expires, and carries an HMAC-SHA256 of both
/// under a key of this run's, so that a URL works until its expiry, for that object and
/// that method only (`X-Firefly-Expires`, `X-Firefly-Signature`: not SigV4, which needs
/// credentials a laptop's memory store has none of).
pub struct Presigner {
    key: ring::hmac::Key,
    base: String,
}

impl Presigner {
    /// Signs URLs of the endpoint at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Result<Self, String> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            .map_err(|_| "the system random number generator failed".to_owned())?;
        Ok(Self {
            key,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    fn signature(&self, bucket: &str, key: &str, expires: u64) -> String {
        let tag = ring::hmac::sign(
            &self.key,
            format!("GET\n/{bucket}/{key}\n{expires}").as_bytes(),
        );
        crate::firmware::archive::hex(tag.as_ref())
    }

    /// A URL anyone may `GET` `bucket/key` at until `expires` after `now`.
    pub fn url(
        &self,
        bucket: &str,
        key: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> String {
        let until = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(expires)
            .as_secs();
        format!(
            "{}/{bucket}/{}?X-Firefly-Expires={until}&X-Firefly-Signature={}",
            self.base,
            crate::aws::s3::encode_key(key),
            self.signature(bucket, key, until)
        )
    }

    /// Whether a request that carries a presigned URL's query may have the object: its
    /// method, object, expiry and signature checked (S3's answers when not).
    fn check(
        &self,
        method: &Method,
        bucket: &str,
        key: &str,
        query: &str,
        now: std::time::SystemTime,
    ) -> Result<(), &'static str> {
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        };
        let denied = |why: &'static str| Err(why);
        let (Some(expires), Some(signature)) =
            (param("X-Firefly-Expires"), param("X-Firefly-Signature"))
        else {
            return denied(
                "Query-string authentication requires the Signature and Expires parameters",
            );
        };
        let Ok(expires) = expires.parse::<u64>() else {
            return denied("Invalid date (should be seconds since epoch)");
        };
        let tag = (0..signature.len() / 2)
            .map(|i| u8::from_str_radix(signature.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>();
        let message = format!("GET\n/{bucket}/{key}\n{expires}");
        let genuine = method == Method::GET
            && tag.is_ok_and(|t| ring::hmac::verify(&self.key, message.as_bytes(), &t).is_ok());
        if !genuine {
            return denied(
                "The request signature we calculated does not match the signature you provided.",
            );
        }
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if now > expires {
            return denied("Request has expired");
        }
        Ok(())
    }
}

/// The endpoint.
pub struct Endpoint {
    presigner: Option<Arc<Presigner>>,
    store: Store,
    events: mpsc::UnboundedSender<S3Event>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    sequencer: AtomicU64,
}

/// Where each bucket's events go: `(bucket name, function, its entry)`.
pub type Subscriptions = Vec<(String, &'static str, &'static Route)>;

/// The S3 functions of `routes` by the bucket each is notified of (its name read with
/// `bucket_name`, from the environment the functions see).
pub fn subscriptions(
    routes: &'static [Route],
    bucket_name: impl Fn(&crate::deploy::Resource) -> Option<String>,
) -> Subscriptions {
    routes
        .iter()
        .filter_map(|r| match r.trigger() {
            Trigger::S3(n) => bucket_name(n.bucket).map(|b| (b, r.function, r)),
            Trigger::Api | Trigger::Cognito(_) => None,
        })
        .collect()
}

/// Delivers events to the functions they are for, in order, until the senders are gone.
pub async fn deliver(
    app: Arc<App>,
    subscriptions: Subscriptions,
    mut events: mpsc::UnboundedReceiver<S3Event>,
) {
    let mut n = 0u64;
    while let Some(event) = events.recv().await {
        for record in &event.records {
            let notice = crate::s3_event::Notice::from(record);
            for (bucket, function, route) in &subscriptions {
                let Trigger::S3(notification) = route.trigger() else {
                    continue;
                };
                if *bucket != notice.bucket || !notification.matches(&notice.event, &notice.key) {
                    continue;
                }
                let one = S3Event {
                    records: vec![record.clone()],
                };
                // Lambda's asynchronous invocation: the first attempt and two retries.
                for attempt in 1..=3 {
                    n += 1;
                    let request_id = format!("local-s3-{n}");
                    let invocation = Invocation {
                        request_id: &request_id,
                        deadline: Some(
                            std::time::SystemTime::now()
                                + std::time::Duration::from_secs(u64::from(
                                    route.kind().timeout_s(),
                                )),
                        ),
                        trace_id: None,
                    };
                    match app.handle_s3(function, &invocation, &one).await {
                        Ok(()) => break,
                        Err(e) if attempt < 3 => {
                            tracing::warn!(function, attempt, error = %e, "S3 event failed: retrying, as Lambda would");
                        }
                        Err(e) => {
                            tracing::error!(function, error = %e, "S3 event failed three times: dropped, as Lambda drops it");
                        }
                    }
                }
            }
        }
    }
}

impl Endpoint {
    pub fn new(store: Store, events: mpsc::UnboundedSender<S3Event>) -> Self {
        Self {
            presigner: None,
            store,
            events,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
            sequencer: AtomicU64::new(0),
        }
    }

    /// Checks the presigned URLs of the memory bucket with `presigner` (its maker).
    pub fn with_presigner(mut self, presigner: Arc<Presigner>) -> Self {
        self.presigner = Some(presigner);
        self
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        super::serve_stand_in(self, listener).await
    }
}

impl super::Answers for Endpoint {
    async fn answer(&self, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return error(StatusCode::BAD_REQUEST, "IncompleteBody", &e.to_string()),
        };
        let (bucket, key) = split_path(parts.uri.path());
        let query = parts.uri.query().unwrap_or("");
        let presigned = query
            .split('&')
            .any(|p| p.starts_with("X-Firefly-Signature=") || p.starts_with("X-Firefly-Expires="));
        if let (true, Some(presigner)) = (presigned, &self.presigner)
            && let Err(why) = presigner.check(
                &parts.method,
                &bucket,
                &key,
                query,
                std::time::SystemTime::now(),
            )
        {
            tracing::warn!(bucket, key, why, "a presigned URL refused");
            return error(StatusCode::FORBIDDEN, "AccessDenied", why);
        }
        let response = match &self.store {
            Store::Memory(memory) => memory_answer(memory, &parts, &bucket, &key, &body),
            Store::Upstream(base) => self.forward(base, &parts, body.clone()).await,
        };
        if response.status().is_success() {
            self.announce(&parts, &bucket, &key, query, &body, response.headers());
        }
        response
    }
}

impl Endpoint {
    async fn forward(
        &self,
        base: &str,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> http::Response<Full<Bytes>> {
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut builder = http::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{base}{path}"));
        for (k, v) in &parts.headers {
            if k != http::header::HOST {
                builder = builder.header(k, v);
            }
        }
        let Ok(request) = builder.body(Full::new(body)) else {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "unreadable request",
            );
        };
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_GATEWAY,
                    "ServiceUnavailable",
                    &e.to_string(),
                );
            }
        };
        let (parts, body) = response.into_parts();
        match body.collect().await {
            Ok(b) => http::Response::from_parts(parts, Full::new(b.to_bytes())),
            Err(e) => error(
                StatusCode::BAD_GATEWAY,
                "ServiceUnavailable",
                &e.to_string(),
            ),
        }
    }

    /// The event S3 would send for an accepted write, if it was one.
    fn announce(
        &self,
        parts: &http::request::Parts,
        bucket: &str,
        key: &str,
        query: &str,
        body: &Bytes,
        answer: &http::HeaderMap,
    ) {
        if bucket.is_empty() {
            return;
        }
        let has = |name: &str| {
            query
                .split('&')
                .any(|p| p == name || p.starts_with(&format!("{name}=")))
        };
        let version = answer
            .get("x-amz-version-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut records: Vec<(&str, String, Option<String>, Option<u64>)> = Vec::new();
        match parts.method {
            Method::PUT
                if !key.is_empty() && !has("partNumber") && !has("tagging") && !has("acl") =>
            {
                let event = if parts.headers.contains_key("x-amz-copy-source") {
                    "ObjectCreated:Copy"
                } else {
                    "ObjectCreated:Put"
                };
                records.push((event, key.to_owned(), version, Some(body.len() as u64)));
            }
            Method::POST if !key.is_empty() && has("uploadId") => {
                records.push((
                    "ObjectCreated:CompleteMultipartUpload",
                    key.to_owned(),
                    version,
                    None,
                ));
            }
            Method::DELETE if !key.is_empty() && !has("uploadId") && !has("tagging") => {
                let marker = answer
                    .get("x-amz-delete-marker")
                    .is_some_and(|v| v.as_bytes() == b"true");
                let event = if marker {
                    "ObjectRemoved:DeleteMarkerCreated"
                } else {
                    "ObjectRemoved:Delete"
                };
                records.push((event, key.to_owned(), version, None));
            }
            Method::POST if key.is_empty() && has("delete") => {
                // DeleteObjects: every <Key> of the request (quiet or not, S3 notifies each).
                let text = String::from_utf8_lossy(body);
                for k in xml_all(&text, "Key") {
                    records.push(("ObjectRemoved:Delete", k, None, None));
                }
            }
            _ => {}
        }
        for (event, key, version, size) in records {
            let n = self.sequencer.fetch_add(1, Ordering::Relaxed) + 1;
            let _ = self.events.send(S3Event::one(
                event,
                bucket,
                &key,
                version.as_deref(),
                &format!("{n:016X}"),
                size,
            ));
        }
    }
}

/// `/bucket/key...` → (bucket, key), the key percent-decoded (path-style only).
fn split_path(path: &str) -> (String, String) {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    (percent_decode(bucket), percent_decode(key))
}

fn percent_decode(s: &str) -> String {
    // `+` is a plus in a path: only %XX is decoded.
    crate::s3_event::unquote_plus(&s.replace('+', "%2B"))
}

fn error(status: StatusCode, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
        xml_escape(message)
    );
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn ok(body: Bytes) -> http::Response<Full<Bytes>> {
    http::Response::new(Full::new(body))
}

/// The memory bucket's S3: the object calls a firmware upload and the functions make
/// (put, copy, get, head, delete, list), path-style, unsigned requests accepted.
fn memory_answer(
    memory: &MemoryBucket,
    parts: &http::request::Parts,
    bucket: &str,
    key: &str,
    body: &Bytes,
) -> http::Response<Full<Bytes>> {
    if bucket != memory.name() {
        return error(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            &format!("the memory store has one bucket, {}", memory.name()),
        );
    }
    let query = parts.uri.query().unwrap_or("");
    let param = |name: &str| {
        query.split('&').find_map(|p| {
            p.strip_prefix(&format!("{name}="))
                .map(crate::s3_event::unquote_plus)
        })
    };
    let version = param("versionId");
    let with_version = |mut r: http::Response<Full<Bytes>>, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert("x-amz-version-id", v);
        }
        r
    };
    match (&parts.method, key.is_empty()) {
        (&Method::PUT, true) => ok(Bytes::new()),
        (&Method::GET, true) => {
            let prefix = param("prefix").unwrap_or_default();
            let mut xml = String::from(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><IsTruncated>false</IsTruncated>",
            );
            for k in memory.keys(&prefix) {
                let size = memory.object(&k).map_or(0, |(b, _)| b.len());
                xml.push_str(&format!(
                    "<Contents><Key>{}</Key><Size>{size}</Size></Contents>",
                    xml_escape(&k)
                ));
            }
            xml.push_str("</ListBucketResult>");
            ok(Bytes::from(xml))
        }
        (&Method::PUT, false) => match parts.headers.get("x-amz-copy-source") {
            Some(source) => {
                let source = source.to_str().unwrap_or("");
                let (path, query) = source.split_once('?').unwrap_or((source, ""));
                let (_, from) = split_path(&format!("/{}", path.trim_start_matches('/')));
                let from_version = query
                    .strip_prefix("versionId=")
                    .map(crate::s3_event::unquote_plus);
                match memory.object(&from) {
                    Some((b, v)) if from_version.as_deref().is_none_or(|fv| fv == v) => {
                        let version = memory.put_quietly(key, b);
                        with_version(
                            ok(Bytes::from(
                                "<CopyObjectResult><ETag>\"0\"</ETag></CopyObjectResult>",
                            )),
                            &version,
                        )
                    }
                    _ => error(
                        StatusCode::NOT_FOUND,
                        "NoSuchKey",
                        "The specified key does not exist.",
                    ),
                }
            }
            None => {
                let version = memory.put_quietly(key, body.clone());
                with_version(ok(Bytes::new()), &version)
            }
        },
        (&Method::GET | &Method::HEAD, false) => match memory.object(key) {
            Some((b, v)) if version.as_deref().is_none_or(|want| want == v) => {
                let mut r = with_version(
                    ok(if parts.method == Method::HEAD {
                        Bytes::new()
                    } else {
                        b.clone()
                    }),
                    &v,
                );
                if let Ok(len) = HeaderValue::from_str(&b.len().to_string()) {
                    r.headers_mut().insert(http::header::CONTENT_LENGTH, len);
                }
                r
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "NoSuchKey",
                "The specified key does not exist.",
            ),
        },
        (&Method::DELETE, false) => {
            memory.remove_quietly(key, version.as_deref());
            let mut r = ok(Bytes::new());
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        _ => error(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "the memory store's S3 serves put, copy, get, head, delete and list",
        ),
    }
}

/// An unsigned `PutObject` to a local S3 endpoint (`firefly-local firmware upload`; the
/// endpoint and moto accept it).
pub async fn put(url: &str, body: Vec<u8>) -> Result<(), String> {
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let request = http::Request::put(url)
        .header(http::header::CONTENT_TYPE, "application/zip")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{url}: {e} (is `firefly-local serve` running?)"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    Err(format!("{url} answered {status}: {text}"))
}

#[cfg(test)]
mod presign_tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_presigned_url_works_for_its_object_until_it_expires_and_for_nothing_else() {
        let p = Presigner::new("http://127.0.0.1:3001/").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let url = p.url("fw", "processed/a b.zip", now, Duration::from_secs(900));
        assert!(url.starts_with("http://127.0.0.1:3001/fw/processed/a%20b.zip?X-Firefly-Expires=1800000900&X-Firefly-Signature="), "{url}");
        let query = url.split_once('?').unwrap().1;
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert!(
            p.check(
                &Method::GET,
                "fw",
                "processed/a b.zip",
                query,
                at(1_800_000_900)
            )
            .is_ok()
        );
        let refused = |r: Result<(), &str>| if r.is_err() { 403 } else { 200 };
        assert_eq!(
            refused(p.check(
                &Method::GET,
                "fw",
                "processed/a b.zip",
                query,
                at(1_800_000_901)
            )),
            403
        );
        assert_eq!(
            refused(p.check(
                &Method::GET,
                "fw",
                "processed/other.zip",
                query,
                at(1_800_000_000)
            )),
            403
        );
        assert_eq!(
            refused(p.check(
                &Method::DELETE,
                "fw",
                "processed/a b.zip",
                query,
                at(1_800_000_000)
            )),
            403
        );
        let forged = query.replace("1800000900", "1900000000");
        assert_eq!(
            refused(p.check(
                &Method::GET,
                "fw",
                "processed/a b.zip",
                &forged,
                at(1_800_000_000)
            )),
            403
        );
        // Another run's key: its URLs are not this run's.
        let other = Presigner::new("http://127.0.0.1:3001").unwrap();
        assert_eq!(
            refused(other.check(
                &Method::GET,
                "fw",
                "processed/a b.zip",
                query,
                at(1_800_000_000)
            )),
            403
        );
    }
}
