//! Firefly API: one Lambda binary that serves every Firefly HTTP route.
//!
//! An API Gateway (HTTP API, payload 2.0) event flows one way through this crate:
//!
//! 1. [`app::App::handle`] receives the event from the Lambda runtime;
//! 2. [`routing`] finds the route by its route key (or, for `$default`, by method and path);
//! 3. the function guard refuses routes that belong to another Lambda function;
//! 4. the route's handler, an async function, gets its arguments from [`handler`]'s
//!    extractors (the caller from the JWT claims, the path, the body...) and returns
//!    `Result<Response, ApiError>`;
//! 5. [`error`] maps every failure to FireFly's `{"message": ...}` response.
//!
//! Layout: generic modules ([`app`], [`route`], [`handler`], [`routing`], [`init`],
//! [`deploy`], [`error`], [`identity`], [`config`], [`telemetry`]) name no feature; [`aws`] is the AWS plumbing
//! features share; each feature is one folder ([`registration_keys`]); [`routes`] is the
//! table. Process-wide state is built once in [`app::App::from_env`], never per request,
//! and only what the function's own routes need.

pub mod app;
pub mod aws;
pub mod backups;
pub mod clock;
pub mod cognito_event;
pub mod config;
pub mod deploy;
pub mod devices;
pub mod endpoint;
pub mod error;
pub mod firmware;
#[cfg(feature = "test-hooks")]
pub mod fuzzing;
#[cfg(feature = "tools")]
pub mod generate;
pub mod handler;
pub mod health;
pub mod identity;
pub mod init;
#[cfg(feature = "tools")]
pub mod local;
#[cfg(feature = "tools")]
pub mod local_api;
pub mod log_levels;
pub mod random;
pub mod registration_keys;
pub mod response;
pub mod route;
pub mod routes;
pub mod routing;
pub mod s3_event;
pub mod sync;
#[doc(hidden)]
pub mod synthetic;
pub mod telemetry;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod users;
pub mod vars;
