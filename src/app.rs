//! The application: process-wide state, and the one-way path of an event through it.
//!
//! Generic: it names no feature. It builds the handlers of one function's routes (see
//! [`crate::init`]) and sends each event through the route table, the function guard, the
//! caller check and the handler, to one response.

use crate::clock::{Clock, SystemClock};
use crate::cognito_event::{CognitoCall, Refused};
use crate::deploy::Env;
use crate::endpoint::Built;
use crate::error::{ApiError, StartupError};
use crate::handler::Request;
use crate::identity::Caller;
use crate::init::{Init, Parts, StoreMode};
use crate::random::{SecureRandom, SystemRandom};
use crate::response::Response;
use crate::route::{Kind, Route, Trigger};
use crate::routing::{Resolved, RouteTable, strip_stage};
use crate::s3_event::{Failed, S3Call, S3Event};
use crate::telemetry;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::http::Extensions;
use std::sync::Arc;
use std::time::Instant;

/// Everything a request needs that outlives it. Built once per process.
pub struct App {
    table: RouteTable,
    /// The Lambda function this process is; it serves only that function's routes. `None`
    /// serves every route (a local run of the whole API).
    function: Option<String>,
    /// Built handlers, by route index; `None` for routes of other functions.
    endpoints: Vec<Option<Built>>,
    /// What invokes the function (the kind of its entries; API for a local run of all).
    kind: Kind,
    /// Opens the DynamoDB connection during init, when the function uses DynamoDB.
    warm: crate::aws::Warmups,
}

/// What Lambda says about one invocation besides its event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocation<'a> {
    /// Lambda's request id (`function_request_id` in the logs).
    pub request_id: &'a str,
    /// When Lambda stops the invocation.
    pub deadline: Option<std::time::SystemTime>,
    /// The invocation's X-Ray trace header (`Root=1-...;Parent=...;Sampled=...`).
    pub trace_id: Option<&'a str>,
}

impl Parts {
    /// The real clock and CSPRNG (or, with the `test-hooks` feature, the test's), and the
    /// store mode from `FIREFLY_STORE`.
    pub fn from_env(env: &Env<'_>) -> Result<Self, StartupError> {
        let store_mode = match env(crate::vars::FIREFLY_STORE.name).as_deref() {
            None | Some("") | Some("dynamodb") => StoreMode::DynamoDb,
            // Inside a real Lambda sandbox the memory store would answer 201 for keys
            // stored nowhere. Lambda sets these for every runtime; local emulators such as
            // `cargo lambda watch` do not.
            Some("memory")
                if [
                    crate::vars::AWS_LAMBDA_INITIALIZATION_TYPE.name,
                    crate::vars::LAMBDA_TASK_ROOT.name,
                ]
                .iter()
                .any(|v| env(v).is_some()) =>
            {
                return Err(StartupError(
                    "FIREFLY_STORE=memory inside a Lambda sandbox: keys would be stored nowhere; remove FIREFLY_STORE from the function's environment".into(),
                ));
            }
            Some("memory") => StoreMode::Memory,
            Some(other) => {
                return Err(StartupError(format!(
                    "FIREFLY_STORE={other:?}: expected \"dynamodb\" or \"memory\""
                )));
            }
        };
        let (clock, random) = clock_and_random(env)?;
        Ok(Self {
            clock,
            random,
            store_mode,
            shared: Extensions::new(),
        })
    }
}

impl App {
    /// Builds the app of the function named by `FIREFLY_FUNCTION_NAME`, else
    /// `AWS_LAMBDA_FUNCTION_NAME` (see README's configuration table).
    pub fn from_env(routes: &'static [Route], env: &Env<'_>) -> Result<Self, StartupError> {
        let function = env(crate::vars::FIREFLY_FUNCTION_NAME.name)
            .or_else(|| env(crate::vars::AWS_LAMBDA_FUNCTION_NAME.name))
            .filter(|f| !f.is_empty())
            .ok_or_else(|| StartupError("AWS_LAMBDA_FUNCTION_NAME is not set".into()))?;
        Self::build(routes, Some(&function), Parts::from_env(env)?, env)
    }

