//! What a route is: its facts (key, function, auth, what it uses in AWS) and its handler.
//!
//! A [`Route`] is the one place a route's facts are written. The dispatcher reads it, the
//! function's start-up reads it (which environment it needs), and `firefly-gen` reads it to
//! write `routes/`, `template.yaml`, `samconfig.toml` and the workflows' function lists.
//! The route table itself is [`crate::routes::ROUTES`].

use crate::error::{ApiError, StartupError};
use crate::identity::Caller;
use crate::init::Init;
use crate::response::Response;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// Time kept back from the invocation's deadline to answer: a handler that runs out of
/// time answers 503 problem+json itself, instead of Lambda cutting it off (API Gateway's
/// bare 500, and a sandbox reset).
pub const ANSWER_RESERVE: Duration = Duration::from_millis(300);

/// A boxed, sendable future: what a `dyn` trait method can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a handler returns.
pub type HandlerResult = Result<Response, ApiError>;

/// How a route authenticates its caller. Derived from the handler's kind ([`Build`]), never
/// written separately: a handler that takes a [`Caller`] is a JWT route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// API Gateway's Cognito JWT authorizer; the handler gets a [`Caller`].
    Jwt,
    /// No authorizer.
    None,
}

impl Auth {
    /// The name API Gateway (and `routes/*.json`) uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "JWT",
            Self::None => "NONE",
        }
    }
}

/// Something in AWS a route uses. It decides the IAM resource its actions are granted on
/// and the environment the function gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Resource {
    /// A DynamoDB table, deployed by its own stack before any function that uses it.
    DynamoTable {
        /// The table's name in AWS.
        name: &'static str,
        /// The variable that carries the name to the function.
        env: &'static str,
        /// The stack that creates the table, and the workflow that deploys that stack.
        stack: &'static str,
        workflow: &'static str,
    },
    /// The AppConfig profile, read through the AppConfig Lambda extension
    /// ([`crate::config`]): the `FIREFLY_APPCONFIG_*` variables, actions on `*`.
    AppConfig,
}

impl Resource {
    /// The environment variables this resource gives a function, with their template
    /// values (`!Ref`/`!Sub` expressions are written as in the template).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::DynamoTable { name, env, .. } => vec![(*env, (*name).to_owned())],
            Self::AppConfig => crate::config::TEMPLATE_ENV
                .iter()
                .map(|(k, v)| (*k, (*v).to_owned()))
                .collect(),
        }
    }
}

/// Actions a route needs on one resource; its function's role grants exactly these.
#[derive(Debug, Clone, Copy)]
pub struct Use {
    pub resource: &'static Resource,
    pub actions: &'static [&'static str],
}

/// What a handler gets besides its caller: the request.
pub struct Request<'a> {
    /// The Lambda request id (also in every log line and problem response).
    pub request_id: &'a str,
    /// Path parameters by name.
    pub params: Vec<(String, String)>,
    /// The whole event, for handlers that read headers, query or body.
    pub event: &'a ApiGatewayV2httpRequest,
    /// When Lambda stops this invocation (`None`: no deadline, e.g. a local run).
    pub deadline: Option<SystemTime>,
}

impl Request<'_> {
    /// The time a handler may still spend: up to the deadline, less [`ANSWER_RESERVE`].
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(ANSWER_RESERVE)
        })
    }

    /// Runs `work` within [`Request::time_left`]; past it, a 503 whose log line says the
    /// deadline was near (what `work` was doing is dropped).
    pub async fn before_deadline<T>(&self, work: impl Future<Output = T>) -> Result<T, ApiError> {
        match self.time_left() {
            None => Ok(work.await),
            Some(left) => tokio::time::timeout(left, work).await.map_err(|_| {
                ApiError::unavailable(format!(
                    "stopped to answer before the invocation's deadline ({} ms kept to answer)",
                    ANSWER_RESERVE.as_millis()
                ))
            }),
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A handler of a JWT route: it cannot be called without a verified [`Caller`].
pub trait JwtHandler: Send + Sync {
    fn call<'a>(&'a self, req: Request<'a>, caller: Caller) -> BoxFuture<'a, HandlerResult>;
}

/// A handler of a route without an authorizer.
pub trait PublicHandler: Send + Sync {
    fn call<'a>(&'a self, req: Request<'a>) -> BoxFuture<'a, HandlerResult>;
}

/// A built handler, ready to serve.
pub enum Endpoint {
    Jwt(Box<dyn JwtHandler>),
    Public(Box<dyn PublicHandler>),
}

/// How a route's handler is built at start-up, from what [`Init`] provides. Only the
/// routes of the function a process is get built.
#[derive(Clone, Copy)]
pub enum Build {
    Jwt(fn(&mut Init<'_>) -> Result<Box<dyn JwtHandler>, StartupError>),
    Public(fn(&mut Init<'_>) -> Result<Box<dyn PublicHandler>, StartupError>),
}

/// A documented response of a route, for the generated documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    /// The JSON Schema of a success body (errors are problem+json, documented once), and
    /// an example of it.
    pub schema: Option<&'static str>,
    pub example: Option<&'static str>,
}

impl Answer {
    /// An answer without a documented body schema (errors, whose body is problem+json, and
    /// bodiless successes).
    pub const fn new(status: u16, description: &'static str) -> Self {
        Self {
            status,
            description,
            schema: None,
            example: None,
        }
    }
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
    pub build: Build,
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
            build: Build::Public(no_handler),
        }
    }

    pub fn method(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(m, _)| m)
    }

    pub fn path(&self) -> &'static str {
        self.key.split_once(' ').map_or("", |(_, p)| p)
    }

    pub fn auth(&self) -> Auth {
        match self.build {
            Build::Jwt(_) => Auth::Jwt,
            Build::Public(_) => Auth::None,
        }
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

fn no_handler(_: &mut Init<'_>) -> Result<Box<dyn PublicHandler>, StartupError> {
    Err(StartupError("this route has no handler".into()))
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("key", &self.key)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}
