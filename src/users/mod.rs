//! FireFly's users: who may sign in. Invitations live in FireFly's `firefly-users` table
//! (hash key `email`, lower-cased; `invited_by`, `created_at`, `expires_at`, which is also
//! the table's TTL attribute), made by its own stack; the people themselves in its Cognito
//! user pool. [`presignup`] is the pool's pre-sign-up trigger, which admits only invited
//! people.

pub mod presignup;
pub mod store;

use crate::deploy::Resource;
use crate::error::StartupError;
use crate::init::{Init, StoreMode};
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
