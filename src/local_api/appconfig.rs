//! A stand-in of AppConfig's and Lambda's APIs, in their wire format (REST-JSON: the paths,
//! query parameters, headers, status codes and `x-amzn-ErrorType` errors AWS uses), for
//! the calls the App Configuration page makes. moto 5.2.5 lacks most of them (no
//! ListApplications, no listings of environments or hosted versions, no deployments).
//!
//! `firefly-local serve` runs one for its own functions: a deployment completes at once and
//! sets that function's level for the local logs, as a deployed profile reaches a Lambda
//! function's next cold start; deleting the application returns it to the default. Tests
//! run one to exercise the AWS calls: pages of a chosen size, hosted versions listed
//! oldest first (AWS promises no order), deployments that stay in progress, reads that
//! fail, and the peak of concurrent requests.

use crate::sync::Locked;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use lambda_http::http::{self, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a deployment (`Some(level)`) or a deletion (`None`) does to a function's level.
pub type OnLevel = Box<dyn Fn(&str, Option<&str>) + Send + Sync>;

#[derive(Default)]
struct Profile {
    id: String,
    name: String,
    /// Version number → (content type, content).
    versions: BTreeMap<i64, (String, Bytes)>,
}

#[derive(Default)]
struct Application {
    id: String,
    name: String,
    environments: Vec<(String, String)>,
    profiles: Vec<Profile>,
    /// (environment id, number, profile id, version, state)
    deployments: Vec<(String, i64, String, i64, String)>,
}

#[derive(Default)]
struct State {
    applications: Vec<Application>,
    next_id: u64,
}

/// The stand-in: its state and its test controls.
pub struct StandIn {
    functions: Vec<String>,
    state: Mutex<State>,
    /// The largest page any listing answers (AWS's own is the caller's `max_results`).
    page: AtomicUsize,
    /// Deployments stay `DEPLOYING` (a test's: AppConfig's bake time).
    slow_deployments: std::sync::atomic::AtomicBool,
    /// Applications whose reads are refused (`AccessDeniedException`), by name.
    failing: Mutex<HashSet<String>>,
    /// How long each answer waits (a test's, to see requests overlap).
    latency: Mutex<std::time::Duration>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    on_level: Option<OnLevel>,
}

fn error(status: StatusCode, code: &str, message: &str) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(
        json!({ "Message": message }).to_string(),
    )));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-amzn-ErrorType", v);
    }
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok(status: StatusCode, body: Value) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn not_found(what: &str) -> http::Response<Full<Bytes>> {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("{what} not found"),
    )
}

fn query(q: Option<&str>) -> BTreeMap<String, String> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn decode(segment: &str) -> String {
    form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl StandIn {
    /// A stand-in that knows `functions` (Lambda's side); `on_level` is told of every
    /// deployment and deletion.
    pub fn new(functions: Vec<String>, on_level: Option<OnLevel>) -> Self {
        Self {
            functions,
            state: Mutex::new(State::default()),
            page: AtomicUsize::new(50),
            slow_deployments: false.into(),
            failing: Mutex::new(HashSet::new()),
            latency: Mutex::new(std::time::Duration::ZERO),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            on_level,
        }
    }

    /// Every listing answers at most `n` items a page.
    pub fn set_page(&self, n: usize) {
        self.page.store(n.max(1), Ordering::SeqCst);
    }

    /// Deployments stay in progress (`DEPLOYING`), or complete at once.
    pub fn set_slow_deployments(&self, slow: bool) {
        self.slow_deployments.store(slow, Ordering::SeqCst);
    }

    /// Reads of the application `name` are refused from now on.
    pub fn fail_reads_of(&self, name: &str) {
        self.failing.locked().insert(name.to_owned());
    }

    /// Each answer waits `d` first.
    pub fn set_latency(&self, d: std::time::Duration) {
        *self.latency.locked() = d;
    }

    /// The most requests in flight at once so far.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        super::serve_stand_in(self, listener).await
    }
}

