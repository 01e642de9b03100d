//! End to end: the built `bootstrap` under a Lambda Runtime API on 127.0.0.1, fed real
//! API Gateway v2 events, writing to dynalite (a DynamoDB-API server) on 127.0.0.1.
//!
//! Needs the `test-hooks` feature (deterministic keys and clock): README's test command
//! passes it.

mod support;

use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::appconfig::{AppConfigStub, Mode};
use support::dynamo::{Dynalite, n, s};
use support::lambda::{Function, Outcome};
use support::*;

const NOW: i64 = 1_795_731_191; // 2026-11-26T22:13:11Z
const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn is_key(k: &str) -> bool {
    k.len() == 6 && k.chars().all(|c| ALPHABET.contains(c))
}

fn minted_key(outcome: &Outcome) -> String {
    let r = outcome.http();
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["key"].as_str().unwrap().to_owned()
}

/// FireFly's error shape, which the console (`body.message`) and the firmware read: the
/// status, `Content-Type: application/json`, and a body that is exactly `{"message": ...}`.
fn assert_problem(outcome: &Outcome, status: u16) -> Value {
    let r = outcome.http();
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    let body = r.json();
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|v| !v.is_empty()),
        "{body}"
    );
    body
}

#[test]
fn mints_a_key_and_stores_every_attribute_with_its_type() {
    let now = NOW.to_string();
    let (mut f, table) = function_with_table(&[("FIREFLY_TEST_NOW", now.as_str())]);
    let outcome = f.invoke(&event());
    let r = outcome.http();
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    // What FireFly's console reads: `data.key`, and nothing else.
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let key = body["key"].as_str().unwrap();
    assert!(is_key(key), "{key}");

    // FireFly's item, attribute by attribute, with its types, plus our nonce.
    let item = Dynalite::shared().get(&table, key).expect("item stored");
    assert_eq!(item.len(), 6, "{item:?}");
    assert_eq!(s(&item, "generated_by_email"), "");
    assert_eq!(s(&item, "key"), key);
    assert_eq!(
        s(&item, "generated_by_sub"),
        "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c"
    );
    assert_eq!(n(&item, "generated_at"), NOW);
    assert_eq!(n(&item, "ttl"), NOW + 1800);
    // One random 128-bit nonce per mint, so a retry recognises its own write.
    let nonce = s(&item, "mint_nonce");
    assert_eq!(nonce.len(), 32, "{nonce}");
    assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()), "{nonce}");

    // One JSON log line per request with what an operator needs, and never the key.
    let logs = f.json_logs();
    let done = logs
        .iter()
        .find(|l| l["message"] == "request completed")
        .expect("a completion line");
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["status"], 201);
    assert_eq!(done["user_id"], "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c");
    assert_eq!(done["function_request_id"], "req-1");
    assert_eq!(done["correlation_id"], "Cq2bTjk9joEEMhQ=");
    assert_eq!(done["route_key"], "POST /registration-keys");
    assert!(done["latency_us"].as_u64().is_some());
    assert_not_logged(&f, &[key.to_owned()]);
    // The leak detector itself finds what is logged.
    let sub = "4f8a2c1e".to_string();
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_not_logged(&f, &[sub])
    }));
    assert!(found.is_err(), "the detector missed a logged value");
}

#[test]
fn ten_thousand_keys_are_distinct_well_formed_stored_and_never_logged() {
    let (mut f, table) = function_with_table(NO_ENV);
    let mut keys = HashSet::new();
    for i in 0..10_000 {
        let key = minted_key(&f.invoke(&event_for(&format!("user-{}", i % 97))));
        assert!(is_key(&key), "{key}");
        assert!(keys.insert(key.clone()), "duplicate key {key}");
    }
    let items = Dynalite::shared().scan(&table);
    assert_eq!(items.len(), 10_000);
    let stored: HashSet<String> = items.iter().map(|i| s(i, "key").to_owned()).collect();
    assert_eq!(stored, keys);
    let secrets: Vec<String> = keys.into_iter().collect();
    assert_not_logged(&f, &secrets);
}

#[test]
fn a_collision_with_a_live_key_draws_again_and_leaves_the_live_key_alone() {
    let now = NOW.to_string();
    let (mut f, table) = function_with_table(&[
        ("FIREFLY_TEST_NOW", now.as_str()),
        ("FIREFLY_TEST_KEYS", "AAAAAA,BBBBBB"),
    ]);
    let db = Dynalite::shared();
    db.put(&table, "AAAAAA", "owner", NOW - 10, NOW + 100);
    let key = minted_key(&f.invoke(&event()));
    assert_eq!(key, "BBBBBB");
    let live = db.get(&table, "AAAAAA").unwrap();
    assert_eq!(s(&live, "generated_by_sub"), "owner");
    assert_eq!(n(&live, "ttl"), NOW + 100);
    let logs = f.json_logs();
    assert!(
        logs.iter()
            .any(|l| l["level"] == "WARNING" && l["attempt"] == 1),
        "{logs:?}"
    );
    assert_not_logged(&f, &["AAAAAA".into(), "BBBBBB".into()]);
}

