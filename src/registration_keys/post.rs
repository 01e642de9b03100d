//! `POST /registration-keys`: mint a one-time device registration key for the caller.
//!
//! The key is stored as FireFly's function stores it (`key`, `ttl`, `generated_at`,
//! `generated_by_sub`, `generated_by_email`), but never over a live key: FireFly's
//! unconditional write could hand another user's live key to a new owner. The request body
//! is ignored: there is nothing for the caller to choose.

use super::Keys;
use super::key::RegistrationKey;
use super::store::{Inserted, NewKey};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Route};
use crate::telemetry::{self, Unit};
use lambda_http::http::StatusCode;
use serde::Serialize;

pub const ROUTE: Route = Route {
    key: "POST /registration-keys",
    function: "firefly-func-api-registration-keys-post",
    summary: "Mint a one-time device registration key for the signed-in user",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:PutItem"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 201,
            description: "The key (single use, valid for 30 minutes)",
            schema: Some(MINTED_SCHEMA),
            example: Some(r#"{"key":"7KQ2MX"}"#),
        },
        super::UNEXPECTED,
        Answer::new(
            503,
            "DynamoDB unavailable, five drawn keys taken, or minting switched off",
        ),
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(mint, Keys::build),
};

/// The 201 body, as FireFly's console reads it (`data.key`).
const MINTED_SCHEMA: &str = r#"{
  "title": "RegistrationKeyCreateResponse",
  "type": "object",
  "required": ["key"],
  "additionalProperties": false,
  "properties": {
    "key": {"type": "string", "pattern": "^[A-Z0-9]{6}$", "description": "6 characters of A-Z and 0-9 (this implementation draws from Crockford's base 32, without I, L, O and U); single use"}
  }
}"#;

/// Keys drawn before giving up with 503. With 2^30 keys a collision needs about a million
/// live keys to reach even 0.1%; five in a row means something is wrong, not unlucky.
pub const MAX_DRAWS: u32 = 5;

#[derive(Serialize)]
struct Minted<'a> {
    key: &'a str,
}

/// 128 random bits as hex: unique per mint request, so our own item is recognisable.
fn nonce(keys: &Keys) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    keys.random
        .fill(&mut bytes)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The handler: draw a key, write it unless a live key holds it, answer it.
