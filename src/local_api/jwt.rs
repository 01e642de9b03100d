//! JWT checks as API Gateway's JWT authorizer makes them: a bearer token, its signature
//! against a JWKS, `iss`, `aud` (or Cognito's `client_id`), `exp` and `nbf`, and the
//! route's scopes. And a local development key that signs tokens for `firefly-local token`,
//! so nothing needs a Cognito pool.

use super::event::JwtContext;
use crate::clock::{Clock, SystemClock};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Map, Value, json};
use std::path::Path;

/// The issuer and audience of development tokens.
pub const DEV_ISSUER: &str = "https://firefly-local.invalid/dev";
pub const DEV_AUDIENCE: &str = "firefly-local";

/// Why a request was refused (logged; the caller only sees `{"message":"Unauthorized"}`).
pub type Refusal = String;

/// The authorizer's configuration: who issues tokens, for whom, with which keys.
pub struct Authorizer {
    issuer: String,
    audience: String,
    keys: std::sync::RwLock<JwkSet>,
    /// Where the keys came from, to fetch them again when a token names a key they lack
    /// (the pool rotated its keys): at most once per [`REFRESH_EVERY`].
    refresh: Option<Refresh>,
}

struct Refresh {
    url: String,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The least time between two fetches of the JWKS: an unknown `kid` in a flood of forged
/// tokens must not become a flood of fetches.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A key's `kid`: the first 8 bytes of the SHA-256 of its public part, in hex.
pub(crate) fn kid_of(public: &[u8]) -> String {
    super::hex(&ring::digest::digest(&ring::digest::SHA256, public).as_ref()[..8])
}

/// The refusal of a token whose `kid` names no key of the JWKS.
pub const UNKNOWN_KID: &str = "no key in the JWKS for the token's kid";

impl Authorizer {
    pub fn new(issuer: String, audience: String, keys: JwkSet) -> Self {
        Self {
            issuer,
            audience,
            keys: std::sync::RwLock::new(keys),
            refresh: None,
        }
    }

    /// Fetches the keys from `url` again when a token names a key they lack.
    pub fn refreshing_from(mut self, url: String) -> Self {
        self.refresh = Some(Refresh {
            url,
            last: std::sync::Mutex::new(None),
        });
        self
    }

    /// The JWKS URL to fetch now, if a refresh is allowed (and then it is counted as done).
    pub fn refresh_due(&self) -> Option<&str> {
        use crate::sync::Locked;
        let refresh = self.refresh.as_ref()?;
        let mut last = refresh.last.locked();
        if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
            return None;
        }
        *last = Some(std::time::Instant::now());
        Some(&refresh.url)
    }

    /// Replaces the keys (after a refresh).
    pub fn set_keys(&self, keys: JwkSet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
    }

