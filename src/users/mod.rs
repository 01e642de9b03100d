//! FireFly's users: who may sign in. Invitations live in FireFly's `firefly-users` table
//! (hash key `email`, lower-cased; `invited_by`, `created_at`, `expires_at`, which is also
//! the table's TTL attribute), made by its own stack; the people themselves in its Cognito
//! user pool. [`presignup`] is the pool's pre-sign-up trigger, which admits only invited
//! people.

pub mod delete;
pub mod directory;
pub mod get;
pub mod patch;
pub mod post;
pub mod presignup;
pub mod store;

use crate::deploy::Resource;
use crate::error::{ApiError, StartupError};
use crate::handler::{FromRequest, PathParam, Request};
use crate::init::{Init, StoreMode};
use crate::route::{Answer, Param};
use directory::{CognitoDirectory, Directory, MemoryDirectory, Person};
use serde_json::{Map, Value};
use std::sync::Arc;
use store::{DynamoInvitations, InvitationStore, MemoryInvitations};

/// The variable that names the table (FireFly's).
pub const TABLE_ENV: &str = crate::vars::DYNAMODB_USERS_TABLE_NAME.name;

/// The invitations table, deployed by FireFly's `dynamodb-users` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-users",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-users",
    workflow: "dynamodb-users",
};

/// FireFly's user pool (`templates/cognito.yaml`), named by the `UserPoolId` parameter from
/// its stack's output of that name. Its stack owns the pool's `LambdaConfig`, which names
/// the pre-sign-up function, so on a first install the function deploys first.
pub const POOL: Resource = Resource::UserPool {
    parameter: "UserPoolId",
    output: "UserPoolId",
    env: crate::vars::COGNITO_USER_POOL_ID.name,
    stack: "firefly-cognito",
    workflow: "cognito",
};

/// What the users functions share: the invitations and the time.
#[derive(Clone)]
pub struct Invitations {
    pub store: Arc<dyn InvitationStore>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Invitations {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let store: Arc<dyn InvitationStore> = match init.store_mode() {
            StoreMode::Memory => init.shared(|_| Ok(Arc::new(MemoryInvitations::default())))?,
            StoreMode::DynamoDb => Arc::new(DynamoInvitations::new(
                init.dynamodb()?,
                init.var(TABLE_ENV)?,
            )),
        };
        Ok(Self {
            store,
            clock: init.clock(),
        })
    }
}

/// The pool's people, as the users routes change them.
#[derive(Clone)]
pub struct Pool {
    pub directory: Arc<dyn Directory>,
}

/// What the users routes that also read or write invitations share.
#[derive(Clone)]
pub struct Users {
    pub pool: Pool,
    pub invitations: Invitations,
}

impl Users {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            pool: Pool::build(init)?,
            invitations: Invitations::build(init)?,
        })
    }
}

impl Pool {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let directory: Arc<dyn Directory> = match init.store_mode() {
            // firefly-local's users, shared with its sign-in page when it has one.
            StoreMode::Memory => match init.provided::<Arc<MemoryDirectory>>() {
                Some(d) => d,
                None => init.shared(|_| Ok(Arc::new(MemoryDirectory::default())))?,
            },
            StoreMode::DynamoDb => {
                Arc::new(CognitoDirectory::new(init.cognito()?, init.var(POOL_ENV)?))
            }
        };
        Ok(Self { directory })
    }

    /// The distinct emails of `super_users`' members.
    pub async fn super_emails(&self) -> Result<Vec<String>, ApiError> {
        let mut emails: Vec<String> = self
            .directory
            .supers()
            .await?
            .into_iter()
            .map(|p| p.email)
            .filter(|e| !e.is_empty())
            .collect();
        emails.sort();
        emails.dedup();
        Ok(emails)
    }

    /// Takes `people` out of `super_users`, then looks again: when that left the group
    /// empty (another demotion or deletion ran at the same time), puts them back and
    /// answers `false`. Whichever request looks last sees the other's change, so two at
    /// once can never both succeed in emptying the group.
    pub async fn demote(&self, people: &[Person]) -> Result<bool, ApiError> {
        for p in people {
            self.directory.set_super(p.username.clone(), false).await?;
        }
        if !self.super_emails().await?.is_empty() {
            return Ok(true);
        }
        for p in people {
            if let Err(e) = self.directory.set_super(p.username.clone(), true).await {
                tracing::error!(error = %e, "a demotion that emptied super_users could not be undone: add a super user in Cognito");
                return Err(e.into());
            }
        }
        tracing::warn!(
            "a demotion would have left no super user (another ran at the same time): undone"
        );
        Ok(false)
    }

    /// Ends the sessions of `people` (their refresh tokens revoked). A failure is logged,
    /// not answered: the change it follows is made.
    pub async fn sign_out(&self, people: &[Person]) {
        for p in people {
            if let Err(e) = self.directory.sign_out(p.username.clone()).await {
                tracing::warn!(error = %e, "a changed user could not be signed out: their refresh token works until it expires");
            }
        }
    }
}

