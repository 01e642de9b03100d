//! Runtime settings: what a feature's settings are ([`Section`], [`Settings`]), where the
//! profile comes from ([`ConfigSource`]: the AppConfig extension in [`appconfig`], a local
//! file in [`file`], or the defaults), and the log level FireFly's console sets.
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

mod appconfig;
mod file;

pub use appconfig::AppConfigClient;
use appconfig::Extension;
pub use file::FileSource;

use crate::sync::Locked;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The variable that names the AppConfig environment (FireFly's templates: `default`).
pub const ENVIRONMENT_VAR: &str = crate::vars::APP_CONFIG_ENV.name;

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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A setting in the environment is missing or malformed (a startup error).
    #[error("configuration environment: {0}")]
    Env(String),
    /// The extension could not be reached, timed out, or answered with an error status.
    #[error("AppConfig extension unreachable: {0}")]
    Unreachable(String),
    /// The profile is not valid JSON, has wrong types, or a value out of range.
    #[error("AppConfig profile invalid: {0}")]
    Invalid(String),
}

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

impl Profile {
    /// Takes a fresh read: new content bumps the version (so each feature re-parses its
    /// section); a failed read keeps the last good profile, counts a `ConfigFallbacks`
    /// metric and logs one warning, `{source} failed; keeping ...`.
    pub(crate) fn accept(&mut self, read: Result<Map<String, Value>, String>, source: &str) {
        match read {
            Ok(sections) => {
                if *self.sections != sections {
                    self.version += 1;
                    self.sections = Arc::new(sections);
                    tracing::info!(source, "settings read");
                }
            }
            Err(e) => {
                crate::telemetry::metric("ConfigFallbacks", crate::telemetry::Unit::Count, 1.0);
                tracing::warn!(
                    error = %e,
                    "{source} failed; keeping the last good settings (the built-in defaults if none)"
                );
            }
        }
    }
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
