//! A Cognito-style sign-in, so FireFly's console signs in against firefly-local unchanged:
//! the hosted UI's authorization-code flow with PKCE (`/oauth2/authorize`,
//! `/oauth2/token` with `authorization_code` and `refresh_token`), `/logout`, the OpenID
//! configuration and the JWKS. Tokens are Cognito's shapes: an RS256 access token with a
//! `kid` (`client_id`, `token_use=access`, `sub`, `username`, `cognito:groups`) and an ID
//! token with `email`. The same server's authorizer trusts them on every route.
//!
//! The RSA key (API Gateway's authorizer accepts RSA only) is made on first use with the
//! `openssl` command, piped (it never touches a shared temporary folder), and kept
//! owner-only beside the development key; a key file others can read is refused. Codes are
//! single use and live 5 minutes, refresh tokens 30 days or until `/logout`; both stores
//! are bounded, and a CSPRNG failure is an error, never a predictable token.

use super::jwt::{self, Authorizer};
use crate::clock::{Clock, SystemClock};
use crate::sync::Locked;
use crate::users::directory::{Member, MemoryDirectory, Person};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token lives (Cognito's default for access and ID tokens).
const TOKEN_TTL: i64 = 3600;
/// How long an authorization code may wait for its exchange.
const CODE_TTL: Duration = Duration::from_secs(300);
/// How long a refresh token lives (Cognito's default, FireFly's pool's setting).
const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The most codes, and refresh tokens, kept at once: a page reloaded in a loop cannot
/// make the process grow without bound.
const MAX_KEPT: usize = 1024;

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
    /// The pool's member this user is: `CONFIRMED`, as an administrator's user is.
    pub fn member(self, created_micros: i64) -> Member {
        Member {
            person: Person {
                username: self.username,
                email: self.email.trim().to_lowercase(),
                name: None,
                status: "CONFIRMED".into(),
                created_micros: Some(created_micros),
            },
            groups: self.groups,
            signed_out: 0,
        }
    }

    /// The user as `member` is now (its groups of this moment).
    fn of(member: Member) -> Self {
        Self {
            username: member.person.username,
            email: member.person.email,
            groups: member.groups,
        }
    }

    /// A stable `sub` for the user name, in a UUID's shape (as Cognito's subs are).
    fn sub(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.username.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&d.as_ref()[..16]);
        super::uuid_text(&first)
    }
}

struct Pending {
    username: String,
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
    /// Who may sign in: the pool's members, with their groups as they are now (the users
    /// routes change them in memory runs).
    users: Arc<MemoryDirectory>,
    preset: Option<String>,
    key: EncodingKey,
    kid: String,
    jwks: JwkSet,
    codes: Mutex<HashMap<String, Pending>>,
    /// Refresh tokens: whose, when each was issued, and the user's sign-outs then (a
    /// global sign-out since ends it, as Cognito's `AdminUserGlobalSignOut` does).
    refresh: Mutex<HashMap<String, (String, Instant, u32)>>,
    random: std::sync::Arc<dyn crate::random::SecureRandom>,
    /// The monotonic clock codes and refresh tokens age by (a test's, to age them).
    now: fn() -> Instant,
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

fn random_token(random: &dyn crate::random::SecureRandom) -> Result<String, String> {
    let mut b = [0u8; 32];
    random
        .fill(&mut b)
        .map_err(|e| format!("the CSPRNG failed: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

fn server_error(e: &str) -> Answer {
    tracing::error!(error = %e, "sign-in failed");
    json_answer(500, json!({"error": "server_error"}))
}

/// Keeps at most [`MAX_KEPT`] entries: the expired ones go first, then the oldest.
fn bound<V>(
    map: &mut HashMap<String, V>,
    now: Instant,
    made: impl Fn(&V) -> Instant,
    ttl: Duration,
) {
    map.retain(|_, v| now.saturating_duration_since(made(v)) < ttl);
    while map.len() >= MAX_KEPT {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| made(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..url.len() - rest.len() + end])
}

/// Makes (first use) or reads the RSA key in `path` (PKCS#1 DER, owner-only), and returns
/// it with its public JWK values (`n`, `e`).
fn rsa_key(path: &Path) -> Result<(Vec<u8>, String, String), String> {
    let run = |args: &[&str], input: Option<&[u8]>| -> Result<Vec<u8>, String> {
        use std::io::Write as _;
        use std::process::Stdio;
        let mut child = std::process::Command::new("openssl")
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("the sign-in's RSA key needs the openssl command: {e}"))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input)
                .map_err(|e| format!("openssl {}: {e}", args.join(" ")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("openssl {}: {e}", args.join(" ")))?;
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
        let pem = run(&["genrsa", "2048"], None)?;
        // Converted through a pipe: the private key is never written anywhere but `path`.
        let der = run(&["rsa", "-outform", "DER", "-traditional"], Some(&pem))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        jwt::write_private(path, &der)?;
    }
    jwt::refuse_shared(path)?;
    let der = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The modulus, from the key itself: `openssl rsa -inform DER -noout -modulus`.
    let modulus = run(
        &[
            "rsa",
            "-inform",
            "DER",
            "-in",
            path.to_str().unwrap_or_default(),
            "-noout",
            "-modulus",
        ],
        None,
    )?;
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
        users: Arc<MemoryDirectory>,
        preset: Option<String>,
        key_file: &Path,
    ) -> Result<Self, String> {
        if let Some(p) = &preset
            && users.member(p).is_none()
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
            random: std::sync::Arc::new(crate::random::SystemRandom),
            now: Instant::now,
        })
    }

