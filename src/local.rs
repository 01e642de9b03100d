//! `firefly-local invoke`: run one event through the app on this machine, without Lambda.
//!
//! ```text
//! firefly-local invoke [--store memory|dynamodb] [--function NAME] EVENT.json
//! ```
//!
//! Prints the API Gateway response as JSON on stdout and logs on stderr. The event file is a
//! real API Gateway payload 2.0 event (see `events/`). The store is DynamoDB unless
//! `--store memory` (or `FIREFLY_STORE=memory`) says otherwise.

use crate::app::App;
use crate::routes::ROUTES;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use std::collections::HashMap;
use std::process::ExitCode;

pub const USAGE: &str =
    "usage: firefly-local invoke [--store memory|dynamodb] [--function NAME] EVENT.json
  Runs one API Gateway v2 event through the app and prints the response.";

/// Runs the `invoke` subcommand; `args` excludes the program name and `invoke`.
pub async fn invoke(args: &[String]) -> ExitCode {
    let mut overrides: HashMap<&str, String> = HashMap::new();
    let mut event_path = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = |it: &mut std::slice::Iter<'_, String>| it.next().cloned();
        match arg.as_str() {
            "--store" => match value(&mut it) {
                Some(v) => {
                    overrides.insert("FIREFLY_STORE", v);
                }
                None => return usage("--store needs a value"),
            },
            "--function" => match value(&mut it) {
                Some(v) => {
                    overrides.insert("FIREFLY_FUNCTION_NAME", v);
                }
                None => return usage("--function needs a value"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            path if !path.starts_with('-') && event_path.is_none() => {
                event_path = Some(path.to_owned())
            }
            other => return usage(&format!("unexpected argument {other:?}")),
        }
    }
    let Some(event_path) = event_path else {
        return usage("no event file given");
    };
    let text = match std::fs::read_to_string(&event_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bootstrap: cannot read {event_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let event: ApiGatewayV2httpRequest = match serde_json::from_str(&text) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bootstrap: {event_path} is not an API Gateway v2 (HTTP API) event: {e}");
            return ExitCode::from(2);
        }
    };
    // Act as the function that owns the event's route unless told otherwise.
    let owner = event
        .route_key
        .as_deref()
        .and_then(|k| ROUTES.iter().find(|r| r.key == k))
        .or(ROUTES.first())
        .map(|r| r.function.to_owned());
    let env = |name: &str| {
        overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .or_else(|| {
                (name == "FIREFLY_FUNCTION_NAME")
                    .then(|| owner.clone())
                    .flatten()
            })
    };
    let app = match App::from_env(ROUTES, &env) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("bootstrap: {e}");
            return ExitCode::FAILURE;
        }
    };
    let response = app.respond("local-invoke", &event).await.into_lambda();
    match serde_json::to_string_pretty(&response) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bootstrap: cannot print the response: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("bootstrap: {problem}\n{USAGE}");
    ExitCode::from(2)
}
