//! A simulated controller: what FireFly's firmware does against the API, for laptops and
//! tests. `register` makes a P-256 key pair (kept in a file, private to the user, one per
//! device), and sends the firmware's registration payload with a registration key; `check`
//! signs a registration check exactly as the firmware signs it (32 random nonce bytes, a
//! whole-second UTC timestamp with `Z`, ECDSA P-256 SHA-256, DER, Base64); `backup`
//! encrypts a file into the firmware's FFCE blob and stores it with the plaintext's SHA-256
//! as its ETag, and `restore` fetches, decrypts and checks it, as the firmware does; `ota`
//! asks which firmware to install as the controller asks, and downloads and checks it.
//!
//! Plain HTTP to a loopback address only (and HTTPS to the local CDN stand-in): it is a
//! local tool.

use crate::clock::{Clock, SystemClock};
use crate::devices::register::KEY_HEADER;
use crate::devices::signature::{NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, UUID_HEADER};
use crate::random::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use lambda_http::http::{self, Method, Request};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An answer of the API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body as text (lossy: for printing).
    pub body: String,
    /// The body's bytes.
    pub bytes: Bytes,
    /// The `ETag` and `Content-Length` headers, when sent.
    pub etag: Option<String>,
    pub content_length: Option<usize>,
}

/// The largest plaintext the firmware backs up (`Controller.ino`: 512 KiB).
pub const MAX_PLAINTEXT: usize = 512 * 1024;

/// The FFCE header: `FFCE`, version 1, the 12-byte GCM nonce, the plaintext's length (u32,
/// little-endian) and the 16-byte tag; the ciphertext follows (FireFly-Controller's
/// `common/secretEncryption.h`: 37 bytes more than the plaintext).
pub const FFCE_HEADER: usize = 4 + 1 + 12 + 4 + 16;

/// Where a device's backup key is kept: `DIR/<uuid>.backup-key` (the firmware keeps its own
/// secret on the chip; the API never sees it).
pub fn backup_key_path(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.backup-key"))
}

fn backup_key(dir: &Path, uuid: &str) -> Result<ring::aead::LessSafeKey, String> {
    let path = backup_key_path(dir, uuid);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let bytes = if path.exists() {
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?
    } else {
        let key: [u8; 32] = random_bytes()?;
        super::jwt::write_private(&path, &key)?;
        key.to_vec()
    };
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &bytes)
        .map_err(|_| format!("{}: not a 32-byte AES key", path.display()))?;
    Ok(ring::aead::LessSafeKey::new(unbound))
}

/// Encrypts `plaintext` into an FFCE blob.
pub fn seal(key: &ring::aead::LessSafeKey, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(plaintext.len()).map_err(|_| "the file is too large".to_string())?;
    let nonce: [u8; 12] = random_bytes()?;
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::empty(),
            &mut ciphertext,
        )
        .map_err(|_| "encryption failed".to_string())?;
    let mut blob = Vec::with_capacity(FFCE_HEADER + ciphertext.len());
    blob.extend_from_slice(b"FFCE\x01");
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&len.to_le_bytes());
    blob.extend_from_slice(tag.as_ref());
    blob.extend_from_slice(&ciphertext);
    Ok(blob)
}

/// Decrypts an FFCE blob, checking what the firmware checks (magic, version, length, tag).
pub fn open(key: &ring::aead::LessSafeKey, blob: &[u8]) -> Result<Vec<u8>, String> {
    if blob.len() < FFCE_HEADER || &blob[..5] != b"FFCE\x01" {
        return Err("not an FFCE (version 1) backup".into());
    }
    let len = u32::from_le_bytes([blob[17], blob[18], blob[19], blob[20]]) as usize;
    if blob.len() - FFCE_HEADER != len {
        return Err("the backup's length does not match its header".into());
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&blob[5..17]);
    let mut sealed = blob[FFCE_HEADER..].to_vec();
    sealed.extend_from_slice(&blob[21..FFCE_HEADER]);
    key.open_in_place(
        ring::aead::Nonce::assume_unique_for_key(nonce),
        ring::aead::Aad::empty(),
        &mut sealed,
    )
    .map(|plain| plain.to_vec())
    .map_err(|_| "the backup does not decrypt with this device's key".into())
}

/// SHA-256 of `bytes`, lower-case hex: the firmware's `/backup.etag`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    super::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The one device whose key pair is in `dir` (for commands that may omit `--uuid`).
pub fn only_device(dir: &Path) -> Result<String, String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e} (register a device first)", dir.display()))?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".p8")
                .map(str::to_owned)
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(format!(
            "no device in {} (register one first)",
            dir.display()
        )),
        _ => Err(format!(
            "several devices in {}: name one with --uuid ({})",
            dir.display(),
            found.join(", ")
        )),
    }
}

