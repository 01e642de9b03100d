//! Every failure a request can meet, and the one mapping from failure to HTTP response.
//!
//! Responses are FireFly-Cloud's: `{"message": "<text>"}` with `Content-Type:
//! application/json`, the texts its Python functions answer (the console shows
//! `body.message`, the firmware logs it). The `log` texts of internal failures go to the log
//! line only; the caller sees a fixed message, never internal error text.

use crate::response::Response;
use lambda_http::http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// A start-up failure: the process logs it and exits, and Lambda reports the init error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(pub String);

/// What every 500 says, as FireFly's functions and API Gateway say it.
pub const INTERNAL_MESSAGE: &str = "Internal server error";

/// A request's failure, as a handler or the dispatcher reports it. `Display` is the
/// operator's view (the log line), with the internal detail; [`ApiError::message`] is the
/// caller's.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; `message` is the public explanation (never echoes input).
    #[error("bad request: {message}")]
    BadRequest { message: &'static str },
    /// No authenticated caller (no JWT authorizer context, or no `sub` claim).
    #[error("unauthenticated: {reason}")]
    Unauthenticated { reason: &'static str },
    /// A refusal with its own status and public message (a registration key or a device
    /// signature that does not check out).
    #[error("refused ({status}): {message}")]
    Refused {
        status: StatusCode,
        message: &'static str,
    },
    /// Signed in, but not allowed (not a super user).
    #[error("forbidden: not in the super_users group")]
    Forbidden,
    /// No such route for this function.
    #[error("no route matches")]
    NotFound,
    /// The route exists; what it names does not (for this caller). `message` is public.
    #[error("not found: {message}")]
    ResourceNotFound { message: &'static str },
    /// The path exists but not with this method; `allow` lists the methods that do.
    #[error("method not allowed (allow: {allow})")]
    MethodNotAllowed { allow: String },
    /// The route is switched off by configuration.
    #[error("route disabled by configuration")]
    Disabled,
    /// A dependency is unavailable (throttled, unreachable, timed out, retries exhausted).
    #[error("dependency unavailable: {log}")]
    Unavailable { log: String },
    /// Anything unexpected. `log` explains it to an operator.
    #[error("internal error: {log}")]
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
            Self::Refused { status, .. } => *status,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound | Self::ResourceNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Disabled | Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `message` the caller sees.
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadRequest { message }
            | Self::Refused { message, .. }
            | Self::ResourceNotFound { message } => message,
            Self::Unauthenticated { .. } => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not Found",
            Self::MethodNotAllowed { .. } => "Method Not Allowed",
            Self::Disabled => "Service temporarily disabled",
            Self::Unavailable { .. } => "Service Unavailable",
            Self::Internal { .. } => INTERNAL_MESSAGE,
        }
    }

    /// The `{"message": ...}` response for this error.
    pub fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Message<'a> {
            message: &'a str,
        }
        let mut response = Response::json(
            self.status(),
            &Message {
                message: self.message(),
            },
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response) -> serde_json::Value {
        serde_json::from_str(&r.body).unwrap()
    }

    #[test]
    fn every_error_is_a_message_object_with_its_status() {
        let cases = [
            (ApiError::BadRequest { message: "bad" }, 400, "bad"),
            (
                ApiError::Unauthenticated { reason: "x" },
                401,
                "Unauthorized",
            ),
            (
                ApiError::Refused {
                    status: StatusCode::UNAUTHORIZED,
                    message: "Invalid or expired registration key",
                },
                401,
                "Invalid or expired registration key",
            ),
            (ApiError::Forbidden, 403, "Forbidden"),
            (ApiError::ResourceNotFound { message: "none" }, 404, "none"),
            (ApiError::NotFound, 404, "Not Found"),
            (
                ApiError::MethodNotAllowed {
                    allow: "POST".into(),
                },
                405,
                "Method Not Allowed",
            ),
            (ApiError::Disabled, 503, "Service temporarily disabled"),
            (
                ApiError::unavailable("throttled"),
                503,
                "Service Unavailable",
            ),
            (ApiError::internal("boom"), 500, "Internal server error"),
        ];
        for (err, status, message) in cases {
            let r = err.into_response();
            assert_eq!(r.status.as_u16(), status);
            assert_eq!(r.headers["content-type"], "application/json");
            assert_eq!(r.headers["cache-control"], "no-store");
            assert_eq!(body(&r), serde_json::json!({ "message": message }));
        }
    }

    #[test]
    fn internal_text_never_reaches_the_caller() {
        for err in [
            ApiError::internal("secret table arn:aws:dynamodb:xyz"),
            ApiError::unavailable("secret table arn:aws:dynamodb:xyz"),
        ] {
            let r = err.into_response();
            assert!(!r.body.contains("secret"), "{}", r.body);
            assert!(!format!("{:?}", r.headers).contains("secret"));
        }
    }

    #[test]
    fn only_401_names_bearer() {
        let r = ApiError::Unauthenticated { reason: "x" }.into_response();
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        for err in [ApiError::NotFound, ApiError::Disabled, ApiError::Forbidden] {
            assert!(!err.into_response().headers.contains_key("www-authenticate"));
        }
    }

    #[test]
    fn method_not_allowed_sets_allow_and_unavailable_sets_retry_after() {
        let r = ApiError::MethodNotAllowed {
            allow: "GET, POST".into(),
        }
        .into_response();
        assert_eq!(r.headers["allow"], "GET, POST");
        let r = ApiError::unavailable("x").into_response();
        assert_eq!(r.headers["retry-after"], "1");
        let r = ApiError::Disabled.into_response();
        assert_eq!(r.headers["retry-after"], "60");
    }
}
