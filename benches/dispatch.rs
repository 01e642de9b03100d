//! Micro-benchmarks of the monolith's own work per warm invoke (DynamoDB excluded: the
//! in-memory store stands in), each beside a baseline measured in the same run.
//!
//! Run: `cargo bench --bench dispatch`. Compare each pair as a ratio:
//! - `invoke/firefly` (event JSON in, response JSON out: parse, route, guard, claims,
//!   config, key, store, serialize) against `invoke/parse-only`, the event parse alone
//!   that any Rust Lambda pays;
//! - `key/generate` against `key/getrandom-6-bytes`, the CSPRNG call alone;
//! - `response/serialize` against `response/serde-json-of-body`.

use criterion::{Criterion, criterion_group, criterion_main};
use firefly_api::app::App;
use firefly_api::clock::FixedClock;
use firefly_api::config::{ConfigSource, Settings};
use firefly_api::handlers::registration_keys_post::key::RegistrationKey;
use firefly_api::handlers::{ROUTES, Services};
use firefly_api::random::{SecureRandom, SystemRandom};
use firefly_api::response::Response;
use firefly_api::storage::MemoryKeyStore;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::StatusCode;
use std::hint::black_box;
use std::sync::Arc;

const EVENT: &[u8] = include_bytes!("../events/registration-keys-post.json");

fn app() -> App {
    App::new(
        ROUTES,
        "firefly-func-api-registration-keys-post",
        ConfigSource::Defaults(Arc::new(Settings::default())),
        Services {
            // A fresh store per run; 2^30 keys keep collisions out of the measurement.
            store: Arc::new(MemoryKeyStore::new()),
            clock: Arc::new(FixedClock(1_795_731_191)),
            random: Arc::new(SystemRandom),
        },
    )
    .unwrap()
}

fn invoke(c: &mut Criterion) {
    // The per-request log line is part of the work; write it where Lambda's stdout would be.
    firefly_api::telemetry::init(tracing_subscriber::filter::LevelFilter::INFO, std::io::sink);
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
            let response = rt.block_on(app.handle("bench", &event));
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

criterion_group!(benches, invoke, key, response);
criterion_main!(benches);
