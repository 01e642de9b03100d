//! End to end, two functions from one `bootstrap`: `POST /registration-keys` mints in one
//! process, `DELETE /registration-keys/{registrationKey}` revokes in another, both on the
//! same dynalite table, each started with only its own function's environment.

mod support;

use serde_json::Value;
use support::appconfig::{AppConfigStub, Mode};
use support::dynamo::{Dynalite, s};
use support::lambda::{Function, Outcome};
use support::*;

const NOW: i64 = 1_795_731_191;
const ALICE: &str = "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c";

fn now() -> String {
    NOW.to_string()
}

/// Both functions on one fresh table, the clock fixed at `NOW`.
fn pair(extra: &[(&str, String)]) -> (Function, Function, String) {
    let table = unique_table("revoke");
    Dynalite::shared().create_table(&table);
    let mut env = vec![("FIREFLY_TEST_NOW", now())];
    env.extend(extra.iter().cloned());
    let post = function_on_table(FUNCTION, &table, &env);
    let delete = function_on_table(DELETE_FUNCTION, &table, &env);
    (post, delete, table)
}

fn mint(post: &mut Function, sub: &str) -> String {
    let r = post.invoke(&event_for(sub)).http();
    assert_eq!(r.status, 201, "{r:?}");
    r.json()["key"].as_str().unwrap().to_owned()
}

fn problem(outcome: &Outcome, status: u16) -> Value {
    let r = outcome.http();
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    assert!(body["message"].is_string(), "{body}");
    body
}

#[test]
fn mint_then_revoke_then_revoke_again() {
    let (mut post, mut delete, table) = pair(&[]);
    let key = mint(&mut post, ALICE);
    assert!(Dynalite::shared().get(&table, &key).is_some());

    // Typed in lower case off a screen: the same key.
    let r = delete
        .invoke(&revoke_event(&key.to_ascii_lowercase(), ALICE))
        .http();
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.body.is_empty());
    assert!(Dynalite::shared().get(&table, &key).is_none());

    let again = delete.invoke(&revoke_event(&key, ALICE));
    let body = problem(&again, 404);
    assert!(!body.to_string().contains(&key));

    let done = delete
        .json_logs()
        .into_iter()
        .find(|l| l["status"] == 204)
        .expect("a completion line for the revoke");
    assert_eq!(done["user_id"], ALICE);
    assert_eq!(
        done["route_key"],
        "DELETE /registration-keys/{registrationKey}"
    );
    assert_not_logged(&delete, std::slice::from_ref(&key));
    assert_not_logged(&post, &[key]);
}

