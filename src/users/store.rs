//! Where invitations are kept: FireFly's table through DynamoDB, or memory.

use crate::aws::errors::{StoreError, refused};
use crate::devices::store::{Item, from_item};
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
}
