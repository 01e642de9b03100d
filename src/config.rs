//! Runtime settings from AWS AppConfig, read through the AppConfig Lambda extension.
//!
//! The extension serves the deployed profile on `localhost:2772` and refreshes it in the
//! background, so a read is a local HTTP call. We still cache the profile for a few seconds
//! to keep that call off most invokes, and bound it with a short timeout so that a stuck
//! extension costs a request at most that much. A failed read never fails a request: the
//! last good profile (or none: the built-in defaults) stays in force, and one log line says
//! why.
//!
//! The names are FireFly-Cloud's, so its console's Configuration page manages our functions
//! as it manages its own: application = the function's name, environment = `APP_CONFIG_ENV`,
//! profile `features`. `APP_CONFIG_ENV` unset: no AppConfig, the built-in defaults (which
//! behave as FireFly's functions do).
//!
//! The profile is a JSON object of sections, one per feature (`{"registrationKeys": {..}}`).
//! A feature reads only its own section through [`Settings`], which parses and validates it
//! when the profile changes: a bad section keeps that feature's last good settings and
//! never disturbs another feature's.

use crate::sync::Locked;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The variable that names the AppConfig environment (FireFly's templates: `default`).
pub const ENVIRONMENT_VAR: &str = "APP_CONFIG_ENV";

/// The profile our settings live in: FireFly's feature flags.
pub const PROFILE: &str = "features";

/// One feature's section of the profile. Missing fields take their defaults; a missing
/// section is all defaults.
pub trait Section:
    DeserializeOwned + Default + PartialEq + fmt::Debug + Send + Sync + 'static
{
    /// The section's key in the profile (`registrationKeys`).
    const NAME: &'static str;

    /// Range checks beyond the types. An error rejects the whole section.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Parses and validates `T`'s section of a profile. Anything wrong rejects the whole
/// section: half-applied settings are harder to reason about than the previous good ones.
pub fn parse_section<T: Section>(profile: &Map<String, Value>) -> Result<T, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("{}: {m}", T::NAME));
    let Some(section) = profile.get(T::NAME) else {
        return Ok(T::default());
    };
    // serde reads a struct from a JSON array too; a section is an object.
    if !section.is_object() {
        return Err(invalid("not an object".into()));
    }
    let value = T::deserialize(section).map_err(|e| invalid(e.to_string()))?;
    value.validate().map_err(invalid)?;
    Ok(value)
}

