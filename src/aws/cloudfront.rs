//! CloudFront's one operation FireFly uses, `CreateInvalidation`, as a signed request over
//! the process's one transport (as [`super::s3`]: no SDK crate for one call; issue 21's
//! measurement put `aws-sdk-cloudfront` at 0.19 MiB and about 0.9 M init instructions).
//!
//! CloudFront's API is global: one endpoint, signed for `us-east-1` (`cn-northwest-1` in
//! the China partition). Its errors are XML (`<ErrorResponse><Error><Code>`); throttling,
//! 5xx and broken connections are retried as the SDK's standard mode retries them.

use super::http1::Http1Client;
use super::rest::{Service, ServiceError};
use super::s3::xml_escape;
use bytes::Bytes;
use std::time::Duration;

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(3_000);
/// The API version in every path (the one the SDK speaks).
const VERSION: &str = "2020-05-31";

/// Why an invalidation failed. Texts are for operators; none reaches a caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudFrontError {
    /// Throttled, too many invalidations in progress, unreachable, 5xx: later may work.
    #[error("CloudFront unavailable: {0}")]
    Unavailable(String),
    /// Access denied, no such distribution, a malformed batch: ours to fix.
    #[error("CloudFront error: {0}")]
    Other(String),
}

impl From<ServiceError> for CloudFrontError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable { .. } => Self::Unavailable(e.to_string()),
            // Retrying now would meet the same limit: the invocation's retry comes later.
            ServiceError::Refused { ref code, .. } if code == "TooManyInvalidationsInProgress" => {
                Self::Unavailable(e.to_string())
            }
            _ => Self::Other(e.to_string()),
        }
    }
}

/// A CloudFront client: signed requests on the shared transport.
#[derive(Clone, Debug)]
pub struct CloudFrontClient {
    service: Service,
}

impl CloudFrontClient {
    /// From the Lambda environment: the role's credentials, and `AWS_ENDPOINT_URL_CLOUDFRONT`
    /// (or `AWS_ENDPOINT_URL`) for a local stand-in.
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        use crate::vars;
        let china = super::region(env)?.starts_with("cn-");
        let identity = super::identity(env)?;
        let base = match super::endpoint_override(env, vars::AWS_ENDPOINT_URL_CLOUDFRONT.name)? {
            Some(url) => url,
            None if china => "https://cloudfront.cn-northwest-1.amazonaws.com.cn".to_owned(),
            None => "https://cloudfront.amazonaws.com".to_owned(),
        };
        let region = if china { "cn-northwest-1" } else { "us-east-1" };
        Ok(Self {
            service: Service::new(http, base, region.into(), "cloudfront", identity)
                .with_attempt_timeout(ATTEMPT_TIMEOUT),
        })
    }

    /// `CreateInvalidation` of `paths` on `distribution`; its invalidation ID.
    /// `caller_reference` makes a retried request the same invalidation, not a second one.
    pub async fn create_invalidation(
        &self,
        distribution: &str,
        paths: &[&str],
        caller_reference: &str,
    ) -> Result<String, CloudFrontError> {
        if distribution.is_empty() || !distribution.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CloudFrontError::Other(format!(
                "not a distribution ID: {distribution:?}"
            )));
        }
        let path = format!("/{VERSION}/distribution/{distribution}/invalidation");
        let body = Bytes::from(invalidation_batch(paths, caller_reference));
        let headers = [("content-type".to_owned(), "text/xml".to_owned())];
        let reply = self.service.send("POST", &path, &headers, body).await?;
        Ok(super::s3::xml_text(&String::from_utf8_lossy(&reply.body), "Id").unwrap_or_default())
    }
}

/// The `InvalidationBatch` document, every text escaped.
fn invalidation_batch(paths: &[&str], caller_reference: &str) -> String {
    let items: String = paths
        .iter()
        .map(|p| format!("<Path>{}</Path>", xml_escape(p)))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/{VERSION}/\"><Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths><CallerReference>{}</CallerReference></InvalidationBatch>",
        paths.len(),
        xml_escape(caller_reference)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::aws::testing::{CREDS, env_of, http};

    fn client(pairs: &[(&str, &str)]) -> Result<CloudFrontClient, String> {
        CloudFrontClient::from_env(&env_of(pairs), http())
    }

    #[test]
    fn the_global_endpoint_signed_for_us_east_1_or_an_override_checked() {
        let c = client(&CREDS).unwrap();
        assert_eq!(c.service.base, "https://cloudfront.amazonaws.com");
        assert!(format!("{:?}", c.service).contains("cloudfront"));
        assert!(!format!("{c:?}").contains("AKID"));
        let mut china = CREDS.to_vec();
        china[0] = ("AWS_REGION", "cn-north-1");
        let c = client(&china).unwrap();
        assert_eq!(
            c.service.base.as_str(),
            "https://cloudfront.cn-northwest-1.amazonaws.com.cn"
        );
        let mut remote = CREDS.to_vec();
        remote.push(("AWS_ENDPOINT_URL_CLOUDFRONT", "http://cdn.internal:5000"));
        assert!(client(&remote).unwrap_err().contains("plaintext"));
    }

    #[test]
    fn the_batch_names_every_path_escaped_and_counts_them() {
        let xml = invalidation_batch(&["/controller/0x1/app/1.0.0/*", "/a&b<c>"], "r\"1");
        assert!(xml.contains("<Quantity>2</Quantity>"), "{xml}");
        assert!(xml.contains("<Path>/controller/0x1/app/1.0.0/*</Path>"));
        assert!(xml.contains("<Path>/a&amp;b&lt;c&gt;</Path>"));
        assert!(xml.contains("<CallerReference>r&quot;1</CallerReference>"));
        assert!(xml.contains("xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\""));
    }

    #[tokio::test]
    async fn a_distribution_id_is_checked_before_it_reaches_a_url() {
        let c = client(&CREDS).unwrap();
        for bad in ["", "E1/../x", "E1?a=b"] {
            let err = c.create_invalidation(bad, &["/x"], "r").await.unwrap_err();
            assert!(matches!(err, CloudFrontError::Other(_)), "{bad}: {err}");
        }
    }
}