    /// The local development issuer (its P-256 key): API Gateway would accept RSA only,
    /// and always a `kid`; development tokens are the one local exception.
    fn is_dev(&self) -> bool {
        self.issuer == DEV_ISSUER
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Checks the `Authorization` header for a route that requires `scopes` (any one).
    pub fn check(
        &self,
        authorization: Option<&str>,
        scopes: &[&str],
    ) -> Result<JwtContext, Refusal> {
        let raw = authorization.ok_or("no Authorization header")?.trim();
        let token = raw
            .strip_prefix("Bearer ")
            .or_else(|| raw.strip_prefix("bearer "))
            .unwrap_or(raw)
            .trim();
        if token.is_empty() {
            return Err("an empty token".into());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        // As API Gateway's JWT authorizer: RSA only (RS256), and a `kid` naming a key of
        // the JWKS. The development issuer signs with P-256 (ES256): accepted from it only.
        // Never `none`, never HS256 with a public key as its secret.
        let accepted = if self.is_dev() {
            matches!(header.alg, Algorithm::RS256 | Algorithm::ES256)
        } else {
            header.alg == Algorithm::RS256
        };
        if !accepted {
            return Err(format!("algorithm {:?} is not accepted", header.alg));
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let jwk = match &header.kid {
            Some(kid) => keys.find(kid),
            None if self.is_dev() && keys.keys.len() == 1 => keys.keys.first(),
            None => return Err("the token has no kid".into()),
        }
        .ok_or(UNKNOWN_KID)?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable JWKS key: {e}"))?;
        let key_alg = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            _ => return Err("the JWKS key is neither RSA nor P-256".into()),
        };
        if header.alg != key_alg {
            return Err(format!(
                "the token's alg {:?} does not match its key",
                header.alg
            ));
        }
        let mut validation = Validation::new(key_alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| format!("token refused: {e}"))?;
        let claims = data.claims;
        // API Gateway: `exp` after now (equal is expired), `iat` and `nbf` not after now.
        let now = SystemClock.now_epoch_seconds();
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        if number("exp").is_none_or(|exp| exp <= now) {
            return Err("the token has expired".into());
        }
        if number("iat").is_some_and(|iat| iat > now) {
            return Err("the token was issued in the future (iat)".into());
        }
        // `client_id` counts only when there is no `aud` (Cognito access tokens).
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(&self.audience)),
            Some(_) => false,
            None => claims.get("client_id").and_then(Value::as_str) == Some(&self.audience),
        };
        if !aud_ok {
            return Err(
                "the token's aud (or, without one, client_id) is not the configured audience"
                    .into(),
            );
        }
        // API Gateway reads a route's scopes from `scope` or `scp` (a space-separated string,
        // or, as some issuers write `scp`, an array of strings).
        let mut token_scopes: Option<Vec<String>> = None;
        for name in ["scope", "scp"] {
            let found: Option<Vec<String>> = match claims.get(name) {
                Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_owned).collect()),
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => None,
            };
            if let Some(found) = found {
                let all = token_scopes.get_or_insert_with(Vec::new);
                for s in found {
                    if !all.contains(&s) {
                        all.push(s);
                    }
                }
            }
        }
        if !scopes.is_empty()
            && !token_scopes
                .as_ref()
                .is_some_and(|have| have.iter().any(|s| scopes.contains(&s.as_str())))
        {
            return Err(format!("none of the route's scopes {scopes:?}"));
        }
        Ok(JwtContext {
            claims,
            scopes: token_scopes,
        })
    }
}

/// Claims a development token may carry besides its subject.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    /// `scope`, space-separated.
    pub scope: Option<&'a str>,
    /// `email` (FireFly stores it with the keys a user mints).
    pub email: Option<&'a str>,
    /// `cognito:groups` (`super_users` may list every device).
    pub groups: &'a [&'a str],
}

/// The local development key: a P-256 key kept in a file (made on first use), that signs
/// tokens for `firefly-local token` and that `serve` trusts by default.
pub struct DevKey {
    pkcs8: Vec<u8>,
    jwk: Jwk,
}

impl DevKey {
    /// Loads the key at `path`, or makes one there (readable by its owner only).
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        let pkcs8 = match std::fs::read(path) {
            Ok(bytes) => {
                refuse_shared(path)?;
                bytes
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|_| "cannot generate a key".to_string())?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                write_private(path, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &SystemRandom::new(),
        )
        .map_err(|_| format!("{} is not a P-256 PKCS#8 key", path.display()))?;
        let point = pair.public_key().as_ref();
        let (x, y) = (&point[1..33], &point[33..65]);
        let kid = kid_of(point);
        let jwk: Jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }))
        .map_err(|e| format!("JWK: {e}"))?;
        Ok(Self { pkcs8, jwk })
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// A token like a Cognito ID token for `sub`, valid `ttl_seconds` from `now`.
    pub fn token(
        &self,
        sub: &str,
        now: i64,
        ttl_seconds: i64,
        extra: &Extra<'_>,
    ) -> Result<String, String> {
        self.token_for(sub, DEV_ISSUER, DEV_AUDIENCE, now, ttl_seconds, extra)
    }

    /// As [`DevKey::token`], for another issuer and audience (tests of a configured issuer).
    pub fn token_for(
        &self,
        sub: &str,
        issuer: &str,
        audience: &str,
        now: i64,
        ttl_seconds: i64,
        extra: &Extra<'_>,
    ) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = self.jwk.common.key_id.clone();
        let mut claims = json!({
            "sub": sub,
            "iss": issuer,
            "aud": audience,
            "token_use": "id",
            "cognito:username": sub,
            "auth_time": now,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        });
        if let Some(scope) = extra.scope {
            claims["scope"] = scope.into();
        }
        if let Some(email) = extra.email {
            claims["email"] = email.into();
        }
        if !extra.groups.is_empty() {
            // Cognito puts the user's groups in `cognito:groups`, a JSON array; API
            // Gateway hands it to the function as `[a b]`.
            claims["cognito:groups"] = extra.groups.into();
        }
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| format!("signing: {e}"))
    }
}