/// Parses a whole profile: a JSON object (its sections are each feature's to check).
pub fn parse_profile(json: &[u8]) -> Result<Map<String, Value>, ConfigError> {
    serde_json::from_slice(json).map_err(|e| ConfigError::Invalid(e.to_string()))
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

/// Where the profile comes from.
pub enum ConfigSource {
    /// No AppConfig names are set (local runs): every section takes its defaults.
    Defaults,
    AppConfig(Box<AppConfigClient>),
    /// A local JSON file (`FIREFLY_CONFIG_FILE`, local runs): re-read when it changes.
    File(Box<FileSource>),
}

/// A profile as read, and a number that changes whenever its content does.
#[derive(Clone, Default)]
pub struct Profile {
    pub version: u64,
    pub sections: Arc<Map<String, Value>>,
}

impl ConfigSource {
    /// `APP_CONFIG_ENV` set: AppConfig, application = the function's name (as the
    /// dispatcher reads it), profile [`PROFILE`]; unset: defaults; `FIREFLY_CONFIG_FILE`: a
    /// local file (not with `APP_CONFIG_ENV`: that is a mistake, not a choice).
    pub fn from_env(env: &crate::deploy::Env<'_>) -> Result<Self, ConfigError> {
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        let environment = set(ENVIRONMENT_VAR);
        if let Some(path) = set(crate::vars::FIREFLY_CONFIG_FILE.name) {
            if environment.is_some() {
                return Err(ConfigError::Env(format!(
                    "FIREFLY_CONFIG_FILE and {ENVIRONMENT_VAR} are both set: choose one"
                )));
            }
            return Ok(Self::File(Box::new(FileSource::new(path.into()))));
        }
        let Some(environment) = environment else {
            return Ok(Self::Defaults);
        };
        let app = set(crate::vars::FIREFLY_FUNCTION_NAME.name)
            .or_else(|| set(crate::vars::AWS_LAMBDA_FUNCTION_NAME.name))
            .ok_or_else(|| {
                ConfigError::Env(format!(
                    "{ENVIRONMENT_VAR} is set but AWS_LAMBDA_FUNCTION_NAME (the AppConfig application) is not"
                ))
            })?;
        let ext = Extension::new(env, &app, &environment, PROFILE)?;
        Ok(Self::AppConfig(Box::new(AppConfigClient::new(
            ext.url,
            ext.timeout,
            ext.cache_for,
        )?)))
    }

    /// The profile in force now. Never fails: see the module docs.
    pub async fn profile(&self) -> Profile {
        match self {
            Self::Defaults => Profile::default(),
            Self::AppConfig(c) => c.profile().await,
            Self::File(f) => f.profile(),
        }
    }
}

/// Where the AppConfig extension serves one profile of this function, and how to read it.
struct Extension {
    url: String,
    timeout: Duration,
    cache_for: Duration,
}

impl Extension {
    fn new(
        env: &crate::deploy::Env<'_>,
        app: &str,
        environment: &str,
        profile: &str,
    ) -> Result<Self, ConfigError> {
        let port: u16 = parse_env(
            env,
            crate::vars::AWS_APPCONFIG_EXTENSION_HTTP_PORT.name,
            2772,
            1..=65_535,
        )?;
        let timeout_ms: u64 = parse_env(
            env,
            crate::vars::FIREFLY_APPCONFIG_TIMEOUT_MS.name,
            250,
            1..=1_000,
        )?;
        let cache_seconds: u64 = parse_env(
            env,
            crate::vars::FIREFLY_CONFIG_CACHE_SECONDS.name,
            15,
            0..=3_600,
        )?;
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

/// The profile FireFly's console sets each function's log level in: `{"logging": "LEVEL"}`.
pub const LOGGING_PROFILE: &str = "logging";

/// The log level FireFly's console set for this function, read once at start-up as
/// FireFly's functions read it: `None` without `APP_CONFIG_ENV`; otherwise the profile's
/// level in Python's names, folded to upper case, and `WARNING` when the profile or its
/// level is missing, unreadable or unknown (FireFly's default).
pub async fn logging_level(
    env: &crate::deploy::Env<'_>,
) -> Result<Option<&'static str>, ConfigError> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let Some(environment) = set(ENVIRONMENT_VAR) else {
        return Ok(None);
    };
    let Some(app) = set(crate::vars::FIREFLY_FUNCTION_NAME.name)
        .or_else(|| set(crate::vars::AWS_LAMBDA_FUNCTION_NAME.name))
    else {
        return Ok(None);
    };
    let ext = Extension::new(env, &app, &environment, LOGGING_PROFILE)?;
    let client = AppConfigClient::new(ext.url, ext.timeout, Duration::ZERO)?;
    let level = client.fetch().await.ok().and_then(|profile| {
        let name = profile
            .get("logging")?
            .as_str()?
            .trim()
            .to_ascii_uppercase();
        ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
            .into_iter()
            .find(|l| *l == name)
    });
    Ok(Some(level.unwrap_or("WARNING")))
}

/// A profile in a local file, read again whenever its modification time or size changes
/// (one `stat` per request: local runs only). A file that is missing or not a JSON object
/// keeps the last good profile, with one warning per change.
pub struct FileSource {
    path: std::path::PathBuf,
    state: Mutex<FileState>,
}

struct FileState {
    /// What the file looked like when last read: (modified, length); `None` before.
    seen: Option<(Option<std::time::SystemTime>, u64)>,
    profile: Profile,
}

impl FileSource {
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(FileState {
                seen: None,
                profile: Profile::default(),
            }),
        }
    }

    pub fn profile(&self) -> Profile {
        let mut state = self.state.locked();
        let look = std::fs::metadata(&self.path)
            .map(|m| (m.modified().ok(), m.len()))
            .map_err(|e| e.to_string());
        let changed = match &look {
            Ok(now) => state.seen != Some(*now),
            // Missing: warn once, keep what we have.
            Err(_) => state.seen != Some((None, u64::MAX)),
        };
        if changed {
            let read = look.clone().and_then(|_| {
                std::fs::read(&self.path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| parse_profile(&b).map_err(|e| e.to_string()))
            });
            state.seen = Some(look.unwrap_or((None, u64::MAX)));
            match read {
                Ok(sections) => {
                    if *state.profile.sections != sections {
                        state.profile = Profile {
                            version: state.profile.version + 1,
                            sections: Arc::new(sections),
                        };
                        tracing::info!(path = %self.path.display(), "settings file read");
                    }
                }
                Err(e) => {
                    crate::telemetry::metric("ConfigFallbacks", crate::telemetry::Unit::Count, 1.0);
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %e,
                        "settings file unreadable; keeping the last good settings (the built-in defaults if none)"
                    );
                }
            }
        }
        state.profile.clone()
    }
}

