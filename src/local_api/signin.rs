//! A Cognito-style sign-in, so FireFly's console signs in against firefly-local unchanged:
//! the hosted UI's authorization-code flow with PKCE (`/oauth2/authorize`,
//! `/oauth2/token` with `authorization_code` and `refresh_token`), `/logout`, the OpenID
//! configuration and the JWKS. Tokens are Cognito's shapes: an RS256 access token with a
//! `kid` (`client_id`, `token_use=access`, `sub`, `username`, `cognito:groups`) and an ID
//! token with `email`. The same server's authorizer trusts them on every route.
//!
//! The RSA key (API Gateway's authorizer accepts RSA only) is made on first use with the
//! `openssl` command and kept owner-only beside the development key.

use super::jwt::{self, Authorizer};
use crate::clock::{Clock, SystemClock};
use crate::sync::Locked;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token lives (Cognito's default for access and ID tokens).
const TOKEN_TTL: i64 = 3600;
/// How long an authorization code may wait for its exchange.
const CODE_TTL: Duration = Duration::from_secs(300);

/// A user who can sign in.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl User {
    /// A stable `sub` for the user name, in a UUID's shape (as Cognito's subs are).
    fn sub(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.username.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d.as_ref()[..16]);
        super::uuid_text(&first)
    }
}

struct Pending {
    user: User,
    challenge: String,
    redirect_uri: String,
    made: Instant,
}

/// The sign-in's state: who may sign in, for which client and redirect URIs, its key, and
/// the codes and refresh tokens handed out.
pub struct SignIn {
    issuer: String,
    client_id: String,
    redirect_uris: Vec<String>,
    users: Vec<User>,
    preset: Option<String>,
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
    codes: Mutex<HashMap<String, Pending>>,
    refresh: Mutex<HashMap<String, User>>,
}

/// An answer of the sign-in endpoints: status, content type, extra headers, body.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub location: Option<String>,
    pub body: String,
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        location: None,
        body: body.to_string(),
    }
}