    /// The pool's members this sign-in signs in.
    pub fn directory(&self) -> Arc<MemoryDirectory> {
        Arc::clone(&self.users)
    }

    /// The username a first sign-in of `email` gets (as Cognito names a Google user:
    /// `google_<id>`, here from the address).
    pub fn username_for(email: &str) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, email.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d.as_ref()[..8]);
        format!("google_{}", u64::from_be_bytes(first))
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
                // Only back to the app that signed in: a URL on the origin of a registered
                // redirect URI (FireFly's console signs out to `<origin>/login`), never an
                // open redirect.
                let registered = |to: &str| {
                    origin(to)
                        .is_some_and(|o| self.redirect_uris.iter().any(|r| origin(r) == Some(o)))
                };
                match q.get("logout_uri").or(q.get("redirect_uri")) {
                    Some(to) if q.get("client_id") == Some(&self.client_id) && registered(to) => {
                        // Signed out: no refresh token of this sign-in works any more.
                        self.refresh.locked().clear();
                        Answer {
                            status: 302,
                            content_type: "text/plain",
                            location: Some(to.clone()),
                            body: String::new(),
                        }
                    }
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
        let Some(user) = chosen.and_then(|name| self.users.member(name)) else {
            // The minimal page: one link per user, the same request with `user=` added.
            let base: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.iter().filter(|(k, _)| k.as_str() != "user"))
                .finish();
            let links: String = self
                .users
                .members()
                .iter()
                .map(|m| {
                    let name = html(&m.person.username);
                    let to = format!(
                        "/oauth2/authorize?{base}&user={}",
                        form_urlencoded::byte_serialize(m.person.username.as_bytes())
                            .collect::<String>()
                    );
                    format!("<li><a href=\"{}\">{name}</a></li>", html(&to))
                })
                .collect();
            // A first sign-in, as with Google: the pool's pre-sign-up trigger decides.
            let hidden: String = q
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "user" | "email"))
                .map(|(k, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                        html(k),
                        html(v)
                    )
                })
                .collect();
            return Answer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                location: None,
                body: format!(
                    "<!doctype html><title>firefly-local sign-in</title><h1>Sign in as</h1><ul>{links}</ul><h2>Or sign in for the first time</h2><form method=\"get\" action=\"/oauth2/authorize\">{hidden}<input type=\"email\" name=\"email\" placeholder=\"you@example.com\" required><button type=\"submit\">Sign in</button></form>"
                ),
            };
        };
        let code = match random_token(&*self.random) {
            Ok(c) => c,
            Err(e) => return server_error(&e),
        };
        let mut codes = self.codes.locked();
        bound(&mut codes, (self.now)(), |p: &Pending| p.made, CODE_TTL);
        codes.insert(
            code.clone(),
            Pending {
                username: user.person.username.clone(),
                challenge: challenge.clone(),
                redirect_uri: redirect_uri.clone(),
                made: (self.now)(),
            },
        );
        drop(codes);
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
                let now = (self.now)();
                let Some(p) = pending.filter(|p| now.saturating_duration_since(p.made) < CODE_TTL)
                else {
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
                p.username
            }
            Some("refresh_token") => {
                let found = f
                    .get("refresh_token")
                    .and_then(|t| self.refresh.locked().get(t).cloned())
                    .filter(|(_, issued, _)| {
                        (self.now)().saturating_duration_since(*issued) < REFRESH_TTL
                    });
                match found {
                    Some((username, _, sign_outs))
                        if self
                            .users
                            .member(&username)
                            .is_some_and(|m| m.signed_out == sign_outs) =>
                    {
                        username
                    }
                    _ => return oauth_error("invalid_grant"),
                }
            }
            _ => return oauth_error("unsupported_grant_type"),
        };
        // The user as the pool has them now: deleted since, no tokens; their groups of
        // this moment in the tokens, as Cognito's.
        let Some(member) = self.users.member(&user) else {
            return oauth_error("invalid_grant");
        };
        let sign_outs = member.signed_out;
        let user = User::of(member);
        let refresh = match f.get("grant_type").map(String::as_str) {
            Some("refresh_token") => None,
            _ => {
                let t = match random_token(&*self.random) {
                    Ok(t) => t,
                    Err(e) => return server_error(&e),
                };
                let mut refresh = self.refresh.locked();
                let now = (self.now)();
                bound(
                    &mut refresh,
                    now,
                    |(_, issued, _): &(String, Instant, u32)| *issued,
                    REFRESH_TTL,
                );
                refresh.insert(t.clone(), (user.username.clone(), now, sign_outs));
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
            Err(e) => server_error(&format!("signing tokens: {e}")),
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
            "jti": random_token(&*self.random)?, "username": user.username,
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

pub fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in(name: &str) -> (SignIn, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("firefly-signin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = SignIn::new(
            "http://127.0.0.1:3000".into(),
            "app".into(),
            vec!["http://localhost:4173/callback".into()],
            Arc::new(MemoryDirectory::new(vec![
                User {
                    username: "dev".into(),
                    email: "dev@localhost".into(),
                    groups: vec![],
                }
                .member(0),
            ])),
            Some("dev".into()),
            &dir.join("rsa.der"),
        )
        .unwrap();
        (s, dir)
    }

    const VERIFIER: &str = "a-verifier-of-enough-length-for-pkce-0123456789";

    fn code(s: &SignIn) -> Answer {
        let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            VERIFIER.as_bytes(),
        ));
        let q = format!(
            "client_id=app&redirect_uri=http%3A%2F%2Flocalhost%3A4173%2Fcallback&response_type=code&code_challenge={challenge}&code_challenge_method=S256"
        );
        s.answer("GET", "/oauth2/authorize", &q, b"").unwrap()
    }

    fn code_of(a: &Answer) -> String {
        let to = a.location.clone().unwrap();
        to.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    }

    fn exchange(s: &SignIn, code: &str) -> Answer {
        let body = format!(
            "grant_type=authorization_code&client_id=app&code={code}&redirect_uri=http%3A%2F%2Flocalhost%3A4173%2Fcallback&code_verifier={VERIFIER}"
        );
        s.answer("POST", "/oauth2/token", "", body.as_bytes())
            .unwrap()
    }

    fn refresh(s: &SignIn, token: &str) -> Answer {
        let body = format!("grant_type=refresh_token&client_id=app&refresh_token={token}");
        s.answer("POST", "/oauth2/token", "", body.as_bytes())
            .unwrap()
    }

    fn json(a: &Answer) -> Value {
        serde_json::from_str(&a.body).unwrap()
    }

    #[test]
    fn logout_goes_only_back_to_the_app_and_ends_its_refresh_tokens() {
        let (s, dir) = sign_in("logout");
        let tokens = json(&exchange(&s, &code_of(&code(&s))));
        let r = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(refresh(&s, &r).status, 200);
        for evil in [
            "https://evil.example/login",
            "http://localhost:4174/login",
            "http://localhost:4173.evil.example/",
            "javascript:alert(1)",
        ] {
            let q = format!(
                "client_id=app&logout_uri={}",
                form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
            );
            assert_eq!(
                s.answer("GET", "/logout", &q, b"").unwrap().status,
                400,
                "{evil}"
            );
        }
        // FireFly's console signs out to <origin>/login.
        let q = "client_id=app&logout_uri=http%3A%2F%2Flocalhost%3A4173%2Flogin";
        let out = s.answer("GET", "/logout", q, b"").unwrap();
        assert_eq!(out.status, 302);
        assert_eq!(out.location.as_deref(), Some("http://localhost:4173/login"));
        assert_eq!(
            refresh(&s, &r).status,
            400,
            "a refresh token dies at logout"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn codes_are_single_use_and_expire_and_refresh_tokens_expire() {
        let (mut s, dir) = sign_in("expiry");
        let c = code_of(&code(&s));
        assert_eq!(exchange(&s, &c).status, 200);
        assert_eq!(exchange(&s, &c).status, 400, "single use");
        let c = code_of(&code(&s));
        let tokens = json(&exchange(&s, &code_of(&code(&s))));
        let r = tokens["refresh_token"].as_str().unwrap().to_owned();
        // Five minutes later the code is dead; thirty days later the refresh token.
        s.now = || Instant::now() + CODE_TTL;
        assert_eq!(exchange(&s, &c).status, 400);
        assert_eq!(refresh(&s, &r).status, 200);
        s.now = || Instant::now() + REFRESH_TTL;
        assert_eq!(refresh(&s, &r).status, 400);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn claims(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn tokens_carry_the_groups_of_their_moment_and_a_sign_out_or_deletion_ends_refreshes() {
        use crate::users::directory::Directory as _;
        let (s, dir) = sign_in("groups");
        let pool = s.directory();
        let first = json(&exchange(&s, &code_of(&code(&s))));
        assert!(
            claims(first["access_token"].as_str().unwrap())
                .get("cognito:groups")
                .is_none()
        );
        let r = first["refresh_token"].as_str().unwrap().to_owned();
        // Promoted (the users routes in memory runs): the next token says so, the old not.
        pool.set_super("dev".into(), true).await.unwrap();
        let again = json(&refresh(&s, &r));
        assert_eq!(
            claims(again["access_token"].as_str().unwrap())["cognito:groups"],
            json!(["super_users"])
        );
        // Signed out everywhere (a demotion or a deletion does it): its refresh token dies.
        pool.sign_out("dev".into()).await.unwrap();
        assert_eq!(refresh(&s, &r).status, 400);
        let r = json(&exchange(&s, &code_of(&code(&s))))["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(refresh(&s, &r).status, 200);
        // Deleted: no token of any kind.
        let c = code_of(&code(&s));
        pool.delete("dev".into()).await.unwrap();
        assert_eq!(refresh(&s, &r).status, 400);
        assert_eq!(exchange(&s, &c).status, 400);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_stores_are_bounded() {
        let (s, dir) = sign_in("bounded");
        for _ in 0..MAX_KEPT + 100 {
            assert_eq!(code(&s).status, 302);
        }
        assert!(s.codes.locked().len() <= MAX_KEPT);
        for _ in 0..MAX_KEPT + 100 {
            assert_eq!(exchange(&s, &code_of(&code(&s))).status, 200);
        }
        assert!(s.refresh.locked().len() <= MAX_KEPT);
        let _ = std::fs::remove_dir_all(dir);
    }

    struct Broken;
    impl crate::random::SecureRandom for Broken {
        fn fill(&self, _: &mut [u8]) -> Result<(), crate::random::RandomError> {
            Err(crate::random::RandomError("broken".into()))
        }
    }

    #[test]
    fn a_csprng_failure_is_an_error_never_a_predictable_token() {
        let (mut s, dir) = sign_in("csprng");
        let c = code_of(&code(&s));
        s.random = std::sync::Arc::new(Broken);
        assert_eq!(code(&s).status, 500);
        let a = exchange(&s, &c);
        assert_eq!(a.status, 500);
        assert!(!a.body.contains("token"), "{}", a.body);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn the_private_key_never_passes_through_a_shared_temporary_folder() {
        // The path the key once went through (`$TMPDIR/firefly-rsa-<pid>/key.pem`), made
        // by someone else first, pointing where they can read: nothing may be written there.
        let trap = std::env::temp_dir().join(format!("firefly-rsa-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&trap);
        std::fs::create_dir_all(&trap).unwrap();
        let stolen = trap.join("stolen.pem");
        std::os::unix::fs::symlink(&stolen, trap.join("key.pem")).unwrap();
        let (_, dir) = sign_in("no-temp");
        assert!(
            !stolen.exists(),
            "the key was written through the shared folder"
        );
        let _ = std::fs::remove_dir_all(&trap);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (_, dir) = sign_in("shared");
        let key = dir.join("rsa.der");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
            0
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let again = SignIn::new(
            "http://127.0.0.1:3000".into(),
            "app".into(),
            vec![],
            Arc::new(MemoryDirectory::default()),
            None,
            &key,
        );
        assert!(again.err().unwrap().contains("readable by others"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
