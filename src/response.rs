//! Response building: the only place that knows the wire shape of a Lambda HTTP response.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;

/// What a handler returns on success; converted to the API Gateway shape at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as API Gateway takes it: text, or Base64 when `base64` is set.
    pub body: String,
    /// The body is Base64 of bytes (API Gateway's `isBase64Encoded`): binary answers.
    pub base64: bool,
}

impl Response {
    /// A JSON body. Responses carry secrets (registration keys) or per-user data, so no
    /// shared cache may keep them.
    pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Self {
        Self::with_body(
            status,
            "application/json",
            // Serializing plain structs of strings and numbers cannot fail.
            serde_json::to_string(body).unwrap_or_default(),
        )
    }

    /// FireFly's `{"message": ...}` answer with its own status (a 409, a 410, a 422).
    pub fn message(status: StatusCode, text: &str) -> Self {
        Self::json(status, &serde_json::json!({ "message": text }))
    }

    /// No body (204): the empty string, with `Content-Type: application/json` still set,
    /// as every FireFly function answers; never cached, like every response.
    pub fn empty(status: StatusCode) -> Self {
        Self::with_body(status, "application/json", String::new())
    }

    pub(crate) fn with_body(status: StatusCode, content_type: &'static str, body: String) -> Self {
        let mut headers = HeaderMap::with_capacity(3);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Self {
            status,
            headers,
            body,
            base64: false,
        }
    }

    /// A binary body: sent Base64 with `isBase64Encoded`, which API Gateway decodes, and
    /// its `Content-Length` (a controller needs it to size its read).
    pub fn binary(status: StatusCode, content_type: &'static str, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        let mut r = Self::with_body(
            status,
            content_type,
            base64::engine::general_purpose::STANDARD.encode(bytes),
        );
        r.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        r.base64 = true;
        r
    }

    /// The API Gateway payload 2.0 response.
    pub fn into_lambda(self) -> ApiGatewayV2httpResponse {
        let mut out = ApiGatewayV2httpResponse::default();
        out.status_code = i64::from(self.status.as_u16());
        out.headers = self.headers;
        out.body = Some(Body::Text(self.body));
        out.is_base64_encoded = self.base64;
        out
    }
}
