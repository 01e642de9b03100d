//! The DynamoDB [`KeyStore`]: one conditional `PutItem` per attempt, the only action the
//! function's IAM role grants.

use super::http1::Http1Client;
use super::{BoxFuture, Inserted, KeyStore, NewKey, StoreError};
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::time::Duration;

/// Timeouts sized for a function with a 6 s timeout: a refused or stalled connection
/// becomes a 503 in at most ~3 s, leaving room to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(3_000);
/// Attempts per PutItem, the SDK's standard retry mode (throttling, 5xx, I/O errors).
const MAX_ATTEMPTS: u32 = 3;

pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// Builds the client from the Lambda environment: `AWS_REGION`, the role's credentials in
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and the SDK's standard
    /// endpoint override `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) for local servers.
    ///
    /// This deliberately avoids `aws_config::load_from_env()`: Lambda always provides
    /// credentials in the environment, and the full default chain (profiles, SSO, IMDS, STS)
    /// costs binary size and start-up work for providers that can never apply here.
    pub fn client_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Client, String> {
        let region = env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .filter(|r| !r.is_empty())
            .ok_or("AWS_REGION is not set (Lambda sets it; set it for local runs)")?;
        let http = Http1Client::new(trust_store(env)?, CONNECT_TIMEOUT)?;
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(EnvironmentVariableCredentialsProvider::new())
            .http_client(http)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(url) = env("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .filter(|u| !u.is_empty())
        {
            config = config.endpoint_url(url);
        }
        Ok(Client::from_conf(config.build()))
    }
}

/// The roots every AWS service endpoint chains to (Amazon Trust Services and the Starfield
/// root that cross-signs them), from Debian's ca-certificates. Embedded rather than read
/// from the system store: parsing the whole system bundle was 83% of a typical build's
/// init instructions (README, Cold start), and DynamoDB needs only these five.
const AWS_ROOTS: [&str; 5] = [
    include_str!("roots/Amazon_Root_CA_1.pem"),
    include_str!("roots/Amazon_Root_CA_2.pem"),
    include_str!("roots/Amazon_Root_CA_3.pem"),
    include_str!("roots/Amazon_Root_CA_4.pem"),
    include_str!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
];

/// The AWS roots, plus the PEM certificates in `FIREFLY_EXTRA_CA_FILE` when set (a local
/// DynamoDB-API server behind TLS, a corporate proxy). A bad file is a start-up error.
fn trust_store(env: &dyn Fn(&str) -> Option<String>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in AWS_ROOTS {
        add_pem_certificates(&mut roots, pem.as_bytes())?;
    }
    if let Some(path) = env("FIREFLY_EXTRA_CA_FILE").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| format!("FIREFLY_EXTRA_CA_FILE={path}: {e}"))?;
        add_pem_certificates(&mut roots, &pem)
            .map_err(|e| format!("FIREFLY_EXTRA_CA_FILE={path}: {e}"))?;
    }
    Ok(roots)
}

/// Adds every certificate in `pem` as a trust anchor; refuses text without any, or with one
/// that cannot serve as an anchor. Returns how many were added.
fn add_pem_certificates(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<usize, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    Ok(certs.len())
}

impl KeyStore for DynamoKeyStore {
    fn insert_unless_live<'a>(
        &'a self,
        item: NewKey<'a>,
    ) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async move {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("registrationKey", AttributeValue::S(item.key.to_owned()))
                .item("userId", AttributeValue::S(item.user_id.to_owned()))
                .item("createdAt", AttributeValue::N(item.created_at.to_string()))
                .item("expiresAt", AttributeValue::N(item.expires_at.to_string()))
                .condition_expression("attribute_not_exists(registrationKey) OR expiresAt < :now")
                .expression_attribute_values(":now", AttributeValue::N(item.created_at.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Inserted::Stored),
                Err(e) => classify(e, &self.table),
            }
        })
    }
}

/// Sorts an SDK failure into what the caller should hear: taken (draw again), unavailable
/// (503), table missing or other (500). The SDK's own error text is kept for the log only.
fn classify(
    err: SdkError<PutItemError, HttpResponse>,
    table: &str,
) -> Result<Inserted, StoreError> {
    let (service, server_side) = match err {
        SdkError::ServiceError(e) => {
            let server_side = e.raw().status().is_server_error();
            (e.into_err(), server_side)
        }
        SdkError::TimeoutError(_) => return Err(StoreError::Unavailable("timed out".into())),
        SdkError::DispatchFailure(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            return Err(StoreError::Unavailable(format!("{kind}: {e:?}")));
        }
        SdkError::ResponseError(_) => {
            return Err(StoreError::Unavailable("unreadable response".into()));
        }
        other => return Err(StoreError::Other(format!("{other:?}"))),
    };
    let detail = || {
        format!(
            "{}: {}",
            service.code().unwrap_or("unknown error"),
            service.message().unwrap_or("")
        )
    };
    match &service {
        PutItemError::ConditionalCheckFailedException(_) => Ok(Inserted::Taken),
        PutItemError::ResourceNotFoundException(_) => Err(StoreError::TableMissing(table.into())),
        PutItemError::ProvisionedThroughputExceededException(_)
        | PutItemError::RequestLimitExceeded(_)
        | PutItemError::ThrottlingException(_)
        | PutItemError::InternalServerError(_)
        | PutItemError::TransactionConflictException(_)
        | PutItemError::ReplicatedWriteConflictException(_) => {
            Err(StoreError::Unavailable(detail()))
        }
        // Any other 5xx is DynamoDB's side and passing, modeled by the SDK or not.
        _ if server_side => Err(StoreError::Unavailable(detail())),
        _ => Err(StoreError::Other(detail())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_aws_roots_are_valid_trust_anchors() {
        let mut roots = rustls::RootCertStore::empty();
        for pem in AWS_ROOTS {
            assert_eq!(add_pem_certificates(&mut roots, pem.as_bytes()), Ok(1));
        }
        assert_eq!(roots.len(), 5);
    }

    #[test]
    fn a_bad_extra_ca_file_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("firefly-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, &[u8]); 3] = [
            ("empty.pem", b""),
            ("text.pem", b"hello"),
            (
                "broken.pem",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
        ];
        for (name, body) in cases {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let p = path.to_string_lossy().into_owned();
            let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| p.clone());
            let err = trust_store(&env)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            assert!(err.contains("FIREFLY_EXTRA_CA_FILE"), "{err}");
        }
        let env =
            |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| "/nonexistent/ca.pem".to_string());
        assert!(trust_store(&env).is_err());
        let pem = AWS_ROOTS[0].to_string();
        let good = dir.join("good.pem");
        std::fs::write(&good, pem).unwrap();
        let g = good.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| g.clone());
        assert_eq!(trust_store(&env).unwrap().len(), 6);
    }
}
