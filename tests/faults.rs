//! Faults and hostile input against the real binary under the Runtime API protocol:
//! DynamoDB resetting, hanging, failing and throttling (a fault-injecting proxy in front of
//! dynalite), very large events and unicode claims. After every fault, the same process
//! serves the next event correctly.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::dynamo::{Dynalite, n, s};
use support::faults::{Fault, Proxy};
use support::lambda::{Function, Outcome};
use support::*;

struct Rig {
    f: Function,
    proxy: Proxy,
    table: String,
}

fn rig(extra: &[(&str, &str)]) -> Rig {
    rig_on(Dynalite::shared(), extra)
}

/// A function behind the fault proxy in front of `db` (dynalite, or moto where a test needs
/// a DynamoDB feature dynalite lacks).
fn rig_on(db: &Dynalite, extra: &[(&str, &str)]) -> Rig {
    let table = unique_table("faults");
    db.create_table(&table);
    let proxy = Proxy::start(db.port);
    let mut env = env_with(extra);
    env.push((
        "DYNAMODB_REGISTRATION_KEYS_TABLE_NAME".into(),
        table.clone(),
    ));
    env.push(("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy.endpoint()));
    Rig {
        f: Function::start(&env),
        proxy,
        table,
    }
}

fn status(o: &Outcome) -> u16 {
    o.http().status
}

/// The next event after a fault: a fresh key, stored for its caller (on dynalite).
fn healthy(r: &mut Rig, user: &str) {
    r.proxy.set(vec![], Fault::Pass);
    let o = r.f.invoke(&event_for(user));
    assert_eq!(status(&o), 201, "{:?}", o.http());
    let key = o.http().json()["key"].as_str().unwrap().to_owned();
    let item = Dynalite::shared().get(&r.table, &key).expect("stored");
    assert_eq!(s(&item, "generated_by_sub"), user);
}

#[test]
fn dynamodb_faults_answer_503_in_time_and_the_process_recovers() {
    let mut r = rig(NO_ENV);
    healthy(&mut r, "before");
    let faults = [
        ("reset", Fault::Reset),
        ("hang", Fault::Hang),
        ("5xx", Fault::Error(500, "InternalServerError")),
        ("503", Fault::Error(503, "ServiceUnavailable")),
        (
            "throughput",
            Fault::Error(400, "ProvisionedThroughputExceededException"),
        ),
        ("throttling", Fault::Error(400, "ThrottlingException")),
        ("request limit", Fault::Error(400, "RequestLimitExceeded")),
    ];
    for (name, fault) in faults.clone() {
        r.proxy.set(vec![], fault);
        let started = Instant::now();
        let o = r.f.invoke(&event_for(name));
        let took = started.elapsed();
        let h = o.http();
        assert_eq!(h.status, 503, "{name}: {h:?}");
        assert_eq!(h.header("content-type"), "application/json");
        for internal in [
            "injected",
            "Exception",
            "InternalServerError",
            "ServiceUnavailable",
            "RequestLimit",
        ] {
            assert!(!h.body.contains(internal), "{name}: {}", h.body);
        }
        // The function times out at 6 s; the SDK gives up by 3 s.
        assert!(took < Duration::from_millis(4_500), "{name} took {took:?}");
        healthy(&mut r, &format!("after {name}"));
    }
    // The SDK tried each fault three times, but for the hang: its 3 s operation timeout
    // leaves room for two 1 s attempts, or three when the jittered backoffs are short.
    let injected = r.proxy.injected();
    for (_, fault) in faults {
        let tries = injected.iter().filter(|f| **f == fault).count();
        let expected = if fault == Fault::Hang { 2..=3 } else { 3..=3 };
        assert!(
            expected.contains(&tries),
            "{tries} x {fault:?} in {injected:?}"
        );
    }
}

#[test]
fn transient_failures_are_retried_and_the_key_is_stored_once() {
    let mut r = rig(&[("FIREFLY_TEST_KEYS", "RETRY1")]);
    r.proxy.set(
        vec![Fault::Error(500, "InternalServerError"), Fault::Reset],
        Fault::Pass,
    );
    let o = r.f.invoke(&event_for("patient"));
    assert_eq!(status(&o), 201, "{:?}", o.http());
    assert_eq!(o.http().json()["key"], "RETRY1");
    assert_eq!(Dynalite::shared().scan(&r.table).len(), 1);
    assert_eq!(r.proxy.injected().len(), 2);
}

#[test]
fn a_lost_answer_gives_the_caller_the_key_that_was_written_and_leaves_no_orphan() {
    // moto honours ReturnValuesOnConditionCheckFailure as DynamoDB does (dynalite ignores it).
    let db = Dynalite::shared_moto();
    let mut r = rig_on(db, &[("FIREFLY_TEST_KEYS", "XRPHN1,KEPT22")]);
    r.proxy.set(vec![Fault::CutResponse], Fault::Pass);
    let o = r.f.invoke(&event_for("cut"));
    assert_eq!(status(&o), 201, "{:?}", o.http());
    // The first PutItem was written and its answer lost; the SDK's retry was refused by
    // that very item, which carries this mint's nonce: the key is the caller's.
    assert_eq!(o.http().json()["key"], "XRPHN1");
    let items = db.scan(&r.table);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(s(&items[0], "generated_by_sub"), "cut");
    assert_eq!(r.proxy.injected(), vec![Fault::CutResponse]);
    let logs = r.f.json_logs();
    assert!(
        logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("answer was lost")),
        "no line about the lost answer"
    );
    assert!(
        !logs.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .contains("drawing another")),
        "our own item was taken for a collision"
    );
}

