//! The AppConfig Lambda extension: one profile of this function, read over its local HTTP
//! API, cached for a few seconds, bounded by a short timeout.

use super::{ConfigError, ENVIRONMENT_VAR, Profile, parse_profile};
use crate::sync::Locked;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the AppConfig extension serves one profile of this function, and how to read it.
pub(super) struct Extension {
    pub(super) url: String,
    pub(super) timeout: Duration,
    pub(super) cache_for: Duration,
}

impl Extension {
    pub(super) fn new(
        env: &crate::deploy::Env<'_>,
        app: &str,
        environment: &str,
        profile: &str,
    ) -> Result<Self, ConfigError> {
        use crate::vars::{
            AWS_APPCONFIG_EXTENSION_HTTP_PORT, FIREFLY_APPCONFIG_TIMEOUT_MS,
            FIREFLY_CONFIG_CACHE_SECONDS,
        };
        let port: u16 = parse_env(env, &AWS_APPCONFIG_EXTENSION_HTTP_PORT, 1..=65_535)?;
        let timeout_ms: u64 = parse_env(env, &FIREFLY_APPCONFIG_TIMEOUT_MS, 1..=1_000)?;
        let cache_seconds: u64 = parse_env(env, &FIREFLY_CONFIG_CACHE_SECONDS, 0..=3_600)?;
        for (name, value) in [
            ("AWS_LAMBDA_FUNCTION_NAME", app),
            (ENVIRONMENT_VAR, environment),
        ] {
            // The names become URL path segments; refuse anything that would change the path.
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(ConfigError::Env(format!(
                    "{name} may hold only letters, digits, '-', '_' and '.'"
                )));
            }
        }
        Ok(Self {
            url: format!(
                "http://localhost:{port}/applications/{app}/environments/{environment}/configurations/{profile}"
            ),
            timeout: Duration::from_millis(timeout_ms),
            cache_for: Duration::from_secs(cache_seconds),
        })
    }
}

/// `var` as a number in `range`; unset or empty, its documented default (so the default
/// the docs give is the one that holds).
fn parse_env<T: std::str::FromStr + PartialOrd + fmt::Display>(
    env: &crate::deploy::Env<'_>,
    var: &crate::vars::Var,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    let raw = env(var.name).filter(|v| !v.is_empty());
    let text = raw.as_deref().unwrap_or(var.default);
    match text.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ConfigError::Env(format!(
            "{}={text:?} is not a number in {}..={}",
            var.name,
            range.start(),
            range.end()
        ))),
    }
}

/// Largest profile we read; ours is a few hundred bytes.
const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// Reads one profile from the AppConfig extension, caching the result.
pub struct AppConfigClient {
    pub(super) uri: hyper::Uri,
    client: Client<HttpConnector, Empty<Bytes>>,
    pub(super) timeout: Duration,
    cache_for: Duration,
    state: Mutex<CacheState>,
}

struct CacheState {
    profile: Profile,
    /// When the last read (good or bad) finished; `None` before the first.
    checked_at: Option<Instant>,
}

impl AppConfigClient {
    pub fn new(url: String, timeout: Duration, cache_for: Duration) -> Result<Self, ConfigError> {
        let uri = url
            .parse()
            .map_err(|e| ConfigError::Env(format!("AppConfig URL {url}: {e}")))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        Ok(Self {
            uri,
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            cache_for,
            state: Mutex::new(CacheState {
                profile: Profile::default(),
                checked_at: None,
            }),
        })
    }

    pub async fn profile(&self) -> Profile {
        {
            let state = self.state.locked();
            if let Some(at) = state.checked_at
                && at.elapsed() < self.cache_for
            {
                return state.profile.clone();
            }
        }
        let fetched = self.fetch().await;
        let mut state = self.state.locked();
        // A failed read is cached too: a down extension costs one timeout per cache period,
        // not one per request, and one log line per period, not a flood.
        state.checked_at = Some(Instant::now());
        state
            .profile
            .accept(fetched.map_err(|e| e.to_string()), "AppConfig read");
        state.profile.clone()
    }

    pub(crate) async fn fetch(&self) -> Result<Map<String, Value>, ConfigError> {
        let read = async {
            let response = self
                .client
                .get(self.uri.clone())
                .await
                .map_err(|e| ConfigError::Unreachable(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_PROFILE_BYTES)
                .collect()
                .await
                .map_err(|e| ConfigError::Unreachable(format!("reading the body: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(ConfigError::Unreachable(format!(
                    "the extension answered {status}"
                )));
            }
            parse_profile(&body)
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(result) => result,
            Err(_) => Err(ConfigError::Unreachable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}