#[test]
fn an_expired_leftover_is_overwritten_and_a_live_key_never_is() {
    let now = NOW.to_string();
    // CCCCCC's ttl is now (expired, as FireFly's listing filters `ttl > now`); DDDDDD's is a
    // second away (live); then EEEEEE.
    let (mut f, table) = function_with_table(&[
        ("FIREFLY_TEST_NOW", now.as_str()),
        ("FIREFLY_TEST_KEYS", "CCCCCC,DDDDDD,EEEEEE"),
    ]);
    let db = Dynalite::shared();
    db.put(&table, "CCCCCC", "old", NOW - 1800, NOW);
    db.put(&table, "DDDDDD", "live", NOW - 1799, NOW + 1);
    assert_eq!(minted_key(&f.invoke(&event_for("new"))), "CCCCCC");
    let item = db.get(&table, "CCCCCC").unwrap();
    assert_eq!(s(&item, "generated_by_sub"), "new");
    assert_eq!(n(&item, "ttl"), NOW + 1800);
    assert_eq!(minted_key(&f.invoke(&event_for("new"))), "EEEEEE");
    assert_eq!(
        s(&db.get(&table, "DDDDDD").unwrap(), "generated_by_sub"),
        "live"
    );
}

#[test]
fn five_collisions_in_a_row_are_503_and_write_nothing() {
    let now = NOW.to_string();
    let keys = ["FFFFFF", "GGGGGG", "HHHHHH", "JJJJJJ", "KKKKKK"];
    let (mut f, table) = function_with_table(&[
        ("FIREFLY_TEST_NOW", now.as_str()),
        ("FIREFLY_TEST_KEYS", keys.join(",").as_str()),
    ]);
    let db = Dynalite::shared();
    for k in keys {
        db.put(&table, k, "owner", NOW, NOW + 60);
    }
    let outcome = f.invoke(&event());
    assert_problem(&outcome, 503);
    assert_eq!(db.scan(&table).len(), 5);
    assert!(
        keys.iter()
            .all(|k| s(&db.get(&table, k).unwrap(), "generated_by_sub") == "owner")
    );
}

