//! Handlers, one folder each, and the route table that names them.
//!
//! To add a route: copy a handler folder, give it a [`Route`] constant, list that constant
//! in [`ROUTES`], and add the matching `routes/<name>.json` entry. The tests fail until the
//! code, `routes/` and `template.yaml` agree.

pub mod registration_keys_post;

use crate::clock::Clock;
use crate::config::Settings;
use crate::error::ApiError;
use crate::identity::Caller;
use crate::random::SecureRandom;
use crate::response::Response;
use crate::routing::Route;
use crate::storage::{BoxFuture, KeyStore};
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use std::sync::Arc;

/// Every route this binary knows, across all Firefly functions.
pub static ROUTES: &[Route] = &[registration_keys_post::ROUTE];

/// A handler: takes the request's typed context, returns a response or an [`ApiError`].
pub type Handler = for<'a> fn(Ctx<'a>) -> BoxFuture<'a, Result<Response, ApiError>>;

/// Process-wide clients and sources, built once at start-up and shared by every request.
pub struct Services {
    pub store: Arc<dyn KeyStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn SecureRandom>,
}

/// What a handler gets for one request.
pub struct Ctx<'a> {
    /// The Lambda request id (also in every log line and problem response).
    pub request_id: &'a str,
    /// The authenticated caller; always `Some` on routes with [`crate::routing::Auth::Jwt`].
    pub caller: Option<Caller>,
    /// The settings in force for this request.
    pub settings: Arc<Settings>,
    pub services: &'a Services,
    /// Path parameters by name.
    pub params: Vec<(String, String)>,
    /// The whole event, for handlers that read headers, query or body.
    pub event: &'a ApiGatewayV2httpRequest,
}

impl Ctx<'_> {
    /// The caller, or 401. The dispatcher already refuses JWT routes without one; handlers
    /// ask again so that a route entry mistakenly marked `NONE` still mints nothing for nobody.
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller.as_ref().ok_or(ApiError::Unauthenticated {
            reason: "handler requires a caller",
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
