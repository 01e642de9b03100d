//! Runtime settings from AWS AppConfig, read through the AppConfig Lambda extension.
//!
//! The extension serves the deployed profile on `localhost:2772` and refreshes it in the
//! background, so a read is a local HTTP call. We still cache the parsed settings for a few
//! seconds to keep that call off most invokes, and bound it with a short timeout so that a
//! stuck extension costs a request at most that much. A failed or invalid read never fails
//! a request: the last good settings (or the built-in defaults) stay in force, and one log
//! line says why.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The settings every handler may read. Missing fields take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Settings {
    pub registration_keys: RegistrationKeySettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RegistrationKeySettings {
    /// `false` switches `POST /registration-keys` off (503).
    pub enabled: bool,
    /// How long a minted key stays valid.
    pub ttl_seconds: u32,
}

impl Default for RegistrationKeySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_seconds: 1800,
        }
    }
}

/// Accepted key lifetimes: at least a minute to type the key in, at most a day.
pub const TTL_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;

impl Settings {
    /// Parses and validates a JSON profile. Anything out of range rejects the whole profile:
    /// half-applied settings are harder to reason about than the previous good ones.
    pub fn parse(json: &[u8]) -> Result<Self, ConfigError> {
        let invalid = |e: serde_json::Error| ConfigError::Invalid(e.to_string());
        // serde reads a struct from a JSON array too; a profile and its sections are objects.
        let profile: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(json).map_err(invalid)?;
        if let Some((name, _)) = profile.iter().find(|(_, v)| !v.is_object()) {
            return Err(ConfigError::Invalid(format!("{name} is not an object")));
        }
        let settings = Self::deserialize(serde_json::Value::Object(profile)).map_err(invalid)?;
        let ttl = settings.registration_keys.ttl_seconds;
        if !TTL_RANGE.contains(&ttl) {
            return Err(ConfigError::Invalid(format!(
                "registrationKeys.ttlSeconds is {ttl}, outside {}..={}",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            )));
        }
        Ok(settings)
    }
}

/// Why the settings could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A setting in the environment is missing or malformed (a startup error).
    Env(String),
    /// The extension could not be reached, timed out, or answered with an error status.
    Unreachable(String),
    /// The profile is not valid JSON, has wrong types, or a value out of range.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(m) => write!(f, "configuration environment: {m}"),
            Self::Unreachable(m) => write!(f, "AppConfig extension unreachable: {m}"),
            Self::Invalid(m) => write!(f, "AppConfig profile invalid: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the settings come from.
pub enum ConfigSource {
    /// No AppConfig names are set (local runs): the built-in defaults.
    Defaults(Arc<Settings>),
    AppConfig(Box<AppConfigClient>),
}

impl ConfigSource {
    /// Reads the AppConfig names from the environment. All three names set: AppConfig; none:
    /// defaults; some: a startup error, since that is a deployment mistake, not a choice.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let names = [
            "FIREFLY_APPCONFIG_APPLICATION",
            "FIREFLY_APPCONFIG_ENVIRONMENT",
            "FIREFLY_APPCONFIG_PROFILE",
        ];
        let values: Vec<Option<String>> = names
            .iter()
            .map(|n| env(n).filter(|v| !v.is_empty()))
            .collect();
        if values.iter().all(Option::is_none) {
            return Ok(Self::Defaults(Arc::new(Settings::default())));
        }
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::Env(format!(
                "set all three AppConfig names or none; missing {}",
                missing.join(", ")
            )));
        }
        let [app, environment, profile] = [&values[0], &values[1], &values[2]]
            .map(|v| v.as_deref().unwrap_or_default().to_owned());
        let port: u16 = parse_env(env, "AWS_APPCONFIG_EXTENSION_HTTP_PORT", 2772, 1..=65_535)?;
        let timeout_ms: u64 = parse_env(env, "FIREFLY_APPCONFIG_TIMEOUT_MS", 250, 1..=1_000)?;
        let cache_seconds: u64 = parse_env(env, "FIREFLY_CONFIG_CACHE_SECONDS", 15, 0..=3_600)?;
        for (name, value) in names.iter().zip([&app, &environment, &profile]) {
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
        let url = format!(
            "http://localhost:{port}/applications/{app}/environments/{environment}/configurations/{profile}"
        );
        Ok(Self::AppConfig(Box::new(AppConfigClient::new(
            url,
            Duration::from_millis(timeout_ms),
            Duration::from_secs(cache_seconds),
        )?)))
    }

    /// The settings in force now. Never fails: see the module docs.
    pub async fn current(&self) -> Arc<Settings> {
        match self {
            Self::Defaults(s) => Arc::clone(s),
            Self::AppConfig(c) => c.current().await,
        }
    }
}

fn parse_env<T: std::str::FromStr + PartialOrd + fmt::Display>(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    let Some(raw) = env(name).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ConfigError::Env(format!(
            "{name}={raw:?} is not a number in {}..={}",
            range.start(),
            range.end()
        ))),
    }
}

/// Largest profile we read; ours is a few hundred bytes.
const MAX_PROFILE_BYTES: usize = 64 * 1024;

/// Reads one profile from the AppConfig extension, caching the result.
pub struct AppConfigClient {
    uri: hyper::Uri,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
    cache_for: Duration,
    state: Mutex<CacheState>,
}

