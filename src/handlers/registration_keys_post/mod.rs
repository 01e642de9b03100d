//! `POST /registration-keys`: mint a one-time device registration key for the caller.
//!
//! The key is stored with the caller's user id and an expiry; the device-side redeem flow
//! (not in this function) looks it up, checks `expiresAt` and deletes it. The request body
//! is ignored: there is nothing for the caller to choose.

pub mod key;

use super::Ctx;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::response::Response;
use crate::routing::{Auth, Route};
use crate::storage::{BoxFuture, Inserted, NewKey, StoreError};
use key::RegistrationKey;
use lambda_http::http::StatusCode;
use serde::Serialize;

pub const ROUTE: Route = Route {
    key: "POST /registration-keys",
    handler: "registration_keys_post",
    function: "firefly-func-api-registration-keys-post",
    auth: Auth::Jwt,
    iam_actions: &[
        "dynamodb:PutItem",
        "appconfig:StartConfigurationSession",
        "appconfig:GetLatestConfiguration",
    ],
    run,
};

/// Keys drawn before giving up with 503. With 2^30 keys a collision needs about a million
/// live keys to reach even 0.1%; five in a row means something is wrong, not unlucky.
pub const MAX_DRAWS: u32 = 5;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Minted<'a> {
    registration_key: &'a str,
    expires_at: String,
    expires_in: u32,
}