/// Where a device's key pair is kept: `DIR/<uuid>.p8`.
pub fn key_path(dir: &Path, uuid: &str) -> PathBuf {
    dir.join(format!("{uuid}.p8"))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    SystemRandom.fill(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

/// A random version-4 UUID, lower case, as the firmware's.
pub fn new_uuid() -> Result<String, String> {
    let mut b: [u8; 16] = random_bytes()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(super::uuid_text(&b))
}

fn load(path: &Path) -> Result<EcdsaKeyPair, String> {
    let pkcs8 = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &pkcs8,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| format!("{}: not a P-256 key: {e}", path.display()))
}

fn create(path: &Path) -> Result<EcdsaKeyPair, String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| format!("making a key pair: {e}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    super::jwt::write_private(path, pkcs8.as_ref())?;
    load(path)
}

/// The registration body the firmware (through HW-Reg) sends.
pub fn payload(uuid: &str, public_key: &str) -> Value {
    json!({
        "uuid": uuid,
        "product_id": "FFC0806-2505",
        "product_hex": "0x08062505",
        "device_class": "CONTROLLER",
        "public_key": public_key,
        "registering_application": "firefly-local device",
        "registering_version": env!("CARGO_PKG_VERSION"),
        "mcu": {"model": "ESP32-D0WD-V3", "revision": 3, "cpu_freq_mhz": 240, "cores": 2},
        "network": [{"interface": "ethernet", "mac_address": "DE:AD:BE:EF:00:04"}],
    })
}

/// Registers a new device with `key` at `base` (`http://127.0.0.1:3000`), its key pair
/// kept in `dir`. Returns its UUID and the API's answer (204: registered).
pub async fn register(
    base: &str,
    key: &str,
    uuid: Option<&str>,
    dir: &Path,
) -> Result<(String, Answer), String> {
    let uuid = match uuid {
        Some(u) => u.to_owned(),
        None => new_uuid()?,
    };
    let path = key_path(dir, &uuid);
    let pair = if path.exists() {
        load(&path)?
    } else {
        create(&path)?
    };
    let public_key = STANDARD.encode(pair.public_key().as_ref());
    let body = payload(&uuid, &public_key).to_string();
    let answer = send(
        Method::POST,
        &format!("{base}/devices/register"),
        &[(KEY_HEADER.name, key), ("content-type", "application/json")],
        body.into_bytes(),
    )
    .await?;
    Ok((uuid, answer))
}

/// The four headers of a signed check at `now` (epoch seconds).
pub fn signed_headers(
    pair: &EcdsaKeyPair,
    uuid: &str,
    now: i64,
) -> Result<Vec<(String, String)>, String> {
    let nonce: [u8; 32] = random_bytes()?;
    let timestamp = crate::clock::rfc3339(now);
    let mut message = nonce.to_vec();
    message.extend_from_slice(timestamp.as_bytes());
    let signature = pair
        .sign(&ring::rand::SystemRandom::new(), &message)
        .map_err(|e| format!("signing: {e}"))?;
    // Lowercase, as API Gateway delivers them.
    let name = |header: crate::route::Param| header.name.to_ascii_lowercase();
    Ok(vec![
        (name(UUID_HEADER), uuid.into()),
        (name(NONCE_HEADER), STANDARD.encode(nonce)),
        (name(TIMESTAMP_HEADER), timestamp),
        (name(SIGNATURE_HEADER), STANDARD.encode(signature.as_ref())),
    ])
}

/// Checks the registration of the device `uuid`, whose key pair is in `dir`.
pub async fn check(base: &str, uuid: &str, dir: &Path) -> Result<Answer, String> {
    signed(
        Method::GET,
        &format!("{base}/devices/{uuid}/registration"),
        uuid,
        dir,
        &[],
        Vec::new(),
    )
    .await
}

/// A signed request of the device `uuid` (key pair in `dir`) with these extra headers.
async fn signed(
    method: Method,
    url: &str,
    uuid: &str,
    dir: &Path,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer, String> {
    let pair = load(&key_path(dir, uuid))
        .map_err(|e| format!("{e} (register the device with this tool first)"))?;
    let headers = signed_headers(&pair, uuid, SystemClock.now_epoch_seconds())?;
    let mut refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    refs.extend_from_slice(extra);
    send(method, url, &refs, body).await
}

/// Backs `plaintext` up as the firmware does: an FFCE blob, `ETag` = the plaintext's SHA-256
/// (quoted), `Content-Type: application/octet-stream`. Returns the ETag and the answer
/// (200: stored).
pub async fn backup(
    base: &str,
    uuid: &str,
    dir: &Path,
    plaintext: &[u8],
) -> Result<(String, Answer), String> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(format!(
            "the firmware backs up at most {MAX_PLAINTEXT} bytes; this file has {}",
            plaintext.len()
        ));
    }
    let blob = seal(&backup_key(dir, uuid)?, plaintext)?;
    let etag = sha256_hex(plaintext);
    let quoted = format!("\"{etag}\"");
    let answer = signed(
        Method::POST,
        &format!("{base}/devices/{uuid}/backup"),
        uuid,
        dir,
        &[
            ("content-type", "application/octet-stream"),
            ("etag", &quoted),
        ],
        blob,
    )
    .await?;
    Ok((etag, answer))
}

