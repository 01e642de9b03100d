//! The people of FireFly's user pool and its `super_users` group: Cognito's admin API, or a
//! list in memory (firefly-local's own users).

use crate::aws::cognito::{CognitoClient, CognitoError, filter_value};
use crate::handler::BoxFuture;
use crate::identity::SUPER_USERS;
use crate::sync::Locked;
use serde_json::{Value, json};
use std::sync::Mutex;

/// A user of the pool, as the users routes read one.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// Cognito's `Username` (for a Google user, `google_<id>`): what the admin calls name.
    pub username: String,
    /// The `email` attribute, lower-cased (FireFly compares them so); `""` when absent.
    pub email: String,
    pub name: Option<String>,
    /// `UserStatus` (`CONFIRMED`, `EXTERNAL_PROVIDER`, ...).
    pub status: String,
    /// `UserCreateDate`, epoch microseconds.
    pub created_micros: Option<i64>,
}

/// The pool, as the users routes use it.
pub trait Directory: Send + Sync {
    /// Every user (every page of `ListUsers`).
    fn people(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>>;
    /// Every member of `super_users` (every page of `ListUsersInGroup`).
    fn supers(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>>;
    /// The users whose email is `email` (lower-cased): `ListUsers` with a filter whose
    /// value is escaped.
    fn with_email(&self, email: String) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>>;
    /// The email of the user named `username` (`AdminGetUser`); `None` for no such user.
    fn email_of(&self, username: String) -> BoxFuture<'_, Result<Option<String>, CognitoError>>;
    /// Puts the user in `super_users` or takes them out (either is a no-op when done).
    fn set_super(&self, username: String, on: bool) -> BoxFuture<'_, Result<(), CognitoError>>;
    /// Deletes the user (`AdminDeleteUser`); a user already gone is not an error.
    fn delete(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>>;
    /// Revokes the user's refresh tokens (`AdminUserGlobalSignOut`); a user gone is not an
    /// error.
    fn sign_out(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>>;
}

/// The pool through Cognito's admin API.
pub struct CognitoDirectory {
    client: CognitoClient,
    pool: String,
}

impl CognitoDirectory {
    pub fn new(client: CognitoClient, pool: String) -> Self {
        Self { client, pool }
    }

    /// Every page of a listing: `token` names the continuation in both directions.
    async fn every_page(
        &self,
        operation: &str,
        mut input: Value,
        token: &str,
    ) -> Result<Vec<Person>, CognitoError> {
        let mut people = Vec::new();
        // A bound, not a loop forever on a continuation that repeats.
        for _ in 0..1_000 {
            let out = self.client.call(operation, &input).await?;
            people.extend(
                out.get("Users")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(person),
            );
            match out.get(token).and_then(Value::as_str) {
                Some(next) if !next.is_empty() => input[token] = json!(next),
                _ => return Ok(people),
            }
        }
        Err(CognitoError::Other(format!(
            "{operation}: more than 1000 pages"
        )))
    }

    fn user(&self, username: &str) -> Value {
        json!({ "UserPoolId": self.pool, "Username": username })
    }

    /// A call on one user, where "no such user" means there is nothing left to do.
    async fn on_user(&self, operation: &str, input: Value) -> Result<(), CognitoError> {
        match self.client.call(operation, &input).await {
            Ok(_) | Err(CognitoError::NoSuchUser) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A user as `ListUsers` and `ListUsersInGroup` give one (`Attributes`).
fn person(user: &Value) -> Option<Person> {
    let username = user.get("Username")?.as_str()?.to_owned();
    let attr = |name: &str| {
        user.get("Attributes")
            .or_else(|| user.get("UserAttributes"))
            .and_then(Value::as_array)?
            .iter()
            .find(|a| a.get("Name").and_then(Value::as_str) == Some(name))?
            .get("Value")?
            .as_str()
            .map(str::to_owned)
    };
    Some(Person {
        username,
        email: attr("email").unwrap_or_default().to_lowercase(),
        name: attr("name"),
        status: user
            .get("UserStatus")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        // JSON 1.1 writes timestamps as epoch seconds with a fraction.
        created_micros: user
            .get("UserCreateDate")
            .and_then(Value::as_f64)
            .map(|s| (s * 1_000_000.0).round() as i64),
    })
}

impl Directory for CognitoDirectory {
    fn people(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        Box::pin(self.every_page(
            "ListUsers",
            json!({ "UserPoolId": self.pool }),
            "PaginationToken",
        ))
    }

    fn supers(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        Box::pin(self.every_page(
            "ListUsersInGroup",
            json!({ "UserPoolId": self.pool, "GroupName": SUPER_USERS }),
            "NextToken",
        ))
    }

    fn with_email(&self, email: String) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        Box::pin(async move {
            let filter = format!("email = \"{}\"", filter_value(&email));
            let found = self
                .every_page(
                    "ListUsers",
                    json!({ "UserPoolId": self.pool, "Filter": filter }),
                    "PaginationToken",
                )
                .await?;
            // The filter's match is Cognito's; the email compared here is ours.
            let found: Vec<Person> = found.into_iter().filter(|p| p.email == email).collect();
            if !found.is_empty() {
                return Ok(found);
            }
            // An address stored with capitals (`Bob@Example.com`) escapes a filter, which
            // compares exactly: FireFly answered 404 for its user. The whole pool is read
            // then, only when the filter found no one.
            let everyone = self.people().await?;
            Ok(everyone.into_iter().filter(|p| p.email == email).collect())
        })
    }

    fn email_of(&self, username: String) -> BoxFuture<'_, Result<Option<String>, CognitoError>> {
        Box::pin(async move {
            match self
                .client
                .call("AdminGetUser", &self.user(&username))
                .await
            {
                Ok(out) => Ok(person(&out).map(|p| p.email).filter(|e| !e.is_empty())),
                Err(CognitoError::NoSuchUser) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    fn set_super(&self, username: String, on: bool) -> BoxFuture<'_, Result<(), CognitoError>> {
        Box::pin(async move {
            let mut input = self.user(&username);
            input["GroupName"] = json!(SUPER_USERS);
            let operation = if on {
                "AdminAddUserToGroup"
            } else {
                "AdminRemoveUserFromGroup"
            };
            self.client.call(operation, &input).await.map(drop)
        })
    }

    fn delete(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>> {
        Box::pin(async move { self.on_user("AdminDeleteUser", self.user(&username)).await })
    }

    fn sign_out(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>> {
        Box::pin(async move {
            self.on_user("AdminUserGlobalSignOut", self.user(&username))
                .await
        })
    }
}

/// One user of a [`MemoryDirectory`].
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub person: Person,
    pub groups: Vec<String>,
    /// Sign-outs so far: a session started before the last one is over.
    pub signed_out: u32,
}

/// The pool in memory: firefly-local's users (`--users`), which its sign-in page signs in
/// and whose groups its tokens carry.
#[derive(Default)]
pub struct MemoryDirectory {
    members: Mutex<Vec<Member>>,
}

impl MemoryDirectory {
    pub fn new(members: Vec<Member>) -> Self {
        Self {
            members: Mutex::new(members),
        }
    }

    /// Every member as it is now.
    pub fn members(&self) -> Vec<Member> {
        self.members.locked().clone()
    }

    /// The member named `username`, as it is now.
    pub fn member(&self, username: &str) -> Option<Member> {
        self.members
            .locked()
            .iter()
            .find(|m| m.person.username == username)
            .cloned()
    }

    /// Adds a member (a first sign-in the pre-sign-up admitted); an existing one stays.
    pub fn add(&self, member: Member) {
        let mut members = self.members.locked();
        if !members
            .iter()
            .any(|m| m.person.username == member.person.username)
        {
            members.push(member);
        }
    }

    fn matching(&self, keep: impl Fn(&Member) -> bool) -> Vec<Person> {
        self.members
            .locked()
            .iter()
            .filter(|m| keep(m))
            .map(|m| m.person.clone())
            .collect()
    }

    fn change(&self, username: &str, f: impl FnOnce(&mut Vec<Member>, usize)) {
        let mut members = self.members.locked();
        if let Some(i) = members.iter().position(|m| m.person.username == username) {
            f(&mut members, i);
        }
    }
}

fn ready<T: Send + 'static>(v: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(v))
}

impl Directory for MemoryDirectory {
    fn people(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        ready(Ok(self.matching(|_| true)))
    }

    fn supers(&self) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        ready(Ok(
            self.matching(|m| m.groups.iter().any(|g| g == SUPER_USERS))
        ))
    }

    fn with_email(&self, email: String) -> BoxFuture<'_, Result<Vec<Person>, CognitoError>> {
        ready(Ok(self.matching(|m| m.person.email == email)))
    }

    fn email_of(&self, username: String) -> BoxFuture<'_, Result<Option<String>, CognitoError>> {
        ready(Ok(self
            .member(&username)
            .map(|m| m.person.email)
            .filter(|e| !e.is_empty())))
    }

    fn set_super(&self, username: String, on: bool) -> BoxFuture<'_, Result<(), CognitoError>> {
        let mut found = false;
        self.change(&username, |members, i| {
            found = true;
            let groups = &mut members[i].groups;
            groups.retain(|g| g != SUPER_USERS);
            if on {
                groups.push(SUPER_USERS.to_owned());
            }
        });
        ready(if found {
            Ok(())
        } else {
            Err(CognitoError::NoSuchUser)
        })
    }

    fn delete(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>> {
        self.change(&username, |members, i| {
            members.remove(i);
        });
        ready(Ok(()))
    }

    fn sign_out(&self, username: String) -> BoxFuture<'_, Result<(), CognitoError>> {
        self.change(&username, |members, i| members[i].signed_out += 1);
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listed_user_reads_as_cognito_writes_one() {
        let user = json!({
            "Username": "google_123",
            "Attributes": [{"Name": "email", "Value": "Ann@Example.com"}, {"Name": "name", "Value": "Ann"}],
            "UserStatus": "EXTERNAL_PROVIDER",
            "UserCreateDate": 1767268800.123
        });
        assert_eq!(
            person(&user),
            Some(Person {
                username: "google_123".into(),
                email: "ann@example.com".into(),
                name: Some("Ann".into()),
                status: "EXTERNAL_PROVIDER".into(),
                created_micros: Some(1_767_268_800_123_000),
            })
        );
        assert_eq!(person(&json!({"Attributes": []})), None);
    }

    #[tokio::test]
    async fn memory_groups_change_and_sign_outs_count() {
        let d = MemoryDirectory::new(vec![Member {
            person: Person {
                username: "dev".into(),
                email: "dev@example.com".into(),
                name: None,
                status: "CONFIRMED".into(),
                created_micros: None,
            },
            groups: vec![SUPER_USERS.into()],
            signed_out: 0,
        }]);
        assert_eq!(d.supers().await.unwrap().len(), 1);
        d.set_super("dev".into(), false).await.unwrap();
        assert!(d.supers().await.unwrap().is_empty());
        assert_eq!(
            d.set_super("nobody".into(), true).await,
            Err(CognitoError::NoSuchUser)
        );
        d.sign_out("dev".into()).await.unwrap();
        assert_eq!(d.member("dev").unwrap().signed_out, 1);
        d.delete("dev".into()).await.unwrap();
        assert!(d.people().await.unwrap().is_empty());
    }
}