/// The variable that names the pool (FireFly's).
pub const POOL_ENV: &str = crate::vars::COGNITO_USER_POOL_ID.name;

/// FireFly's check of an address (`func-api-users-post/app.py:30`):
/// `^[a-zA-Z0-9._%+\-]+@[a-zA-Z0-9.\-]+\.[a-zA-Z]{2,}$`. It admits no quote, backslash or
/// space, so no address it admits can change a Cognito filter.
pub fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    // The regex's `[a-zA-Z0-9.\-]+\.` may take the last dot of several: any split works,
    // and the last is the one that leaves the longest letters-only ending.
    !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b))
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
}

pub const INVALID_EMAIL: &str = "email is not a valid email address";

/// The `{email}` of the path, trimmed and lower-cased as FireFly reads it, and checked as
/// its POST checks a new one: an address that is not one is a 400 before any call.
pub struct Email(pub String);

impl PathParam for Email {
    const NAME: &'static str = "email";
    fn parse(text: &str) -> Result<Self, ApiError> {
        let email = text.trim().to_lowercase();
        if email.is_empty() {
            return Err(ApiError::BadRequest {
                message: "email path parameter is required",
            });
        }
        if !valid_email(&email) {
            return Err(ApiError::BadRequest {
                message: INVALID_EMAIL,
            });
        }
        Ok(Self(email))
    }
}

pub const EMAIL_PARAM: Param = Param {
    name: Email::NAME,
    description: "The user's email address (percent-encoded: %40 for @)",
    schema: r#"{"type": "string", "minLength": 3}"#,
};

/// The body as a JSON object: not JSON, or JSON of another type (an array, a string, a
/// number, which FireFly's functions answered with a 500), is a 400 `Invalid JSON body`. No
/// body reads as `{}`, as FireFly's `event.get("body") or "{}"`.
pub struct Object(pub Map<String, Value>);

impl FromRequest for Object {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let crate::handler::Body(text) = crate::handler::Body::from_request(req)?;
        let text = if text.is_empty() { "{}" } else { &text };
        match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(ApiError::BadRequest {
                message: "Invalid JSON body",
            }),
        }
    }
}

/// The caller's `email` and `username` claims, as the invitation's `invited_by` needs them.
pub struct Claims {
    pub email: String,
    pub username: String,
}

