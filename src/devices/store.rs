//! Where devices are kept: FireFly's `firefly-devices` items, through DynamoDB or in memory.
//!
//! Item: `uuid` (S, hash key), `product_id`, `product_hex` (S, the GSI's key),
//! `device_class`, `public_key` (S, Base64 as sent), `registration_date` (S, UTC ISO 8601
//! with microseconds), `registering_application`, `registering_version`, `mcu` (M, as
//! sent), `registered_by_email` (copied from the key's `generated_by_email`), and `network`
//! and `partitions` (L) only when sent. Values keep their JSON types: strings S, numbers N,
//! booleans BOOL, null NULL, arrays L, objects M.
//!
//! Registering redeems a key in the same atomic step: one `TransactWriteItems` deletes the
//! key only if it exists and is live, and puts the device only if its `uuid` is new, so two
//! devices racing with one key cannot both register.

use crate::aws::errors::{StoreError, classify, refused};
use crate::handler::BoxFuture;
use crate::registration_keys::store::MemoryKeyStore;
use crate::sync::Locked;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// A device item, as JSON.
pub type Item = Map<String, Value>;

/// One page of a listing: its devices, and the UUID to continue after when more follow.
pub type Page = (Vec<Item>, Option<String>);

/// A device to register: its item without `registered_by_email`, which the store copies
/// from the key it redeems.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub uuid: String,
    pub item: Item,
}

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The device is stored and the key is gone.
    Registered,
    /// The device was already there: nothing changed, the key is still live.
    AlreadyRegistered,
    /// No live key has this value (missing, expired, or just used by another device).
    KeyRefused,
}

/// Storage for devices.
pub trait DeviceStore: Send + Sync {
    /// Redeems `key` (live at `now`) and stores `device`, atomically.
    fn register<'a>(
        &'a self,
        key: &'a str,
        now: i64,
        device: NewDevice,
    ) -> BoxFuture<'a, Result<Registered, StoreError>>;

    /// The device stored under `uuid`, if any.
    fn get<'a>(&'a self, uuid: &'a str) -> BoxFuture<'a, Result<Option<Item>, StoreError>>;

    /// Devices in the table's order, after the device `after` (from the start: `None`), as
    /// many as fit `budget` by `size` (at least one), every Scan page read as needed. The
    /// second value is the UUID to continue after, when there are more.
    fn list_page<'a>(
        &'a self,
        after: Option<String>,
        budget: usize,
        size: &'a (dyn Fn(&Item) -> usize + Sync),
    ) -> BoxFuture<'a, Result<Page, StoreError>>;

    /// Sets (`Some`) or removes (`None`) the device's `last_backup_date`, only on a device
    /// that exists (never a stub item for a deleted one). `false`: no such device.
    fn mark_backup<'a>(
        &'a self,
        uuid: &'a str,
        date: Option<String>,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Records a device request's nonce until `expires` (epoch s). `false`: it was already
    /// recorded and has not expired at `now`, so the request is a replay.
    fn claim_nonce<'a>(
        &'a self,
        uuid: &'a str,
        nonce: &'a str,
        expires: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
}

/// What a cancelled registration transaction means, from its cancellation reasons (the key's
/// delete first, the device's put second). A failed condition is an answer (FireFly's
/// order: the key is judged first); contention and throttling pass (503); anything else
/// (a validation error, an item or item collection too large) will not pass by retrying
/// and is ours to fix: 500 with the reasons in the log.
pub fn cancelled(codes: &[&str]) -> Result<Registered, StoreError> {
    const CONDITION: &str = "ConditionalCheckFailed";
    const PASSING: [&str; 4] = [
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    ];
    let reasons = codes.join(", ");
    if codes.first() == Some(&CONDITION) {
        Ok(Registered::KeyRefused)
    } else if codes.get(1) == Some(&CONDITION) {
        Ok(Registered::AlreadyRegistered)
    } else if codes.iter().any(|c| PASSING.contains(c)) {
        Err(StoreError::Unavailable(format!(
            "transaction cancelled: {reasons}"
        )))
    } else {
        Err(StoreError::Other(format!(
            "transaction cancelled for good (not worth a retry): {reasons}"
        )))
    }
}