/// Restores as the firmware does: a 200 with a Content-Length of 1 to 512 KiB + 37 bytes,
/// decrypted with the device's key; the plaintext's SHA-256 must be the ETag sent back.
pub async fn restore(base: &str, uuid: &str, dir: &Path) -> Result<(Answer, Vec<u8>), String> {
    let answer = signed(
        Method::GET,
        &format!("{base}/devices/{uuid}/backup"),
        uuid,
        dir,
        &[],
        Vec::new(),
    )
    .await?;
    if answer.status != 200 {
        return Err(format!(
            "the restore answered {}: {}",
            answer.status, answer.body
        ));
    }
    match answer.content_length {
        Some(n) if n > 0 && n <= MAX_PLAINTEXT + FFCE_HEADER && n == answer.bytes.len() => {}
        other => {
            return Err(format!(
                "the restore's Content-Length is {other:?} for {} bytes: the firmware refuses it",
                answer.bytes.len()
            ));
        }
    }
    let plaintext = open(&backup_key(dir, uuid)?, &answer.bytes)?;
    let etag = answer.etag.as_deref().unwrap_or("").trim_matches('"');
    if !etag.is_empty() && etag != sha256_hex(&plaintext) {
        return Err("the restored backup's SHA-256 is not its ETag".into());
    }
    Ok((answer, plaintext))
}

/// Removes the device's backup.
pub async fn delete_backup(base: &str, uuid: &str, dir: &Path) -> Result<Answer, String> {
    signed(
        Method::DELETE,
        &format!("{base}/devices/{uuid}/backup"),
        uuid,
        dir,
        &[],
        Vec::new(),
    )
    .await
}

/// One plain HTTP/1 request to a loopback address.
/// What a controller asks OTA with: the fields its URL template names.
#[derive(Debug, Clone)]
pub struct OtaAsk {
    /// FireFly-Controller's template, with `$$class$$`, `$$product_hex$$`,
    /// `$$application$$` and `$$current_version$$` (and `$$url$$`, the API's base here).
    pub template: String,
    pub class: String,
    /// `0x%08lx`, as the controller prints its product id.
    pub product_hex: String,
    /// Lower case, dashes for spaces, as the controller writes its application's name.
    pub application: String,
    pub current_version: String,
    /// The manifest entry the controller installs (esp32OTA's `application_name`).
    pub application_name: String,
}

/// What `ota` found.
#[derive(Debug)]
pub enum Update {
    /// Nothing newer than the running version (the controller stays).
    UpToDate(String),
    /// A newer version, each binary downloaded and its SHA-256 checked: `(partition, URL,
    /// bytes)`.
    Installed {
        version: String,
        binaries: Vec<(String, String, usize)>,
    },
}

/// The template filled as the controller fills it.
pub fn ota_url(base: &str, ask: &OtaAsk) -> String {
    ask.template
        .replace("$$url$$", base)
        .replace("$$class$$", &ask.class)
        .replace("$$product_hex$$", &ask.product_hex)
        .replace("$$application$$", &ask.application)
        .replace("$$current_version$$", &ask.current_version)
}

