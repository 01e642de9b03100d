//! End to end, the device-registration drop-in on FireFly's two tables, in moto's DynamoDB
//! (dynalite has no `TransactWriteItems`): mint (ours), register (a simulated controller),
//! check (signed as the firmware signs), list (a super user); each function its own
//! `bootstrap` process with only its own environment. Items written by FireFly's Python
//! functions, in their exact shape, work through ours.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::dynamo::{Dynalite, n, s};
use support::faults::Fault;
use support::lambda::Function;
use support::lambda::Outcome;
use support::*;

const NOW: i64 = 1_795_731_191;
const ALICE: &str = "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c";
const REGISTER: &str = "firefly-func-api-devices-register-post";
const CHECK: &str = "firefly-func-api-devices-registration-get";
const LIST: &str = "firefly-func-api-devices-get";

struct Tables {
    keys: String,
    devices: String,
}

fn tables() -> Tables {
    let db = Dynalite::shared_moto();
    let t = Tables {
        keys: unique_table("keys"),
        devices: unique_table("devices"),
    };
    db.create_table(&t.keys);
    db.create_devices_table(&t.devices);
    t
}

/// `function` on moto with both tables named and the clock at `NOW`.
fn start(function: &str, t: &Tables) -> Function {
    start_at(function, t, &Dynalite::shared_moto().endpoint())
}

/// `function` with both tables at `endpoint` (moto, or a proxy in front of it).
fn start_at(function: &str, t: &Tables, endpoint: &str) -> Function {
    let env = env_of(
        function,
        &[
            ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", t.keys.as_str()),
            ("DYNAMODB_DEVICES_TABLE_NAME", t.devices.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    );
    Function::start(&env)
}

fn example(name: &str) -> Value {
    let path = format!("{}/events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn key_pair() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn public_key(pair: &EcdsaKeyPair) -> String {
    STANDARD.encode(pair.public_key().as_ref())
}

/// The firmware's registration request, as the shipped example event carries it.
fn register_event(key: &str, uuid: &str, pair: &EcdsaKeyPair) -> Value {
    let mut e = example("devices-register-post");
    e["headers"]["x-registration-key"] = key.into();
    let mut body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    body["uuid"] = uuid.into();
    body["public_key"] = public_key(pair).into();
    e["body"] = body.to_string().into();
    e
}

/// A registration check signed as the firmware signs it, at `timestamp`.
fn check_event(uuid: &str, pair: &EcdsaKeyPair, timestamp: &str) -> Value {
    let mut e = example("devices-uuid-registration-get");
    let path = format!("/devices/{uuid}/registration");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"]["uuid"] = uuid.into();
    // A fresh nonce a request, as the firmware draws one (a repeated one is a replay).
    let mut nonce = [0u8; 32];
    ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut nonce).unwrap();
    let mut message = nonce.to_vec();
    message.extend_from_slice(timestamp.as_bytes());
    let sig = pair.sign(&SystemRandom::new(), &message).unwrap();
    e["headers"]["x-device-uuid"] = uuid.into();
    e["headers"]["x-device-nonce"] = STANDARD.encode(nonce).into();
    e["headers"]["x-device-timestamp"] = timestamp.into();
    e["headers"]["x-device-signature"] = STANDARD.encode(sig.as_ref()).into();
    e
}

fn list_event(groups: Option<&str>) -> Value {
    let mut e = example("devices-get");
    let claims = &mut e["requestContext"]["authorizer"]["jwt"]["claims"];
    match groups {
        Some(g) => claims["cognito:groups"] = g.into(),
        None => {
            claims.as_object_mut().unwrap().remove("cognito:groups");
        }
    }
    e
}

fn mint(t: &Tables) -> String {
    let mut post = start(FUNCTION, t);
    let mut e = event_for(ALICE);
    e["requestContext"]["authorizer"]["jwt"]["claims"]["email"] = "alice@example.com".into();
    let r = post.invoke(&e).http();
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["key"].as_str().unwrap().to_owned()
}

/// What the firmware reads: the status, and FireFly's `{"message"}` on a refusal.
fn refused(r: &support::lambda::HttpResponse, status: u16, message: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json(), json!({ "message": message }));
}

const TIMESTAMP: &str = "2026-11-26T22:13:11Z"; // NOW

#[test]
fn mint_register_check_list_on_firefly_tables() {
    let t = tables();
    let key = mint(&t);
    let pair = key_pair();
    let uuid = "6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10";
    let mut register = start(REGISTER, &t);
    let r = register.invoke(&register_event(&key, uuid, &pair)).http();
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.body.is_empty());

    // FireFly's device item, attribute by attribute, and the key is gone.
    let db = Dynalite::shared_moto();
    let item = db.get_device(&t.devices, uuid).expect("device stored");
    let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "device_class",
            "mcu",
            "network",
            "product_hex",
            "product_id",
            "public_key",
            "registered_by_email",
            "registering_application",
            "registering_version",
            "registration_date",
            "uuid"
        ]
    );
    assert_eq!(s(&item, "registered_by_email"), "alice@example.com");
    assert_eq!(
        s(&item, "registration_date"),
        "2026-11-26T22:13:11.000000+00:00"
    );
    assert_eq!(s(&item, "public_key"), public_key(&pair));
    let mcu = item["mcu"].as_m().unwrap();
    assert_eq!(n(mcu, "revision"), 3);
    assert!(item["network"].as_l().is_ok());
    assert!(db.get(&t.keys, &key).is_none(), "the key is used up");

    // The firmware's check: 200 with exactly FireFly's seven fields.
    let mut check = start(CHECK, &t);
    let signed = check_event(uuid, &pair, TIMESTAMP);
    let r = check.invoke(&signed).http();
    assert_eq!(r.status, 200, "{r:?}");
    // The same signed headers again (captured and replayed within the window): 401, and the
    // nonce's record is an item no registration can redeem and no listing shows.
    refused(
        &check.invoke(&signed).http(),
        401,
        "X-Device-Nonce has already been used",
    );
    let nonce = signed["headers"]["x-device-nonce"].as_str().unwrap();
    let record = db
        .get(&t.keys, &format!("device-nonce#{uuid}#{nonce}"))
        .expect("the nonce is recorded in the keys table");
    // Kept until the signed instant has left the ±10 s window, and TTL deletes it.
    assert_eq!(n(&record, "ttl"), NOW + 10 + 2);
    assert_eq!(record.len(), 2, "only key and ttl: {record:?}");
    let body = r.json();
    assert_eq!(body.as_object().unwrap().len(), 7, "{body}");
    assert_eq!(body["uuid"], uuid);
    assert_eq!(body["product_hex"], "0x0A1B2C3D");
    assert_eq!(
        body["registration_date"],
        "2026-11-26T22:13:11.000000+00:00"
    );

    // A super user lists it, with every attribute; anyone else: 403.
    let mut list = start(LIST, &t);
    for groups in ["[super_users]", r#"["other","super_users"]"#] {
        let r = list.invoke(&list_event(Some(groups))).http();
        assert_eq!(r.status, 200, "{r:?}");
        // A fleet that fits in one answer gets exactly FireFly's shape: no cursor.
        let body = r.json();
        let fields: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(fields, ["devices"], "{body}");
        let devices = body["devices"].as_array().unwrap().clone();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0]["uuid"], uuid);
        assert_eq!(devices[0]["mcu"]["revision"], 3);
        assert_eq!(devices[0]["registered_by_email"], "alice@example.com");
    }
    for groups in [Some("[users]"), None] {
        refused(&list.invoke(&list_event(groups)).http(), 403, "Forbidden");
    }

    // The key never reaches a log line of the function that consumed it.
    assert_not_logged(&register, &[key]);
}

/// Registers a device with `key` while, between the function's read of the key and its
/// transaction, the same text is minted again for `sub` until `ttl`: refused, nothing
/// registered, the new key left in place. Its device's uuid ends in `tag`.
fn redeem_while_minted_again(t: &Tables, key: &str, tag: &str, sub: &str, ttl: i64) {
    let db = Dynalite::shared_moto();
    let proxy = support::faults::Proxy::start(db.port);
    let (table, k, o) = (t.keys.clone(), key.to_owned(), sub.to_owned());
    proxy.before("TransactWriteItems", move || {
        Dynalite::shared_moto().put(&table, &k, &o, NOW, ttl);
    });
    let uuid = format!("aaaaaaaa-0000-4000-8000-0000000000{tag}");
    let mut register = start_at(REGISTER, t, &proxy.endpoint());
    refused(
        &register
            .invoke(&register_event(key, &uuid, &key_pair()))
            .http(),
        401,
        "Invalid or expired registration key",
    );
    assert!(db.get_device(&t.devices, &uuid).is_none(), "not registered");
    let now = db.get(&t.keys, key).expect("the new key stays");
    assert_eq!(s(&now, "generated_by_sub"), sub);
    assert_eq!(n(&now, "ttl"), ttl);
}

#[test]
fn a_key_revoked_and_minted_again_between_read_and_redeem_is_refused() {
    // Between the function's read of Alice's key and its transaction, the key is revoked and
    // the same text minted again for Mallory. FireFly's function (and a condition on
    // existence and expiry alone) registered the device as Alice's and deleted Mallory's key.
    let t = tables();
    let key = mint(&t);
    let alices = Dynalite::shared_moto().get(&t.keys, &key).unwrap();
    assert_ne!(s(&alices, "generated_by_sub"), "mallory");
    redeem_while_minted_again(&t, &key, "aa", "mallory", NOW + 1800);
}

#[test]
fn a_key_minted_again_by_its_owner_with_another_expiry_between_read_and_redeem_is_refused() {
    // Same text, same owner, another expiry: a different key from the one the device was
    // credited with, which only the condition on `ttl` tells apart.
    let t = tables();
    let key = mint(&t);
    let read = Dynalite::shared_moto().get(&t.keys, &key).unwrap();
    let owner = s(&read, "generated_by_sub").to_owned();
    redeem_while_minted_again(&t, &key, "ab", &owner, n(&read, "ttl") + 600);
}

