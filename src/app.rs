//! The application: process-wide state, and the one-way path of an event through it.

use crate::clock::{Clock, SystemClock};
use crate::config::ConfigSource;
use crate::error::ApiError;
use crate::handlers::{Ctx, ROUTES, Services};
use crate::identity::Caller;
use crate::random::{SecureRandom, SystemRandom};
use crate::response::Response;
use crate::routing::{Auth, Resolved, Route, RouteTable, strip_stage};
use crate::storage::{DynamoKeyStore, KeyStore, MemoryKeyStore};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Everything a request needs that outlives it. Built once per process.
pub struct App {
    table: RouteTable,
    /// The Lambda function this process is; it serves only that function's routes.
    function: String,
    config: ConfigSource,
    services: Services,
}

/// A start-up failure: the process logs it and exits, and Lambda reports the init error.
#[derive(Debug)]
pub struct StartupError(pub String);

impl fmt::Display for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartupError {}

/// Which key store to use. DynamoDB unless the memory store is asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    DynamoDb,
    Memory,
}

impl App {
    /// Builds the app from the environment (see README's configuration table).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, StartupError> {
        let err = |m: String| StartupError(m);
        let table = RouteTable::new(ROUTES).map_err(|e| err(e.to_string()))?;
        let function = env("FIREFLY_FUNCTION_NAME")
            .or_else(|| env("AWS_LAMBDA_FUNCTION_NAME"))
            .filter(|f| !f.is_empty())
            .ok_or_else(|| err("AWS_LAMBDA_FUNCTION_NAME is not set".into()))?;
        if !table.routes().iter().any(|r| r.function == function) {
            let mut known: Vec<&str> = table.routes().iter().map(|r| r.function).collect();
            known.dedup();
            return Err(err(format!(
                "function {function} serves no route in the table (known functions: {}); set FIREFLY_FUNCTION_NAME to one of them for local runs",
                known.join(", ")
            )));
        }
        let store_kind = match env("FIREFLY_STORE").as_deref() {
            None | Some("") | Some("dynamodb") => StoreKind::DynamoDb,
            Some("memory") => StoreKind::Memory,
            Some(other) => {
                return Err(err(format!(
                    "FIREFLY_STORE={other:?}: expected \"dynamodb\" or \"memory\""
                )));
            }
        };
        let store: Arc<dyn KeyStore> = match store_kind {
            StoreKind::Memory => Arc::new(MemoryKeyStore::new()),
            StoreKind::DynamoDb => {
                let table_name = env("REGISTRATION_KEYS_TABLE")
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        err("REGISTRATION_KEYS_TABLE is not set (for a local run without DynamoDB, set FIREFLY_STORE=memory)".into())
                    })?;
                let client = DynamoKeyStore::client_from_env(env).map_err(err)?;
                Arc::new(DynamoKeyStore::new(client, table_name))
            }
        };
        let config = ConfigSource::from_env(env).map_err(|e| err(e.to_string()))?;
        let (clock, random) = clock_and_random(env)?;
        Ok(Self {
            table,
            function,
            config,
            services: Services {
                store,
                clock,
                random,
            },
        })
    }

    /// Builds an app from parts (tests, benches): `routes` is normally [`ROUTES`].
    pub fn new(
        routes: &'static [Route],
        function: impl Into<String>,
        config: ConfigSource,
        services: Services,
    ) -> Result<Self, StartupError> {
        Ok(Self {
            table: RouteTable::new(routes).map_err(|e| StartupError(e.to_string()))?,
            function: function.into(),
            config,
            services,
        })
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// The Lambda entry point: one event in, one API Gateway response out.
    pub async fn handle(
        &self,
        request_id: &str,
        event: &ApiGatewayV2httpRequest,
    ) -> ApiGatewayV2httpResponse {
        self.respond(request_id, event).await.into_lambda()
    }

    /// Routes, guards, authenticates, runs the handler and maps its result; logs one line.
    pub async fn respond(&self, request_id: &str, event: &ApiGatewayV2httpRequest) -> Response {
        let started = Instant::now();
        let route_key = event.route_key.as_deref().unwrap_or("$default");
        let span = tracing::info_span!("request", request_id, route_key);
        async {
            let mut user_id: Option<String> = None;
            let result = self.dispatch(request_id, route_key, event, &mut user_id).await;
            let latency_us = started.elapsed().as_micros() as u64;
            let user_id = user_id.as_deref().unwrap_or("-");
            match result {
                Ok(response) => {
                    tracing::info!(status = response.status.as_u16(), user_id, latency_us, "request completed");
                    response
                }
                Err(error) => {
                    let status = error.status().as_u16();
                    match &error {
                        ApiError::Internal { .. } => {
                            tracing::error!(status, user_id, latency_us, error = %error, "request failed")
                        }
                        ApiError::Unavailable { .. } | ApiError::Disabled => {
                            tracing::warn!(status, user_id, latency_us, error = %error, "request failed")
                        }
                        _ => tracing::info!(status, user_id, latency_us, error = %error, "request refused"),
                    }
                    error.into_response(request_id)
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn dispatch(
        &self,
        request_id: &str,
        route_key: &str,
        event: &ApiGatewayV2httpRequest,
        user_id: &mut Option<String>,
    ) -> Result<Response, ApiError> {
        let ctx = &event.request_context;
        let raw_path = strip_stage(
            event.raw_path.as_deref().unwrap_or("/"),
            ctx.stage.as_deref(),
        );
        let (route, params) =
            match self
                .table
                .resolve(route_key, ctx.http.method.as_str(), raw_path, || {
                    event
                        .path_parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }) {
                Resolved::Found { route, params } => (route, params),
                Resolved::MethodNotAllowed(allow) => {
                    return Err(ApiError::MethodNotAllowed { allow });
                }
                Resolved::NotFound => return Err(ApiError::NotFound),
            };
        if route.function != self.function {
            // API Gateway sent us another function's route: a wiring mistake in a template.
            tracing::error!(
                route = route.key,
                owner = route.function,
                this_function = %self.function,
                "misrouted event: this route belongs to another function; check the API Gateway integration"
            );
            return Err(ApiError::NotFound);
        }
        let caller = match route.auth {
            Auth::Jwt => {
                let caller = Caller::from_context(ctx)
                    .map_err(|e| ApiError::Unauthenticated { reason: e.reason() })?;
                *user_id = Some(caller.user_id.clone());
                Some(caller)
            }
            Auth::None => None,
        };
        let settings = self.config.current().await;
        (route.run)(Ctx {
            request_id,
            caller,
            settings,
            services: &self.services,
            params,
            event,
        })
        .await
    }
}

type ClockAndRandom = (Arc<dyn Clock>, Arc<dyn SecureRandom>);

#[cfg(not(feature = "test-hooks"))]
fn clock_and_random(_env: &dyn Fn(&str) -> Option<String>) -> Result<ClockAndRandom, StartupError> {
    Ok((Arc::new(SystemClock), Arc::new(SystemRandom)))
}

#[cfg(feature = "test-hooks")]
fn clock_and_random(env: &dyn Fn(&str) -> Option<String>) -> Result<ClockAndRandom, StartupError> {
    let clock = crate::test_hooks::clock(env).map_err(StartupError)?;
    let random = crate::test_hooks::random(env).map_err(StartupError)?;
    Ok((
        clock.unwrap_or_else(|| Arc::new(SystemClock)),
        random.unwrap_or_else(|| Arc::new(SystemRandom)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::config::Settings;
    use crate::handlers::registration_keys_post;
    use crate::routing::Route;
    use crate::storage::BoxFuture;

    fn teapot(_: Ctx<'_>) -> BoxFuture<'_, Result<Response, ApiError>> {
        Box::pin(async {
            Ok(Response::json(
                lambda_http::http::StatusCode::IM_A_TEAPOT,
                &"tea",
            ))
        })
    }

    static TWO_FUNCTIONS: [Route; 2] = [
        registration_keys_post::ROUTE,
        Route {
            key: "GET /tea",
            handler: "teapot",
            function: "firefly-func-api-tea-get",
            auth: Auth::None,
            iam_actions: &[],
            run: teapot,
        },
    ];

    fn app(function: &str) -> App {
        App::new(
            &TWO_FUNCTIONS,
            function,
            ConfigSource::Defaults(Arc::new(Settings::default())),
            Services {
                store: Arc::new(MemoryKeyStore::new()),
                clock: Arc::new(FixedClock(0)),
                random: Arc::new(SystemRandom),
            },
        )
        .unwrap()
    }

    fn event(route_key: &str) -> ApiGatewayV2httpRequest {
        let mut e: ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("../events/registration-keys-post.json")).unwrap();
        e.route_key = Some(route_key.into());
        e
    }

    #[tokio::test]
    async fn a_function_serves_only_its_own_routes() {
        let tea = app("firefly-func-api-tea-get");
        assert_eq!(
            tea.respond("r", &event("GET /tea")).await.status.as_u16(),
            418
        );
        let misrouted = tea.respond("r", &event("POST /registration-keys")).await;
        assert_eq!(misrouted.status.as_u16(), 404);

        let keys = app("firefly-func-api-registration-keys-post");
        assert_eq!(
            keys.respond("r", &event("GET /tea")).await.status.as_u16(),
            404
        );
        let minted = keys.respond("r", &event("POST /registration-keys")).await;
        assert_eq!(minted.status.as_u16(), 201);
    }
}
