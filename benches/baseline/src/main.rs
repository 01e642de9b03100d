//! The typical shape of a Rust Lambda that writes to DynamoDB, as the examples teach it.
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use rand::RngExt;
use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = std::env::var("REGISTRATION_KEYS_TABLE")?;
    run(service_fn(|req: Request| {
        let client = client.clone();
        let table = table.clone();
        async move {
            let sub = req
                .request_context_ref()
                .and_then(|c| match c {
                    lambda_http::request::RequestContext::ApiGatewayV2(c) => c.authorizer.as_ref(),
                    _ => None,
                })
                .and_then(|a| a.jwt.as_ref())
                .and_then(|j| j.claims.get("sub").cloned())
                .unwrap_or_default();
            let key: String = {
                let mut rng = rand::rng();
                (0..6).map(|_| ALPHABET[rng.random_range(0..32)] as char).collect()
            };
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            client
                .put_item()
                .table_name(table)
                .item("registrationKey", AttributeValue::S(key.clone()))
                .item("userId", AttributeValue::S(sub))
                .item("createdAt", AttributeValue::N(now.to_string()))
                .item("expiresAt", AttributeValue::N((now + 1800).to_string()))
                .condition_expression("attribute_not_exists(registrationKey) OR expiresAt < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await?;
            let body = serde_json::json!({"registrationKey": key, "expiresIn": 1800}).to_string();
            Ok::<_, Error>(Response::builder().status(201).body(Body::Text(body))?)
        }
    }))
    .await
}