pub async fn mint(keys: Keys, deadline: Deadline, caller: Caller) -> HandlerResult {
    let settings = keys.settings.current().await;
    if !settings.enabled {
        return Err(ApiError::Disabled);
    }
    let ttl = settings.ttl_seconds;
    let nonce = nonce(&keys)?;
    for attempt in 1..=MAX_DRAWS {
        let key = RegistrationKey::generate(&*keys.random)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let now = keys.clock.now_epoch_seconds();
        let item = NewKey {
            key: key.expose(),
            user_id: &caller.user_id,
            email: &caller.email,
            nonce: &nonce,
            created_at: now,
            expires_at: now + i64::from(ttl),
        };
        tracing::debug!(
            attempt,
            ttl,
            "writing a drawn key unless a live one holds it"
        );
        // Each draw gets what is left of the invocation: five draws of three attempts
        // could outlast the function's timeout, and a 503 beats Lambda's bare 500.
        let inserted = deadline.run(keys.store.insert_unless_live(item)).await??;
        if inserted == Inserted::AlreadyOurs {
            tracing::info!(
                attempt,
                "an earlier attempt of this write went through and its answer was lost; the stored key is ours"
            );
        }
        match inserted {
            Inserted::Stored | Inserted::AlreadyOurs => {
                telemetry::metric("KeysMinted", Unit::Count, 1.0);
                return Ok(Response::json(
                    StatusCode::CREATED,
                    &Minted { key: key.expose() },
                ));
            }
            Inserted::Taken => {
                telemetry::metric("CollisionsRedrawn", Unit::Count, 1.0);
                tracing::warn!(attempt, "drawn key is held by a live key; drawing another");
            }
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
    use crate::handler::BoxFuture;
    use crate::random::{RandomError, SecureRandom, SystemRandom};
    use crate::registration_keys::settings::RegistrationKeySettings;
    use crate::registration_keys::store::{
        KeyStore, ListedKey, MemoryKeyStore, Revoked, StoreError,
    };
    use std::sync::{Arc, Mutex};

    type Settings = RegistrationKeySettings;

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

    /// Scripts the keys drawn; other draws (the nonce) come from the real CSPRNG, unless
    /// the script is empty, which fails every draw.
    impl SecureRandom for Script {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            let mut s = self.0.lock().unwrap();
            if buf.len() != crate::registration_keys::key::KEY_LEN && !s.is_empty() {
                return SystemRandom.fill(buf);
            }
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

    struct Services {
        store: Arc<dyn KeyStore>,
        random: Arc<dyn SecureRandom>,
    }

    fn services(store: Arc<MemoryKeyStore>, random: Arc<dyn SecureRandom>) -> Services {
        Services { store, random }
    }

    async fn call(services: &Services, user: &str, settings: Settings) -> HandlerResult {
        let keys = Keys {
            store: Arc::clone(&services.store),
            settings: Arc::new(crate::config::Settings::fixed(settings)),
            clock: Arc::new(FixedClock(1_795_731_191)),
            random: Arc::clone(&services.random),
        };
        let caller = Caller {
            user_id: user.into(),
            email: format!("{user}@example.com"),
        };
        mint(keys, Deadline(None), caller).await
    }

    #[tokio::test]
    async fn mints_stores_and_answers_201() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(SystemRandom));
        let r = call(&s, "user-1", Settings::default()).await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["cache-control"], "no-store");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let key = body["key"].as_str().unwrap();
        assert!(RegistrationKey::parse(key).is_some(), "{key}");
        assert_eq!(body.as_object().unwrap().len(), 1);
        let stored = store.get(key).unwrap();
        assert_eq!(stored.user_id, "user-1");
        assert_eq!(stored.email, "user-1@example.com");
        assert_eq!(stored.created_at, 1_795_731_191);
        assert_eq!(stored.expires_at, 1_795_731_191 + 1800);
    }

    #[tokio::test]
    async fn collisions_draw_again_and_exhaustion_is_503() {
        let store = Arc::new(MemoryKeyStore::new());
        let taken = Script::keys(&["AAAAAA", "BBBBBB"]);
        let s = services(store.clone(), Arc::new(taken));
        call(&s, "first", Settings::default()).await.unwrap();
        call(&s, "first", Settings::default()).await.unwrap();

        let s = services(
            store.clone(),
            Arc::new(Script::keys(&["AAAAAA", "BBBBBB", "CCCCCC"])),
        );
        let r = call(&s, "second", Settings::default()).await.unwrap();
        assert!(r.body.contains("CCCCCC"), "{}", r.body);
        assert_eq!(store.get("AAAAAA").unwrap().user_id, "first");

        let all_taken = ["AAAAAA"; MAX_DRAWS as usize];
        let s = services(store.clone(), Arc::new(Script::keys(&all_taken)));
        let err = call(&s, "third", Settings::default()).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(store.len(), 3);
    }

    #[tokio::test]
    async fn disabled_by_config_is_503_and_ttl_comes_from_config() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(SystemRandom));
        let off = Settings {
            enabled: false,
            ..Default::default()
        };
        let err = call(&s, "u", off).await.unwrap_err();
        assert!(matches!(err, ApiError::Disabled));
        assert!(store.is_empty());

        let short = Settings {
            enabled: true,
            ttl_seconds: 60,
        };
        let r = call(&s, "u", short).await.unwrap();
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        let stored = store.get(body["key"].as_str().unwrap()).unwrap();
        assert_eq!(stored.expires_at - stored.created_at, 60);
    }

    #[tokio::test]
    async fn random_failure_is_500_not_a_panic() {
        let store = Arc::new(MemoryKeyStore::new());
        let s = services(store.clone(), Arc::new(Script::keys(&[])));
        let err = call(&s, "u", Settings::default()).await.unwrap_err();
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

        fn revoke<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<Revoked, StoreError>> {
            Box::pin(std::future::ready(Err(self.0.clone())))
        }

        fn list_live<'a>(
            &'a self,
            _: &'a str,
            _: i64,
        ) -> BoxFuture<'a, Result<Vec<ListedKey>, StoreError>> {
            Box::pin(std::future::ready(Err(self.0.clone())))
        }
    }

    #[tokio::test]
    async fn store_failures_map_to_503_or_500() {
        for (err, status) in [
            (StoreError::Unavailable("throttled".into()), 503),
            (
                StoreError::TableMissing {
                    table: "t".into(),
                    workflow: "w",
                },
                500,
            ),
            (StoreError::Other("x".into()), 500),
        ] {
            let s = Services {
                store: Arc::new(Failing(err)),
                random: Arc::new(SystemRandom),
            };
            let e = call(&s, "u", Settings::default()).await.unwrap_err();
            assert_eq!(e.status().as_u16(), status);
        }
    }
}
