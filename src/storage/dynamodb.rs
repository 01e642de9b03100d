//! The DynamoDB [`KeyStore`]: one conditional `PutItem` per attempt, the only action the
//! function's IAM role grants.

use super::{BoxFuture, Inserted, KeyStore, NewKey, StoreError};
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_http_client::tls;
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
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
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
fn classify<R: std::fmt::Debug>(
    err: SdkError<PutItemError, R>,
    table: &str,
) -> Result<Inserted, StoreError> {
    let service = match err {
        SdkError::ServiceError(e) => e.into_err(),
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
    match &service {
        PutItemError::ConditionalCheckFailedException(_) => Ok(Inserted::Taken),
        PutItemError::ResourceNotFoundException(_) => Err(StoreError::TableMissing(table.into())),
        PutItemError::ProvisionedThroughputExceededException(_)
        | PutItemError::RequestLimitExceeded(_)
        | PutItemError::ThrottlingException(_)
        | PutItemError::InternalServerError(_)
        | PutItemError::TransactionConflictException(_)
        | PutItemError::ReplicatedWriteConflictException(_) => {
            Err(StoreError::Unavailable(format!(
                "{}: {}",
                service.code().unwrap_or("?"),
                service.message().unwrap_or("")
            )))
        }
        _ => Err(StoreError::Other(format!(
            "{}: {}",
            service.code().unwrap_or("unknown error"),
            service.message().unwrap_or("")
        ))),
    }
}
