//! `firefly-local serve` as a front-end engineer uses it: real HTTP on 127.0.0.1, tokens
//! from `firefly-local token`, API Gateway's answers where API Gateway would answer.

mod support;

use firefly_api::local_api::jwt::{DEV_AUDIENCE, DEV_ISSUER, DevKey, Extra};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use support::dynamo::{Dynalite, s};
use support::http::{self, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_firefly-local");

/// A test's own folder under the temporary directory, removed when the test ends (pass or
/// fail): declared before the servers that write into it, it is dropped after them.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("firefly-local-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

struct Local {
    child: Child,
    port: u16,
    logs: Arc<Mutex<Vec<String>>>,
    key_file: PathBuf,
}

impl Local {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let key_file = dir.join("dev-key.p8");
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--key-file"])
            .arg(&key_file)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("firefly-local");
        let mut first = String::new();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        err.read_line(&mut first).unwrap();
        let port = first
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        let logs = Arc::new(Mutex::new(vec![first.clone()]));
        // The route listing follows on stderr; the per-request lines come on stdout.
        let mut line = String::new();
        for _ in 0..3 {
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            logs.lock().unwrap().push(std::mem::take(&mut line));
        }
        let out = child.stdout.take().unwrap();
        for stream in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let l = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    l.lock().unwrap().push(line);
                }
            });
        }
        Self {
            child,
            port,
            logs,
            key_file,
        }
    }

    fn token(&self, sub: &str) -> String {
        let out = Command::new(BIN)
            .args(["token", "--sub", sub, "--key-file"])
            .arg(&self.key_file)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "the token alone on stdout");
        text.trim().to_owned()
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
        self.request_for(
            &format!("127.0.0.1:{}", self.port),
            method,
            path,
            token,
            body,
        )
    }

    /// As [`Local::request`], with `host` as the `Host` header.
    fn request_for(
        &self,
        host: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Answer {
        self.request_with(host, method, path, token, &[], body)
    }

    /// As [`Local::request_for`], with more headers.
    fn request_with(
        &self,
        host: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(t) = token {
            head.push_str(&format!("authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut r = BufReader::new(s);
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        let (headers, length) = http::read_headers(&mut r).unwrap();
        let mut body = vec![0; length.unwrap_or(0)];
        r.read_exact(&mut body).unwrap();
        Answer {
            status: status.split_whitespace().nth(1).unwrap().parse().unwrap(),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: String::from_utf8(body).unwrap(),
        }
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The log lines once `done` holds for them: a thread reads the server's pipes, so
    /// the line of a request just answered may still be on its way (up to 5 s).
    fn logs_when(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let lines = self.logs().join("\n");
            if done(&lines) || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::park_timeout(std::time::Duration::from_millis(2));
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

#[test]
fn mint_and_revoke_over_http_with_a_token_from_firefly_local_token() {
    let dir = scratch("flow");
    let api = Local::start(&dir, &[], &[]);
    let listing = api.logs().join("\n");
    for expected in [
        "POST   /registration-keys",
        "firefly-func-api-registration-keys-post",
        "DELETE /registration-keys/{registrationKey}",
        "firefly-func-api-registration-keys-delete",
        "JWT",
    ] {
        assert!(listing.contains(expected), "{expected} not in {listing}");
    }
    let token = api.token("alice");
    let minted = api.request("POST", "/registration-keys", Some(&token), b"");
    assert_eq!(minted.status, 201, "{minted:?}");
    assert_eq!(minted.header("content-type"), Some("application/json"));
    assert_eq!(minted.header("cache-control"), Some("no-store"));
    assert!(minted.header("apigw-requestid").is_some());
    let key = minted.json()["key"].as_str().unwrap().to_owned();

    // Another user cannot revoke it; its owner can, once, case-insensitively.
    let bob = api.token("bob");
    let path = format!("/registration-keys/{}", key.to_ascii_lowercase());
    assert_eq!(api.request("DELETE", &path, Some(&bob), b"").status, 404);
    let revoked = api.request("DELETE", &path, Some(&token), b"");
    assert_eq!(revoked.status, 204, "{revoked:?}");
    let again = api.request("DELETE", &path, Some(&token), b"");
    assert_eq!(again.status, 404);
    assert_eq!(again.header("content-type"), Some("application/json"));

    // One JSON line per request, like the Lambda's, with the function that served it.
    // Four requests: two completed (201, 204), two refused (404s).
    let all = api.logs_when(|l| {
        l.matches("\"request completed\"").count() >= 2
            && l.matches("\"request refused\"").count() >= 2
    });
    let lines: Vec<Value> = all
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let done: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request completed")
        .collect();
    assert_eq!(done.len(), 2, "{lines:?}");
    assert_eq!(done[0]["route_key"], "POST /registration-keys");
    assert_eq!(done[0]["user_id"], "alice");
    assert!(!all.contains(&key), "the key was logged");
}

#[test]
fn tokens_that_do_not_check_out_never_reach_a_handler() {
    let dir = scratch("refused");
    let api = Local::start(&dir, &[], &[]);
    let good = api.token("carol");
    let key = DevKey::load_or_create(&api.key_file).unwrap();
    let other = DevKey::load_or_create(&dir.join("another-key.p8")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let parts: Vec<&str> = good.split('.').collect();
    let refused = [
        ("none", None),
        ("garbage", Some("not-a-token".to_owned())),
        (
            "expired",
            Some(
                key.token("carol", now - 7200, 3600, &Extra::default())
                    .unwrap(),
            ),
        ),
        (
            "not yet valid",
            Some(
                key.token("carol", now + 600, 3600, &Extra::default())
                    .unwrap(),
            ),
        ),
        (
            "another key",
            Some(other.token("carol", now, 3600, &Extra::default()).unwrap()),
        ),
        (
            "another issuer",
            Some(
                key.token_for(
                    "carol",
                    "https://elsewhere",
                    DEV_AUDIENCE,
                    now,
                    3600,
                    &Extra::default(),
                )
                .unwrap(),
            ),
        ),
        (
            "another audience",
            Some(
                key.token_for(
                    "carol",
                    DEV_ISSUER,
                    "other-app",
                    now,
                    3600,
                    &Extra::default(),
                )
                .unwrap(),
            ),
        ),
        (
            "alg none",
            Some(format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1])),
        ),
        (
            "bad signature",
            Some(format!("{}.{}.{}", parts[0], parts[1], "AAAA")),
        ),
    ];
    for (what, token) in &refused {
        let a = api.request("POST", "/registration-keys", token.as_deref(), b"");
        assert_eq!(a.status, 401, "{what}: {a:?}");
        assert_eq!(
            a.json(),
            serde_json::json!({"message": "Unauthorized"}),
            "{what}"
        );
        assert_eq!(a.header("www-authenticate"), Some("Bearer"), "{what}");
    }
    let lines =
        api.logs_when(|l| l.matches("refused by the JWT authorizer").count() >= refused.len());
    assert!(
        !lines.contains("request completed"),
        "a handler ran: {lines}"
    );
    assert_eq!(
        lines.matches("refused by the JWT authorizer").count(),
        refused.len()
    );
    assert_eq!(
        api.request("POST", "/registration-keys", Some(&good), b"")
            .status,
        201
    );
}

#[test]
fn api_gateways_own_404_and_the_openapi_document() {
    let dir = scratch("gateway");
    let api = Local::start(&dir, &[], &[]);
    for (method, path) in [
        ("GET", "/nowhere"),
        ("PATCH", "/registration-keys"),
        ("POST", "/registration-keys/extra/segments"),
        ("DELETE", "/registration-keys/"),
    ] {
        let a = api.request(method, path, None, b"");
        assert_eq!(a.status, 404, "{method} {path}");
        assert_eq!(a.json(), serde_json::json!({"message": "Not Found"}));
    }
    let doc = api.request("GET", "/openapi.json", None, b"");
    assert_eq!(doc.status, 200);
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("routes/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc.json(), file, "the served document is the committed one");
}

#[test]
fn settings_come_from_a_local_file_that_is_re_read_when_it_changes() {
    let dir = scratch("config");
    let settings = dir.join("settings.json");
    std::fs::write(&settings, r#"{"registrationKeys":{"enabled":false}}"#).unwrap();
    let api = Local::start(&dir, &["--config", settings.to_str().unwrap()], &[]);
    let token = api.token("dave");
    let off = api.request("POST", "/registration-keys", Some(&token), b"");
    assert_eq!(off.status, 503, "{off:?}");
    std::fs::write(
        &settings,
        r#"{"registrationKeys":{"enabled":true,"ttlSeconds":120}}"#,
    )
    .unwrap();
    let on = api.request("POST", "/registration-keys", Some(&token), b"");
    assert_eq!(on.status, 201);
    let listed = api.request("GET", "/registration-keys", Some(&token), b"");
    assert_eq!(listed.status, 200, "{listed:?}");
    let keys = &listed.json()["registration_keys"];
    assert_eq!(keys[0]["key"], on.json()["key"]);
    assert_eq!(
        keys[0]["expires_at"].as_i64().unwrap() - keys[0]["generated_at"].as_i64().unwrap(),
        120
    );
}

#[test]
fn a_real_issuer_is_trusted_through_its_jwks_and_dynamodb_can_back_it() {
    let dir = scratch("issuer");
    // A Cognito-style pool: an RSA key with a kid (API Gateway's authorizer accepts RSA only).
    let jwks = include_bytes!("../src/local_api/testdata/cognito-test-jwks.json").to_vec();
    let pool = http::serve(move |req| {
        if req.path == "/pool/.well-known/jwks.json" {
            Reply::ok(jwks.clone())
        } else {
            Reply::status(404, "{}")
        }
    });
    let issuer = format!("http://127.0.0.1:{}/pool", pool.port);
    let db = Dynalite::shared();
    let table = support::unique_table("local");
    db.create_table(&table);
    let endpoint = db.endpoint();
    let api = Local::start(
        &dir,
        &[
            "--issuer",
            &issuer,
            "--audience",
            "app-client-1",
            "--store",
            "dynamodb",
        ],
        &[
            ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.as_str()),
            // Every route is served: the device routes name their table too (unused here).
            ("DYNAMODB_DEVICES_TABLE_NAME", "firefly-devices"),
            ("DYNAMODB_FIRMWARE_TABLE_NAME", "firefly-firmware"),
            ("DYNAMODB_USERS_TABLE_NAME", "firefly-users"),
            ("COGNITO_USER_POOL_ID", "eu-west-1_LocalPool"),
            (
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                endpoint.as_str(),
            ),
            ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", "firefly-firmware"),
            ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", "firefly-firmware-public"),
            ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE"),
            ("S3_BACKUP_BUCKET_NAME", "firefly-device-backups"),
            ("AWS_ENDPOINT_URL_CLOUDFRONT", endpoint.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
            ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("cognito-test-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &serde_json::json!({
            "sub": "erin", "iss": issuer, "client_id": "app-client-1", "token_use": "access",
            "iat": now, "exp": now + 600,
        }),
        &jsonwebtoken::EncodingKey::from_rsa_der(include_bytes!(
            "../src/local_api/testdata/cognito-test-key.der"
        )),
    )
    .unwrap();
    let a = api.request("POST", "/registration-keys", Some(&token), b"");
    assert_eq!(a.status, 201, "{a:?}");
    let minted = a.json()["key"].as_str().unwrap().to_owned();
    assert_eq!(
        s(&db.get(&table, &minted).unwrap(), "generated_by_sub"),
        "erin"
    );
    // The development key is not trusted when a real issuer is configured.
    let dev = api.token("erin");
    assert_eq!(
        api.request("POST", "/registration-keys", Some(&dev), b"")
            .status,
        401
    );
}

#[test]
fn only_this_machines_names_are_served_and_every_answer_has_a_request_id() {
    let dir = scratch("hosts");
    let api = Local::start(&dir, &[], &[]);
    let port = api.port;
    // DNS rebinding: a page's own name resolving to 127.0.0.1 gets nothing.
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
        let a = api.request_for(host, "GET", "/health", None, b"");
        assert_eq!(a.status, 403, "{host}");
        assert!(a.header("apigw-requestid").is_some());
    }
    for host in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let a = api.request_for(&host, "GET", "/health", None, b"");
        assert_eq!(a.status, 200, "{host}");
        assert_eq!(a.json(), serde_json::json!({"status": "OK"}));
    }
    // API Gateway's own answers carry its request id too; an unrouted request is logged.
    let nowhere = api.request("GET", "/nowhere", None, b"");
    assert_eq!(nowhere.status, 404);
    assert!(nowhere.header("apigw-requestid").is_some());
    let refused = api.request("GET", "/registration-keys", None, b"");
    assert_eq!(refused.status, 401);
    assert!(refused.header("apigw-requestid").is_some());
    let logs = api.logs_when(|l| l.contains("no route"));
    assert!(logs.contains("no route"), "{logs}");
    // Handler lines name the route's own function, as its Lambda would.
    let token = api.token("frank");
    assert_eq!(
        api.request("POST", "/registration-keys", Some(&token), b"")
            .status,
        201
    );
    let logs = api.logs_when(|l| {
        l.lines().any(|line| {
            line.contains("request completed")
                && line.contains(r#""route_key":"POST /registration-keys""#)
        })
    });
    let completed: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["message"] == "request completed" && l["route_key"] == "POST /registration-keys"
        })
        .collect();
    assert!(!completed.is_empty(), "{logs}");
    assert!(
        completed
            .iter()
            .all(|l| l["function_name"] == "firefly-func-api-registration-keys-post")
    );
}

#[test]
fn the_development_key_is_never_trusted_on_real_data() {
    let dir = scratch("realdata");
    for endpoint in [
        None,
        Some("https://dynamodb.eu-west-1.amazonaws.com"),
        Some("http://10.0.0.5:8000"),
        Some("http://localhost:80@evil.example"),
    ] {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--store", "dynamodb", "--key-file"])
            .arg(dir.join("k.p8"))
            .env_clear()
            .env(
                "DYNAMODB_REGISTRATION_KEYS_TABLE_NAME",
                "firefly-registration-keys",
            )
            .env("DYNAMODB_DEVICES_TABLE_NAME", "firefly-devices")
            .env("AWS_REGION", "eu-west-1")
            .env("FIREFLY_ALLOW_PLAINTEXT_ENDPOINT", "true");
        if let Some(e) = endpoint {
            cmd.env("AWS_ENDPOINT_URL_DYNAMODB", e);
        }
        cmd.env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9");
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{endpoint:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("development key would let anyone"),
            "{endpoint:?}: {err}"
        );
    }
    // The backups' bucket counts too: a loopback table with a real bucket is real data.
    for s3 in [None, Some("https://s3.eu-west-1.amazonaws.com")] {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--store", "dynamodb", "--key-file"])
            .arg(dir.join("k.p8"))
            .env_clear()
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000");
        if let Some(e) = s3 {
            cmd.env("AWS_ENDPOINT_URL_S3", e);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{s3:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("development key would let anyone") && err.contains("S3"),
            "{s3:?}: {err}"
        );
    }
    // So does CloudFront, which the firmware ingest may tell to forget public files.
    for cloudfront in [None, Some("https://cloudfront.amazonaws.com")] {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--port", "0", "--store", "dynamodb", "--key-file"])
            .arg(dir.join("k.p8"))
            .env_clear()
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000")
            .env("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9");
        if let Some(e) = cloudfront {
            cmd.env("AWS_ENDPOINT_URL_CLOUDFRONT", e);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{cloudfront:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("development key would let anyone") && err.contains("CloudFront"),
            "{cloudfront:?}: {err}"
        );
    }
    // Without a usable key file, no token either: a key others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir.join("shared.p8");
        assert!(
            Command::new(BIN)
                .args(["token", "--sub", "x", "--key-file"])
                .arg(&key)
                .output()
                .unwrap()
                .status
                .success()
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let out = Command::new(BIN)
            .args(["token", "--sub", "x", "--key-file"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    }
    // `--ttl=0`: a token that has already expired, refused.
    let api = Local::start(&dir, &[], &[]);
    let out = Command::new(BIN)
        .args(["token", "--sub", "x", "--ttl=0", "--key-file"])
        .arg(&api.key_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expired = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        api.request("GET", "/registration-keys", Some(expired.trim()), b"")
            .status,
        401
    );
}

#[test]
fn cors_as_fireflys_gateway_answers_its_console() {
    let dir = scratch("cors");
    let console = "http://localhost:5173";
    let api = Local::start(
        &dir,
        &[
            "--cors-origin",
            console,
            "--cors-origin=http://127.0.0.1:4173",
        ],
        &[],
    );
    let host = format!("127.0.0.1:{}", api.port);
    let preflight = |origin: &str, path: &str| {
        api.request_with(
            &host,
            "OPTIONS",
            path,
            None,
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "content-type,authorization",
                ),
            ],
            b"",
        )
    };
    // Answered before any route or authorizer: a JWT route's preflight needs no token.
    for origin in [console, "http://127.0.0.1:4173"] {
        let p = preflight(origin, "/registration-keys");
        assert_eq!(p.status, 200, "{p:?}");
        assert_eq!(p.header("access-control-allow-origin"), Some(origin));
        let methods = p.header("access-control-allow-methods").unwrap();
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert_eq!(
            p.header("access-control-allow-headers"),
            Some("Content-Type,Authorization")
        );
        assert_eq!(p.header("access-control-max-age"), Some("300"));
    }
    // Another origin: no CORS headers at all (the browser then refuses the call).
    let other = preflight("http://evil.example", "/registration-keys");
    assert!(other.header("access-control-allow-origin").is_none());
    assert!(other.header("access-control-allow-methods").is_none());
    // Every other answer to the console carries the origin: success, the authorizer's 401
    // (so the page can read it), API Gateway's 404.
    let token = api.token("gina");
    let with_origin = |method: &str, path: &str, token: Option<&str>, origin: &str| {
        api.request_with(&host, method, path, token, &[("origin", origin)], b"")
    };
    let minted = with_origin("POST", "/registration-keys", Some(&token), console);
    assert_eq!(minted.status, 201);
    assert_eq!(minted.header("access-control-allow-origin"), Some(console));
    let refused = with_origin("GET", "/registration-keys", None, console);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("access-control-allow-origin"), Some(console));
    assert_eq!(
        with_origin("GET", "/nowhere", None, console).header("access-control-allow-origin"),
        Some(console)
    );
    let foreign = with_origin(
        "POST",
        "/registration-keys",
        Some(&token),
        "http://evil.example",
    );
    assert_eq!(foreign.status, 201);
    assert!(foreign.header("access-control-allow-origin").is_none());
}

#[test]
fn a_rotated_key_is_fetched_again_instead_of_needing_a_restart() {
    let dir = scratch("rotation");
    let jwks = std::sync::Arc::new(std::sync::Mutex::new(
        include_bytes!("../src/local_api/testdata/cognito-test-jwks.json").to_vec(),
    ));
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (served, count) = (jwks.clone(), fetches.clone());
    let pool = http::serve(move |req| {
        if req.path == "/pool/.well-known/jwks.json" {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Reply::ok(served.lock().unwrap().clone())
        } else {
            Reply::status(404, "{}")
        }
    });
    let issuer = format!("http://127.0.0.1:{}/pool", pool.port);
    let api = Local::start(
        &dir,
        &["--issuer", &issuer, "--audience", "app-client-1"],
        &[],
    );
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let token = |kid: &str, der: &[u8]| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            &serde_json::json!({
                "sub": "hana", "iss": issuer, "client_id": "app-client-1", "token_use": "access",
                "iat": now, "exp": now + 600,
            }),
            &jsonwebtoken::EncodingKey::from_rsa_der(der),
        )
        .unwrap()
    };
    let new_key = include_bytes!("../src/local_api/testdata/cognito-test-key-2.der");
    // The pool rotates: its JWKS now has a second key, which tokens start to name.
    *jwks.lock().unwrap() =
        include_bytes!("../src/local_api/testdata/cognito-test-jwks-rotated.json").to_vec();
    let rotated = token("cognito-test-2", new_key);
    let a = api.request("GET", "/registration-keys", Some(&rotated), b"");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A flood of unknown kids: refused, and no more fetches within the rate limit.
    for _ in 0..5 {
        let forged = token("nobody", new_key);
        assert_eq!(
            api.request("GET", "/registration-keys", Some(&forged), b"")
                .status,
            401
        );
    }
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn one_definition_of_the_commands_writes_the_help_and_refuses_unknown_options() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for command in [
        "serve",
        "token --sub USER",
        "invoke EVENT.json",
        "device register --key KEY",
        "device check UUID",
    ] {
        assert!(
            text.contains(&format!("firefly-local {command}")),
            "{command}: {text}"
        );
    }
    for (args, refused) in [
        (vec!["serve", "--nope", "x"], "serve: unknown option --nope"),
        (
            vec!["token", "--sub", "a", "--port", "1"],
            "token: unknown option --port",
        ),
        (
            vec!["device", "check", "u", "--key", "K"],
            "device check: unknown option --key",
        ),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(refused),
            "{args:?}"
        );
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (what the console's token requests send).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc = |s: &str| {
                s.bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect::<String>()
            };
            format!("{}={}", enc(k), enc(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn a_cognito_style_sign_in_with_pkce_gives_tokens_every_route_accepts() {
    use base64::Engine as _;
    let dir = scratch("signin");
    let users = dir.join("users.json");
    std::fs::write(
        &users,
        r#"[{"username": "ida", "email": "ida@example.com", "groups": ["super_users"]},
            {"username": "joe", "email": "joe@example.com"}]"#,
    )
    .unwrap();
    let console = "http://localhost:5173/callback";
    let api = Local::start(
        &dir,
        &[
            "--redirect-uri",
            console,
            "--client-id",
            "console-app",
            "--users",
            users.to_str().unwrap(),
            "--cors-origin",
            "http://localhost:5173",
        ],
        &[],
    );
    let host = format!("127.0.0.1:{}", api.port);
    let issuer = format!("http://127.0.0.1:{}", api.port);
    // Discovery and keys, as the console's OIDC client reads them.
    let config = api
        .request("GET", "/.well-known/openid-configuration", None, b"")
        .json();
    assert_eq!(config["issuer"], issuer.as_str());
    assert_eq!(config["token_endpoint"], format!("{issuer}/oauth2/token"));
    let jwks = api
        .request("GET", "/.well-known/jwks.json", None, b"")
        .json();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    // PKCE: S256 of a verifier.
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghijklmnop";
    let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    let authorize = |user: Option<&str>, client: &str, redirect: &str, method: &str| {
        let mut q = form(&[
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("code_challenge", &challenge),
            ("code_challenge_method", method),
            ("state", "xyz"),
        ]);
        if let Some(u) = user {
            q.push_str(&format!("&user={u}"));
        }
        api.request("GET", &format!("/oauth2/authorize?{q}"), None, b"")
    };
    // The page lists the users; a wrong client, redirect or method is refused.
    let page = authorize(None, "console-app", console, "S256");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("ida") && page.body.contains("joe"),
        "{}",
        page.body
    );
    assert_eq!(authorize(Some("ida"), "other", console, "S256").status, 400);
    assert_eq!(
        authorize(Some("ida"), "console-app", "http://evil.example/cb", "S256").status,
        400
    );
    assert_eq!(
        authorize(Some("ida"), "console-app", console, "plain").status,
        400
    );
    // Sign in as ida: a redirect with a code and the state.
    let signed = authorize(Some("ida"), "console-app", console, "S256");
    assert_eq!(signed.status, 302, "{signed:?}");
    let location = signed.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{console}?code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"));
    // The code a sign-in's redirect carries.
    let code_in = |location: &str| {
        let (_, after) = location
            .split_once("code=")
            .expect("a code in the redirect");
        after.split('&').next().unwrap().to_owned()
    };
    let code = code_in(&location);
    let exchange = |code: &str, verifier: &str| {
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "console-app"),
            ("code", code),
            ("redirect_uri", console),
            ("code_verifier", verifier),
        ]);
        api.request_with(
            &host,
            "POST",
            "/oauth2/token",
            None,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", "http://localhost:5173"),
            ],
            body.as_bytes(),
        )
    };
    // A wrong verifier: refused, and the code is used up.
    assert_eq!(exchange(&code, "not-the-verifier").status, 400);
    assert_eq!(exchange(&code, verifier).status, 400);
    let signed = authorize(Some("ida"), "console-app", console, "S256");
    let code = code_in(signed.header("location").unwrap());
    let tokens = exchange(&code, verifier);
    assert_eq!(tokens.status, 200, "{tokens:?}");
    assert_eq!(
        tokens.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let t = tokens.json();
    let claims = |jwt: &str| -> serde_json::Value {
        let payload = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let access = claims(t["access_token"].as_str().unwrap());
    assert_eq!(access["token_use"], "access");
    assert_eq!(access["client_id"], "console-app");
    assert_eq!(access["username"], "ida");
    assert_eq!(access["cognito:groups"], serde_json::json!(["super_users"]));
    assert!(
        access.get("aud").is_none(),
        "Cognito access tokens carry client_id, no aud"
    );
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["email"],
        "ida@example.com"
    );
    // The access token passes the authorizer on every route: mint, list keys, list devices.
    let bearer = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        api.request("POST", "/registration-keys", Some(&bearer), b"")
            .status,
        201
    );
    assert_eq!(
        api.request("GET", "/registration-keys", Some(&bearer), b"")
            .status,
        200
    );
    assert_eq!(
        api.request("GET", "/devices", Some(&bearer), b"").status,
        200
    );
    // The refresh token gives new tokens; a made-up one does not.
    let refreshed = api.request_with(
        &host,
        "POST",
        "/oauth2/token",
        None,
        &[("content-type", "application/x-www-form-urlencoded")],
        form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "console-app"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .as_bytes(),
    );
    assert_eq!(refreshed.status, 200);
    let again = refreshed.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.request("GET", "/devices", Some(&again), b"").status,
        200
    );
    // `firefly-local token` keeps working beside it.
    assert_eq!(
        api.request("GET", "/registration-keys", Some(&api.token("kim")), b"")
            .status,
        200
    );
    // Logout redirects where the console asks, for its client only.
    let out = api.request(
        "GET",
        &format!(
            "/logout?{}",
            form(&[
                ("client_id", "console-app"),
                ("logout_uri", "http://localhost:5173/")
            ])
        ),
        None,
        b"",
    );
    assert_eq!(out.status, 302);
    assert_eq!(out.header("location"), Some("http://localhost:5173/"));
}

