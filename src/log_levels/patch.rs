//! `PATCH /appconfig/{function_name}`: FireFly's `func-api-appconfig-patch`, the page's
//! level picker: `{"logging": LEVEL}` becomes the profile's next version (not deployed:
//! [`super::deploy`] does that). The application, its environment and its profile are
//! made when missing.
//!
//! Better than FireFly's: only `logging` is stored (FireFly stored any other key of the
//! body, unchecked); a body of the wrong JSON type is a 400, not a 500; "not found" means
//! Lambda said so (FireFly counted any failure as not found).

use super::{
    FUNCTION_PARAM, FunctionName, LEVELS, Levels, failed, on_applications, on_functions, outside,
    plausible,
};
use crate::deploy::READS_APPCONFIG;
use crate::handler::{Body, Deadline, HandlerResult, Path};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

const FUNCTION: &str = "firefly-func-api-appconfig-patch";

pub const ROUTE: Route = Route {
    key: "PATCH /appconfig/{function_name}",
    function: FUNCTION,
    summary: "Stage a function's log level in AppConfig (deployed by POST .../deploy)",
    uses: &[
        on_applications(&[
            "appconfig:ListApplications",
            "appconfig:ListEnvironments",
            "appconfig:ListConfigurationProfiles",
            "appconfig:CreateApplication",
            "appconfig:CreateEnvironment",
            "appconfig:CreateConfigurationProfile",
            "appconfig:CreateHostedConfigurationVersion",
            "appconfig:DeleteApplication",
        ]),
        on_functions(&["lambda:GetFunction"]),
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Staged as the profile's next version",
            schema: Some(
                r#"{"title": "LevelStaged", "type": "object", "required": ["name", "logging", "version"], "properties": {"name": {"type": "string"}, "logging": {"type": "string"}, "version": {"type": "integer"}}}"#,
            ),
            example: Some(
                r#"{"name":"firefly-func-api-health-get","logging":"DEBUG","version":4}"#,
            ),
        },
        Answer::new(
            400,
            "Function name must start with 'firefly-func-'; Invalid JSON body; Missing required field: logging; Invalid log level 'X'; must be one of [...]",
        ),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        Answer::new(404, "Lambda function '<function_name>' not found"),
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[FUNCTION_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: Some(30),
    request: Some(
        r#"{"type": "object", "required": ["logging"], "properties": {"logging": {"type": "string", "enum": ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]}}}"#,
    ),
    endpoint: crate::endpoint!(patch, Levels::build),
};

/// The handler. FireFly's order: the name, the function, then the body.
pub async fn patch(
    levels: Levels,
    deadline: Deadline,
    _: SuperUser,
    Path(FunctionName(name)): Path<FunctionName>,
    Body(body): Body,
) -> HandlerResult {
    if let Some(r) = outside(&name) {
        return Ok(r);
    }
    let not_found = || {
        Response::message(
            StatusCode::NOT_FOUND,
            &format!("Lambda function '{name}' not found"),
        )
    };
    if !plausible(&name) {
        return Ok(not_found());
    }
    match deadline.run(levels.apis.function_exists(&name)).await? {
        Ok(true) => {}
        Ok(false) => return Ok(not_found()),
        Err(e) => return Ok(failed(&name, "look the function up", e)),
    }
    let bad = |m: &str| Response::message(StatusCode::BAD_REQUEST, m);
    let body = if body.is_empty() { "{}" } else { &body };
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(body) else {
        return Ok(bad("Invalid JSON body"));
    };
    let Some(given) = body.get("logging") else {
        return Ok(bad("Missing required field: logging"));
    };
    let level = python_str(given).to_uppercase();
    if !LEVELS.contains(&level.as_str()) {
        return Ok(bad(&format!(
            "Invalid log level '{level}'; must be one of ['CRITICAL', 'DEBUG', 'ERROR', 'INFO', 'WARNING']"
        )));
    }
    let apis = &levels.apis;
    let staged = deadline
        .run(async {
            let ids = apis.find_or_create(&name).await?;
            apis.create_version(&ids, &json!({ "logging": level }))
                .await
        })
        .await?;
    match staged {
        Ok(version) => {
            tracing::info!(function_name = %name, level, version, "log level staged");
            Ok(Response::json(
                StatusCode::OK,
                &json!({"name": name, "logging": level, "version": version}),
            ))
        }
        Err(e) => Ok(failed(&name, "stage the level", e)),
    }
}

/// A JSON value as Python's `str()` writes it (FireFly upper-cases `str(body["logging"])`).
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_fireflys_str_then_upper() {
        assert_eq!(python_str(&json!("debug")).to_uppercase(), "DEBUG");
        assert_eq!(python_str(&json!(null)).to_uppercase(), "NONE");
        assert_eq!(python_str(&json!(true)).to_uppercase(), "TRUE");
        assert_eq!(python_str(&json!(5)), "5");
    }
}
