//! AWS plumbing any feature can use: the DynamoDB client (one per process, so one
//! connection pool), its HTTP/1 transport and the embedded trust roots.
//!
//! Nothing here names a feature or a table; features ask [`crate::init::Init::dynamodb`]
//! for the client and bring their own table names.

pub mod appconfig;
pub mod cloudfront;
pub mod cognito;
pub mod errors;
pub mod http1;
pub mod rest;
pub mod s3;

pub use http1::tls_config;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use http1::Http1Client;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::time::Duration;

/// Timeouts sized for a function with a 6 s timeout: a refused or stalled connection
/// becomes a 503 in at most ~3 s, leaving room to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1_000);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(3_000);
/// Attempts per call, the SDK's standard retry mode (throttling, 5xx, I/O errors).
const MAX_ATTEMPTS: u32 = 3;

/// What opens the client's connection before the first request: its transport, and the
/// endpoint the SDK will call (`None` when the endpoint resolver picks a FIPS or dual-stack
/// host, which this does not guess).
#[derive(Clone, Debug)]
pub struct Warm {
    http: Http1Client,
    url: Option<String>,
}

impl Warm {
    /// What opens a connection to `url` on `http`'s pool.
    pub fn new(http: Http1Client, url: Option<String>) -> Self {
        Self { http, url }
    }

    /// Opens a connection to the endpoint during init (see [`Http1Client::warm`]).
    pub async fn run(&self) {
        if let Some(url) = &self.url {
            self.http.warm(url).await;
        }
    }
}

/// Every connection a function opens during init: one per AWS endpoint its clients call.
#[derive(Clone, Debug, Default)]
pub struct Warmups(pub Vec<Warm>);

impl Warmups {
    /// Opens them all at once.
    pub async fn run(&self) {
        let mut all = tokio::task::JoinSet::new();
        for w in &self.0 {
            let w = w.clone();
            all.spawn(async move { w.run().await });
        }
        while all.join_next().await.is_some() {}
    }
}

/// Builds the DynamoDB client from the Lambda environment: `AWS_REGION`, the role's
/// credentials in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, and the
/// SDK's standard endpoint override `AWS_ENDPOINT_URL_DYNAMODB` (or `AWS_ENDPOINT_URL`) for
/// local servers; and what warms its connection.
///
/// This deliberately avoids `aws_config::load_from_env()`: Lambda always provides
/// credentials in the environment, and the full default chain (profiles, SSO, IMDS, STS)
/// costs binary size and start-up work for providers that can never apply here.
pub fn dynamodb_client_and_warm(
    env: &crate::deploy::Env<'_>,
    http: Http1Client,
) -> Result<(Client, Warm), String> {
    let region = region(env)?;
    let transport = http.clone();
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    let mut warm_url = None;
    if let Some(url) = endpoint_override(env, crate::vars::AWS_ENDPOINT_URL_DYNAMODB.name)? {
        warm_url = Some(url.clone());
        config = config.endpoint_url(url);
    }
    // The SDK's standard switches, honoured (never silently ignored): FIPS and dual-stack
    // endpoints are chosen by the endpoint resolver from these two flags.
    let fips = flag(env, crate::vars::AWS_USE_FIPS_ENDPOINT.name)?;
    let dual = flag(env, crate::vars::AWS_USE_DUALSTACK_ENDPOINT.name)?;
    if let Some(fips) = fips {
        config = config.use_fips(fips);
    }
    if let Some(dual) = dual {
        config = config.use_dual_stack(dual);
    }
    if warm_url.is_none() && fips != Some(true) && dual != Some(true) {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        warm_url = Some(format!("https://dynamodb.{region}.{suffix}/"));
    }
    // The trace header needs nothing here: the SDK's recursion-detection interceptor sends
    // the invocation's `_X_AMZN_TRACE_ID` (which the Lambda runtime sets per invocation) as
    // `X-Amzn-Trace-Id` on every call, so X-Ray links the function and the table.
    let warm = Warm {
        http: transport,
        url: warm_url,
    };
    Ok((
        Client::from_conf(config.interceptor(CountAttempts).build()),
        warm,
    ))
}

/// The process's one HTTP/1 transport (one pool, the embedded roots): every AWS client
/// of a function shares it.
pub fn transport(env: &crate::deploy::Env<'_>) -> Result<Http1Client, String> {
    Http1Client::new(trust_store(env)?, CONNECT_TIMEOUT)
}

