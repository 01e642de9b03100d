//! `POST /users`: FireFly's `func-api-users-post`, the console's Invite: an invitation in
//! `firefly-users` that lets its person sign up for 24 hours ([`super::presignup`]).
//!
//! Better than FireFly's: an expired invitation is replaced at once (FireFly's 409 lasted
//! until DynamoDB's TTL sweep, while its pre-sign-up told the person to get re-invited); a
//! body or an email of the wrong JSON type is a 400, not a 500; no email is logged at INFO.

use super::{Claims, INVALID_EMAIL, Object, Users, valid_email};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Map, Value, json};

/// How long an invitation admits its person (FireFly's `INVITE_TTL_HOURS`).
pub const INVITATION_SECONDS: i64 = 24 * 3600;

pub const ROUTE: Route = Route {
    key: "POST /users",
    function: "firefly-func-api-users-post",
    summary: "Invite someone: they may sign up for 24 hours (super users only)",
    uses: &[
        Use {
            resource: &super::POOL,
            actions: &["cognito-idp:AdminGetUser"],
            objects: &[],
        },
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
            description: "Invited",
            schema: Some(
                r#"{"title": "Invited", "type": "object", "required": ["email"], "properties": {"email": {"type": "string"}}}"#,
            ),
            example: Some(r#"{"email":"bob@example.com"}"#),
        },
        Answer::new(
            400,
            "Invalid JSON body (or not an object); email is required; email is not a valid email address",
        ),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        Answer::new(
            409,
            "User '<email>' is already in the allowed list (a live invitation)",
        ),
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: Some(
        r#"{"type": "object", "required": ["email"], "properties": {"email": {"type": "string", "format": "email"}}}"#,
    ),
    endpoint: crate::endpoint!(invite, Users::build),
};

/// The handler.
pub async fn invite(
    users: Users,
    deadline: Deadline,
    SuperUser(caller): SuperUser,
    claims: Claims,
    Object(body): Object,
) -> HandlerResult {
    let email = match body.get("email") {
        None | Some(Value::Null) => "".to_owned(),
        Some(Value::String(s)) => s.trim().to_lowercase(),
        Some(_) => {
            return Err(ApiError::BadRequest {
                message: INVALID_EMAIL,
            });
        }
    };
    if email.is_empty() {
        return Err(ApiError::BadRequest {
            message: "email is required",
        });
    }
    if !valid_email(&email) {
        return Err(ApiError::BadRequest {
            message: INVALID_EMAIL,
        });
    }
    let invited_by = deadline.run(inviter(&users, claims)).await?;
    let clock = &users.invitations.clock;
    let now = clock.now_epoch_seconds();
    let mut invitation = Map::new();
    invitation.insert("email".into(), json!(email));
    invitation.insert("invited_by".into(), json!(invited_by));
    invitation.insert(
        "created_at".into(),
        json!(crate::clock::iso8601_micros(clock.now_epoch_micros())),
    );
    invitation.insert("expires_at".into(), json!(now + INVITATION_SECONDS));
    let written = deadline
        .run(users.invitations.store.invite(invitation, now))
        .await??;
    if !written {
        return Ok(Response::message(
            StatusCode::CONFLICT,
            &format!("User '{email}' is already in the allowed list"),
        ));
    }
    tracing::info!(by = %caller.user_id, "user invited");
    tracing::debug!(email, "the invited address");
    Ok(Response::json(
        StatusCode::CREATED,
        &json!({ "email": email }),
    ))
}

/// Who invites, as FireFly records it: the `email` claim; else the email of the user the
/// `username` claim names (access tokens of Google users carry no email); else that
/// username; else `""`.
async fn inviter(users: &Users, claims: Claims) -> String {
    if !claims.email.is_empty() {
        return claims.email;
    }
    if claims.username.is_empty() {
        return String::new();
    }
    match users.pool.directory.email_of(claims.username.clone()).await {
        Ok(Some(email)) => email,
        Ok(None) => claims.username,
        Err(e) => {
            tracing::warn!(error = %e, "the inviter's email could not be read: their username is recorded");
            claims.username
        }
    }
}
