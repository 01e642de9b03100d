//! Test support: real stand-ins on 127.0.0.1 for everything the binary talks to.

#![allow(dead_code)]

pub mod appconfig;
#[cfg(any(feature = "test-hooks", feature = "tools"))]
pub mod cognito;
pub mod dynamo;
pub mod emf;
pub mod faults;
pub mod http;
pub mod lambda;
#[cfg(any(feature = "test-hooks", feature = "tools"))]
pub mod s3;
pub mod tls;

use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};

/// The function most tests run: `POST /registration-keys`.
pub const FUNCTION: &str = "firefly-func-api-registration-keys-post";
/// The second function: `DELETE /registration-keys/{registrationKey}`.
pub const DELETE_FUNCTION: &str = "firefly-func-api-registration-keys-delete";

/// The shipped example event (a real API Gateway HTTP API payload 2.0 event).
pub fn event() -> Value {
    let text = include_str!("../../events/registration-keys-post.json");
    serde_json::from_str(text).unwrap()
}

/// The shipped example revoke event, for `key` (as the path carries it) and caller `sub`.
pub fn revoke_event(key: &str, sub: &str) -> Value {
    let text = include_str!("../../events/registration-keys-registrationKey-delete.json");
    let mut e: Value = serde_json::from_str(text).unwrap();
    let path = format!("/registration-keys/{key}");
    e["rawPath"] = path.clone().into();
    e["requestContext"]["http"]["path"] = path.into();
    e["pathParameters"]["registrationKey"] = key.into();
    e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = Value::String(sub.into());
    e
}

/// The example event with another caller.
pub fn event_for(sub: &str) -> Value {
    let mut e = event();
    e["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = Value::String(sub.into());
    e
}

/// A `$default` event (catch-all route or function URL): no authorizer, matched by path.
pub fn default_event(method: &str, path: &str) -> Value {
    let mut e = event();
    e["routeKey"] = "$default".into();
    e["rawPath"] = path.into();
    e["requestContext"]["routeKey"] = "$default".into();
    e["requestContext"]["http"]["method"] = method.into();
    e["requestContext"]["http"]["path"] = path.into();
    e
}

/// A table name no other test uses.
pub fn unique_table(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The base function environment with `extra` added or replaced.
pub fn env_with<K: AsRef<str>, V: AsRef<str>>(extra: &[(K, V)]) -> Vec<(String, String)> {
    env_of(FUNCTION, extra)
}

/// The base environment of `function` with `extra` added or replaced.
pub fn env_of<K: AsRef<str>, V: AsRef<str>>(
    function: &str,
    extra: &[(K, V)],
) -> Vec<(String, String)> {
    let mut env = lambda::base_env(function);
    for (k, v) in extra {
        env.retain(|(name, _)| name != k.as_ref());
        env.push((k.as_ref().to_string(), v.as_ref().to_string()));
    }
    env
}

/// A function on the shared dynalite with a fresh table, plus `extra` environment.
pub fn function_with_table<K: AsRef<str>, V: AsRef<str>>(
    extra: &[(K, V)],
) -> (lambda::Function, String) {
    let table = unique_table("keys");
    dynamo::Dynalite::shared().create_table(&table);
    (function_on_table(FUNCTION, &table, extra), table)
}

/// `function` on the shared dynalite's `table`, plus `extra` environment.
pub fn function_on_table<K: AsRef<str>, V: AsRef<str>>(
    function: &str,
    table: &str,
    extra: &[(K, V)],
) -> lambda::Function {
    let db = dynamo::Dynalite::shared();
    let table = table.to_owned();
    let mut env = env_of(function, extra);
    for (k, v) in [
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.clone()),
        ("AWS_ENDPOINT_URL_DYNAMODB", db.endpoint()),
    ] {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.into(), v));
        }
    }
    lambda::Function::start(&env)
}

/// Asserts that none of `secrets` appears in any line the function logged, as a whole
/// token of any string in a JSON line (or anywhere in a non-JSON line). Tokens, not
/// substrings: an all-digit key like `642663` would otherwise "match" inside a latency.
pub fn assert_not_logged(f: &lambda::Function, secrets: &[String]) {
    fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, v)| {
                out.push(k);
                strings(v, out)
            }),
            _ => {}
        }
    }
    let secrets: std::collections::HashSet<&str> = secrets.iter().map(String::as_str).collect();
    let logs = f.logs();
    assert!(!logs.is_empty(), "the function logged nothing at all");
    for line in &logs {
        let parsed = serde_json::from_str::<serde_json::Value>(line).ok();
        let mut texts = Vec::new();
        match &parsed {
            Some(v) => strings(v, &mut texts),
            None => texts.push(line),
        }
        for token in texts
            .iter()
            .flat_map(|t| t.split(|c: char| !c.is_ascii_alphanumeric()))
        {
            assert!(
                !secrets.contains(token),
                "secret {token} found in the log line {line}"
            );
        }
    }
}

pub const NO_ENV: &[(&str, &str)] = &[];