#[test]
fn one_key_two_devices_racing_registers_exactly_one() {
    let t = tables();
    let key = mint(&t);
    let uuids = [
        "aaaaaaaa-0000-4000-8000-000000000001",
        "aaaaaaaa-0000-4000-8000-000000000002",
    ];
    // Both devices read the key before either writes: the proxy holds each write until
    // both have arrived. FireFly's get, put, delete registers both in this interleaving.
    let proxy = support::faults::Proxy::start(Dynalite::shared_moto().port);
    proxy.gather("TransactWriteItems", 2);
    let mut functions: Vec<Function> = uuids
        .iter()
        .map(|_| start_at(REGISTER, &t, &proxy.endpoint()))
        .collect();
    let events: Vec<Value> = uuids
        .iter()
        .map(|u| register_event(&key, u, &key_pair()))
        .collect();
    // Both in flight at once, each in its own process.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = functions
            .iter_mut()
            .zip(&events)
            .map(|(f, e)| scope.spawn(move || f.invoke(e).http().status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [204, 401], "{statuses:?}");
    let db = Dynalite::shared_moto();
    let stored = uuids
        .iter()
        .filter(|u| db.get_device(&t.devices, u).is_some())
        .count();
    assert_eq!(stored, 1, "exactly one device holds the key's registration");
    assert!(db.get(&t.keys, &key).is_none());
}

#[test]
fn refused_keys_and_known_devices_change_nothing() {
    let t = tables();
    let db = Dynalite::shared_moto();
    let mut register = start(REGISTER, &t);
    let pair = key_pair();
    // Expired a second ago, and not yet deleted by DynamoDB's TTL: refused (FireFly's
    // function registered with it).
    db.put(&t.keys, "EXP1RD", ALICE, NOW - 1801, NOW - 1);
    let uuid = "bbbbbbbb-0000-4000-8000-000000000001";
    refused(
        &register
            .invoke(&register_event("EXP1RD", uuid, &pair))
            .http(),
        401,
        "Invalid or expired registration key",
    );
    refused(
        &register
            .invoke(&register_event("NOSUCH", uuid, &pair))
            .http(),
        401,
        "Invalid or expired registration key",
    );
    assert!(db.get_device(&t.devices, uuid).is_none());
    assert!(
        db.get(&t.keys, "EXP1RD").is_some(),
        "a refused key is not touched"
    );

    // A key minted by FireFly's Python function (its exact item) registers through ours.
    db.put(&t.keys, "PY7H0N", ALICE, NOW - 60, NOW + 1740);
    let r = register
        .invoke(&register_event("PY7H0N", uuid, &pair))
        .http();
    assert_eq!(r.status, 204, "{r:?}");
    // The same device again with another live key: 204, the record and the key untouched.
    db.put(&t.keys, "SECOND", ALICE, NOW - 60, NOW + 1740);
    let before = db.get_device(&t.devices, uuid).unwrap();
    let r = register
        .invoke(&register_event("SECOND", uuid, &key_pair()))
        .http();
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(db.get_device(&t.devices, uuid).unwrap(), before);
    assert!(db.get(&t.keys, "SECOND").is_some());
    // Its 204 lost, the device retries with the key it used up (issue 25, item 6): it is
    // registered with this public key, so 204 again; another key pair for that uuid is
    // still refused, and nothing changes either way.
    let r = register
        .invoke(&register_event("PY7H0N", uuid, &pair))
        .http();
    assert_eq!(r.status, 204, "{r:?}");
    refused(
        &register
            .invoke(&register_event("PY7H0N", uuid, &key_pair()))
            .http(),
        401,
        "Invalid or expired registration key",
    );
    assert_eq!(db.get_device(&t.devices, uuid).unwrap(), before);

    // Bodies FireFly answered 500 for: a 400 with its message (non-string uuid), or stored
    // exactly (floats).
    let mut e = register_event("SECOND", "cccccccc-0000-4000-8000-000000000001", &pair);
    let mut body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    body["uuid"] = json!(12345);
    e["body"] = body.to_string().into();
    refused(
        &register.invoke(&e).http(),
        400,
        "uuid must be a valid UUID",
    );
    body["uuid"] = "cccccccc-0000-4000-8000-000000000001".into();
    body["mcu"]["cpu_freq_mhz"] = json!(240.5);
    e["body"] = body.to_string().into();
    assert_eq!(register.invoke(&e).http().status, 204);
    let item = db
        .get_device(&t.devices, "cccccccc-0000-4000-8000-000000000001")
        .unwrap();
    assert_eq!(
        item["mcu"].as_m().unwrap()["cpu_freq_mhz"].as_n().unwrap(),
        "240.5"
    );
    assert_not_logged(
        &register,
        &["EXP1RD".into(), "NOSUCH".into(), "PY7H0N".into()],
    );
}

#[test]
fn a_device_firefly_registered_checks_and_lists_through_ours() {
    let t = tables();
    let db = Dynalite::shared_moto();
    let pair = key_pair();
    let uuid = "DDDDDDDD-0000-4000-8000-000000000001";
    // As FireFly's function writes it (boto3: numbers N, registration_date without a
    // fraction when Python's microsecond is 0).
    let s_ = |v: &str| AttributeValue::S(v.into());
    let item: HashMap<String, AttributeValue> = [
        ("uuid", s_(uuid)),
        ("product_id", s_("FFC0806-2505")),
        ("product_hex", s_("0x08062505")),
        ("device_class", s_("CONTROLLER")),
        ("public_key", s_(&public_key(&pair))),
        ("registration_date", s_("2026-05-24T15:32:51+00:00")),
        (
            "registering_application",
            s_("Hardware-Registration-and-Configuration"),
        ),
        ("registering_version", s_("2026.03.01")),
        (
            "mcu",
            AttributeValue::M(
                [("cores".to_string(), AttributeValue::N("2".into()))]
                    .into_iter()
                    .collect(),
            ),
        ),
        ("registered_by_email", s_("")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    db.put_item(&t.devices, item);

    let mut check = start(CHECK, &t);
    let r = check.invoke(&check_event(uuid, &pair, TIMESTAMP)).http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["registration_date"], "2026-05-24T15:32:51+00:00");

    // The firmware's rules, in FireFly's order.
    refused(
        &check
            .invoke(&check_event(
                "eeeeeeee-0000-4000-8000-000000000001",
                &pair,
                TIMESTAMP,
            ))
            .http(),
        404,
        "Device not registered",
    );
    let mut bare = check_event(uuid, &pair, TIMESTAMP);
    bare["headers"]
        .as_object_mut()
        .unwrap()
        .remove("x-device-signature");
    refused(
        &check.invoke(&bare).http(),
        400,
        "X-Device-UUID, X-Device-Nonce, X-Device-Timestamp, and X-Device-Signature headers are required",
    );
    let mut other = check_event(uuid, &pair, TIMESTAMP);
    other["headers"]["x-device-uuid"] = "someone-else".into();
    refused(
        &check.invoke(&other).http(),
        403,
        "X-Device-UUID header does not match path parameter",
    );
    refused(
        &check
            .invoke(&check_event(uuid, &pair, "2026-11-26T22:13:22Z"))
            .http(),
        401,
        "X-Device-Timestamp is outside the acceptance window",
    );
    refused(
        &check
            .invoke(&check_event(uuid, &key_pair(), TIMESTAMP))
            .http(),
        401,
        "Signature verification failed",
    );

    let mut list = start(LIST, &t);
    let r = list.invoke(&list_event(Some("[super_users]"))).http();
    assert_eq!(r.status, 200);
    // Numbers as numbers (FireFly's answered "2"; the console reads both with Number()).
    assert_eq!(r.json()["devices"][0]["mcu"]["cores"], 2);
}

// ---- Device backups: FireFly's three functions on its devices table and its bucket ----

const BACKUP_POST: &str = "firefly-func-api-devices-backup-post";
const BACKUP_GET: &str = "firefly-func-api-devices-backup-get";
const BACKUP_DELETE: &str = "firefly-func-api-devices-backup-delete";

/// FireFly's tables and a bucket of this test's own, all in one moto.
struct Backup {
    t: Tables,
    bucket: String,
}

fn backup_world() -> Backup {
    let t = tables();
    let bucket = unique_table("backups").to_ascii_lowercase();
    support::s3::create_bucket(&Dynalite::shared_moto().endpoint(), &bucket);
    Backup { t, bucket }
}

/// `function` with both tables and the bucket; S3 at `s3` (moto, or a stand-in).
fn start_backup(function: &str, w: &Backup, s3: &str) -> Function {
    start_backup_at(function, w, &Dynalite::shared_moto().endpoint(), s3)
}

/// As [`start_backup`], with DynamoDB at `moto` (moto, or the fault proxy before it).
fn start_backup_at(function: &str, w: &Backup, moto: &str, s3: &str) -> Function {
    let env = env_of(
        function,
        &[
            ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", w.t.keys.as_str()),
            ("DYNAMODB_DEVICES_TABLE_NAME", w.t.devices.as_str()),
            ("S3_BACKUP_BUCKET_NAME", w.bucket.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto),
            ("AWS_ENDPOINT_URL_S3", s3),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    );
    Function::start(&env)
}

/// A device item as FireFly's registration writes it (the fields the backups read).
fn put_device(w: &Backup, uuid: &str, pair: &EcdsaKeyPair) {
    let s_ = |v: &str| AttributeValue::S(v.into());
    let item: HashMap<String, AttributeValue> = [
        ("uuid", s_(uuid)),
        ("product_id", s_("FFC0806-2505")),
        ("product_hex", s_("0x08062505")),
        ("device_class", s_("CONTROLLER")),
        ("public_key", s_(&public_key(pair))),
        ("registration_date", s_("2026-05-24T15:32:51Z")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Dynalite::shared_moto().put_item(&w.t.devices, item);
}

/// A backup request signed as the firmware signs it (a fresh nonce each time), from the
/// shipped example event of `method`.
fn backup_event(method: &str, uuid: &str, pair: &EcdsaKeyPair) -> Value {
    let mut e = example(&format!(
        "devices-uuid-backup-{}",
        method.to_ascii_lowercase()
    ));
    let path = format!("/devices/{uuid}/backup");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"]["uuid"] = uuid.into();
    let signed = check_event(uuid, pair, TIMESTAMP);
    for h in [
        "x-device-uuid",
        "x-device-nonce",
        "x-device-timestamp",
        "x-device-signature",
    ] {
        e["headers"][h] = signed["headers"][h].clone();
    }
    e
}

/// A POST carrying `blob` (as API Gateway delivers binary: Base64) and these ETag headers.
fn post_event(
    uuid: &str,
    pair: &EcdsaKeyPair,
    blob: &[u8],
    etag: Option<&str>,
    if_none_match: Option<&str>,
) -> Value {
    let mut e = backup_event("POST", uuid, pair);
    e["body"] = STANDARD.encode(blob).into();
    e["isBase64Encoded"] = true.into();
    let headers = e["headers"].as_object_mut().unwrap();
    headers.remove("etag");
    if let Some(v) = etag {
        headers.insert("etag".into(), v.into());
    }
    if let Some(v) = if_none_match {
        headers.insert("if-none-match".into(), v.into());
    }
    e
}

fn blob(fill: u8, len: usize) -> Vec<u8> {
    let mut b = b"FFCE".to_vec();
    b.resize(len, fill);
    b
}

fn last_backup_date(w: &Backup, uuid: &str) -> Option<String> {
    Dynalite::shared_moto()
        .get_device(&w.t.devices, uuid)
        .and_then(|item| item.get("last_backup_date").cloned())
        .map(|v| v.as_s().unwrap().clone())
}

#[test]
fn a_controller_backs_up_restores_and_deletes_as_the_firmware_does() {
    let w = backup_world();
    let moto = Dynalite::shared_moto().endpoint();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000001";
    put_device(&w, uuid, &pair);
    let mut post = start_backup(BACKUP_POST, &w, &moto);
    let mut get = start_backup(BACKUP_GET, &w, &moto);
    let mut delete = start_backup(BACKUP_DELETE, &w, &moto);

    // The shipped example: the firmware's quoted ETag, a Base64 body.
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let mut e = backup_event("POST", uuid, &pair);
    let sent = STANDARD.decode(e["body"].as_str().unwrap()).unwrap();
    let r = post.invoke(&e).http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("etag"), format!("\"{sha}\""));
    assert_eq!(
        r.json(),
        json!({"message": "Backup stored", "last_backup_date": "2026-11-26T22:13:11Z"})
    );
    assert_eq!(
        last_backup_date(&w, uuid).as_deref(),
        Some("2026-11-26T22:13:11Z")
    );
    let stored = support::s3::get(&moto, &w.bucket, uuid).expect("stored under the uuid");
    assert_eq!(stored.body.as_ref(), sent.as_slice());
    assert_eq!(stored.meta("etag"), Some(sha));

    // Captured and sent again within the window: refused, and nothing overwritten.
    refused(
        &post.invoke(&e).http(),
        401,
        "X-Device-Nonce has already been used",
    );

    // Restore: the raw bytes (Base64 for API Gateway to decode), their length, the ETag.
    let r = get.invoke(&backup_event("GET", uuid, &pair));
    let Outcome::Response(raw) = &r else {
        panic!("{r:?}")
    };
    assert_eq!(raw["isBase64Encoded"], true);
    let r = r.http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(STANDARD.decode(&r.body).unwrap(), sent);
    assert_eq!(r.header("content-type"), "application/octet-stream");
    assert_eq!(r.header("content-length"), sent.len().to_string());
    assert_eq!(r.header("etag"), format!("\"{sha}\""));

    // A POST without ETag replaces the backup and its ETag (GET's ETag is then empty).
    let plain = blob(1, 64);
    let r = post
        .invoke(&post_event(uuid, &pair, &plain, None, None))
        .http();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(!r.headers.contains_key("etag"), "{r:?}");
    let r = get.invoke(&backup_event("GET", uuid, &pair)).http();
    assert_eq!(STANDARD.decode(&r.body).unwrap(), plain);
    assert_eq!(r.header("etag"), "");

    // Delete: 200, the date removed from the device, then 404; deleting again is 200.
    e = backup_event("DELETE", uuid, &pair);
    let r = delete.invoke(&e).http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"message": "Backup deleted"}));
    assert_eq!(last_backup_date(&w, uuid), None);
    assert!(support::s3::get(&moto, &w.bucket, uuid).is_none());
    refused(
        &get.invoke(&backup_event("GET", uuid, &pair)).http(),
        404,
        "No backup found for this device",
    );
    let r = delete.invoke(&backup_event("DELETE", uuid, &pair)).http();
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn backup_requests_are_judged_in_fireflys_order_with_its_answers() {
    let w = backup_world();
    let moto = Dynalite::shared_moto().endpoint();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000002";
    put_device(&w, uuid, &pair);
    let mut post = start_backup(BACKUP_POST, &w, &moto);

    // An unknown device: 401 before any header or body is looked at, on every method.
    let stranger = "bbbbbbbb-0000-4000-8000-00000000ffff";
    let mut bare = post_event(stranger, &pair, b"", None, None);
    for h in ["x-device-uuid", "x-device-signature"] {
        bare["headers"].as_object_mut().unwrap().remove(h);
    }
    refused(&post.invoke(&bare).http(), 401, "Device not registered");
    for (function, method) in [(BACKUP_GET, "GET"), (BACKUP_DELETE, "DELETE")] {
        let mut f = start_backup(function, &w, &moto);
        let r = f.invoke(&backup_event(method, stranger, &pair)).http();
        refused(&r, 401, "Device not registered");
        let mut no_headers = backup_event(method, uuid, &pair);
        no_headers["headers"]
            .as_object_mut()
            .unwrap()
            .remove("x-device-nonce");
        refused(
            &f.invoke(&no_headers).http(),
            400,
            "X-Device-UUID, X-Device-Nonce, X-Device-Timestamp, and X-Device-Signature headers are required",
        );
        let r = f.invoke(&backup_event(method, uuid, &key_pair())).http();
        refused(&r, 401, "Signature verification failed");
    }
    let mut other = post_event(uuid, &pair, &blob(0, 8), None, None);
    other["headers"]["x-device-uuid"] = "someone-else".into();
    refused(
        &post.invoke(&other).http(),
        403,
        "X-Device-UUID header does not match path parameter",
    );

    // Bodies: FireFly's checks and texts, its 512 KiB limit on the blob.
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (vec![], 400, "Request body is required"),
        (
            b"not_a_valid_ffce_payload".to_vec(),
            400,
            "Body does not appear to be a valid FFCE backup",
        ),
        (
            blob(0, 512 * 1024 + 1),
            413,
            "Payload exceeds maximum size of 512 KB",
        ),
    ];
    for (body, status, message) in cases {
        let r = post
            .invoke(&post_event(uuid, &pair, &body, None, None))
            .http();
        refused(&r, status, message);
    }
    let r = post
        .invoke(&post_event(uuid, &pair, &blob(7, 512 * 1024), None, None))
        .http();
    assert_eq!(r.status, 200, "exactly 512 KiB is accepted: {r:?}");
    let mut bad64 = post_event(uuid, &pair, b"FFCE", None, None);
    bad64["body"] = "RkZDRQ=".into();
    refused(
        &post.invoke(&bad64).http(),
        400,
        "Invalid base64-encoded body",
    );

    // A text body is Latin-1, byte for byte, as FireFly reads it; past Latin-1 (FireFly's
    // 500 from encode('latin-1')) a 400; so is an ETag that is not ASCII (FireFly's 500
    // from S3's metadata).
    let mut text = post_event(uuid, &pair, b"", None, None);
    text["isBase64Encoded"] = false.into();
    text["body"] = "FFCE\u{e9}t\u{e9}".into();
    let r = post.invoke(&text).http();
    assert_eq!(r.status, 200, "{r:?}");
    let stored = support::s3::get(&moto, &w.bucket, uuid).unwrap();
    assert_eq!(stored.body.as_ref(), b"FFCE\xe9t\xe9");
    let mut euro = post_event(uuid, &pair, b"", None, None);
    euro["isBase64Encoded"] = false.into();
    euro["body"] = "FFCE\u{20ac}".into();
    refused(
        &post.invoke(&euro).http(),
        400,
        "Body does not appear to be a valid FFCE backup",
    );
    let r = post
        .invoke(&post_event(
            uuid,
            &pair,
            &blob(0, 8),
            Some("\"caf\u{e9}\""),
            None,
        ))
        .http();
    refused(&r, 400, "ETag and If-None-Match must be ASCII");
    assert_eq!(
        support::s3::get(&moto, &w.bucket, uuid)
            .unwrap()
            .body
            .as_ref(),
        b"FFCE\xe9t\xe9",
        "a refused request stores nothing"
    );
}

#[test]
fn not_modified_only_when_the_stored_backup_has_that_etag() {
    let w = backup_world();
    let moto = Dynalite::shared_moto().endpoint();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000003";
    put_device(&w, uuid, &pair);
    let mut post = start_backup(BACKUP_POST, &w, &moto);
    let (a, b) = ("a".repeat(64), "b".repeat(64));

    // Nothing stored yet: FireFly answered 304 because the two headers agree, and the
    // backup was never kept. Here it is stored.
    let r = post
        .invoke(&post_event(uuid, &pair, &blob(1, 16), Some(&a), Some(&a)))
        .http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        support::s3::get(&moto, &w.bucket, uuid)
            .unwrap()
            .meta("etag"),
        Some(a.as_str())
    );
    // The stored backup has that ETag: 304, quoted, nothing written.
    let r = post
        .invoke(&post_event(
            uuid,
            &pair,
            &blob(2, 16),
            Some(&a),
            Some(&format!("\"{a}\"")),
        ))
        .http();
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("etag"), format!("\"{a}\""));
    assert_eq!(r.body, "");
    assert_eq!(
        support::s3::get(&moto, &w.bucket, uuid)
            .unwrap()
            .body
            .as_ref(),
        blob(1, 16).as_slice()
    );
    // The device believes B is stored, but A is: stored.
    let r = post
        .invoke(&post_event(uuid, &pair, &blob(3, 16), Some(&b), Some(&b)))
        .http();
    assert_eq!(r.status, 200, "{r:?}");
    // ETag alone, as the firmware sends it (quoted), always stores, even when unchanged.
    let r = post
        .invoke(&post_event(
            uuid,
            &pair,
            &blob(4, 16),
            Some(&format!("\"{b}\"")),
            None,
        ))
        .http();
    assert_eq!(r.status, 200, "{r:?}");
    let stored = support::s3::get(&moto, &w.bucket, uuid).unwrap();
    assert_eq!(stored.body.as_ref(), blob(4, 16).as_slice());
    assert_eq!(stored.meta("etag"), Some(b.as_str()));
}