/// Asks OTA as the controller does (its `uuid` header, when known), takes the entry named
/// `application_name`, and when its version is greater by the controller's own
/// comparison (`%d.%d.%d`, numerically), downloads each binary over HTTPS (trusting
/// `ca` alone) and checks its SHA-256. Any answer but 200 is an error, as esp32OTA takes it.
pub async fn ota(
    base: &str,
    ask: &OtaAsk,
    uuid: Option<&str>,
    ca: &Path,
) -> Result<Update, String> {
    let url = ota_url(base, ask);
    let headers: Vec<(&str, &str)> = uuid.map(|u| vec![("uuid", u)]).unwrap_or_default();
    let answer = send(Method::GET, &url, &headers, Vec::new()).await?;
    if answer.status != 200 {
        return Err(format!("OTA answered {}: {}", answer.status, answer.body));
    }
    let entries: Value = serde_json::from_slice(&answer.bytes)
        .map_err(|e| format!("OTA's answer is not JSON: {e}"))?;
    let entry = entries
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["application_name"] == ask.application_name.as_str())
        })
        .ok_or_else(|| {
            format!(
                "OTA's answer has no {:?} entry: {}",
                ask.application_name, answer.body
            )
        })?;
    let version = entry["version"].as_str().unwrap_or_default().to_owned();
    let newer = crate::firmware::ota::numbers(&version)
        > crate::firmware::ota::numbers(&ask.current_version);
    if !newer {
        return Ok(Update::UpToDate(version));
    }
    let roots = {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))?
        {
            roots
                .add(cert.map_err(|e| format!("{}: {e}", ca.display()))?)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        roots
    };
    let client = crate::aws::http1::Http1Client::new(roots, Duration::from_secs(5))?;
    let mut binaries = Vec::new();
    for b in entry["binaries"].as_array().into_iter().flatten() {
        let (Some(partition), Some(url), Some(sha256)) = (
            b["partition"].as_str(),
            b["url"].as_str(),
            b["sha256"].as_str(),
        ) else {
            return Err(format!("a binary without partition, url or sha256: {b}"));
        };
        let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
        if uri.scheme_str() != Some("https")
            || !["localhost", "127.0.0.1"].contains(&uri.host().unwrap_or_default())
        {
            return Err(format!(
                "{url}: the simulator downloads from the local CDN stand-in only (https://localhost:PORT)"
            ));
        }
        let request = Request::builder()
            .uri(uri)
            .body(aws_smithy_types::body::SdkBody::empty())
            .map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(Duration::from_secs(30), client.send(request))
            .await
            .map_err(|_| format!("{url}: no answer within 30 s"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status().as_u16();
        let body = Limited::new(res.into_body(), 64 << 20)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        if status != 200 {
            return Err(format!("{url}: {status}"));
        }
        let got = sha256_hex(&body);
        if got != sha256 {
            return Err(format!("{url}: SHA-256 {got}, the manifest says {sha256}"));
        }
        binaries.push((partition.to_owned(), url.to_owned(), body.len()));
    }
    Ok(Update::Installed { version, binaries })
}

async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Answer, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let host = uri.host().unwrap_or_default();
    if uri.scheme_str() != Some("http")
        || uri.authority().is_some_and(|a| a.as_str().contains('@'))
        || !["127.0.0.1", "localhost", "[::1]"].contains(&host)
    {
        return Err(format!(
            "{url}: the device simulator talks to a local API only (http://127.0.0.1:PORT)"
        ));
    }
    let mut request = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let exchange = async {
        let res = client
            .request(request)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = res.status().as_u16();
        let header = |name: http::HeaderName| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let etag = header(http::header::ETAG);
        let content_length = header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
        let body = Limited::new(res.into_body(), 1024 * 1024)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            bytes: body,
            etag,
            content_length,
        })
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| format!("{url}: no answer within 10 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ffce_blobs_are_the_firmwares_and_round_trip() {
        let dir = std::env::temp_dir().join(format!("firefly-ffce-{}", std::process::id()));
        let key = backup_key(&dir, "u1").unwrap();
        let plain = br#"{"relays":[1,2,3]}"#;
        let blob = seal(&key, plain).unwrap();
        assert_eq!(&blob[..5], b"FFCE\x01");
        assert_eq!(blob.len(), plain.len() + 37);
        assert_eq!(open(&key, &blob).unwrap(), plain);
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(open(&key, &tampered).is_err());
        assert!(open(&key, &blob[..blob.len() - 1]).is_err());
        // The key is kept: a second read gives the same key.
        assert_eq!(
            open(&backup_key(&dir, "u1").unwrap(), &blob).unwrap(),
            plain
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(["8", "9", "a", "b"].contains(&&u[19..20]));
        assert_ne!(u, new_uuid().unwrap());
    }

    #[test]
    fn what_the_simulator_signs_our_check_accepts() {
        // The simulator and the route's check agree, byte for byte.
        let dir = std::env::temp_dir().join(format!("firefly-dev-{}", std::process::id()));
        let path = key_path(&dir, "u1");
        let _ = std::fs::remove_file(&path);
        let pair = create(&path).unwrap();
        let public = STANDARD.encode(pair.public_key().as_ref());
        let now = 1_746_792_000;
        let headers = signed_headers(&pair, "u1", now).unwrap();
        let mut event = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest::default();
        for (k, v) in &headers {
            event.headers.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let req = crate::handler::Request {
            request_id: "r",
            params: vec![],
            event: &event,
            deadline: None,
        };
        use crate::handler::FromRequest;
        let sig = crate::devices::signature::DeviceSignature::from_request(&req).unwrap();
        assert!(sig.verify("u1", &public, now * 1_000_000).is_ok());
        // The key file is private to its owner.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(load(&path).is_err());
        let payload = payload("u1", &public);
        assert!(
            crate::devices::register::device_from(&payload.to_string(), "D".into()).is_err(),
            "u1 is not a UUID: the route refuses it"
        );
    }
}
