//! One signed JSON-speaking AWS service over the process's one transport: what Cognito's
//! JSON 1.1, and AppConfig's and Lambda's REST-JSON APIs share (their requests differ only
//! in method, path, headers and body), and CloudFront's REST-XML (its errors read from
//! `<Code>`, `<Message>`). Throttling, 5xx and broken connections are retried
//! as the SDK's standard mode retries them; any other error is the service's answer, with
//! its code (`x-amzn-ErrorType`, or `__type`/`code` in the body) for the caller to read.

use super::http1::Http1Client;
use aws_sigv4::http_request::SigningSettings;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::time::Duration;

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
const MAX_ATTEMPTS: u32 = 3;
/// The largest answer read (a page of users or of functions is far smaller).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Why a call failed. Texts are for operators; none reaches a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Throttled, unreachable, 5xx, timed out: later may work.
    #[error("{service} unavailable: {why}")]
    Unavailable { service: &'static str, why: String },
    /// The service's own refusal: `code` is its error's name (`ConflictException`).
    #[error("{service} refused ({status} {code}): {message}")]
    Refused {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// A request that could not be made, or an answer that makes no sense.
    #[error("{service}: {why}")]
    Other { service: &'static str, why: String },
}

impl ServiceError {
    /// The service's error name, when it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<ServiceError> for crate::error::ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable { .. } => Self::unavailable(e.to_string()),
            _ => Self::internal(e.to_string()),
        }
    }
}

/// A 2xx answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as a JSON object (`{}` when empty).
    pub fn json(&self, service: &'static str) -> Result<Value, ServiceError> {
        if self.body.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| ServiceError::Other {
                service,
                why: format!("{} with a body that is not a JSON object", self.status),
            })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One service's endpoint and signing scope, with the role's credentials.
#[derive(Clone)]
pub struct Service {
    http: Http1Client,
    /// `https://host` (or a loopback stand-in), without a trailing slash.
    pub base: String,
    region: String,
    /// The signing name (`cognito-idp`, `appconfig`, `lambda`).
    pub name: &'static str,
    identity: Identity,
    attempt_timeout: Duration,
}

impl std::fmt::Debug for Service {
    // The identity holds the secret key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// From the Lambda environment: the role's credentials, the region, and `endpoint_var`
    /// (or `AWS_ENDPOINT_URL`) for a local stand-in; else `https://<host>.<region>.amazonaws.com`
    /// (`.com.cn` in China).
    pub fn from_env(
        env: &crate::deploy::Env<'_>,
        http: Http1Client,
        name: &'static str,
        host: &str,
        endpoint_var: &str,
    ) -> Result<Self, String> {
        let region = super::region(env)?;
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("not a region: {region:?}"));
        }
        let identity = super::identity(env)?;
        let base = match super::endpoint_override(env, endpoint_var)? {
            Some(url) => url,
            None if region.starts_with("cn-") => {
                format!("https://{host}.{region}.amazonaws.com.cn")
            }
            None => format!("https://{host}.{region}.amazonaws.com"),
        };
        Ok(Self::new(http, base, region, name, identity))
    }

    /// A service at a fixed `base` and signing `region` (a global one: CloudFront).
    pub fn new(
        http: Http1Client,
        base: String,
        region: String,
        name: &'static str,
        identity: Identity,
    ) -> Self {
        Self {
            http,
            base,
            region,
            name,
            identity,
            attempt_timeout: ATTEMPT_TIMEOUT,
        }
    }

    /// Each attempt given `t` (an API answer's 2 s by default).
    pub fn with_attempt_timeout(mut self, t: Duration) -> Self {
        self.attempt_timeout = t;
        self
    }

    /// `method path_and_query` with `headers` and `body`, signed, retried when that may
    /// help; the 2xx answer, or why there is none.
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Reply, ServiceError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << (2 * (attempt - 1)))).await;
            }
            let signer = super::Signer {
                identity: &self.identity,
                region: &self.region,
                service: self.name,
                settings: SigningSettings::default(),
            };
            let request = signer
                .sign(method, &url, headers, body.clone())
                .map_err(|why| ServiceError::Other {
                    service: self.name,
                    why,
                })?;
            match tokio::time::timeout(self.attempt_timeout, self.exchange(request)).await {
                Err(_) => last = format!("timed out after {:?}", self.attempt_timeout),
                Ok(Err(Exchange::Retry(why))) => last = why,
                Ok(Err(Exchange::Final(e))) => return Err(e),
                Ok(Ok(reply)) => return Ok(reply),
            }
            tracing::debug!(attempt, service = self.name, error = %last, "AWS attempt failed");
        }
        Err(ServiceError::Unavailable {
            service: self.name,
            why: format!("{method} {path_and_query}: {last} ({MAX_ATTEMPTS} attempts)"),
        })
    }

    /// [`Service::send`] of a JSON body (or none), read as a JSON object.
    pub async fn json(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<Value, ServiceError> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        self.send(method, path_and_query, headers, body)
            .await?
            .json(self.name)
    }

    async fn exchange(
        &self,
        request: hyper::Request<aws_smithy_types::body::SdkBody>,
    ) -> Result<Reply, Exchange> {
        let service = self.name;
        let response =
            self.http
                .send(request)
                .await
                .map_err(|e| match super::http1::is_tls_failure(&e) {
                    Some(tls) => Exchange::Final(ServiceError::Other {
                        service,
                        why: format!("TLS with the endpoint failed: {tls}"),
                    }),
                    None => Exchange::Retry(format!("connection: {e}")),
                })?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| Exchange::Retry(format!("reading the body: {e}")))?
            .to_bytes();
        if (200..300).contains(&status) {
            return Ok(Reply {
                status,
                headers: parts.headers,
                body,
            });
        }
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
        // The REST-XML services (CloudFront) write `<Error><Code>` and `<Message>`.
        let xml = |k: &str| super::s3::xml_text(&String::from_utf8_lossy(&body), k);
        let code = error_code(
            parts
                .headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok()),
        )
        .or_else(|| error_code(text("__type").or(text("code")).or(text("Code")).as_deref()))
        .or_else(|| error_code(xml("Code").as_deref()))
        .unwrap_or_default();
        let message = text("message")
            .or(text("Message"))
            .or_else(|| xml("Message"))
            .unwrap_or_default();
        let retry = status >= 500
            || matches!(
                code.as_str(),
                "TooManyRequestsException"
                    | "ThrottlingException"
                    | "Throttling"
                    | "InternalErrorException"
                    | "InternalServerException"
                    | "ServiceException"
            );
        if retry {
            return Err(Exchange::Retry(format!("{status} {code}: {message}")));
        }
        Err(Exchange::Final(ServiceError::Refused {
            service,
            status,
            code,
            message,
        }))
    }
}

