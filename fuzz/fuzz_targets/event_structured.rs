//! Well-formed API Gateway v2 events with arbitrary route keys, methods, paths, stages,
//! headers, bodies and claims: reaches the router and the claims checks far more often
//! than raw bytes do.
#![no_main]

use arbitrary::Arbitrary;
use firefly_api::fuzzing::Harness;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

static HARNESS: OnceLock<Harness> = OnceLock::new();

#[derive(Arbitrary, Debug)]
enum RouteKey {
    Ours,
    Default,
    OtherMethod(Method),
    Other(String),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
    Head,
    Options,
    Patch,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
            Self::Patch => "PATCH",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Authorizer {
    None,
    Lambda(Vec<(String, String)>),
    Jwt {
        sub: Option<String>,
        claims: Vec<(String, String)>,
        null_claims: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Event {
    route_key: RouteKey,
    method: Method,
    known_path: bool,
    raw_path: String,
    stage: Option<String>,
    headers: Vec<(String, String)>,
    path_parameters: Vec<(String, String)>,
    body: Option<String>,
    base64: bool,
    authorizer: Authorizer,
}

fn map(pairs: Vec<(String, String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<_, _>>(),
    )
}

fn build(e: Event) -> Value {
    let path = if e.known_path {
        "/registration-keys".to_owned()
    } else {
        e.raw_path
    };
    let route_key = match e.route_key {
        RouteKey::Ours => "POST /registration-keys".to_owned(),
        RouteKey::Default => "$default".to_owned(),
        RouteKey::OtherMethod(m) => format!("{} /registration-keys", m.as_str()),
        RouteKey::Other(s) => s,
    };
    let mut ctx = json!({
        "routeKey": route_key,
        "requestId": "fuzz",
        "timeEpoch": 0,
        "http": {"method": e.method.as_str(), "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "127.0.0.1", "userAgent": "fuzz"},
    });
    if let Some(stage) = e.stage {
        ctx["stage"] = Value::String(stage);
    }
    match e.authorizer {
        Authorizer::None => {}
        Authorizer::Lambda(fields) => ctx["authorizer"] = json!({"lambda": map(fields)}),
        Authorizer::Jwt {
            sub,
            claims,
            null_claims,
        } => {
            let mut claims = map(claims);
            if let Some(sub) = sub {
                claims["sub"] = Value::String(sub);
            }
            if null_claims {
                claims = Value::Null;
            }
            ctx["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
        }
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": map(e.headers),
        "pathParameters": map(e.path_parameters),
        "requestContext": ctx,
        "isBase64Encoded": e.base64,
    });
    if let Some(body) = e.body {
        event["body"] = Value::String(body);
    }
    event
}

fuzz_target!(|e: Event| {
    let bytes = serde_json::to_vec(&build(e)).unwrap();
    HARNESS.get_or_init(Harness::new).run_bytes(&bytes);
});