/// A signing key others can read signs for anyone: refused, with the fix.
#[cfg(unix)]
pub(crate) fn refuse_shared(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {:o}): anyone who can read it can sign tokens; run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn refuse_shared(_: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(unix)]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_731_191;

    /// A new key, made in a folder of its own, which is gone once the key is read.
    fn key(name: &str) -> DevKey {
        let dir = std::env::temp_dir().join(format!("firefly-jwt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = DevKey::load_or_create(&dir.join("key.der")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        key
    }

    fn now() -> i64 {
        SystemClock.now_epoch_seconds()
    }

    fn authorizer(k: &DevKey) -> Authorizer {
        Authorizer::new(DEV_ISSUER.into(), DEV_AUDIENCE.into(), k.jwks())
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("firefly-jwt-{}-shared", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("key.der");
        DevKey::load_or_create(&path).unwrap();
        assert!(DevKey::load_or_create(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = DevKey::load_or_create(&path).err().unwrap();
        assert!(err.contains("chmod 600"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dev_token_passes_with_its_claims() {
        let dir = std::env::temp_dir().join(format!("firefly-jwt-{}-ok", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let k = DevKey::load_or_create(&dir.join("key.der")).unwrap();
        let t = k.token("user-1", now(), 3600, &Extra::default()).unwrap();
        let ctx = authorizer(&k)
            .check(Some(&format!("Bearer {t}")), &[])
            .unwrap();
        assert_eq!(ctx.claims["sub"], "user-1");
        assert_eq!(ctx.claims["token_use"], "id");
        assert_eq!(ctx.scopes, None);
        // The same key file again: the same key.
        let again = DevKey::load_or_create(&dir.join("key.der")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(authorizer(&again).check(Some(&t), &[]).is_ok());
    }

    #[test]
    fn signature_issuer_audience_expiry_nbf_and_alg_are_all_checked() {
        let k = key("bad");
        let other = key("other");
        let a = authorizer(&k);
        let good = k.token("u", now(), 3600, &Extra::default()).unwrap();
        assert!(a.check(None, &[]).is_err());
        assert!(a.check(Some("Bearer "), &[]).is_err());
        assert!(a.check(Some("Bearer not.a.jwt"), &[]).is_err());
        // Signed by another key (same kid looked up: no such kid).
        let forged = other.token("u", now(), 3600, &Extra::default()).unwrap();
        assert!(a.check(Some(&forged), &[]).is_err());
        // A tampered payload breaks the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(
                &json!({"sub":"admin","iss":DEV_ISSUER,"aud":DEV_AUDIENCE,"exp":now()+3600}),
            )
            .unwrap(),
        );
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert!(
            a.check(Some(&tampered), &[])
                .unwrap_err()
                .contains("refused")
        );
        // alg none, and HS256.
        for alg in ["none", "HS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let t = format!("{h}.{}.", parts[1]);
            assert!(a.check(Some(&t), &[]).is_err(), "{alg}");
        }
        // Expired, not yet valid.
        let expired = k.token("u", NOW - 7200, 3600, &Extra::default()).unwrap();
        assert!(
            a.check(Some(&expired), &[])
                .unwrap_err()
                .contains("Expired")
        );
        let future = k.token("u", now() + 600, 3600, &Extra::default()).unwrap();
        assert!(a.check(Some(&future), &[]).is_err());
        // Another issuer or audience.
        let wrong_iss = Authorizer::new("https://elsewhere".into(), DEV_AUDIENCE.into(), k.jwks());
        assert!(wrong_iss.check(Some(&good), &[]).is_err());
        let wrong_aud = Authorizer::new(DEV_ISSUER.into(), "another-app".into(), k.jwks());
        assert!(
            wrong_aud
                .check(Some(&good), &[])
                .unwrap_err()
                .contains("audience")
        );
    }

    #[test]
    fn scopes_are_passed_and_required_when_the_route_says_so() {
        let k = key("scopes");
        let a = authorizer(&k);
        let t = k
            .token(
                "u",
                now(),
                3600,
                &Extra {
                    scope: Some("keys/read keys/write"),
                    ..Default::default()
                },
            )
            .unwrap();
        let ctx = a.check(Some(&t), &["keys/write"]).unwrap();
        assert_eq!(
            ctx.scopes,
            Some(vec!["keys/read".into(), "keys/write".into()])
        );
        assert!(a.check(Some(&t), &["admin"]).is_err());
        let none = k.token("u", now(), 3600, &Extra::default()).unwrap();
        assert!(a.check(Some(&none), &["keys/write"]).is_err());
    }

    #[test]
    fn scopes_are_read_from_scp_as_well_as_scope() {
        let (a, key) = cognito();
        let t = now();
        let with = |claim: &str, value: Value| {
            let mut c = serde_json::json!({
                "sub": "u", "iss": a.issuer(), "client_id": "client-1", "token_use": "access",
                "iat": t, "exp": t + 600,
            });
            c[claim] = value;
            format!("Bearer {}", rs256(&key, Some("cognito-test-1"), c))
        };
        for token in [
            with("scp", json!("keys/read keys/write")),
            with("scp", json!(["keys/read", "keys/write"])),
            with("scope", json!("keys/write")),
        ] {
            let ctx = a.check(Some(&token), &["keys/write"]).unwrap();
            assert!(ctx.scopes.unwrap().contains(&"keys/write".to_string()));
            assert!(a.check(Some(&token), &["admin"]).is_err());
        }
        assert!(
            a.check(Some(&with("scp", json!(["keys/read"]))), &["keys/write"])
                .is_err()
        );
    }

    /// A Cognito-style issuer: an RSA key with a `kid` (a fixed test key).
    fn cognito() -> (Authorizer, EncodingKey) {
        let jwks: JwkSet =
            serde_json::from_str(include_str!("testdata/cognito-test-jwks.json")).unwrap();
        let key = EncodingKey::from_rsa_der(include_bytes!("testdata/cognito-test-key.der"));
        (
            Authorizer::new(
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Test".into(),
                "client-1".into(),
                jwks,
            ),
            key,
        )
    }

    fn rs256(key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    #[test]
    fn api_gateways_documented_rules_for_a_cognito_issuer() {
        let (a, key) = cognito();
        let iss = a.issuer().to_owned();
        let t = now();
        let check = |token: String| a.check(Some(&format!("Bearer {token}")), &[]);
        let access = |extra: Value| {
            let mut c = serde_json::json!({
                "sub": "u", "iss": iss, "client_id": "client-1", "token_use": "access",
                "iat": t, "exp": t + 600,
            });
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    c.as_object_mut().unwrap().remove(k);
                } else {
                    c[k] = v.clone();
                }
            }
            c
        };
        // A Cognito access token: client_id, no aud.
        let ok = check(rs256(&key, Some("cognito-test-1"), access(json!({}))));
        assert!(ok.is_ok(), "{ok:?}");
        // aud, when present, decides alone: a wrong aud is refused even with the right
        // client_id.
        let wrong_aud = access(json!({"aud": "someone-else"}));
        assert!(check(rs256(&key, Some("cognito-test-1"), wrong_aud)).is_err());
        let right_aud = access(json!({"aud": "client-1", "client_id": "other"}));
        assert!(check(rs256(&key, Some("cognito-test-1"), right_aud)).is_ok());
        // No kid, an unknown kid: refused.
        assert!(check(rs256(&key, None, access(json!({})))).is_err());
        assert!(check(rs256(&key, Some("other"), access(json!({})))).is_err());
        // iat in the future; exp equal to now.
        assert!(
            check(rs256(
                &key,
                Some("cognito-test-1"),
                access(json!({"iat": t + 60}))
            ))
            .is_err()
        );
        assert!(
            check(rs256(
                &key,
                Some("cognito-test-1"),
                access(json!({"exp": t}))
            ))
            .is_err()
        );
        // ES256 from a Cognito issuer: refused (API Gateway accepts RSA only).
        let dev = key_for_es256();
        let es = dev
            .token_for("u", &iss, "client-1", t, 600, &Extra::default())
            .unwrap();
        assert!(check(es).unwrap_err().contains("not accepted"));
    }

    fn key_for_es256() -> DevKey {
        key("es256")
    }
}