enum Exchange {
    Retry(String),
    Final(ServiceError),
}

/// The error's name without its namespace (`com.amazonaws...#Name`) or its suffix
/// (`Name:http://...`), as the JSON protocols write it.
pub fn error_code(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    let name = raw.rsplit('#').next().unwrap_or(raw);
    let name = name.split(':').next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// A path segment, percent-encoded (an ID or a name AWS gave, never trusted to be plain).
pub fn segment(text: &str) -> String {
    if text == "." || text == ".." {
        return text.replace('.', "%2E");
    }
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{CREDS, env_of, http};

    #[test]
    fn the_regional_endpoint_or_an_override_checked() {
        let s = Service::from_env(&env_of(&CREDS), http(), "appconfig", "appconfig", "X").unwrap();
        assert_eq!(s.base, "https://appconfig.eu-west-1.amazonaws.com");
        assert!(!format!("{s:?}").contains("AKID"));
        let mut local = CREDS.to_vec();
        local.push(("X", "http://127.0.0.1:5000/"));
        let s = Service::from_env(&env_of(&local), http(), "lambda", "lambda", "X").unwrap();
        assert_eq!(s.base, "http://127.0.0.1:5000");
        let mut remote = CREDS.to_vec();
        remote.push(("AWS_ENDPOINT_URL", "http://idp.internal:5000"));
        let err = Service::from_env(&env_of(&remote), http(), "x", "x", "X").unwrap_err();
        assert!(err.contains("plaintext"), "{err}");
        let mut odd = CREDS.to_vec();
        odd[0] = ("AWS_REGION", "eu-west-1.evil.example/");
        assert!(Service::from_env(&env_of(&odd), http(), "x", "x", "X").is_err());
        let mut china = CREDS.to_vec();
        china[0] = ("AWS_REGION", "cn-north-1");
        let s = Service::from_env(&env_of(&china), http(), "lambda", "lambda", "X").unwrap();
        assert_eq!(s.base, "https://lambda.cn-north-1.amazonaws.com.cn");
    }

    #[test]
    fn error_names_lose_their_namespace_and_suffix() {
        assert_eq!(
            error_code(Some("com.amazonaws.cognito#UserNotFoundException")).as_deref(),
            Some("UserNotFoundException")
        );
        assert_eq!(
            error_code(Some("TooManyRequestsException:http://internal.amazon.com/")).as_deref(),
            Some("TooManyRequestsException")
        );
        assert_eq!(error_code(Some("")), None);
        assert_eq!(error_code(None), None);
    }

    #[test]
    fn a_segment_cannot_leave_its_place_in_a_path() {
        assert_eq!(segment("abc123"), "abc123");
        assert_eq!(segment("../x?y=1#z"), "..%2Fx%3Fy%3D1%23z");
        assert_eq!(segment("a b"), "a%20b");
        assert_eq!(segment(".."), "%2E%2E");
    }
}