fn oauth_error(error: &str) -> Answer {
    json_answer(400, json!({ "error": error }))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    let _ = crate::random::SecureRandom::fill(&crate::random::SystemRandom, &mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Makes (first use) or reads the RSA key in `path` (PKCS#1 DER, owner-only), and returns
/// it with its public JWK values (`n`, `e`).
fn rsa_key(path: &Path) -> Result<(Vec<u8>, String, String), String> {
    let run = |args: &[&str]| -> Result<Vec<u8>, String> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .map_err(|e| format!("the sign-in's RSA key needs the openssl command: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    };
    if !path.exists() {
        let pem = run(&["genrsa", "2048"])?;
        let dir = std::env::temp_dir().join(format!("firefly-rsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let pem_path = dir.join("key.pem");
        std::fs::write(&pem_path, &pem).map_err(|e| e.to_string())?;
        let der = run(&[
            "rsa",
            "-in",
            pem_path.to_str().unwrap_or_default(),
            "-outform",
            "DER",
            "-traditional",
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        jwt::write_private(path, &der?)?;
    }
    let der = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The modulus, from the key itself: `openssl rsa -inform DER -noout -modulus`.
    let modulus = run(&[
        "rsa",
        "-inform",
        "DER",
        "-in",
        path.to_str().unwrap_or_default(),
        "-noout",
        "-modulus",
    ])?;
    let hex = String::from_utf8_lossy(&modulus)
        .trim()
        .trim_start_matches("Modulus=")
        .to_owned();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    Ok((der, URL_SAFE_NO_PAD.encode(bytes), "AQAB".into()))
}

fn query(q: &str) -> HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

impl SignIn {
    /// A sign-in at `issuer` (this server's address) for `client_id`, redirecting only to
    /// `redirect_uris`, with `users` (`preset`: who signs in without the page).
    pub fn new(
        issuer: String,
        client_id: String,
        redirect_uris: Vec<String>,
        users: Vec<User>,
        preset: Option<String>,
        key_file: &Path,
    ) -> Result<Self, String> {
        if let Some(p) = &preset
            && !users.iter().any(|u| &u.username == p)
        {
            return Err(format!("--sign-in-as {p}: no such user"));
        }
        let (der, n, e) = rsa_key(key_file)?;
        let kid = jwt::kid_of(n.as_bytes());
        let jwks: JwkSet = serde_json::from_value(json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": n, "e": e,
        }]}))
        .map_err(|e| format!("JWKS: {e}"))?;
        Ok(Self {
            issuer,
            client_id,
            redirect_uris,
            users,
            preset,
            key: EncodingKey::from_rsa_der(&der),
            kid,
            jwks,
            codes: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        })
    }

    /// The authorizer that trusts this sign-in's tokens.
    pub fn authorizer(&self) -> Authorizer {
        Authorizer::new(
            self.issuer.clone(),
            self.client_id.clone(),
            self.jwks.clone(),
        )
    }

    /// Whether `path` is one of the sign-in's endpoints.
    pub fn is_endpoint(&self, path: &str) -> bool {
        [
            "/.well-known/openid-configuration",
            "/.well-known/jwks.json",
            "/oauth2/authorize",
            "/oauth2/token",
            "/logout",
        ]
        .contains(&path)
    }

    /// Answers `method path?query` (with a form `body`) if it is a sign-in endpoint.
    pub fn answer(
        &self,
        method: &str,
        path: &str,
        query_text: &str,
        body: &[u8],
    ) -> Option<Answer> {
        Some(match (method, path) {
            ("GET", "/.well-known/openid-configuration") => json_answer(
                200,
                json!({
                    "issuer": self.issuer,
                    "authorization_endpoint": format!("{}/oauth2/authorize", self.issuer),
                    "token_endpoint": format!("{}/oauth2/token", self.issuer),
                    "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
                    "end_session_endpoint": format!("{}/logout", self.issuer),
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                }),
            ),
            ("GET", "/.well-known/jwks.json") => {
                json_answer(200, serde_json::to_value(&self.jwks).unwrap_or(Value::Null))
            }
            ("GET", "/oauth2/authorize") => self.authorize(&query(query_text)),
            ("POST", "/oauth2/token") => self.token(&query(&String::from_utf8_lossy(body))),
            ("GET", "/logout") => {
                let q = query(query_text);
                match q.get("logout_uri").or(q.get("redirect_uri")) {
                    Some(to) if q.get("client_id") == Some(&self.client_id) => Answer {
                        status: 302,
                        content_type: "text/plain",
                        location: Some(to.clone()),
                        body: String::new(),
                    },
                    _ => oauth_error("invalid_request"),
                }
            }
            _ => return None,
        })
    }

    fn authorize(&self, q: &HashMap<String, String>) -> Answer {
        if q.get("client_id") != Some(&self.client_id) {
            return oauth_error("invalid_client");
        }
        let Some(redirect_uri) = q
            .get("redirect_uri")
            .filter(|r| self.redirect_uris.contains(r))
        else {
            return oauth_error("redirect_mismatch");
        };
        if q.get("response_type").map(String::as_str) != Some("code") {
            return oauth_error("unsupported_response_type");
        }
        let Some(challenge) = q
            .get("code_challenge")
            .filter(|_| q.get("code_challenge_method").map(String::as_str) == Some("S256"))
        else {
            return oauth_error("invalid_request");
        };
        let chosen = q.get("user").or(self.preset.as_ref());
        let Some(user) = chosen.and_then(|name| self.users.iter().find(|u| &u.username == name))
        else {
            // The minimal page: one link per user, the same request with `user=` added.
            let base: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.iter().filter(|(k, _)| k.as_str() != "user"))
                .finish();
            let links: String = self
                .users
                .iter()
                .map(|u| {
                    let name = html(&u.username);
                    let to = format!(
                        "/oauth2/authorize?{base}&user={}",
                        form_urlencoded::byte_serialize(u.username.as_bytes()).collect::<String>()
                    );
                    format!("<li><a href=\"{}\">{name}</a></li>", html(&to))
                })
                .collect();
            return Answer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                location: None,
                body: format!(
                    "<!doctype html><title>firefly-local sign-in</title><h1>Sign in as</h1><ul>{links}</ul>"
                ),
            };
        };
        let code = random_token();
        self.codes.locked().insert(
            code.clone(),
            Pending {
                user: user.clone(),
                challenge: challenge.clone(),
                redirect_uri: redirect_uri.clone(),
                made: Instant::now(),
            },
        );
        let mut to = format!(
            "{redirect_uri}{}code={code}",
            if redirect_uri.contains('?') { '&' } else { '?' }
        );
        if let Some(state) = q.get("state") {
            to.push_str("&state=");
            to.extend(form_urlencoded::byte_serialize(state.as_bytes()));
        }
        Answer {
            status: 302,
            content_type: "text/plain",
            location: Some(to),
            body: String::new(),
        }
    }

    fn token(&self, f: &HashMap<String, String>) -> Answer {
        if f.get("client_id") != Some(&self.client_id) {
            return oauth_error("invalid_client");
        }
        let user = match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                // Single use: the code is gone whatever happens next.
                let pending = f.get("code").and_then(|c| self.codes.locked().remove(c));
                let Some(p) = pending.filter(|p| p.made.elapsed() < CODE_TTL) else {
                    return oauth_error("invalid_grant");
                };
                if f.get("redirect_uri") != Some(&p.redirect_uri) {
                    return oauth_error("invalid_grant");
                }
                let verifier = f.get("code_verifier").map(String::as_str).unwrap_or("");
                let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
                if verifier.is_empty() || URL_SAFE_NO_PAD.encode(digest) != p.challenge {
                    return oauth_error("invalid_grant");
                }
                p.user
            }
            Some("refresh_token") => {
                let found = f
                    .get("refresh_token")
                    .and_then(|t| self.refresh.locked().get(t).cloned());
                match found {
                    Some(u) => u,
                    None => return oauth_error("invalid_grant"),
                }
            }
            _ => return oauth_error("unsupported_grant_type"),
        };
        let refresh = match f.get("grant_type").map(String::as_str) {
            Some("refresh_token") => None,
            _ => {
                let t = random_token();
                self.refresh.locked().insert(t.clone(), user.clone());
                Some(t)
            }
        };
        match self.tokens(&user) {
            Ok((access, id)) => {
                let mut body = json!({
                    "access_token": access, "id_token": id,
                    "token_type": "Bearer", "expires_in": TOKEN_TTL,
                });
                if let Some(r) = refresh {
                    body["refresh_token"] = r.into();
                }
                json_answer(200, body)
            }
            Err(e) => {
                tracing::error!(error = %e, "signing tokens failed");
                json_answer(500, json!({"error": "server_error"}))
            }
        }
    }

    /// An access token and an ID token for `user`, as Cognito issues them.
    pub fn tokens(&self, user: &User) -> Result<(String, String), String> {
        let now = SystemClock.now_epoch_seconds();
        let sub = user.sub();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        let mut access = json!({
            "sub": sub, "iss": self.issuer, "client_id": self.client_id,
            "token_use": "access", "scope": "openid email profile",
            "auth_time": now, "iat": now, "exp": now + TOKEN_TTL,
            "jti": random_token(), "username": user.username,
        });
        let mut id = json!({
            "sub": sub, "iss": self.issuer, "aud": self.client_id, "token_use": "id",
            "email": user.email, "email_verified": true, "cognito:username": user.username,
            "auth_time": now, "iat": now, "exp": now + TOKEN_TTL,
        });
        if !user.groups.is_empty() {
            access["cognito:groups"] = user.groups.clone().into();
            id["cognito:groups"] = user.groups.clone().into();
        }
        let sign = |claims: &Value| {
            jsonwebtoken::encode(&header, claims, &self.key).map_err(|e| e.to_string())
        };
        Ok((sign(&access)?, sign(&id)?))
    }
}

fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
