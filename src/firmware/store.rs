//! Where firmware records are kept: FireFly's table through DynamoDB, or memory.

use crate::aws::errors::{StoreError, classify, refused};
use crate::devices::store::{Item, from_item, to_attribute};
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

    /// One answer's worth of [`FirmwareStore::list`]: records after `after` (a record's
    /// `(pk, version)`, as the previous page ended) while their `size` fits `budget`, and
    /// where the next page starts when more follow.
    fn list_page<'a>(
        &'a self,
        product_hex: Option<String>,
        version: Option<String>,
        after: Option<(String, String)>,
        budget: usize,
        size: &'a (dyn Fn(&Item) -> usize + Sync),
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async move {
            let all = self.list(product_hex, version).await?;
            Ok(page_of(all, after, budget, size))
        })
    }

    /// The record of the ZIP `zip_name` (through `zip_name-index`), if any.
    fn by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        Box::pin(async move { Ok(self.all_by_zip(zip_name).await?.into_iter().next()) })
    }

    /// Every record of the ZIP `zip_name` (FireFly's ingest could file two), every page.
    fn all_by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;

    /// The record `(pk, version)`, read consistently.
    fn get(&self, pk: String, version: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>>;

    /// Writes `item` unless its `(pk, version)` holds a record whose status is one of
    /// `protected`; `false`: it did (nothing written).
    fn put_unless(
        &self,
        item: Item,
        protected: &'static [&'static str],
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Sets `release_status` to `status` with `ttl` and a history entry at `now`, if the
    /// record's status is still `was`; `false`: it is not (or the record is gone).
    fn transition(
        &self,
        pk: String,
        version: String,
        was: String,
        status: &'static str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// A page of records, and the key `(pk, version)` the next page starts after.
pub type Page = (Vec<Item>, Option<(String, String)>);

/// The key of a record, `(pk, version)`.
fn key_of(item: &Item) -> Option<(String, String)> {
    Some((
        item.get("pk")?.as_str()?.to_owned(),
        item.get("version")?.as_str()?.to_owned(),
    ))
}

/// Records after `after` (in their order) while they fit `budget`; the last one's key when
/// more follow. At least one record a page, whatever its size.
fn page_of(
    items: Vec<Item>,
    after: Option<(String, String)>,
    budget: usize,
    size: &(dyn Fn(&Item) -> usize + Sync),
) -> (Vec<Item>, Option<(String, String)>) {
    let start = after
        .and_then(|a| {
            items
                .iter()
                .position(|i| key_of(i).as_ref() == Some(&a))
                .map(|p| p + 1)
        })
        .unwrap_or(0);
    let mut page = Vec::new();
    let mut used = 0;
    let mut rest = items.into_iter().skip(start).peekable();
    while let Some(item) = rest.next() {
        let cost = size(&item);
        if !page.is_empty() && used + cost > budget {
            let next = page.last().and_then(key_of);
            return (page, next);
        }
        used += cost;
        page.push(item);
        if rest.peek().is_none() {
            break;
        }
    }
    (page, None)
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

    fn all_by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        Box::pin(async move {
            let mut start: Key = None;
            let mut items = Vec::new();
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
                items.extend(out.items().iter().map(from_item));
                start = out.last_evaluated_key;
                if start.is_none() {
                    return Ok(items);
                }
            }
        })
    }

    fn get(&self, pk: String, version: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        Box::pin(async move {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .key("version", AttributeValue::S(version))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| refused(e, &self.table, WORKFLOW, "get"))?;
            Ok(out.item.as_ref().map(from_item))
        })
    }

    fn put_unless(
        &self,
        item: Item,
        protected: &'static [&'static str],
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(
                    item.iter()
                        .map(|(k, v)| (k.clone(), to_attribute(v)))
                        .collect(),
                ));
            if !protected.is_empty() {
                let names: Vec<String> = (0..protected.len()).map(|i| format!(":p{i}")).collect();
                put = put
                    .condition_expression(format!(
                        "attribute_not_exists(pk) OR NOT (#s IN ({}))",
                        names.join(", ")
                    ))
                    .expression_attribute_names("#s", "release_status");
                for (name, status) in names.iter().zip(protected) {
                    put =
                        put.expression_attribute_values(name, AttributeValue::S((*status).into()));
                }
            }
            match put.send().await {
                Ok(_) => Ok(true),
                Err(e) => classify(e, &self.table, WORKFLOW).map(|()| false),
            }
        })
    }

    fn transition(
        &self,
        pk: String,
        version: String,
        was: String,
        status: &'static str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let entry = AttributeValue::M(
                [
                    ("status".to_owned(), AttributeValue::S(status.into())),
                    ("timestamp".to_owned(), AttributeValue::N(now.to_string())),
                ]
                .into(),
            );
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .key("version", AttributeValue::S(version))
                .update_expression(
                    "SET #s = :new, #ttl = :ttl, #h = list_append(if_not_exists(#h, :empty), :entry)",
                )
                .condition_expression("#s = :was")
                .expression_attribute_names("#s", "release_status")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#h", "status_history")
                .expression_attribute_values(":new", AttributeValue::S(status.into()))
                .expression_attribute_values(":was", AttributeValue::S(was))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":entry", AttributeValue::L(vec![entry]))
                .send()
                .await;
            match out {
                Ok(_) => Ok(true),
                Err(e) => classify(e, &self.table, WORKFLOW).map(|()| false),
            }
        })
    }
}

