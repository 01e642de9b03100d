//! `PATCH /users/{email}`: FireFly's `func-api-users-patch`, the console's super-user
//! switch: `{"is_super": bool}` puts the user in `super_users` or takes them out.
//!
//! Better than FireFly's: the path's email is checked and the filter's value escaped (a
//! `"` was a 500 there, or another user); "never the last super user" holds when two
//! demotions run at once ([`Pool::demote`] looks again after the change and undoes it); a
//! demoted user is signed out (their refresh token stops working; an access token already
//! issued keeps its groups until it expires: docs/security.md); every user with the email
//! changes, not the first one listed; a body of the wrong JSON type is a 400.

use super::{EMAIL_PARAM, Email, Object, Pool};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

pub const LAST_SUPER: &str =
    "Cannot remove super status from the last super user. Promote another user first.";

pub const ROUTE: Route = Route {
    key: "PATCH /users/{email}",
    function: "firefly-func-api-users-patch",
    summary: "Make a user a super user, or not (never the last one)",
    uses: &[
        Use {
            resource: &super::POOL,
            actions: &[
                "cognito-idp:ListUsers",
                "cognito-idp:ListUsersInGroup",
                "cognito-idp:AdminAddUserToGroup",
                "cognito-idp:AdminRemoveUserFromGroup",
                "cognito-idp:AdminUserGlobalSignOut",
            ],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Changed (or already so)",
            schema: Some(
                r#"{"title": "SuperStatus", "type": "object", "required": ["email", "is_super"], "properties": {"email": {"type": "string"}, "is_super": {"type": "boolean"}}}"#,
            ),
            example: Some(r#"{"email":"bob@example.com","is_super":true}"#),
        },
        Answer::new(
            400,
            "email is not a valid email address; Invalid JSON body (or not an object); is_super is required; is_super must be a boolean",
        ),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        Answer::new(404, "User '<email>' not found in Cognito"),
        Answer::new(409, LAST_SUPER),
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[EMAIL_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: Some(
        r#"{"type": "object", "required": ["is_super"], "properties": {"is_super": {"type": "boolean"}}}"#,
    ),
    endpoint: crate::endpoint!(patch, Pool::build),
};

/// The handler.
pub async fn patch(
    users: Pool,
    deadline: Deadline,
    SuperUser(caller): SuperUser,
    Path(Email(email)): Path<Email>,
    Object(body): Object,
) -> HandlerResult {
    let is_super = match body.get("is_super") {
        None => {
            return Err(ApiError::BadRequest {
                message: "is_super is required",
            });
        }
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::BadRequest {
                message: "is_super must be a boolean",
            });
        }
    };
    deadline
        .run(change(&users, &email, is_super, &caller.user_id))
        .await?
}

async fn change(users: &Pool, email: &str, is_super: bool, by: &str) -> HandlerResult {
    let people = users.directory.with_email(email.to_owned()).await?;
    if people.is_empty() {
        return Ok(Response::message(
            StatusCode::NOT_FOUND,
            &format!("User '{email}' not found in Cognito"),
        ));
    }
    let supers = users.super_emails().await?;
    let currently = supers.iter().any(|e| e == email);
    if is_super && !currently {
        for p in &people {
            users.directory.set_super(p.username.clone(), true).await?;
        }
        tracing::info!(by, "a user was made a super user");
    } else if !is_super && currently {
        if supers.len() <= 1 || !users.demote(&people).await? {
            return Ok(Response::message(StatusCode::CONFLICT, LAST_SUPER));
        }
        users.sign_out(&people).await;
        tracing::info!(by, "a super user was made a user, and signed out");
    }
    Ok(Response::json(
        StatusCode::OK,
        &json!({ "email": email, "is_super": is_super }),
    ))
}
