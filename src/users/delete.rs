//! `DELETE /users/{email}`: FireFly's `func-api-users-delete`, the console's Delete: the
//! user leaves the pool and their invitation the table; 200 also for an unknown email, as
//! FireFly answers (and its tests expect).
//!
//! Better than FireFly's: the path's email is checked and the filter's value escaped; a
//! super user leaves `super_users` first, with [`super::Pool::demote`]'s check, so two deletions
//! at once cannot remove the last one; the user is signed out before being deleted; every
//! user with the email goes, not the first one listed.

use super::{EMAIL_PARAM, Email, Users};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;

pub const LAST_SUPER: &str =
    "Cannot delete the last super user. Promote another user to super first.";

pub const ROUTE: Route = Route {
    key: "DELETE /users/{email}",
    function: "firefly-func-api-users-delete",
    summary: "Remove a user from the pool and their invitation (never the last super user)",
    uses: &[
        Use {
            resource: &super::POOL,
            actions: &[
                "cognito-idp:ListUsers",
                "cognito-idp:ListUsersInGroup",
                "cognito-idp:AdminAddUserToGroup",
                "cognito-idp:AdminRemoveUserFromGroup",
                "cognito-idp:AdminUserGlobalSignOut",
                "cognito-idp:AdminDeleteUser",
            ],
            objects: &[],
        },
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:DeleteItem"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Deleted (also when there was no such user)",
            schema: Some(
                r#"{"title": "Message", "type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}}"#,
            ),
            example: Some(r#"{"message":"User 'bob@example.com' has been deleted"}"#),
        },
        Answer::new(400, "email is not a valid email address"),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
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
    request: None,
    endpoint: crate::endpoint!(delete, Users::build),
};

/// The handler.
pub async fn delete(
    users: Users,
    deadline: Deadline,
    SuperUser(caller): SuperUser,
    Path(Email(email)): Path<Email>,
) -> HandlerResult {
    deadline
        .run(remove(&users, &email, &caller.user_id))
        .await?
}

async fn remove(users: &Users, email: &str, by: &str) -> HandlerResult {
    let supers = users.pool.super_emails().await?;
    let is_super = supers.iter().any(|e| e == email);
    if is_super && supers.len() <= 1 {
        return Ok(Response::message(StatusCode::CONFLICT, LAST_SUPER));
    }
    let people = users.pool.directory.with_email(email.to_owned()).await?;
    if is_super && !users.pool.demote(&people).await? {
        return Ok(Response::message(StatusCode::CONFLICT, LAST_SUPER));
    }
    users.pool.sign_out(&people).await;
    for p in &people {
        users.pool.directory.delete(p.username.clone()).await?;
    }
    users.invitations.store.remove(email.to_owned()).await?;
    tracing::info!(by, users = people.len(), "a user was deleted");
    Ok(Response::message(
        StatusCode::OK,
        &format!("User '{email}' has been deleted"),
    ))
}
