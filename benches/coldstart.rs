//! Cold start: our release `bootstrap` against the typical build (benches/baseline), side by
//! side in one run on this machine, with ratios.
//!
//! Run: `cargo bench --bench coldstart` (needs `npm ci --prefix tools`, valgrind, openssl).
//! Optional: COLDSTART_ROUNDS (default 15), COLDSTART_WARM (warm invokes per round, 50),
//! COLDSTART_EXTRA=name=/path/to/bootstrap,... to add other builds (ablations) to the table,
//! COLDSTART_TIMES_ONLY=1 to skip every callgrind count (instructions read 0: a quick look at
//! times while changing something, never a run to quote).
//! It also measures `firefly+50 routes`: the same binary with 50 synthetic routes in its
//! table (what a route costs; COLDSTART_ROUTES=0 skips it).
//!
//! It then measures a backup function (`devices-backup-get`: the device from DynamoDB, its
//! nonce recorded, the object from an S3 stand-in over TLS) against the typical build of
//! the same function (benches/baseline's `bootstrap-backup`, aws-sdk-s3 with its defaults),
//! and the firmware ingest (`s3-firmware-uploaded`: S3's event for a real build's ZIP, the
//! ZIP moved, read and checked, its record filed) against `bootstrap-firmware-uploaded`.
//!
//! For each build it reports: stripped size and zipped size; init instructions (callgrind,
//! from exec to the first GET /next: deterministic, unlike time on a shared machine); init
//! time; the cold request (process start to the first response, the first DynamoDB call
//! going over TLS to dynalite behind a local CA); warm invoke latency; peak RSS.

#[path = "../tests/support/dynamo.rs"]
#[allow(dead_code)]
mod dynamo;
#[path = "../tests/support/http.rs"]
#[allow(dead_code)]
mod http;
#[path = "../tests/support/tls.rs"]
mod tls;

use http::{Reply, Request};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tls::{Keys, Tls, make_ca_with};

const TABLE: &str = "firefly-registration-keys-bench";
/// The devices table's name in the functions' environment (init never reads it).
const DEVICES_TABLE: &str = "firefly-devices-bench";

struct Build {
    name: String,
    path: PathBuf,
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = root.join("target/coldstart");
    std::fs::create_dir_all(&work).unwrap();
    let rounds: usize = env_num("COLDSTART_ROUNDS", 15);
    let warm: usize = env_num("COLDSTART_WARM", 50);