/// Whether a request to an S3 stand-in is a signed call (an unsigned one would be a probe).
fn signed_call(req: &support::http::Request) -> bool {
    req.headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
}

/// An S3 stand-in that answers every request with `status` and S3's XML error `code`, and
/// counts the signed ones.
fn failing_s3(status: u16, code: &'static str) -> (support::http::Server, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let server = support::http::serve(move |req| {
        if signed_call(&req) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        support::http::Reply::status(
            status,
            format!(
                "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>test</Message></Error>"
            ),
        )
    });
    (server, seen)
}

#[test]
fn a_failing_bucket_is_a_5xx_with_a_log_line_never_a_missing_backup() {
    let w = backup_world();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000004";
    put_device(&w, uuid, &pair);
    // FireFly answered 404 "No backup found" for all of these.
    for (status, code, answer, retried) in [
        (503, "SlowDown", 503, true),
        (500, "InternalError", 503, true),
        (403, "AccessDenied", 500, false),
        (400, "KMS.DisabledException", 500, false),
    ] {
        let (server, seen) = failing_s3(status, code);
        let mut get = start_backup(BACKUP_GET, &w, &format!("http://127.0.0.1:{}", server.port));
        let r = get.invoke(&backup_event("GET", uuid, &pair)).http();
        assert_eq!(r.status, answer, "{code}: {r:?}");
        assert_ne!(r.body, r#"{"message":"No backup found for this device"}"#);
        assert_eq!(
            seen.load(Ordering::SeqCst),
            if retried { 3 } else { 1 },
            "{code}: attempts"
        );
        assert!(
            get.logs()
                .iter()
                .any(|l| l.contains(code) && l.contains("request failed")),
            "{code}: no log line names it: {:?}",
            get.logs()
        );
    }
    // Nothing listens: 503 after the retries, and no stored date changes.
    let mut post = start_backup(BACKUP_POST, &w, "http://127.0.0.1:9");
    let r = post
        .invoke(&post_event(uuid, &pair, &blob(0, 8), None, None))
        .http();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(last_backup_date(&w, uuid), None);
}

#[test]
fn a_device_deleted_during_its_backup_is_not_resurrected_and_leaves_no_object() {
    let w = backup_world();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000005";
    put_device(&w, uuid, &pair);
    // S3 stand-in: while the object is being stored, the device is deleted (an operator's
    // delete racing the device's daily backup). FireFly's unconditional UpdateItem then
    // wrote a stub device holding only uuid and last_backup_date.
    let devices = w.t.devices.clone();
    let methods = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = methods.clone();
    let server = support::http::serve(move |req| {
        if !signed_call(&req) {
            return support::http::Reply::status(403, "");
        }
        seen.lock().unwrap().push(req.method.clone());
        if req.method == "PUT" {
            let db = Dynalite::shared_moto();
            support::dynamo::block_on(
                db.client()
                    .delete_item()
                    .table_name(&devices)
                    .key("uuid", AttributeValue::S(uuid.into()))
                    .send(),
            )
            .unwrap();
        }
        support::http::Reply::status(if req.method == "DELETE" { 204 } else { 200 }, "")
    });
    let mut post = start_backup(
        BACKUP_POST,
        &w,
        &format!("http://127.0.0.1:{}", server.port),
    );
    let r = post
        .invoke(&post_event(uuid, &pair, &blob(0, 8), None, None))
        .http();
    refused(&r, 401, "Device not registered");
    assert!(
        Dynalite::shared_moto()
            .get_device(&w.t.devices, uuid)
            .is_none(),
        "no stub device"
    );
    assert_eq!(
        *methods.lock().unwrap(),
        ["PUT", "DELETE"],
        "the orphan is removed"
    );
}

#[test]
fn a_device_deleted_during_its_backups_removal_is_not_resurrected() {
    let w = backup_world();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000007";
    put_device(&w, uuid, &pair);
    // While the object is being removed, the device is deleted. An UpdateItem that only
    // REMOVEs `last_backup_date` still creates the item it does not find: a stub device
    // holding only its uuid, unless it is conditioned on the device existing.
    let devices = w.t.devices.clone();
    let deletes = Arc::new(AtomicUsize::new(0));
    let seen = deletes.clone();
    let server = support::http::serve(move |req| {
        if !signed_call(&req) {
            return support::http::Reply::status(403, "");
        }
        if req.method == "DELETE" {
            seen.fetch_add(1, Ordering::SeqCst);
            let db = Dynalite::shared_moto();
            support::dynamo::block_on(
                db.client()
                    .delete_item()
                    .table_name(&devices)
                    .key("uuid", AttributeValue::S(uuid.into()))
                    .send(),
            )
            .unwrap();
        }
        support::http::Reply::status(204, "")
    });
    let mut delete = start_backup(
        BACKUP_DELETE,
        &w,
        &format!("http://127.0.0.1:{}", server.port),
    );
    let r = delete.invoke(&backup_event("DELETE", uuid, &pair)).http();
    // The backup is gone, which is what the device asked for.
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"message": "Backup deleted"}));
    assert_eq!(deletes.load(Ordering::SeqCst), 1);
    assert!(
        Dynalite::shared_moto()
            .get_device(&w.t.devices, uuid)
            .is_none(),
        "no stub device"
    );
}