    /// Builds the handlers of `function`'s routes (every route for `None`), and nothing
    /// else: another function's needs are never asked for.
    pub fn build(
        routes: &'static [Route],
        function: Option<&str>,
        parts: Parts,
        env: &Env<'_>,
    ) -> Result<Self, StartupError> {
        let serves = |r: &Route| function.is_none_or(|f| r.function == f);
        let table = RouteTable::serving(routes, serves).map_err(|e| StartupError(e.to_string()))?;
        if !routes.iter().any(serves) {
            let mut known: Vec<&str> = routes.iter().map(|r| r.function).collect();
            known.sort_unstable();
            known.dedup();
            return Err(StartupError(format!(
                "function {} serves no route in the table (known functions: {}); set FIREFLY_FUNCTION_NAME to one of them for local runs",
                function.unwrap_or("-"),
                known.join(", ")
            )));
        };
        // One kind per function: its deployment (an API integration, or a permission for S3)
        // and the event main hands it follow from it.
        let mut kinds: Vec<Kind> = routes
            .iter()
            .filter(|r| serves(r))
            .map(Route::kind)
            .collect();
        kinds.dedup();
        let kind = match (function, kinds.as_slice()) {
            (None, _) => Kind::Api,
            (Some(_), [one]) => *one,
            (Some(f), _) => {
                return Err(StartupError(format!(
                    "function {f} mixes kinds of entries (API routes and S3 notifications): a function is one kind"
                )));
            }
        };
        let mut parts = parts;
        let mut endpoints = Vec::with_capacity(routes.len());
        for route in routes {
            endpoints.push(if serves(route) {
                let mut init = Init::new(env, route.key, route.uses, &mut parts);
                Some((route.endpoint.build)(&mut init)?)
            } else {
                None
            });
        }
        let warm = parts
            .shared
            .remove::<crate::aws::Warmups>()
            .unwrap_or_default();
        Ok(Self {
            table,
            function: function.map(str::to_owned),
            endpoints,
            kind,
            warm,
        })
    }

    /// Opens the function's connections, one per AWS endpoint, at once and without a
    /// request (nothing is sent, so no permission is needed), so the first request pays no
    /// DNS, TCP or TLS. Call it during init.
    pub async fn warm_up(&self) {
        self.warm.run().await;
    }

    /// The function this process serves (`firefly-local` when it serves them all).
    pub fn function(&self) -> &str {
        self.function.as_deref().unwrap_or("firefly-local")
    }

    /// What invokes this function (main parses its events accordingly).
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The routes this process serves.
    pub fn routes(&self) -> impl Iterator<Item = &'static Route> + '_ {
        self.table
            .routes()
            .iter()
            .zip(&self.endpoints)
            .filter(|(_, e)| e.is_some())
            .map(|(r, _)| r)
    }

    /// The Lambda entry point: one event in, one API Gateway response out.
    pub async fn handle(
        &self,
        invocation: &Invocation<'_>,
        event: &ApiGatewayV2httpRequest,
    ) -> ApiGatewayV2httpResponse {
        self.respond_to(invocation, event).await.into_lambda()
    }

    /// [`App::respond_to`] without a deadline or a trace (tests, local runs).
    pub async fn respond(&self, request_id: &str, event: &ApiGatewayV2httpRequest) -> Response {
        let invocation = Invocation {
            request_id,
            ..Default::default()
        };
        self.respond_to(&invocation, event).await
    }

