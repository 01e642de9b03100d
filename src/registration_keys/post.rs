//! `POST /registration-keys`: mint a one-time device registration key for the caller.
//!
//! The key is stored with the caller's user id and an expiry; the device-side redeem flow
//! (not in this function) looks it up, checks `expiresAt` and deletes it. The request body
//! is ignored: there is nothing for the caller to choose.

use super::key::RegistrationKey;
use super::settings::RegistrationKeySettings;
use super::store::{Inserted, KeyStore, NewKey};
use crate::clock::{Clock, rfc3339};
use crate::config::{APPCONFIG, APPCONFIG_ACTIONS, Settings};
use crate::error::{ApiError, StartupError};
use crate::identity::Caller;
use crate::init::Init;
use crate::random::SecureRandom;
use crate::response::Response;
use crate::route::{Answer, BoxFuture, Build, HandlerResult, JwtHandler, Request, Route, Use};
use crate::telemetry::{self, Unit};
use lambda_http::http::StatusCode;
use serde::Serialize;
use std::sync::Arc;

pub const ROUTE: Route = Route {
    key: "POST /registration-keys",
    function: "firefly-func-api-registration-keys-post",
    summary: "Mint a one-time device registration key for the signed-in user",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:PutItem"],
        },
        Use {
            resource: &APPCONFIG,
            actions: APPCONFIG_ACTIONS,
        },
    ],
    answers: &[
        Answer {
            status: 201,
            description: "The key, its expiry time and its lifetime in seconds",
            schema: Some(MINTED_SCHEMA),
            example: Some(
                r#"{"registrationKey":"7KQ2MX","expiresAt":"2026-11-26T22:43:11Z","expiresIn":1800}"#,
            ),
        },
        super::UNEXPECTED,
        Answer::new(
            503,
            "DynamoDB unavailable, five drawn keys taken, or minting switched off",
        ),
    ],
    scopes: &[],
    params: &[],
    build: Build::Jwt(build),
};

/// The 201 body.
const MINTED_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["registrationKey", "expiresAt", "expiresIn"],
  "additionalProperties": false,
  "properties": {
    "registrationKey": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{6}$", "description": "6 symbols of Crockford's base 32; single use"},
    "expiresAt": {"type": "string", "format": "date-time", "description": "When the key stops working (UTC)"},
    "expiresIn": {"type": "integer", "minimum": 60, "maximum": 86400, "description": "Seconds from now until expiresAt"}
  }
}"#;

/// Keys drawn before giving up with 503. With 2^30 keys a collision needs about a million
/// live keys to reach even 0.1%; five in a row means something is wrong, not unlucky.
pub const MAX_DRAWS: u32 = 5;

fn build(init: &mut Init<'_>) -> Result<Box<dyn JwtHandler>, StartupError> {
    Ok(Box::new(Mint {
        store: super::store(init)?,
        settings: init.settings()?,
        clock: init.clock(),
        random: init.random(),
    }))
}

/// The handler, with what it needs from start-up.
pub struct Mint {
    pub store: Arc<dyn KeyStore>,
    pub settings: Arc<Settings<RegistrationKeySettings>>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn SecureRandom>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Minted<'a> {
    registration_key: &'a str,
    expires_at: String,
    expires_in: u32,
}

impl JwtHandler for Mint {
    fn call<'a>(&'a self, req: Request<'a>, caller: Caller) -> BoxFuture<'a, HandlerResult> {
        Box::pin(self.mint(req, caller))
    }
}

impl Mint {
    /// 128 random bits as hex: unique per mint request, so our own item is recognisable.
    fn nonce(&self) -> Result<String, ApiError> {
        let mut bytes = [0u8; 16];
        self.random
            .fill(&mut bytes)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    async fn mint(&self, req: Request<'_>, caller: Caller) -> HandlerResult {
        let settings = self.settings.current().await;
        if !settings.enabled {
            return Err(ApiError::Disabled);
        }
        let ttl = settings.ttl_seconds;
        let nonce = self.nonce()?;
        for attempt in 1..=MAX_DRAWS {
            let key = RegistrationKey::generate(&*self.random)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let now = self.clock.now_epoch_seconds();
            let expires_at = now + i64::from(ttl);
            let item = NewKey {
                key: key.expose(),
                user_id: &caller.user_id,
                nonce: &nonce,
                created_at: now,
                expires_at,
            };
            tracing::debug!(
                attempt,
                ttl,
                "writing a drawn key unless a live one holds it"
            );
            // Each draw gets what is left of the invocation: five draws of three attempts
            // could outlast the function's timeout, and a 503 beats Lambda's bare 500.
            let inserted = req
                .before_deadline(self.store.insert_unless_live(item))
                .await??;
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
                        &Minted {
                            registration_key: key.expose(),
                            expires_at: rfc3339(expires_at),
                            expires_in: ttl,
                        },
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::random::{RandomError, SystemRandom};
    use crate::registration_keys::store::{MemoryKeyStore, Revoked, StoreError};
    use std::sync::Mutex;

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
        let mint = Mint {
            store: Arc::clone(&services.store),
            settings: Arc::new(crate::config::Settings::fixed(settings)),
            clock: Arc::new(FixedClock(1_795_731_191)),
            random: Arc::clone(&services.random),
        };
        let event = Default::default();
        let req = Request {
            request_id: "r",
            params: vec![],
            event: &event,
            deadline: None,
        };
        mint.call(
            req,
            Caller {
                user_id: user.into(),
            },
        )
        .await
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
                random: Arc::new(SystemRandom),
            };
            let e = call(&s, "u", Settings::default()).await.unwrap_err();
            assert_eq!(e.status().as_u16(), status);
        }
    }
}
