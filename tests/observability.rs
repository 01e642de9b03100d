//! What Powertools users expect, end to end from the real binary: the request's context on
//! every log line, one EMF document per request that the specification accepts with the
//! values a known sequence of requests must give, and the trace header carried to DynamoDB.

mod support;

use serde_json::Value;
use support::dynamo::Dynalite;
use support::faults::{Fault, Proxy};
use support::lambda::{Function, trace_header};
use support::*;

const NOW: i64 = 1_795_731_191;
const ALICE: &str = "4f8a2c1e-9b7d-4e3f-a6c5-2d1e0f9a8b7c";

struct Rig {
    post: Function,
    delete: Function,
    proxy: Proxy,
    table: String,
}

fn rig(extra: &[(&str, &str)]) -> Rig {
    let db = Dynalite::shared();
    let table = unique_table("obs");
    db.create_table(&table);
    let proxy = Proxy::start(db.port);
    let endpoint = proxy.endpoint();
    let now = NOW.to_string();
    let mut env: Vec<(&str, &str)> = vec![
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
        ("FIREFLY_TEST_NOW", now.as_str()),
    ];
    env.extend_from_slice(extra);
    let post = Function::start(&env_of(FUNCTION, &env));
    let delete = Function::start(&env_of(DELETE_FUNCTION, &env));
    Rig {
        post,
        delete,
        proxy,
        table,
    }
}

fn request_lines<'a>(lines: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l.get("_aws").is_none() && l["function_request_id"] == request_id)
        .collect()
}

#[test]
fn every_line_of_a_request_carries_its_context_with_powertools_names() {
    let mut r = rig(&[]);
    let first = r.post.invoke(&event_for(ALICE)).http();
    assert_eq!(first.status, 201);
    let mut second_event = event_for(ALICE);
    second_event["requestContext"]["requestId"] = "second-apigw-id".into();
    assert_eq!(r.post.invoke(&second_event).http().status, 201);
    let lines = r.post.json_logs();
    for (id, correlation, cold) in [
        ("req-1", "Cq2bTjk9joEEMhQ=", true),
        ("req-2", "second-apigw-id", false),
    ] {
        let mine = request_lines(&lines, id);
        // At TRACE (the test default) a mint logs more than its completion line.
        assert!(mine.len() >= 2, "{id}: {mine:?}");
        let trace = trace_header(id);
        let root = trace.split(';').next().unwrap().trim_start_matches("Root=");
        for l in mine {
            assert_eq!(l["function_name"], FUNCTION, "{l}");
            assert_eq!(l["correlation_id"], correlation, "{l}");
            assert_eq!(l["xray_trace_id"], root, "{l}");
            assert_eq!(l["route_key"], "POST /registration-keys", "{l}");
            assert_eq!(l["cold_start"], cold, "{l}");
            assert!(l["level"].is_string() && l["timestamp"].is_string(), "{l}");
        }
    }
    // Lines outside a request (start-up) carry none of it.
    let ready = lines.iter().find(|l| l["message"] == "ready").unwrap();
    assert!(ready.get("function_request_id").is_none());
}

