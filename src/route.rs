//! What a route is: its facts (key, function, what it uses in AWS) and its handler.
//!
//! A [`Route`] is the one place a route's facts are written. The dispatcher reads it, the
//! function's start-up reads it (which environment it needs), and `firefly-gen` reads it to
//! write `routes/`, `template.yaml`, `samconfig.toml` and the workflows' function lists.
//! The route table itself is [`crate::routes::ROUTES`].

pub use crate::deploy::{Resource, Use};
use crate::endpoint::Endpoint;
use crate::handler::Auth;
use std::fmt;

/// A documented response of a route, for the generated documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    /// The JSON Schema of a success body (errors are `{"message"}`, documented once), and
    /// an example of it. A schema's `title` is its name in the OpenAPI document
    /// (FireFly's names: `RegistrationKeyListResponse`, ...).
    pub schema: Option<&'static str>,
    pub example: Option<&'static str>,
}

impl Answer {
    /// An answer without a documented body schema (errors, whose body is `{"message"}`,
    /// and bodiless successes).
    pub const fn new(status: u16, description: &'static str) -> Self {
        Self {
            status,
            description,
            schema: None,
            example: None,
        }
    }
}

/// An alarm on one of the route's own EMF metrics (created with the template's `Alarms`
/// switch): the metric's 5-minute sum above `threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricAlarm {
    pub metric: &'static str,
    pub threshold: u32,
    pub description: &'static str,
}

/// A path parameter's documentation: its name in the route key, and a JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub description: &'static str,
    pub schema: &'static str,
}

pub use crate::deploy::{CognitoTrigger, S3Notification, Trigger};

/// A function's kind: what its entries' triggers have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Api,
    S3,
    Cognito,
}

impl Trigger {
    pub const fn kind(&self) -> Kind {
        match self {
            Self::Api => Kind::Api,
            Self::S3(_) => Kind::S3,
            Self::Cognito(_) => Kind::Cognito,
        }
    }
}

impl Kind {
    /// Its functions' name prefix (FireFly's).
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::Api => "firefly-func-api-",
            Self::S3 => "firefly-func-s3-",
            Self::Cognito => "firefly-func-cognito-",
        }
    }

    /// The Lambda timeout, seconds: an API answer within API Gateway's patience; an S3
    /// function has FireFly's 30 s to validate a ZIP.
    pub const fn timeout_s(self) -> u32 {
        match self {
            Self::Api => 6,
            Self::S3 => 30,
            // FireFly's 5 s: Cognito itself waits no longer.
            Self::Cognito => 5,
        }
    }

    /// The Lambda memory, MB: an API function's 256 buy CPU for init and TLS; an S3
    /// function keeps FireFly's 128 (a 4 MiB ZIP is validated in a fraction of it:
    /// docs/performance.md).
    pub const fn memory_mb(self) -> u32 {
        match self {
            Self::Api => 256,
            Self::S3 => 128,
            Self::Cognito => 128,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::S3 => "s3",
            Self::Cognito => "cognito",
        }
    }
}

/// One entry of the table (a route, or the trigger of a function that is not an API
/// call): every fact about it, written once.
#[derive(Clone, Copy)]
pub struct Route {
    /// The API Gateway route key, `METHOD /path/{param}`.
    pub key: &'static str,
    /// The Lambda function (and CloudFormation stack) that serves this route.
    pub function: &'static str,
    /// One line for people: the deployment documents and logs use it.
    pub summary: &'static str,
    /// What the route uses in AWS: its function's role and environment follow from it.
    pub uses: &'static [Use],
    /// Statuses the handler itself can answer (the dispatcher adds 401/404/405).
    pub answers: &'static [Answer],
    /// OAuth scopes the JWT authorizer requires (any one of them); empty: none.
    pub scopes: &'static [&'static str],
    /// What each `{name}` of the path accepts, for the generated documents (a parameter
    /// not listed is any non-empty string).
    pub params: &'static [Param],
    /// Request headers the handler requires (its extractors read them), for the generated
    /// documents.
    pub headers: &'static [Param],
    /// Alarms on the route's own metrics, beside the 5xx-rate alarm every route has. A
    /// route with any turns its function's alarms on when it deploys.
    pub alarms: &'static [MetricAlarm],
    /// The reserved concurrency its function deploys with (the smallest of its routes'), as
    /// a ceiling; `None`: none.
    pub reserved_concurrency: Option<u32>,
    /// The Lambda timeout, seconds, when the kind's is not enough (a release's work).
    pub timeout_s: Option<u32>,
    /// The JSON Schema of the request body, if it takes one (its `title` names it in the
    /// OpenAPI document, as FireFly's names it).
    pub request: Option<&'static str>,
    /// The handler, and its auth (read off the handler's argument types):
    /// [`crate::endpoint!`].
    pub endpoint: Endpoint,
}

impl Route {
    /// A route with its key and function but no handler: tables and generated documents
    /// in tests. Building it is a start-up error.
    #[doc(hidden)]
    pub const fn unbuilt(key: &'static str, function: &'static str) -> Self {
        Self {
            key,
            function,
            summary: "",
            uses: &[],
            answers: &[],
            scopes: &[],
            params: &[],
            headers: &[],
            alarms: &[],
            reserved_concurrency: None,
            timeout_s: None,
            request: None,
            endpoint: Endpoint::MISSING,
        }
    }

    pub fn method(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(m, _)| m)
    }

    pub fn path(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(_, p)| p)
    }

    pub fn auth(&self) -> Auth {
        self.endpoint.auth
    }

    pub fn trigger(&self) -> Trigger {
        self.endpoint.trigger
    }

    pub fn kind(&self) -> Kind {
        self.endpoint.trigger.kind()
    }

    /// The environment variables the route's function must have, with template values.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.uses.iter().flat_map(|u| u.resource.env()).collect()
    }

    /// `POST /registration-keys` → `registration-keys-post`: the route's file name in
    /// `routes/` and its name in documents; an entry that is not a route is named by its
    /// function (`s3-firmware-uploaded`).
    pub fn slug(&self) -> String {
        if self.kind() != Kind::Api {
            return self
                .function
                .strip_prefix("firefly-func-")
                .unwrap_or(self.function)
                .to_owned();
        }
        let path: Vec<&str> = self
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches(|c| c == '{' || c == '}' || c == '+'))
            .collect();
        format!("{}-{}", path.join("-"), self.method().to_ascii_lowercase())
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("key", &self.key)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}