    /// Routes, guards, authenticates, runs the handler and maps its result; logs one line.
    pub async fn respond_to(
        &self,
        invocation: &Invocation<'_>,
        event: &ApiGatewayV2httpRequest,
    ) -> Response {
        let started = Instant::now();
        let request_id = invocation.request_id;
        let route_key = event.route_key.as_deref().unwrap_or("$default");
        // API Gateway's request id: what a caller can quote, and what its access log shows.
        let correlation_id = event.request_context.request_id.as_deref().unwrap_or("-");
        let context = telemetry::RequestContext::new(
            self.function(),
            request_id,
            correlation_id,
            invocation.trace_id,
            route_key,
        );
        let work = async {
            let result = self.dispatch(invocation, route_key, event).await;
            let latency_us = started.elapsed().as_micros() as u64;
            // Who API Gateway's authorizer says is calling, for the log line only.
            let caller = Caller::from_context(&event.request_context).ok();
            let user_id = caller.as_ref().map_or("-", |c| c.user_id.as_str());
            match result {
                Ok(response) => {
                    tracing::info!(
                        status = response.status.as_u16(),
                        user_id,
                        latency_us,
                        "request completed"
                    );
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
                        _ => {
                            tracing::info!(status, user_id, latency_us, error = %error, "request refused")
                        }
                    }
                    error.into_response()
                }
            }
        };
        let response = telemetry::in_request(Arc::clone(&context), work).await;
        telemetry::emit_request_metrics(&context, response.status.as_u16(), started.elapsed());
        response
    }

    async fn dispatch(
        &self,
        invocation: &Invocation<'_>,
        route_key: &str,
        event: &ApiGatewayV2httpRequest,
    ) -> Result<Response, ApiError> {
        let ctx = &event.request_context;
        let raw_path = strip_stage(
            event.raw_path.as_deref().unwrap_or("/"),
            ctx.stage.as_deref(),
        );
        let (route, index, params) =
            match self
                .table
                .resolve(route_key, ctx.http.method.as_str(), raw_path, || {
                    event
                        .path_parameters
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }) {
                Resolved::Found {
                    route,
                    index,
                    params,
                } => (route, index, params),
                Resolved::MethodNotAllowed(allow) => {
                    return Err(ApiError::MethodNotAllowed { allow });
                }
                Resolved::NotFound => return Err(ApiError::NotFound),
                Resolved::Elsewhere(route) => return Err(self.misrouted(route)),
            };
        let Some(Built::Http(handler)) = &self.endpoints[index] else {
            return Err(self.misrouted(route));
        };
        telemetry::set_route(route.key, route.function);
        let req = Request {
            request_id: invocation.request_id,
            params,
            event,
            deadline: invocation.deadline,
        };
        handler.call(&req).await
    }

    /// `function`'s entry of one kind, as `pick` takes it from the built handler and the
    /// entry's trigger (a function that is not an API call has one entry).
    fn entry_of<'a, T>(
        &'a self,
        function: &str,
        pick: impl Fn(&'a Built, Trigger) -> Option<T>,
    ) -> Option<(&'static Route, T)> {
        self.table
            .routes()
            .iter()
            .zip(&self.endpoints)
            .filter(|(r, _)| r.function == function)
            .find_map(|(r, e)| Some((r, pick(e.as_ref()?, r.trigger())?)))
    }

    /// The entry point of an S3 function: every record of `event` to `function`'s handler
    /// (this process's own function on Lambda; any S3 function of a local run). `Err`:
    /// Lambda retries the invocation. Logs one line, and the invocation's metrics.
    pub async fn handle_s3(
        &self,
        function: &str,
        invocation: &Invocation<'_>,
        event: &S3Event,
    ) -> Result<(), Failed> {
        let started = Instant::now();
        let found = self.entry_of(function, |built, _| match built {
            Built::S3(h) => Some(h),
            _ => None,
        });
        let Some((entry, handler)) = found else {
            tracing::error!(
                function,
                this_function = self.function(),
                "an S3 event for a function this process does not serve as an S3 function"
            );
            return Err(Failed(format!("{function} is not an S3 function here")));
        };
        // S3's own name for the write that caused the first record: what an operator finds
        // in CloudTrail (records of one event share a bucket, seldom a key).
        let first = event.records.first();
        let correlation_id = first
            .and_then(|r| r.s3.object.sequencer.as_deref())
            .unwrap_or("-");
        let context = telemetry::RequestContext::new(
            function,
            invocation.request_id,
            correlation_id,
            invocation.trace_id,
            entry.key,
        );
        let work = async {
            telemetry::set_route(entry.key, entry.function);
            let call = S3Call {
                request_id: invocation.request_id,
                deadline: invocation.deadline,
                event,
            };
            let result = handler.call(&call).await;
            let latency_us = started.elapsed().as_micros() as u64;
            let records = event.records.len();
            match &result {
                Ok(()) => tracing::info!(records, latency_us, "event handled"),
                Err(e) => {
                    tracing::error!(records, latency_us, error = %e, "event failed: Lambda retries it")
                }
            }
            result
        };
        let result = telemetry::in_request(Arc::clone(&context), work).await;
        // The request metrics' status: 200 handled, 500 failed (retried).
        let status = if result.is_ok() { 200 } else { 500 };
        telemetry::emit_request_metrics(&context, status, started.elapsed());
        result
    }

    /// The entry point of a Cognito trigger: the event to `function`'s handler. `Ok`: the
    /// event to give back; `Err`: the message Cognito shows. Logs one line (without the
    /// person's attributes) and the invocation's metrics.
    pub async fn handle_cognito(
        &self,
        function: &str,
        invocation: &Invocation<'_>,
        event: &serde_json::Value,
    ) -> Result<serde_json::Value, Refused> {
        let started = Instant::now();
        let found = self.entry_of(function, |built, trigger| match (built, trigger) {
            (Built::Cognito(h), Trigger::Cognito(t)) => Some((h, t)),
            _ => None,
        });
        let Some((entry, (handler, trigger))) = found else {
            tracing::error!(
                function,
                this_function = self.function(),
                "a Cognito event for a function this process does not serve as a Cognito trigger"
            );
            return Err(Refused::new(crate::cognito_event::UNAVAILABLE));
        };
        let source = event
            .get("triggerSource")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-");
        let context = telemetry::RequestContext::new(
            function,
            invocation.request_id,
            // Cognito's own id of the call is not sent: the pool's name for the source.
            source,
            invocation.trace_id,
            entry.key,
        );
        let work = async {
            telemetry::set_route(entry.key, entry.function);
            let call = CognitoCall {
                request_id: invocation.request_id,
                deadline: invocation.deadline,
                limit: crate::cognito_event::limit_from_now(trigger.limit_ms),
                event,
            };
            let result = handler.call(&call).await;
            let latency_us = started.elapsed().as_micros() as u64;
            match &result {
                Ok(_) => tracing::info!(trigger_source = source, latency_us, "trigger allowed"),
                Err(e) => {
                    tracing::info!(trigger_source = source, latency_us, reason = %e, "trigger refused")
                }
            }
            result
        };
        let result = telemetry::in_request(Arc::clone(&context), work).await;
        // A refusal is the trigger's answer, not a failure of the function: 403.
        let status = if result.is_ok() { 200 } else { 403 };
        telemetry::emit_request_metrics(&context, status, started.elapsed());
        result
    }

    /// API Gateway sent us another function's route: a wiring mistake in a template.
    fn misrouted(&self, route: &Route) -> ApiError {
        tracing::error!(
            route = route.key,
            owner = route.function,
            this_function = self.function(),
            "misrouted event: this route belongs to another function; check the API Gateway integration"
        );
        ApiError::NotFound
    }
}