/// One feature's settings: its section of the profile, parsed when the profile changes.
pub struct Settings<T> {
    source: Arc<ConfigSource>,
    state: Mutex<SectionState<T>>,
}

struct SectionState<T> {
    /// The profile version `value` was last checked against.
    version: u64,
    value: Arc<T>,
}

impl<T: Section> Settings<T> {
    pub fn new(source: Arc<ConfigSource>) -> Self {
        Self::starting_with(source, T::default())
    }

    /// Settings that stay `value` (tests, benches, local runs without AppConfig).
    pub fn fixed(value: T) -> Self {
        Self::starting_with(Arc::new(ConfigSource::Defaults), value)
    }

    fn starting_with(source: Arc<ConfigSource>, value: T) -> Self {
        Self {
            source,
            state: Mutex::new(SectionState {
                version: 0,
                value: Arc::new(value),
            }),
        }
    }

    /// The settings in force now. Never fails: a bad section keeps the last good value.
    pub async fn current(&self) -> Arc<T> {
        let profile = self.source.profile().await;
        let mut state = self.state.locked();
        if profile.version != state.version {
            state.version = profile.version;
            match parse_section::<T>(&profile.sections) {
                Ok(value) => {
                    if *state.value != value {
                        tracing::info!(section = T::NAME, settings = ?value, "AppConfig settings loaded");
                        state.value = Arc::new(value);
                    }
                }
                Err(e) => {
                    crate::telemetry::metric("ConfigFallbacks", crate::telemetry::Unit::Count, 1.0);
                    tracing::warn!(
                        section = T::NAME,
                        error = %e,
                        "AppConfig section rejected; keeping its last good settings (the built-in defaults if none)"
                    )
                }
            }
        }
        Arc::clone(&state.value)
    }
}