#[test]
fn a_backup_function_opens_its_bucket_connection_during_init() {
    let w = backup_world();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000016";
    put_device(&w, uuid, &pair);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = support::http::serve(move |req| {
        log.lock()
            .unwrap()
            .push((req.method.clone(), req.path.clone(), signed_call(&req)));
        support::http::Reply::status(404, "<Error><Code>NoSuchKey</Code></Error>")
    });
    let mut f = start_backup(BACKUP_GET, &w, &format!("http://127.0.0.1:{}", server.port));
    f.await_ready();
    // Before any request: the bucket's connection is open, and nothing was sent on it.
    assert_eq!(server.await_connections(1), 1);
    assert!(
        seen.lock().unwrap().is_empty(),
        "{:?}",
        seen.lock().unwrap()
    );
    // The first restore reads the object over that connection.
    let r = f.invoke(&backup_event("GET", uuid, &pair)).http();
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        [("GET".to_string(), format!("/{}/{uuid}", w.bucket), true)]
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_nonce_that_cannot_be_recorded_refuses_the_request() {
    let w = backup_world();
    let pair = key_pair();
    let uuid = "bbbbbbbb-0000-4000-8000-000000000006";
    put_device(&w, uuid, &pair);
    // The device is read; every write after it (the nonce's record) is throttled.
    let proxy = support::faults::Proxy::start(Dynalite::shared_moto().port);
    proxy.set(
        vec![Fault::Pass],
        Fault::Error(400, "ProvisionedThroughputExceededException"),
    );
    let (s3, signed) = failing_s3(200, "");
    let mut post = start_backup_at(
        BACKUP_POST,
        &w,
        &proxy.endpoint(),
        &format!("http://127.0.0.1:{}", s3.port),
    );
    let r = post.invoke(&backup_event("POST", uuid, &pair)).http();
    // Accepting it unrecorded would let the same headers through again: 503, retry later,
    // and nothing written.
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(
        signed.load(Ordering::SeqCst),
        0,
        "the backup is not written"
    );
    // A restore reads its object beside the nonce's write: read, never released.
    let proxy = support::faults::Proxy::start(Dynalite::shared_moto().port);
    proxy.set(
        vec![Fault::Pass],
        Fault::Error(400, "ProvisionedThroughputExceededException"),
    );
    let (s3, _) = stored_backup_s3(b"FFCE-the-backup");
    let mut get = start_backup_at(
        BACKUP_GET,
        &w,
        &proxy.endpoint(),
        &format!("http://127.0.0.1:{}", s3.port),
    );
    let r = get.invoke(&backup_event("GET", uuid, &pair)).http();
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.header("content-type"), "application/json", "{r:?}");
    assert!(r.json()["message"].is_string(), "{r:?}");
}

/// An S3 stand-in holding `body` for every GET; the signed calls it saw.
fn stored_backup_s3(body: &'static [u8]) -> (support::http::Server, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let server = support::http::serve(move |req| {
        if signed_call(&req) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        support::http::Reply::Respond {
            status: 200,
            headers: vec![("content-type".into(), "application/octet-stream".into())],
            body: body.to_vec(),
        }
    });
    (server, seen)
}

#[test]
fn a_registration_that_commits_after_the_function_gave_up_ends_in_204_on_retry() {
    let t = tables();
    let key = mint(&t);
    let pair = key_pair();
    let uuid = "aaaaaaaa-0000-4000-8000-0000000000bb";
    // The key is read; every attempt of the transaction reaches moto (the first commits) but
    // is answered too late: the function gives up with a 503 while the device is stored.
    let proxy = support::faults::Proxy::start(Dynalite::shared_moto().port);
    proxy.set(
        vec![
            Fault::Pass,
            Fault::Slow(1_500),
            Fault::Slow(1_500),
            Fault::Slow(1_500),
        ],
        Fault::Pass,
    );
    let mut register = start_at(REGISTER, &t, &proxy.endpoint());
    let event = register_event(&key, uuid, &pair);
    let r = register.invoke(&event).http();
    assert_eq!(r.status, 503, "{r:?}");
    let db = Dynalite::shared_moto();
    assert!(db.get_device(&t.devices, uuid).is_some(), "it did commit");
    assert!(db.get(&t.keys, &key).is_none());
    // The firmware retries as it does after any failure: registered, so 204.
    let r = register.invoke(&event).http();
    assert_eq!(r.status, 204, "{r:?}");
}

#[test]
fn an_item_too_large_for_dynamodb_is_a_400_counted_as_dynamodb_counts() {
    let t = tables();
    let key = mint(&t);
    let uuid = "aaaaaaaa-0000-4000-8000-0000000000cc";
    let mut e = register_event(&key, uuid, &key_pair());
    let mut body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
    // 300 KB of JSON, 450 KB as DynamoDB counts an item (each number 2 bytes, each list
    // element 1 more): the JSON-length guard let it through to a cancelled transaction.
    body["network"] = json!(vec![0; 150_000]);
    e["body"] = body.to_string().into();
    assert!(e["body"].as_str().unwrap().len() < 310_000);
    let mut register = start(REGISTER, &t);
    refused(&register.invoke(&e).http(), 400, "Request body too large");
    let db = Dynalite::shared_moto();
    assert!(db.get_device(&t.devices, uuid).is_none());
    assert!(db.get(&t.keys, &key).is_some(), "the key is not used up");
}

#[test]
fn a_transaction_cancelled_for_good_is_a_500_with_its_reason_logged_not_a_retry_later() {
    let t = tables();
    let key = mint(&t);
    let uuid = "aaaaaaaa-0000-4000-8000-0000000000dd";
    // The key is read; DynamoDB then cancels the transaction on a validation error of the
    // device's put, which the same request will meet again however often it is retried.
    let proxy = support::faults::Proxy::start(Dynalite::shared_moto().port);
    proxy.set(
        vec![Fault::Pass, Fault::Cancelled(&["None", "ValidationError"])],
        Fault::Pass,
    );
    let mut register = start_at(REGISTER, &t, &proxy.endpoint());
    let r = register
        .invoke(&register_event(&key, uuid, &key_pair()))
        .http();
    refused(&r, 500, "Internal server error");
    assert!(
        !r.headers.contains_key("retry-after"),
        "a retry meets the same refusal: {r:?}"
    );
    assert_eq!(
        proxy.injected(),
        [Fault::Cancelled(&["None", "ValidationError"])],
        "cancelled once, and not tried again"
    );
    assert!(
        register
            .logs()
            .iter()
            .any(|l| l.contains("transaction cancelled") && l.contains("ValidationError")),
        "no log line names the reason: {:?}",
        register.logs()
    );
    let db = Dynalite::shared_moto();
    assert!(db.get_device(&t.devices, uuid).is_none());
    assert!(db.get(&t.keys, &key).is_some(), "the key is not used up");
}

