//! `GET /registration-keys`: the signed-in user's live keys, oldest first, as FireFly's
//! console lists them (`data.registration_keys[].key/generated_at/expires_at`).
//!
//! Unlike FireFly's function, every page of the Scan is read (one page stops at 1 MB, past
//! which keys silently went missing), within the invocation's deadline.

use super::Keys;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde::Serialize;

pub const ROUTE: Route = Route {
    key: "GET /registration-keys",
    function: "firefly-func-api-registration-keys-get",
    summary: "List the signed-in user's live registration keys",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Scan"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "The caller's live keys, by generated_at ascending",
            schema: Some(LIST_SCHEMA),
            example: Some(
                r#"{"registration_keys":[{"key":"7KQ2MX","generated_at":1795731191,"expires_at":1795732991}]}"#,
            ),
        },
        super::UNEXPECTED,
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(list, Keys::build),
};

const LIST_SCHEMA: &str = r#"{
  "title": "RegistrationKeyListResponse",
  "type": "object",
  "required": ["registration_keys"],
  "additionalProperties": false,
  "properties": {
    "registration_keys": {
      "type": "array",
      "items": {
        "title": "RegistrationKeyRecord",
        "type": "object",
        "required": ["key", "generated_at", "expires_at"],
        "additionalProperties": false,
        "properties": {
          "key": {"type": "string", "pattern": "^[A-Z0-9]{6}$"},
          "generated_at": {"type": "integer", "description": "Epoch seconds"},
          "expires_at": {"type": "integer", "description": "Epoch seconds (the item's ttl)"}
        }
      }
    }
  }
}"#;

#[derive(Serialize)]
struct Listed<'a> {
    key: &'a str,
    generated_at: i64,
    expires_at: i64,
}

#[derive(Serialize)]
struct Body<'a> {
    registration_keys: Vec<Listed<'a>>,
}

/// The handler. Listing is not switched off with minting: a user can still see (and
/// revoke) the keys they hold.
pub async fn list(keys: Keys, deadline: Deadline, caller: Caller) -> HandlerResult {
    let now = keys.clock.now_epoch_seconds();
    let mut live = deadline
        .run(keys.store.list_live(&caller.user_id, now))
        .await??;
    live.sort_by(|a, b| (a.generated_at, &a.key).cmp(&(b.generated_at, &b.key)));
    let body = Body {
        registration_keys: live
            .iter()
            .map(|k| Listed {
                key: &k.key,
                generated_at: k.generated_at,
                expires_at: k.expires_at,
            })
            .collect(),
    };
    Ok(Response::json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::Settings;
    use crate::random::SystemRandom;
    use crate::registration_keys::store::{KeyStore, MemoryKeyStore, NewKey};
    use std::sync::Arc;

    #[tokio::test]
    async fn lists_the_callers_live_keys_oldest_first_in_firefly_shape() {
        let store = Arc::new(MemoryKeyStore::new());
        for (key, user, at) in [
            ("BBBBBB", "u1", 2000),
            ("AAAAAA", "u1", 1000),
            ("CCCCCC", "u2", 1000),
            ("DDDDDD", "u1", -5000),
        ] {
            let item = NewKey {
                key,
                user_id: user,
                email: "",
                nonce: "n",
                created_at: at,
                expires_at: at + 1800,
            };
            store.insert_unless_live(item).await.unwrap();
        }
        let keys = Keys {
            store: store.clone(),
            settings: Arc::new(Settings::fixed(Default::default())),
            clock: Arc::new(FixedClock(2500)),
            random: Arc::new(SystemRandom),
        };
        let caller = Caller {
            user_id: "u1".into(),
            email: String::new(),
        };
        let r = list(keys, Deadline(None), caller).await.unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"registration_keys": [
                {"key": "AAAAAA", "generated_at": 1000, "expires_at": 2800},
                {"key": "BBBBBB", "generated_at": 2000, "expires_at": 3800},
            ]})
        );
    }
}
