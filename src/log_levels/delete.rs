//! `DELETE /appconfig/{function_name}`: FireFly's delete, the page's Reset: the
//! application goes with its versions, profile and environment, and the function falls
//! back to its default level at its next cold start. Not while a deployment runs.
//!
//! Better than FireFly's: AppConfig's deletion protection (which refuses to delete what was
//! read in the last hour, so FireFly's swallowed deletes failed and its last one answered
//! 500) is passed (`BYPASS`); a failure is answered, not swallowed, and a retry finishes
//! what is left.

use super::{FUNCTION_PARAM, FunctionName, Levels, existing, failed, on_applications};
use crate::deploy::READS_APPCONFIG;
use crate::handler::{Deadline, HandlerResult, Path};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;

/// The states in which a deployment is over.
const SETTLED: [&str; 2] = ["COMPLETE", "ROLLED_BACK"];

pub const ROUTE: Route = Route {
    key: "DELETE /appconfig/{function_name}",
    function: "firefly-func-api-appconfig-patch",
    summary: "Remove a function's AppConfig application: it falls back to its default level",
    uses: &[
        on_applications(&[
            "appconfig:ListApplications",
            "appconfig:ListEnvironments",
            "appconfig:ListConfigurationProfiles",
            "appconfig:ListHostedConfigurationVersions",
            "appconfig:ListDeployments",
            "appconfig:DeleteHostedConfigurationVersion",
            "appconfig:DeleteConfigurationProfile",
            "appconfig:DeleteEnvironment",
            "appconfig:DeleteApplication",
        ]),
        READS_APPCONFIG,
    ],
    answers: &[
        Answer::new(204, "Deleted"),
        Answer::new(400, "Function name must start with 'firefly-func-'"),
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        Answer::new(404, "No AppConfig application found for '<function_name>'"),
        Answer::new(
            409,
            "A deployment is in progress. Wait for it to complete before deleting.",
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
    endpoint: crate::endpoint!(delete, Levels::build),
};

/// The handler.
pub async fn delete(
    levels: Levels,
    deadline: Deadline,
    _: SuperUser,
    Path(FunctionName(name)): Path<FunctionName>,
) -> HandlerResult {
    let missing = format!("No AppConfig application found for '{name}'");
    let ids = match existing(&levels, deadline, &name, &missing).await? {
        Ok(ids) => ids,
        Err(answer) => return Ok(answer),
    };
    let apis = &levels.apis;
    let newest = match deadline.run(apis.deployments(&ids)).await? {
        Ok(all) => all.into_iter().next(),
        Err(e) => return Ok(failed(&name, "read the deployments", e)),
    };
    if newest.is_some_and(|d| !SETTLED.contains(&d.state.as_str())) {
        return Ok(Response::message(
            StatusCode::CONFLICT,
            "A deployment is in progress. Wait for it to complete before deleting.",
        ));
    }
    match deadline.run(apis.delete(&ids)).await? {
        Ok(()) => {
            tracing::info!(function_name = %name, "AppConfig application deleted");
            Ok(Response::empty(StatusCode::NO_CONTENT))
        }
        Err(e) => Ok(failed(&name, "delete the configuration", e)),
    }
}