#[test]
fn no_claims_no_sub_or_blank_sub_is_401_and_nothing_is_stored() {
    let (mut f, table) = function_with_table(NO_ENV);
    let mut no_authorizer = event();
    no_authorizer["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let mut no_sub = event();
    no_sub["requestContext"]["authorizer"]["jwt"]["claims"]
        .as_object_mut()
        .unwrap()
        .remove("sub");
    let mut null_claims = event();
    null_claims["requestContext"]["authorizer"]["jwt"]["claims"] = Value::Null;
    for e in [
        no_authorizer,
        no_sub,
        null_claims,
        event_for(""),
        event_for("  "),
    ] {
        let outcome = f.invoke(&e);
        assert_eq!(outcome.http().header("www-authenticate"), "Bearer");
        let body = assert_problem(&outcome, 401);
        assert_eq!(body["message"], "Unauthorized");
    }
    assert!(Dynalite::shared().scan(&table).is_empty());
}

#[test]
fn the_request_body_is_ignored() {
    let (mut f, table) = function_with_table(NO_ENV);
    let mut e = event();
    e["body"] = json!({"registrationKey": "AAAAAA", "userId": "someone-else", "ttlSeconds": 99999})
        .to_string()
        .into();
    let r = f.invoke(&e).http();
    assert_eq!(r.status, 201);
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let item = Dynalite::shared().get(&table, &key).unwrap();
    assert_eq!(n(&item, "ttl") - n(&item, "generated_at"), 1800);
    assert_eq!(
        s(&item, "generated_by_sub"),
        "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c"
    );
}

#[test]
fn unknown_routes_wrong_methods_and_default_events() {
    let (mut f, table) = function_with_table(NO_ENV);
    let mut unknown = event();
    unknown["routeKey"] = "GET /devices".into();
    assert_problem(&f.invoke(&unknown), 404);

    // A method no route of the table has on this path.
    let mut wrong_method = event();
    wrong_method["routeKey"] = "PATCH /registration-keys".into();
    let outcome = f.invoke(&wrong_method);
    assert_problem(&outcome, 405);
    assert!(outcome.http().header("allow").contains("POST"));
    // Another function's route: 404, as if the route did not exist here.
    let mut others = event();
    others["routeKey"] = "GET /registration-keys".into();
    assert_problem(&f.invoke(&others), 404);

    // $default: matched by method and path.
    assert_problem(&f.invoke(&default_event("GET", "/nope")), 404);
    let outcome = f.invoke(&default_event("PATCH", "/registration-keys"));
    assert_problem(&outcome, 405);
    assert!(outcome.http().header("allow").contains("POST"));
    let key = minted_key(&f.invoke(&default_event("POST", "/registration-keys")));
    // A function URL or catch-all route has no authorizer: never a key for nobody.
    let mut anonymous = default_event("POST", "/registration-keys");
    anonymous["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert_problem(&f.invoke(&anonymous), 401);
    // A named stage prefixes the raw path.
    let mut staged = default_event("POST", "/prod/registration-keys");
    staged["requestContext"]["stage"] = "prod".into();
    let key2 = minted_key(&f.invoke(&staged));
    assert_eq!(Dynalite::shared().scan(&table).len(), 2);
    assert_ne!(key, key2);
}

#[test]
fn a_malformed_event_is_an_invocation_error_and_the_process_lives_on() {
    let (mut f, _table) = function_with_table(NO_ENV);
    for bad in [&b"not json"[..], b"[]", b"{}", br#"{"requestContext": 5}"#] {
        match f.invoke_raw(bad.to_vec()) {
            Outcome::Error(e) => assert!(e["errorMessage"].as_str().is_some(), "{e}"),
            other => panic!("expected an invocation error, got {other:?}"),
        }
        assert!(f.is_running());
    }
    minted_key(&f.invoke(&event()));
    let logs = f.json_logs();
    assert!(
        logs.iter().any(|l| l["level"] == "ERROR"
            && l["message"]
                .as_str()
                .unwrap_or_default()
                .contains("deserialization")),
        "no log line for the malformed event"
    );
}

#[test]
fn a_missing_table_is_500_with_a_log_line_that_says_what_to_deploy() {
    let (mut f, _table) = function_with_table(&[(
        "DYNAMODB_REGISTRATION_KEYS_TABLE_NAME",
        "firefly-registration-keys",
    )]);
    let outcome = f.invoke(&event());
    let body = assert_problem(&outcome, 500);
    assert!(
        !outcome.http().body.contains("firefly-registration-keys"),
        "{body}"
    );
    assert!(!outcome.http().body.contains("deploy"), "{body}");
    let logs = f.json_logs();
    let line = logs
        .iter()
        .find(|l| l["level"] == "ERROR" && l["status"] == 500)
        .expect("an error line");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains("firefly-registration-keys does not exist"),
        "{error}"
    );
    assert!(
        error.contains("deploy dynamodb-registration-keys first"),
        "{error}"
    );
}

#[test]
fn dynamodb_stopped_is_503_and_the_same_process_recovers() {
    let db = Dynalite::start(0);
    let port = db.port;
    let table = unique_table("stop");
    db.create_table(&table);
    let mut f = Function::start(&env_with(&[
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint().as_str()),
    ]));
    minted_key(&f.invoke(&event()));
    drop(db);
    let started = Instant::now();
    let outcome = f.invoke(&event());
    assert_problem(&outcome, 503);
    assert_eq!(outcome.http().header("retry-after"), "1");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        f.json_logs().iter().any(|l| l["level"] == "WARNING"
            && l["error"]
                .as_str()
                .unwrap_or_default()
                .contains("DynamoDB unavailable")),
        "no warning for the outage"
    );
    let db = Dynalite::start(port);
    db.create_table(&table);
    let key = minted_key(&f.invoke(&event()));
    assert!(db.get(&table, &key).is_some());
}

#[test]
fn config_can_switch_the_route_off_and_change_the_ttl() {
    let stub = AppConfigStub::start(Mode::Serve(
        r#"{"registrationKeys":{"enabled":false}}"#.into(),
    ));
    let (mut f, table) = function_with_table(&stub.env());
    let outcome = f.invoke(&event());
    let body = assert_problem(&outcome, 503);
    assert_eq!(body["message"], "Service temporarily disabled");
    assert!(Dynalite::shared().scan(&table).is_empty());

    stub.set(Mode::Serve(
        r#"{"registrationKeys":{"enabled":true,"ttlSeconds":600}}"#.into(),
    ));
    let r = f.invoke(&event()).http();
    assert_eq!(r.status, 201);
    let item = Dynalite::shared()
        .get(&table, r.json()["key"].as_str().unwrap())
        .unwrap();
    assert_eq!(n(&item, "ttl") - n(&item, "generated_at"), 600);
}