struct CacheState {
    settings: Arc<Settings>,
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
                settings: Arc::new(Settings::default()),
                checked_at: None,
            }),
        })
    }

    pub async fn current(&self) -> Arc<Settings> {
        {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = state.checked_at
                && at.elapsed() < self.cache_for
            {
                return Arc::clone(&state.settings);
            }
        }
        let fetched = self.fetch().await;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // A failed read is cached too: a down extension costs one timeout per cache period,
        // not one per request, and one log line per period, not a flood.
        state.checked_at = Some(Instant::now());
        match fetched {
            Ok(settings) => {
                if *state.settings != settings {
                    tracing::info!(
                        registration_keys_enabled = settings.registration_keys.enabled,
                        registration_keys_ttl_seconds = settings.registration_keys.ttl_seconds,
                        "AppConfig settings loaded"
                    );
                }
                state.settings = Arc::new(settings);
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "AppConfig read failed; keeping the last good settings (the built-in defaults if none)"
                );
            }
        }
        Arc::clone(&state.settings)
    }

    async fn fetch(&self) -> Result<Settings, ConfigError> {
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
            Settings::parse(&body)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_enabled_and_thirty_minutes() {
        let s = Settings::default();
        assert!(s.registration_keys.enabled);
        assert_eq!(s.registration_keys.ttl_seconds, 1800);
    }

    #[test]
    fn parses_a_full_profile_and_ignores_unknown_settings() {
        let s = Settings::parse(
            br#"{"registrationKeys":{"enabled":false,"ttlSeconds":600},"otherRoute":{"x":[1]}}"#,
        )
        .unwrap();
        assert!(!s.registration_keys.enabled);
        assert_eq!(s.registration_keys.ttl_seconds, 600);
    }

    #[test]
    fn missing_settings_take_defaults() {
        assert_eq!(Settings::parse(b"{}").unwrap(), Settings::default());
        let s = Settings::parse(br#"{"registrationKeys":{"ttlSeconds":60}}"#).unwrap();
        assert!(s.registration_keys.enabled);
        assert_eq!(s.registration_keys.ttl_seconds, 60);
    }

    #[test]
    fn ttl_bounds_are_inclusive() {
        for (ttl, ok) in [
            (59, false),
            (60, true),
            (86_400, true),
            (86_401, false),
            (0, false),
        ] {
            let json = format!(r#"{{"registrationKeys":{{"ttlSeconds":{ttl}}}}}"#);
            assert_eq!(Settings::parse(json.as_bytes()).is_ok(), ok, "{ttl}");
        }
    }

    #[test]
    fn malformed_profiles_are_rejected() {
        for bad in [
            &b""[..],
            b"not json",
            b"[]",
            b"null",
            br#"{"registrationKeys":{"enabled":"yes"}}"#,
            br#"{"registrationKeys":{"ttlSeconds":-5}}"#,
            br#"{"registrationKeys":{"ttlSeconds":1.5}}"#,
            br#"{"registrationKeys":{"ttlSeconds":99999999999}}"#,
            br#"{"registrationKeys":[]}"#,
            br#"{"registrationKeys":{"enabled":null}}"#,
        ] {
            assert!(
                matches!(Settings::parse(bad), Err(ConfigError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const NAMES: [(&str, &str); 3] = [
        ("FIREFLY_APPCONFIG_APPLICATION", "firefly"),
        ("FIREFLY_APPCONFIG_ENVIRONMENT", "prod"),
        ("FIREFLY_APPCONFIG_PROFILE", "api"),
    ];

    #[test]
    fn no_names_means_defaults() {
        assert!(matches!(
            ConfigSource::from_env(&env(&[])),
            Ok(ConfigSource::Defaults(_))
        ));
    }

    #[test]
    fn all_names_build_the_extension_url() {
        let Ok(ConfigSource::AppConfig(c)) = ConfigSource::from_env(&env(&NAMES)) else {
            panic!("expected AppConfig");
        };
        assert_eq!(
            c.uri.to_string(),
            "http://localhost:2772/applications/firefly/environments/prod/configurations/api"
        );
        assert_eq!(c.timeout, Duration::from_millis(250));
        let mut with_port = NAMES.to_vec();
        with_port.push(("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "9999"));
        let Ok(ConfigSource::AppConfig(c)) = ConfigSource::from_env(&env(&with_port)) else {
            panic!("expected AppConfig");
        };
        assert_eq!(c.uri.port_u16(), Some(9999));
    }

    #[test]
    fn some_names_bad_names_or_bad_numbers_are_startup_errors() {
        let err = ConfigSource::from_env(&env(&NAMES[..2])).err().unwrap();
        assert!(
            err.to_string().contains("FIREFLY_APPCONFIG_PROFILE"),
            "{err}"
        );
        let mut bad = NAMES.to_vec();
        bad[2] = ("FIREFLY_APPCONFIG_PROFILE", "../x");
        assert!(ConfigSource::from_env(&env(&bad)).is_err());
        for (k, v) in [
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "0"),
            ("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "http"),
            ("FIREFLY_APPCONFIG_TIMEOUT_MS", "5000"),
            ("FIREFLY_CONFIG_CACHE_SECONDS", "-1"),
        ] {
            let mut e = NAMES.to_vec();
            e.push((k, v));
            let err = ConfigSource::from_env(&env(&e)).err().unwrap();
            assert!(err.to_string().contains(k), "{err}");
        }
    }
}
