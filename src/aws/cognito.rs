//! Cognito's user-pool admin API (`cognito-idp`, JSON 1.1), the calls FireFly's users
//! functions make, as signed requests over the process's one transport (as [`super::s3`]
//! and [`super::cloudfront`]: no SDK crate for a handful of small JSON shapes).
//!
//! A call is `POST /` with `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`
//! and a JSON body; an error is JSON too (`__type`, `message`). Throttling, 5xx and broken
//! connections are retried as the SDK's standard mode retries them.

use super::http1::Http1Client;
use aws_sigv4::http_request::SigningSettings;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::Value;
use std::time::Duration;

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_000);
const MAX_ATTEMPTS: u32 = 3;
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

/// Why a call failed. Texts are for operators; none reaches a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CognitoError {
    /// Throttled, unreachable, 5xx: later may work (503).
    #[error("Cognito unavailable: {0}")]
    Unavailable(String),
    /// `UserNotFoundException`: the user named does not exist.
    #[error("Cognito: no such user")]
    NoSuchUser,
    /// Access denied, no such pool or group, a malformed request: ours to fix (500).
    #[error("Cognito error: {0}")]
    Other(String),
}

impl From<CognitoError> for crate::error::ApiError {
    fn from(e: CognitoError) -> Self {
        match e {
            CognitoError::Unavailable(_) => Self::unavailable(e.to_string()),
            CognitoError::NoSuchUser | CognitoError::Other(_) => Self::internal(e.to_string()),
        }
    }
}

/// A Cognito user-pool client: signed requests on the shared transport.
#[derive(Clone)]
pub struct CognitoClient {
    http: Http1Client,
    url: String,
    region: String,
    identity: Identity,
}

impl std::fmt::Debug for CognitoClient {
    // The identity holds the secret key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CognitoClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl CognitoClient {
    /// From the Lambda environment: the role's credentials, the region, and
    /// `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` (or `AWS_ENDPOINT_URL`) for a local
    /// stand-in (moto's server).
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        use crate::vars;
        let region = super::region(env)?;
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("not a region: {region:?}"));
        }
        let identity = super::identity(env)?;
        let url = match env(vars::AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER.name)
            .or_else(|| env(vars::AWS_ENDPOINT_URL.name))
            .filter(|u| !u.is_empty())
        {
            Some(url) => {
                super::check_endpoint(&url, env)?;
                format!("{}/", url.trim_end_matches('/'))
            }
            None if region.starts_with("cn-") => {
                format!("https://cognito-idp.{region}.amazonaws.com.cn/")
            }
            None => format!("https://cognito-idp.{region}.amazonaws.com/"),
        };
        Ok(Self {
            http,
            url,
            region,
            identity,
        })
    }

    /// One operation (`ListUsers`, `AdminGetUser`, ...) with its JSON input; its JSON output.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, CognitoError> {
        let body = Bytes::from(input.to_string());
        let headers = [
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            (
                "x-amz-target".to_owned(),
                format!("{TARGET_PREFIX}{operation}"),
            ),
        ];
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << (2 * (attempt - 1)))).await;
            }
            let signer = super::Signer {
                identity: &self.identity,
                region: &self.region,
                service: "cognito-idp",
                settings: SigningSettings::default(),
            };
            let request = signer
                .sign("POST", &self.url, &headers, body.clone())
                .map_err(CognitoError::Other)?;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.exchange(request)).await {
                Err(_) => last = format!("timed out after {ATTEMPT_TIMEOUT:?}"),
                Ok(Err(Exchange::Retry(why))) => last = why,
                Ok(Err(Exchange::Final(e))) => return Err(e),
                Ok(Ok(out)) => return Ok(out),
            }
            tracing::debug!(attempt, operation, error = %last, "Cognito attempt failed");
        }
        Err(CognitoError::Unavailable(format!(
            "{operation}: {last} ({MAX_ATTEMPTS} attempts)"
        )))
    }

    async fn exchange(
        &self,
        request: hyper::Request<aws_smithy_types::body::SdkBody>,
    ) -> Result<Value, Exchange> {
        let response =
            self.http
                .send(request)
                .await
                .map_err(|e| match super::http1::is_tls_failure(&e) {
                    Some(tls) => Exchange::Final(CognitoError::Other(format!(
                        "TLS with the Cognito endpoint failed: {tls}"
                    ))),
                    None => Exchange::Retry(format!("connection: {e}")),
                })?;
        let status = response.status().as_u16();
        let header_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // A ListUsers page of 60 users with every attribute is well under this.
        let body = http_body_util::Limited::new(response.into_body(), 4 * 1024 * 1024)
            .collect()
            .await
            .map_err(|e| Exchange::Retry(format!("reading the body: {e}")))?
            .to_bytes();
        let json: Value = if body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            return if json.is_object() {
                Ok(json)
            } else {
                Err(Exchange::Final(CognitoError::Other(format!(
                    "{status} with a body that is not a JSON object"
                ))))
            };
        }
        let code = error_code(json.get("__type").and_then(Value::as_str))
            .or_else(|| error_code(header_type.as_deref()))
            .unwrap_or_default();
        let message = json
            .get("message")
            .or_else(|| json.get("Message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let why = format!("{status} {code}: {message}");
        match (status, code.as_str()) {
            (_, "UserNotFoundException") => Err(Exchange::Final(CognitoError::NoSuchUser)),
            (500..=599, _)
            | (_, "TooManyRequestsException" | "ThrottlingException" | "InternalErrorException") => {
                Err(Exchange::Retry(why))
            }
            _ => Err(Exchange::Final(CognitoError::Other(why))),
        }
    }
}

enum Exchange {
    Retry(String),
    Final(CognitoError),
}

/// The error's name without its namespace (`com.amazonaws...#Name`) or its suffix
/// (`Name:http://...`), as the JSON protocols write it.
fn error_code(raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    let name = raw.rsplit('#').next().unwrap_or(raw);
    let name = name.split(':').next().unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// A value inside a `ListUsers` filter (`email = "<value>"`): backslashes and quotes
/// escaped, as Cognito reads them, so no value can end the string and add a condition.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::testing::{CREDS, env_of, http};

    #[test]
    fn the_regional_endpoint_or_an_override_checked() {
        let c = CognitoClient::from_env(&env_of(&CREDS), http()).unwrap();
        assert_eq!(c.url, "https://cognito-idp.eu-west-1.amazonaws.com/");
        assert!(!format!("{c:?}").contains("AKID"));
        let mut local = CREDS.to_vec();
        local.push((
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            "http://127.0.0.1:5000/",
        ));
        let c = CognitoClient::from_env(&env_of(&local), http()).unwrap();
        assert_eq!(c.url, "http://127.0.0.1:5000/");
        let mut remote = CREDS.to_vec();
        remote.push(("AWS_ENDPOINT_URL", "http://idp.internal:5000"));
        let err = CognitoClient::from_env(&env_of(&remote), http()).unwrap_err();
        assert!(err.contains("plaintext"), "{err}");
        let mut odd = CREDS.to_vec();
        odd[0] = ("AWS_REGION", "eu-west-1.evil.example/");
        assert!(CognitoClient::from_env(&env_of(&odd), http()).is_err());
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
    fn a_filter_value_cannot_end_its_string() {
        assert_eq!(filter_value("a@example.com"), "a@example.com");
        assert_eq!(filter_value(r#"a" or email ^= ""#), r#"a\" or email ^= \""#);
        assert_eq!(filter_value(r"a\"), r"a\\");
    }
}
