//! Where firmware records are read: FireFly's table through DynamoDB, or memory.

use crate::aws::errors::{StoreError, refused};
use crate::devices::store::{Item, from_item};
use crate::handler::BoxFuture;
use crate::sync::Locked;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::sync::Mutex;

const WORKFLOW: &str = "dynamodb-firmware";

/// Reading firmware records.
pub trait FirmwareStore: Send + Sync {
    /// Every record (of `product_hex`, lower-cased, through its index; with `version`
    /// when given), every page read.
    fn list(
        &self,
        product_hex: Option<String>,
        version: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;

    /// The record of the ZIP `zip_name` (through `zip_name-index`), if any.
    fn by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>>;
}

pub struct DynamoFirmwareStore {
    client: Client,
    table: String,
}

impl DynamoFirmwareStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

type Key = Option<HashMap<String, AttributeValue>>;

impl FirmwareStore for DynamoFirmwareStore {
    fn list(
        &self,
        product_hex: Option<String>,
        version: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        Box::pin(async move {
            // One filter for the Query and the Scan: `?version`, and `?product_hex` as the
            // index's key.
            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let mut filter = None;
            if let Some(v) = version {
                names.insert("#v".to_owned(), "version".to_owned());
                values.insert(":v".to_owned(), AttributeValue::S(v));
                filter = Some("#v = :v".to_owned());
            }
            if let Some(hex) = &product_hex {
                names.insert("#h".to_owned(), "product_hex".to_owned());
                values.insert(":h".to_owned(), AttributeValue::S(hex.to_lowercase()));
            }
            let names = Some(names).filter(|n| !n.is_empty());
            let values = Some(values).filter(|v| !v.is_empty());
            let mut items = Vec::new();
            let mut start: Key = None;
            loop {
                // Every page (FireFly's function read the first 1 MB only).
                let (page, next) = if product_hex.is_some() {
                    self.client
                        .query()
                        .table_name(&self.table)
                        .index_name("product_hex-index")
                        .key_condition_expression("#h = :h")
                        .set_filter_expression(filter.clone())
                        .set_expression_attribute_names(names.clone())
                        .set_expression_attribute_values(values.clone())
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map(|out| (out.items.unwrap_or_default(), out.last_evaluated_key))
                        .map_err(|e| refused(e, &self.table, WORKFLOW, "query"))?
                } else {
                    self.client
                        .scan()
                        .table_name(&self.table)
                        .set_filter_expression(filter.clone())
                        .set_expression_attribute_names(names.clone())
                        .set_expression_attribute_values(values.clone())
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map(|out| (out.items.unwrap_or_default(), out.last_evaluated_key))
                        .map_err(|e| refused(e, &self.table, WORKFLOW, "scan"))?
                };
                items.extend(page.iter().map(from_item));
                start = next;
                if start.is_none() {
                    return Ok(items);
                }
            }
        })
    }

    fn by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        Box::pin(async move {
            let mut start: Key = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name("zip_name-index")
                    .key_condition_expression("#z = :z")
                    .expression_attribute_names("#z", "zip_name")
                    .expression_attribute_values(":z", AttributeValue::S(zip_name.clone()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| refused(e, &self.table, WORKFLOW, "query"))?;
                if let Some(first) = out.items().first() {
                    return Ok(Some(from_item(first)));
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    return Ok(None);
                }
            }
        })
    }
}

/// Records in memory (local runs).
#[derive(Default)]
pub struct MemoryFirmwareStore {
    items: Mutex<Vec<Item>>,
}

impl MemoryFirmwareStore {
    /// Adds a record, as ingest would.
    pub fn insert(&self, item: Item) {
        self.items.locked().push(item);
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(serde_json::Value::as_str)
}

impl FirmwareStore for MemoryFirmwareStore {
    fn list(
        &self,
        product_hex: Option<String>,
        version: Option<String>,
    ) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        let hex = product_hex.map(|h| h.to_lowercase());
        let found = self
            .items
            .locked()
            .iter()
            .filter(|i| {
                hex.as_deref()
                    .is_none_or(|h| text(i, "product_hex") == Some(h))
            })
            .filter(|i| {
                version
                    .as_deref()
                    .is_none_or(|v| text(i, "version") == Some(v))
            })
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        let found = self
            .items
            .locked()
            .iter()
            .find(|i| text(i, "zip_name") == Some(zip_name.as_str()))
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}
