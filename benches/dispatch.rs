//! Micro-benchmarks of the monolith's own work per warm invoke (DynamoDB excluded: the
//! in-memory store stands in), each beside a baseline measured in the same run.
//!
//! Run: `cargo bench --bench dispatch`. Compare each pair as a ratio:
//! - `invoke/firefly` (event JSON in, response JSON out: parse, route, guard, claims,
//!   config, key, store, serialize) against `invoke/parse-only`, the event parse alone
//!   that any Rust Lambda pays;
//! - `key/generate` against `key/getrandom-6-bytes`, the CSPRNG call alone;
//! - `response/serialize` against `response/serde-json-of-body`;
//! - `route-cost/*/52-routes` against `route-cost/*/2-routes`: the table's size per event.

use criterion::{Criterion, criterion_group, criterion_main};
use firefly_api::app::App;
use firefly_api::clock::FixedClock;
use firefly_api::init::Parts;
use firefly_api::init::StoreMode;
use firefly_api::random::{SecureRandom, SystemRandom};
use firefly_api::registration_keys::key::RegistrationKey;
use firefly_api::response::Response;
use firefly_api::routes::ROUTES;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::StatusCode;
use std::hint::black_box;
use std::sync::Arc;

const EVENT: &[u8] = include_bytes!("../events/registration-keys-post.json");

fn app() -> App {
    app_of(ROUTES)
}

fn app_of(routes: &'static [firefly_api::route::Route]) -> App {
    let parts = Parts {
        clock: Arc::new(FixedClock(1_795_731_191)),
        random: Arc::new(SystemRandom),
        // A fresh memory store per run; 2^30 keys keep collisions out of the measurement.
        store_mode: StoreMode::Memory,
        shared: Default::default(),
    };
    App::build(
        routes,
        Some("firefly-func-api-registration-keys-post"),
        parts,
        &|_| None,
    )
    .unwrap()
}