/// The role's credentials from the environment: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (Lambda sets them, fixed for a sandbox's
/// life), for the services called as signed requests.
pub fn identity(
    env: &crate::deploy::Env<'_>,
) -> Result<aws_smithy_runtime_api::client::identity::Identity, String> {
    use crate::vars;
    let access = env(vars::AWS_ACCESS_KEY_ID.name).filter(|v| !v.is_empty());
    let secret = env(vars::AWS_SECRET_ACCESS_KEY.name).filter(|v| !v.is_empty());
    let (Some(access), Some(secret)) = (access, secret) else {
        return Err("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set (Lambda sets them; set them for local runs)".into());
    };
    let token = env(vars::AWS_SESSION_TOKEN.name).filter(|v| !v.is_empty());
    Ok(aws_credential_types::Credentials::new(access, secret, token, None, "environment").into())
}

/// SigV4 for one service: what S3, CloudFront and the next services share (aws-sigv4,
/// already linked by the DynamoDB SDK).
pub struct Signer<'a> {
    pub identity: &'a aws_smithy_runtime_api::client::identity::Identity,
    pub region: &'a str,
    pub service: &'a str,
    pub settings: aws_sigv4::http_request::SigningSettings,
}

impl Signer<'_> {
    /// The request, signed now; the error is an operator's text.
    pub fn sign(
        self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: bytes::Bytes,
    ) -> Result<hyper::Request<aws_smithy_types::body::SdkBody>, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
        let other = |e: &dyn std::fmt::Display| e.to_string();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(self.identity)
            .region(self.region)
            .name(self.service)
            .time(std::time::SystemTime::now())
            .settings(self.settings)
            .build()
            .map_err(|e| other(&e))?
            .into();
        let signable = SignableRequest::new(
            method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| other(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| other(&e))?.into_parts();
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        // X-Ray links the call to the invocation, as the SDK's recursion detection does.
        if let Ok(trace) = std::env::var("_X_AMZN_TRACE_ID") {
            builder = builder.header("x-amzn-trace-id", trace);
        }
        let mut request = builder
            .body(aws_smithy_types::body::SdkBody::from(body))
            .map_err(|e| other(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

impl Signer<'_> {
    /// A presigned `GET` of `url`: the signature, its scope and the session token in the
    /// query string, valid for `expires` from `now` (SigV4 query signing, as boto3's
    /// `generate_presigned_url` makes it). The error is an operator's text.
    pub fn presign_get(
        mut self,
        url: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, String> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, sign};
        let other = |e: &dyn std::fmt::Display| e.to_string();
        self.settings.signature_location = SignatureLocation::QueryParams;
        self.settings.expires_in = Some(expires);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(self.identity)
            .region(self.region)
            .name(self.service)
            .time(now)
            .settings(self.settings)
            .build()
            .map_err(|e| other(&e))?
            .into();
        let signable = SignableRequest::new(
            "GET",
            url,
            std::iter::empty(),
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| other(&e))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| other(&e))?.into_parts();
        let mut request = hyper::Request::builder()
            .uri(url)
            .body(())
            .map_err(|e| other(&e))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(request.uri().to_string())
    }
}

/// `AWS_REGION` (Lambda sets it), else `AWS_DEFAULT_REGION`.
pub fn region(env: &crate::deploy::Env<'_>) -> Result<String, String> {
    env(crate::vars::AWS_REGION.name)
        .or_else(|| env(crate::vars::AWS_DEFAULT_REGION.name))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| "AWS_REGION is not set (Lambda sets it; set it for local runs)".into())
}

/// Counts every attempt of every DynamoDB call (retries included) into the current
/// request's metrics: `DynamoDBAttempts`.
#[derive(Debug)]
struct CountAttempts;

impl aws_sdk_dynamodb::config::Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "CountAttempts"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        crate::telemetry::metric("DynamoDBAttempts", crate::telemetry::Unit::Count, 1.0);
        Ok(())
    }
}

/// The opt-in for a plaintext endpoint that is not on this machine.
pub const ALLOW_PLAINTEXT: &str = "FIREFLY_ALLOW_PLAINTEXT_ENDPOINT";

/// An endpoint override must be `https://`, or `http://` on a loopback host (a local
/// DynamoDB-API server). Plaintext elsewhere (DynamoDB Local on a container network, say)
/// needs `FIREFLY_ALLOW_PLAINTEXT_ENDPOINT=true`: keys must not cross a network in clear
/// because of a typo in a URL.
pub fn check_endpoint(url: &str, env: &crate::deploy::Env<'_>) -> Result<(), String> {
    check_url(url, flag(env, ALLOW_PLAINTEXT)? == Some(true))
}