/// An item's size as DynamoDB counts it against its 400 KB limit: each attribute's name
/// and value; strings their UTF-8 bytes; numbers 1 byte per two significant digits plus 1;
/// booleans and nulls 1; lists and maps 3 bytes, plus 1 per element, plus their elements
/// (and a map element's name).
pub fn item_size(item: &Item) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::Null | Value::Bool(_) => 1,
            Value::String(s) => s.len(),
            Value::Number(n) => {
                let text = n.to_string();
                let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
                let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
                let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
                significant.max(1).div_ceil(2) + 1
            }
            Value::Array(a) => 3 + a.iter().map(|e| 1 + value(e)).sum::<usize>(),
            Value::Object(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value(e)).sum::<usize>(),
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// The registration-keys item that records a used nonce: a key no registration can redeem
/// (FireFly's function and ours take only 6 characters), and no listing shows (they list
/// items with the caller's `generated_by_sub`, which this lacks); the table's TTL on `ttl`
/// deletes it (docs/security.md, "Replayed device requests").
pub fn nonce_key(uuid: &str, nonce: &str) -> String {
    format!("device-nonce#{uuid}#{nonce}")
}

/// DynamoDB's limits on a value: numbers within its range (38 digits, magnitude below
/// 10^126), map keys not empty, at most 32 levels of nesting. A value past them would be
/// refused by DynamoDB (a 500 in FireFly's function); the handler answers 400 instead.
pub fn storable(value: &Value) -> bool {
    fn ok(v: &Value, depth: usize) -> bool {
        if depth > 32 {
            return false;
        }
        match v {
            Value::Number(n) => n
                .as_f64()
                .is_some_and(|f| f.is_finite() && (f == 0.0 || (1e-129..1e126).contains(&f.abs()))),
            Value::Array(a) => a.iter().all(|v| ok(v, depth + 1)),
            Value::Object(o) => o.iter().all(|(k, v)| !k.is_empty() && ok(v, depth + 1)),
            _ => true,
        }
    }
    ok(value, 0)
}

/// A JSON value as DynamoDB stores it (the value is [`storable`]).
pub fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_attribute).collect()),
        Value::Object(o) => AttributeValue::M(
            o.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

/// A stored value as JSON: numbers as JSON numbers (FireFly's function sent `"3"`; the
/// console reads both through `Number()`), sets as arrays, binary as Base64.
pub fn from_attribute(value: &AttributeValue) -> Value {
    fn number(n: &str) -> Value {
        if let Ok(i) = n.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = n.parse::<u64>() {
            return Value::from(u);
        }
        n.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(n.to_owned()), Value::Number)
    }
    use base64::Engine as _;
    let b64 = |b: &aws_sdk_dynamodb::primitives::Blob| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()))
    };
    match value {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n),
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_attribute).collect()),
        AttributeValue::M(m) => Value::Object(from_item(m)),
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(|n| number(n)).collect()),
        AttributeValue::B(b) => b64(b),
        AttributeValue::Bs(bs) => Value::Array(bs.iter().map(b64).collect()),
        _ => Value::Null,
    }
}

pub fn from_item(item: &HashMap<String, AttributeValue>) -> Item {
    // Sorted keys: a stable order for the same item, whatever DynamoDB's map order.
    let sorted: BTreeMap<&String, &AttributeValue> = item.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| (k.clone(), from_attribute(v)))
        .collect()
}

pub struct DynamoDeviceStore {
    client: Client,
    devices: String,
    /// The registration-keys table, for the routes that redeem keys.
    keys: Option<String>,
}

impl DynamoDeviceStore {
    pub fn new(client: Client, devices: String, keys: Option<String>) -> Self {
        Self {
            client,
            devices,
            keys,
        }
    }
}

const KEYS_WORKFLOW: &str = crate::registration_keys::WORKFLOW;
const DEVICES_WORKFLOW: &str = super::WORKFLOW;

