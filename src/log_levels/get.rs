//! `GET /appconfig`: FireFly's `func-api-appconfig-get`, the page's table: every
//! `firefly-func-*` function, with its level, its newest version, the version deployed and
//! the newest deployment's state (`null` where nothing is configured).

use super::{Levels, PREFIX, failed, on_applications, on_functions};
use crate::aws::appconfig::{Apis, Ids};
use crate::aws::rest::ServiceError;
use crate::deploy::READS_APPCONFIG;
use crate::handler::{Deadline, HandlerResult};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

/// How many applications are read at once: AppConfig's read quotas are low, and one page
/// of the console lists every function.
pub const CONCURRENT_READS: usize = 4;

pub const ROUTE: Route = Route {
    key: "GET /appconfig",
    function: "firefly-func-api-appconfig-get",
    summary: "List the Firefly functions with their log levels in AppConfig (super users only)",
    uses: &[
        on_applications(&[
            "appconfig:ListApplications",
            "appconfig:ListEnvironments",
            "appconfig:ListConfigurationProfiles",
            "appconfig:ListHostedConfigurationVersions",
            "appconfig:GetHostedConfigurationVersion",
            "appconfig:ListDeployments",
        ]),
        on_functions(&["lambda:ListFunctions"]),
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Every firefly-func-* function, by name",
            schema: Some(
                r#"{"title": "AppConfigList", "type": "object", "required": ["applications"], "properties": {"applications": {"type": "array", "items": {"type": "object", "required": ["name", "logging", "version", "deployed_version", "status"], "properties": {"name": {"type": "string"}, "logging": {"type": ["string", "null"]}, "version": {"type": ["integer", "null"]}, "deployed_version": {"type": ["integer", "null"]}, "status": {"type": ["string", "null"]}}}}}}"#,
            ),
            example: Some(
                r#"{"applications":[{"name":"firefly-func-api-firmware-get","logging":"WARNING","version":3,"deployed_version":3,"status":"COMPLETE"},{"name":"firefly-func-api-ota-get","logging":null,"version":null,"deployed_version":null,"status":null}]}"#,
            ),
        },
        super::COMMON_ANSWERS[0],
        super::COMMON_ANSWERS[1],
        super::COMMON_ANSWERS[2],
        super::COMMON_ANSWERS[3],
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: Some(30),
    request: None,
    endpoint: crate::endpoint!(list, Levels::build),
};

/// The handler.
pub async fn list(levels: Levels, deadline: Deadline, _: SuperUser) -> HandlerResult {
    let apis = &levels.apis;
    let (functions, applications) = deadline
        .run(async { tokio::join!(apis.functions(PREFIX), apis.applications(PREFIX)) })
        .await?;
    let functions = match functions {
        Ok(f) => f,
        Err(e) => return Ok(failed("", "list the functions", e)),
    };
    let applications = match applications {
        Ok(a) => a,
        Err(e) => return Ok(failed("", "list the applications", e)),
    };
    let wanted: Vec<(String, String)> = applications
        .into_iter()
        .filter(|(name, _)| functions.binary_search(name).is_ok())
        .collect();
    let read = deadline
        .run(read_all(Arc::new(apis.clone()), wanted))
        .await?;
    let mut details = std::collections::BTreeMap::new();
    for (name, outcome) in read {
        match outcome {
            Ok(d) => {
                details.insert(name, d);
            }
            Err(e) => return Ok(failed(&name, "read the configuration", e)),
        }
    }
    let applications: Vec<Value> = functions
        .iter()
        .map(|name| match details.get(name) {
            Some(d) => json!({"name": name, "logging": d.logging, "version": d.version,
                               "deployed_version": d.deployed_version, "status": d.status}),
            None => json!({"name": name, "logging": null, "version": null,
                           "deployed_version": null, "status": null}),
        })
        .collect();
    Ok(Response::json(
        StatusCode::OK,
        &json!({ "applications": applications }),
    ))
}

/// One application's row.
#[derive(Debug, Default)]
struct Details {
    logging: Option<String>,
    version: Option<i64>,
    deployed_version: Option<i64>,
    status: Option<String>,
}

/// Reads every application, [`CONCURRENT_READS`] at a time.
async fn read_all(
    apis: Arc<Apis>,
    applications: Vec<(String, String)>,
) -> Vec<(String, Result<Details, ServiceError>)> {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, id) in applications {
        let (apis, permits) = (Arc::clone(&apis), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = details(&apis, &id).await;
            (name, outcome)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(one) => out.push(one),
            Err(e) => out.push((
                "an application".to_owned(),
                Err(ServiceError::Other {
                    service: "appconfig",
                    why: format!("a read stopped: {e}"),
                }),
            )),
        }
    }
    out
}

/// One application's level, newest version, deployed version and deployment state.
async fn details(apis: &Apis, application: &str) -> Result<Details, ServiceError> {
    let Some(ids) = apis.parts(application).await? else {
        return Ok(Details::default());
    };
    let (versions, deployments) = tokio::join!(apis.versions(&ids), apis.deployments(&ids));
    let (versions, deployments) = (versions?, deployments?);
    let mut d = Details {
        version: versions.last().copied(),
        ..Details::default()
    };
    if let Some(v) = d.version {
        d.logging = level_of(apis, &ids, v).await?;
    }
    if let Some(newest) = deployments.first() {
        d.status = Some(newest.state.clone());
        // A rolled-back deployment's version is not what runs: the newest one that
        // completed is.
        d.deployed_version = deployments
            .iter()
            .find(|x| x.state != "ROLLED_BACK")
            .and_then(|x| x.version);
    }
    Ok(d)
}

async fn level_of(apis: &Apis, ids: &Ids, version: i64) -> Result<Option<String>, ServiceError> {
    Ok(apis
        .content(ids, version)
        .await?
        .and_then(|c| c.get("logging").and_then(Value::as_str).map(str::to_owned)))
}
