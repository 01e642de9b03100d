//! The fuzzing harness: the whole event-to-response path with its invariants checked.
//! Used by the cargo-fuzz targets in `fuzz/` and by `tests/fuzz_corpus.rs`, which replays
//! the kept corpus on every test run. Compiled only with the `test-hooks` feature.

use crate::app::App;
use crate::clock::SystemClock;
use crate::init::Parts;
use crate::init::StoreMode;
use crate::random::SystemRandom;
use crate::registration_keys::key::RegistrationKey;
use crate::registration_keys::store::{KeyStore, MemoryKeyStore};
use crate::routes::ROUTES;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::http::Extensions;
use std::sync::Arc;

pub struct Harness {
    app: App,
    store: Arc<MemoryKeyStore>,
    runtime: tokio::runtime::Runtime,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        let store = Arc::new(MemoryKeyStore::new());
        let mut shared = Extensions::new();
        shared.insert(Arc::clone(&store) as Arc<dyn KeyStore>);
        let parts = Parts {
            clock: Arc::new(SystemClock),
            random: Arc::new(SystemRandom),
            store_mode: StoreMode::Memory,
            shared,
        };
        let app = App::build(
            ROUTES,
            Some("firefly-func-api-registration-keys-post"),
            parts,
            &|_| None,
        )
        .expect("the route table builds");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Self {
            app,
            store,
            runtime,
        }
    }

    /// Arbitrary bytes as the Lambda payload: what does not deserialize is the runtime's to
    /// refuse (an invocation error); what does must meet [`Harness::check`].
    pub fn run_bytes(&self, data: &[u8]) {
        if let Ok(event) = serde_json::from_slice::<ApiGatewayV2httpRequest>(data) {
            self.check(&event);
        }
    }

    /// Runs `event` through the app and panics if an invariant breaks.
    pub fn check(&self, event: &ApiGatewayV2httpRequest) {
        // Keep a long fuzzing run's memory flat; a cleared store only means fewer collisions.
        if self.store.len() > 100_000 {
            self.store.clear();
        }
        let response = self.runtime.block_on(self.app.respond("fuzz", event));
        let status = response.status.as_u16();
        assert!(
            [201, 401, 404, 405].contains(&status),
            "unexpected status {status}"
        );
        let body: serde_json::Value =
            serde_json::from_str(&response.body).expect("every body is JSON");
        let content_type = response
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if status == 201 {
            // Never a key for nobody: a 201 needs a usable sub from a JWT authorizer.
            let sub = event
                .request_context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|j| j.claims.get("sub"))
                .expect("a 201 without a sub claim");
            assert!(!sub.trim().is_empty(), "a 201 for a blank sub");
            assert_eq!(content_type, "application/json");
            let key = body["key"].as_str().expect("a key");
            assert!(RegistrationKey::parse(key).is_some(), "malformed key");
            let stored = self.store.get(key).expect("a 201 without its item");
            assert_eq!(&stored.user_id, sub);
        } else {
            // FireFly's error shape, exactly: the console reads `body.message`.
            assert_eq!(content_type, "application/json");
            assert!(body["message"].is_string(), "an error without a message");
            assert_eq!(
                body.as_object().map(|o| o.len()),
                Some(1),
                "more than a message"
            );
        }
    }
}