impl super::Answers for StandIn {
    async fn answer(&self, req: http::Request<Incoming>) -> http::Response<Full<Bytes>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let latency = *self.latency.locked();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let (parts, body) = req.into_parts();
        let answer = match Limited::new(body, 1 << 20).collect().await {
            Err(e) => error(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            ),
            // Every request AWS accepts is signed: an unsigned one is a client bug.
            Ok(_) if !parts.headers.contains_key(http::header::AUTHORIZATION) => error(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            Ok(b) => self.route(&parts, b.to_bytes()),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}

impl StandIn {
    fn route(&self, parts: &http::request::Parts, body: Bytes) -> http::Response<Full<Bytes>> {
        let segments: Vec<String> = parts
            .uri
            .path()
            .trim_matches('/')
            .split('/')
            .map(decode)
            .collect();
        let q = query(parts.uri.query());
        let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
        let m = &parts.method;
        match seg.as_slice() {
            ["2015-03-31", "functions"] if m == Method::GET => self.list_functions(&q),
            ["2015-03-31", "functions", name] if m == Method::GET => {
                if self.functions.iter().any(|f| f == name) {
                    ok(
                        StatusCode::OK,
                        json!({"Configuration": {"FunctionName": name}}),
                    )
                } else {
                    not_found(&format!("Function {name}"))
                }
            }
            ["applications"] if m == Method::GET => {
                let items: Vec<Value> = self
                    .state
                    .locked()
                    .applications
                    .iter()
                    .map(|a| json!({"Id": a.id, "Name": a.name}))
                    .collect();
                self.page_of(items, &q)
            }
            ["applications"] if m == Method::POST => {
                let Some(name) = json_field(&body, "Name") else {
                    return error(StatusCode::BAD_REQUEST, "BadRequestException", "Name");
                };
                let mut state = self.state.locked();
                let id = next_id(&mut state);
                state.applications.push(Application {
                    id: id.clone(),
                    name: name.clone(),
                    ..Application::default()
                });
                ok(StatusCode::CREATED, json!({"Id": id, "Name": name}))
            }
            ["applications", app, rest @ ..] => {
                self.on_application(m, app, rest, &q, &parts.headers, body)
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "no such operation",
            ),
        }
    }

    fn list_functions(&self, q: &BTreeMap<String, String>) -> http::Response<Full<Bytes>> {
        let size = q
            .get("MaxItems")
            .and_then(|n| n.parse().ok())
            .unwrap_or(50usize)
            .min(self.page.load(Ordering::SeqCst));
        let start: usize = q.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = self
            .functions
            .iter()
            .skip(start)
            .take(size)
            .map(|f| json!({"FunctionName": f}))
            .collect();
        let mut out = json!({ "Functions": page });
        if start + size < self.functions.len() {
            out["NextMarker"] = json!((start + size).to_string());
        }
        ok(StatusCode::OK, out)
    }

    fn page_of(
        &self,
        items: Vec<Value>,
        q: &BTreeMap<String, String>,
    ) -> http::Response<Full<Bytes>> {
        let size = q
            .get("max_results")
            .and_then(|n| n.parse().ok())
            .unwrap_or(50usize)
            .min(self.page.load(Ordering::SeqCst));
        let start: usize = q
            .get("next_token")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let page: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
        let mut out = json!({ "Items": page });
        if start + size < items.len() {
            out["NextToken"] = json!((start + size).to_string());
        }
        ok(StatusCode::OK, out)
    }

    fn on_application(
        &self,
        m: &Method,
        app: &str,
        rest: &[&str],
        q: &BTreeMap<String, String>,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> http::Response<Full<Bytes>> {
        let mut state = self.state.locked();
        let Some(index) = state.applications.iter().position(|a| a.id == app) else {
            return not_found(&format!("Application {app}"));
        };
        let name = state.applications[index].name.clone();
        if m == Method::GET && self.failing.locked().contains(&name) {
            return error(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "not authorized to read this application",
            );
        }
        let bypass = headers
            .get("x-amzn-deletion-protection-check")
            .is_some_and(|v| v == "BYPASS");
        let id = next_id(&mut state);
        let a = &mut state.applications[index];
        match rest {
            [] if m == Method::DELETE => {
                if !a.profiles.is_empty() || !a.environments.is_empty() {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        "the application still has environments or profiles",
                    );
                }
                state.applications.remove(index);
                drop(state);
                if let Some(f) = &self.on_level {
                    f(&name, None);
                }
                ok(StatusCode::NO_CONTENT, json!({}))
            }
            ["environments"] if m == Method::GET => {
                let items = a.environments.iter().map(|(id, n)| json!({"Id": id, "Name": n, "ApplicationId": app, "State": "ReadyForDeployment"})).collect();
                drop(state);
                self.page_of(items, q)
            }
            ["environments"] if m == Method::POST => {
                let n = json_field(&body, "Name").unwrap_or_default();
                a.environments.push((id.clone(), n.clone()));
                ok(
                    StatusCode::CREATED,
                    json!({"Id": id, "Name": n, "ApplicationId": app}),
                )
            }
            ["environments", env] if m == Method::DELETE => {
                // AppConfig protects what was read in the last hour unless told to bypass.
                if !bypass {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        "Deletion protection is enabled for this environment",
                    );
                }
                a.environments.retain(|(i, _)| i != env);
                a.deployments.retain(|d| d.0 != *env);
                ok(StatusCode::NO_CONTENT, json!({}))
            }
            ["environments", env, "deployments"] if m == Method::GET => {
                if !a.environments.iter().any(|(i, _)| i == env) {
                    return not_found(&format!("Environment {env}"));
                }
                let mut items: Vec<Value> = a.deployments.iter().filter(|d| d.0 == *env)
                    .map(|d| json!({"DeploymentNumber": d.1, "ConfigurationVersion": d.3.to_string(), "State": d.4, "ConfigurationName": "logging"}))
                    .collect();
                // ListDeployments: newest first, as AWS documents.
                items.reverse();
                drop(state);
                self.page_of(items, q)
            }
            ["environments", env, "deployments"] if m == Method::POST => {
                let Ok(input) = serde_json::from_slice::<Value>(&body) else {
                    return error(StatusCode::BAD_REQUEST, "BadRequestException", "body");
                };
                let profile = input["ConfigurationProfileId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let version: i64 = input["ConfigurationVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if input["DeploymentStrategyId"] != "AppConfig.AllAtOnce" {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        "unknown strategy",
                    );
                }
                if !a.environments.iter().any(|(i, _)| i == env) {
                    return not_found(&format!("Environment {env}"));
                }
                let Some(content) = a
                    .profiles
                    .iter()
                    .find(|p| p.id == profile)
                    .and_then(|p| p.versions.get(&version))
                    .map(|(_, c)| c.clone())
                else {
                    return not_found("Configuration version");
                };
                if a.deployments
                    .iter()
                    .any(|d| d.0 == *env && !matches!(d.4.as_str(), "COMPLETE" | "ROLLED_BACK"))
                {
                    return error(
                        StatusCode::CONFLICT,
                        "ConflictException",
                        "a deployment is in progress",
                    );
                }
                let number = a.deployments.iter().filter(|d| d.0 == *env).count() as i64 + 1;
                let slow = self.slow_deployments.load(Ordering::SeqCst);
                let st = if slow { "DEPLOYING" } else { "COMPLETE" };
                a.deployments
                    .push(((*env).to_owned(), number, profile, version, st.to_owned()));
                drop(state);
                if !slow && let Some(f) = &self.on_level {
                    let level = serde_json::from_slice::<Value>(&content)
                        .ok()
                        .and_then(|c| c["logging"].as_str().map(str::to_owned));
                    f(&name, level.as_deref());
                }
                ok(
                    StatusCode::CREATED,
                    json!({"DeploymentNumber": number, "ConfigurationVersion": version.to_string(), "State": st}),
                )
            }
            ["configurationprofiles"] if m == Method::GET => {
                let items = a.profiles.iter().map(|p| json!({"Id": p.id, "Name": p.name, "ApplicationId": app, "Type": "AWS.Freeform"})).collect();
                drop(state);
                self.page_of(items, q)
            }
            ["configurationprofiles"] if m == Method::POST => {
                let n = json_field(&body, "Name").unwrap_or_default();
                a.profiles.push(Profile {
                    id: id.clone(),
                    name: n.clone(),
                    versions: BTreeMap::new(),
                });
                ok(
                    StatusCode::CREATED,
                    json!({"Id": id, "Name": n, "ApplicationId": app, "LocationUri": "hosted"}),
                )
            }
            ["configurationprofiles", profile] if m == Method::DELETE => {
                if !bypass {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "BadRequestException",
                        "Deletion protection is enabled for this configuration profile",
                    );
                }
                if a.profiles
                    .iter()
                    .any(|p| p.id == *profile && !p.versions.is_empty())
                {
                    return error(
                        StatusCode::CONFLICT,
                        "ConflictException",
                        "the profile still has versions",
                    );
                }
                a.profiles.retain(|p| p.id != *profile);
                ok(StatusCode::NO_CONTENT, json!({}))
            }
            [
                "configurationprofiles",
                profile,
                "hostedconfigurationversions",
                rest @ ..,
            ] => {
                let Some(p) = a.profiles.iter_mut().find(|p| p.id == *profile) else {
                    return not_found(&format!("Configuration profile {profile}"));
                };
                match rest {
                    [] if m == Method::GET => {
                        // Oldest first: AWS promises no order.
                        let items = p.versions.keys().map(|v| json!({"VersionNumber": v, "ApplicationId": app, "ConfigurationProfileId": profile})).collect();
                        drop(state);
                        self.page_of(items, q)
                    }
                    [] if m == Method::POST => {
                        let v = p.versions.keys().next_back().copied().unwrap_or(0) + 1;
                        let ct = headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|c| c.to_str().ok())
                            .unwrap_or("application/octet-stream")
                            .to_owned();
                        p.versions.insert(v, (ct.clone(), body.clone()));
                        let mut r = http::Response::new(Full::new(body));
                        *r.status_mut() = StatusCode::CREATED;
                        if let Ok(h) = HeaderValue::from_str(&v.to_string()) {
                            r.headers_mut().insert("Version-Number", h);
                        }
                        if let Ok(h) = HeaderValue::from_str(&ct) {
                            r.headers_mut().insert(http::header::CONTENT_TYPE, h);
                        }
                        r
                    }
                    [v] => {
                        let Some(v) = v.parse::<i64>().ok().filter(|v| p.versions.contains_key(v))
                        else {
                            return not_found("Hosted configuration version");
                        };
                        if m == Method::DELETE {
                            p.versions.remove(&v);
                            return ok(StatusCode::NO_CONTENT, json!({}));
                        }
                        let (ct, content) = p.versions[&v].clone();
                        let mut r = http::Response::new(Full::new(content));
                        if let Ok(h) = HeaderValue::from_str(&v.to_string()) {
                            r.headers_mut().insert("Version-Number", h);
                        }
                        if let Ok(h) = HeaderValue::from_str(&ct) {
                            r.headers_mut().insert(http::header::CONTENT_TYPE, h);
                        }
                        r
                    }
                    _ => error(
                        StatusCode::NOT_FOUND,
                        "UnknownOperationException",
                        "no such operation",
                    ),
                }
            }
            _ => error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "no such operation",
            ),
        }
    }

    /// A test's view: the application's newest deployment state per name.
    pub fn deployment_states(&self) -> BTreeMap<String, String> {
        self.state
            .locked()
            .applications
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.deployments.last()?.4.clone())))
            .collect()
    }

    /// Completes every deployment in progress (a test's: the bake time over).
    pub fn complete_deployments(&self) {
        let mut done = Vec::new();
        {
            let mut state = self.state.locked();
            for a in &mut state.applications {
                for d in &mut a.deployments {
                    if d.4 == "DEPLOYING" {
                        d.4 = "COMPLETE".into();
                        let level = a
                            .profiles
                            .iter()
                            .find(|p| p.id == d.2)
                            .and_then(|p| p.versions.get(&d.3))
                            .and_then(|(_, c)| serde_json::from_slice::<Value>(c).ok())
                            .and_then(|c| c["logging"].as_str().map(str::to_owned));
                        done.push((a.name.clone(), level));
                    }
                }
            }
        }
        if let Some(f) = &self.on_level {
            for (name, level) in done {
                f(&name, level.as_deref());
            }
        }
    }
}

fn next_id(state: &mut State) -> String {
    state.next_id += 1;
    // AppConfig's IDs: seven lower-case letters and digits.
    format!("{:07x}", 0x0a0_0000 + state.next_id)
}

fn json_field(body: &[u8], name: &str) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}
