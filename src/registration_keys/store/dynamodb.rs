//! The DynamoDB [`KeyStore`]: one conditional `PutItem` to mint, one conditional
//! `DeleteItem` to revoke, a `Scan` of every page to list; each function's role grants
//! only the one it uses.
//!
//! Item, as FireFly-Cloud's stack and functions make it: `key` (S, hash key), `ttl` (N, the
//! TTL attribute), `generated_at` (N), `generated_by_sub` (S), `generated_by_email` (S),
//! and ours, which FireFly's readers ignore: `mint_nonce` (S, one random value per mint
//! request). `key` and `ttl` are reserved words: expressions name them `#k` and `#t`.

use super::{BoxFuture, Inserted, KeyStore, ListedKey, NewKey, Revoked, StoreError};
use crate::aws::errors::{classify, refused};
use crate::telemetry::{self, Unit};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::time::Instant;

pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    /// `client` is the process's one DynamoDB client ([`crate::init::Init::dynamodb`]).
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

impl KeyStore for DynamoKeyStore {
    fn insert_unless_live<'a>(
        &'a self,
        item: NewKey<'a>,
    ) -> BoxFuture<'a, Result<Inserted, StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("key", AttributeValue::S(item.key.to_owned()))
                .item("ttl", AttributeValue::N(item.expires_at.to_string()))
                .item(
                    "generated_at",
                    AttributeValue::N(item.created_at.to_string()),
                )
                .item(
                    "generated_by_sub",
                    AttributeValue::S(item.user_id.to_owned()),
                )
                .item(
                    "generated_by_email",
                    AttributeValue::S(item.email.to_owned()),
                )
                .item("mint_nonce", AttributeValue::S(item.nonce.to_owned()))
                .condition_expression("attribute_not_exists(#k) OR #t <= :now")
                .expression_attribute_names("#k", "key")
                .expression_attribute_names("#t", "ttl")
                .expression_attribute_values(":now", AttributeValue::N(item.created_at.to_string()))
                // The item that blocks the write comes back with the refusal: if it carries
                // our nonce, an earlier attempt of this very call wrote it.
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            latency(started);
            match result {
                Ok(_) => Ok(Inserted::Stored),
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
                {
                    let PutItemError::ConditionalCheckFailedException(refusal) = e.err() else {
                        return Ok(Inserted::Taken);
                    };
                    let ours = refusal
                        .item()
                        .and_then(|old| old.get("mint_nonce"))
                        .and_then(|n| n.as_s().ok())
                        .is_some_and(|n| n == item.nonce);
                    Ok(if ours {
                        Inserted::AlreadyOurs
                    } else {
                        Inserted::Taken
                    })
                }
                Err(e) => {
                    classify(e, &self.table, super::super::WORKFLOW).map(|()| Inserted::Taken)
                }
            }
        })
    }

    fn revoke<'a>(
        &'a self,
        key: &'a str,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Revoked, StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            // One conditional delete: the key is gone only if it is the caller's and still
            // live. A missing item fails the condition too, so all three cases look alike.
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("key", AttributeValue::S(key.to_owned()))
                .condition_expression("generated_by_sub = :sub AND #t > :now")
                .expression_attribute_names("#t", "ttl")
                .expression_attribute_values(":sub", AttributeValue::S(user_id.to_owned()))
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            latency(started);
            match result {
                Ok(_) => Ok(Revoked::Deleted),
                Err(e) => {
                    classify(e, &self.table, super::super::WORKFLOW).map(|()| Revoked::NotLive)
                }
            }
        })
    }

    fn list_live<'a>(
        &'a self,
        user_id: &'a str,
        now: i64,
    ) -> BoxFuture<'a, Result<Vec<ListedKey>, StoreError>> {
        Box::pin(async move {
            let started = Instant::now();
            // Every page: a Scan stops at 1 MB, and FireFly's function read only the first.
            // (A loop over LastEvaluatedKey: the SDK's paginator costs binary size.)
            let mut listed = Vec::new();
            let mut start = None;
            loop {
                let page = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .filter_expression("generated_by_sub = :sub AND #t > :now")
                    .projection_expression("#k, #t, generated_at")
                    .expression_attribute_names("#k", "key")
                    .expression_attribute_names("#t", "ttl")
                    .expression_attribute_values(":sub", AttributeValue::S(user_id.to_owned()))
                    .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await;
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        latency(started);
                        return Err(refused(e, &self.table, super::super::WORKFLOW, "scan"));
                    }
                };
                for item in page.items() {
                    listed.push(listed_key(item).ok_or_else(|| {
                        StoreError::Other("an item without a string key or a numeric ttl".into())
                    })?);
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    break;
                }
            }
            latency(started);
            Ok(listed)
        })
    }
}

/// A listed item; `generated_at` missing (an item written by hand): `ttl` - 1800, as
/// FireFly's function reads it.
fn listed_key(item: &std::collections::HashMap<String, AttributeValue>) -> Option<ListedKey> {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| n as i64)
    };
    let expires_at = number("ttl")?;
    Some(ListedKey {
        key: item.get("key")?.as_s().ok()?.clone(),
        generated_at: number("generated_at").unwrap_or(expires_at - 1800),
        expires_at,
    })
}

/// One call's time, retries included, into the request's metrics: `DynamoDBLatency`.
fn latency(started: Instant) {
    telemetry::metric(
        "DynamoDBLatency",
        Unit::Milliseconds,
        telemetry::millis(started.elapsed()),
    );
}
