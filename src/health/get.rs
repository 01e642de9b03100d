//! `GET /health`, as FireFly's `health-get` answers it: 200 `{"status":"OK"}`, always.

use crate::deploy::READS_APPCONFIG;
use crate::handler::HandlerResult;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;

pub const ROUTE: Route = Route {
    key: "GET /health",
    function: "firefly-func-api-health-get",
    summary: "Health check: the API answers",
    // As FireFly's: AppConfig, for the log level its console sets (`logging` profile).
    uses: &[READS_APPCONFIG],
    answers: &[Answer {
        status: 200,
        description: "The API answers",
        schema: Some(
            r#"{"title": "HealthResponse", "type": "object", "required": ["status"], "additionalProperties": false, "properties": {"status": {"const": "OK"}}}"#,
        ),
        example: Some(r#"{"status":"OK"}"#),
    }],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(health),
};

/// The handler: no state, no extractor, no dependency.
pub async fn health(_: ()) -> HandlerResult {
    Ok(Response::json(
        StatusCode::OK,
        &serde_json::json!({"status": "OK"}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Auth;

    #[tokio::test]
    async fn answers_ok_without_an_authorizer() {
        assert_eq!(ROUTE.auth(), Auth::None);
        let r = health(()).await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.body, r#"{"status":"OK"}"#);
    }
}