fn invoke(c: &mut Criterion) {
    // The per-request log line is part of the work; write it where Lambda's stdout would be.
    firefly_api::telemetry::init(
        tracing_subscriber::filter::LevelFilter::INFO,
        firefly_api::telemetry::Output::Discard,
        firefly_api::telemetry::DEFAULT_NAMESPACE,
        "bench",
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = app();
    let mut g = c.benchmark_group("invoke");
    g.bench_function("parse-only", |b| {
        b.iter(|| serde_json::from_slice::<ApiGatewayV2httpRequest>(black_box(EVENT)).unwrap())
    });
    g.bench_function("firefly", |b| {
        b.iter(|| {
            let event: ApiGatewayV2httpRequest = serde_json::from_slice(black_box(EVENT)).unwrap();
            let response = rt.block_on(app.respond("bench", &event)).into_lambda();
            serde_json::to_vec(&response).unwrap()
        })
    });
    g.finish();
}

fn key(c: &mut Criterion) {
    let mut g = c.benchmark_group("key");
    g.bench_function("getrandom-6-bytes", |b| {
        b.iter(|| {
            let mut buf = [0u8; 6];
            SystemRandom.fill(&mut buf).unwrap();
            buf
        })
    });
    g.bench_function("generate", |b| {
        b.iter(|| RegistrationKey::generate(&SystemRandom).unwrap())
    });
    g.finish();
}

fn response(c: &mut Criterion) {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Minted {
        registration_key: &'static str,
        expires_at: &'static str,
        expires_in: u32,
    }
    let body = Minted {
        registration_key: "7KQ2MX",
        expires_at: "2026-11-26T22:43:11Z",
        expires_in: 1800,
    };
    let mut g = c.benchmark_group("response");
    g.bench_function("serde-json-of-body", |b| {
        b.iter(|| serde_json::to_vec(black_box(&body)).unwrap())
    });
    g.bench_function("serialize", |b| {
        b.iter(|| {
            serde_json::to_vec(&Response::json(StatusCode::CREATED, black_box(&body)).into_lambda())
                .unwrap()
        })
    });
    g.finish();
}

/// What a route costs per event: the same invoke with the real table and with 50 more
/// routes (src/synthetic.rs), by route key (a hash look-up) and as a `$default` event
/// (matched by path with matchit). Dispatch by key must not grow with the table.
fn route_cost(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let event: ApiGatewayV2httpRequest = serde_json::from_slice(EVENT).unwrap();
    let mut default = event.clone();
    default.route_key = Some("$default".into());
    let mut g = c.benchmark_group("route-cost");
    for (name, routes) in [
        ("2-routes", ROUTES),
        ("52-routes", firefly_api::synthetic::table()),
    ] {
        let app = app_of(routes);
        g.bench_function(format!("by-key/{name}"), |b| {
            b.iter(|| rt.block_on(app.respond("bench", black_box(&event))))
        });
        g.bench_function(format!("default/{name}"), |b| {
            b.iter(|| rt.block_on(app.respond("bench", black_box(&default))))
        });
    }
    g.finish();
}

/// What the observability costs per request: the EMF document, and the request context
/// (made once per request) that every log line carries.
fn observability(c: &mut Criterion) {
    use firefly_api::telemetry::{RequestContext, emf_document, in_request};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("observability");
    let context = || {
        RequestContext::new(
            "firefly-func-api-registration-keys-post",
            "8f4b7a1e-3c2d-4e5f-9a8b-7c6d5e4f3a2b",
            "Cq2bTjk9joEEMhQ=",
            Some("Root=1-6745f1a2-0c3f8e5b7a1d2e3f4a5b6c7d;Parent=53995c3f42cd8ad8;Sampled=1"),
            "POST /registration-keys",
        )
    };
    g.bench_function("request-context", |b| b.iter(context));
    let ctx = context();
    g.bench_function("emf-document", |b| {
        b.iter(|| {
            emf_document(
                black_box(&ctx),
                "Firefly",
                1_795_731_191_000,
                201,
                std::time::Duration::from_micros(612),
            )
        })
    });
    g.bench_function("log-line-in-request", |b| {
        b.iter(|| {
            rt.block_on(in_request(ctx.clone(), async {
                tracing::info!(
                    status = 201u16,
                    user_id = "u",
                    latency_us = 612u64,
                    "request completed"
                )
            }))
        })
    });
    g.finish();
}

/// The device signature check (`GET /devices/{uuid}/registration`) against the bare ECDSA
/// verification it wraps.
fn device(c: &mut Criterion) {
    use base64::Engine as _;
    use firefly_api::handler::FromRequest;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref());
    let now = 1_795_731_191;
    // Signed as the firmware signs: nonce bytes then the timestamp's ASCII, DER, Base64.
    let b64 = base64::engine::general_purpose::STANDARD;
    let timestamp = firefly_api::clock::rfc3339(now);
    let nonce = [9u8; 32];
    let mut signed = nonce.to_vec();
    signed.extend_from_slice(timestamp.as_bytes());
    let sig = pair.sign(&rng, &signed).unwrap();
    let headers = [
        ("x-device-uuid".to_string(), "u1".to_string()),
        ("x-device-nonce".to_string(), b64.encode(nonce)),
        ("x-device-timestamp".to_string(), timestamp),
        ("x-device-signature".to_string(), b64.encode(sig.as_ref())),
    ];
    let mut event = ApiGatewayV2httpRequest::default();
    for (k, v) in &headers {
        event.headers.insert(
            lambda_http::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let req = firefly_api::handler::Request {
        request_id: "r",
        params: vec![],
        event: &event,
        deadline: None,
    };
    let nonce = b64.decode(&headers[1].1).unwrap();
    let signature = b64.decode(&headers[3].1).unwrap();
    let mut message = nonce.clone();
    message.extend_from_slice(headers[2].1.as_bytes());
    let point = pair.public_key().as_ref().to_vec();
    let mut g = c.benchmark_group("device");
    g.bench_function("ring-verify", |b| {
        b.iter(|| {
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                &point,
            )
            .verify(std::hint::black_box(&message), &signature)
            .unwrap()
        })
    });
    g.bench_function("signature-check", |b| {
        b.iter(|| {
            let sig = firefly_api::devices::signature::DeviceSignature::from_request(&req).unwrap();
            sig.verify("u1", std::hint::black_box(&public), now * 1_000_000)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    invoke,
    key,
    response,
    route_cost,
    observability,
    device
);
criterion_main!(benches);
