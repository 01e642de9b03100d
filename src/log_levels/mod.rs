//! FireFly's App Configuration page: each function's log level, kept in AppConfig as the
//! console manages it (an application named as the function, environment `default`,
//! hosted profile `logging` holding `{"logging": LEVEL}`; a level reaches the function
//! when it is deployed). `GET /appconfig` lists the `firefly-func-*` functions with their
//! levels; `PATCH /appconfig/{function_name}` stages a level, `POST .../deploy` deploys it
//! and `DELETE` removes the application (the function falls back to its default).
//!
//! Better than FireFly's: the per-application reads are concurrent and bounded, and a
//! failed read is a 502 naming the application, never a silent `null`; the newest version
//! and deployment are chosen by number, not by a list order AWS does not promise; deletion
//! passes AppConfig's deletion protection; AWS's error text never reaches a client; a body
//! of the wrong JSON type is a 400.

pub mod delete;
pub mod deploy;
pub mod get;
pub mod patch;

use crate::aws::appconfig::Apis;
use crate::aws::rest::ServiceError;
use crate::deploy::{Resource, Use};
use crate::error::{ApiError, StartupError};
use crate::handler::PathParam;
use crate::init::Init;
use crate::response::Response;
use crate::route::{Answer, Param};
use lambda_http::http::StatusCode;

/// The functions the page manages (FireFly's names).
pub const PREFIX: &str = "firefly-func-";

/// The levels a profile may hold (FireFly's `VALID_LEVELS`, sorted as Python prints them).
pub const LEVELS: [&str; 5] = ["CRITICAL", "DEBUG", "ERROR", "INFO", "WARNING"];

pub const APPLICATIONS: Resource = Resource::AppConfigApplications;
pub const FUNCTIONS: Resource = Resource::Functions;

/// A grant on the functions' applications.
pub const fn on_applications(actions: &'static [&'static str]) -> Use {
    Use {
        resource: &APPLICATIONS,
        actions,
        objects: &[],
    }
}

/// A grant on the Firefly functions.
pub const fn on_functions(actions: &'static [&'static str]) -> Use {
    Use {
        resource: &FUNCTIONS,
        actions,
        objects: &[],
    }
}

/// What the page's routes share: the AppConfig and Lambda APIs.
#[derive(Clone)]
pub struct Levels {
    pub apis: Apis,
}

impl Levels {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            apis: init.appconfig_apis()?,
        })
    }
}

/// The `{function_name}` of the path, as sent: each route checks it in FireFly's words.
pub struct FunctionName(pub String);

impl PathParam for FunctionName {
    const NAME: &'static str = "function_name";
    fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(Self(text.to_owned()))
    }
}

pub const FUNCTION_PARAM: Param = Param {
    name: FunctionName::NAME,
    description: "A Firefly function's name (firefly-func-...)",
    schema: r#"{"type": "string", "minLength": 1}"#,
};

/// FireFly's 400 for a name outside the page's functions.
pub fn outside(name: &str) -> Option<Response> {
    (!name.starts_with(PREFIX)).then(|| {
        Response::message(
            StatusCode::BAD_REQUEST,
            &format!("Function name must start with '{PREFIX}'"),
        )
    })
}

/// Whether `name` can be a Lambda function's name (letters, digits, `-`, `_`; 64 at
/// most): any other cannot name a function or an application of the page.
pub fn plausible(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A failed AWS call, answered: 503 when AWS is throttling or unreachable, else a 502
/// whose message names the application (the console shows it as a toast). AWS's own
/// text goes to the log only.
/// `name` is `""` for a failure that is no one application's (the listings).
pub fn failed(name: &str, doing: &str, e: ServiceError) -> Response {
    tracing::error!(function_name = name, error = %e, "AppConfig or Lambda failed: could not {doing}");
    let what = if name.is_empty() {
        doing.to_owned()
    } else {
        format!("{doing} for '{name}'")
    };
    match e {
        ServiceError::Unavailable { .. } => Response::message(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("AppConfig is unavailable; could not {what}. Try again."),
        ),
        _ => Response::message(
            StatusCode::BAD_GATEWAY,
            &format!("AppConfig failed; could not {what}."),
        ),
    }
}

/// The application of `name` for a route that needs one to exist: FireFly's 400 for a name
/// outside the page, `missing` (404) for one without an application, or its IDs.
pub async fn existing(
    levels: &Levels,
    deadline: crate::handler::Deadline,
    name: &str,
    missing: &str,
) -> Result<Result<crate::aws::appconfig::Ids, Response>, ApiError> {
    if let Some(r) = outside(name) {
        return Ok(Err(r));
    }
    let not_found = || Response::message(StatusCode::NOT_FOUND, missing);
    if !plausible(name) {
        return Ok(Err(not_found()));
    }
    Ok(match deadline.run(levels.apis.find(name)).await? {
        Ok(Some(ids)) => Ok(ids),
        Ok(None) => Err(not_found()),
        Err(e) => Err(failed(name, "find the application", e)),
    })
}

/// Every route's 401 and 403.
pub const COMMON_ANSWERS: [Answer; 4] = [
    Answer::new(401, "No signed-in caller"),
    Answer::new(403, "Forbidden: the caller is not in the super_users group"),
    Answer::new(
        502,
        "AppConfig or Lambda failed; the message names the application",
    ),
    Answer::new(
        503,
        "AppConfig or Lambda unavailable (throttled, unreachable)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_page_are_fireflys_400() {
        assert!(outside("firefly-func-api-health-get").is_none());
        let r = outside("other-function").unwrap();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(
            r.body
                .contains("Function name must start with 'firefly-func-'")
        );
        assert!(plausible("firefly-func-api-health-get"));
        for bad in [
            "",
            "firefly-func-a/b",
            "firefly-func-a?x",
            "firefly-func-é",
            &"f".repeat(65),
        ] {
            assert!(!plausible(bad), "{bad}");
        }
    }
}