/// The endpoint override of a service: `var` (`AWS_ENDPOINT_URL_S3`, ...), else
/// `AWS_ENDPOINT_URL`, checked by [`check_endpoint`], without a trailing `/`; `None` when
/// neither is set (the service's own endpoint).
pub fn endpoint_override(
    env: &crate::deploy::Env<'_>,
    var: &str,
) -> Result<Option<String>, String> {
    let Some(url) = env(var)
        .or_else(|| env(crate::vars::AWS_ENDPOINT_URL.name))
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    check_endpoint(&url, env)?;
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

/// As [`check_endpoint`], never allowing plaintext to another host: for what must not
/// cross a network in clear whatever `FIREFLY_ALLOW_PLAINTEXT_ENDPOINT` says (a JWKS).
pub fn check_url_strict(url: &str) -> Result<(), String> {
    check_url(url, false)
}

fn check_url(url: &str, allow_plaintext: bool) -> Result<(), String> {
    let scheme_rest = url
        .strip_prefix("https://")
        .map(|r| (true, r))
        .or_else(|| url.strip_prefix("http://").map(|r| (false, r)));
    let Some((tls, rest)) = scheme_rest else {
        return Err(format!(
            "endpoint override {url:?}: expected an https:// or http:// URL"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // `http://localhost:80@evil.example` is a request to evil.example: a URL with user
    // information is refused, whatever its scheme (the host is what the check reads).
    if authority.contains('@') {
        return Err(format!(
            "endpoint override {url:?}: user information (`user@`) in an endpoint URL is refused"
        ));
    }
    if tls {
        return Ok(());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_plaintext {
        return Ok(());
    }
    Err(format!(
        "endpoint override {url:?} is plaintext HTTP to a host that is not this machine; use https://, or set {ALLOW_PLAINTEXT}=true if a plaintext server there is intended"
    ))
}

/// A boolean variable: `true`/`false` (any case), unset or empty for "not set"; anything
/// else is a start-up error rather than a guess.
fn flag(env: &crate::deploy::Env<'_>, name: &str) -> Result<Option<bool>, String> {
    match env(name).as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(format!("{name}={v:?}: expected true or false")),
    }
}

/// The roots every AWS service endpoint chains to (Amazon Trust Services and the Starfield
/// root that cross-signs them), from Debian's ca-certificates. Embedded rather than read
/// from the system store: parsing the whole system bundle was 83% of a typical build's
/// init instructions (README, Cold start), and DynamoDB needs only these five.
const AWS_ROOTS: [&str; 5] = [
    include_str!("roots/Amazon_Root_CA_1.pem"),
    include_str!("roots/Amazon_Root_CA_2.pem"),
    include_str!("roots/Amazon_Root_CA_3.pem"),
    include_str!("roots/Amazon_Root_CA_4.pem"),
    include_str!("roots/Starfield_Services_Root_Certificate_Authority_-_G2.pem"),
];

/// The AWS roots, plus the PEM certificates in `FIREFLY_EXTRA_CA_FILE` when set (a local
/// DynamoDB-API server behind TLS, a corporate proxy). A bad file is a start-up error.
pub fn trust_store(env: &crate::deploy::Env<'_>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for pem in AWS_ROOTS {
        add_pem_certificates(&mut roots, pem.as_bytes())?;
    }
    if let Some(path) = env(crate::vars::FIREFLY_EXTRA_CA_FILE.name).filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| format!("FIREFLY_EXTRA_CA_FILE={path}: {e}"))?;
        add_pem_certificates(&mut roots, &pem)
            .map_err(|e| format!("FIREFLY_EXTRA_CA_FILE={path}: {e}"))?;
    }
    Ok(roots)
}

/// Adds every certificate in `pem` as a trust anchor; refuses text without any, or with one
/// that cannot serve as an anchor. Returns how many were added.
fn add_pem_certificates(roots: &mut rustls::RootCertStore, pem: &[u8]) -> Result<usize, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    Ok(certs.len())
}