    // What a route costs: the same build with 50 synthetic routes of 50 other functions in
    // its table (src/synthetic.rs). Built first and copied aside, since the plain build
    // below writes the same path. COLDSTART_ROUTES=0 skips it.
    let with_routes = work.join("bootstrap-52-routes");
    if env_num("COLDSTART_ROUTES", 1) == 1 {
        eprintln!("building bootstrap with 50 synthetic routes ...");
        run(Command::new("cargo")
            .args([
                "build",
                "--release",
                "--quiet",
                "--bin",
                "bootstrap",
                "--features",
                "synthetic-routes",
                "--manifest-path",
            ])
            .arg(root.join("Cargo.toml")));
        std::fs::copy(root.join("target/release/bootstrap"), &with_routes).unwrap();
    }
    // Our release build exactly as deployed (the bench profile would build it with
    // panic=unwind), and the baseline with its own settings only (none of ours).
    eprintln!("building bootstrap (release) and the baseline (benches/baseline) ...");
    run(Command::new("cargo")
        .args([
            "build",
            "--release",
            "--quiet",
            "--bin",
            "bootstrap",
            "--manifest-path",
        ])
        .arg(root.join("Cargo.toml")));
    run(Command::new("cargo")
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("benches/baseline/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/baseline"))
        .env("CARGO_ENCODED_RUSTFLAGS", ""));
    let mut builds = vec![
        Build {
            name: "firefly".into(),
            path: root.join("target/release/bootstrap"),
        },
        Build {
            name: "baseline".into(),
            path: root.join("target/baseline/release/bootstrap"),
        },
    ];
    if env_num("COLDSTART_ROUTES", 1) == 1 {
        builds.push(Build {
            name: "firefly+50 routes".into(),
            path: with_routes,
        });
    }
    for extra in std::env::var("COLDSTART_EXTRA")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((name, path)) = extra.split_once('=') {
            builds.push(Build {
                name: name.into(),
                path: path.into(),
            });
        }
    }

    // RSA 2048 keys, as the chains of DynamoDB's and S3's endpoints: the handshake costs
    // what it costs against AWS (an ECDSA P-256 chain made it cost ours 2 M instructions
    // more, and the baseline's first request likewise).
    let tls = make_ca_with(&work, Keys::Rsa2048);
    let dynalite = dynamo::Dynalite::start_with(
        0,
        &[
            "--tls".as_ref(),
            tls.key.as_os_str(),
            tls.cert.as_os_str(),
            "--table".as_ref(),
            TABLE.as_ref(),
        ],
    );
    let endpoint = format!("https://localhost:{}", dynalite.port);
    let backup = Backup::set_up(&endpoint, &tls);

    // Init instructions of every function of the table (only the first build: ours). A
    // function with a table opens its DynamoDB connection during init (TLS included).
    let mut functions: Vec<&str> = firefly_api::routes::ROUTES
        .iter()
        .map(|r| r.function)
        .collect();
    functions.sort_unstable();
    functions.dedup();
    // The same, with nothing listening at the endpoint: init's own work, without the TLS
    // handshake of the connection it opens (a refused connect costs next to nothing).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("https://localhost:{port}")
    };
    let mut by_function = Vec::new();
    if env_num("COLDSTART_TIMES_ONLY", 0) == 1 {
        functions.clear();
    }
    for f in &functions {
        let with = |endpoint: &str| {
            let mut e = env(endpoint, &tls);
            e.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_NAME");
            e.push(("AWS_LAMBDA_FUNCTION_NAME".into(), (*f).into()));
            e.extend(backup.env());
            e.push(("DYNAMODB_FIRMWARE_TABLE_NAME".into(), FIRMWARE_TABLE.into()));
            e.push((
                "S3_FIRMWARE_PRIVATE_BUCKET_NAME".into(),
                FIRMWARE_BUCKET.into(),
            ));
            e.push((
                "S3_FIRMWARE_PUBLIC_BUCKET_NAME".into(),
                "firefly-firmware-public-bench".into(),
            ));
            e.push((
                "CLOUDFRONT_DISTRIBUTION_ID".into(),
                "EDFDVBD6EXAMPLE".into(),
            ));
            e.push(("CLOUDFRONT_DOMAIN".into(), "firmware.example.com".into()));
            e.push((
                "DYNAMODB_USERS_TABLE_NAME".into(),
                "firefly-users-bench".into(),
            ));
            e.push(("COGNITO_USER_POOL_ID".into(), "eu-west-1_Bench".into()));
            // Nothing listening for DynamoDB: nothing for S3 either.
            if endpoint == closed {
                e.retain(|(k, _)| k != "AWS_ENDPOINT_URL_S3");
                e.push(("AWS_ENDPOINT_URL_S3".into(), closed.clone()));
            }
            e
        };
        by_function.push((
            *f,
            callgrind_init(&builds[0].path, &with(&endpoint), &work),
            callgrind_init(&builds[0].path, &with(&closed), &work),
        ));
    }

    let mut results: Vec<Stats> = Vec::new();
    for b in &builds {
        let mut s = Stats {
            name: b.name.clone(),
            ..Default::default()
        };
        s.size = std::fs::metadata(&b.path).unwrap().len();
        s.zipped = zipped_size(&b.path, &work);
        s.init_instructions = callgrind_init(&b.path, &env(&endpoint, &tls), &work);
        // The cold request and a warm invoke as instructions: init and the first answer,
        // then one more.
        let tag = b.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        let first = callgrind_through(
            &b.path,
            &env(&endpoint, &tls),
            &work,
            1,
            &format!("{tag}-1"),
        );
        let second = callgrind_through(
            &b.path,
            &env(&endpoint, &tls),
            &work,
            2,
            &format!("{tag}-2"),
        );
        s.cold_instructions = first;
        s.warm_instructions = second.saturating_sub(first);
        results.push(s);
    }
    // One discarded round first: dynalite's JIT and the page cache warm up on it, not on
    // whichever build happens to go first.
    for b in &builds {
        timed_round(&b.path, &env(&endpoint, &tls), warm);
    }
    // Interleave the builds round by round so that machine noise hits both alike, each
    // round starting with the next build: the first of a round measured slower (about 8%
    // on this machine, the same binary in two places), which must not fall on one build.
    for round in 0..rounds {
        for i in 0..builds.len() {
            let k = (i + round) % builds.len();
            let r = timed_round(&builds[k].path, &env(&endpoint, &tls), warm);
            results[k].record(r);
        }
        eprint!("\rround {}/{rounds}", round + 1);
    }
    eprintln!();
    report(&results);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n| function ({}) | init instructions (M) | without the connection warm-up (M) |\n|---|---|---|",
        builds[0].name
    )
    .unwrap();
    for (f, n, own) in &by_function {
        writeln!(
            out,
            "| {f} | {:.3} | {:.3} |",
            *n as f64 / 1e6,
            *own as f64 / 1e6
        )
        .unwrap();
    }
    first_invokes(&results);
    let backup_event = || backup.event();
    compare(
        Comparison {
            label: "backup-get",
            function: "firefly-func-api-devices-backup-get",
            baseline: root.join("target/baseline/release/bootstrap-backup"),
            env: backup.env(),
            event: &backup_event,
            expect: 200,
        },
        &builds[0].path,
        &endpoint,
        &tls,
        &work,
        rounds,
        warm,
    );
    let firmware = Firmware::set_up(&endpoint, &tls, &work);
    let firmware_event = || firmware.event();
    compare(
        Comparison {
            label: "firmware-uploaded",
            function: "firefly-func-s3-firmware-uploaded",
            baseline: root.join("target/baseline/release/bootstrap-firmware-uploaded"),
            env: firmware.env(),
            event: &firmware_event,
            // A function S3 invokes answers no HTTP status: 200 is a success it reported.
            expect: 200,
        },
        &builds[0].path,
        &endpoint,
        &tls,
        &work,
        rounds,
        warm,
    );
    drop(dynalite);
}

