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

    /// Every record of `pk` (one product's application), read consistently, every page.
    fn versions(&self, pk: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;

    /// Puts `claim` on the record while its status is `claim.from` and it holds no claim
    /// made at or after `stale_before` (an older one, left by a crashed transition, is
    /// taken over); `false`: it is not so (nothing written).
    fn claim(
        &self,
        pk: String,
        version: String,
        claim: Claim,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Sets the status as `change` says, with its history entry (and `ttl`), while the
    /// record's status is `change.was` and, when `change.claim` names one, that claim
    /// holds (it is removed); with no claim named, only on a record that holds none. The
    /// record as it is now; `None`: the condition failed (nothing written).
    fn set_status(
        &self,
        pk: String,
        version: String,
        change: Change,
    ) -> BoxFuture<'_, Result<Option<Item>, StoreError>>;

    /// Removes the claim `id` (an undone transition: the status is left as it was).
    fn unclaim(
        &self,
        pk: String,
        version: String,
        id: String,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Undoes a [`FirmwareStore::set_status`] that claimed nothing: back to `revert.to`
    /// from `revert.from`, its history entry (at `revert.entry`) and its `ttl` removed,
    /// while the record is as that change left it; `false`: it is not.
    fn revert(
        &self,
        pk: String,
        version: String,
        revert: Revert,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// The attribute that holds a transition in progress. Our own: FireFly's readers never
/// see it in an answer of ours (every one strips it), and it lives only while a
/// transition's work runs (seconds).
pub const CLAIM: &str = "transition_claim";

/// A transition in progress on a record: a status change whose work elsewhere (public
/// files, CloudFront) runs between its claim and its completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Random: whose claim it is.
    pub id: String,
    pub from: String,
    pub to: String,
    /// When it was made, epoch seconds: a claim older than the function's timeout was left
    /// by an invocation that no longer runs.
    pub at: i64,
}

impl Claim {
    /// The claim a record holds, if any.
    pub fn of(item: &Item) -> Option<Claim> {
        let m = item.get(CLAIM)?.as_object()?;
        let text = |k: &str| {
            m.get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        Some(Claim {
            id: text("id")?,
            from: text("from")?,
            to: text("to")?,
            at: m.get("at").and_then(serde_json::Value::as_i64).unwrap_or(0),
        })
    }

    fn to_value(&self) -> serde_json::Value {
        serde_json::json!({"id": self.id, "from": self.from, "to": self.to, "at": self.at})
    }
}

/// A status change ([`FirmwareStore::set_status`]).
#[derive(Debug, Clone)]
pub struct Change {
    pub was: String,
    pub to: String,
    pub now: i64,
    /// When the record is purged (REVOKED, DELETED).
    pub ttl: Option<i64>,
    /// The claim that must hold (and goes); `None`: the record must hold no claim.
    pub claim: Option<String>,
}

/// A change undone ([`FirmwareStore::revert`]).
#[derive(Debug, Clone)]
pub struct Revert {
    /// The status the change wrote...
    pub from: String,
    /// ...and the one it replaced.
    pub to: String,
    /// The index of the history entry the change appended.
    pub entry: usize,
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
        // An index is read eventually, never consistently.
        Box::pin(self.query_all(Some("zip_name-index"), "zip_name", zip_name, false))
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
            self.written(put.send().await)
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
            self.written(out)
        })
    }

    fn claim(
        &self,
        pk: String,
        version: String,
        claim: Claim,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let out = self
                .update(pk, version)
                .update_expression("SET #c = :claim")
                .condition_expression("#s = :was AND (attribute_not_exists(#c) OR #c.#at < :stale)")
                .expression_attribute_names("#s", "release_status")
                .expression_attribute_names("#c", CLAIM)
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":was", AttributeValue::S(claim.from.clone()))
                .expression_attribute_values(":stale", AttributeValue::N(stale_before.to_string()))
                .expression_attribute_values(":claim", to_attribute(&claim.to_value()))
                .send()
                .await;
            self.written(out)
        })
    }

    fn set_status(
        &self,
        pk: String,
        version: String,
        change: Change,
    ) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        Box::pin(async move {
            let entry = AttributeValue::M(
                [
                    ("status".to_owned(), AttributeValue::S(change.to.clone())),
                    (
                        "timestamp".to_owned(),
                        AttributeValue::N(change.now.to_string()),
                    ),
                ]
                .into(),
            );
            let mut set =
                "SET #s = :new, #h = list_append(if_not_exists(#h, :empty), :entry)".to_owned();
            if change.ttl.is_some() {
                set.push_str(", #ttl = :ttl");
            }
            let mut update = self
                .update(pk, version)
                .expression_attribute_names("#s", "release_status")
                .expression_attribute_names("#h", "status_history")
                .expression_attribute_names("#c", CLAIM)
                .expression_attribute_values(":new", AttributeValue::S(change.to.clone()))
                .expression_attribute_values(":was", AttributeValue::S(change.was.clone()))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":entry", AttributeValue::L(vec![entry]))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
            if let Some(ttl) = change.ttl {
                update = update
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()));
            }
            update = match &change.claim {
                Some(id) => update
                    .update_expression(format!("{set} REMOVE #c"))
                    .condition_expression("#s = :was AND #c.#id = :id")
                    .expression_attribute_names("#id", "id")
                    .expression_attribute_values(":id", AttributeValue::S(id.clone())),
                None => update
                    .update_expression(set)
                    .condition_expression("#s = :was AND attribute_not_exists(#c)"),
            };
            match update.send().await {
                Ok(out) => Ok(Some(from_item(&out.attributes.unwrap_or_default()))),
                Err(e) => classify(e, &self.table, WORKFLOW).map(|()| None),
            }
        })
    }

    fn unclaim(
        &self,
        pk: String,
        version: String,
        id: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let out = self
                .update(pk, version)
                .update_expression("REMOVE #c")
                .condition_expression("#c.#id = :id")
                .expression_attribute_names("#c", CLAIM)
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":id", AttributeValue::S(id))
                .send()
                .await;
            match out {
                Ok(_) => Ok(()),
                // Not ours any more: nothing of ours to remove.
                Err(e) => classify(e, &self.table, WORKFLOW),
            }
        })
    }

    fn revert(
        &self,
        pk: String,
        version: String,
        revert: Revert,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let out = self
                .update(pk, version)
                // The index is part of the expression: DynamoDB takes no value for it.
                .update_expression(format!("SET #s = :to REMOVE #h[{}], #ttl", revert.entry))
                .condition_expression("#s = :from AND size(#h) = :len AND attribute_not_exists(#c)")
                .expression_attribute_names("#s", "release_status")
                .expression_attribute_names("#h", "status_history")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#c", CLAIM)
                .expression_attribute_values(":to", AttributeValue::S(revert.to))
                .expression_attribute_values(":from", AttributeValue::S(revert.from))
                .expression_attribute_values(
                    ":len",
                    AttributeValue::N((revert.entry + 1).to_string()),
                )
                .send()
                .await;
            self.written(out)
        })
    }

    fn versions(&self, pk: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        // Consistent: a status just changed is what OTA answers by.
        Box::pin(self.query_all(None, "pk", pk, true))
    }
}

