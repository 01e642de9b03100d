//! A device's signed request: the four `X-Device-*` headers and their check, in FireFly's
//! order and with its answers (`shared/device_auth.py`), so the firmware is never surprised.
//!
//! The signature is ECDSA P-256 over SHA-256 of the 32 raw nonce bytes followed by the
//! timestamp header's exact ASCII bytes, DER-encoded, then Base64; the key is the device's
//! stored 65-byte uncompressed point. ring (already linked for TLS) verifies it.

use crate::clock::parse_iso8601;
use crate::error::ApiError;
use crate::handler::{FromRequest, Request};
use crate::route::Param;
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use lambda_http::http::StatusCode;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

/// The headers of a signed check, as the route documents them and [`DeviceSignature`]
/// reads them (header names are case-insensitive; API Gateway delivers them lowercase).
pub const UUID_HEADER: Param = Param {
    name: "X-Device-UUID",
    description: "The device's UUID (equal to the path's)",
    schema: r#"{"type": "string"}"#,
};
pub const NONCE_HEADER: Param = Param {
    name: "X-Device-Nonce",
    description: "Base64 of 32 random bytes",
    schema: r#"{"type": "string"}"#,
};
pub const TIMESTAMP_HEADER: Param = Param {
    name: "X-Device-Timestamp",
    description: "ISO 8601 UTC, within ±10 s of the server's clock (2025-05-09T12:00:00Z)",
    schema: r#"{"type": "string"}"#,
};
pub const SIGNATURE_HEADER: Param = Param {
    name: "X-Device-Signature",
    description: "Base64 of the DER ECDSA P-256 signature over SHA-256(nonce bytes || timestamp ASCII)",
    schema: r#"{"type": "string"}"#,
};
pub const HEADERS: [Param; 4] = [
    UUID_HEADER,
    NONCE_HEADER,
    TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
];

/// How far a device's clock may be from ours: ±10 s, as FireFly allows.
pub const WINDOW_MICROS: i64 = 10_000_000;

/// Python's `b64decode(..., validate=True)`: the standard alphabet, padding required,
/// trailing bits not checked.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// Base64 as FireFly's `b64decode(..., validate=True)` reads it.
pub fn decode_strict(text: &str) -> Option<Vec<u8>> {
    STRICT.decode(text).ok()
}

/// The headers as sent (trimmed; empty when absent). Reading them never fails: FireFly
/// answers 404 for an unknown device before it looks at any header, so the check runs in
/// the handler, after the look-up ([`DeviceSignature::verify`]).
#[derive(Debug, Clone, Default)]
pub struct DeviceSignature {
    uuid: String,
    nonce: String,
    timestamp: String,
    signature: String,
}

impl FromRequest for DeviceSignature {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let h = |name: &str| req.header(name).unwrap_or("").trim().to_owned();
        Ok(Self {
            uuid: h(UUID_HEADER.name),
            nonce: h(NONCE_HEADER.name),
            timestamp: h(TIMESTAMP_HEADER.name),
            signature: h(SIGNATURE_HEADER.name),
        })
    }
}

fn refuse(status: StatusCode, message: &'static str) -> ApiError {
    ApiError::Refused { status, message }
}