impl DeviceStore for DynamoDeviceStore {
    fn register<'a>(
        &'a self,
        key: &'a str,
        now: i64,
        device: NewDevice,
    ) -> BoxFuture<'a, Result<Registered, StoreError>> {
        Box::pin(async move {
            let Some(keys) = &self.keys else {
                return Err(StoreError::Other(
                    "this route registers devices but has no registration-keys table".into(),
                ));
            };
            // The key first, as FireFly's function reads it: its email goes on the device.
            // A consistent read: a key minted a moment ago is there.
            let read = self
                .client
                .get_item()
                .table_name(keys)
                .key("key", AttributeValue::S(key.to_owned()))
                .consistent_read(true)
                .send()
                .await;
            let found = match read {
                Ok(out) => out.item,
                Err(e) => return Err(refused(e, keys, KEYS_WORKFLOW, "key read")),
            };
            let live = found.as_ref().filter(|item| {
                item.get("ttl")
                    .and_then(|t| t.as_n().ok())
                    .and_then(|t| t.parse::<f64>().ok())
                    .is_some_and(|ttl| ttl > now as f64)
            });
            let Some(key_item) = live else {
                return Ok(Registered::KeyRefused);
            };
            let email = key_item
                .get("generated_by_email")
                .and_then(|e| e.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let mut item: HashMap<String, AttributeValue> = device
                .item
                .iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect();
            item.insert("registered_by_email".into(), AttributeValue::S(email));
            let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Other(e.to_string());
            // The key goes only if it is still the one read: the same owner and expiry the
            // device is credited with (revoked and minted again by someone else meanwhile,
            // it is refused), and still live.
            let owner = key_item.get("generated_by_sub").cloned();
            let redeem = Delete::builder()
                .table_name(keys)
                .key("key", AttributeValue::S(key.to_owned()))
                .condition_expression(if owner.is_some() {
                    "attribute_exists(#k) AND #t > :now AND #t = :ttl AND #s = :sub"
                } else {
                    "attribute_exists(#k) AND #t > :now AND #t = :ttl AND attribute_not_exists(#s)"
                })
                .expression_attribute_names("#k", "key")
                .expression_attribute_names("#t", "ttl")
                .expression_attribute_names("#s", "generated_by_sub")
                .set_expression_attribute_values({
                    let mut v = HashMap::new();
                    v.insert(":now".to_owned(), AttributeValue::N(now.to_string()));
                    v.insert(
                        ":ttl".to_owned(),
                        key_item
                            .get("ttl")
                            .cloned()
                            .unwrap_or(AttributeValue::Null(true)),
                    );
                    if let Some(owner) = owner {
                        v.insert(":sub".to_owned(), owner);
                    }
                    Some(v)
                })
                .build()
                .map_err(build)?;
            let put = Put::builder()
                .table_name(&self.devices)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#u)")
                .expression_attribute_names("#u", "uuid")
                .build()
                .map_err(build)?;
            // The SDK sets a ClientRequestToken and keeps it across its retries: a retry of
            // a transaction that went through succeeds again instead of failing on the
            // key it already deleted.
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(redeem).build())
                .transact_items(TransactWriteItem::builder().put(put).build())
                .send()
                .await;
            match result {
                Ok(_) => Ok(Registered::Registered),
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        TransactWriteItemsError::TransactionCanceledException(_)
                    ) =>
                {
                    let TransactWriteItemsError::TransactionCanceledException(c) = e.err() else {
                        unreachable!("matched above")
                    };
                    let codes: Vec<&str> = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    cancelled(&codes)
                }
                Err(e) => Err(refused(e, &self.devices, DEVICES_WORKFLOW, "transaction")),
            }
        })
    }

    fn get<'a>(&'a self, uuid: &'a str) -> BoxFuture<'a, Result<Option<Item>, StoreError>> {
        Box::pin(async move {
            let read = self
                .client
                .get_item()
                .table_name(&self.devices)
                .key("uuid", AttributeValue::S(uuid.to_owned()))
                .consistent_read(true)
                .send()
                .await;
            match read {
                Ok(out) => Ok(out.item.as_ref().map(from_item)),
                Err(e) => Err(refused(e, &self.devices, DEVICES_WORKFLOW, "device read")),
            }
        })
    }

    fn list_page<'a>(
        &'a self,
        after: Option<String>,
        budget: usize,
        size: &'a (dyn Fn(&Item) -> usize + Sync),
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async move {
            // Scan pages over LastEvaluatedKey (the SDK's paginator costs binary size), from
            // the last device a client was given: any item's key is a valid start.
            let mut items = Vec::new();
            let mut used = 0;
            let mut start =
                after.map(|uuid| HashMap::from([("uuid".to_owned(), AttributeValue::S(uuid))]));
            loop {
                let page = self
                    .client
                    .scan()
                    .table_name(&self.devices)
                    .set_exclusive_start_key(start)
                    .send()
                    .await;
                let page = match page {
                    Ok(page) => page,
                    Err(e) => return Err(refused(e, &self.devices, DEVICES_WORKFLOW, "scan")),
                };
                for raw in page.items() {
                    let item = from_item(raw);
                    let n = size(&item);
                    if !items.is_empty() && used + n > budget {
                        let last = items
                            .last()
                            .and_then(|i: &Item| i.get("uuid"))
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                        return Ok((items, last));
                    }
                    used += n;
                    items.push(item);
                }
                start = page.last_evaluated_key;
                if start.is_none() {
                    return Ok((items, None));
                }
            }
        })
    }

    fn mark_backup<'a>(
        &'a self,
        uuid: &'a str,
        date: Option<String>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.mark_backup_now(uuid, date))
    }

    fn claim_nonce<'a>(
        &'a self,
        uuid: &'a str,
        nonce: &'a str,
        expires: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.claim_nonce_now(uuid, nonce, expires, now))
    }
}