#[test]
fn someone_elses_key_expired_leftovers_and_unknown_keys_are_one_404() {
    let (mut post, mut delete, table) = pair(&[]);
    let db = Dynalite::shared();
    let bobs = mint(&mut post, "bob");
    db.put(&table, "AAAAAA", ALICE, NOW - 4000, NOW - 1);
    let mut bodies = Vec::new();
    for key in [bobs.as_str(), "AAAAAA", "ZZZZZZ"] {
        let body = problem(&delete.invoke(&revoke_event(key, ALICE)), 404);
        bodies.push(body);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    // Bob's key and the leftover are untouched.
    assert_eq!(
        s(&db.get(&table, &bobs).unwrap(), "generated_by_sub"),
        "bob"
    );
    assert!(db.get(&table, "AAAAAA").is_some());
    // Bob can still revoke his own.
    assert_eq!(
        delete.invoke(&revoke_event(&bobs, "bob")).http().status,
        204
    );
}

#[test]
fn malformed_keys_are_400_and_never_echoed_or_logged() {
    let (_post, mut delete, table) = pair(&[]);
    let bad = ["7KQ2M", "7KQ2MXX", "7KQ-2M", "7KQ%20M", "ÄKQ2MX"];
    for key in bad {
        let body = problem(&delete.invoke(&revoke_event(key, ALICE)), 400);
        assert!(!body.to_string().contains(key), "{body}");
    }
    assert!(Dynalite::shared().scan(&table).is_empty());
    let secrets: Vec<String> = bad
        .iter()
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(|k| k.to_string())
        .collect();
    assert_not_logged(&delete, &secrets);
}

#[test]
fn each_function_refuses_the_others_route() {
    let (mut post, mut delete, table) = pair(&[]);
    let key = mint(&mut post, ALICE);
    problem(&post.invoke(&revoke_event(&key, ALICE)), 404);
    assert!(
        Dynalite::shared().get(&table, &key).is_some(),
        "POST's function deleted a key"
    );
    problem(&delete.invoke(&event()), 404);
    assert_eq!(
        Dynalite::shared().scan(&table).len(),
        1,
        "DELETE's function minted a key"
    );
    for (f, owner) in [(&post, DELETE_FUNCTION), (&delete, FUNCTION)] {
        assert!(
            f.json_logs().iter().any(|l| l["level"] == "ERROR"
                && l["owner"] == owner
                && l["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("misrouted")),
            "no misrouting line naming {owner}"
        );
    }
}

#[test]
fn each_function_starts_with_only_its_own_environment_and_names_what_is_missing() {
    // Exactly the variables routes/functions.json's template gives DELETE's function, less
    // AppConfig (optional locally): no variable of another function.
    let table = unique_table("revoke-env");
    Dynalite::shared().create_table(&table);
    let mut f = function_on_table(DELETE_FUNCTION, &table, NO_ENV);
    problem(&f.invoke(&revoke_event("ZZZZZZ", ALICE)), 404);
    let ready = f
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "ready")
        .expect("a ready line");
    assert_eq!(ready["function"], DELETE_FUNCTION);
    assert!(
        ready["routes"]
            .as_str()
            .unwrap()
            .contains("DELETE /registration-keys/{registrationKey}")
    );
    assert!(!ready["routes"].as_str().unwrap().contains("POST"));

    let mut f = Function::start(&env_of(DELETE_FUNCTION, NO_ENV));
    let status = f
        .wait_exit(std::time::Duration::from_secs(20))
        .expect("exits");
    assert!(!status.success());
    let logs = f.logs().join("\n");
    assert!(
        logs.contains(
            "route DELETE /registration-keys/{registrationKey}: needs DYNAMODB_REGISTRATION_KEYS_TABLE_NAME, which is not set"
        ),
        "{logs}"
    );
}

#[test]
fn the_registration_keys_switch_turns_revoking_off_too() {
    let stub = AppConfigStub::start(Mode::Serve(
        r#"{"registrationKeys":{"enabled":false}}"#.into(),
    ));
    let env: Vec<(&str, String)> = stub.env();
    let (_post, mut delete, table) = pair(&env);
    Dynalite::shared().put(&table, "7KQ2MX", ALICE, NOW, NOW + 600);
    problem(&delete.invoke(&revoke_event("7KQ2MX", ALICE)), 503);
    assert!(Dynalite::shared().get(&table, "7KQ2MX").is_some());
    // Another feature's broken section does not disturb this one.
    stub.set(Mode::Serve(
        r#"{"registrationKeys":{"enabled":true},"devices":{"limit":"broken"}}"#.into(),
    ));
    assert_eq!(
        delete.invoke(&revoke_event("7KQ2MX", ALICE)).http().status,
        204
    );
}

#[test]
fn default_events_without_an_authorizer_revoke_nothing() {
    let (_post, mut delete, table) = pair(&[]);
    Dynalite::shared().put(&table, "7KQ2MX", ALICE, NOW, NOW + 600);
    let mut e = default_event("DELETE", "/registration-keys/7KQ2MX");
    e["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    problem(&delete.invoke(&e), 401);
    let e = default_event("GET", "/registration-keys/7KQ2MX");
    let r = delete.invoke(&e).http();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), "DELETE");
    assert!(Dynalite::shared().get(&table, "7KQ2MX").is_some());
}

/// The listing function on `table` at `NOW`, and Alice's `GET /registration-keys` event
/// (the shipped example).
fn lister(table: &str) -> (Function, Value) {
    let list = function_on_table(
        "firefly-func-api-registration-keys-get",
        table,
        &[("FIREFLY_TEST_NOW", now())],
    );
    let path = format!(
        "{}/events/registration-keys-get.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut get: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    get["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = ALICE.into();
    (list, get)
}

#[test]
fn keys_in_either_implementations_shape_are_listed_and_revoked_side_by_side() {
    // A key FireFly's Python function wrote (no mint_nonce) and one ours wrote, on one
    // table: GET /registration-keys lists both as the console reads them, oldest first;
    // DELETE revokes the Python one.
    let (mut post, mut delete, table) = pair(&[]);
    let db = Dynalite::shared();
    db.put(&table, "PY7H0N", ALICE, NOW - 60, NOW + 1740);
    let ours = mint(&mut post, ALICE);
    let (mut list, get) = lister(&table);
    let r = list.invoke(&get).http();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(
        r.json(),
        serde_json::json!({"registration_keys": [
            {"key": "PY7H0N", "generated_at": NOW - 60, "expires_at": NOW + 1740},
            {"key": ours, "generated_at": NOW, "expires_at": NOW + 1800},
        ]})
    );
    let gone = delete.invoke(&revoke_event("PY7H0N", ALICE)).http();
    assert_eq!(gone.status, 204, "{gone:?}");
    assert_eq!(gone.header("content-type"), "application/json");
    assert!(gone.body.is_empty());
    assert!(db.get(&table, "PY7H0N").is_none());
    // Keys only FireFly's alphabet has (I, L, O, U: about 63% of what it mints) are revoked
    // too (issue 25, item 3), typed in either case.
    for (stored, typed) in [("LOUI12", "LOUI12"), ("OILU99", "oilu99")] {
        db.put(&table, stored, ALICE, NOW - 60, NOW + 1740);
        let gone = delete.invoke(&revoke_event(typed, ALICE)).http();
        assert_eq!(gone.status, 204, "{stored}: {gone:?}");
        assert!(db.get(&table, stored).is_none(), "{stored}");
    }
    // Someone else's listing sees none of Alice's keys.
    let mut bobs = get.clone();
    bobs["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "bob".into();
    assert_eq!(
        list.invoke(&bobs).http().json(),
        serde_json::json!({"registration_keys": []})
    );
}

#[test]
fn listing_reads_every_scan_page() {
    // Past 1 MB a Scan answers in pages; FireFly's function read only the first, so keys
    // silently went missing. Four items of 300 KB (a padding attribute other writers may
    // add) make at least two pages, the caller's keys among them.
    let table = unique_table("pages");
    let db = Dynalite::shared();
    db.create_table(&table);
    let pad = "x".repeat(300_000);
    let mut expected = Vec::new();
    for (i, key) in ["PAGE01", "PAGE02", "PAGE03", "PAGE04", "PAGE05"]
        .iter()
        .enumerate()
    {
        let mut item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            std::collections::HashMap::new();
        use aws_sdk_dynamodb::types::AttributeValue::{N, S};
        item.insert("key".into(), S((*key).into()));
        item.insert("ttl".into(), N((NOW + 1000).to_string()));
        item.insert("generated_at".into(), N((NOW - 100 + i as i64).to_string()));
        item.insert("generated_by_sub".into(), S(ALICE.into()));
        item.insert("generated_by_email".into(), S(String::new()));
        item.insert("pad".into(), S(pad.clone()));
        db.put_item(&table, item);
        expected.push(*key);
    }
    let pages = {
        let out = support::dynamo::block_on(db.client().scan().table_name(&table).send()).unwrap();
        out.last_evaluated_key.is_some()
    };
    assert!(
        pages,
        "the table must need more than one Scan page for this test to mean anything"
    );
    let (mut list, get) = lister(&table);
    let r = list.invoke(&get).http();
    assert_eq!(r.status, 200, "{r:?}");
    let keys: Vec<String> = r.json()["registration_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, expected);
}