#[test]
fn with_the_blocking_item_in_hand_a_live_key_of_someone_else_is_still_a_collision() {
    let db = Dynalite::shared_moto();
    let mut r = rig_on(db, &[("FIREFLY_TEST_KEYS", "TAKEN1,FRESH2")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    db.put(&r.table, "TAKEN1", "owner", now, now + 600);
    let o = r.f.invoke(&event_for("second"));
    assert_eq!(o.http().json()["key"], "FRESH2");
    assert_eq!(
        s(&db.get(&r.table, "TAKEN1").unwrap(), "generated_by_sub"),
        "owner"
    );
    assert_eq!(db.scan(&r.table).len(), 2);
}

#[test]
fn a_slow_dynamodb_gets_a_503_before_the_invocations_deadline() {
    // Five live keys in the way: five draws of about 800 ms each would take 4 s; the
    // invocation has 2 s. The handler must stop drawing and answer in time.
    let taken = ["SPWD01", "SPWD02", "SPWD03", "SPWD04", "SPWD05"];
    let mut r = rig(&[("FIREFLY_TEST_KEYS", taken.join(",").as_str())]);
    let far = 4_000_000_000;
    for k in taken {
        Dynalite::shared().put(&r.table, k, "owner", 0, far);
    }
    r.proxy.set(vec![], Fault::Slow(800));
    let deadline = Duration::from_millis(2_000);
    let started = Instant::now();
    let o =
        r.f.invoke_within(serde_json::to_vec(&event_for("hurried")).unwrap(), deadline);
    let took = started.elapsed();
    let h = o.http();
    assert_eq!(h.status, 503, "{h:?}");
    assert_eq!(h.header("content-type"), "application/json");
    assert_eq!(h.header("retry-after"), "1");
    assert!(took < deadline, "answered after the deadline: {took:?}");
    assert!(
        r.f.json_logs().iter().any(|l| l["level"] == "WARNING"
            && l["error"].as_str().unwrap_or_default().contains("deadline")),
        "no log line naming the deadline"
    );
    // Nothing of the caller's was left behind, and the process serves the next event.
    assert_eq!(Dynalite::shared().scan(&r.table).len(), taken.len());
    healthy(&mut r, "after the slow one");
}

#[test]
fn a_non_retryable_dynamodb_error_is_500_with_its_code_in_the_log_only() {
    let mut r = rig(NO_ENV);
    r.proxy
        .set(vec![], Fault::Error(400, "ValidationException"));
    let o = r.f.invoke(&event());
    assert_eq!(status(&o), 500);
    assert!(!o.http().body.contains("ValidationException"));
    assert!(r.f.json_logs().iter().any(|l| {
        l["level"] == "ERROR"
            && l["error"]
                .as_str()
                .unwrap_or_default()
                .contains("ValidationException")
    }));
    assert_eq!(r.proxy.injected().len(), 1, "not retried");
    healthy(&mut r, "after");
}

#[test]
fn very_large_events_unicode_claims_and_odd_routes() {
    let mut r = rig(NO_ENV);
    let db = Dynalite::shared();

    // Near Lambda's 6 MB payload limit: a 5 MB body (ignored) and 2,000 headers.
    let mut big = event_for("big");
    big["body"] = Value::String("x".repeat(5 * 1024 * 1024));
    let headers = big["headers"].as_object_mut().unwrap();
    for i in 0..2_000 {
        headers.insert(format!("x-filler-{i}"), Value::String("y".repeat(64)));
    }
    assert_eq!(status(&r.f.invoke(&big)), 201);

    // Unicode and JSON-hostile subs are stored exactly and logged as valid JSON.
    for sub in [
        "ユーザー🦀",
        "quote\"back\\slash",
        "tab\u{2028}sep",
        "é".repeat(64).as_str(),
    ] {
        let o = r.f.invoke(&event_for(sub));
        assert_eq!(status(&o), 201, "{sub:?}");
        let key = o.http().json()["key"].as_str().unwrap().to_owned();
        assert_eq!(s(&db.get(&r.table, &key).unwrap(), "generated_by_sub"), sub);
    }
    let logged: Vec<String> =
        r.f.json_logs()
            .iter()
            .filter_map(|l| l["user_id"].as_str().map(str::to_owned))
            .collect();
    assert!(logged.iter().any(|u| u == "ユーザー🦀"), "{logged:?}");

    // Too long a sub, control characters: refused.
    for sub in ["a".repeat(129), "line\nbreak".into(), "\u{7}".into()] {
        assert_eq!(status(&r.f.invoke(&event_for(&sub))), 401, "{sub:?}");
    }

    // Odd route keys and paths: 404, never a panic.
    let mut odd = event();
    odd["routeKey"] = "POST /registration-keys/🦀".into();
    assert_eq!(status(&r.f.invoke(&odd)), 404);
    let long_path = format!("/{}", "a/".repeat(50_000));
    assert_eq!(status(&r.f.invoke(&default_event("POST", &long_path))), 404);
    assert_eq!(
        status(&r.f.invoke(&default_event("POST", "/registration-keys%2F.."))),
        404
    );
    let mut no_method = default_event("BREW", "/registration-keys");
    no_method["requestContext"]["http"]["method"] = "BREW".into();
    let o = r.f.invoke(&no_method);
    assert_eq!(status(&o), 405);
    assert!(o.http().header("allow").contains("POST"));

    let items = db.scan(&r.table);
    assert_eq!(items.len(), 5);
    assert!(
        items
            .iter()
            .all(|i| n(i, "ttl") - n(i, "generated_at") == 1800)
    );
    assert!(r.f.is_running());
}

#[test]
fn a_certificate_that_does_not_verify_is_a_500_at_once_never_retried_as_transient() {
    let dir = std::env::temp_dir().join(format!("firefly-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tls = support::tls::make_ca(&dir);
    let table = unique_table("tls");
    let db = Dynalite::start_with(
        0,
        &[
            "--tls".as_ref(),
            tls.key.as_os_str(),
            tls.cert.as_os_str(),
            "--table".as_ref(),
            table.as_ref(),
        ],
    );
    let endpoint = format!("https://127.0.0.1:{}", db.port);
    let env = env_with(&[
        ("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.as_str()),
    ]);
    let mut f = Function::start(&env);
    let started = Instant::now();
    let h = f.invoke(&event_for("tls")).http();
    assert_eq!(h.status, 500, "{h:?}\n{}", f.logs().join("\n"));
    assert!(
        !h.headers.contains_key("retry-after"),
        "a misconfiguration is not worth a retry"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let failed = f
        .json_logs()
        .into_iter()
        .find(|l| l["message"] == "request failed")
        .expect("a failure line");
    assert_eq!(failed["level"], "ERROR");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("TLS with the DynamoDB endpoint failed"),
        "{error}"
    );
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(!h.body.contains("TLS"), "{}", h.body);

    // The same server, its CA trusted through FIREFLY_EXTRA_CA_FILE: the certificate was the
    // cause.
    let mut env = env;
    env.push((
        "FIREFLY_EXTRA_CA_FILE".into(),
        tls.ca.to_string_lossy().into_owned(),
    ));
    let mut f = Function::start(&env);
    assert_eq!(f.invoke(&event_for("tls")).http().status, 201);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A root, an intermediate and a leaf for S3's regional names, all of `key` (openssl's
/// `-newkey` argument) signed with `digest`, made with openssl in `dir`. Returns the root's
/// PEM path and the leaf and intermediate as DER.
fn s3_chain(
    dir: &std::path::Path,
    key: &[&str],
    digest: &str,
) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    use std::process::{Command, Stdio};
    std::fs::create_dir_all(dir).unwrap();
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let new = |name: &str, subject: &str| {
        let mut args = vec!["req", "-new", "-nodes", "-newkey"];
        args.extend_from_slice(key);
        let (keyout, out) = (format!("{name}.key"), format!("{name}.csr"));
        args.extend_from_slice(&["-keyout", &keyout, "-out", &out, "-subj", subject]);
        openssl(&args);
    };
    new("root", "/CN=Local root");
    std::fs::write(
        dir.join("ca.ext"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "root.csr",
        "-signkey",
        "root.key",
        "-out",
        "root.pem",
        "-days",
        "2",
        &format!("-{digest}"),
        "-extfile",
        "ca.ext",
    ]);
    new("inter", "/CN=Local intermediate");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "inter.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "inter.pem",
        "-days",
        "2",
        &format!("-{digest}"),
        "-extfile",
        "ca.ext",
    ]);
    new("leaf", "/CN=s3.eu-west-1.amazonaws.com");
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:s3.eu-west-1.amazonaws.com,DNS:*.s3.eu-west-1.amazonaws.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "inter.pem",
        "-CAkey",
        "inter.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        &format!("-{digest}"),
        "-extfile",
        "leaf.ext",
    ]);
    let der = |name: &str| {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_file(dir.join(name))
            .unwrap()
            .to_vec()
    };
    (dir.join("root.pem"), der("leaf.pem"), der("inter.pem"))
}

/// The verifier the client's TLS configuration builds from `roots` (webpki over ring, as
/// `aws::tls_config` sets it up).
fn verifier_of(
    roots: rustls::RootCertStore,
) -> std::sync::Arc<rustls::client::WebPkiServerVerifier> {
    rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        std::sync::Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap()
}

#[test]
fn s3_chains_verify_under_each_embedded_roots_key_type() {
    use rustls::client::danger::ServerCertVerifier;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    // The embedded roots' key types: Amazon Root CA 1 (and Starfield G2) RSA 2048, CA 2 RSA
    // 4096, CA 3 ECDSA P-256, CA 4 ECDSA P-384. Their private keys are Amazon's, so each is
    // stood in for by a local root of the same type, trusted beside them as a deployment
    // would add one (FIREFLY_EXTRA_CA_FILE), under the client's own TLS configuration.
    let base = std::env::temp_dir().join(format!("firefly-roots-{}", std::process::id()));
    for (name, key, digest) in [
        ("rsa2048", &["rsa:2048"][..], "sha256"),
        ("rsa4096", &["rsa:4096"][..], "sha384"),
        (
            "p256",
            &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"][..],
            "sha256",
        ),
        (
            "p384",
            &["ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"][..],
            "sha384",
        ),
    ] {
        let (root, leaf, inter) = s3_chain(&base.join(name), key, digest);
        let root = root.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "FIREFLY_EXTRA_CA_FILE").then(|| root.clone());
        let roots = firefly_api::aws::trust_store(&env).unwrap();
        assert_eq!(roots.len(), 6, "the five AWS roots and the local one");
        let verifier = verifier_of(roots);
        let (leaf, inter) = (CertificateDer::from(leaf), CertificateDer::from(inter));
        let check = |host: &str| {
            verifier.verify_server_cert(
                &leaf,
                std::slice::from_ref(&inter),
                &ServerName::try_from(host.to_owned()).unwrap(),
                &[],
                UnixTime::now(),
            )
        };
        // Virtual-hosted and path-style names of the region verify...
        for host in [
            "firefly-device-backups.s3.eu-west-1.amazonaws.com",
            "s3.eu-west-1.amazonaws.com",
        ] {
            assert!(
                check(host).is_ok(),
                "{name}: {host}: {:?}",
                check(host).err()
            );
        }
        // ...a bucket name with a dot does not (the wildcard covers one label: why such a
        // bucket is addressed path-style), nor another region.
        for host in [
            "my.backups.s3.eu-west-1.amazonaws.com",
            "b.s3.eu-west-2.amazonaws.com",
        ] {
            assert!(check(host).is_err(), "{name}: {host} accepted");
        }
        // Without the local root, the same chain is refused: nothing else vouches for it.
        let aws_only = verifier_of(firefly_api::aws::trust_store(&|_: &str| None).unwrap());
        assert!(
            aws_only
                .verify_server_cert(
                    &leaf,
                    std::slice::from_ref(&inter),
                    &ServerName::try_from("s3.eu-west-1.amazonaws.com").unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_err()
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}