impl DynamoDeviceStore {
    fn keys_table(&self, what: &str) -> Result<&str, StoreError> {
        self.keys.as_deref().ok_or_else(|| {
            StoreError::Other(format!(
                "this route {what} but has no registration-keys table"
            ))
        })
    }
}

/// The extra operations of the signed device routes (nonces) and the backups.
impl DynamoDeviceStore {
    async fn mark_backup_now(&self, uuid: &str, date: Option<String>) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.devices)
            .key("uuid", AttributeValue::S(uuid.to_owned()))
            .condition_expression("attribute_exists(#uuid)")
            .expression_attribute_names("#uuid", "uuid")
            .expression_attribute_names("#date", "last_backup_date");
        let update = match date {
            Some(d) => update
                .update_expression("SET #date = :date")
                .expression_attribute_values(":date", AttributeValue::S(d)),
            None => update.update_expression("REMOVE #date"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) => classify(e, &self.devices, DEVICES_WORKFLOW).map(|()| false),
        }
    }

    async fn claim_nonce_now(
        &self,
        uuid: &str,
        nonce: &str,
        expires: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let keys = self.keys_table("checks device nonces")?;
        let put = self
            .client
            .put_item()
            .table_name(keys)
            .item("key", AttributeValue::S(nonce_key(uuid, nonce)))
            .item("ttl", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(#key) OR #ttl < :now")
            .expression_attribute_names("#key", "key")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) => classify(e, keys, KEYS_WORKFLOW).map(|()| false),
        }
    }
}

/// Devices in memory (local runs), redeeming keys from the process's in-memory keys.
pub struct MemoryDeviceStore {
    keys: Arc<MemoryKeyStore>,
    devices: Mutex<BTreeMap<String, Item>>,
    /// Used nonces and when each expires.
    nonces: Mutex<HashMap<String, i64>>,
}

impl MemoryDeviceStore {
    pub fn new(keys: Arc<MemoryKeyStore>) -> Self {
        Self {
            keys,
            devices: Mutex::new(BTreeMap::new()),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Item>> {
        // Every change is one insert: a poisoned lock still guards a consistent map.
        self.devices.locked()
    }
}

impl DeviceStore for MemoryDeviceStore {
    fn register<'a>(
        &'a self,
        key: &'a str,
        now: i64,
        device: NewDevice,
    ) -> BoxFuture<'a, Result<Registered, StoreError>> {
        // Devices, then keys: the one lock order, so the step is atomic, as the transaction.
        let mut devices = self.lock();
        let mut keys = self.keys.lock();
        let live = keys
            .get(key)
            .filter(|k| k.expires_at > now)
            .map(|k| k.email.clone());
        let outcome = match (live, devices.entry(device.uuid)) {
            (None, _) => Registered::KeyRefused,
            (Some(_), std::collections::btree_map::Entry::Occupied(_)) => {
                Registered::AlreadyRegistered
            }
            (Some(email), std::collections::btree_map::Entry::Vacant(slot)) => {
                keys.remove(key);
                let mut item = device.item;
                item.insert("registered_by_email".into(), Value::String(email));
                slot.insert(item);
                Registered::Registered
            }
        };
        Box::pin(std::future::ready(Ok(outcome)))
    }

