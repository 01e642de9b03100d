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
    let table = std::env::var("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME")?;
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
                .item("key", AttributeValue::S(key.clone()))
                .item("ttl", AttributeValue::N((now + 1800).to_string()))
                .item("generated_at", AttributeValue::N(now.to_string()))
                .item("generated_by_sub", AttributeValue::S(sub))
                .item("generated_by_email", AttributeValue::S(String::new()))
                .condition_expression("attribute_not_exists(#k) OR #t <= :now")
                .expression_attribute_names("#k", "key")
                .expression_attribute_names("#t", "ttl")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await?;
            let body = serde_json::json!({"key": key}).to_string();
            Ok::<_, Error>(Response::builder().status(201).body(Body::Text(body))?)
        }
    }))
    .await
}