/// The backup function's world: the devices table with one device, an S3 stand-in over
/// TLS holding its backup, and the device's key to sign requests with.
struct Backup {
    pair: ring::signature::EcdsaKeyPair,
    s3: http::Server,
}

const BUCKET: &str = "firefly-device-backups-bench";
const DEVICE: &str = "6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10";

impl Backup {
    fn set_up(endpoint: &str, tls: &Tls) -> Self {
        use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        use base64::Engine as _;
        let public = base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref());
        dynalite_call(
            endpoint,
            tls,
            "CreateTable",
            serde_json::json!({
                "TableName": DEVICES_TABLE, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "uuid", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "uuid", "KeyType": "HASH"}],
            }),
        );
        dynalite_call(
            endpoint,
            tls,
            "PutItem",
            serde_json::json!({"TableName": DEVICES_TABLE, "Item": {
                "uuid": {"S": DEVICE}, "product_hex": {"S": "0x08062505"},
                "device_class": {"S": "CONTROLLER"}, "public_key": {"S": public},
                "registration_date": {"S": "2026-05-24T15:32:51Z"},
            }}),
        );
        // A 16 KiB backup, as a controller's configuration is.
        let mut blob = b"FFCE\x01".to_vec();
        blob.resize(16 * 1024, 7);
        let object = format!("/{BUCKET}/{DEVICE}");
        let s3 = http::serve_tls(&tls.cert, &tls.key, move |req: Request| {
            // The SDK adds `?x-id=GetObject`; ours sends none.
            if req.method == "GET" && req.path.split('?').next() == Some(object.as_str()) {
                Reply::Respond {
                    status: 200,
                    headers: vec![
                        ("content-type".into(), "application/octet-stream".into()),
                        ("x-amz-meta-etag".into(), "9f86d081884c7d65".into()),
                        ("etag".into(), "\"d41d8cd98f00b204\"".into()),
                    ],
                    body: blob.clone(),
                }
            } else {
                Reply::status(404, "<Error><Code>NoSuchKey</Code></Error>")
            }
        });
        Self { pair, s3 }
    }

    /// What a backup function's environment adds (every function gets it: init reads only
    /// what its routes declare).
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DYNAMODB_DEVICES_TABLE_NAME".into(), DEVICES_TABLE.into()),
            ("S3_BACKUP_BUCKET_NAME".into(), BUCKET.into()),
            // An IP address: the SDK's endpoint rules then address the bucket path-style.
            (
                "AWS_ENDPOINT_URL_S3".into(),
                format!("https://127.0.0.1:{}", self.s3.port),
            ),
        ]
    }

    /// A restore request signed now with a fresh nonce, as the firmware signs it.
    fn event(&self) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut e: serde_json::Value =
            serde_json::from_slice(include_bytes!("../events/devices-uuid-backup-get.json"))
                .unwrap();
        let mut nonce = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let timestamp = firefly_api::clock::rfc3339(now);
        let mut message = nonce.to_vec();
        message.extend_from_slice(timestamp.as_bytes());
        let sig = self
            .pair
            .sign(&ring::rand::SystemRandom::new(), &message)
            .unwrap();
        e["headers"]["x-device-nonce"] = b64.encode(nonce).into();
        e["headers"]["x-device-timestamp"] = timestamp.into();
        e["headers"]["x-device-signature"] = b64.encode(sig.as_ref()).into();
        serde_json::to_vec(&e).unwrap()
    }
}