    fn get<'a>(&'a self, uuid: &'a str) -> BoxFuture<'a, Result<Option<Item>, StoreError>> {
        let found = self.lock().get(uuid).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn list_page<'a>(
        &'a self,
        after: Option<String>,
        budget: usize,
        size: &'a (dyn Fn(&Item) -> usize + Sync),
    ) -> BoxFuture<'a, Result<Page, StoreError>> {
        let devices = self.lock();
        let mut items = Vec::new();
        let mut used = 0;
        let mut next = None;
        let mut last: Option<&String> = None;
        let from = match &after {
            Some(a) => std::ops::Bound::Excluded(a.clone()),
            None => std::ops::Bound::Unbounded,
        };
        for (uuid, item) in devices.range((from, std::ops::Bound::Unbounded)) {
            let n = size(item);
            if !items.is_empty() && used + n > budget {
                next = last.cloned();
                break;
            }
            used += n;
            last = Some(uuid);
            items.push(item.clone());
        }
        Box::pin(std::future::ready(Ok((items, next))))
    }

    fn mark_backup<'a>(
        &'a self,
        uuid: &'a str,
        date: Option<String>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut devices = self.lock();
        let found = match devices.get_mut(uuid) {
            None => false,
            Some(item) => {
                match date {
                    Some(d) => item.insert("last_backup_date".into(), Value::String(d)),
                    None => item.remove("last_backup_date"),
                };
                true
            }
        };
        Box::pin(std::future::ready(Ok(found)))
    }

    fn claim_nonce<'a>(
        &'a self,
        uuid: &'a str,
        nonce: &'a str,
        expires: i64,
        now: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let mut nonces = self.nonces.locked();
        // Expired entries go as new ones come: the map holds about one window of requests.
        nonces.retain(|_, until| *until >= now);
        let fresh = match nonces.entry(nonce_key(uuid, nonce)) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(expires);
                true
            }
        };
        Box::pin(std::future::ready(Ok(fresh)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration_keys::store::{KeyStore, NewKey};
    use serde_json::json;

    #[test]
    fn cancellations_are_an_answer_a_503_or_a_500_by_their_reasons() {
        assert_eq!(
            cancelled(&["ConditionalCheckFailed", "None"]),
            Ok(Registered::KeyRefused)
        );
        assert_eq!(
            cancelled(&["None", "ConditionalCheckFailed"]),
            Ok(Registered::AlreadyRegistered)
        );
        for passing in ["TransactionConflict", "ThrottlingError"] {
            assert!(matches!(
                cancelled(&["None", passing]),
                Err(StoreError::Unavailable(_))
            ));
        }
        // Permanent: not "retry in 1 s" (issue 25, item 7).
        for permanent in ["ValidationError", "ItemCollectionSizeLimitExceeded"] {
            let e = cancelled(&["None", permanent]).unwrap_err();
            assert!(
                matches!(e, StoreError::Other(ref m) if m.contains(permanent)),
                "{e:?}"
            );
            let api: crate::error::ApiError = e.into();
            assert_eq!(api.status().as_u16(), 500);
        }
    }

    #[test]
    fn item_sizes_are_counted_as_dynamodb_counts_them() {
        let item = |v: Value| v.as_object().unwrap().clone();
        // AWS's examples: a string is its UTF-8 bytes, with the name.
        assert_eq!(item_size(&item(json!({"name": "abc"}))), 4 + 3);
        assert_eq!(item_size(&item(json!({"e": "\u{e9}"}))), 1 + 2);
        // Numbers: 1 byte per two significant digits, plus 1.
        assert_eq!(item_size(&item(json!({"n": 0}))), 1 + 2);
        assert_eq!(item_size(&item(json!({"n": 12345}))), 1 + 4);
        assert_eq!(item_size(&item(json!({"n": 1000}))), 1 + 2);
        assert_eq!(item_size(&item(json!({"b": true, "z": null}))), 2 + 2);
        // Lists and maps: 3 bytes, 1 per element, and the elements (and names).
        assert_eq!(item_size(&item(json!({"l": []}))), 1 + 3);
        assert_eq!(item_size(&item(json!({"l": [0, 0]}))), 1 + 3 + 2 * (1 + 2));
        assert_eq!(
            item_size(&item(json!({"m": {"ab": "x"}}))),
            1 + 3 + 1 + 2 + 1
        );
        // Where JSON's length undercounts: 150,000 zeros are 300 KB of JSON and 450 KB here.
        let zeros = item(json!({"network": vec![0; 150_000]}));
        assert!(serde_json::to_vec(&zeros).unwrap().len() < 310_000);
        assert!(item_size(&zeros) > 400 * 1024);
    }

    #[test]
    fn json_values_round_trip_through_attributes() {
        let v = json!({"a": 1, "b": 1.5, "c": "x", "d": [true, null], "e": {"f": -7}, "g": ""});
        assert!(storable(&v));
        let back = from_attribute(&to_attribute(&v));
        assert_eq!(back, v);
        for bad in [json!(1e200), json!({"": 1}), json!(1e-200)] {
            assert!(!storable(&bad), "{bad}");
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(!storable(&deep));
    }

    async fn keys_with(key: &str, ttl: i64) -> Arc<MemoryKeyStore> {
        let keys = Arc::new(MemoryKeyStore::new());
        keys.insert_unless_live(NewKey {
            key,
            user_id: "u",
            email: "u@example.com",
            nonce: "n",
            created_at: ttl - 1800,
            expires_at: ttl,
        })
        .await
        .unwrap();
        keys
    }

    fn device(uuid: &str) -> NewDevice {
        let mut item = Item::new();
        item.insert("uuid".into(), json!(uuid));
        NewDevice {
            uuid: uuid.into(),
            item,
        }
    }

    #[tokio::test]
    async fn a_key_registers_one_device_once_and_expired_keys_none() {
        let keys = keys_with("AAAAAA", 1000).await;
        let store = MemoryDeviceStore::new(Arc::clone(&keys));
        assert_eq!(
            store.register("AAAAAA", 999, device("d1")).await,
            Ok(Registered::Registered)
        );
        assert!(keys.is_empty(), "the key is used up");
        assert_eq!(
            store.get("d1").await.unwrap().unwrap()["registered_by_email"],
            "u@example.com"
        );
        assert_eq!(
            store.register("AAAAAA", 999, device("d2")).await,
            Ok(Registered::KeyRefused)
        );
        // An expired key that nothing deleted yet is refused (FireFly accepted it).
        let keys = keys_with("BBBBBB", 1000).await;
        let store = MemoryDeviceStore::new(Arc::clone(&keys));
        assert_eq!(
            store.register("BBBBBB", 1000, device("d3")).await,
            Ok(Registered::KeyRefused)
        );
        // A device already there: nothing changes, and the key stays live.
        let keys = keys_with("CCCCCC", 1000).await;
        let store = MemoryDeviceStore::new(Arc::clone(&keys));
        store.lock().insert("d4".into(), Item::new());
        assert_eq!(
            store.register("CCCCCC", 10, device("d4")).await,
            Ok(Registered::AlreadyRegistered)
        );
        assert_eq!(keys.len(), 1);
        assert!(store.get("d4").await.unwrap().unwrap().is_empty());
    }

    // The store reads no clock of its own: `now` is the caller's injected clock's reading.
    const SIGNED: i64 = 1_795_731_191;
    const KEPT_UNTIL: i64 = SIGNED + 12;

    fn memory_store() -> MemoryDeviceStore {
        MemoryDeviceStore::new(Arc::new(MemoryKeyStore::new()))
    }

    #[tokio::test]
    async fn a_nonce_is_accepted_once_per_device_while_its_record_lasts() {
        let store = memory_store();
        let claim = |uuid, nonce, now| store.claim_nonce(uuid, nonce, KEPT_UNTIL, now);
        assert_eq!(claim("d1", "n1", SIGNED).await, Ok(true));
        // Replayed, up to the last second the record is kept.
        assert_eq!(claim("d1", "n1", SIGNED).await, Ok(false));
        assert_eq!(claim("d1", "n1", KEPT_UNTIL).await, Ok(false));
        // The same nonce from another device is that device's own first use.
        assert_eq!(claim("d2", "n1", SIGNED).await, Ok(true));
        assert_eq!(claim("d2", "n1", SIGNED).await, Ok(false));
        // Another nonce from the first device.
        assert_eq!(claim("d1", "n2", SIGNED).await, Ok(true));
    }

    #[tokio::test]
    async fn an_expired_nonce_record_can_be_claimed_again() {
        let store = memory_store();
        assert_eq!(
            store.claim_nonce("d1", "n1", KEPT_UNTIL, SIGNED).await,
            Ok(true)
        );
        // Past its record the signed timestamp fails the window anyway, so the record need
        // not last: the nonce is claimed afresh, and held again until its new expiry.
        let later = KEPT_UNTIL + 1;
        assert_eq!(
            store.claim_nonce("d1", "n1", later + 12, later).await,
            Ok(true)
        );
        assert_eq!(
            store.claim_nonce("d1", "n1", later + 12, later).await,
            Ok(false)
        );
        // Clearing expired records takes only those: a live one still refuses its replay.
        assert_eq!(
            store.claim_nonce("d2", "n2", later + 12, later).await,
            Ok(true)
        );
        assert_eq!(
            store.claim_nonce("d2", "n2", later + 12, later + 12).await,
            Ok(false)
        );
    }
}