#[test]
fn bad_or_unreachable_config_keeps_the_last_good_settings() {
    let stub = AppConfigStub::start(Mode::Serve(
        r#"{"registrationKeys":{"ttlSeconds":600}}"#.into(),
    ));
    let (mut f, table) = function_with_table(&stub.env());
    // A key's lifetime, read off its stored item.
    let expires_in = |f: &mut Function| {
        let key = minted_key(&f.invoke(&event()));
        let item = Dynalite::shared().get(&table, &key).unwrap();
        n(&item, "ttl") - n(&item, "generated_at")
    };
    assert_eq!(expires_in(&mut f), 600);
    for mode in [
        Mode::Serve("not json".into()),
        Mode::Serve(r#"{"registrationKeys":{"ttlSeconds":5}}"#.into()),
        Mode::Status(500),
        Mode::Status(404),
        Mode::Hang,
    ] {
        stub.set(mode);
        let started = Instant::now();
        assert_eq!(expires_in(&mut f), 600);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
    }
    // One warning per bad state: four failed reads, one rejected section.
    let warnings = |text: &str| {
        f.json_logs()
            .into_iter()
            .filter(|l| {
                l["level"] == "WARNING" && l["message"].as_str().unwrap_or_default().contains(text)
            })
            .count()
    };
    assert_eq!(warnings("AppConfig read failed"), 4);
    assert_eq!(warnings("AppConfig section rejected"), 1);
    assert!(stub.hits() >= 6);
}

#[test]
fn config_extension_down_from_the_start_uses_the_defaults() {
    let stub = AppConfigStub::start(Mode::Status(500));
    let mut env = stub.env();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port().to_string();
    drop(closed);
    env.retain(|(k, _)| *k != "AWS_APPCONFIG_EXTENSION_HTTP_PORT");
    env.push(("AWS_APPCONFIG_EXTENSION_HTTP_PORT", closed_port));
    let (mut f, table) = function_with_table(&env);
    let key = minted_key(&f.invoke(&event()));
    let item = Dynalite::shared().get(&table, &key).unwrap();
    assert_eq!(n(&item, "ttl") - n(&item, "generated_at"), 1800);
    assert!(f.json_logs().iter().any(|l| {
        l["level"] == "WARNING"
            && l["error"]
                .as_str()
                .unwrap_or_default()
                .contains("AppConfig extension unreachable")
    }));
}

#[test]
fn start_up_errors_exit_with_a_line_that_names_the_problem() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![],
            "route POST /registration-keys: needs DYNAMODB_REGISTRATION_KEYS_TABLE_NAME, which is not set",
        ),
        (
            vec![
                ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", "t"),
                ("APP_CONFIG_ENV", "../x"),
            ],
            "APP_CONFIG_ENV may hold only",
        ),
        (
            vec![
                ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", "t"),
                ("AWS_LAMBDA_FUNCTION_NAME", "firefly-func-other"),
            ],
            "serves no route",
        ),
        (vec![("FIREFLY_STORE", "postgres")], "FIREFLY_STORE"),
        (
            vec![
                ("FIREFLY_STORE", "memory"),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ],
            "FIREFLY_STORE=memory inside a Lambda sandbox",
        ),
        (
            vec![
                ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", "t"),
                ("AWS_ENDPOINT_URL_DYNAMODB", "http://10.1.2.3:8000"),
            ],
            "set FIREFLY_ALLOW_PLAINTEXT_ENDPOINT=true if a plaintext server there is intended",
        ),
        (
            vec![
                ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", "t"),
                ("AWS_USE_FIPS_ENDPOINT", "yes"),
            ],
            "route POST /registration-keys: AWS_USE_FIPS_ENDPOINT=",
        ),
        (
            vec![
                ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", "t"),
                ("AWS_REGION", ""),
            ],
            "AWS_REGION",
        ),
    ];
    for (extra, expected) in cases {
        let mut f = Function::start(&env_with(&extra));
        let status = f.wait_exit(Duration::from_secs(20)).expect("process exits");
        assert!(!status.success());
        let logs = f.logs().join("\n");
        assert!(logs.contains(expected), "{expected:?} not in {logs}");
    }
}

#[test]
fn the_in_memory_store_is_used_only_when_asked_for() {
    let mut f = Function::start(&env_with(&[("FIREFLY_STORE", "memory")]));
    let key = minted_key(&f.invoke(&event()));
    assert!(is_key(&key));
}