/// The firmware ingest's world: FireFly's firmware table (its two GSIs), and an S3
/// stand-in over TLS holding objects in memory (GET, copy, DELETE: what both builds
/// call); each event is a new upload of a real build's ZIP into `incoming/`.
struct Firmware {
    s3: http::Server,
    objects: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    zip: Vec<u8>,
    uploads: Mutex<u64>,
}

const FIRMWARE_BUCKET: &str = "firefly-firmware-bench";
const FIRMWARE_TABLE: &str = "firefly-firmware-bench";

/// `src/firmware/build.rs` (cfg-gated to tests and tools in the library) borrows one
/// item from its parent module: the bench root gives it.
#[path = "../src/firmware/build.rs"]
#[allow(dead_code)]
mod build;
mod archive {
    pub use firefly_api::firmware::archive::sha256_hex;
}

impl Firmware {
    fn set_up(endpoint: &str, tls: &Tls, work: &Path) -> Self {
        let gsi = |name: &str, hash: &str| {
            serde_json::json!({"IndexName": name,
                "KeySchema": [{"AttributeName": hash, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}})
        };
        let attr = |n: &str| serde_json::json!({"AttributeName": n, "AttributeType": "S"});
        dynalite_call(
            endpoint,
            tls,
            "CreateTable",
            serde_json::json!({
                "TableName": FIRMWARE_TABLE, "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [attr("pk"), attr("version"), attr("product_hex"), attr("zip_name")],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                              {"AttributeName": "version", "KeyType": "RANGE"}],
                "GlobalSecondaryIndexes": [gsi("product_hex-index", "product_hex"),
                                           gsi("zip_name-index", "zip_name")],
            }),
        );
        // A Controller build as FireFly's CI makes it: a 1 MiB application image (about
        // 3.3 MiB of members, 2.2 MiB zipped).
        let zip = build::Build::controller("0x32322304", "2026.12.01", 1024)
            .zip()
            .unwrap();
        std::fs::write(work.join("firmware-bench.zip"), &zip).unwrap();
        let objects: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>> = Arc::default();
        let store = objects.clone();
        let s3 = http::serve_tls(&tls.cert, &tls.key, move |req: Request| {
            let path = req.path.split('?').next().unwrap_or_default().to_owned();
            let missing = || Reply::status(404, "<Error><Code>NoSuchKey</Code></Error>");
            let mut objects = store.lock().unwrap();
            match req.method.as_str() {
                "GET" => match objects.get(&path) {
                    Some(body) => Reply::Respond {
                        status: 200,
                        headers: vec![("content-type".into(), "application/zip".into())],
                        body: body.clone(),
                    },
                    None => missing(),
                },
                "PUT" => {
                    let source = req
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-copy-source"))
                        .map(|(_, v)| v.replace("%2F", "/"))
                        .unwrap_or_default();
                    let source = source.split('?').next().unwrap_or_default();
                    let source = format!("/{}", source.trim_start_matches('/'));
                    match objects.get(&source).cloned() {
                        Some(body) => {
                            objects.insert(path, body);
                            Reply::Respond {
                                status: 200,
                                headers: vec![("content-type".into(), "application/xml".into())],
                                body: b"<CopyObjectResult><ETag>\"e\"</ETag><LastModified>2026-12-07T00:00:00.000Z</LastModified></CopyObjectResult>".to_vec(),
                            }
                        }
                        None => missing(),
                    }
                }
                "DELETE" => {
                    objects.remove(&path);
                    Reply::status(204, "")
                }
                _ => Reply::status(405, "<Error><Code>MethodNotAllowed</Code></Error>"),
            }
        });
        Self {
            s3,
            objects,
            zip,
            uploads: Mutex::new(0),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DYNAMODB_FIRMWARE_TABLE_NAME".into(), FIRMWARE_TABLE.into()),
            (
                "S3_FIRMWARE_PRIVATE_BUCKET_NAME".into(),
                FIRMWARE_BUCKET.into(),
            ),
            (
                "S3_FIRMWARE_PUBLIC_BUCKET_NAME".into(),
                "firefly-firmware-public-bench".into(),
            ),
            (
                "CLOUDFRONT_DISTRIBUTION_ID".into(),
                "EDFDVBD6EXAMPLE".into(),
            ),
            (
                "AWS_ENDPOINT_URL_S3".into(),
                format!("https://127.0.0.1:{}", self.s3.port),
            ),
        ]
    }

    /// A new upload: the ZIP put into `incoming/` under a new key, and S3's event for it.
    fn event(&self) -> Vec<u8> {
        let n = {
            let mut n = self.uploads.lock().unwrap();
            *n += 1;
            *n
        };
        let key = format!("incoming/Controller-0x32322304-bench-{n}.zip");
        self.objects
            .lock()
            .unwrap()
            .insert(format!("/{FIRMWARE_BUCKET}/{key}"), self.zip.clone());
        let mut e: serde_json::Value =
            serde_json::from_slice(include_bytes!("../events/s3-firmware-uploaded.json")).unwrap();
        let record = &mut e["Records"][0];
        record["s3"]["bucket"]["name"] = FIRMWARE_BUCKET.into();
        record["s3"]["bucket"]["arn"] = format!("arn:aws:s3:::{FIRMWARE_BUCKET}").into();
        record["s3"]["object"]["key"] = key.into();
        record["s3"]["object"]["size"] = self.zip.len().into();
        // Unversioned: the sequencer tells this upload from the others.
        record["s3"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("versionId");
        record["s3"]["object"]["sequencer"] = format!("{n:018X}").into();
        serde_json::to_vec(&e).unwrap()
    }
}

/// One DynamoDB call to dynalite over TLS (it checks no signature), through the binary's own
/// transport trusting the local CA.
fn dynalite_call(endpoint: &str, tls: &Tls, target: &str, body: serde_json::Value) {
    let ca = tls.ca.to_string_lossy().into_owned();
    let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| ca.clone());
    let http = firefly_api::aws::transport(&env).unwrap();
    let request = hyper::Request::post(endpoint)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", format!("DynamoDB_20120810.{target}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=bench/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("x-amz-date", "20260101T000000Z")
        .body(aws_smithy_types::body::SdkBody::from(body.to_string()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async { http.send(request).await.unwrap().status() });
    assert!(status.is_success(), "dynalite {target}: {status}");
}

/// One function, ours against the typical build of the same function: sizes, init
/// instructions, then rounds interleaved as in the main table; each answer must be `expect`.
struct Comparison<'a> {
    /// The rounds' progress line and the rows' prefix.
    label: &'a str,
    function: &'a str,
    baseline: PathBuf,
    env: Vec<(String, String)>,
    event: &'a dyn Fn() -> Vec<u8>,
    expect: u16,
}

fn compare(
    c: Comparison,
    ours: &Path,
    endpoint: &str,
    tls: &Tls,
    work: &Path,
    rounds: usize,
    warm: usize,
) {
    let builds = [
        Build {
            name: format!("firefly {}", c.label),
            path: ours.to_owned(),
        },
        Build {
            name: format!("baseline {}", c.label),
            path: c.baseline,
        },
    ];
    let mut env = env(endpoint, tls);
    env.retain(|(k, _)| k != "AWS_LAMBDA_FUNCTION_NAME");
    env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), c.function.into()));
    env.extend(c.env);
    let mut results: Vec<Stats> = Vec::new();
    for b in &builds {
        results.push(Stats {
            name: b.name.clone(),
            size: std::fs::metadata(&b.path).unwrap().len(),
            zipped: zipped_size(&b.path, work),
            init_instructions: callgrind_init(&b.path, &env, work),
            ..Default::default()
        });
    }
    for b in &builds {
        timed(&b.path, &env, warm, c.event, c.expect);
    }
    for round in 0..rounds {
        for i in 0..builds.len() {
            let k = (i + round) % builds.len();
            let r = timed(&builds[k].path, &env, warm, c.event, c.expect);
            results[k].record(r);
        }
        eprint!("\r{} round {}/{rounds}", c.label, round + 1);
    }
    eprintln!();
    report(&results);
    first_invokes(&results);
}