/// Runs `firefly-local device ...` against `api`, with the devices' keys in `dir`.
fn device(api: &Local, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("device")
        .args(args)
        .args(["--url", &format!("http://127.0.0.1:{}", api.port)])
        .arg("--dir")
        .arg(dir.join("devices"))
        .output()
        .unwrap()
}

/// README's walk-through: mint, register a simulated controller, back a file up, restore it,
/// delete the backup; on the memory store, or on moto's DynamoDB and S3 (`--store dynamodb`).
fn backs_up_and_restores(store: &str) {
    let dir = scratch(&format!("backup-{store}"));
    let moto = Dynalite::shared_moto();
    let endpoint = moto.endpoint();
    let (keys, devices, bucket) = (
        support::unique_table("keys"),
        support::unique_table("devices"),
        support::unique_table("backups").to_ascii_lowercase(),
    );
    let mut env = vec![("AWS_REGION", "eu-west-1")];
    let mut args = vec![];
    if store == "dynamodb" {
        moto.create_table(&keys);
        moto.create_devices_table(&devices);
        support::s3::create_bucket(&endpoint, &bucket);
        env.extend([
            ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", keys.as_str()),
            ("DYNAMODB_DEVICES_TABLE_NAME", devices.as_str()),
            // Every route is served: the firmware routes name their table (unused here).
            ("DYNAMODB_FIRMWARE_TABLE_NAME", "firefly-firmware"),
            ("DYNAMODB_USERS_TABLE_NAME", "firefly-users"),
            ("COGNITO_USER_POOL_ID", "eu-west-1_LocalPool"),
            (
                "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                endpoint.as_str(),
            ),
            ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", "firefly-firmware"),
            ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", "firefly-firmware-public"),
            ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE"),
            ("S3_BACKUP_BUCKET_NAME", bucket.as_str()),
            ("AWS_ENDPOINT_URL_CLOUDFRONT", endpoint.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
            ("AWS_ENDPOINT_URL_S3", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ]);
        args.extend(["--store", "dynamodb"]);
    }
    let api = Local::start(&dir, &args, &env);
    let token = api.token("alice");
    let minted = api.request("POST", "/registration-keys", Some(&token), b"");
    assert_eq!(minted.status, 201, "{minted:?}");
    let key = minted.json()["key"].as_str().unwrap().to_owned();
    let out = device(&api, &dir, &["register", "--key", &key]);
    assert!(out.status.success(), "{out:?}");
    let uuid = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let plaintext: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let file = dir.join("backup.json");
    std::fs::write(&file, &plaintext).unwrap();
    let out = device(&api, &dir, &["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["message"], "Backup stored");
    if store == "dynamodb" {
        // In the bucket: the FFCE blob (37 bytes more than the file), its SHA-256 as etag.
        let stored = support::s3::get(&endpoint, &bucket, &uuid).unwrap();
        assert_eq!(&stored.body[..5], b"FFCE\x01");
        assert_eq!(stored.body.len(), plaintext.len() + 37);
        let sha = firefly_api::local_api::device::sha256_hex(&plaintext);
        assert_eq!(stored.meta("etag"), Some(sha.as_str()));
        let item = moto.get_device(&devices, &uuid).unwrap();
        assert!(item.contains_key("last_backup_date"), "{item:?}");
    }
    let restored = dir.join("restored.json");
    let out = device(
        &api,
        &dir,
        &["restore", "--out", restored.to_str().unwrap()],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&restored).unwrap(), plaintext);

    let out = device(&api, &dir, &["delete-backup", "--uuid", &uuid]);
    assert!(out.status.success(), "{out:?}");
    let out = device(&api, &dir, &["restore"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("404") && err.contains("No backup found"),
        "{err}"
    );
    // A file larger than the firmware would back up is refused before anything is sent.
    std::fs::write(&file, vec![b'x'; 512 * 1024 + 1]).unwrap();
    let out = device(&api, &dir, &["backup", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 524288 bytes"));
}

#[test]
fn a_simulated_controller_backs_up_and_restores_on_the_memory_store() {
    backs_up_and_restores("memory");
}

#[test]
fn a_simulated_controller_backs_up_and_restores_on_moto() {
    backs_up_and_restores("dynamodb");
}

/// The S3 endpoint's address, from the server's start-up lines.
fn s3_endpoint(api: &Local) -> String {
    let lines = api.logs_when(|l| l.contains("S3 endpoint http://"));
    lines
        .split("S3 endpoint ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the S3 endpoint's line")
        .to_owned()
}

/// A request to `url` (http://127.0.0.1:PORT/...), its status and body.
fn plain(method: &str, url: &str, body: &[u8]) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(authority).unwrap();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let (_, length) = http::read_headers(&mut r).unwrap();
    let mut body = vec![0; length.unwrap_or(0)];
    r.read_exact(&mut body).unwrap();
    (
        status.split_whitespace().nth(1).unwrap().parse().unwrap(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Polls `GET /firmware?product_hex=` until `done` holds for its items (up to 10 s): the
/// pipeline runs after the upload is answered, as S3's notifications do.
fn firmware_when(
    api: &Local,
    token: &str,
    hex: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = api.request(
            "GET",
            &format!("/firmware?product_hex={hex}"),
            Some(token),
            b"",
        );
        assert_eq!(got.status, 200, "{got:?}");
        let items = got.json()["items"].as_array().unwrap().clone();
        if done(&items) || std::time::Instant::now() > deadline {
            return items;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    }
}

/// A CloudFront API stand-in: records each request, answers as CloudFront answers a
/// `CreateInvalidation`.
fn cloudfront_stand_in() -> (http::Server, Arc<Mutex<Vec<http::Request>>>) {
    let seen: Arc<Mutex<Vec<http::Request>>> = Arc::default();
    let log = seen.clone();
    let server = http::serve(move |req: http::Request| {
        log.lock().unwrap().push(req);
        Reply::Respond {
            status: 201,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: b"<?xml version=\"1.0\"?><Invalidation><Id>I2J0I21PCUYOIK</Id><Status>InProgress</Status></Invalidation>".to_vec(),
        }
    });
    (server, seen)
}

/// What a firmware walk through `serve` needs, on the memory store or on moto: the
/// environment and options of `serve`, the names of the table and buckets (moto's, made
/// as FireFly's stacks make them), and the CloudFront API stand-in.
struct FirmwareWorld {
    env: Vec<(&'static str, String)>,
    args: Vec<&'static str>,
    table: String,
    bucket: String,
    public: String,
    _cloudfront: http::Server,
    invalidations: Arc<Mutex<Vec<http::Request>>>,
}

impl FirmwareWorld {
    fn new(store: &str) -> Self {
        let moto = Dynalite::shared_moto();
        let endpoint = moto.endpoint();
        let table = support::unique_table("firmware");
        let bucket = support::unique_table("firmware").to_ascii_lowercase();
        let public = support::unique_table("public").to_ascii_lowercase();
        let (cloudfront, invalidations) = cloudfront_stand_in();
        let mut env = vec![("AWS_REGION", "eu-west-1".to_owned())];
        let mut args = vec!["--s3-port", "0", "--cdn-port", "0"];
        if store == "dynamodb" {
            moto.create_firmware_table(&table);
            support::s3::create_bucket(&endpoint, &bucket);
            support::s3::enable_versioning(&endpoint, &bucket);
            support::s3::create_bucket(&endpoint, &public);
            env.extend([
                (
                    "DYNAMODB_REGISTRATION_KEYS_TABLE_NAME",
                    "firefly-registration-keys".to_owned(),
                ),
                ("DYNAMODB_DEVICES_TABLE_NAME", "firefly-devices".to_owned()),
                ("DYNAMODB_FIRMWARE_TABLE_NAME", table.clone()),
                ("DYNAMODB_USERS_TABLE_NAME", "firefly-users".to_owned()),
                ("COGNITO_USER_POOL_ID", "eu-west-1_LocalPool".to_owned()),
                (
                    "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER",
                    endpoint.clone(),
                ),
                ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", bucket.clone()),
                ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", public.clone()),
                ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE".to_owned()),
                (
                    "AWS_ENDPOINT_URL_CLOUDFRONT",
                    format!("http://127.0.0.1:{}", cloudfront.port),
                ),
                ("S3_BACKUP_BUCKET_NAME", "firefly-device-backups".to_owned()),
                ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.clone()),
                ("AWS_ENDPOINT_URL_S3", endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("ENVIRONMENT_NAME", "dev".to_owned()),
            ]);
            args.extend(["--store", "dynamodb"]);
        }
        let bucket = if store == "dynamodb" {
            bucket
        } else {
            "firefly-firmware-local".into()
        };
        Self {
            env,
            args,
            table,
            bucket,
            public,
            _cloudfront: cloudfront,
            invalidations,
        }
    }

    fn start(&self, dir: &Path) -> Local {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Local::start(dir, &self.args, &env)
    }
}

fn firmware_pipeline(store: &str) {
    let dir = scratch(&format!("firmware-{store}"));
    let moto = Dynalite::shared_moto();
    let world = FirmwareWorld::new(store);
    let api = world.start(&dir);
    let s3 = s3_endpoint(&api);
    let (table, bucket, public) = (&world.table, &world.bucket, &world.public);
    let token = api.token("alice");
    // firmware build, then firmware upload: FireFly's CI's ZIP, put as its CI puts it.
    let zip = dir.join("fw.zip");
    let built = Command::new(BIN)
        .args([
            "firmware",
            "build",
            "--out",
            zip.to_str().unwrap(),
            "--product-hex",
            "0xAB00CD03",
            "--version",
            "2026.12.03",
            "--image-kib",
            "128",
        ])
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let up = Command::new(BIN)
        .args([
            "firmware",
            "upload",
            zip.to_str().unwrap(),
            "--s3-url",
            &s3,
            "--bucket",
            bucket,
        ])
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    let items = firmware_when(&api, &token, "0xab00cd03", |i| !i.is_empty());
    assert_eq!(items.len(), 1, "{:?}", api.logs());
    assert_eq!(items[0]["release_status"], "READY_TO_TEST");
    assert_eq!(items[0]["original_name"], "fw.zip");
    let zip_name = items[0]["zip_name"].as_str().unwrap().to_owned();
    // The record is filed before the ZIP moves on to processed/ (FireFly's order): wait
    // for the move, up to 10 s.
    let moved = format!("processed/{zip_name}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listing = loop {
        let (status, listing) = plain(
            "GET",
            &format!("{s3}/{bucket}?list-type=2&prefix=processed/"),
            b"",
        );
        assert_eq!(status, 200);
        if listing.contains(&moved) || std::time::Instant::now() > deadline {
            break listing;
        }
        std::thread::yield_now();
    };
    assert!(listing.contains(&moved), "{listing}");
    // The ZIP leaves processed/ (in a versioned bucket, moto itself would send nothing):
    // the deleted function hears of it and the record becomes DELETED.
    support::dynamo::block_on(
        support::s3::client(&s3).delete_object(bucket, &format!("processed/{zip_name}")),
    )
    .unwrap();
    let items = firmware_when(&api, &token, "0xab00cd03", |i| {
        i.first().is_some_and(|r| r["release_status"] == "DELETED")
    });
    assert_eq!(items[0]["release_status"], "DELETED", "{:?}", api.logs());
    assert_eq!(items[0]["status_history"].as_array().unwrap().len(), 2);
    if store == "dynamodb" {
        debug_build_replaced(
            &api,
            &dir,
            &s3,
            bucket,
            moto,
            table,
            public,
            &world.invalidations,
        );
    }
}

/// FireFly's CI uploads 9999.99.99 on every build: over a released one, the upload revokes
/// it first (its public files to revoked/, CloudFront told, through the real APIs' wire
/// formats: moto's S3, a CloudFront stand-in) and takes its place.
#[allow(clippy::too_many_arguments)]
fn debug_build_replaced(
    api: &Local,
    dir: &Path,
    s3: &str,
    bucket: &str,
    moto: &Dynalite,
    table: &str,
    public: &str,
    invalidations: &Mutex<Vec<http::Request>>,
) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    let token = api.token("alice");
    let upload = |name: &str| {
        let zip = dir.join(name);
        let built = Command::new(BIN)
            .args(["firmware", "build", "--out", zip.to_str().unwrap()])
            .args(["--product-hex", "0xAB00CD04", "--version", "9999.99.99"])
            .output()
            .unwrap();
        assert!(built.status.success(), "{built:?}");
        let up = Command::new(BIN)
            .args(["firmware", "upload", zip.to_str().unwrap(), "--s3-url", s3])
            .args(["--bucket", bucket])
            .output()
            .unwrap();
        assert!(up.status.success(), "{up:?}");
    };
    upload("debug-1.zip");
    let items = firmware_when(api, &token, "0xab00cd04", |i| !i.is_empty());
    let pk = items[0]["pk"]
        .as_str()
        .unwrap_or("controller#0xab00cd04#controller");
    // Released, as the status function would leave it: the record, and its public files.
    support::dynamo::block_on(
        moto.client()
            .update_item()
            .table_name(table)
            .key("pk", S(pk.into()))
            .key("version", S("9999.99.99".into()))
            .update_expression("SET release_status = :r")
            .expression_attribute_values(":r", S("RELEASED".into()))
            .send(),
    )
    .unwrap();
    let folder = "controller/0xab00cd04/controller/9999.99.99/";
    let public_s3 = support::s3::client(&moto.endpoint());
    for name in ["Controller.ino.bin", "ui.bin"] {
        support::dynamo::block_on(public_s3.put_object(
            public,
            &format!("{folder}{name}"),
            vec![7u8; 64].into(),
            "application/octet-stream",
            &[],
        ))
        .unwrap();
    }
    upload("debug-2.zip");
    let items = firmware_when(api, &token, "0xab00cd04", |i| {
        i.first()
            .is_some_and(|r| r["original_name"] == "debug-2.zip")
    });
    assert_eq!(items.len(), 1, "{:?}", api.logs());
    assert_eq!(items[0]["release_status"], "READY_TO_TEST");
    let list =
        |prefix: &str| support::dynamo::block_on(public_s3.list_keys(public, prefix)).unwrap();
    assert!(list(folder).is_empty(), "{:?}", list(""));
    assert_eq!(
        list("revoked/"),
        [
            format!("revoked/{folder}Controller.ino.bin"),
            format!("revoked/{folder}ui.bin")
        ]
    );
    let seen = invalidations.lock().unwrap();
    assert_eq!(seen.len(), 1, "one invalidation");
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.path,
        "/2020-05-31/distribution/EDFDVBD6EXAMPLE/invalidation"
    );
    let body = String::from_utf8_lossy(&req.body);
    assert!(body.contains(&format!("<Path>/{folder}*</Path>")), "{body}");
    assert!(body.contains("<Quantity>1</Quantity>"), "{body}");
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    assert!(
        auth.contains("/us-east-1/cloudfront/aws4_request"),
        "{auth}"
    );
}

#[test]
fn a_firmware_zip_is_built_uploaded_and_listed_on_the_memory_store() {
    firmware_pipeline("memory");
}

#[test]
fn a_firmware_zip_is_built_uploaded_listed_and_deleted_through_moto() {
    firmware_pipeline("dynamodb");
}

/// The lifecycle on a laptop (memory store): a build uploaded, tested and released through
/// the API, then a simulated controller updates from the CDN stand-in over TLS (checking
/// every binary's SHA-256), the console's download works through a presigned URL that
/// firefly-local itself checks, and a delete ends DELETED through the ZIP's own event.
#[test]
fn a_release_reaches_a_simulated_controller_and_a_download_is_presigned_on_the_memory_store() {
    release_walk("memory");
}

#[test]
fn a_release_reaches_a_simulated_controller_through_moto() {
    release_walk("dynamodb");
}

/// A build of `hex` at `version` made and uploaded as FireFly's CI does, once it is filed:
/// its ZIP's name.
fn filed(api: &Local, dir: &Path, s3: &str, bucket: &str, hex: &str, version: &str) -> String {
    let zip = dir.join(format!("{version}.zip"));
    let zip = zip.to_str().unwrap();
    for args in [
        vec![
            "firmware",
            "build",
            "--out",
            zip,
            "--product-hex",
            hex,
            "--version",
            version,
        ],
        vec![
            "firmware", "upload", zip, "--s3-url", s3, "--bucket", bucket,
        ],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let token = api.token("alice");
    let items = firmware_when(api, &token, &hex.to_lowercase(), |i| !i.is_empty());
    items[0]["zip_name"].as_str().unwrap().to_owned()
}

fn release_walk(store: &str) {
    let dir = scratch(&format!("release-{store}"));
    let world = FirmwareWorld::new(store);
    let api = world.start(&dir);
    let s3 = s3_endpoint(&api);
    let bucket = &world.bucket;
    let invalidations = &world.invalidations;
    let token = api.token("alice");
    let zip_name = filed(&api, &dir, &s3, bucket, "0xAB00CD05", "2026.12.05");
    let patch = |to: &str| {
        api.request(
            "PATCH",
            &format!("/firmware/{zip_name}/status"),
            Some(&token),
            format!(r#"{{"release_status":"{to}"}}"#).as_bytes(),
        )
    };
    // Nothing released yet: the controller hears 404, as FireFly's OTA says it.
    let ota = |current: &str| {
        let out = device(
            &api,
            &dir,
            &[
                "ota",
                "--product-hex",
                "0xAB00CD05",
                "--current-version",
                current,
                "--ca",
                dir.join("cdn-ca.pem").to_str().unwrap(),
            ],
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = ota("2026.12.01");
    assert!(!ok && err.contains("OTA answered 404"), "{err}");
    assert_eq!(patch("TESTING").status, 200);
    let released = patch("RELEASED");
    assert_eq!(released.status, 200, "{released:?}");
    assert_eq!(released.json()["release_status"], "RELEASED");
    let (ok, out, err) = ota("2026.12.01");
    assert!(ok, "{out} {err} {:?}", api.logs());
    assert!(out.contains("installed 2026.12.05"), "{out}");
    assert!(
        out.contains("app https://localhost:")
            && out.contains("/controller/0xab00cd05/controller/2026.12.05/Controller.ino.bin"),
        "{out}"
    );
    assert!(out.contains("ui https://localhost:"), "{out}");
    assert_eq!(out.matches("SHA-256 checked").count(), 2, "{out}");
    let (ok, out, _) = ota("2026.12.05");
    assert!(ok && out.starts_with("up to date"), "{out}");

    // The console's download: a presigned URL of firefly-local's S3 endpoint.
    let link = api.request(
        "GET",
        &format!("/firmware/{zip_name}/download"),
        Some(&token),
        b"",
    );
    assert_eq!(link.status, 200, "{link:?}");
    let url = link.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(link.json()["expires_in"], 900);
    assert!(
        url.starts_with(&format!("{s3}/{bucket}/processed/{zip_name}?")),
        "{url}"
    );
    let (status, body) = plain("GET", &url, b"");
    assert_eq!(status, 200);
    assert!(body.starts_with("PK\u{3}\u{4}"), "the ZIP itself");
    if store == "memory" {
        let (status, body) = plain(
            "GET",
            &url.replace("X-Firefly-Expires=", "X-Firefly-Expires=9"),
            b"",
        );
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("AccessDenied"), "{body}");
    } else {
        // SigV4, as on AWS.
        assert!(
            url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=900"),
            "{url}"
        );
        assert_eq!(
            invalidations.lock().unwrap().len(),
            1,
            "the release's one invalidation"
        );
    }

    // Revoked: the controller on it hears 409 and keeps what it runs.
    assert_eq!(patch("REVOKED").status, 200);
    let (ok, _, err) = ota("2026.12.05");
    assert!(!ok && err.contains("OTA answered 409"), "{err}");
    let gone = api.request(
        "DELETE",
        &format!("/firmware/{zip_name}"),
        Some(&token),
        b"",
    );
    assert_eq!(gone.status, 409);
    assert_eq!(
        gone.json()["message"],
        "Firmware is already in state 'REVOKED'"
    );
}

#[test]
fn a_deleted_firmware_ends_deleted_through_its_zips_event_on_the_memory_store() {
    let dir = scratch("delete-memory");
    let world = FirmwareWorld::new("memory");
    let api = world.start(&dir);
    let s3 = s3_endpoint(&api);
    let token = api.token("alice");
    let zip_name = filed(&api, &dir, &s3, &world.bucket, "0xAB00CD06", "2026.12.06");
    let gone = api.request(
        "DELETE",
        &format!("/firmware/{zip_name}"),
        Some(&token),
        b"",
    );
    assert_eq!(gone.status, 202);
    assert_eq!(gone.json()["message"], "Deletion initiated");
    let items = firmware_when(&api, &token, "0xab00cd06", |i| {
        i.first().is_some_and(|r| r["release_status"] == "DELETED")
    });
    let statuses: Vec<&str> = items[0]["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["READY_TO_TEST", "DELETING", "DELETED"],
        "{:?}",
        api.logs()
    );
    let link = api.request(
        "GET",
        &format!("/firmware/{zip_name}/download"),
        Some(&token),
        b"",
    );
    assert_eq!(link.status, 410);
}

#[test]
fn on_a_laptop_the_users_routes_manage_the_sign_ins_users_and_a_first_sign_in_is_put_to_the_pre_sign_up()
 {
    use base64::Engine as _;
    let dir = scratch("users");
    let users = dir.join("users.json");
    std::fs::write(
        &users,
        r#"[{"username": "ida", "email": "ida@example.com", "groups": ["super_users"]},
            {"username": "joe", "email": "joe@example.com"}]"#,
    )
    .unwrap();
    let console = "http://localhost:5173/callback";
    let api = Local::start(
        &dir,
        &[
            "--redirect-uri",
            console,
            "--users",
            users.to_str().unwrap(),
        ],
        &[],
    );
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghijklmnop";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    // The authorize request as the console makes it, with `who` added (`user=` from the
    // page's list, or `email=` from its first-sign-in form).
    let authorize = |who: &str| {
        let q = form(&[
            ("client_id", "firefly-local"),
            ("redirect_uri", console),
            ("response_type", "code"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        api.request("GET", &format!("/oauth2/authorize?{q}&{who}"), None, b"")
    };
    let token = |body: String| {
        api.request("POST", "/oauth2/token", None, body.as_bytes())
            .json()
    };
    // Signs in: (access token, refresh token).
    let sign_in = |who: &str| {
        let a = authorize(who);
        assert_eq!(a.status, 302, "{who}: {a:?}");
        let location = a.header("location").unwrap();
        let code = location
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let t = token(form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "firefly-local"),
            ("code", code),
            ("redirect_uri", console),
            ("code_verifier", verifier),
        ]));
        (
            t["access_token"].as_str().unwrap().to_owned(),
            t["refresh_token"].as_str().unwrap().to_owned(),
        )
    };
    let refresh = |r: &str| {
        api.request(
            "POST",
            "/oauth2/token",
            None,
            form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "firefly-local"),
                ("refresh_token", r),
            ])
            .as_bytes(),
        )
    };
    let claims = |t: &str| -> serde_json::Value {
        let payload = t.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    let (ida, _) = sign_in("user=ida");
    let list = |t: &str| {
        let r = api.request("GET", "/users", Some(t), b"");
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["users"].as_array().unwrap().clone()
    };
    // The users routes manage the sign-in's users.
    let users = list(&ida);
    let emails: Vec<&str> = users.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ida@example.com", "joe@example.com"]);
    assert_eq!(users[0]["is_super"], true);
    assert_eq!(users[1]["is_super"], false);

    // A first sign-in without an invitation: the pre-sign-up's refusal, as Cognito shows it.
    let page = authorize("email=new%40example.com");
    assert_eq!(page.status, 400, "{page:?}");
    assert!(
        page.body
            .contains("this account has not been granted access"),
        "{}",
        page.body
    );
    // Invited, then signing in for the first time: admitted, and in the pool.
    let r = api.request(
        "POST",
        "/users",
        Some(&ida),
        br#"{"email": "New@Example.com"}"#,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let invited = list(&ida);
    let new = invited
        .iter()
        .find(|u| u["email"] == "new@example.com")
        .unwrap();
    assert_eq!(new["status"], "INVITED");
    assert_eq!(
        new["invited_by"], "ida@example.com",
        "the inviter by their username"
    );
    let (new_token, new_refresh) = sign_in("email=New%40example.com");
    assert!(claims(&new_token).get("cognito:groups").is_none());
    assert_eq!(
        api.request("GET", "/users", Some(&new_token), b"").status,
        403
    );
    let after = list(&ida);
    let new = after
        .iter()
        .find(|u| u["email"] == "new@example.com")
        .unwrap();
    assert_eq!(new["status"], "EXTERNAL_PROVIDER", "{after:?}");
    // Its second sign-in by address is the same user.
    let (again, _) = sign_in("email=new%40example.com");
    assert_eq!(claims(&again)["sub"], claims(&new_token)["sub"]);

    // Promoted: joe's next token carries super_users.
    let r = api.request(
        "PATCH",
        "/users/joe%40example.com",
        Some(&ida),
        br#"{"is_super": true}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let (joe, _) = sign_in("user=joe");
    assert_eq!(
        claims(&joe)["cognito:groups"],
        serde_json::json!(["super_users"])
    );
    assert_eq!(list(&joe).len(), 3);

    // Deleted: signed out, and their refresh token dead.
    assert_eq!(refresh(&new_refresh).status, 200);
    let r = api.request("DELETE", "/users/new%40example.com", Some(&ida), b"");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(refresh(&new_refresh).status, 400);
    assert!(!list(&ida).iter().any(|u| u["email"] == "new@example.com"));
}

#[test]
fn on_a_laptop_the_app_configuration_page_sets_each_functions_level_in_the_local_logs() {
    let dir = scratch("appconfig");
    let api = Local::start(&dir, &[], &[]);
    let token = |groups: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(["token", "--sub", "ida", "--key-file"])
            .arg(&api.key_file);
        for g in groups {
            c.args(["--groups", g]);
        }
        String::from_utf8(c.output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned()
    };
    let (admin, plain) = (token(&["super_users"]), token(&[]));
    let call = |method: &str, path: &str, body: &str| {
        api.request(method, path, Some(&admin), body.as_bytes())
    };
    // Every function of the route table, by name, nothing configured yet.
    let r = call("GET", "/appconfig", "");
    assert_eq!(r.status, 200, "{r:?}");
    let listed: Vec<serde_json::Value> = r.json()["applications"].as_array().unwrap().clone();
    let mut functions: Vec<&str> = firefly_api::routes::ROUTES
        .iter()
        .map(|r| r.function)
        .collect();
    functions.sort();
    functions.dedup();
    let names: Vec<&str> = listed.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, functions);
    assert!(
        listed
            .iter()
            .all(|a| a["logging"].is_null() && a["status"].is_null())
    );

    // An invitation's address is a DEBUG line of the users-post function: at the default
    // level (INFO) it is not written. Lines arrive in order: once a request's "request
    // completed" line is in, every earlier line of it is too.
    let mut invites = 0;
    let mut invite = |email: &str| {
        let r = call("POST", "/users", &format!("{{\"email\":\"{email}\"}}"));
        assert_eq!(r.status, 201, "{r:?}");
        invites += 1;
        let n = invites;
        api.logs_when(|l| {
            l.lines()
                .filter(|l| {
                    l.contains("\"message\":\"request completed\"")
                        && l.contains("\"route_key\":\"POST /users\"")
                })
                .count()
                >= n
        })
    };
    assert!(!invite("amy@example.com").contains("amy@example.com"));
    // Staged, not deployed: still not written.
    let staged = call(
        "PATCH",
        "/appconfig/firefly-func-api-users-post",
        r#"{"logging": "debug"}"#,
    );
    assert_eq!(
        (staged.status, staged.json()),
        (
            200,
            serde_json::json!({"name": "firefly-func-api-users-post", "logging": "DEBUG", "version": 1})
        )
    );
    assert!(!invite("bea@example.com").contains("bea@example.com"));
    // Deployed: that function's DEBUG lines are written, and only that function's level
    // changed.
    let deployed = call("POST", "/appconfig/firefly-func-api-users-post/deploy", "");
    assert_eq!(
        (deployed.status, deployed.json()),
        (
            200,
            serde_json::json!({"name": "firefly-func-api-users-post", "version": 1, "environment": "default", "status": "COMPLETE"})
        )
    );
    assert!(invite("cal@example.com").contains("cal@example.com"));
    let listed = call("GET", "/appconfig", "").json();
    let row = |name: &str| {
        listed["applications"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        row("firefly-func-api-users-post"),
        serde_json::json!({"name": "firefly-func-api-users-post", "logging": "DEBUG", "version": 1, "deployed_version": 1, "status": "COMPLETE"})
    );
    assert!(row("firefly-func-api-users-get")["logging"].is_null());
    // Deleted: back to the default.
    let r = call("DELETE", "/appconfig/firefly-func-api-users-post", "");
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    assert!(!invite("dee@example.com").contains("dee@example.com"));

    // FireFly's answers to what is wrong, in FireFly's words.
    let refused = |r: Answer, status: u16, message: &str| {
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.json(), serde_json::json!({ "message": message }));
    };
    refused(
        call(
            "PATCH",
            "/appconfig/other-function",
            r#"{"logging":"DEBUG"}"#,
        ),
        400,
        "Function name must start with 'firefly-func-'",
    );
    refused(
        call(
            "PATCH",
            "/appconfig/firefly-func-does-not-exist",
            r#"{"logging":"DEBUG"}"#,
        ),
        404,
        "Lambda function 'firefly-func-does-not-exist' not found",
    );
    for (body, message) in [
        ("{}", "Missing required field: logging"),
        (
            r#"{"logging":"loud"}"#,
            "Invalid log level 'LOUD'; must be one of ['CRITICAL', 'DEBUG', 'ERROR', 'INFO', 'WARNING']",
        ),
        ("[1]", "Invalid JSON body"),
        ("\"DEBUG\"", "Invalid JSON body"),
        ("5", "Invalid JSON body"),
        ("{", "Invalid JSON body"),
    ] {
        refused(
            call("PATCH", "/appconfig/firefly-func-api-health-get", body),
            400,
            message,
        );
    }
    refused(
        call("POST", "/appconfig/firefly-func-api-ota-get/deploy", ""),
        404,
        "No AppConfig application found for 'firefly-func-api-ota-get'. Use PATCH to create one first.",
    );
    refused(
        call("DELETE", "/appconfig/firefly-func-api-ota-get", ""),
        404,
        "No AppConfig application found for 'firefly-func-api-ota-get'",
    );
    for (method, path) in [
        ("GET", "/appconfig"),
        ("PATCH", "/appconfig/firefly-func-api-health-get"),
        ("POST", "/appconfig/firefly-func-api-health-get/deploy"),
        ("DELETE", "/appconfig/firefly-func-api-health-get"),
    ] {
        let r = api.request(method, path, Some(&plain), br#"{"logging":"DEBUG"}"#);
        refused(r, 403, "Forbidden");
        assert_eq!(api.request(method, path, None, b"").status, 401);
    }
}

#[test]
fn against_motos_cognito_the_users_routes_make_real_calls_and_the_authorizer_trusts_its_tokens() {
    let dir = scratch("moto-cognito");
    let moto = Dynalite::shared_moto();
    let endpoint = moto.endpoint();
    let call = |op: &str, input: Value| support::cognito::call(&endpoint, op, input);
    // A pool as FireFly's cognito stack makes it, with an app client and two users.
    let pool = call(
        "CreateUserPool",
        serde_json::json!({"PoolName": support::unique_table("pool")}),
    )["UserPool"]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = call(
        "CreateUserPoolClient",
        serde_json::json!({"UserPoolId": pool, "ClientName": "console",
                           "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"]}),
    )["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        "CreateGroup",
        serde_json::json!({"UserPoolId": pool, "GroupName": "super_users"}),
    );
    let sign_in = |user: &str, groups: bool| {
        call(
            "AdminCreateUser",
            serde_json::json!({"UserPoolId": pool, "Username": user, "MessageAction": "SUPPRESS",
                               "UserAttributes": [{"Name": "email", "Value": format!("{user}@example.com")}]}),
        );
        call(
            "AdminSetUserPassword",
            serde_json::json!({"UserPoolId": pool, "Username": user, "Password": "Pass-word-1", "Permanent": true}),
        );
        if groups {
            call(
                "AdminAddUserToGroup",
                serde_json::json!({"UserPoolId": pool, "Username": user, "GroupName": "super_users"}),
            );
        }
        call(
            "AdminInitiateAuth",
            serde_json::json!({"UserPoolId": pool, "ClientId": client, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
                               "AuthParameters": {"USERNAME": user, "PASSWORD": "Pass-word-1"}}),
        )["AuthenticationResult"]["AccessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (ida, joe) = (sign_in("ida", true), sign_in("joe", false));
    // The pool's keys, as moto serves them.
    let authority = endpoint.trim_start_matches("http://");
    let mut s = TcpStream::connect(authority).unwrap();
    write!(
        s,
        "GET /{pool}/.well-known/jwks.json HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let jwks = answer.split("\r\n\r\n").nth(1).unwrap();
    std::fs::write(dir.join("jwks.json"), jwks).unwrap();
    let table = support::unique_table("users");
    moto.create_users_table(&table);
    let api = Local::start(
        &dir,
        &[
            "--issuer",
            &format!("https://cognito-idp.eu-west-1.amazonaws.com/{pool}"),
            "--audience",
            &client,
            "--jwks",
            dir.join("jwks.json").to_str().unwrap(),
            "--store",
            "dynamodb",
        ],
        &[
            (
                "DYNAMODB_REGISTRATION_KEYS_TABLE_NAME",
                "firefly-registration-keys",
            ),
            ("DYNAMODB_DEVICES_TABLE_NAME", "firefly-devices"),
            ("DYNAMODB_FIRMWARE_TABLE_NAME", "firefly-firmware"),
            ("DYNAMODB_USERS_TABLE_NAME", table.as_str()),
            ("COGNITO_USER_POOL_ID", pool.as_str()),
            ("S3_FIRMWARE_PRIVATE_BUCKET_NAME", "firefly-firmware"),
            ("S3_FIRMWARE_PUBLIC_BUCKET_NAME", "firefly-firmware-public"),
            ("CLOUDFRONT_DISTRIBUTION_ID", "EDFDVBD6EXAMPLE"),
            ("S3_BACKUP_BUCKET_NAME", "firefly-device-backups"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    // moto's token passes the authorizer; its groups decide.
    let r = api.request("GET", "/users", Some(&ida), b"");
    assert_eq!(r.status, 200, "{r:?}");
    let users = r.json()["users"].clone();
    assert_eq!(
        users
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (
                u["email"].as_str().unwrap(),
                u["is_super"].as_bool().unwrap()
            ))
            .collect::<Vec<_>>(),
        [("ida@example.com", true), ("joe@example.com", false)]
    );
    assert_eq!(api.request("GET", "/users", Some(&joe), b"").status, 403);
    assert_eq!(
        api.request("GET", "/users", Some("not.a.token"), b"")
            .status,
        401
    );
    // The routes' changes are Cognito's: joe promoted in the pool itself.
    let r = api.request(
        "PATCH",
        "/users/joe%40example.com",
        Some(&ida),
        br#"{"is_super": true}"#,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let members = call(
        "ListUsersInGroup",
        serde_json::json!({"UserPoolId": pool, "GroupName": "super_users"}),
    );
    assert_eq!(members["Users"].as_array().unwrap().len(), 2);
}
