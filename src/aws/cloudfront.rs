//! CloudFront's one operation FireFly uses, `CreateInvalidation`, as a signed request over
//! the process's one transport (as [`super::s3`]: no SDK crate for one call; issue 21's
//! measurement put `aws-sdk-cloudfront` at 0.19 MiB and about 0.9 M init instructions).
//!
//! CloudFront's API is global: one endpoint, signed for `us-east-1` (`cn-northwest-1` in
//! the China partition). Its errors are XML (`<ErrorResponse><Error><Code>`); throttling,
//! 5xx and broken connections are retried as the SDK's standard mode retries them.

use super::http1::Http1Client;
use super::s3::xml_escape;
use aws_sigv4::http_request::SigningSettings;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use std::time::Duration;

const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(3_000);
const MAX_ATTEMPTS: u32 = 3;
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

/// A CloudFront client: signed requests on the shared transport.
#[derive(Clone)]
pub struct CloudFrontClient {
    http: Http1Client,
    base: String,
    region: &'static str,
    identity: Identity,
}

impl std::fmt::Debug for CloudFrontClient {
    // The identity holds the secret key: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudFrontClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CloudFrontClient {
    /// From the Lambda environment: the role's credentials, and `AWS_ENDPOINT_URL_CLOUDFRONT`
    /// (or `AWS_ENDPOINT_URL`) for a local stand-in.
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        use crate::vars;
        let china = super::region(env)?.starts_with("cn-");
        let identity = super::identity(env)?;
        let base = match env(vars::AWS_ENDPOINT_URL_CLOUDFRONT.name)
            .or_else(|| env(vars::AWS_ENDPOINT_URL.name))
            .filter(|u| !u.is_empty())
        {
            Some(url) => {
                super::check_endpoint(&url, env)?;
                url.trim_end_matches('/').to_owned()
            }
            None if china => "https://cloudfront.cn-northwest-1.amazonaws.com.cn".to_owned(),
            None => "https://cloudfront.amazonaws.com".to_owned(),
        };
        Ok(Self {
            http,
            base,
            region: if china { "cn-northwest-1" } else { "us-east-1" },
            identity,
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
        let url = format!(
            "{}/{VERSION}/distribution/{distribution}/invalidation",
            self.base
        );
        let body = Bytes::from(invalidation_batch(paths, caller_reference));
        let headers = [("content-type".to_owned(), "text/xml".to_owned())];
        let mut last = String::new();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << (2 * (attempt - 1)))).await;
            }
            let signer = super::Signer {
                identity: &self.identity,
                region: self.region,
                service: "cloudfront",
                settings: SigningSettings::default(),
            };
            let request = signer
                .sign("POST", &url, &headers, body.clone())
                .map_err(CloudFrontError::Other)?;
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.exchange(request)).await {
                Err(_) => last = format!("timed out after {ATTEMPT_TIMEOUT:?}"),
                Ok(Err(Exchange::Retry(why))) => last = why,
                Ok(Err(Exchange::Final(e))) => return Err(e),
                Ok(Ok(id)) => return Ok(id),
            }
            tracing::debug!(attempt, error = %last, "CloudFront attempt failed");
        }
        Err(CloudFrontError::Unavailable(format!(
            "CreateInvalidation on {distribution}: {last} ({MAX_ATTEMPTS} attempts)"
        )))
    }

    async fn exchange(
        &self,
        request: hyper::Request<aws_smithy_types::body::SdkBody>,
    ) -> Result<String, Exchange> {
        let response =
            self.http
                .send(request)
                .await
                .map_err(|e| match super::http1::is_tls_failure(&e) {
                    Some(tls) => Exchange::Final(CloudFrontError::Other(format!(
                        "TLS with the CloudFront endpoint failed: {tls}"
                    ))),
                    None => Exchange::Retry(format!("connection: {e}")),
                })?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map_err(|e| Exchange::Retry(format!("reading the body: {e}")))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        if (200..300).contains(&status) {
            return Ok(super::s3::xml_text(&text, "Id").unwrap_or_default());
        }
        let code = super::s3::xml_text(&text, "Code").unwrap_or_default();
        let message = super::s3::xml_text(&text, "Message").unwrap_or_default();
        let why = format!("{status} {code}: {message}");
        match (status, code.as_str()) {
            (500..=599, _) | (_, "Throttling" | "ServiceUnavailable") => Err(Exchange::Retry(why)),
            // Retrying now would meet the same limit: the invocation's retry comes later.
            (_, "TooManyInvalidationsInProgress") => {
                Err(Exchange::Final(CloudFrontError::Unavailable(why)))
            }
            _ => Err(Exchange::Final(CloudFrontError::Other(why))),
        }
    }
}

enum Exchange {
    Retry(String),
    Final(CloudFrontError),
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
        assert_eq!(c.base, "https://cloudfront.amazonaws.com");
        assert_eq!(c.region, "us-east-1");
        assert!(!format!("{c:?}").contains("AKID"));
        let mut china = CREDS.to_vec();
        china[0] = ("AWS_REGION", "cn-north-1");
        let c = client(&china).unwrap();
        assert_eq!(
            (c.base.as_str(), c.region),
            (
                "https://cloudfront.cn-northwest-1.amazonaws.com.cn",
                "cn-northwest-1"
            )
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