#[test]
fn a_fleet_too_large_for_one_answer_is_listed_in_pages_none_dropped() {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    // dynalite: the listing needs only Scan, and takes 3,000 items quickly.
    let db = Dynalite::shared();
    let devices = unique_table("fleet");
    db.create_devices_table(&devices);
    // 3,000 devices of about 2.2 KB each: 6.6 MB of items, past Lambda's 6 MB answer
    // (FireFly's function stopped at Scan's first 1 MB; ours answered 500).
    let padding = "x".repeat(2_000);
    let uuids: Vec<String> = (0..3_000)
        .map(|i| format!("cccccccc-0000-4000-8000-{i:012}"))
        .collect();
    for chunk in uuids.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|u| {
                let item: HashMap<String, AttributeValue> = [
                    ("uuid", AttributeValue::S(u.clone())),
                    ("product_hex", AttributeValue::S("0x08062505".into())),
                    (
                        "registration_date",
                        AttributeValue::S(format!("2026-05-24T15:32:51.{}+00:00", &u[30..])),
                    ),
                    ("notes", AttributeValue::S(padding.clone())),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        support::dynamo::block_on(
            db.client()
                .batch_write_item()
                .request_items(&devices, writes)
                .send(),
        )
        .unwrap();
    }
    let env = env_of(
        LIST,
        &[
            ("DYNAMODB_DEVICES_TABLE_NAME", devices.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint().as_str()),
        ],
    );
    let mut list = Function::start(&env);
    list.await_ready();
    let started = std::time::Instant::now();
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut e = list_event(Some("[super_users]"));
        if let Some(c) = &cursor {
            e["rawQueryString"] = format!("cursor={c}").into();
            e["queryStringParameters"] = json!({ "cursor": c });
        }
        let outcome = list.invoke(&e);
        let Outcome::Response(raw) = &outcome else {
            panic!("{outcome:?}")
        };
        // What Lambda carries back: under its 6 MB limit, with room to spare.
        assert!(raw.to_string().len() < 6 * 1024 * 1024 - 256 * 1024);
        let r = outcome.http();
        assert_eq!(r.status, 200, "page {pages}");
        let body = r.json();
        let page = body["devices"].as_array().unwrap();
        assert!(!page.is_empty());
        // The console's order within a page.
        let dates: Vec<&str> = page
            .iter()
            .map(|d| d["registration_date"].as_str().unwrap())
            .collect();
        assert!(dates.windows(2).all(|w| w[0] <= w[1]));
        for d in page {
            assert!(
                seen.insert(d["uuid"].as_str().unwrap().to_owned()),
                "listed twice"
            );
        }
        pages += 1;
        match body.get("next_cursor") {
            Some(c) => cursor = Some(c.as_str().unwrap().to_owned()),
            None => break,
        }
    }
    let listed_in = started.elapsed();
    assert!(pages >= 2, "one answer cannot hold them all");
    assert_eq!(seen.len(), uuids.len(), "every device, none dropped");
    // A cursor no page gave: 400, after the super-user check.
    let mut e = list_event(Some("[super_users]"));
    e["queryStringParameters"] = json!({"cursor": "%%%"});
    refused(
        &list.invoke(&e).http(),
        400,
        "cursor is not one a previous page gave",
    );
    eprintln!("{} devices in {pages} pages, {listed_in:?}", seen.len());
}

// ---- Firmware records: FireFly's firmware-get, both routes, on its table's shape ----

const FIRMWARE: &str = "firefly-func-api-firmware-get";

/// FireFly's `firefly-firmware` table, as templates/dynamodb-firmware.yaml makes it.
fn firmware_table(db: &Dynalite) -> String {
    let name = unique_table("firmware");
    db.create_firmware_table(&name);
    name
}

/// A record as FireFly's ingest writes it (numbers as numbers, files and manifest).
fn firmware_record(
    hex: &str,
    version: &str,
    zip: &str,
    padding: usize,
) -> HashMap<String, AttributeValue> {
    let s_ = |v: &str| AttributeValue::S(v.into());
    [
        ("pk", s_(&format!("controller#{hex}#controller"))),
        ("version", s_(version)),
        ("product_hex", s_(hex)),
        ("zip_name", s_(zip)),
        ("release_status", s_("READY_TO_TEST")),
        ("size", AttributeValue::N("1048576".into())),
        ("ratio", AttributeValue::N("1.5".into())),
        ("files", AttributeValue::L(vec![s_("controller.ino.bin")])),
        ("manifest", s_(&"m".repeat(padding))),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn firmware_event(path: &str, query: &[(&str, &str)]) -> Value {
    let zip = path.strip_prefix("/firmware/");
    let mut e = example(if zip.is_some() {
        "firmware-zip_name-get"
    } else {
        "firmware-get"
    });
    e["rawPath"] = path.into();
    e["requestContext"]["http"]["path"] = path.into();
    if let Some(z) = zip {
        e["pathParameters"]["zip_name"] = z.into();
    }
    let q: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    e["queryStringParameters"] = Value::Object(q);
    e
}

#[test]
fn firmware_records_are_listed_and_read_as_fireflys_console_reads_them() {
    let db = Dynalite::shared();
    let table = firmware_table(db);
    // 700 records of ~2 KB: 1.4 MB, past one Scan page (FireFly listed the first 1 MB).
    for i in 0..700 {
        let hex = if i % 2 == 0 {
            "0x0000000a"
        } else {
            "0x0000000b"
        };
        db.put_item(
            &table,
            firmware_record(hex, &format!("1.0.{i}"), &format!("zip-{i}.zip"), 2_000),
        );
    }
    let env = env_of(
        FIRMWARE,
        &[
            ("DYNAMODB_FIRMWARE_TABLE_NAME", table.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint().as_str()),
        ],
    );
    let mut f = Function::start(&env);
    let all = f.invoke(&firmware_event("/firmware", &[])).http();
    assert_eq!(all.status, 200, "{all:?}");
    let items = all.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 700, "every page read");
    let one = &items[0];
    for gone in ["files", "manifest", "pk"] {
        assert!(one.get(gone).is_none(), "{gone} listed");
    }
    // Numbers as FireFly prints Decimals: int when whole, float otherwise.
    assert_eq!(one["size"], json!(1_048_576));
    assert_eq!(one["ratio"], json!(1.5));
    // ?product_hex (lower-cased, through its index) and ?version.
    let b = f
        .invoke(&firmware_event(
            "/firmware",
            &[("product_hex", "0x0000000B")],
        ))
        .http();
    let b = b.json()["items"].as_array().unwrap().clone();
    assert_eq!(b.len(), 350);
    assert!(b.iter().all(|i| i["product_hex"] == "0x0000000b"));
    let v = f
        .invoke(&firmware_event(
            "/firmware",
            &[("product_hex", "0x0000000a"), ("version", "1.0.4")],
        ))
        .http();
    assert_eq!(v.json()["items"].as_array().unwrap().len(), 1);
    let v = f
        .invoke(&firmware_event("/firmware", &[("version", "1.0.5")]))
        .http();
    assert_eq!(v.json()["items"][0]["zip_name"], "zip-5.zip");
    // One record: everything but pk; a missing one names the ZIP as FireFly does.
    let r = f.invoke(&firmware_event("/firmware/zip-7.zip", &[])).http();
    assert_eq!(r.status, 200, "{r:?}");
    let record = r.json();
    assert!(record.get("pk").is_none());
    assert_eq!(record["files"], json!(["controller.ino.bin"]));
    assert_eq!(record["version"], "1.0.7");
    refused(
        &f.invoke(&firmware_event("/firmware/nope.zip", &[])).http(),
        404,
        "Firmware not found: nope.zip",
    );
    // Signed-in users only.
    let mut anonymous = firmware_event("/firmware", &[]);
    anonymous["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert_eq!(f.invoke(&anonymous).http().status, 401);
}

// ---- Firmware ingest: the functions S3 invokes, on FireFly's table and a bucket ----

const UPLOADED: &str = "firefly-func-s3-firmware-uploaded";
const DELETED: &str = "firefly-func-s3-firmware-deleted";

/// An S3 function on a firmware table and bucket of this test's own, in moto.
fn start_ingest(function: &str, table: &str, bucket: &str) -> Function {
    let moto = Dynalite::shared_moto().endpoint();
    let env = env_of(
        function,
        &[
            ("DYNAMODB_FIRMWARE_TABLE_NAME", table),
            ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", bucket),
            ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", "firefly-firmware-public"),
            ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE"),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto.as_str()),
            ("AWS_ENDPOINT_URL_S3", moto.as_str()),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    );
    Function::start(&env)
}

/// The event S3 sends for `key` (its own sequencer: an unversioned bucket's upload id).
fn s3_event(event: &str, bucket: &str, key: &str, sequencer: &str) -> Value {
    serde_json::to_value(firefly_api::s3_event::S3Event::one(
        event, bucket, key, None, sequencer, None,
    ))
    .unwrap()
}

fn records_of(db: &Dynalite, table: &str) -> Vec<HashMap<String, AttributeValue>> {
    db.scan(table)
}

fn text_of<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or("", String::as_str)
}

#[test]
fn s3_functions_ingest_and_follow_deletions_from_their_events_alone() {
    use firefly_api::firmware::build::Build;
    let db = Dynalite::shared_moto();
    let moto = db.endpoint();
    let table = firmware_table(db);
    let bucket = unique_table("firmware").to_ascii_lowercase();
    support::s3::create_bucket(&moto, &bucket);
    let s3 = support::s3::client(&moto);
    let put = |key: &str, body: Vec<u8>| {
        support::dynamo::block_on(s3.put_object(&bucket, key, body.into(), "application/zip", &[]))
            .unwrap()
    };
    let zip = Build::example("0xAB00CD01", "2026.12.01").zip().unwrap();
    put("incoming/Controller-0xAB00CD01-main-1.zip", zip);
    put(
        "incoming/broken.zip",
        b"THIS IS NOT A VALID ZIP FILE".to_vec(),
    );

    let mut up = start_ingest(UPLOADED, &table, &bucket);
    // One event, two records: both are handled (FireFly's function read the first).
    let mut event = s3_event(
        "ObjectCreated:Put",
        &bucket,
        "incoming/Controller-0xAB00CD01-main-1.zip",
        "01",
    );
    let second = s3_event("ObjectCreated:Put", &bucket, "incoming/broken.zip", "02");
    event["Records"]
        .as_array_mut()
        .unwrap()
        .push(second["Records"][0].clone());
    let Outcome::Response(answer) = up.invoke(&event) else {
        panic!("the event failed: {:?}", up.logs())
    };
    assert_eq!(answer, Value::Null, "an S3 function answers nothing");
    let records = records_of(db, &table);
    assert_eq!(records.len(), 2, "{records:?}");
    let ready = records
        .iter()
        .find(|r| text_of(r, "release_status") == "READY_TO_TEST")
        .unwrap();
    let error = records
        .iter()
        .find(|r| text_of(r, "release_status") == "ERROR")
        .unwrap();
    assert_eq!(text_of(ready, "pk"), "controller#0xab00cd01#controller");
    assert!(ready["zip_size"].as_n().is_ok() && ready["uploaded_at"].as_n().is_ok());
    assert_eq!(text_of(error, "error"), "File is not a zip file");
    assert_eq!(text_of(error, "original_name"), "broken.zip");
    let ready_zip = text_of(ready, "zip_name").to_owned();
    let error_zip = text_of(error, "zip_name").to_owned();
    assert!(support::s3::get(&moto, &bucket, &format!("processed/{ready_zip}")).is_some());
    assert!(support::s3::get(&moto, &bucket, &format!("errors/{error_zip}")).is_some());
    assert!(support::s3::get(&moto, &bucket, "incoming/broken.zip").is_none());
    // The log line of the event carries its kind's context: the entry, the records.
    let handled = up
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "event handled")
        .expect("an event line");
    assert_eq!(handled["route_key"], "S3 ObjectCreated incoming/*.zip");
    assert_eq!(handled["records"], 2);

    // Redelivered: nothing twice.
    assert!(matches!(up.invoke(&event), Outcome::Response(_)));
    assert_eq!(records_of(db, &table).len(), 2);

    // An API event is not what this function is deployed for: an error, not a guess.
    let Outcome::Error(e) = up.invoke(&example("firmware-get")) else {
        panic!("an API event was accepted by an S3 function")
    };
    assert!(e.to_string().contains("not an S3 notification"), "{e}");

    // The ZIP leaves processed/: its record becomes DELETED, with a ttl and a history entry.
    let mut del = start_ingest(DELETED, &table, &bucket);
    let gone = s3_event(
        "ObjectRemoved:Delete",
        &bucket,
        &format!("processed/{ready_zip}"),
        "03",
    );
    assert!(
        matches!(del.invoke(&gone), Outcome::Response(_)),
        "{:?}",
        del.logs()
    );
    let now = records_of(db, &table);
    let deleted = now
        .iter()
        .find(|r| text_of(r, "zip_name") == ready_zip)
        .unwrap();
    assert_eq!(text_of(deleted, "release_status"), "DELETED");
    assert_eq!(
        deleted["ttl"].as_n().unwrap().parse::<i64>().unwrap(),
        NOW + 10 * 24 * 3600
    );
    assert_eq!(deleted["status_history"].as_l().unwrap().len(), 2);
    // A ZIP nobody filed: handled (logged), not an error Lambda would retry forever.
    let orphan = s3_event("ObjectRemoved:Delete", &bucket, "errors/nobody.zip", "04");
    assert!(matches!(del.invoke(&orphan), Outcome::Response(_)));
}

#[test]
fn a_4_mib_firmware_zip_is_checked_well_within_128_mb_and_30_s() {
    use firefly_api::firmware::build::Build;
    let db = Dynalite::shared_moto();
    let moto = db.endpoint();
    let table = firmware_table(db);
    let bucket = unique_table("firmware").to_ascii_lowercase();
    support::s3::create_bucket(&moto, &bucket);
    // A real build's shape: ~2.6 MiB of application image (and half of it again as .elf),
    // the rest inflating hugely (ui.bin, config.bin, .map): a 4 MiB ZIP.
    let mut build = Build::controller("0xAB00CD02", "2026.12.02", 2_650);
    build.add("Controller.ino.merged.bin", vec![0xFF; 16 << 20]);
    let zip = build.zip().unwrap();
    assert!((3_900_000..4_500_000).contains(&zip.len()), "{}", zip.len());
    let s3 = support::s3::client(&moto);
    support::dynamo::block_on(s3.put_object(
        &bucket,
        "incoming/big.zip",
        zip.into(),
        "application/zip",
        &[],
    ))
    .unwrap();
    let mut up = start_ingest(UPLOADED, &table, &bucket);
    up.await_ready();
    let before = up.peak_rss_kib();
    let started = std::time::Instant::now();
    let outcome = up.invoke(&s3_event(
        "ObjectCreated:Put",
        &bucket,
        "incoming/big.zip",
        "01",
    ));
    let took = started.elapsed();
    assert!(matches!(outcome, Outcome::Response(_)), "{:?}", up.logs());
    let records = records_of(db, &table);
    assert_eq!(
        text_of(&records[0], "release_status"),
        "READY_TO_TEST",
        "{records:?}"
    );
    let peak = up.peak_rss_kib();
    eprintln!("4 MiB ZIP: {took:?}, peak RSS {peak} KiB (after init {before} KiB)");
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB: half of the 128 MB function at most"
    );
    assert!(
        took < std::time::Duration::from_secs(10),
        "{took:?} of the 30 s timeout"
    );
}

