//! `GET /users`: FireFly's `func-api-users-get`, the console's Users page: every user of
//! the pool and every live invitation of someone not yet in it, by email.
//!
//! The pool's users, its super users and the invitations are read at once (FireFly read
//! them one after another), each to its last page.

use super::store::expired;
use super::{Users, python_datetime};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub const ROUTE: Route = Route {
    key: "GET /users",
    function: "firefly-func-api-users-get",
    summary: "List the pool's users and the live invitations, by email (super users only)",
    uses: &[
        Use {
            resource: &super::POOL,
            actions: &["cognito-idp:ListUsers", "cognito-idp:ListUsersInGroup"],
            objects: &[],
        },
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
            description: "Every user and live invitation, by email",
            schema: Some(
                r#"{"title": "UserListResponse", "type": "object", "required": ["users"], "properties": {"users": {"type": "array", "items": {"type": "object", "required": ["email", "is_super", "status"], "properties": {"email": {"type": "string"}, "name": {"type": ["string", "null"]}, "is_super": {"type": "boolean"}, "status": {"type": ["string", "null"]}, "created": {"type": ["string", "null"]}, "invited_by": {"type": ["string", "null"]}}}}}}"#,
            ),
            example: Some(
                r#"{"users":[{"email":"ann@example.com","name":"Ann","is_super":true,"status":"EXTERNAL_PROVIDER","created":"2026-01-01 12:00:00.123000+00:00","invited_by":null},{"email":"bob@example.com","is_super":false,"status":"INVITED","created":"2026-05-24T15:32:51.123456+00:00","invited_by":"ann@example.com"}]}"#,
            ),
        },
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(list, Users::build),
};

/// The handler.
pub async fn list(users: Users, deadline: Deadline, _: SuperUser) -> HandlerResult {
    let now = users.invitations.clock.now_epoch_seconds();
    let (supers, invitations, people) = deadline
        .run(async {
            tokio::join!(
                users.pool.super_emails(),
                users.invitations.store.all(),
                users.pool.directory.people()
            )
        })
        .await?;
    let (supers, invitations, people) = (supers?, invitations?, people?);
    let text = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
    let mut invited: BTreeMap<String, _> = invitations
        .into_iter()
        .filter(|i| !expired(i, now))
        .filter_map(|i| {
            let email = i.get("email")?.as_str()?.to_lowercase();
            (!email.is_empty()).then_some((email, i))
        })
        .collect();
    let mut listed: Vec<Value> = Vec::new();
    let mut in_pool = std::collections::BTreeSet::new();
    for p in people.into_iter().filter(|p| !p.email.is_empty()) {
        let invitation = invited.get(&p.email);
        listed.push(json!({
            "email": p.email,
            "name": p.name,
            "is_super": supers.binary_search(&p.email).is_ok(),
            "status": p.status,
            "created": p.created_micros.map(python_datetime),
            "invited_by": text(invitation.and_then(|i| i.get("invited_by"))),
        }));
        in_pool.insert(p.email);
    }
    invited.retain(|email, _| !in_pool.contains(email));
    for (email, i) in invited {
        listed.push(json!({
            "email": email,
            "is_super": false,
            "status": "INVITED",
            "created": text(i.get("created_at")),
            "invited_by": text(i.get("invited_by")),
        }));
    }
    // Stable: users of one email stay in the pool's order, as Python's sort keeps them.
    listed.sort_by(|a, b| a["email"].as_str().cmp(&b["email"].as_str()));
    Ok(Response::json(StatusCode::OK, &json!({ "users": listed })))
}
