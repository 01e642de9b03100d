//! `firefly-local serve`: every route of every function over HTTP on 127.0.0.1, with API
//! Gateway's semantics: its route choice, its payload 2.0 event, its JWT authorizer and its
//! own 404. `sam local start-api` refuses JWT authorizers and needs Docker; `cargo lambda
//! watch` serves function URLs without one. The handlers are the real ones, in-process.

pub mod appconfig;
pub mod cdn;
pub mod device;
pub mod event;
pub mod jwt;
pub mod s3;
pub mod signin;

use crate::app::{App, Invocation};
use crate::handler::Auth;
use crate::random::{SecureRandom, SystemRandom};
use crate::route::Route;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::{self, HeaderValue, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;
/// The functions' timeout (template.yaml): the deadline each invocation gets.
const TIMEOUT: Duration = Duration::from_secs(6);

/// A stand-in that answers HTTP/1 requests on its own port (the S3 endpoint, the AppConfig
/// and Lambda stand-in).
pub trait Answers: Send + Sync + 'static {
    fn answer(
        &self,
        req: http::Request<Incoming>,
    ) -> impl Future<Output = http::Response<Full<Bytes>>> + Send;
}

/// Serves connections from `listener` with `me` until the process ends.
pub async fn serve_stand_in<T: Answers>(
    me: Arc<T>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let me = Arc::clone(&me);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let me = Arc::clone(&me);
                async move { Ok::<_, std::convert::Infallible>(me.answer(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A running local API.
pub struct Server {
    app: Arc<App>,
    routes: &'static [Route],
    authorizer: jwt::Authorizer,
    openapi: String,
    /// Browser origins allowed to call the API (FireFly's gateway allows its console's).
    cors_origins: Vec<String>,
    /// The Cognito-style sign-in, when one is configured; its tokens are trusted too.
    signin: Option<(signin::SignIn, jwt::Authorizer)>,
}

/// What FireFly's gateway answers a preflight from its console with (its
/// `firefly-func-api-options-handler` on `OPTIONS /{proxy+}`).
const CORS_METHODS: &str = "GET,POST,PUT,PATCH,DELETE,OPTIONS";
const CORS_HEADERS: &str = "Content-Type,Authorization";
const CORS_MAX_AGE: &str = "300";

impl Server {
    pub fn new(app: Arc<App>, routes: &'static [Route], authorizer: jwt::Authorizer) -> Self {
        let openapi = crate::generate::openapi::document(routes).to_string();
        Self {
            app,
            routes,
            authorizer,
            openapi,
            cors_origins: Vec::new(),
            signin: None,
        }
    }

    /// Serves a Cognito-style sign-in too, and trusts the tokens it issues.
    pub fn with_signin(mut self, signin: signin::SignIn) -> Self {
        let authorizer = signin.authorizer();
        self.signin = Some((signin, authorizer));
        self
    }

    /// Allows these browser origins (`http://localhost:5173`), as FireFly's gateway allows
    /// its console's: preflights are answered, and every answer carries
    /// `Access-Control-Allow-Origin` for them.
    pub fn with_cors(mut self, origins: Vec<String>) -> Self {
        self.cors_origins = origins
            .into_iter()
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        self
    }

    /// The request's `Origin` when it is allowed.
    fn allowed_origin(&self, parts: &http::request::Parts) -> Option<HeaderValue> {
        let origin = parts.headers.get(http::header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.cors_origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }

    /// A first sign-in (`email=` on the authorize request, from the sign-in page): an
    /// address the pool knows signs in as its user; any other is put to the pool's
    /// pre-sign-up trigger, as Cognito puts a Google user's first sign-in, and joins the
    /// pool when admitted. `Ok(Some(query))`: the request, naming the user; `Err`: the
    /// page with the trigger's refusal, as Cognito's hosted UI shows it.
    async fn first_sign_in(
        &self,
        signin: &signin::SignIn,
        query: &str,
    ) -> Result<Option<String>, String> {
        let q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let has = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let (None, Some(email)) = (has("user"), has("email")) else {
            return Ok(None);
        };
        let email = email.trim().to_lowercase();
        let directory = signin.directory();
        let known = directory
            .members()
            .into_iter()
            .find(|m| !email.is_empty() && m.person.email == email);
        let username = match known {
            Some(m) => m.person.username,
            None => {
                let username = signin::SignIn::username_for(&email);
                let event = serde_json::json!({
                    "version": "1", "region": "local", "userPoolId": "local",
                    "userName": username, "triggerSource": "PreSignUp_ExternalProvider",
                    "callerContext": {"awsSdkVersion": "firefly-local", "clientId": "firefly-local"},
                    "request": {"userAttributes": {"email": email}},
                    "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false},
                });
                let invocation = crate::app::Invocation {
                    request_id: "local-pre-sign-up",
                    deadline: Some(std::time::SystemTime::now() + TIMEOUT),
                    trace_id: None,
                };
                let function = crate::users::presignup::ROUTE.function;
                if let Err(refused) = self.app.handle_cognito(function, &invocation, &event).await {
                    return Err(format!(
                        "<!doctype html><title>firefly-local sign-in</title><p>PreSignUp failed with error {}</p>",
                        signin::html(&refused.message)
                    ));
                }
                let now = {
                    use crate::clock::Clock as _;
                    crate::clock::SystemClock.now_epoch_micros()
                };
                let mut member = signin::User {
                    username: username.clone(),
                    email,
                    groups: vec![],
                }
                .member(now);
                member.person.status = "EXTERNAL_PROVIDER".into();
                directory.add(member);
                username
            }
        };
        Ok(Some(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.iter().filter(|(k, _)| k != "email"))
                .append_pair("user", &username)
                .finish(),
        ))
    }

    /// The start-up lines: where it listens, and each route with its function and auth.
    pub fn describe(&self, addr: SocketAddr) -> String {
        let mut s = format!(
            "firefly-local: serving http://{addr} (JWT issuer {})\n",
            self.authorizer.issuer()
        );
        for r in self.routes {
            let auth = match r.auth() {
                Auth::Jwt if r.scopes.is_empty() => "JWT".to_owned(),
                Auth::Jwt => format!("JWT, scopes {}", r.scopes.join(" ")),
                Auth::None => "none".to_owned(),
            };
            s.push_str(&format!(
                "  {:<7}{:<46}{:<46}{auth}\n",
                r.method(),
                r.path(),
                r.function
            ));
        }
        s.push_str(&format!(
            "  {:<7}{:<46}the OpenAPI document of these routes\n",
            "GET", "/openapi.json"
        ));
        s
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn run(self: Arc<Self>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        loop {
            let (stream, peer) = listener.accept().await?;
            let server = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, std::convert::Infallible>(server.answer(req, peer).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn answer(
        &self,
        req: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let origin = self.allowed_origin(&parts);
        let mut response = self.answer_parts(parts, body, peer, origin.is_some()).await;
        if let Some(origin) = origin {
            let h = response.headers_mut();
            h.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.append(http::header::VARY, HeaderValue::from_static("Origin"));
        }
        response
    }

    /// The answer before CORS's `Access-Control-Allow-Origin`; `cors` says whether the
    /// request's origin is allowed (a preflight's answer depends on it).
    async fn answer_parts(
        &self,
        parts: http::request::Parts,
        body: Incoming,
        peer: SocketAddr,
        cors: bool,
    ) -> http::Response<Full<Bytes>> {
        // API Gateway's request id on every answer, its own refusals included.
        let (gateway_id, lambda_id, trace) = ids();
        let with_id = |mut r: http::Response<Full<Bytes>>| {
            if let Ok(v) = HeaderValue::from_str(&gateway_id) {
                r.headers_mut().insert("apigw-requestid", v);
            }
            r
        };
        // A page in a browser must not reach this server through a name of its own that
        // resolves here (DNS rebinding): only loopback names are served.
        if !loopback_host(&parts) {
            tracing::warn!(
                host = parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("-"),
                "refused a request for a host that is not this machine (DNS rebinding?)"
            );
            return with_id(gateway(StatusCode::FORBIDDEN, "Forbidden"));
        }
        // Every OPTIONS is FireFly's preflight handler's (`OPTIONS /{proxy+}`, no
        // authorizer): 200, with the CORS answer for an allowed origin, bare otherwise.
        if parts.method == http::Method::OPTIONS {
            let mut r = with_id(reply(StatusCode::OK, "application/json", Vec::new()));
            if cors {
                let h = r.headers_mut();
                h.insert(
                    http::header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(CORS_METHODS),
                );
                h.insert(
                    http::header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(CORS_HEADERS),
                );
                h.insert(
                    http::header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(CORS_MAX_AGE),
                );
            }
            return r;
        }
        if let Some((signin, _)) = &self.signin
            && signin.is_endpoint(parts.uri.path())
        {
            let body = Limited::new(body, 64 * 1024)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut query = parts.uri.query().unwrap_or("").to_owned();
            if parts.uri.path() == "/oauth2/authorize" {
                match self.first_sign_in(signin, &query).await {
                    Ok(Some(chosen)) => query = chosen,
                    Ok(None) => {}
                    Err(refused) => {
                        return with_id(reply(
                            StatusCode::BAD_REQUEST,
                            "text/html; charset=utf-8",
                            refused.into_bytes(),
                        ));
                    }
                }
            }
            if let Some(a) = signin.answer(parts.method.as_str(), parts.uri.path(), &query, &body) {
                let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_REQUEST);
                let mut r = with_id(reply(status, a.content_type, a.body.into_bytes()));
                if let Some(to) = a.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
                    r.headers_mut().insert(http::header::LOCATION, to);
                }
                r.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                );
                return r;
            }
            return with_id(gateway(StatusCode::NOT_FOUND, "Not Found"));
        }
        if parts.method == http::Method::GET && parts.uri.path() == "/openapi.json" {
            return reply(
                StatusCode::OK,
                "application/json",
                self.openapi.clone().into_bytes(),
            );
        }
        let Ok(body) = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
        else {
            return with_id(gateway(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request Entity Too Large",
            ));
        };
        let Some(selected) = event::select(self.routes, parts.method.as_str(), parts.uri.path())
        else {
            tracing::info!(
                method = parts.method.as_str(),
                path = parts.uri.path(),
                status = 404u16,
                correlation_id = gateway_id.as_str(),
                "no route: API Gateway's 404"
            );
            return with_id(gateway(StatusCode::NOT_FOUND, "Not Found"));
        };
        let route = &self.routes[selected.index];
        let jwt = match route.auth() {
            Auth::Jwt => {
                let header = parts
                    .headers
                    .get(http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let mut checked = self.authorizer.check(header, route.scopes);
                // A token from the sign-in (its own issuer and RSA key).
                if checked.is_err()
                    && let Some((_, signed_in)) = &self.signin
                    && let Ok(ctx) = signed_in.check(header, route.scopes)
                {
                    checked = Ok(ctx);
                }
                // A key the JWKS lacks: the pool may have rotated its keys. Fetch them again
                // (rate-limited) and check once more, rather than needing a restart.
                if checked.as_ref().is_err_and(|r| r == jwt::UNKNOWN_KID)
                    && let Some(url) = self.authorizer.refresh_due()
                {
                    let env = |name: &str| std::env::var(name).ok();
                    match fetch_jwks(url, &env).await {
                        Ok(keys) => {
                            tracing::info!(
                                url,
                                "JWKS fetched again: a token named a key it lacked"
                            );
                            self.authorizer.set_keys(keys);
                            checked = self.authorizer.check(header, route.scopes);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "JWKS fetch failed; the keys in hand stay")
                        }
                    }
                }
                match checked {
                    Ok(ctx) => Some(ctx),
                    Err(reason) => {
                        tracing::info!(route_key = route.key, reason = %reason, status = 401u16, correlation_id = gateway_id.as_str(), "refused by the JWT authorizer; the handler did not run");
                        let mut r = gateway(StatusCode::UNAUTHORIZED, "Unauthorized");
                        r.headers_mut().insert(
                            http::header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Bearer"),
                        );
                        return with_id(r);
                    }
                }
            }
            Auth::None => None,
        };
        let source_ip = peer.ip().to_string();
        let http_req = event::HttpRequest {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            body: &body,
            source_ip: &source_ip,
            request_id: &gateway_id,
            now: SystemTime::now(),
        };
        let value = event::event(&http_req, Some((route, &selected.params)), jwt.as_ref());
        let event: ApiGatewayV2httpRequest = match serde_json::from_value(value) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "the event did not deserialize");
                return with_id(gateway(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                ));
            }
        };
        let invocation = Invocation {
            request_id: &lambda_id,
            deadline: Some(SystemTime::now() + TIMEOUT),
            trace_id: Some(&trace),
        };
        let response = self.app.handle(&invocation, &event).await;
        to_http(response, &gateway_id)
    }
}

/// Whether the request names this machine: `Host` (or the URI's authority) is
/// `127.0.0.1`, `localhost` or `[::1]`, with any port.
fn loopback_host(parts: &http::request::Parts) -> bool {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let Some(host) = host else {
        // HTTP/1.0 without a Host: a local tool, not a browser.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default().to_owned(),
        None => host
            .rsplit_once(':')
            .map_or(host.as_str(), |(h, _)| h)
            .to_owned(),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// API Gateway's own answers: `{"message": "..."}`.
fn gateway(status: StatusCode, message: &str) -> http::Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    reply(status, "application/json", body.into_bytes())
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

/// A Lambda proxy response as API Gateway turns it into HTTP.
fn to_http(res: ApiGatewayV2httpResponse, gateway_id: &str) -> http::Response<Full<Bytes>> {
    let body = match res.body {
        Some(Body::Text(t)) if res.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(t.as_bytes())
            .unwrap_or_default(),
        Some(Body::Text(t)) => t.into_bytes(),
        Some(Body::Binary(b)) => b,
        _ => Vec::new(),
    };
    let mut r = http::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() =
        StatusCode::from_u16(res.status_code as u16).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in &res.headers {
        r.headers_mut().append(k, v.clone());
    }
    for (k, v) in &res.multi_value_headers {
        r.headers_mut().append(k, v.clone());
    }
    for c in &res.cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            r.headers_mut().append(http::header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(gateway_id) {
        r.headers_mut().insert("apigw-requestid", v);
    }
    r
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 16 bytes in a UUID's text form (8-4-4-4-12 lower-case hex), as they are.
pub(crate) fn uuid_text(bytes: &[u8; 16]) -> String {
    let h = hex(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// API Gateway's request id (`Cq2bTjk9joEEMhQ=`-like), Lambda's (a UUID), and a trace
/// header, fresh for each request.
fn ids() -> (String, String, String) {
    let mut b = [0u8; 32];
    let _ = SystemRandom.fill(&mut b);
    let gateway = base64::engine::general_purpose::STANDARD.encode(&b[..10]);
    let u = hex(&b[10..26]);
    let lambda = format!(
        "{}-{}-4{}-a{}-{}",
        &u[..8],
        &u[8..12],
        &u[13..16],
        &u[17..20],
        &u[20..32]
    );
    let secs = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let trace = format!("Root=1-{secs:08x}-{};Sampled=0", hex(&b[20..32]));
    (gateway, lambda, trace)
}

/// Fetches a JWKS once (a Cognito user pool's `.well-known/jwks.json`): HTTPS with the AWS
/// roots (and `FIREFLY_EXTRA_CA_FILE`), or plain HTTP to a loopback host.
pub fn fetch_jwks(
    url: &str,
    env: &crate::deploy::Env<'_>,
) -> impl std::future::Future<Output = Result<jsonwebtoken::jwk::JwkSet, String>> + Send + use<> {
    // The environment is read before anything is awaited: the future holds no reference.
    let prepared = prepare_jwks_fetch(url, env);
    let url = url.to_owned();
    async move { fetch_prepared(url, prepared?).await }
}

fn prepare_jwks_fetch(
    url: &str,
    env: &crate::deploy::Env<'_>,
) -> Result<rustls::ClientConfig, String> {
    // FIREFLY_ALLOW_PLAINTEXT_ENDPOINT is for DynamoDB Local; never a plaintext JWKS.
    crate::aws::check_url_strict(url).map_err(|e| format!("JWKS {e}"))?;
    crate::aws::tls_config(crate::aws::trust_store(env)?)
}

async fn fetch_prepared(
    url: String,
    tls: rustls::ClientConfig,
) -> Result<jsonwebtoken::jwk::JwkSet, String> {
    let url = url.as_str();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, http_body_util::Empty<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(https);
    let uri: http::Uri = url.parse().map_err(|e| format!("JWKS URL {url}: {e}"))?;
    let fetch = async {
        let res = client
            .get(uri)
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        let status = res.status();
        let body = Limited::new(res.into_body(), 1024 * 1024)
            .collect()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{url} answered {status}"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not a JWKS: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))?
}