fn parse_env<T: std::str::FromStr + PartialOrd + fmt::Display>(
    env: &crate::deploy::Env<'_>,
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
        match fetched {
            Ok(sections) => {
                if *state.profile.sections != sections {
                    state.profile = Profile {
                        version: state.profile.version + 1,
                        sections: Arc::new(sections),
                    };
                }
            }
            Err(e) => {
                crate::telemetry::metric("ConfigFallbacks", crate::telemetry::Unit::Count, 1.0);
                tracing::warn!(
                    error = %e,
                    "AppConfig read failed; keeping the last good settings (the built-in defaults if none)"
                );
            }
        }
        state.profile.clone()
    }

    async fn fetch(&self) -> Result<Map<String, Value>, ConfigError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    struct Alpha {
        limit: u32,
    }

    impl Section for Alpha {
        const NAME: &'static str = "alpha";
        fn validate(&self) -> Result<(), String> {
            (self.limit <= 10)
                .then_some(())
                .ok_or_else(|| format!("limit {} is over 10", self.limit))
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
    #[serde(default)]
    struct Beta {
        on: bool,
    }

    impl Section for Beta {
        const NAME: &'static str = "beta";
    }

    fn profile(json: &str) -> Map<String, Value> {
        parse_profile(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_profile_is_a_json_object() {
        for bad in [&b""[..], b"not json", b"[]", b"null", b"1"] {
            assert!(
                matches!(parse_profile(bad), Err(ConfigError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(parse_profile(b"{}").unwrap().is_empty());
    }

    #[test]
    fn each_section_is_parsed_and_rejected_on_its_own() {
        let p = profile(r#"{"alpha":{"limit":99},"beta":{"on":true},"other":[1]}"#);
        let err = parse_section::<Alpha>(&p).unwrap_err();
        assert!(
            err.to_string().contains("alpha: limit 99 is over 10"),
            "{err}"
        );
        assert_eq!(parse_section::<Beta>(&p).unwrap(), Beta { on: true });
        // Missing sections and fields take their defaults.
        assert_eq!(
            parse_section::<Alpha>(&profile("{}")).unwrap(),
            Alpha::default()
        );
        for bad in [
            r#"{"alpha":[]}"#,
            r#"{"alpha":null}"#,
            r#"{"alpha":{"limit":"x"}}"#,
        ] {
            assert!(parse_section::<Alpha>(&profile(bad)).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_settings_file_is_read_again_when_it_changes_and_a_bad_one_keeps_the_last() {
        let dir = std::env::temp_dir().join(format!("firefly-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("settings.json");
        std::fs::write(&path, r#"{"alpha":{"limit":3}}"#).unwrap();
        let p = path.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "FIREFLY_CONFIG_FILE").then(|| p.clone());
        let source = Arc::new(ConfigSource::from_env(&env).unwrap());
        let alpha: Settings<Alpha> = Settings::new(Arc::clone(&source));
        assert_eq!(alpha.current().await.limit, 3);
        // A different length is a change even within the file system's time resolution.
        std::fs::write(&path, r#"{"alpha":{"limit":7}} "#).unwrap();
        assert_eq!(alpha.current().await.limit, 7);
        std::fs::write(&path, "not json at all").unwrap();
        assert_eq!(alpha.current().await.limit, 7);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(alpha.current().await.limit, 7);
        let both = |k: &str| match k {
            "FIREFLY_CONFIG_FILE" => Some("x.json".to_string()),
            "APP_CONFIG_ENV" => Some("default".to_string()),
            _ => None,
        };
        assert!(ConfigSource::from_env(&both).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn fixed_settings_stay_as_given() {
        let s = Settings::fixed(Alpha { limit: 3 });
        assert_eq!(*s.current().await, Alpha { limit: 3 });
        let d: Settings<Beta> = Settings::new(Arc::new(ConfigSource::Defaults));
        assert_eq!(*d.current().await, Beta::default());
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const NAMES: [(&str, &str); 2] = [
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            "firefly-func-api-registration-keys-post",
        ),
        ("APP_CONFIG_ENV", "default"),
    ];

    #[test]
    fn no_names_means_defaults() {
        assert!(matches!(
            ConfigSource::from_env(&env(&[])),
            Ok(ConfigSource::Defaults)
        ));
    }

    #[test]
    fn all_names_build_the_extension_url() {
        let Ok(ConfigSource::AppConfig(c)) = ConfigSource::from_env(&env(&NAMES)) else {
            panic!("expected AppConfig");
        };
        assert_eq!(
            c.uri.to_string(),
            "http://localhost:2772/applications/firefly-func-api-registration-keys-post/environments/default/configurations/features"
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
        // APP_CONFIG_ENV without a function name: no application to read.
        let err = ConfigSource::from_env(&env(&NAMES[1..])).err().unwrap();
        assert!(
            err.to_string().contains("AWS_LAMBDA_FUNCTION_NAME"),
            "{err}"
        );
        // The function's name alone is no AppConfig: FireFly's defaults.
        assert!(matches!(
            ConfigSource::from_env(&env(&NAMES[..1])),
            Ok(ConfigSource::Defaults)
        ));
        let mut bad = NAMES.to_vec();
        bad[1] = ("APP_CONFIG_ENV", "../x");
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
