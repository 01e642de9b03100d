//! Cognito in moto's server (the same server as its DynamoDB), prepared through the
//! binary's own Cognito client: pools, groups and users as FireFly's stack and CI make them.

use super::dynamo::block_on;
use firefly_api::aws::cognito::CognitoClient;
use serde_json::Value;

/// A client of the Cognito at `endpoint`, with the test credentials.
pub fn client(endpoint: &str) -> CognitoClient {
    let endpoint = endpoint.to_owned();
    let env = move |k: &str| match k {
        "AWS_REGION" => Some("eu-west-1".to_owned()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".to_owned()),
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER" => Some(endpoint.clone()),
        _ => None,
    };
    let http = firefly_api::aws::transport(&env).unwrap();
    CognitoClient::from_env(&env, http).unwrap()
}

/// `op` with `input` on the Cognito at `endpoint`; its output (a failure panics, naming it).
pub fn call(endpoint: &str, op: &str, input: Value) -> Value {
    block_on(client(endpoint).call(op, &input)).unwrap_or_else(|e| panic!("{op}: {e}"))
}