/// Records in memory (local runs), one per `(pk, version)`.
#[derive(Default)]
pub struct MemoryFirmwareStore {
    items: Mutex<Vec<Item>>,
}

impl MemoryFirmwareStore {
    /// Writes a record, replacing the one with its `(pk, version)`.
    pub fn insert(&self, item: Item) {
        let mut items = self.items.locked();
        items.retain(|i| !same_key(i, &item));
        items.push(item);
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(serde_json::Value::as_str)
}

fn same_key(a: &Item, b: &Item) -> bool {
    text(a, "pk") == text(b, "pk") && text(a, "version") == text(b, "version")
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

    fn all_by_zip(&self, zip_name: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        let found = self
            .items
            .locked()
            .iter()
            .filter(|i| text(i, "zip_name") == Some(zip_name.as_str()))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn get(&self, pk: String, version: String) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        let found = self
            .items
            .locked()
            .iter()
            .find(|i| text(i, "pk") == Some(&pk) && text(i, "version") == Some(&version))
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn put_unless(
        &self,
        item: Item,
        protected: &'static [&'static str],
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let mut items = self.items.locked();
        let blocked = items.iter().any(|i| {
            same_key(i, &item) && text(i, "release_status").is_some_and(|s| protected.contains(&s))
        });
        if !blocked {
            items.retain(|i| !same_key(i, &item));
            items.push(item);
        }
        Box::pin(std::future::ready(Ok(!blocked)))
    }

    fn transition(
        &self,
        pk: String,
        version: String,
        was: String,
        status: &'static str,
        now: i64,
        ttl: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let mut items = self.items.locked();
        let found = items.iter_mut().find(|i| {
            text(i, "pk") == Some(&pk)
                && text(i, "version") == Some(&version)
                && text(i, "release_status") == Some(&was)
        });
        let done = found.is_some_and(|i| {
            i.insert("release_status".into(), status.into());
            i.insert("ttl".into(), ttl.into());
            let entry = serde_json::json!({ "status": status, "timestamp": now });
            match i.get_mut("status_history") {
                Some(serde_json::Value::Array(h)) => h.push(entry),
                _ => {
                    i.insert(
                        "status_history".into(),
                        serde_json::Value::Array(vec![entry]),
                    );
                }
            }
            true
        });
        Box::pin(std::future::ready(Ok(done)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[tokio::test]
    async fn a_listing_larger_than_one_answer_comes_in_pages_and_drops_nothing() {
        let store = MemoryFirmwareStore::default();
        for i in 0..50 {
            let Value::Object(item) = json!({"pk": "c#0x1#a", "version": format!("1.0.{i}"),
                "product_hex": "0x1", "error": "e".repeat(100)})
            else {
                unreachable!()
            };
            store.insert(item);
        }
        let size = |i: &Item| serde_json::to_string(i).unwrap().len();
        let (mut after, mut seen, mut pages) = (None, Vec::new(), 0);
        loop {
            let (page, next) = store
                .list_page(None, None, after, 1_000, &size)
                .await
                .unwrap();
            assert!(!page.is_empty());
            assert!(page.iter().map(size).sum::<usize>() <= 1_000 || page.len() == 1);
            seen.extend(
                page.iter()
                    .map(|i| i["version"].as_str().unwrap().to_owned()),
            );
            pages += 1;
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert!(pages > 5, "{pages}");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 50, "every record once");
        assert_eq!(seen.len(), 50);
    }
}