impl FromRequest for Claims {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let claim = |name: &str| {
            req.event
                .request_context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .and_then(|j| j.claims.get(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        };
        Ok(Self {
            email: claim("email").to_lowercase(),
            username: claim("username"),
        })
    }
}

/// Every users route's 403, 401 and failures.
pub const COMMON_ANSWERS: [Answer; 4] = [
    Answer::new(401, "No signed-in caller"),
    Answer::new(403, "Forbidden: the caller is not in the super_users group"),
    Answer::new(500, "Internal server error (details in the log only)"),
    Answer::new(503, "Cognito or DynamoDB unavailable"),
];

/// `UserCreateDate` as FireFly's answers print it (Python's `str()` of the datetime boto3
/// makes: `2026-01-01 12:00:00.123000+00:00`, without a fraction when it is zero).
pub fn python_datetime(epoch_micros: i64) -> String {
    let mut s = crate::clock::rfc3339(epoch_micros.div_euclid(1_000_000)).replacen('T', " ", 1);
    s.pop();
    match epoch_micros.rem_euclid(1_000_000) {
        0 => format!("{s}+00:00"),
        f => format!("{s}.{f:06}+00:00"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_as_fireflys_expression_reads_them() {
        for good in [
            "a@example.com",
            "a.b+c_d%e-f@sub.example.co",
            "x@a.b.cd",
            "x@-.io",
        ] {
            assert!(valid_email(good), "{good}");
        }
        for bad in [
            "",
            "not-an-email",
            "a@b",
            "a@b.c",
            "a@b.c1",
            "@b.com",
            "a@.com",
            "a\"@b.com",
            "a\\b@c.com",
            "a b@c.com",
            "a@b@c.com",
            "a@b.com\n",
            "é@b.com",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_path_email_is_trimmed_lowered_and_checked() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().0,
            "ann@example.com"
        );
        let quote = Email::parse("a\"@example.com").err().unwrap();
        assert_eq!(quote.message(), INVALID_EMAIL);
        assert_eq!(
            Email::parse("  ").err().unwrap().message(),
            "email path parameter is required"
        );
    }

    use directory::{Member, Person};
    use std::sync::Arc;

    fn member(username: &str, supers: bool) -> Member {
        Member {
            person: Person {
                username: username.into(),
                email: format!("{username}@example.com"),
                name: None,
                status: "CONFIRMED".into(),
                created_micros: None,
            },
            groups: if supers {
                vec![crate::identity::SUPER_USERS.into()]
            } else {
                vec![]
            },
            signed_out: 0,
        }
    }

    /// The pool in memory, where every removal from `super_users` waits until the other
    /// demotion's removal is made too: the interleaving that defeats a check made only
    /// before the change.
    struct BothRemoveFirst {
        inner: Arc<MemoryDirectory>,
        barrier: tokio::sync::Barrier,
    }

    impl Directory for BothRemoveFirst {
        fn people(
            &self,
        ) -> crate::handler::BoxFuture<'_, Result<Vec<Person>, crate::aws::cognito::CognitoError>>
        {
            self.inner.people()
        }
        fn supers(
            &self,
        ) -> crate::handler::BoxFuture<'_, Result<Vec<Person>, crate::aws::cognito::CognitoError>>
        {
            self.inner.supers()
        }
        fn with_email(
            &self,
            email: String,
        ) -> crate::handler::BoxFuture<'_, Result<Vec<Person>, crate::aws::cognito::CognitoError>>
        {
            self.inner.with_email(email)
        }
        fn email_of(
            &self,
            username: String,
        ) -> crate::handler::BoxFuture<'_, Result<Option<String>, crate::aws::cognito::CognitoError>>
        {
            self.inner.email_of(username)
        }
        fn set_super(
            &self,
            username: String,
            on: bool,
        ) -> crate::handler::BoxFuture<'_, Result<(), crate::aws::cognito::CognitoError>> {
            Box::pin(async move {
                let done = self.inner.set_super(username, on).await;
                if !on {
                    self.barrier.wait().await;
                }
                done
            })
        }
        fn delete(
            &self,
            username: String,
        ) -> crate::handler::BoxFuture<'_, Result<(), crate::aws::cognito::CognitoError>> {
            self.inner.delete(username)
        }
        fn sign_out(
            &self,
            username: String,
        ) -> crate::handler::BoxFuture<'_, Result<(), crate::aws::cognito::CognitoError>> {
            self.inner.sign_out(username)
        }
    }

    #[tokio::test]
    async fn two_demotions_at_once_never_leave_the_group_empty() {
        let inner = Arc::new(MemoryDirectory::new(vec![
            member("ann", true),
            member("bob", true),
        ]));
        let pool = Pool {
            directory: Arc::new(BothRemoveFirst {
                inner: inner.clone(),
                barrier: tokio::sync::Barrier::new(2),
            }),
        };
        // Both saw two super users before changing anything: a check before the change
        // alone would let both through and leave none.
        let ann = pool
            .directory
            .with_email("ann@example.com".into())
            .await
            .unwrap();
        let bob = pool
            .directory
            .with_email("bob@example.com".into())
            .await
            .unwrap();
        let (a, b) = tokio::join!(pool.demote(&ann), pool.demote(&bob));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(!(a && b), "both demotions went through");
        let left = pool.super_emails().await.unwrap();
        assert!(!left.is_empty(), "no super user left");
        // What was undone is back as it was; what went through is gone.
        assert_eq!(left.contains(&"ann@example.com".to_owned()), !a);
        assert_eq!(left.contains(&"bob@example.com".to_owned()), !b);
    }

    #[tokio::test]
    async fn a_demotion_that_leaves_someone_goes_through() {
        let inner = Arc::new(MemoryDirectory::new(vec![
            member("ann", true),
            member("bob", true),
        ]));
        let pool = Pool {
            directory: inner.clone(),
        };
        let ann = pool
            .directory
            .with_email("ann@example.com".into())
            .await
            .unwrap();
        assert!(pool.demote(&ann).await.unwrap());
        assert_eq!(pool.super_emails().await.unwrap(), ["bob@example.com"]);
        pool.sign_out(&ann).await;
        assert_eq!(inner.member("ann").unwrap().signed_out, 1);
        let bob = pool
            .directory
            .with_email("bob@example.com".into())
            .await
            .unwrap();
        assert!(!pool.demote(&bob).await.unwrap(), "the last one stays");
        assert_eq!(pool.super_emails().await.unwrap(), ["bob@example.com"]);
    }

    #[test]
    fn creation_dates_print_as_python_prints_them() {
        assert_eq!(
            python_datetime(1_767_268_800_123_000),
            "2026-01-01 12:00:00.123000+00:00"
        );
        assert_eq!(
            python_datetime(1_767_268_800_000_000),
            "2026-01-01 12:00:00+00:00"
        );
    }
}