/// Where each build's cold request goes: the first invoke against a warm one.
fn first_invokes(results: &[Stats]) {
    let mut out = std::io::stdout().lock();
    for s in results {
        writeln!(
            out,
            "{}: init {:.3} ms, first invoke {:.3} ms, warm invoke {:.3} ms: the first is {:.3} ms slower",
            s.name,
            median(&s.init_ms),
            median(&s.first_ms),
            median(&s.warm_us) / 1000.0,
            median(&s.first_ms) - median(&s.warm_us) / 1000.0
        )
        .unwrap();
    }
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(cmd: &mut Command) {
    let status = cmd.status().expect("spawn");
    assert!(status.success(), "{cmd:?} failed");
}

fn env(endpoint: &str, tls: &Tls) -> Vec<(String, String)> {
    [
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            "firefly-func-api-registration-keys-post",
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_SESSION_TOKEN", "bench"),
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", TABLE),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("SSL_CERT_FILE", tls.bundle.to_str().unwrap()),
        ("FIREFLY_EXTRA_CA_FILE", tls.ca.to_str().unwrap()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn zipped_size(bin: &Path, work: &Path) -> u64 {
    let out = work.join("bootstrap.zip");
    run(Command::new("python3").args([
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED, compresslevel=9); z.write(sys.argv[1], 'bootstrap'); z.close()",
        bin.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    std::fs::metadata(&out).unwrap().len()
}

/// A Runtime API stand-in: reports each GET /next, serves queued events, reports answers.
struct RuntimeApi {
    server: http::Server,
    events: Sender<Vec<u8>>,
    next_seen: Receiver<Instant>,
    answers: Receiver<(Instant, u16)>,
}

fn runtime_api() -> RuntimeApi {
    let (ev_tx, ev_rx) = mpsc::channel::<Vec<u8>>();
    let (next_tx, next_seen) = mpsc::channel();
    let (ans_tx, answers) = mpsc::channel();
    let ev_rx = Arc::new(Mutex::new(ev_rx));
    let next_tx = Mutex::new(next_tx);
    let ans_tx = Mutex::new(ans_tx);
    let counter = Mutex::new(0u64);
    let server = http::serve(move |req: Request| {
        if req.path.ends_with("/invocation/next") {
            let _ = next_tx.lock().unwrap().send(Instant::now());
            let Ok(event) = ev_rx.lock().unwrap().recv() else {
                return Reply::Hang;
            };
            let mut n = counter.lock().unwrap();
            *n += 1;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            return Reply::Respond {
                status: 200,
                headers: vec![
                    ("lambda-runtime-aws-request-id".into(), format!("bench-{n}")),
                    ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn".into(),
                        "arn:aws:lambda:eu-west-1:123456789012:function:bench".into(),
                    ),
                ],
                body: event,
            };
        }
        if req.path.ends_with("/response") {
            // An HTTP answer's status; any other answer (an S3 function's) is a success.
            let status = serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|v| v["statusCode"].as_u64())
                .unwrap_or(200) as u16;
            let _ = ans_tx.lock().unwrap().send((Instant::now(), status));
        } else {
            // An invocation error (`/error`): what Lambda would retry.
            let _ = ans_tx.lock().unwrap().send((Instant::now(), 0));
        }
        Reply::status(202, "{}")
    });
    RuntimeApi {
        server,
        events: ev_tx,
        next_seen,
        answers,
    }
}

fn spawn(program: &Path, args: &[&str], env: &[(String, String)], api: &RuntimeApi) -> Child {
    Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("127.0.0.1:{}", api.server.port),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

fn callgrind_init(bin: &Path, env: &[(String, String)], work: &Path) -> u64 {
    callgrind_through(bin, env, work, 0, "init")
}

/// Instructions from exec through `invokes` answered events (`event()`), to the next
/// `GET /next` (callgrind: as deterministic as init's count). Its profile stays in `work`
/// as `callgrind-<tag>.out`, for `callgrind_annotate`.
fn callgrind_through(
    bin: &Path,
    env: &[(String, String)],
    work: &Path,
    invokes: usize,
    tag: &str,
) -> u64 {
    if env_num("COLDSTART_TIMES_ONLY", 0) == 1 {
        return 0;
    }
    let api = runtime_api();
    let out = work.join(format!("callgrind-{tag}.out"));
    let _ = std::fs::remove_file(&out);
    let out_arg = format!("--callgrind-out-file={}", out.display());
    let mut args = vec!["--tool=callgrind", out_arg.as_str(), bin.to_str().unwrap()];
    args.retain(|a| !a.is_empty());
    let mut child = spawn(Path::new("valgrind"), &args, env, &api);
    api.next_seen
        .recv_timeout(Duration::from_secs(120))
        .expect("the first GET /next under valgrind");
    for _ in 0..invokes {
        api.events.send(event()).unwrap();
        api.answers
            .recv_timeout(Duration::from_secs(120))
            .expect("an answer under valgrind");
        api.next_seen
            .recv_timeout(Duration::from_secs(120))
            .expect("the next GET /next under valgrind");
    }
    // SIGTERM: valgrind writes the profile as the process dies.
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let _ = child.wait();
    let text = std::fs::read_to_string(&out).expect("callgrind output");
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("callgrind summary")
}

struct Round {
    init_ms: f64,
    cold_ms: f64,
    warm_us: Vec<f64>,
    rss_kib: u64,
}

fn event() -> Vec<u8> {
    include_bytes!("../events/registration-keys-post.json").to_vec()
}

fn timed_round(bin: &Path, env: &[(String, String)], warm: usize) -> Round {
    timed(bin, env, warm, &event, 201)
}

/// One process: its init, its first (cold) request, then `warm` more; each answer must be
/// `expect`.
fn timed(
    bin: &Path,
    env: &[(String, String)],
    warm: usize,
    event: &dyn Fn() -> Vec<u8>,
    expect: u16,
) -> Round {
    let api = runtime_api();
    let started = Instant::now();
    let mut child = spawn(bin, &[], env, &api);
    let first_next = api
        .next_seen
        .recv_timeout(Duration::from_secs(30))
        .expect("first /next");
    api.events.send(event()).unwrap();
    let (answered, status) = api
        .answers
        .recv_timeout(Duration::from_secs(30))
        .expect("answer");
    assert_eq!(status, expect, "{} answered {status}", bin.display());
    let mut warm_us = Vec::with_capacity(warm);
    for _ in 0..warm {
        let _ = api
            .next_seen
            .recv_timeout(Duration::from_secs(30))
            .expect("/next");
        let sent = Instant::now();
        api.events.send(event()).unwrap();
        let (done, status) = api
            .answers
            .recv_timeout(Duration::from_secs(30))
            .expect("answer");
        assert_eq!(status, expect);
        warm_us.push((done - sent).as_secs_f64() * 1e6);
    }
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    Round {
        init_ms: (first_next - started).as_secs_f64() * 1e3,
        cold_ms: (answered - started).as_secs_f64() * 1e3,
        warm_us,
        rss_kib,
    }
}

#[derive(Default)]
struct Stats {
    name: String,
    size: u64,
    zipped: u64,
    init_instructions: u64,
    /// Init and the first answer (callgrind).
    cold_instructions: u64,
    /// The second answer alone (callgrind).
    warm_instructions: u64,
    init_ms: Vec<f64>,
    cold_ms: Vec<f64>,
    /// From the first `GET /next` to the first answer: the first invoke alone.
    first_ms: Vec<f64>,
    warm_us: Vec<f64>,
    rss_kib: Vec<u64>,
}

impl Stats {
    fn record(&mut self, r: Round) {
        self.init_ms.push(r.init_ms);
        self.cold_ms.push(r.cold_ms);
        self.first_ms.push(r.cold_ms - r.init_ms);
        self.warm_us.extend(r.warm_us);
        self.rss_kib.push(r.rss_kib);
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn report(results: &[Stats]) {
    let mib = |b: u64| b as f64 / 1024.0 / 1024.0;
    let rows: Vec<(&str, Vec<f64>)> = vec![
        (
            "binary (MiB)",
            results.iter().map(|s| mib(s.size)).collect(),
        ),
        (
            "zipped (MiB)",
            results.iter().map(|s| mib(s.zipped)).collect(),
        ),
        (
            "init instructions (M)",
            results
                .iter()
                .map(|s| s.init_instructions as f64 / 1e6)
                .collect(),
        ),
        (
            "cold request instructions, init and the first answer (M)",
            results
                .iter()
                .map(|s| s.cold_instructions as f64 / 1e6)
                .collect(),
        ),
        (
            "warm invoke instructions (M)",
            results
                .iter()
                .map(|s| s.warm_instructions as f64 / 1e6)
                .collect(),
        ),
        (
            "init time, median (ms)",
            results.iter().map(|s| median(&s.init_ms)).collect(),
        ),
        (
            "cold request over TLS, median (ms)",
            results.iter().map(|s| median(&s.cold_ms)).collect(),
        ),
        (
            "warm invoke, median (us)",
            results.iter().map(|s| median(&s.warm_us)).collect(),
        ),
        (
            "peak RSS, median (MiB)",
            results
                .iter()
                .map(|s| {
                    median(
                        &s.rss_kib
                            .iter()
                            .map(|&k| k as f64 / 1024.0)
                            .collect::<Vec<_>>(),
                    )
                })
                .collect(),
        ),
    ];
    // Every build against the baseline (column 2).
    let mut out = std::io::stdout().lock();
    let names: Vec<&str> = results.iter().map(|s| s.name.as_str()).collect();
    let ratios: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, n)| format!("{n} / baseline"))
        .collect();
    writeln!(
        out,
        "\n| measure | {} | {} |",
        names.join(" | "),
        ratios.join(" | ")
    )
    .unwrap();
    writeln!(out, "|---|{}", "---|".repeat(names.len() + ratios.len())).unwrap();
    // A measure a comparison did not take (instructions of the requests: the main table's).
    for (label, v) in rows
        .into_iter()
        .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
    {
        let values: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
        let ratios: Vec<String> = v
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .map(|(_, x)| format!("{:.3}", x / v[1]))
            .collect();
        writeln!(
            out,
            "| {label} | {} | {} |",
            values.join(" | "),
            ratios.join(" | ")
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nrounds: {}, warm invokes per round: {}",
        results[0].cold_ms.len(),
        results[0].warm_us.len() / results[0].cold_ms.len().max(1)
    )
    .unwrap();
}
