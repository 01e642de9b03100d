//! AppConfig's API (REST-JSON) for the applications FireFly's console manages, and
//! Lambda's (REST-JSON) for the functions they are named after: the calls of the App
//! Configuration page, as signed requests over the process's one transport
//! ([`super::rest`]).
//!
//! Lists are read to their last page, and "the newest" is chosen by number:
//! `ListHostedConfigurationVersions` promises no order.

use super::http1::Http1Client;
use super::rest::{Service, ServiceError, segment};
use bytes::Bytes;
use serde_json::{Value, json};

/// The console's environment and profile names (FireFly's).
pub const ENVIRONMENT: &str = "default";
pub const PROFILE: &str = "logging";
/// The strategy FireFly's deploy uses.
pub const STRATEGY: &str = "AppConfig.AllAtOnce";
/// A bound on pages, not a loop forever on a continuation that repeats.
const MAX_PAGES: usize = 1_000;

/// An application's `default` environment and `logging` profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub application: String,
    pub environment: String,
    pub profile: String,
}

/// One deployment of a profile to an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub number: i64,
    pub version: Option<i64>,
    pub state: String,
}

/// The AppConfig and Lambda APIs.
#[derive(Clone, Debug)]
pub struct Apis {
    appconfig: Service,
    lambda: Service,
}

const BYPASS: [(&str, &str); 1] = [("x-amzn-deletion-protection-check", "BYPASS")];

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn json_headers() -> Vec<(String, String)> {
    headers(&[("content-type", "application/json")])
}