#[test]
fn one_valid_emf_document_per_request_with_the_values_of_a_known_sequence() {
    // Minting draws AAAAAA (taken by someone else: one collision), then BBBBBB.
    let mut r = rig(&[("FIREFLY_TEST_KEYS", "AAAAAA,BBBBBB")]);
    Dynalite::shared().put(&r.table, "AAAAAA", "owner", NOW, NOW + 600);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let mut anonymous = event();
    anonymous["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    assert_eq!(r.post.invoke(&anonymous).http().status, 401);
    let mut stray = event();
    stray["routeKey"] = "GET /no/such/route".into();
    assert_eq!(r.post.invoke(&stray).http().status, 404);
    assert_eq!(
        r.delete
            .invoke(&revoke_event("BBBBBB", ALICE))
            .http()
            .status,
        204
    );
    assert_eq!(
        r.delete
            .invoke(&revoke_event("BBBBBB", ALICE))
            .http()
            .status,
        404
    );

    let post_docs = emf::documents(&r.post.json_logs());
    let delete_docs = emf::documents(&r.delete.json_logs());
    assert_eq!(
        post_docs.len(),
        3,
        "one document per request: {post_docs:?}"
    );
    assert_eq!(delete_docs.len(), 2);
    for doc in post_docs.iter().chain(&delete_docs) {
        emf::check(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Firefly");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["function", "route"]])
        );
        // No high-cardinality value anywhere a dimension could pick it up.
        assert!(!doc.to_string().contains(ALICE), "{doc}");
    }
    let metric = |doc: &Value, name: &str| doc[name].as_f64();
    let [mint, refused, stray] = [&post_docs[0], &post_docs[1], &post_docs[2]];
    assert_eq!(mint["function"], FUNCTION);
    assert_eq!(mint["route"], "POST /registration-keys");
    assert_eq!(mint["function_request_id"], "req-1");
    for (name, value) in [
        ("Requests", 1.0),
        ("Errors4xx", 0.0),
        ("Errors5xx", 0.0),
        ("ColdStart", 1.0),
        ("KeysMinted", 1.0),
        ("CollisionsRedrawn", 1.0),
        ("DynamoDBAttempts", 2.0),
    ] {
        assert_eq!(metric(mint, name), Some(value), "{name} in {mint}");
    }
    assert!(mint["Latency"].as_f64().unwrap() > 0.0);
    assert_eq!(mint["DynamoDBLatency"].as_array().map(Vec::len), Some(2));
    assert_eq!(metric(refused, "Errors4xx"), Some(1.0));
    assert_eq!(metric(refused, "ColdStart"), Some(0.0));
    assert!(refused.get("KeysMinted").is_none());
    assert_eq!(refused["route"], "POST /registration-keys");
    assert_eq!(stray["route"], "$unmatched");
    assert_eq!(metric(stray, "Errors4xx"), Some(1.0));

    let [revoked, again] = [&delete_docs[0], &delete_docs[1]];
    assert_eq!(revoked["function"], DELETE_FUNCTION);
    assert_eq!(
        revoked["route"],
        "DELETE /registration-keys/{registrationKey}"
    );
    assert_eq!(metric(revoked, "KeysRevoked"), Some(1.0));
    assert_eq!(metric(revoked, "ColdStart"), Some(1.0));
    assert!(again.get("KeysRevoked").is_none());
    assert_eq!(metric(again, "Errors4xx"), Some(1.0));
}

#[test]
fn the_invocations_trace_header_reaches_dynamodb() {
    let mut r = rig(&[]);
    r.proxy.set(vec![], Fault::Pass);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    // The one operation is the only request: init opens its connection without one.
    let headers = r.proxy.headers();
    assert_eq!(headers.len(), 1);
    let sent = headers[0]
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amzn-trace-id"))
        .map(|(_, v)| v.clone());
    assert_eq!(sent.as_deref(), Some(trace_header("req-1").as_str()));
}

#[test]
fn firefly_consoles_logging_profile_sets_the_level_with_python_names_and_logger() {
    use support::appconfig::{AppConfigStub, Mode};
    // Without a logging profile, FireFly's default: WARNING (no INFO request lines).
    let stub = AppConfigStub::start(Mode::Status(404));
    let env: Vec<(String, String)> = stub
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut r = rig(&env);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let lines = r.post.json_logs();
    let logs: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_none()).collect();
    assert!(
        logs.iter()
            .all(|l| l["level"] == "WARNING" || l["level"] == "ERROR"),
        "{logs:?}"
    );
    assert_eq!(
        emf::documents(&lines).len(),
        1,
        "metrics whatever the level"
    );

    // The console sets DEBUG (any case): debug lines, each with FireFly's `logger`.
    stub.set_logging(r#"{"logging": "debug"}"#);
    let mut r = rig(&env);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let lines = r.post.json_logs();
    let logs: Vec<&Value> = lines.iter().filter(|l| l.get("_aws").is_none()).collect();
    assert!(logs.iter().any(|l| l["level"] == "DEBUG"), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l["level"] == "INFO" && l["message"] == "request completed")
    );
    assert!(logs.iter().all(|l| l["logger"] == FUNCTION), "{logs:?}");

    // ERROR: not even the warnings.
    stub.set_logging(r#"{"logging": "ERROR"}"#);
    let mut r = rig(&env);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let lines = r.post.json_logs();
    assert!(
        lines
            .iter()
            .filter(|l| l.get("_aws").is_none())
            .all(|l| l["level"] == "ERROR"),
        "{lines:?}"
    );
}

#[test]
fn the_log_level_filters_lines_but_never_the_metrics() {
    let mut r = rig(&[("AWS_LAMBDA_LOG_LEVEL", "WARN")]);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let lines = r.post.json_logs();
    assert!(
        lines
            .iter()
            .filter(|l| l.get("_aws").is_none())
            .all(|l| l["level"] == "WARNING" || l["level"] == "ERROR"),
        "{lines:?}"
    );
    assert_eq!(emf::documents(&lines).len(), 1);
}

#[test]
fn a_namespace_from_the_template_parameter_is_used() {
    let mut r = rig(&[("FIREFLY_METRICS_NAMESPACE", "Firefly/Staging")]);
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    let docs = emf::documents(&r.post.json_logs());
    assert_eq!(
        docs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "Firefly/Staging"
    );
}

#[test]
fn the_checker_refuses_what_the_specification_refuses() {
    let good = serde_json::json!({
        "_aws": {"Timestamp": 1_795_731_191_000u64, "CloudWatchMetrics": [{
            "Namespace": "Firefly", "Dimensions": [["function"]],
            "Metrics": [{"Name": "Requests", "Unit": "Count"}]}]},
        "function": "f", "Requests": 1
    });
    emf::check(&good).unwrap();
    let mut bad_unit = good.clone();
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Widgets".into();
    let mut no_value = good.clone();
    no_value.as_object_mut().unwrap().remove("Requests");
    let mut no_dimension = good.clone();
    no_dimension.as_object_mut().unwrap().remove("function");
    let mut seconds = good.clone();
    seconds["_aws"]["Timestamp"] = 1_795_731_191u64.into();
    let mut wide = good.clone();
    let names: Vec<String> = (0..31).map(|i| format!("d{i}")).collect();
    for n in &names {
        wide[n] = "x".into();
    }
    wide["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([names]);
    for bad in [bad_unit, no_value, no_dimension, seconds, wide] {
        assert!(emf::check(&bad).is_err(), "{bad}");
    }
}

#[test]
fn the_dynamodb_connection_is_opened_during_init_and_carries_the_first_operation() {
    // Each function's init opens its DynamoDB connection (TCP, and TLS on AWS) without
    // sending anything, and its first operation goes over it: the rig's two functions, one
    // connection each, the DELETE one never invoked, and no request but the one operation.
    let mut r = rig(&[]);
    // The DELETE function starts beside the POST one; its init may still be running.
    r.delete.await_ready();
    r.post.await_ready();
    assert_eq!(r.proxy.server.await_connections(2), 2);
    assert!(r.proxy.headers().is_empty(), "{:?}", r.proxy.headers());
    assert_eq!(r.post.invoke(&event_for(ALICE)).http().status, 201);
    assert_eq!(r.proxy.server.connections(), 2);
    let operations: Vec<Option<String>> = r
        .proxy
        .headers()
        .iter()
        .map(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(operations, [Some("DynamoDB_20120810.PutItem".to_owned())]);
}
