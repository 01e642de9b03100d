//! Where invitations are kept: FireFly's table through DynamoDB, or memory.

use crate::aws::errors::{StoreError, classify, refused};
use crate::devices::store::{Item, from_item, to_attribute};
use crate::handler::BoxFuture;
use crate::sync::Locked;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::BTreeMap;
use std::sync::Mutex;

const WORKFLOW: &str = "dynamodb-users";

/// Reading invitations.
pub trait InvitationStore: Send + Sync {
    /// The invitation of `email` (lower-cased, as FireFly keys it), read consistently: one
    /// made a moment ago admits its person.
    fn get(&self, email: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>>;

    /// Every invitation (every page of a Scan), expired ones too.
    fn all(&self) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;

    /// Writes `invitation` unless a live one for its email exists: `false` then. One that
    /// has expired (`expires_at` before `now`) is replaced: FireFly's refused it until
    /// DynamoDB's TTL sweep removed it, days later, while its pre-sign-up told the person
    /// to ask for a new one.
    fn invite(&self, invitation: Item, now: i64) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Removes the invitation of `email`, if any.
    fn remove(&self, email: String) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Whether an invitation's `expires_at` is before `now` (one without is live).
pub fn expired(item: &Item, now: i64) -> bool {
    match item.get("expires_at") {
        None | Some(serde_json::Value::Null) => false,
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .is_none_or(|at| at < now),
    }
}

pub struct DynamoInvitations {
    client: Client,
    table: String,
}

impl DynamoInvitations {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

impl InvitationStore for DynamoInvitations {
    fn get(&self, email: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("email", AttributeValue::S(email))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| refused(e, &self.table, WORKFLOW, "get"))?;
            Ok(out.item.as_ref().map(from_item))
        })
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        Box::pin(async move {
            let mut items = Vec::new();
            let mut start = None;
            loop {
                let page = self
                    .client
                    .scan()
                    .table_name(&self.table)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| refused(e, &self.table, WORKFLOW, "scan"))?;
                items.extend(page.items().iter().map(from_item));
                start = page.last_evaluated_key;
                if start.is_none() {
                    return Ok(items);
                }
            }
        })
    }

    fn invite(&self, invitation: Item, now: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let item = invitation
                .iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect();
            let out = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(email) OR expires_at < :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .send()
                .await;
            match out {
                Ok(_) => Ok(true),
                Err(e) => classify(e, &self.table, WORKFLOW).map(|()| false),
            }
        })
    }

    fn remove(&self, email: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("email", AttributeValue::S(email))
                .send()
                .await
                .map_err(|e| refused(e, &self.table, WORKFLOW, "delete"))?;
            Ok(())
        })
    }
}

/// Invitations in memory (local runs), by email.
#[derive(Default)]
pub struct MemoryInvitations {
    items: Mutex<BTreeMap<String, Item>>,
}

impl MemoryInvitations {
    /// Writes an invitation (its `email` is its key).
    pub fn insert(&self, item: Item) {
        if let Some(email) = item.get("email").and_then(serde_json::Value::as_str) {
            self.items.locked().insert(email.to_owned(), item.clone());
        }
    }
}

impl InvitationStore for MemoryInvitations {
    fn get(&self, email: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        let found = self.items.locked().get(&email).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn all(&self) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        let items = self.items.locked().values().cloned().collect();
        Box::pin(std::future::ready(Ok(items)))
    }

    fn invite(&self, invitation: Item, now: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
        let email = invitation
            .get("email")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut items = self.items.locked();
        let written = match items.get(&email) {
            Some(live) if !expired(live, now) => false,
            _ => {
                items.insert(email, invitation);
                true
            }
        };
        Box::pin(std::future::ready(Ok(written)))
    }

    fn remove(&self, email: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.items.locked().remove(&email);
        Box::pin(std::future::ready(Ok(())))
    }
}