/// A JSON value's text, if it is one.
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A number AWS may write as a number or as a string (`ConfigurationVersion`).
fn number(v: &Value, key: &str) -> Option<i64> {
    let v = v.get(key)?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

impl Apis {
    /// From the Lambda environment: `AWS_ENDPOINT_URL_APPCONFIG` and
    /// `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`) for local stand-ins.
    pub fn from_env(env: &crate::deploy::Env<'_>, http: Http1Client) -> Result<Self, String> {
        use crate::vars;
        Ok(Self {
            appconfig: Service::from_env(
                env,
                http.clone(),
                "appconfig",
                "appconfig",
                vars::AWS_ENDPOINT_URL_APPCONFIG.name,
            )?,
            lambda: Service::from_env(
                env,
                http,
                "lambda",
                "lambda",
                vars::AWS_ENDPOINT_URL_LAMBDA.name,
            )?,
        })
    }

    /// Every item of a paginated AppConfig listing at `path` (`Items`, `NextToken`).
    async fn items(&self, path: &str) -> Result<Vec<Value>, ServiceError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query = match &token {
                None => "?max_results=50".to_owned(),
                Some(t) => format!("?max_results=50&next_token={}", segment(t)),
            };
            let page = self
                .appconfig
                .json("GET", &format!("{path}{query}"), &[], None)
                .await?;
            if let Some(list) = page.get("Items").and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            token = text(&page, "NextToken").filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(items);
            }
        }
        Err(ServiceError::Other {
            service: "appconfig",
            why: format!("{path}: more than {MAX_PAGES} pages"),
        })
    }

    /// The ID of the item named `name` in a listing; of several (two PATCHes that created
    /// one each at once), the least, so every caller picks the same.
    fn named(items: &[Value], name: &str) -> Option<String> {
        items
            .iter()
            .filter(|i| i.get("Name").and_then(Value::as_str) == Some(name))
            .filter_map(|i| text(i, "Id"))
            .min()
    }

    /// The names of the functions whose names start with `prefix` (every page of
    /// `ListFunctions`), sorted.
    pub async fn functions(&self, prefix: &str) -> Result<Vec<String>, ServiceError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let path = match &marker {
                None => "/2015-03-31/functions/?MaxItems=50".to_owned(),
                Some(m) => format!("/2015-03-31/functions/?Marker={}&MaxItems=50", segment(m)),
            };
            let page = self.lambda.json("GET", &path, &[], None).await?;
            names.extend(
                page.get("Functions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| text(f, "FunctionName"))
                    .filter(|n| n.starts_with(prefix)),
            );
            marker = text(&page, "NextMarker").filter(|m| !m.is_empty());
            if marker.is_none() {
                names.sort();
                names.dedup();
                return Ok(names);
            }
        }
        Err(ServiceError::Other {
            service: "lambda",
            why: format!("ListFunctions: more than {MAX_PAGES} pages"),
        })
    }

    /// Whether the function exists (`GetFunction`).
    pub async fn function_exists(&self, name: &str) -> Result<bool, ServiceError> {
        let path = format!("/2015-03-31/functions/{}", segment(name));
        match self.lambda.json("GET", &path, &[], None).await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every application whose name starts with `prefix`: `(name, id)`, one per name.
    pub async fn applications(&self, prefix: &str) -> Result<Vec<(String, String)>, ServiceError> {
        let items = self.items("/applications").await?;
        let mut names: Vec<String> = items
            .iter()
            .filter_map(|i| text(i, "Name"))
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .filter_map(|n| Self::named(&items, &n).map(|id| (n, id)))
            .collect())
    }

    /// The application named `name`, if any.
    pub async fn application(&self, name: &str) -> Result<Option<String>, ServiceError> {
        Ok(Self::named(&self.items("/applications").await?, name))
    }

    /// The application named `name` with its `default` environment and `logging` profile;
    /// `None` when any is missing.
    pub async fn find(&self, name: &str) -> Result<Option<Ids>, ServiceError> {
        match self.application(name).await? {
            Some(app) => self.parts(&app).await,
            None => Ok(None),
        }
    }

    /// The application's `default` environment and `logging` profile; `None` when either
    /// is missing.
    pub async fn parts(&self, application: &str) -> Result<Option<Ids>, ServiceError> {
        let app = segment(application);
        let environments = format!("/applications/{app}/environments");
        let profiles = format!("/applications/{app}/configurationprofiles");
        let (environments, profiles) =
            tokio::join!(self.items(&environments), self.items(&profiles));
        let environment = Self::named(&environments?, ENVIRONMENT);
        let profile = Self::named(&profiles?, PROFILE);
        Ok(environment.zip(profile).map(|(environment, profile)| Ids {
            application: application.to_owned(),
            environment,
            profile,
        }))
    }

    /// The application named `name` with its `default` environment and `logging` profile,
    /// each made when missing. Two callers at once may each make an application: the
    /// least ID is kept and a later one made here is deleted.
    pub async fn find_or_create(&self, name: &str) -> Result<Ids, ServiceError> {
        let application = match self.application(name).await? {
            Some(id) => id,
            None => {
                let made = self
                    .appconfig
                    .json(
                        "POST",
                        "/applications",
                        &json_headers(),
                        Some(&json!({"Name": name})),
                    )
                    .await?;
                let made = text(&made, "Id").ok_or_else(|| ServiceError::Other {
                    service: "appconfig",
                    why: "CreateApplication answered no Id".into(),
                })?;
                let kept = self
                    .application(name)
                    .await?
                    .unwrap_or_else(|| made.clone());
                if kept != made {
                    let _ = self
                        .appconfig
                        .send(
                            "DELETE",
                            &format!("/applications/{}", segment(&made)),
                            &[],
                            Bytes::new(),
                        )
                        .await;
                }
                kept
            }
        };
        let app = segment(&application);
        let environment = self
            .named_or_made(
                &format!("/applications/{app}/environments"),
                ENVIRONMENT,
                json!({"Name": ENVIRONMENT}),
            )
            .await?;
        let profile = self
            .named_or_made(
                &format!("/applications/{app}/configurationprofiles"),
                PROFILE,
                json!({"Name": PROFILE, "LocationUri": "hosted", "Type": "AWS.Freeform"}),
            )
            .await?;
        if environment.is_empty() || profile.is_empty() {
            return Err(ServiceError::Other {
                service: "appconfig",
                why: "a creation answered no Id".into(),
            });
        }
        Ok(Ids {
            application,
            environment,
            profile,
        })
    }

    /// The ID of the item named `name` in the listing at `path`, made there with `body`
    /// when there is none (`""` when AWS answered no ID).
    async fn named_or_made(
        &self,
        path: &str,
        name: &str,
        body: Value,
    ) -> Result<String, ServiceError> {
        if let Some(id) = Self::named(&self.items(path).await?, name) {
            return Ok(id);
        }
        let made = self
            .appconfig
            .json("POST", path, &json_headers(), Some(&body))
            .await?;
        Ok(text(&made, "Id").unwrap_or_default())
    }

    fn versions_path(ids: &Ids) -> String {
        format!(
            "/applications/{}/configurationprofiles/{}/hostedconfigurationversions",
            segment(&ids.application),
            segment(&ids.profile)
        )
    }

    /// Every hosted version's number, ascending.
    pub async fn versions(&self, ids: &Ids) -> Result<Vec<i64>, ServiceError> {
        let mut numbers: Vec<i64> = self
            .items(&Self::versions_path(ids))
            .await?
            .iter()
            .filter_map(|v| number(v, "VersionNumber"))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// A hosted version's content, as JSON (`None`: not a JSON object).
    pub async fn content(&self, ids: &Ids, version: i64) -> Result<Option<Value>, ServiceError> {
        let reply = self
            .appconfig
            .send(
                "GET",
                &format!("{}/{version}", Self::versions_path(ids)),
                &[],
                Bytes::new(),
            )
            .await?;
        Ok(serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .filter(Value::is_object))
    }

    /// Stores `content` as the profile's next version; its number.
    pub async fn create_version(&self, ids: &Ids, content: &Value) -> Result<i64, ServiceError> {
        let reply = self
            .appconfig
            .send(
                "POST",
                &Self::versions_path(ids),
                &json_headers(),
                Bytes::from(content.to_string()),
            )
            .await?;
        reply
            .header("version-number")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ServiceError::Other {
                service: "appconfig",
                why: "CreateHostedConfigurationVersion answered no Version-Number".into(),
            })
    }

    fn deployments_path(ids: &Ids) -> String {
        format!(
            "/applications/{}/environments/{}/deployments",
            segment(&ids.application),
            segment(&ids.environment)
        )
    }

    /// The environment's deployments, newest (highest number) first.
    pub async fn deployments(&self, ids: &Ids) -> Result<Vec<Deployment>, ServiceError> {
        let mut all: Vec<Deployment> = self
            .items(&Self::deployments_path(ids))
            .await?
            .iter()
            .filter_map(|d| {
                Some(Deployment {
                    number: number(d, "DeploymentNumber")?,
                    version: number(d, "ConfigurationVersion"),
                    state: text(d, "State").unwrap_or_default(),
                })
            })
            .collect();
        all.sort_by_key(|d| std::cmp::Reverse(d.number));
        Ok(all)
    }

    /// Deploys `version` of the profile (all at once): its state, or `None` when a
    /// deployment is already in progress (`ConflictException`).
    pub async fn deploy(&self, ids: &Ids, version: i64) -> Result<Option<String>, ServiceError> {
        let body = json!({
            "DeploymentStrategyId": STRATEGY,
            "ConfigurationProfileId": ids.profile,
            "ConfigurationVersion": version.to_string(),
        });
        match self
            .appconfig
            .json(
                "POST",
                &Self::deployments_path(ids),
                &json_headers(),
                Some(&body),
            )
            .await
        {
            Ok(d) => Ok(Some(
                text(&d, "State").unwrap_or_else(|| "DEPLOYING".into()),
            )),
            Err(e) if e.code() == Some("ConflictException") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the application with its versions, profile and environment, each past
    /// AppConfig's deletion protection (`BYPASS`). What is already gone is not an error.
    pub async fn delete(&self, ids: &Ids) -> Result<(), ServiceError> {
        let gone = |r: Result<_, ServiceError>| match r {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(e),
        };
        for v in self.versions(ids).await? {
            gone(
                self.appconfig
                    .send(
                        "DELETE",
                        &format!("{}/{v}", Self::versions_path(ids)),
                        &[],
                        Bytes::new(),
                    )
                    .await,
            )?;
        }
        let app = segment(&ids.application);
        gone(
            self.appconfig
                .send(
                    "DELETE",
                    &format!(
                        "/applications/{app}/configurationprofiles/{}",
                        segment(&ids.profile)
                    ),
                    &headers(&BYPASS),
                    Bytes::new(),
                )
                .await,
        )?;
        gone(
            self.appconfig
                .send(
                    "DELETE",
                    &format!(
                        "/applications/{app}/environments/{}",
                        segment(&ids.environment)
                    ),
                    &headers(&BYPASS),
                    Bytes::new(),
                )
                .await,
        )?;
        gone(
            self.appconfig
                .send("DELETE", &format!("/applications/{app}"), &[], Bytes::new())
                .await,
        )
    }
}
