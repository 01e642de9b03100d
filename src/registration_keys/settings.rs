//! The `registrationKeys` section of the AppConfig profile.

use crate::config::Section;
use serde::Deserialize;

/// `{"registrationKeys": {"enabled": true, "ttlSeconds": 1800}}`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RegistrationKeySettings {
    /// `false` switches minting and revoking off (503).
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

impl Section for RegistrationKeySettings {
    const NAME: &'static str = "registrationKeys";

    fn validate(&self) -> Result<(), String> {
        if TTL_RANGE.contains(&self.ttl_seconds) {
            Ok(())
        } else {
            Err(format!(
                "ttlSeconds is {}, outside {}..={}",
                self.ttl_seconds,
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, parse_profile, parse_section};

    fn parse(json: &[u8]) -> Result<RegistrationKeySettings, ConfigError> {
        parse_section(&parse_profile(json)?)
    }

    #[test]
    fn defaults_are_enabled_and_thirty_minutes() {
        let s = RegistrationKeySettings::default();
        assert!(s.enabled);
        assert_eq!(s.ttl_seconds, 1800);
    }

    #[test]
    fn parses_its_section_and_ignores_the_others() {
        let s = parse(
            br#"{"registrationKeys":{"enabled":false,"ttlSeconds":600},"otherRoute":{"x":[1]}}"#,
        )
        .unwrap();
        assert!(!s.enabled);
        assert_eq!(s.ttl_seconds, 600);
        // Another feature's broken section is not this one's problem.
        let s = parse(br#"{"registrationKeys":{"ttlSeconds":60},"devices":"broken"}"#).unwrap();
        assert_eq!(s.ttl_seconds, 60);
    }

    #[test]
    fn missing_settings_take_defaults() {
        assert_eq!(parse(b"{}").unwrap(), RegistrationKeySettings::default());
        let s = parse(br#"{"registrationKeys":{"ttlSeconds":60}}"#).unwrap();
        assert!(s.enabled);
        assert_eq!(s.ttl_seconds, 60);
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
            assert_eq!(parse(json.as_bytes()).is_ok(), ok, "{ttl}");
        }
    }

    #[test]
    fn malformed_sections_are_rejected_whole() {
        for bad in [
            &br#"{"registrationKeys":{"enabled":"yes"}}"#[..],
            br#"{"registrationKeys":{"ttlSeconds":-5}}"#,
            br#"{"registrationKeys":{"ttlSeconds":1.5}}"#,
            br#"{"registrationKeys":{"ttlSeconds":99999999999}}"#,
            br#"{"registrationKeys":[]}"#,
            br#"{"registrationKeys":{"enabled":null}}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ConfigError::Invalid(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