/// What the clients' unit tests share: an environment of given pairs, credentials, a
/// transport that trusts nothing.
#[cfg(test)]
pub(crate) mod testing {
    pub const CREDS: [(&str, &str); 3] = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
    ];

    pub fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    pub fn http() -> super::http1::Http1Client {
        super::http1::Http1Client::new(
            rustls::RootCertStore::empty(),
            std::time::Duration::from_millis(100),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::env_of;
    use super::*;

    #[test]
    fn plaintext_endpoints_only_on_loopback_unless_opted_in() {
        let none = env_of(&[]);
        for ok in [
            "https://dynamodb.eu-west-1.amazonaws.com",
            "http://127.0.0.1:4567",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "http://127.8.9.10",
        ] {
            assert_eq!(check_endpoint(ok, &none), Ok(()), "{ok}");
        }
        for bad in [
            "http://dynamodb-local:8000",
            "http://10.0.0.5:8000",
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example:80",
            "ftp://127.0.0.1",
            "127.0.0.1:4567",
        ] {
            let err = check_endpoint(bad, &none).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        let opted = env_of(&[(ALLOW_PLAINTEXT, "true")]);
        assert_eq!(check_endpoint("http://dynamodb-local:8000", &opted), Ok(()));
        let typo = env_of(&[(ALLOW_PLAINTEXT, "yes")]);
        let err = check_endpoint("http://dynamodb-local:8000", &typo).unwrap_err();
        assert!(err.contains(ALLOW_PLAINTEXT), "{err}");
    }

    #[test]
    fn user_information_never_hides_the_real_host() {
        let none = env_of(&[]);
        let opted = env_of(&[(ALLOW_PLAINTEXT, "true")]);
        for bad in [
            "http://localhost:80@evil.example",
            "http://[::1]@evil.example",
            "http://127.0.0.1:4567@evil.example:80/",
            "https://user:pass@dynamodb.eu-west-1.amazonaws.com",
        ] {
            assert!(check_endpoint(bad, &none).is_err(), "{bad}");
            assert!(check_endpoint(bad, &opted).is_err(), "{bad}");
        }
        // The opt-in for DynamoDB Local never opens a plaintext JWKS.
        assert!(check_endpoint("http://auth.example/jwks.json", &opted).is_ok());
        assert!(check_url_strict("http://auth.example/jwks.json").is_err());
        assert!(check_url_strict("http://127.0.0.1:9/pool/.well-known/jwks.json").is_ok());
        assert!(check_url_strict("https://cognito-idp.eu-west-1.amazonaws.com/x").is_ok());
    }

    #[test]
    fn fips_and_dual_stack_are_honoured_or_refused() {
        let base = [("AWS_REGION", "eu-west-1")];
        for (name, value, ok) in [
            ("AWS_USE_FIPS_ENDPOINT", "true", true),
            ("AWS_USE_FIPS_ENDPOINT", "FALSE", true),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true", true),
            ("AWS_USE_FIPS_ENDPOINT", "1", false),
            ("AWS_USE_DUALSTACK_ENDPOINT", "on", false),
        ] {
            let env = env_of(&[base[0], (name, value)]);
            let result = transport(&env).and_then(|http| dynamodb_client_and_warm(&env, http));
            assert_eq!(result.is_ok(), ok, "{name}={value}");
            if let Err(e) = result {
                assert!(e.contains(name), "{e}");
            }
        }
        let env = env_of(&[("AWS_USE_FIPS_ENDPOINT", " True ")]);
        assert_eq!(flag(&env, "AWS_USE_FIPS_ENDPOINT"), Ok(Some(true)));
        assert_eq!(flag(&env, "AWS_USE_DUALSTACK_ENDPOINT"), Ok(None));
    }

    #[test]
    fn the_embedded_aws_roots_are_valid_trust_anchors() {
        let mut roots = rustls::RootCertStore::empty();
        for pem in AWS_ROOTS {
            assert_eq!(add_pem_certificates(&mut roots, pem.as_bytes()), Ok(1));
        }
        assert_eq!(roots.len(), 5);
    }

    #[test]
    fn a_bad_extra_ca_file_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("firefly-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, &[u8]); 3] = [
            ("empty.pem", b""),
            ("text.pem", b"hello"),
            (
                "broken.pem",
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            ),
        ];
        for (name, body) in cases {
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            let p = path.to_string_lossy().into_owned();
            let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| p.clone());
            let err = trust_store(&env)
                .err()
                .unwrap_or_else(|| panic!("{name} accepted"));
            assert!(err.contains("FIREFLY_EXTRA_CA_FILE"), "{err}");
        }
        let env =
            |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| "/nonexistent/ca.pem".to_string());
        assert!(trust_store(&env).is_err());
        let pem = AWS_ROOTS[0].to_string();
        let good = dir.join("good.pem");
        std::fs::write(&good, pem).unwrap();
        let g = good.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| g.clone());
        assert_eq!(trust_store(&env).unwrap().len(), 6);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
