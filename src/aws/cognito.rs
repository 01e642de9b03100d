//! Cognito's user-pool admin API (`cognito-idp`, JSON 1.1), the calls FireFly's users
//! functions make, as signed requests over the process's one transport ([`super::rest`]:
//! no SDK crate for a handful of small JSON shapes).
//!
//! A call is `POST /` with `X-Amz-Target: AWSCognitoIdentityProviderService.<Operation>`
//! and a JSON body; an error is JSON too (`__type`, `message`).

use super::http1::Http1Client;
use super::rest::{Service, ServiceError};
use serde_json::Value;

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

impl From<ServiceError> for CognitoError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Refused { ref code, .. } if code == "UserNotFoundException" => {
                Self::NoSuchUser
            }
            ServiceError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            _ => Self::Other(e.to_string()),
        }
    }
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
#[derive(Clone, Debug)]
pub struct CognitoClient {
    service: Service,
}

impl CognitoClient {
    /// From the Lambda environment: the role's credentials, the region, and
    /// `AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER` (or `AWS_ENDPOINT_URL`) for a local
    /// stand-in (moto's server).
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        Ok(Self {
            service: Service::from_env(
                env,
                http,
                "cognito-idp",
                "cognito-idp",
                crate::vars::AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER.name,
            )?,
        })
    }

    /// One operation (`ListUsers`, `AdminGetUser`, ...) with its JSON input; its JSON output.
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Value, CognitoError> {
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
        Ok(self
            .service
            .json("POST", "/", &headers, Some(input))
            .await?)
    }
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
    fn the_regional_endpoint_or_moto() {
        let c = CognitoClient::from_env(&env_of(&CREDS), http()).unwrap();
        assert_eq!(
            c.service.base,
            "https://cognito-idp.eu-west-1.amazonaws.com"
        );
        let mut local = CREDS.to_vec();
        local.push((
            "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
            "http://127.0.0.1:5000/",
        ));
        let c = CognitoClient::from_env(&env_of(&local), http()).unwrap();
        assert_eq!(c.service.base, "http://127.0.0.1:5000");
    }

    #[test]
    fn no_such_user_is_its_own_answer() {
        let refused = |code: &str| ServiceError::Refused {
            service: "cognito-idp",
            status: 400,
            code: code.into(),
            message: String::new(),
        };
        assert_eq!(
            CognitoError::from(refused("UserNotFoundException")),
            CognitoError::NoSuchUser
        );
        assert!(matches!(
            CognitoError::from(refused("AccessDeniedException")),
            CognitoError::Other(_)
        ));
    }

    #[test]
    fn a_filter_value_cannot_end_its_string() {
        assert_eq!(filter_value("a@example.com"), "a@example.com");
        assert_eq!(filter_value(r#"a" or email ^= ""#), r#"a\" or email ^= \""#);
        assert_eq!(filter_value(r"a\"), r"a\\");
    }
}
