//! What a failed DynamoDB call means for the caller: one classification every store uses.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Why a store operation failed. Texts are for operators; none reaches the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttled, unreachable, timed out: worth retrying later (503).
    #[error("DynamoDB unavailable: {0}")]
    Unavailable(String),
    /// The table does not exist: a deployment order problem (500). The workflow that
    /// deploys its stack is named in the log line.
    #[error("DynamoDB table {table} does not exist: deploy {workflow} first")]
    TableMissing {
        table: String,
        workflow: &'static str,
    },
    /// Anything else (500).
    #[error("DynamoDB error: {0}")]
    Other(String),
}

impl From<StoreError> for crate::error::ApiError {
    /// Passing trouble is a 503 the caller may retry; anything else is ours to fix (500).
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => Self::unavailable(e.to_string()),
            StoreError::TableMissing { .. } | StoreError::Other(_) => Self::internal(e.to_string()),
        }
    }
}

/// Sorts an SDK failure into what the caller should hear: `Ok(())` for a failed condition
/// (the operation's own "no"), unavailable (503), table missing or other (500). The SDK's
/// own error text is kept for the log only.
pub fn classify<E>(
    err: SdkError<E, HttpResponse>,
    table: &str,
    workflow: &'static str,
) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (service, server_side) = match err {
        SdkError::ServiceError(e) => {
            let server_side = e.raw().status().is_server_error();
            (e.into_err(), server_side)
        }
        SdkError::TimeoutError(_) => return Err(StoreError::Unavailable("timed out".into())),
        SdkError::DispatchFailure(e) if e.is_user() => {
            // Refused before anything was sent (TLS that does not verify, a bad request):
            // retrying cannot help, and the cause is ours to fix.
            let cause = e
                .as_connector_error()
                .map(|c| c.to_string() + &chain(c))
                .unwrap_or_else(|| format!("{e:?}"));
            return Err(StoreError::Other(cause));
        }
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
    let code = service.code().unwrap_or("unknown error");
    let detail = || format!("{code}: {}", service.message().unwrap_or(""));
    match code {
        "ConditionalCheckFailedException" => Ok(()),
        "ResourceNotFoundException" => Err(StoreError::TableMissing {
            table: table.into(),
            workflow,
        }),
        "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded"
        | "ThrottlingException"
        | "InternalServerError"
        | "TransactionConflictException"
        | "ReplicatedWriteConflictException" => Err(StoreError::Unavailable(detail())),
        // Any other 5xx is DynamoDB's side and passing, modeled by the SDK or not.
        _ if server_side => Err(StoreError::Unavailable(detail())),
        _ => Err(StoreError::Other(detail())),
    }
}

/// [`classify`] for a call whose condition failing is not an answer it expects (a read, a
/// scan, a transaction whose cancellations were read first): that too is an error, named
/// by `what` ("scan refused").
pub fn refused<E>(
    err: SdkError<E, HttpResponse>,
    table: &str,
    workflow: &'static str,
    what: &str,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match classify(err, table, workflow) {
        Ok(()) => StoreError::Other(format!("{what} refused")),
        Err(e) => e,
    }
}

/// ": cause: its cause ..." for every error under `e`, for the operator's log line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = e.source();
    while let Some(cause) = next {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}