type ClockAndRandom = (Arc<dyn Clock>, Arc<dyn SecureRandom>);

#[cfg(not(feature = "test-hooks"))]
fn clock_and_random(_env: &Env<'_>) -> Result<ClockAndRandom, StartupError> {
    Ok((Arc::new(SystemClock), Arc::new(SystemRandom)))
}

#[cfg(feature = "test-hooks")]
fn clock_and_random(env: &Env<'_>) -> Result<ClockAndRandom, StartupError> {
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
    use crate::handler::HandlerResult;
    use crate::routes::ROUTES;

    async fn teapot(_: ()) -> HandlerResult {
        Ok(Response::json(
            lambda_http::http::StatusCode::IM_A_TEAPOT,
            &"tea",
        ))
    }

    static THREE_FUNCTIONS: [Route; 3] = [
        crate::registration_keys::post::ROUTE,
        crate::registration_keys::delete::ROUTE,
        Route {
            key: "GET /tea",
            function: "firefly-func-api-tea-get",
            summary: "tea",
            uses: &[],
            answers: &[],
            scopes: &[],
            params: &[],
            headers: &[],
            alarms: &[],
            reserved_concurrency: None,
            timeout_s: None,
            request: None,
            endpoint: crate::endpoint!(teapot),
        },
    ];

    fn parts() -> Parts {
        Parts {
            clock: Arc::new(FixedClock(0)),
            random: Arc::new(SystemRandom),
            store_mode: StoreMode::Memory,
            shared: Extensions::new(),
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn app(function: Option<&str>) -> App {
        App::build(&THREE_FUNCTIONS, function, parts(), &no_env).unwrap()
    }

    fn event(route_key: &str) -> ApiGatewayV2httpRequest {
        let mut e: ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("../events/registration-keys-post.json")).unwrap();
        e.route_key = Some(route_key.into());
        e
    }

    async fn status(app: &App, e: &ApiGatewayV2httpRequest) -> u16 {
        app.respond("r", e).await.status.as_u16()
    }

    #[tokio::test]
    async fn a_function_serves_only_its_own_routes() {
        let tea = app(Some("firefly-func-api-tea-get"));
        assert_eq!(status(&tea, &event("GET /tea")).await, 418);
        assert_eq!(status(&tea, &event("POST /registration-keys")).await, 404);

        let keys = app(Some("firefly-func-api-registration-keys-post"));
        assert_eq!(status(&keys, &event("GET /tea")).await, 404);
        assert_eq!(status(&keys, &event("POST /registration-keys")).await, 201);
        let mut revoke = event("DELETE /registration-keys/{registrationKey}");
        revoke
            .path_parameters
            .insert("registrationKey".into(), "7KQ2MX".into());
        assert_eq!(status(&keys, &revoke).await, 404);
        assert_eq!(
            keys.routes().map(|r| r.key).collect::<Vec<_>>(),
            ["POST /registration-keys"]
        );
    }

    #[tokio::test]
    async fn every_function_in_one_process_shares_one_store() {
        let all = app(None);
        assert_eq!(all.routes().count(), 3);
        let minted = all.respond("r", &event("POST /registration-keys")).await;
        let body: serde_json::Value = serde_json::from_str(&minted.body).unwrap();
        let key = body["key"].as_str().unwrap();
        let mut revoke = event("DELETE /registration-keys/{registrationKey}");
        revoke
            .path_parameters
            .insert("registrationKey".into(), key.to_ascii_lowercase());
        assert_eq!(status(&all, &revoke).await, 204);
        assert_eq!(status(&all, &revoke).await, 404);
    }

    #[tokio::test]
    async fn jwt_handlers_never_run_without_a_caller() {
        let all = app(None);
        let mut e = event("POST /registration-keys");
        e.request_context.authorizer = None;
        let r = all.respond("r", &e).await;
        assert_eq!(r.status.as_u16(), 401);
        // The teapot has no authorizer and needs none.
        let mut e = event("GET /tea");
        e.request_context.authorizer = None;
        assert_eq!(status(&all, &e).await, 418);
    }

    #[test]
    fn a_function_builds_only_what_its_routes_need() {
        // The tea function uses nothing: it starts with no environment at all, even in the
        // DynamoDB store mode that the registration-key routes would need a table for.
        let mut p = parts();
        p.store_mode = StoreMode::DynamoDb;
        assert!(
            App::build(
                &THREE_FUNCTIONS,
                Some("firefly-func-api-tea-get"),
                p,
                &no_env
            )
            .is_ok()
        );
        let mut p = parts();
        p.store_mode = StoreMode::DynamoDb;
        let err = App::build(
            &THREE_FUNCTIONS,
            Some("firefly-func-api-registration-keys-delete"),
            p,
            &no_env,
        )
        .err()
        .unwrap();
        assert_eq!(
            err.0,
            "route DELETE /registration-keys/{registrationKey}: needs DYNAMODB_REGISTRATION_KEYS_TABLE_NAME, which is not set"
        );
    }

    #[test]
    fn the_memory_store_is_refused_inside_a_lambda_sandbox() {
        let local = |k: &str| (k == "FIREFLY_STORE").then(|| "memory".to_string());
        assert_eq!(
            Parts::from_env(&local).unwrap().store_mode,
            StoreMode::Memory
        );
        for sandbox in ["AWS_LAMBDA_INITIALIZATION_TYPE", "LAMBDA_TASK_ROOT"] {
            let env = |k: &str| match k {
                "FIREFLY_STORE" => Some("memory".to_string()),
                k if k == sandbox => Some("on-demand".to_string()),
                _ => None,
            };
            let err = Parts::from_env(&env).err().expect("refused");
            assert!(err.0.contains("inside a Lambda sandbox"), "{err}");
        }
    }

    #[test]
    fn unknown_functions_are_refused_with_the_known_ones() {
        let err = App::build(&THREE_FUNCTIONS, Some("nope"), parts(), &no_env)
            .err()
            .unwrap();
        assert!(err.0.contains("serves no route"), "{err}");
        assert!(err.0.contains("firefly-func-api-tea-get"), "{err}");
    }

    #[test]
    fn every_route_in_the_table_builds() {
        // Each handler asks only for what its route declares (Init refuses the rest).
        let app = App::build(ROUTES, None, parts(), &no_env).unwrap();
        assert_eq!(app.routes().count(), ROUTES.len());
    }

    #[tokio::test]
    async fn every_route_has_an_event_that_reaches_its_handler() {
        // events/<slug>.json for every route of the table: its route key, and through the
        // whole app (memory store) one of the route's own answers, never the dispatcher's.
        let app = App::build(ROUTES, None, parts(), &no_env).unwrap();
        for route in ROUTES {
            let path = format!(
                "{}/events/{}.json",
                env!("CARGO_MANIFEST_DIR"),
                route.slug()
            );
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: no example event at {path}: {e}", route.key));
            if route.kind() == Kind::S3 {
                // An S3 function's example is a notification its own trigger matches.
                let event: S3Event = serde_json::from_str(&text).unwrap();
                let crate::route::Trigger::S3(n) = route.trigger() else {
                    unreachable!("an S3 kind has an S3 trigger")
                };
                for r in &event.records {
                    let notice = crate::s3_event::Notice::from(r);
                    assert!(n.matches(&notice.event, &notice.key), "{path}");
                }
                let invocation = Invocation::default();
                app.handle_s3(route.function, &invocation, &event)
                    .await
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                continue;
            }
            if route.kind() == Kind::Cognito {
                // A trigger's example is the event its pool sends; an administrator's user
                // is admitted whatever the invitations.
                let event: serde_json::Value = serde_json::from_str(&text).unwrap();
                let invocation = Invocation::default();
                let answer = app
                    .handle_cognito(route.function, &invocation, &event)
                    .await
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(answer["response"]["autoConfirmUser"], true, "{path}");
                continue;
            }
            let event: ApiGatewayV2httpRequest = serde_json::from_str(&text).unwrap();
            assert_eq!(event.route_key.as_deref(), Some(route.key), "{path}");
            let status = status(&app, &event).await;
            assert!(
                route.answers.iter().any(|a| a.status == status),
                "{}: its event answered {status}, not one of its documented answers",
                route.key
            );
        }
    }
}
