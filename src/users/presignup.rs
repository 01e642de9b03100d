//! `firefly-func-cognito-pre-signup`: the user pool's pre-sign-up trigger, as FireFly's
//! admits people. A user an administrator created is confirmed at once; anyone else signs
//! up only with a live invitation in `firefly-users`, and is otherwise refused with
//! FireFly's three messages, which Cognito shows them.
//!
//! Better than FireFly's: no email is logged (FireFly logged each at INFO and WARNING); the
//! invitation is read consistently (one made a moment ago admits); a failing table is a
//! refusal that says to try again, never a stack trace; an `expires_at` that is not a
//! number refuses (FireFly's `int()` raised); and the answer comes within Cognito's 5 s
//! (the read is cut off before it, with the same refusal).

use super::Invitations;
use crate::cognito_event::{Event, Refused, TriggerResult};
use crate::deploy::{CognitoTrigger, READS_APPCONFIG, Use};
use crate::handler::Deadline;
use crate::route::Route;
use serde_json::Value;

const FUNCTION: &str = "firefly-func-cognito-pre-signup";

/// FireFly's messages, as Cognito shows them.
pub const NO_EMAIL: &str = "Sign-in is not permitted: no email address was provided.";
pub const NOT_INVITED: &str = "Sign-in is not permitted: this account has not been granted access.";
pub const EXPIRED: &str = "Sign-in is not permitted: this invitation has expired. Please ask a super user to re-invite you.";

/// A user an administrator creates (FireFly's first super user, its CI's test user).
const ADMIN_CREATED: &str = "PreSignUp_AdminCreateUser";

/// The pool's pre-sign-up trigger.
pub const TRIGGER: CognitoTrigger = CognitoTrigger {
    pool: &super::POOL,
    config: "PreSignUp",
    limit_ms: 5_000,
};

pub const ROUTE: Route = Route {
    key: "Cognito PreSignUp",
    function: FUNCTION,
    summary: "Admits to the user pool only people with a live invitation (and users an administrator creates)",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:GetItem"],
            objects: &[],
        },
        // Nothing is called on the pool: it is here for its trigger's permission.
        Use {
            resource: &super::POOL,
            actions: &[],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::cognito_endpoint!(pre_signup, Invitations::build, TRIGGER),
};

/// The handler.
pub async fn pre_signup(
    invitations: Invitations,
    deadline: Deadline,
    Event(mut event): Event,
) -> TriggerResult {
    let source = event
        .get("triggerSource")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if source == ADMIN_CREATED {
        if !event.get("response").is_some_and(Value::is_object) {
            event["response"] = Value::Object(serde_json::Map::new());
        }
        event["response"]["autoConfirmUser"] = Value::Bool(true);
        return Ok(event);
    }
    let email = event
        .pointer("/request/userAttributes/email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase()
        .trim()
        .to_owned();
    if email.is_empty() {
        return Err(Refused::new(NO_EMAIL));
    }
    let Some(invitation) = deadline.within(invitations.store.get(email)).await?? else {
        return Err(Refused::new(NOT_INVITED));
    };
    let now = invitations.clock.now_epoch_seconds();
    let expires_at = invitation.get("expires_at");
    let expired = match expires_at {
        None | Some(Value::Null) => false,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(at) => at < now,
            None => {
                tracing::warn!(
                    trigger_source = source,
                    "an invitation whose expires_at is not a number: refused as expired"
                );
                true
            }
        },
    };
    if expired {
        return Err(Refused::new(EXPIRED));
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::store::MemoryInvitations;
    use serde_json::json;
    use std::sync::Arc;

    const NOW: i64 = 1_765_000_000;

    fn world() -> (Invitations, Arc<MemoryInvitations>) {
        let store = Arc::new(MemoryInvitations::default());
        (
            Invitations {
                store: store.clone(),
                clock: Arc::new(crate::clock::FixedClock(NOW)),
            },
            store,
        )
    }

    fn event(source: &str, email: Option<&str>) -> Value {
        let mut attributes = json!({"sub": "f1e2"});
        if let Some(e) = email {
            attributes["email"] = e.into();
        }
        json!({
            "version": "1", "region": "eu-west-1", "userPoolId": "eu-west-1_AbCdEfGhI",
            "userName": "Google_1234", "triggerSource": source,
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "3n4b5urk1ft4fl3mg5e62d9ado"},
            "request": {"userAttributes": attributes, "validationData": null},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        })
    }

    fn invite(store: &MemoryInvitations, email: &str, expires_at: Value) {
        let Value::Object(item) = json!({"email": email, "invited_by": "ida@example.com",
            "created_at": "2026-12-07T00:00:00+00:00", "expires_at": expires_at})
        else {
            unreachable!()
        };
        store.insert(item);
    }

    async fn run(i: &Invitations, e: Value) -> TriggerResult {
        pre_signup(i.clone(), Deadline(None), Event(e)).await
    }

    #[tokio::test]
    async fn an_administrators_user_is_confirmed_and_an_invited_one_admitted_unchanged() {
        let (i, store) = world();
        let admitted = run(&i, event(ADMIN_CREATED, None)).await.unwrap();
        assert_eq!(admitted["response"]["autoConfirmUser"], true);
        invite(&store, "ada@example.com", json!(NOW + 3600));
        let e = event("PreSignUp_ExternalProvider", Some("  Ada@Example.COM "));
        assert_eq!(run(&i, e.clone()).await.unwrap(), e, "returned as it came");
        // No expiry at all: admitted, as FireFly admits it.
        invite(&store, "bob@example.com", Value::Null);
        assert!(
            run(&i, event("PreSignUp_SignUp", Some("bob@example.com")))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn everyone_else_is_refused_with_fireflys_three_messages() {
        let (i, store) = world();
        let refused = |r: TriggerResult| r.unwrap_err().message;
        assert_eq!(
            refused(run(&i, event("PreSignUp_SignUp", None)).await),
            NO_EMAIL
        );
        assert_eq!(
            refused(run(&i, event("PreSignUp_SignUp", Some("  "))).await),
            NO_EMAIL
        );
        assert_eq!(
            refused(
                run(
                    &i,
                    event("PreSignUp_ExternalProvider", Some("eve@example.com"))
                )
                .await
            ),
            NOT_INVITED
        );
        invite(&store, "old@example.com", json!(NOW - 1));
        assert_eq!(
            refused(
                run(
                    &i,
                    event("PreSignUp_ExternalProvider", Some("old@example.com"))
                )
                .await
            ),
            EXPIRED
        );
        // An expiry that is not a number (FireFly's int() raised): refused, not admitted.
        invite(&store, "odd@example.com", json!("soon"));
        assert_eq!(
            refused(
                run(
                    &i,
                    event("PreSignUp_ExternalProvider", Some("odd@example.com"))
                )
                .await
            ),
            EXPIRED
        );
        invite(&store, "str@example.com", json!((NOW + 60).to_string()));
        assert!(
            run(
                &i,
                event("PreSignUp_ExternalProvider", Some("str@example.com"))
            )
            .await
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_read_past_cognitos_limit_is_a_refusal_that_says_to_try_again() {
        let (i, _) = world();
        let past = Deadline(Some(
            std::time::SystemTime::now() - std::time::Duration::from_secs(1),
        ));
        let r = pre_signup(
            i,
            past,
            Event(event("PreSignUp_SignUp", Some("a@example.com"))),
        )
        .await;
        assert_eq!(r.unwrap_err().message, crate::cognito_event::UNAVAILABLE);
    }
}
