//! A simulated controller: what FireFly's firmware does against the API, for laptops and
//! tests. `register` makes a P-256 key pair (kept in a file, private to the user, one per
//! device), and sends the firmware's registration payload with a registration key; `check`
//! signs a registration check exactly as the firmware signs it (32 random nonce bytes, a
//! whole-second UTC timestamp with `Z`, ECDSA P-256 SHA-256, DER, Base64).
//!
//! Plain HTTP to a loopback address only: it is a local tool.

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
    pub body: String,
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
        body,
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
    let pair = load(&key_path(dir, uuid))
        .map_err(|e| format!("{e} (register the device with this tool first)"))?;
    let now = SystemClock.now_epoch_seconds();
    let headers = signed_headers(&pair, uuid, now)?;
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    send(
        Method::GET,
        &format!("{base}/devices/{uuid}/registration"),
        &refs,
        String::new(),
    )
    .await
}

/// One plain HTTP/1 request to a loopback address.
async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: String,
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
        let body = Limited::new(res.into_body(), 1024 * 1024)
            .collect()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .to_bytes();
        Ok(Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
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