fn run(ctx: Ctx<'_>) -> BoxFuture<'_, Result<Response, ApiError>> {
    Box::pin(mint(ctx))
}

async fn mint(ctx: Ctx<'_>) -> Result<Response, ApiError> {
    let caller = ctx.caller()?;
    let settings = &ctx.settings.registration_keys;
    if !settings.enabled {
        return Err(ApiError::Disabled);
    }
    let ttl = settings.ttl_seconds;
    for attempt in 1..=MAX_DRAWS {
        let key = RegistrationKey::generate(&*ctx.services.random)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let now = ctx.services.clock.now_epoch_seconds();
        let expires_at = now + i64::from(ttl);
        let item = NewKey {
            key: key.expose(),
            user_id: &caller.user_id,
            created_at: now,
            expires_at,
        };
        match ctx.services.store.insert_unless_live(item).await {
            Ok(Inserted::Stored) => {
                return Ok(Response::json(
                    StatusCode::CREATED,
                    &Minted {
                        registration_key: key.expose(),
                        expires_at: rfc3339(expires_at),
                        expires_in: ttl,
                    },
                ));
            }
            Ok(Inserted::Taken) => {
                tracing::warn!(attempt, "drawn key is held by a live key; drawing another");
            }
            Err(e @ StoreError::Unavailable(_)) => {
                return Err(ApiError::unavailable(e.to_string()));
            }
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Err(ApiError::unavailable(format!(
        "{MAX_DRAWS} drawn keys in a row were held by live keys"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::Settings;
    use crate::handlers::Services;
    use crate::identity::Caller;
    use crate::random::{RandomError, SecureRandom, SystemRandom};
    use crate::storage::{KeyStore, MemoryKeyStore};
    use std::sync::{Arc, Mutex};

    struct Script(Mutex<Vec<u8>>);

    impl Script {
        fn keys(keys: &[&str]) -> Self {
            Self(Mutex::new(
                keys.iter()
                    .flat_map(|k| RegistrationKey::parse(k).unwrap().to_random_bytes())
                    .collect(),
            ))
        }
    }

    impl SecureRandom for Script {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            let mut s = self.0.lock().unwrap();
            if s.len() < buf.len() {
                return Err(RandomError("script exhausted".into()));
            }
            let n = buf.len();
            for (b, v) in buf.iter_mut().zip(s.drain(..n)) {
                *b = v;
            }
            Ok(())
        }
    }

    fn services(store: Arc<MemoryKeyStore>, random: Arc<dyn SecureRandom>) -> Services {
        Services {
            store,
            clock: Arc::new(FixedClock(1_795_731_191)),
            random,
        }
    }

    async fn call(
        services: &Services,
        caller: Option<&str>,
        settings: Settings,
    ) -> Result<Response, ApiError> {
        let event = Default::default();
        let ctx = Ctx {
            request_id: "r",
            caller: caller.map(|u| Caller { user_id: u.into() }),
            settings: Arc::new(settings),
            services,
            params: vec![],
            event: &event,
        };
        (ROUTE.run)(ctx).await
    }

    #[tokio::test]
    async fn mints_stores_and_answers_201() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(SystemRandom));
        let r = call(&s, Some("user-1"), Settings::default()).await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["cache-control"], "no-store");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let key = body["registrationKey"].as_str().unwrap();
        assert!(RegistrationKey::parse(key).is_some(), "{key}");
        assert_eq!(body["expiresAt"], "2026-11-26T22:43:11Z");
        assert_eq!(body["expiresIn"], 1800);
        assert_eq!(body.as_object().unwrap().len(), 3);
        let stored = store.get(key).unwrap();
        assert_eq!(stored.user_id, "user-1");
        assert_eq!(stored.created_at, 1_795_731_191);
        assert_eq!(stored.expires_at, 1_795_731_191 + 1800);
    }

    #[tokio::test]
    async fn collisions_draw_again_and_exhaustion_is_503() {
        let store = Arc::new(MemoryKeyStore::new());
        let taken = Script::keys(&["AAAAAA", "BBBBBB"]);
        let s = services(store.clone(), Arc::new(taken));
        call(&s, Some("first"), Settings::default()).await.unwrap();
        call(&s, Some("first"), Settings::default()).await.unwrap();

        let s = services(
            store.clone(),
            Arc::new(Script::keys(&["AAAAAA", "BBBBBB", "CCCCCC"])),
        );
        let r = call(&s, Some("second"), Settings::default()).await.unwrap();
        assert!(r.body.contains("CCCCCC"), "{}", r.body);
        assert_eq!(store.get("AAAAAA").unwrap().user_id, "first");

        let all_taken = ["AAAAAA"; MAX_DRAWS as usize];
        let s = services(store.clone(), Arc::new(Script::keys(&all_taken)));
        let err = call(&s, Some("third"), Settings::default())
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn no_caller_is_401_and_nothing_is_stored() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(SystemRandom));
        let err = call(&s, None, Settings::default()).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn disabled_by_config_is_503_and_ttl_comes_from_config() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(SystemRandom));
        let mut settings = Settings::default();
        settings.registration_keys.enabled = false;
        let err = call(&s, Some("u"), settings.clone()).await.unwrap_err();
        assert!(matches!(err, ApiError::Disabled));
        assert!(store.is_empty());

        settings.registration_keys.enabled = true;
        settings.registration_keys.ttl_seconds = 60;
        let r = call(&s, Some("u"), settings).await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["expiresIn"], 60);
        let stored = store
            .get(body["registrationKey"].as_str().unwrap())
            .unwrap();
        assert_eq!(stored.expires_at - stored.created_at, 60);
    }

    #[tokio::test]
    async fn random_failure_is_500_not_a_panic() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(Script::keys(&[])));
        let err = call(&s, Some("u"), Settings::default()).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    struct Failing(StoreError);

    impl KeyStore for Failing {
        fn insert_unless_live<'a>(
            &'a self,
            _: NewKey<'a>,
        ) -> BoxFuture<'a, Result<Inserted, StoreError>> {
            Box::pin(std::future::ready(Err(self.0.clone())))
        }
    }

    #[tokio::test]
    async fn store_failures_map_to_503_or_500() {
        for (err, status) in [
            (StoreError::Unavailable("throttled".into()), 503),
            (StoreError::TableMissing("t".into()), 500),
            (StoreError::Other("x".into()), 500),
        ] {
            let s = Services {
                store: Arc::new(Failing(err)),
                clock: Arc::new(FixedClock(0)),
                random: Arc::new(SystemRandom),
            };
            let e = call(&s, Some("u"), Settings::default()).await.unwrap_err();
            assert_eq!(e.status().as_u16(), status);
        }
    }
}