impl DeviceSignature {
    /// The nonce as sent (Base64): with the device's UUID, what [`super::authenticate`]
    /// accepts once.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// Checks the request against the device `uuid` whose stored key is `public_key`
    /// (Base64), at `now_micros`. Each refusal is FireFly's status and message. Verified:
    /// the instant the signed timestamp names (epoch µs).
    pub fn verify(&self, uuid: &str, public_key: &str, now_micros: i64) -> Result<i64, ApiError> {
        if [&self.uuid, &self.nonce, &self.timestamp, &self.signature]
            .iter()
            .any(|v| v.is_empty())
        {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "X-Device-UUID, X-Device-Nonce, X-Device-Timestamp, and X-Device-Signature headers are required",
            ));
        }
        if self.uuid != uuid {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "X-Device-UUID header does not match path parameter",
            ));
        }
        let (Ok(nonce), Ok(signature)) =
            (STRICT.decode(&self.nonce), STRICT.decode(&self.signature))
        else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "X-Device-Nonce and X-Device-Signature must be valid Base64",
            ));
        };
        if nonce.len() != 32 {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "X-Device-Nonce must be 32 bytes",
            ));
        }
        let Some(sent) = parse_iso8601(&self.timestamp) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "X-Device-Timestamp must be ISO 8601 UTC (e.g. 2025-05-09T12:00:00Z)",
            ));
        };
        if (now_micros - sent).abs() > WINDOW_MICROS {
            tracing::warn!(
                skew_ms = (now_micros - sent) / 1000,
                "device timestamp outside the acceptance window"
            );
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "X-Device-Timestamp is outside the acceptance window",
            ));
        }
        // Read exactly as registration read it (FireFly's Python reads both the same way):
        // a key with non-zero trailing bits that registered must verify, never lock the
        // device out with a 500.
        let key = decode_strict(public_key)
            .filter(|k| k.len() == 65 && k[0] == 0x04)
            .ok_or_else(|| {
                ApiError::internal(
                    "the stored public key is not a valid 65-byte uncompressed P-256 point",
                )
            })?;
        let mut message = nonce;
        message.extend_from_slice(self.timestamp.as_bytes());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &key)
            .verify(&message, &signature)
            .map_err(|_| {
                tracing::warn!("device signature verification failed");
                refuse(StatusCode::UNAUTHORIZED, "Signature verification failed")
            })?;
        Ok(sent)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    pub(crate) fn key_pair() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
    }

    /// Signs as the firmware does: DER over nonce bytes then timestamp ASCII.
    pub(crate) fn signed(pair: &EcdsaKeyPair, uuid: &str, timestamp: &str) -> DeviceSignature {
        let nonce = [7u8; 32];
        let mut message = nonce.to_vec();
        message.extend_from_slice(timestamp.as_bytes());
        let sig = pair.sign(&SystemRandom::new(), &message).unwrap();
        DeviceSignature {
            uuid: uuid.into(),
            nonce: general_purpose::STANDARD.encode(nonce),
            timestamp: timestamp.into(),
            signature: general_purpose::STANDARD.encode(sig.as_ref()),
        }
    }

    const NOW: i64 = 1_746_792_000_000_000; // 2025-05-09T12:00:00Z

    fn status(r: Result<i64, ApiError>) -> (u16, &'static str) {
        let e = r.unwrap_err();
        (e.status().as_u16(), e.message())
    }

    #[test]
    fn every_check_in_firefly_order_with_its_answer() {
        let pair = key_pair();
        let public = general_purpose::STANDARD.encode(pair.public_key().as_ref());
        let good = signed(&pair, "u1", "2025-05-09T12:00:00Z");
        assert!(good.verify("u1", &public, NOW).is_ok());
        // ±10 s inclusive, offsets converted.
        assert!(good.verify("u1", &public, NOW + WINDOW_MICROS).is_ok());
        let offset = signed(&pair, "u1", "2025-05-09T14:00:05+02:00");
        assert!(offset.verify("u1", &public, NOW).is_ok());

        let mut missing = good.clone();
        missing.nonce.clear();
        assert_eq!(status(missing.verify("u1", &public, NOW)).0, 400);
        assert_eq!(
            status(good.verify("u2", &public, NOW)),
            (403, "X-Device-UUID header does not match path parameter")
        );
        let mut bad64 = good.clone();
        bad64.signature = "not base64!".into();
        assert_eq!(
            status(bad64.verify("u1", &public, NOW)),
            (
                400,
                "X-Device-Nonce and X-Device-Signature must be valid Base64"
            )
        );
        let mut short = good.clone();
        short.nonce = general_purpose::STANDARD.encode([1u8; 16]);
        assert_eq!(
            status(short.verify("u1", &public, NOW)),
            (400, "X-Device-Nonce must be 32 bytes")
        );
        let mut when = good.clone();
        when.timestamp = "yesterday".into();
        assert_eq!(status(when.verify("u1", &public, NOW)).0, 400);
        assert_eq!(
            status(good.verify("u1", &public, NOW + WINDOW_MICROS + 1)),
            (401, "X-Device-Timestamp is outside the acceptance window")
        );
        // Another key, or a timestamp changed after signing: 401.
        let other = general_purpose::STANDARD.encode(key_pair().public_key().as_ref());
        assert_eq!(
            status(good.verify("u1", &other, NOW)),
            (401, "Signature verification failed")
        );
        let mut moved = good.clone();
        moved.timestamp = "2025-05-09T12:00:01Z".into();
        assert_eq!(
            status(moved.verify("u1", &public, NOW)),
            (401, "Signature verification failed")
        );
        // A stored key that is not a point: ours to fix, 500.
        assert_eq!(status(good.verify("u1", "AAAA", NOW)).0, 500);
    }

    #[test]
    fn a_key_registered_with_nonzero_trailing_bits_verifies() {
        let pair = key_pair();
        let public = general_purpose::STANDARD.encode(pair.public_key().as_ref());
        // 65 bytes: the last symbol before `=` carries 2 unused bits; set them.
        let (head, last) = public.trim_end_matches('=').split_at(public.len() - 2);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let i = alphabet
            .iter()
            .position(|&c| c == last.as_bytes()[0])
            .unwrap();
        let odd = format!("{head}{}=", alphabet[i | 0b11] as char);
        assert_ne!(odd, public);
        // Registration accepts it (its check), so the signature check must too.
        assert_eq!(decode_strict(&odd), decode_strict(&public));
        assert!(
            crate::devices::register::device_from(
                &serde_json::json!({
                    "uuid": "6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10", "product_id": "p",
                    "product_hex": "0x0A1B2C3D", "device_class": "c", "public_key": odd,
                    "registering_application": "a", "registering_version": "v", "mcu": {"m": 1},
                })
                .to_string(),
                "D".into()
            )
            .is_ok()
        );
        let good = signed(&pair, "u1", "2025-05-09T12:00:00Z");
        assert!(good.verify("u1", &odd, NOW).is_ok());
    }
}
