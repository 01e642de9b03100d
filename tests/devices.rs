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
use support::dynamo::{Dynalite, n, s};
use support::lambda::Function;
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
    let nonce = [42u8; 32];
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
    let r = check.invoke(&check_event(uuid, &pair, TIMESTAMP)).http();
    assert_eq!(r.status, 200, "{r:?}");
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
        let devices = r.json()["devices"].as_array().unwrap().clone();
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
