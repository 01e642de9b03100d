//! What a route is: its facts (key, function, what it uses in AWS) and its handler.
//!
//! A [`Route`] is the one place a route's facts are written. The dispatcher reads it, the
//! function's start-up reads it (which environment it needs), and `firefly-gen` reads it to
//! write `routes/`, `template.yaml`, `samconfig.toml` and the workflows' function lists.
//! The route table itself is [`crate::routes::ROUTES`].

pub use crate::deploy::{Resource, Use};
use crate::handler::{Auth, Endpoint};
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

/// One route: every fact about it, written once.
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

    /// The environment variables the route's function must have, with template values.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        self.uses.iter().flat_map(|u| u.resource.env()).collect()
    }

    /// `POST /registration-keys` → `registration-keys-post`: the route's file name in
    /// `routes/` and its name in documents.
    pub fn slug(&self) -> String {
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
