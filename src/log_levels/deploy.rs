//! `POST /appconfig/{function_name}/deploy`: FireFly's deploy, the page's Deploy button:
//! the profile's newest version (by number) to the `default` environment, all at once.

use super::{FUNCTION_PARAM, FunctionName, Levels, existing, failed, on_applications};
use crate::aws::appconfig::ENVIRONMENT;
use crate::deploy::READS_APPCONFIG;
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::json;

pub const ROUTE: Route = Route {
    key: "POST /appconfig/{function_name}/deploy",
    function: "firefly-func-api-appconfig-patch",
    summary: "Deploy a function's newest staged log level",
    uses: &[
        on_applications(&[
            "appconfig:ListApplications",
            "appconfig:ListEnvironments",
            "appconfig:ListConfigurationProfiles",
            "appconfig:ListHostedConfigurationVersions",
            "appconfig:StartDeployment",
        ]),
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Deployment started",
            schema: Some(
                r#"{"title": "LevelDeployed", "type": "object", "required": ["name", "version", "environment", "status"], "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "environment": {"type": "string"}, "status": {"type": "string"}}}"#,
            ),
            example: Some(
                r#"{"name":"firefly-func-api-health-get","version":4,"environment":"default","status":"DEPLOYING"}"#,
            ),
        },
        Answer::new(400, "Function name must start with 'firefly-func-'"),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        Answer::new(
            404,
            "No AppConfig application found for '<function_name>'. Use PATCH to create one first. (or: No configuration version found. ...)",
        ),
        Answer::new(
            409,
            "A deployment is already in progress. Wait for it to complete before deploying again.",
        ),
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[FUNCTION_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: Some(30),
    request: None,
    endpoint: crate::endpoint!(deploy, Levels::build),
};

/// The handler.
pub async fn deploy(
    levels: Levels,
    deadline: Deadline,
    _: SuperUser,
    Path(FunctionName(name)): Path<FunctionName>,
) -> HandlerResult {
    let missing =
        format!("No AppConfig application found for '{name}'. Use PATCH to create one first.");
    let ids = match existing(&levels, deadline, &name, &missing).await? {
        Ok(ids) => ids,
        Err(answer) => return Ok(answer),
    };
    let apis = &levels.apis;
    let newest = match deadline.run(apis.versions(&ids)).await? {
        Ok(versions) => versions.last().copied(),
        Err(e) => return Ok(failed(&name, "read the versions", e)),
    };
    let Some(version) = newest else {
        return Ok(Response::message(
            StatusCode::NOT_FOUND,
            "No configuration version found. Use PATCH to create one first.",
        ));
    };
    match deadline.run(apis.deploy(&ids, version)).await? {
        Ok(Some(state)) => {
            tracing::info!(function_name = %name, version, state, "log level deployment started");
            Ok(Response::json(
                StatusCode::OK,
                &json!({"name": name, "version": version, "environment": ENVIRONMENT, "status": state}),
            ))
        }
        Ok(None) => Ok(Response::message(
            StatusCode::CONFLICT,
            "A deployment is already in progress. Wait for it to complete before deploying again.",
        )),
        Err(e) => Ok(failed(&name, "deploy", e)),
    }
}
