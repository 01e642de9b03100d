//! Firefly API: one Lambda binary that serves every Firefly HTTP route.
//!
//! An API Gateway (HTTP API, payload 2.0) event flows one way through this crate:
//!
//! 1. [`app::App::handle`] receives the event from the Lambda runtime;
//! 2. [`routing`] finds the route by its route key (or, for `$default`, by method and path);
//! 3. the function guard refuses routes that belong to another Lambda function;
//! 4. [`identity`] reads the caller from the JWT authorizer's claims;
//! 5. the route's handler (one folder per handler under [`handlers`]) runs with a typed
//!    [`handlers::Ctx`] and returns `Result<Response, ApiError>`;
//! 6. [`error`] maps every failure to one RFC 9457 problem response.
//!
//! Process-wide state (AWS clients, configuration source, route table) is built once in
//! [`app::App::from_env`], never per request.

pub mod app;
pub mod clock;
pub mod config;
pub mod error;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
pub mod handlers;
pub mod identity;
pub mod local;
pub mod random;
pub mod response;
pub mod routing;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