const STATUS: &str = "firefly-func-api-firmware-status-patch";

/// A CloudFront stand-in on 127.0.0.1 that accepts every invalidation and counts them.
fn cloudfront_standin() -> (support::http::Server, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let server = support::http::serve(move |req| {
        assert!(req.path.ends_with("/invalidation"), "{}", req.path);
        let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
        support::http::Reply::status(
            201,
            format!("<Invalidation><Id>I{n}</Id><Status>InProgress</Status></Invalidation>"),
        )
    });
    (server, count)
}

fn status_event(zip: &str, to: &str) -> Value {
    let mut e = example("firmware-zip_name-status-patch");
    let path = format!("/firmware/{zip}/status");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"]["zip_name"] = zip.into();
    e["body"] = json!({ "release_status": to }).to_string().into();
    e
}

/// The status function on `table`, with its S3 at `s3` and DynamoDB at `dynamodb`.
fn start_status(
    table: &str,
    bucket: &str,
    public: &str,
    dynamodb: &str,
    s3: &str,
    cdn: &str,
) -> Function {
    Function::start(&env_of(
        STATUS,
        &[
            ("DYNAMODB_FIRMWARE_TABLE_NAME", table),
            ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", bucket),
            ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", public),
            ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE"),
            ("ENVIRONMENT_NAME", "dev"),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
            ("AWS_ENDPOINT_URL_S3", s3),
            ("AWS_ENDPOINT_URL_CLOUDFRONT", cdn),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    ))
}

/// A firmware filed READY_TO_TEST by the ingest function: its table, buckets and ZIP name.
fn filed_firmware(build: &firefly_api::firmware::build::Build) -> (String, String, String, String) {
    let db = Dynalite::shared_moto();
    let moto = db.endpoint();
    let table = firmware_table(db);
    let bucket = unique_table("firmware").to_ascii_lowercase();
    let public = unique_table("public").to_ascii_lowercase();
    support::s3::create_bucket(&moto, &bucket);
    support::s3::create_bucket(&moto, &public);
    let s3 = support::s3::client(&moto);
    let key = "incoming/Controller-main.zip";
    support::dynamo::block_on(s3.put_object(
        &bucket,
        key,
        build.zip().unwrap().into(),
        "application/zip",
        &[],
    ))
    .unwrap();
    let mut up = start_ingest(UPLOADED, &table, &bucket);
    assert!(matches!(
        up.invoke(&s3_event("ObjectCreated:Put", &bucket, key, "01")),
        Outcome::Response(_)
    ));
    let zip_name = text_of(&records_of(db, &table)[0], "zip_name").to_owned();
    (table, bucket, public, zip_name)
}

#[test]
fn a_release_of_ten_binaries_on_an_s3_that_takes_2_s_a_call_is_done_in_bounded_rounds() {
    use firefly_api::firmware::build::Build;
    use firefly_api::firmware::status::CONCURRENT_PUTS;
    let mut build = Build::example("0xAB00CD0A", "2026.12.10");
    for i in 0..4 {
        build.add(&format!("extra{i}.bin"), vec![i; 64 * 1024]);
    }
    let (table, bucket, public, zip_name) = filed_firmware(&build);
    let db = Dynalite::shared_moto();
    let moto = db.endpoint();
    let (cdn, _) = cloudfront_standin();
    let cdn_url = format!("http://127.0.0.1:{}", cdn.port);
    let mut f = start_status(&table, &bucket, &public, &moto, &moto, &cdn_url);
    assert_eq!(
        f.invoke(&status_event(&zip_name, "TESTING")).http().status,
        200
    );
    // S3 answers every call 2 s late; the proxy counts the calls in flight.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let (flight, peak, count, port) = (in_flight.clone(), most.clone(), calls.clone(), db.port);
    let slow = support::http::serve(move |req| {
        if signed_call(&req) {
            count.fetch_add(1, Ordering::SeqCst);
        }
        let now = flight.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        let answer = support::faults::forward(port, &req);
        std::thread::sleep(std::time::Duration::from_secs(2));
        flight.fetch_sub(1, Ordering::SeqCst);
        answer
    });
    let slow_url = format!("http://127.0.0.1:{}", slow.port);
    let mut f = start_status(&table, &bucket, &public, &moto, &slow_url, &cdn_url);
    let started = std::time::Instant::now();
    let answer = f
        .invoke_within(
            serde_json::to_vec(&status_event(&zip_name, "RELEASED")).unwrap(),
            std::time::Duration::from_secs(60),
        )
        .http();
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{answer:?} {:?}", f.logs());
    // One read of the ZIP, ten files written: 22 s one at a time; in rounds of
    // CONCURRENT_PUTS, 2 + 3 x 2 = 8 s, well within the function's 60 s.
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    let peak = most.load(Ordering::SeqCst);
    assert!((2..=CONCURRENT_PUTS).contains(&peak), "{peak} at once");
    assert!(took < std::time::Duration::from_secs(16), "{took:?}");
    let s3 = support::s3::client(&moto);
    let published = support::dynamo::block_on(
        s3.list_keys(&public, "controller/0xab00cd0a/controller/2026.12.10/"),
    )
    .unwrap();
    assert_eq!(published.len(), 10, "{published:?}");
}

#[test]
fn two_status_changes_at_once_one_wins_and_the_public_files_match_it() {
    // Both read TESTING; the proxy holds their first writes until both have arrived. In
    // FireFly's order (publish, then a conditional write) the release's files went public
    // whichever write won, so a READY_TO_TEST record could have public files.
    use firefly_api::firmware::build::Build;
    let (table, bucket, public, zip_name) =
        filed_firmware(&Build::example("0xAB00CD09", "2026.12.09"));
    let db = Dynalite::shared_moto();
    let moto = db.endpoint();
    let s3 = support::s3::client(&moto);
    let (cdn, invalidations) = cloudfront_standin();
    let cdn_url = format!("http://127.0.0.1:{}", cdn.port);
    let start = |dynamodb: &str| start_status(&table, &bucket, &public, dynamodb, &moto, &cdn_url);
    let testing = start(&moto)
        .invoke(&status_event(&zip_name, "TESTING"))
        .http();
    assert_eq!(testing.status, 200, "{testing:?}");

    let proxy = support::faults::Proxy::start(db.port);
    proxy.gather_once("UpdateItem", 2);
    let mut functions = [start(&proxy.endpoint()), start(&proxy.endpoint())];
    let events = [
        status_event(&zip_name, "RELEASED"),
        status_event(&zip_name, "READY_TO_TEST"),
    ];
    let answers: Vec<support::lambda::HttpResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = functions
            .iter_mut()
            .zip(&events)
            .map(|(f, e)| scope.spawn(move || f.invoke(e).http()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{answers:?}");
    let record = records_of(db, &table).remove(0);
    assert!(!record.contains_key("transition_claim"), "{record:?}");
    let folder = "controller/0xab00cd09/controller/2026.12.09/";
    let published = support::dynamo::block_on(s3.list_keys(&public, folder)).unwrap();
    match text_of(&record, "release_status") {
        "RELEASED" => {
            assert_eq!(published.len(), 6, "{published:?}");
            assert_eq!(invalidations.load(Ordering::SeqCst), 1);
        }
        "READY_TO_TEST" => {
            assert!(published.is_empty(), "{published:?}");
            assert_eq!(invalidations.load(Ordering::SeqCst), 0);
        }
        other => panic!("{other}"),
    }
    let history = record["status_history"].as_l().unwrap();
    assert_eq!(history.len(), 3, "one entry per change that happened");
}

const PRE_SIGNUP: &str = "firefly-func-cognito-pre-signup";

#[test]
fn the_pre_sign_up_trigger_admits_only_invited_people_and_says_why_to_the_rest() {
    let db = Dynalite::shared();
    let table = unique_table("users");
    db.create_users_table(&table);
    let invite = |email: &str, expires_at: i64| {
        db.put_item(
            &table,
            [
                ("email".to_owned(), AttributeValue::S(email.into())),
                (
                    "invited_by".to_owned(),
                    AttributeValue::S("ida@example.com".into()),
                ),
                (
                    "created_at".to_owned(),
                    AttributeValue::S("2026-11-26T22:00:00+00:00".into()),
                ),
                (
                    "expires_at".to_owned(),
                    AttributeValue::N(expires_at.to_string()),
                ),
            ]
            .into(),
        )
    };
    invite("ada@example.com", NOW + 3600);
    invite("old@example.com", NOW - 1);
    let env = env_of(
        PRE_SIGNUP,
        &[
            ("DYNAMODB_USERS_TABLE_NAME", table.as_str()),
            ("COGNITO_USER_POOL_ID", "eu-west-1_AbCdEfGhI"),
            ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint().as_str()),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    );
    let mut f = Function::start(&env);
    let event = |source: &str, email: &str| {
        let mut e = example("cognito-pre-signup");
        e["triggerSource"] = source.into();
        e["request"]["userAttributes"]["email"] = email.into();
        e
    };
    // An administrator's user: confirmed at once.
    let Outcome::Response(admitted) = f.invoke(&example("cognito-pre-signup")) else {
        panic!("{:?}", f.logs())
    };
    assert_eq!(admitted["response"]["autoConfirmUser"], true);
    // Invited (any case, any spaces): the event back, unchanged.
    let asked = event("PreSignUp_ExternalProvider", " Ada@Example.com");
    let Outcome::Response(back) = f.invoke(&asked) else {
        panic!("{:?}", f.logs())
    };
    assert_eq!(back, asked);
    // The rest: refused, with the message Cognito shows them.
    for (email, message) in [
        (
            "eve@example.com",
            "this account has not been granted access",
        ),
        ("old@example.com", "this invitation has expired"),
        ("", "no email address was provided"),
    ] {
        let Outcome::Error(e) = f.invoke(&event("PreSignUp_ExternalProvider", email)) else {
            panic!("{email:?} was admitted")
        };
        assert!(e.to_string().contains(message), "{e}");
    }
    // No email reaches the logs (FireFly logged each at INFO).
    let logs = f.logs().join("\n");
    assert!(logs.contains("trigger refused"), "{logs}");
    for email in ["ada@example.com", "eve@example.com", "old@example.com"] {
        assert!(!logs.to_lowercase().contains(email), "{email} logged");
    }
}

// ---- The users routes on Cognito (moto's) and the invitations table ----

const USERS_GET: &str = "firefly-func-api-users-get";
const USERS_POST: &str = "firefly-func-api-users-post";
const USERS_PATCH: &str = "firefly-func-api-users-patch";
const USERS_DELETE: &str = "firefly-func-api-users-delete";

fn idp(op: &str, input: Value) -> Value {
    support::cognito::call(&Dynalite::shared_moto().endpoint(), op, input)
}

/// A pool as FireFly's cognito stack makes it (its `super_users` group), with `people`
/// (username, email, super) created by an administrator.
fn pool_with(people: &[(&str, &str, bool)]) -> String {
    let pool = idp("CreateUserPool", json!({"PoolName": unique_table("pool")}))["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    idp(
        "CreateGroup",
        json!({"UserPoolId": pool, "GroupName": "super_users"}),
    );
    for (username, email, is_super) in people {
        idp(
            "AdminCreateUser",
            json!({"UserPoolId": pool, "Username": username, "MessageAction": "SUPPRESS",
                   "UserAttributes": [{"Name": "email", "Value": email}, {"Name": "name", "Value": username}]}),
        );
        if *is_super {
            idp(
                "AdminAddUserToGroup",
                json!({"UserPoolId": pool, "Username": username, "GroupName": "super_users"}),
            );
        }
    }
    pool
}

fn users_function(function: &str, pool: &str, table: &str) -> Function {
    let moto = Dynalite::shared_moto().endpoint();
    Function::start(&env_of(
        function,
        &[
            ("DYNAMODB_USERS_TABLE_NAME", table),
            ("COGNITO_USER_POOL_ID", pool),
            ("AWS_ENDPOINT_URL_DYNAMODB", moto.as_str()),
            ("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", moto.as_str()),
            ("FIREFLY_TEST_NOW", NOW.to_string().as_str()),
        ],
    ))
}

/// An event of a users route, from a super user (ann) unless `groups` says otherwise.
fn users_event(name: &str, email: Option<&str>, body: Option<&str>, groups: &str) -> Value {
    let mut e = example(name);
    let claims = &mut e["requestContext"]["authorizer"]["jwt"]["claims"];
    claims["cognito:groups"] = groups.into();
    claims["email"] = "ann@example.com".into();
    if let Some(email) = email {
        e["pathParameters"]["email"] = email.into();
    }
    if let Some(body) = body {
        e["body"] = body.into();
    }
    e
}

fn supers_of(pool: &str) -> Vec<String> {
    let mut names: Vec<String> = idp(
        "ListUsersInGroup",
        json!({"UserPoolId": pool, "GroupName": "super_users"}),
    )["Users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["Username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_users_routes_manage_the_pool_and_the_invitations_as_fireflys_console_reads_them() {
    let db = Dynalite::shared_moto();
    let table = unique_table("users");
    db.create_users_table(&table);
    let pool = pool_with(&[
        ("ann", "ann@example.com", true),
        ("bob", "Bob@Example.com", false),
    ]);
    let mut get = users_function(USERS_GET, &pool, &table);
    let mut post = users_function(USERS_POST, &pool, &table);
    let mut patch = users_function(USERS_PATCH, &pool, &table);
    let mut delete = users_function(USERS_DELETE, &pool, &table);
    let mut list = || {
        let r = get
            .invoke(&users_event("users-get", None, None, "[super_users]"))
            .http();
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["users"].as_array().unwrap().clone()
    };

    // The console's list: the pool's users by email, super status from the group.
    let users = list();
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(users[0]["email"], "ann@example.com");
    assert_eq!(users[0]["is_super"], true);
    assert_eq!(users[0]["name"], "ann");
    assert_eq!(users[1]["email"], "bob@example.com", "lower-cased");
    assert_eq!(users[1]["is_super"], false);
    for u in &users {
        assert!(u["status"].is_string() && u["created"].is_string(), "{u}");
        assert!(u.get("invited_by").is_some(), "{u}");
    }

    // Not a super user: 403 on every route, before anything else is read.
    for (f, name, email, body) in [
        (
            &mut post,
            "users-post",
            None,
            Some(r#"{"email":"x@example.com"}"#),
        ),
        (
            &mut patch,
            "users-email-patch",
            Some("bob@example.com"),
            Some(r#"{"is_super":true}"#),
        ),
        (
            &mut delete,
            "users-email-delete",
            Some("bob@example.com"),
            None,
        ),
    ] {
        let r = f.invoke(&users_event(name, email, body, "[]")).http();
        refused(&r, 403, "Forbidden");
    }

    // Invite: 201 with the address as stored; the same again while it lives: 409.
    let r = post
        .invoke(&users_event(
            "users-post",
            None,
            Some(r#"{"email":" Cy@Example.com "}"#),
            "[super_users]",
        ))
        .http();
    assert_eq!(
        (r.status, r.json()),
        (201, json!({"email": "cy@example.com"})),
        "{r:?}"
    );
    let r = post
        .invoke(&users_event(
            "users-post",
            None,
            Some(r#"{"email":"cy@example.com"}"#),
            "[super_users]",
        ))
        .http();
    refused(
        &r,
        409,
        "User 'cy@example.com' is already in the allowed list",
    );
    let users = list();
    let cy = users
        .iter()
        .find(|u| u["email"] == "cy@example.com")
        .unwrap();
    assert_eq!(cy["status"], "INVITED");
    assert_eq!(cy["is_super"], false);
    assert_eq!(cy["invited_by"], "ann@example.com");
    let item = db.get_by(&table, "email", "cy@example.com").unwrap();
    assert_eq!(n(&item, "expires_at"), NOW + 24 * 3600);

    // An expired invitation is renewed at once (FireFly's 409 lasted until the TTL sweep),
    // and is not listed meanwhile.
    db.put_item(
        &table,
        [
            (
                "email".to_owned(),
                AttributeValue::S("dan@example.com".into()),
            ),
            (
                "invited_by".to_owned(),
                AttributeValue::S("ann@example.com".into()),
            ),
            (
                "created_at".to_owned(),
                AttributeValue::S("2026-11-20T10:00:00+00:00".into()),
            ),
            (
                "expires_at".to_owned(),
                AttributeValue::N((NOW - 1).to_string()),
            ),
        ]
        .into(),
    );
    assert!(!list().iter().any(|u| u["email"] == "dan@example.com"));
    let r = post
        .invoke(&users_event(
            "users-post",
            None,
            Some(r#"{"email":"dan@example.com"}"#),
            "[super_users]",
        ))
        .http();
    assert_eq!(r.status, 201, "{r:?}");
    assert!(list().iter().any(|u| u["email"] == "dan@example.com"));

    // Bodies of the wrong JSON type, and addresses that are not addresses: 400, every route.
    for (body, message) in [
        ("[1]", "Invalid JSON body"),
        ("\"cy@example.com\"", "Invalid JSON body"),
        ("5", "Invalid JSON body"),
        ("{", "Invalid JSON body"),
        ("{}", "email is required"),
        (r#"{"email":""}"#, "email is required"),
        (r#"{"email":5}"#, "email is not a valid email address"),
        (
            r#"{"email":"not-an-email"}"#,
            "email is not a valid email address",
        ),
    ] {
        let r = post
            .invoke(&users_event(
                "users-post",
                None,
                Some(body),
                "[super_users]",
            ))
            .http();
        refused(&r, 400, message);
    }
    for (body, message) in [
        ("[true]", "Invalid JSON body"),
        ("true", "Invalid JSON body"),
        ("{}", "is_super is required"),
        (r#"{"is_super":"yes"}"#, "is_super must be a boolean"),
    ] {
        let r = patch
            .invoke(&users_event(
                "users-email-patch",
                Some("bob@example.com"),
                Some(body),
                "[super_users]",
            ))
            .http();
        refused(&r, 400, message);
    }
    // A quote in the path never reaches a filter: 400, not a 500 or another user.
    for email in [
        r#"bob@example.com" or email ^= ""#,
        r#"a"b@example.com"#,
        "bob",
    ] {
        let r = patch
            .invoke(&users_event(
                "users-email-patch",
                Some(email),
                Some(r#"{"is_super":false}"#),
                "[super_users]",
            ))
            .http();
        refused(&r, 400, "email is not a valid email address");
        let r = delete
            .invoke(&users_event(
                "users-email-delete",
                Some(email),
                None,
                "[super_users]",
            ))
            .http();
        refused(&r, 400, "email is not a valid email address");
    }
    assert_eq!(supers_of(&pool), ["ann"]);

    // Promote: 200, and the list says so; an unknown address: 404.
    let r = patch
        .invoke(&users_event(
            "users-email-patch",
            Some("bob@example.com"),
            Some(r#"{"is_super":true}"#),
            "[super_users]",
        ))
        .http();
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"email": "bob@example.com", "is_super": true})),
        "{r:?}"
    );
    assert_eq!(supers_of(&pool), ["ann", "bob"]);
    let r = patch
        .invoke(&users_event(
            "users-email-patch",
            Some("ghost@example.com"),
            Some(r#"{"is_super":true}"#),
            "[super_users]",
        ))
        .http();
    refused(&r, 404, "User 'ghost@example.com' not found in Cognito");

    // Two demotions at once, one function each: never both, and never an empty group.
    let mut other = users_function(USERS_PATCH, &pool, &table);
    let demote = |email: &str| {
        users_event(
            "users-email-patch",
            Some(email),
            Some(r#"{"is_super":false}"#),
            "[super_users]",
        )
    };
    let (ea, eb) = (demote("ann@example.com"), demote("bob@example.com"));
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| patch.invoke(&ea).http());
        let b = scope.spawn(|| other.invoke(&eb).http());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        [a.status, b.status].contains(&409)
            && [200, 409].contains(&a.status)
            && [200, 409].contains(&b.status),
        "{a:?} {b:?}"
    );
    let left = supers_of(&pool);
    assert!(!left.is_empty(), "the last super user was removed");
    // Each 200 removed its user, each 409 left its user as it was.
    for (r, who) in [(&a, "ann"), (&b, "bob")] {
        assert_eq!(
            left.contains(&who.to_owned()),
            r.status == 409,
            "{who}: {r:?}"
        );
    }
    // Both undone (each saw the other's removal): one demotion alone then goes through.
    if left.len() == 2 {
        let r = patch.invoke(&demote("bob@example.com")).http();
        assert_eq!(r.status, 200, "{r:?}");
    }
    let left = supers_of(&pool);
    assert_eq!(left.len(), 1, "{left:?}");
    let last = left[0].clone();
    // The one left can be neither demoted nor deleted.
    let last_email = format!("{last}@example.com");
    let r = patch.invoke(&demote(&last_email)).http();
    refused(
        &r,
        409,
        "Cannot remove super status from the last super user. Promote another user first.",
    );
    let r = delete
        .invoke(&users_event(
            "users-email-delete",
            Some(&last_email),
            None,
            "[super_users]",
        ))
        .http();
    refused(
        &r,
        409,
        "Cannot delete the last super user. Promote another user to super first.",
    );

    // Delete: an invitation, a user of the pool, an unknown address: 200 each.
    let other_user = if last == "ann" { "bob" } else { "ann" };
    for email in [
        "cy@example.com",
        &format!("{other_user}@example.com"),
        "ghost@example.com",
    ] {
        let r = delete
            .invoke(&users_event(
                "users-email-delete",
                Some(email),
                None,
                "[super_users]",
            ))
            .http();
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"message": format!("User '{email}' has been deleted")})
            ),
            "{r:?}"
        );
    }
    let emails: Vec<Value> = list().iter().map(|u| u["email"].clone()).collect();
    assert_eq!(emails, [json!(last_email), json!("dan@example.com")]);
    let gone = support::dynamo::block_on(support::cognito::client(&db.endpoint()).call(
        "AdminGetUser",
        &json!({"UserPoolId": pool, "Username": other_user}),
    ));
    assert_eq!(
        gone,
        Err(firefly_api::aws::cognito::CognitoError::NoSuchUser)
    );
    assert!(db.get_by(&table, "email", "cy@example.com").is_none());

    // No address reaches the logs at INFO or above (FireFly logged each at INFO).
    for f in [&get, &post, &patch, &delete, &other] {
        let logs = f
            .json_logs()
            .into_iter()
            .filter(|l| !matches!(l["level"].as_str(), Some("DEBUG" | "TRACE")))
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
            .to_lowercase();
        assert!(
            logs.contains("user invited") || !std::ptr::eq(f, &post),
            "{logs}"
        );
        for email in [
            "ann@example.com",
            "bob@example.com",
            "cy@example.com",
            "dan@example.com",
        ] {
            assert!(!logs.contains(email), "{email} logged: {logs}");
        }
    }
}

// ---- The App Configuration routes on AppConfig's and Lambda's APIs (a stand-in) ----

/// The stand-in of AppConfig's and Lambda's APIs, served on its own thread, knowing
/// `functions`.
fn config_stand_in(
    functions: &[&str],
) -> (Arc<firefly_api::local_api::appconfig::StandIn>, String) {
    let stand_in = Arc::new(firefly_api::local_api::appconfig::StandIn::new(
        functions.iter().map(|f| (*f).to_owned()).collect(),
        None,
    ));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::clone(&stand_in);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = served.run(listener).await;
        });
    });
    (stand_in, url)
}

fn config_function(function: &str, url: &str) -> Function {
    Function::start(&env_of(
        function,
        &[
            ("AWS_ENDPOINT_URL_APPCONFIG", url),
            ("AWS_ENDPOINT_URL_LAMBDA", url),
        ],
    ))
}

fn config_event(name: &str, function: &str, body: Option<&str>) -> Value {
    let mut e = example(name);
    if e.get("pathParameters").is_some() {
        e["pathParameters"]["function_name"] = function.into();
    }
    if let Some(body) = body {
        e["body"] = body.into();
    }
    e
}

#[test]
fn the_app_configuration_routes_read_by_number_at_once_bounded_and_say_which_application_failed() {
    let functions = [
        "firefly-func-api-devices-get",
        "firefly-func-api-firmware-get",
        "firefly-func-api-health-get",
        "firefly-func-api-ota-get",
        "firefly-func-api-users-get",
        "firefly-func-api-users-post",
        "firefly-func-s3-firmware-uploaded",
        "firefly-func-cognito-pre-signup",
        "other-function",
    ];
    let (stand_in, url) = config_stand_in(&functions);
    // Pages of two: every listing is read to its end.
    stand_in.set_page(2);
    let mut get = config_function("firefly-func-api-appconfig-get", &url);
    let mut patch = config_function("firefly-func-api-appconfig-patch", &url);
    let mut stage = |function: &str, level: &str| {
        let body = format!("{{\"logging\": \"{level}\"}}");
        let r = patch
            .invoke(&config_event(
                "appconfig-function_name-patch",
                function,
                Some(&body),
            ))
            .http();
        assert_eq!(r.status, 200, "{r:?}");
        r.json()
    };
    // Three versions: the newest is the highest number, whatever order AWS lists them in
    // (the stand-in lists them oldest first, where FireFly read the first).
    for level in ["info", "error", "debug"] {
        stage("firefly-func-api-health-get", level);
    }
    for f in &functions[..8] {
        if *f != "firefly-func-api-health-get" {
            stage(f, "warning");
        }
    }
    let mut list = || {
        let r = get.invoke(&example("appconfig-get")).http();
        (r.status, r.json())
    };
    stand_in.set_latency(std::time::Duration::from_millis(20));
    let (status, body) = list();
    stand_in.set_latency(std::time::Duration::ZERO);
    assert_eq!(status, 200, "{body}");
    let apps = body["applications"].as_array().unwrap();
    let names: Vec<&str> = apps.iter().map(|a| a["name"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = functions[..8].to_vec();
    expected.sort();
    assert_eq!(names, expected, "every firefly-func-* function, by name");
    let health = apps
        .iter()
        .find(|a| a["name"] == "firefly-func-api-health-get")
        .unwrap();
    assert_eq!(
        *health,
        json!({"name": "firefly-func-api-health-get", "logging": "DEBUG", "version": 3, "deployed_version": null, "status": null})
    );
    // Concurrent (more than one request at a time) and bounded: at most four
    // applications at once, two calls each.
    let peak = stand_in.peak();
    assert!((3..=8).contains(&peak), "peak of {peak} requests at once");

    // Deploy: the newest version; while AppConfig bakes it, another deploy is a 409 and
    // so is a delete.
    stand_in.set_slow_deployments(true);
    let mut deploy = config_function("firefly-func-api-appconfig-patch", &url);
    let mut delete = config_function("firefly-func-api-appconfig-patch", &url);
    let r = deploy
        .invoke(&config_event(
            "appconfig-function_name-deploy-post",
            "firefly-func-api-health-get",
            None,
        ))
        .http();
    assert_eq!(
        (r.status, r.json()),
        (
            200,
            json!({"name": "firefly-func-api-health-get", "version": 3, "environment": "default", "status": "DEPLOYING"})
        )
    );
    let r = deploy
        .invoke(&config_event(
            "appconfig-function_name-deploy-post",
            "firefly-func-api-health-get",
            None,
        ))
        .http();
    refused(
        &r,
        409,
        "A deployment is already in progress. Wait for it to complete before deploying again.",
    );
    let r = delete
        .invoke(&config_event(
            "appconfig-function_name-delete",
            "firefly-func-api-health-get",
            None,
        ))
        .http();
    refused(
        &r,
        409,
        "A deployment is in progress. Wait for it to complete before deleting.",
    );
    stand_in.complete_deployments();
    let health = list().1["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "firefly-func-api-health-get")
        .unwrap()
        .clone();
    assert_eq!(
        (health["deployed_version"].clone(), health["status"].clone()),
        (json!(3), json!("COMPLETE"))
    );
    // Deleted past AppConfig's deletion protection (the stand-in refuses without BYPASS).
    let r = delete
        .invoke(&config_event(
            "appconfig-function_name-delete",
            "firefly-func-api-health-get",
            None,
        ))
        .http();
    assert_eq!((r.status, r.body.as_str()), (204, ""), "{r:?}");
    let r = delete
        .invoke(&config_event(
            "appconfig-function_name-delete",
            "firefly-func-api-health-get",
            None,
        ))
        .http();
    refused(
        &r,
        404,
        "No AppConfig application found for 'firefly-func-api-health-get'",
    );

    // A read that fails is a 502 naming the application, never a row of nulls; AWS's own
    // text stays in the log.
    stand_in.fail_reads_of("firefly-func-api-ota-get");
    let (status, body) = list();
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("'firefly-func-api-ota-get'"), "{message}");
    assert!(!message.contains("not authorized"), "{message}");
    assert!(get.logs().join("\n").contains("AccessDeniedException"));

    // A function Lambda does not have: 404, in FireFly's words.
    let r = patch
        .invoke(&config_event(
            "appconfig-function_name-patch",
            "firefly-func-api-nope",
            Some(r#"{"logging":"INFO"}"#),
        ))
        .http();
    refused(&r, 404, "Lambda function 'firefly-func-api-nope' not found");
}
