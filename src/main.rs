//! `bootstrap`: the Lambda custom runtime (`provided.al2023`) for every Firefly function.
//! See the library docs for how an event flows; this file only wires the process up.

use firefly_api::app::{App, Invocation};
use firefly_api::{config, telemetry};

/// The Lambda binary takes no command: the laptop tools are `firefly-local`'s.
const USAGE: &str = "usage: bootstrap
  Runs as a Lambda custom runtime (it needs AWS_LAMBDA_RUNTIME_API). To run one event on
  this machine: `cargo run --features tools --bin firefly-local -- invoke EVENT.json`.";
use firefly_api::route::Kind;
use firefly_api::s3_event::S3Event;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // One event at a time per sandbox: the current-thread runtime is all Lambda needs, and
    // starts no worker threads during init.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bootstrap: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let namespace = match telemetry::namespace_from_env(&env) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("bootstrap: {e}");
            return ExitCode::from(2);
        }
    };
    // FireFly's console sets each function's level in its AppConfig `logging` profile
    // (read once, at start-up, as FireFly's functions read it); without APP_CONFIG_ENV,
    // Lambda's AWS_LAMBDA_LOG_LEVEL or RUST_LOG.
    let level = match runtime.block_on(config::logging_level(&env)) {
        Ok(Some(python)) => telemetry::level_from_python(python),
        Ok(None) => telemetry::level_from_env(&env),
        Err(e) => {
            eprintln!("bootstrap: {e}");
            return ExitCode::from(2);
        }
    };
    let logger = env(firefly_api::vars::FIREFLY_FUNCTION_NAME.name)
        .or_else(|| env(firefly_api::vars::AWS_LAMBDA_FUNCTION_NAME.name))
        .unwrap_or_else(|| "bootstrap".into());
    match args.first().map(String::as_str) {
        None => {
            telemetry::init(level, telemetry::Output::Stdout, &namespace, &logger);
            runtime.block_on(serve(&env))
        }
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("bootstrap: unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

async fn serve(env: &firefly_api::deploy::Env<'_>) -> ExitCode {
    // lambda_runtime panics without these; say what is missing instead.
    for required in [
        firefly_api::vars::AWS_LAMBDA_RUNTIME_API.name,
        firefly_api::vars::AWS_LAMBDA_FUNCTION_NAME.name,
        firefly_api::vars::AWS_LAMBDA_FUNCTION_VERSION.name,
        firefly_api::vars::AWS_LAMBDA_FUNCTION_MEMORY_SIZE.name,
    ] {
        if env(required).is_none() {
            tracing::error!(
                variable = required,
                "not running under a Lambda Runtime API: {required} is not set (for a local run, use `firefly-local invoke EVENT.json`)"
            );
            return ExitCode::from(2);
        }
    }
    // The route-cost bench builds a second binary with 50 more routes (README, What a route
    // costs); every other build serves exactly the table.
    #[cfg(feature = "synthetic-routes")]
    let routes = firefly_api::synthetic::table();
    #[cfg(not(feature = "synthetic-routes"))]
    let routes = firefly_api::routes::ROUTES;
    let app = match App::from_env(routes, env) {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    app.warm_up().await;
    let routes: Vec<&str> = app.routes().map(|r| r.key).collect();
    tracing::info!(function = app.function(), routes = ?routes, "ready");
    // The app is borrowed by every invocation (the runtime's shared-resource example):
    // `run` returns only when the process ends.
    let app = &app;
    // The runtime hands over the payload as raw JSON and we parse the event ourselves: its
    // own parser tracks the path of every field (serde_path_to_error), which, instantiated
    // for the whole event type, costs about 40 KiB of binary for an error message.
    // The function's kind, as deployed (the table declares it), decides how a payload is
    // read: nothing is guessed from the payload itself.
    let kind = app.kind();
    let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
        let ctx = &event.context;
        let invocation = Invocation {
            request_id: &ctx.request_id,
            deadline: Some(ctx.deadline()),
            trace_id: ctx.xray_trace_id.as_deref(),
        };
        match kind {
            Kind::Api => {
                let payload: ApiGatewayV2httpRequest = serde_json::from_str(event.payload.get())
                    .map_err(|e| {
                        tracing::error!(error = %e, "the event is not an API Gateway HTTP API (payload 2.0) event");
                        lambda_runtime::Error::from(format!("not an API Gateway v2 event: {e}"))
                    })?;
                let response = app.handle(&invocation, &payload).await;
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?)
            }
            Kind::S3 => {
                let payload: S3Event = serde_json::from_str(event.payload.get()).map_err(|e| {
                    tracing::error!(error = %e, "the event is not an S3 notification");
                    lambda_runtime::Error::from(format!("not an S3 notification: {e}"))
                })?;
                app.handle_s3(app.function(), &invocation, &payload).await?;
                Ok(serde_json::Value::Null)
            }
            Kind::Cognito => {
                let payload: serde_json::Value = serde_json::from_str(event.payload.get())
                    .map_err(|e| {
                        tracing::error!(error = %e, "the event is not JSON");
                        lambda_runtime::Error::from(format!("not a Cognito trigger event: {e}"))
                    })?;
                // A refusal's message is what Cognito shows the person signing up.
                app.handle_cognito(app.function(), &invocation, &payload)
                    .await
                    .map_err(|refused| lambda_runtime::Error::from(refused.message))
            }
        }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the Lambda runtime loop stopped");
            ExitCode::FAILURE
        }
    }
}