impl DynamoFirmwareStore {
    /// Every item whose `key` is `value` (in `index`, or the table), every page.
    async fn query_all(
        &self,
        index: Option<&str>,
        key: &str,
        value: String,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut start: Key = None;
        let mut items = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key)
                .expression_attribute_values(":k", AttributeValue::S(value.clone()))
                .consistent_read(consistent)
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
    }

    /// A conditional write's outcome: written, or its condition failed (`false`).
    fn written<O, E>(
        &self,
        out: Result<
            O,
            aws_sdk_dynamodb::error::SdkError<
                E,
                aws_smithy_runtime_api::client::orchestrator::HttpResponse,
            >,
        >,
    ) -> Result<bool, StoreError>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match out {
            Ok(_) => Ok(true),
            Err(e) => classify(e, &self.table, WORKFLOW).map(|()| false),
        }
    }

    fn update(
        &self,
        pk: String,
        version: String,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("version", AttributeValue::S(version))
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
            push_history(i, status, now);
            true
        });
        Box::pin(std::future::ready(Ok(done)))
    }

    fn versions(&self, pk: String) -> BoxFuture<'_, Result<Vec<Item>, StoreError>> {
        let found = self
            .items
            .locked()
            .iter()
            .filter(|i| text(i, "pk") == Some(&pk))
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn claim(
        &self,
        pk: String,
        version: String,
        claim: Claim,
        stale_before: i64,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let done = self.with_record(&pk, &version, |i| {
            let free = Claim::of(i).is_none_or(|c| c.at < stale_before);
            if text(i, "release_status") != Some(&claim.from) || !free {
                return false;
            }
            i.insert(CLAIM.into(), claim.to_value());
            true
        });
        Box::pin(std::future::ready(Ok(done)))
    }

    fn set_status(
        &self,
        pk: String,
        version: String,
        change: Change,
    ) -> BoxFuture<'_, Result<Option<Item>, StoreError>> {
        let mut now = None;
        self.with_record(&pk, &version, |i| {
            let held = Claim::of(i).map(|c| c.id);
            if text(i, "release_status") != Some(&change.was) || held != change.claim {
                return false;
            }
            i.remove(CLAIM);
            i.insert("release_status".into(), change.to.clone().into());
            if let Some(ttl) = change.ttl {
                i.insert("ttl".into(), ttl.into());
            }
            push_history(i, &change.to, change.now);
            now = Some(i.clone());
            true
        });
        Box::pin(std::future::ready(Ok(now)))
    }

    fn unclaim(
        &self,
        pk: String,
        version: String,
        id: String,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.with_record(&pk, &version, |i| {
            let ours = Claim::of(i).is_some_and(|c| c.id == id);
            if ours {
                i.remove(CLAIM);
            }
            ours
        });
        Box::pin(std::future::ready(Ok(())))
    }

    fn revert(
        &self,
        pk: String,
        version: String,
        revert: Revert,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let done = self.with_record(&pk, &version, |i| {
            let len = i
                .get("status_history")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len);
            if text(i, "release_status") != Some(&revert.from)
                || len != revert.entry + 1
                || i.contains_key(CLAIM)
            {
                return false;
            }
            i.insert("release_status".into(), revert.to.clone().into());
            i.remove("ttl");
            if let Some(serde_json::Value::Array(h)) = i.get_mut("status_history") {
                h.remove(revert.entry);
            }
            true
        });
        Box::pin(std::future::ready(Ok(done)))
    }
}

impl MemoryFirmwareStore {
    /// Runs `change` on the record `(pk, version)` under the lock (as DynamoDB runs a
    /// conditional write); whether it changed it (`false` also when there is none).
    fn with_record(&self, pk: &str, version: &str, change: impl FnOnce(&mut Item) -> bool) -> bool {
        let mut items = self.items.locked();
        items
            .iter_mut()
            .find(|i| text(i, "pk") == Some(pk) && text(i, "version") == Some(version))
            .is_some_and(change)
    }
}

/// Appends a `status_history` entry, as `list_append(if_not_exists(...))` does.
fn push_history(item: &mut Item, status: &str, now: i64) {
    let entry = serde_json::json!({ "status": status, "timestamp": now });
    match item.get_mut("status_history") {
        Some(serde_json::Value::Array(h)) => h.push(entry),
        _ => {
            item.insert(
                "status_history".into(),
                serde_json::Value::Array(vec![entry]),
            );
        }
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
