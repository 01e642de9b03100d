//! `DELETE /registration-keys/{registrationKey}`: the signed-in user revokes one of their
//! own live keys, so that a key minted by mistake or seen by someone else stops working
//! before it expires.
//!
//! A key that does not exist, has expired or is someone else's gets the same 404: the
//! answer tells a caller nothing about other users' keys.

use super::Keys;
use super::key::RegistrationKey;
use super::store::Revoked;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult, Path, PathParam};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use crate::telemetry::{self, Unit};
use lambda_http::http::StatusCode;

pub const ROUTE: Route = Route {
    key: "DELETE /registration-keys/{registrationKey}",
    function: "firefly-func-api-registration-keys-delete",
    summary: "Revoke one of the signed-in user's live registration keys",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:DeleteItem"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer::new(204, "The key is revoked"),
        Answer::new(400, "The path does not hold 6 characters of A-Z and 0-9"),
        Answer::new(404, "No live key of the caller has this value"),
        super::UNEXPECTED,
        Answer::new(
            503,
            "DynamoDB unavailable, or registration keys switched off",
        ),
    ],
    scopes: &[],
    params: &[Param {
        name: KeyParam::NAME,
        description: "The key to revoke, in any case (`7kq2mx` is `7KQ2MX`)",
        schema: r#"{"type": "string", "pattern": "^[0-9A-Za-z]{6}$"}"#,
    }],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(revoke, Keys::build),
};

/// The key in the path. Users type keys off a screen: lower case is accepted, nothing else
/// non-canonical; the value is never echoed.
pub struct KeyParam(RegistrationKey);

impl PathParam for KeyParam {
    const NAME: &'static str = "registrationKey";

    fn parse(text: &str) -> Result<Self, ApiError> {
        RegistrationKey::parse(&text.to_ascii_uppercase())
            .map(KeyParam)
            .ok_or(ApiError::BadRequest {
                message: "registration key must be 6 characters of 0-9 and A-Z",
            })
    }
}

/// The handler: one conditional delete of the caller's live key.
pub async fn revoke(
    keys: Keys,
    deadline: Deadline,
    caller: Caller,
    Path(KeyParam(key)): Path<KeyParam>,
) -> HandlerResult {
    // The same switch as minting: with the feature off, neither half of it runs.
    if !keys.settings.current().await.enabled {
        return Err(ApiError::Disabled);
    }
    let now = keys.clock.now_epoch_seconds();
    let revoked = deadline
        .run(keys.store.revoke(key.expose(), &caller.user_id, now))
        .await??;
    match revoked {
        Revoked::Deleted => {
            telemetry::metric("KeysRevoked", Unit::Count, 1.0);
            Ok(Response::empty(StatusCode::NO_CONTENT))
        }
        Revoked::NotLive => Err(ApiError::ResourceNotFound {
            message: "Registration key not found",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::Settings;
    use crate::random::SystemRandom;
    use crate::registration_keys::settings::RegistrationKeySettings;
    use crate::registration_keys::store::{KeyStore, MemoryKeyStore, NewKey};
    use std::sync::Arc;

    const NOW: i64 = 1_795_731_191;

    async fn seeded() -> Arc<MemoryKeyStore> {
        let store = Arc::new(MemoryKeyStore::new());
        for (key, user, expires_at) in [("7KQ2MX", "u1", NOW + 60), ("AAAAAA", "u1", NOW - 1)] {
            store
                .insert_unless_live(NewKey {
                    key,
                    user_id: user,
                    email: "",
                    nonce: "n",
                    created_at: NOW - 100,
                    expires_at,
                })
                .await
                .unwrap();
        }
        store
    }

    async fn call(store: &Arc<MemoryKeyStore>, user: &str, key: &str, on: bool) -> HandlerResult {
        let keys = Keys {
            store: Arc::clone(store) as Arc<dyn KeyStore>,
            settings: Arc::new(Settings::fixed(RegistrationKeySettings {
                enabled: on,
                ..Default::default()
            })),
            clock: Arc::new(FixedClock(NOW)),
            random: Arc::new(SystemRandom),
        };
        let caller = Caller {
            user_id: user.into(),
            email: String::new(),
        };
        revoke(keys, Deadline(None), caller, Path(KeyParam::parse(key)?)).await
    }

    #[tokio::test]
    async fn the_owner_revokes_a_live_key_once_case_insensitively() {
        let store = seeded().await;
        let r = call(&store, "u1", "7kq2Mx", true).await.unwrap();
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["cache-control"], "no-store");
        assert!(r.body.is_empty());
        assert!(store.get("7KQ2MX").is_none());
        let again = call(&store, "u1", "7KQ2MX", true).await.unwrap_err();
        assert_eq!(again.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn others_keys_expired_keys_and_unknown_keys_are_the_same_404() {
        let store = seeded().await;
        let mut bodies = Vec::new();
        for (user, key) in [("u2", "7KQ2MX"), ("u1", "AAAAAA"), ("u1", "ZZZZZZ")] {
            let e = call(&store, user, key, true).await.unwrap_err();
            assert_eq!(e.status(), StatusCode::NOT_FOUND, "{user} {key}");
            bodies.push(e.into_response().body);
        }
        assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
        assert_eq!(store.len(), 2, "nothing was deleted");
    }

    #[tokio::test]
    async fn malformed_keys_are_400_and_never_echoed() {
        let store = seeded().await;
        for bad in ["", "7KQ2M", "7KQ2MXX", "7KQ2M\u{e9}", "%37KQ2MX", "7KQ 2M"] {
            let e = call(&store, "u1", bad, true).await.unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad:?}");
            let body = e.into_response().body;
            assert!(bad.is_empty() || !body.contains(bad), "{body}");
        }
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn switched_off_is_503_and_nothing_is_deleted() {
        let store = seeded().await;
        let e = call(&store, "u1", "7KQ2MX", false).await.unwrap_err();
        assert!(matches!(e, ApiError::Disabled));
        assert!(store.get("7KQ2MX").is_some());
    }
}
