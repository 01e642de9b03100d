//! Every failure a request can meet, and the one mapping from failure to HTTP response.
//!
//! Responses are RFC 9457 problem details. The `log` texts of internal failures go to the
//! log line only; the caller sees a fixed title and detail, never internal error text.

use crate::response::Response;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use std::fmt;

/// A start-up failure: the process logs it and exits, and Lambda reports the init error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

/// Where problem `type` URIs live: one `https:` URI per problem under Firefly's API domain,
/// stable for clients to branch on (RFC 9457 §3.1.1; an unregistered `urn:` namespace is
/// not a URI anyone can rely on). README lists every one.
pub const PROBLEM_BASE: &str = "https://api.firefly.dev/problems/";

/// A request's failure, as a handler or the dispatcher reports it.
#[derive(Debug)]
pub enum ApiError {
    /// The request is malformed; `detail` is the public explanation (never echoes input).
    BadRequest { detail: &'static str },
    /// No authenticated caller (no JWT authorizer context, or no `sub` claim).
    Unauthenticated { reason: &'static str },
    /// No such route for this function.
    NotFound,
    /// The route exists; what it names does not (for this caller). `detail` is public.
    ResourceNotFound { detail: &'static str },
    /// The path exists but not with this method; `allow` lists the methods that do.
    MethodNotAllowed { allow: String },
    /// The route is switched off by configuration.
    Disabled,
    /// A dependency is unavailable (throttled, unreachable, timed out, retries exhausted).
    Unavailable { log: String },
    /// Anything unexpected. `log` explains it to an operator.
    Internal { log: String },
}

impl ApiError {
    pub fn unavailable(log: impl Into<String>) -> Self {
        Self::Unavailable { log: log.into() }
    }

    pub fn internal(log: impl Into<String>) -> Self {
        Self::Internal { log: log.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::NotFound | Self::ResourceNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Disabled | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// `(type name under PROBLEM_BASE, title, detail)` as the caller sees them.
    fn public(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::BadRequest { detail } => ("bad-request", "Bad Request", detail),
            Self::Unauthenticated { .. } => (
                "unauthenticated",
                "Unauthenticated",
                "This route needs a signed-in user: send a valid Cognito ID token.",
            ),
            Self::NotFound => ("not-found", "Not Found", "No route matches this request."),
            Self::ResourceNotFound { detail } => ("not-found", "Not Found", detail),
            Self::MethodNotAllowed { .. } => (
                "method-not-allowed",
                "Method Not Allowed",
                "This path does not accept this method; see the Allow header.",
            ),
            Self::Disabled => (
                "temporarily-disabled",
                "Service Unavailable",
                "This operation is temporarily disabled. Try again later.",
            ),
            Self::Unavailable { .. } => (
                "unavailable",
                "Service Unavailable",
                "A service this operation depends on is unavailable. Try again shortly.",
            ),
            Self::Internal { .. } => (
                "internal",
                "Internal Server Error",
                "Something went wrong on our side. Quote the request id when reporting it.",
            ),
        }
    }

    /// The problem+json response for this error. `request_id` lets a caller's report be
    /// matched with the log line.
    pub fn into_response(self, request_id: &str) -> Response {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Problem<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            title: &'a str,
            status: u16,
            detail: &'a str,
            request_id: &'a str,
        }
        let (name, title, detail) = self.public();
        let kind = format!("{PROBLEM_BASE}{name}");
        let status = self.status();
        let body = serde_json::to_string(&Problem {
            kind: &kind,
            title,
            status: status.as_u16(),
            detail,
            request_id,
        })
        .unwrap_or_default();
        let mut response = Response::with_body(status, "application/problem+json", body);
        match &self {
            Self::MethodNotAllowed { allow } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    response.headers.insert(header::ALLOW, v);
                }
            }
            // RFC 9110 §15.5.2: a 401 names the scheme that would work.
            Self::Unauthenticated { .. } => {
                response
                    .headers
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            // A dependency blip clears in a second; a switched-off route stays off for a while.
            Self::Unavailable { .. } => {
                response
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::Disabled => {
                response
                    .headers
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            }
            _ => {}
        }
        response
    }
}

impl fmt::Display for ApiError {
    /// The operator's view: what went wrong, with the internal detail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest { detail } => write!(f, "bad request: {detail}"),
            Self::Unauthenticated { reason } => write!(f, "unauthenticated: {reason}"),
            Self::NotFound => f.write_str("no route matches"),
            Self::ResourceNotFound { detail } => write!(f, "not found: {detail}"),
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed (allow: {allow})"),
            Self::Disabled => f.write_str("route disabled by configuration"),
            Self::Unavailable { log } => write!(f, "dependency unavailable: {log}"),
            Self::Internal { log } => write!(f, "internal error: {log}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn every_error_is_problem_json_with_its_status_and_request_id() {
        let cases = [
            (ApiError::BadRequest { detail: "bad" }, 400),
            (ApiError::Unauthenticated { reason: "x" }, 401),
            (ApiError::ResourceNotFound { detail: "none" }, 404),
            (ApiError::NotFound, 404),
            (
                ApiError::MethodNotAllowed {
                    allow: "POST".into(),
                },
                405,
            ),
            (ApiError::Disabled, 503),
            (ApiError::unavailable("throttled"), 503),
            (ApiError::internal("boom"), 500),
        ];
        for (err, status) in cases {
            let r = err.into_response("req-1");
            assert_eq!(r.status.as_u16(), status);
            assert_eq!(r.headers["content-type"], "application/problem+json");
            assert_eq!(r.headers["cache-control"], "no-store");
            let b = body(&r);
            assert_eq!(b["status"], status);
            assert_eq!(b["requestId"], "req-1");
            for field in ["type", "title", "detail"] {
                assert!(b[field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
            }
        }
    }

    #[test]
    fn internal_text_never_reaches_the_caller() {
        for err in [
            ApiError::internal("secret table arn:aws:dynamodb:xyz"),
            ApiError::unavailable("secret table arn:aws:dynamodb:xyz"),
        ] {
            let r = err.into_response("r");
            assert!(!r.body.contains("secret"), "{}", r.body);
            assert!(!format!("{:?}", r.headers).contains("secret"));
        }
    }

    #[test]
    fn problem_types_are_https_uris_under_one_base_and_401_names_bearer() {
        let r = ApiError::Unauthenticated { reason: "x" }.into_response("r");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert_eq!(
            body(&r)["type"],
            "https://api.firefly.dev/problems/unauthenticated"
        );
        for err in [
            ApiError::NotFound,
            ApiError::Disabled,
            ApiError::internal("x"),
        ] {
            let r = err.into_response("r");
            assert!(!r.headers.contains_key("www-authenticate"));
            let t = body(&r)["type"].as_str().unwrap().to_owned();
            assert!(t.starts_with(PROBLEM_BASE), "{t}");
        }
    }

    #[test]
    fn method_not_allowed_sets_allow_and_unavailable_sets_retry_after() {
        let r = ApiError::MethodNotAllowed {
            allow: "GET, POST".into(),
        }
        .into_response("r");
        assert_eq!(r.headers["allow"], "GET, POST");
        let r = ApiError::unavailable("x").into_response("r");
        assert_eq!(r.headers["retry-after"], "1");
        let r = ApiError::Disabled.into_response("r");
        assert_eq!(r.headers["retry-after"], "60");
    }

    #[test]
    fn request_id_is_json_escaped() {
        let r = ApiError::NotFound.into_response("a\"b");
        assert_eq!(body(&r)["requestId"], "a\"b");
    }
}
