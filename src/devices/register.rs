//! `POST /devices/register`: a controller registers itself with a one-time registration
//! key (header `X-Registration-Key`), as FireFly's `devices-register-post` does: the same
//! checks in the same order with the same answers, 204 on success.
//!
//! Better, on the same tables: the key is used once, atomically with the device write (two
//! devices racing with one key cannot both register); an expired key DynamoDB has not yet
//! deleted is refused; non-string fields and numbers get a 400 or are stored exactly,
//! never a 500; the key is never logged; refusals are counted (`RegistrationsRefused`).

use super::Devices;
use super::store::{Item, NewDevice, Registered, storable};
use crate::clock::iso8601_micros;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Body, Deadline, FromRequest, HandlerResult, Request};
use crate::response::Response;
use crate::route::{Answer, MetricAlarm, Param, Route};
use crate::telemetry::{self, Unit};
use lambda_http::http::StatusCode;
use serde_json::Value;

pub const ROUTE: Route = Route {
    key: "POST /devices/register",
    function: "firefly-func-api-devices-register-post",
    summary: "Register a device with a one-time registration key (header X-Registration-Key)",
    uses: &[
        Use {
            resource: &crate::registration_keys::TABLE,
            actions: &["dynamodb:GetItem", "dynamodb:DeleteItem"],
            objects: &[],
        },
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:PutItem"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer::new(
            204,
            "Registered, or already registered (the record and the key untouched)",
        ),
        Answer::new(
            400,
            "A missing or malformed header, body or field (the message names it)",
        ),
        Answer::new(401, "Invalid or expired registration key"),
        super::UNEXPECTED,
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[],
    headers: &[KEY_HEADER],
    alarms: &[REFUSALS_ALARM],
    // The only route that takes a secret from anyone: its sandboxes bound how fast keys can
    // be guessed (docs/security.md, "Guessing registration keys"). Controllers register
    // once; five sandboxes are plenty.
    reserved_concurrency: Some(5),
    timeout_s: None,
    request: Some(REQUEST_SCHEMA),
    endpoint: crate::endpoint!(register, Devices::build),
};

/// Refused registrations (unknown, used or expired keys) past what mistyping explains:
/// someone may be guessing keys (docs/security.md has the arithmetic).
pub const REFUSALS_ALARM: MetricAlarm = MetricAlarm {
    metric: "RegistrationsRefused",
    threshold: 20,
    description: "More than 20 registrations refused for an invalid or expired key in 5 minutes: someone may be guessing registration keys",
};

/// The body, as FireFly documents it (`RegisterDeviceRequest`).
const REQUEST_SCHEMA: &str = r##"{
  "title": "RegisterDeviceRequest",
  "type": "object",
  "required": ["uuid", "product_id", "product_hex", "device_class", "public_key", "registering_application", "registering_version", "mcu"],
  "properties": {
    "uuid": {"type": "string", "format": "uuid"},
    "product_id": {"type": "string", "minLength": 1},
    "product_hex": {"type": "string", "pattern": "^0x[0-9A-Fa-f]{8}$"},
    "device_class": {"type": "string", "minLength": 1},
    "public_key": {"type": "string", "pattern": "^B[A-P][A-Za-z0-9+/]{85}=$", "description": "Base64 of the 65-byte uncompressed P-256 point (prefix 0x04)"},
    "registering_application": {"type": "string", "minLength": 1},
    "registering_version": {"type": "string", "minLength": 1},
    "mcu": {"type": "object", "minProperties": 1, "propertyNames": {"minLength": 1}, "additionalProperties": {"$ref": "#/components/schemas/StorableValue"}},
    "network": {"type": "array", "items": {"type": "object", "propertyNames": {"minLength": 1}, "additionalProperties": {"$ref": "#/components/schemas/StorableValue"}}},
    "partitions": {"type": "array", "items": {"type": "object", "propertyNames": {"minLength": 1}, "additionalProperties": {"$ref": "#/components/schemas/StorableValue"}}}
  }
}"##;

/// A value DynamoDB can store ([`super::store::storable`]), as the document states it.
pub const STORABLE_SCHEMA: &str = r##"{
  "title": "StorableValue",
  "anyOf": [
    {"type": "string"},
    {"type": "boolean"},
    {"type": "null"},
    {"type": "integer", "minimum": -1000000000000000, "maximum": 1000000000000000},
    {"type": "array", "items": {"$ref": "#/components/schemas/StorableValue"}},
    {"type": "object", "propertyNames": {"minLength": 1}, "additionalProperties": {"$ref": "#/components/schemas/StorableValue"}}
  ]
}"##;

/// The body fields that must be present and not empty, in FireFly's order (its 400 names
/// the first one missing), each with that 400's message.
pub const REQUIRED: [(&str, &str); 8] = [
    ("uuid", "uuid is required"),
    ("product_id", "product_id is required"),
    ("product_hex", "product_hex is required"),
    ("device_class", "device_class is required"),
    ("public_key", "public_key is required"),
    (
        "registering_application",
        "registering_application is required",
    ),
    ("registering_version", "registering_version is required"),
    ("mcu", "mcu is required"),
];

/// DynamoDB's 400 KB item limit, counted as DynamoDB counts ([`super::store::item_size`]),
/// less room for `registered_by_email`, which the store adds.
const MAX_ITEM_BYTES: usize = 400 * 1024 - 512;

/// The header a device sends its registration key in, as the route documents it and
/// [`RegistrationKeyHeader`] reads it.
pub const KEY_HEADER: Param = Param {
    name: "X-Registration-Key",
    description: "The one-time registration key a signed-in user minted (6 characters)",
    schema: r#"{"type": "string", "pattern": "^ *[A-Z0-9]{6} *$"}"#,
};

/// The `X-Registration-Key` header, trimmed: 6 characters, else 400. Its value is a
/// secret: it has no `Debug` and reaches no log line.
pub struct RegistrationKeyHeader(String);

impl FromRequest for RegistrationKeyHeader {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let key = req.header(KEY_HEADER.name).unwrap_or("").trim();
        if key.chars().count() == 6 {
            Ok(Self(key.to_owned()))
        } else {
            Err(ApiError::BadRequest {
                message: "X-Registration-Key header is required and must be 6 characters",
            })
        }
    }
}

fn bad(message: &'static str) -> ApiError {
    ApiError::BadRequest { message }
}

/// Python's truthiness, which FireFly's `if not body.get(field)` applies.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn is_product_hex(s: &str) -> bool {
    s.len() == 10 && s.starts_with("0x") && s[2..].bytes().all(|c| c.is_ascii_hexdigit())
}

/// The device item from the body, or FireFly's 400 for the first thing wrong with it.
pub fn device_from(body: &str, registration_date: String) -> Result<NewDevice, ApiError> {
    // FireFly reads a missing body as `{}` (then: "uuid is required").
    let text = if body.is_empty() { "{}" } else { body };
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
        return Err(bad("Invalid JSON body"));
    };
    for (name, message) in REQUIRED {
        if fields.get(name).is_none_or(is_empty) {
            return Err(ApiError::BadRequest { message });
        }
    }
    let text_of = |name: &str| fields.get(name).and_then(Value::as_str).map(str::trim);
    let uuid = text_of("uuid")
        .filter(|u| is_uuid(u))
        .ok_or(bad("uuid must be a valid UUID"))?;
    let product_hex = text_of("product_hex")
        .filter(|p| is_product_hex(p))
        .ok_or(bad("product_hex must match 0xXXXXXXXX"))?;
    let public_key = fields
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or(bad("public_key must be valid Base64"))?;
    let point = super::signature::decode_strict(public_key)
        .ok_or(bad("public_key must be valid Base64"))?;
    if point.len() != 65 || point[0] != 0x04 {
        return Err(bad(
            "public_key must be a Base64-encoded uncompressed P-256 point (65 bytes, prefix 0x04)",
        ));
    }
    let mut item = Item::new();
    item.insert("uuid".into(), Value::String(uuid.to_owned()));
    for name in [
        "product_id",
        "device_class",
        "public_key",
        "registering_application",
        "registering_version",
        "mcu",
    ] {
        item.insert(name.into(), fields[name].clone());
    }
    item.insert("product_hex".into(), Value::String(product_hex.to_owned()));
    item.insert("registration_date".into(), Value::String(registration_date));
    for optional in ["network", "partitions"] {
        if let Some(v) = fields.get(optional).filter(|v| !v.is_null()) {
            item.insert(optional.into(), v.clone());
        }
    }
    if let Some((name, _)) = item.iter().find(|(_, v)| !storable(v)) {
        tracing::info!(field = %name, "a field holds a value DynamoDB cannot store");
        return Err(bad("A field holds a value that cannot be stored"));
    }
    if super::store::item_size(&item) > MAX_ITEM_BYTES {
        return Err(bad("Request body too large"));
    }
    Ok(NewDevice {
        uuid: uuid.to_owned(),
        item,
    })
}

/// The handler.
pub async fn register(
    devices: Devices,
    deadline: Deadline,
    RegistrationKeyHeader(key): RegistrationKeyHeader,
    Body(body): Body,
) -> HandlerResult {
    let device = device_from(&body, iso8601_micros(devices.clock.now_epoch_micros()))?;
    let now = devices.clock.now_epoch_seconds();
    let uuid = device.uuid.clone();
    let public_key = device.item.get("public_key").cloned();
    let mut outcome = deadline
        .run(devices.store.register(&key, now, device))
        .await??;
    // A device whose 204 was lost (or whose transaction committed after our deadline gave
    // up on it) retries with a key it already used: it is registered, with this very public
    // key, so it gets the 204 it missed. Any other device still gets 401.
    if outcome == Registered::KeyRefused {
        let stored = deadline.run(devices.store.get(&uuid)).await??;
        if stored.is_some_and(|item| item.get("public_key") == public_key.as_ref()) {
            tracing::info!(device = %uuid, "a registration that went through, retried: 204 again");
            outcome = Registered::AlreadyRegistered;
        }
    }
    match outcome {
        Registered::Registered => {
            telemetry::metric("DevicesRegistered", Unit::Count, 1.0);
            tracing::info!(device = %uuid, "device registered");
        }
        Registered::AlreadyRegistered => {
            tracing::info!(device = %uuid, "device already registered; nothing changed");
        }
        Registered::KeyRefused => {
            // Counted, for the guessing alarm; the key itself is never logged.
            telemetry::metric("RegistrationsRefused", Unit::Count, 1.0);
            tracing::warn!(device = %uuid, "registration refused: no live key with this value");
            return Err(ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                message: "Invalid or expired registration key",
            });
        }
    }
    Ok(Response::empty(StatusCode::NO_CONTENT))
}

/// A device's public key, for the tests of this feature.
#[cfg(test)]
pub(crate) fn public_key_of(pair: &ring::signature::EcdsaKeyPair) -> String {
    use base64::Engine as _;
    use ring::signature::KeyPair;
    base64::engine::general_purpose::STANDARD.encode(pair.public_key().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> String {
        v.to_string()
    }

    pub(crate) fn valid(public_key: &str) -> Value {
        json!({
            "uuid": "6F1C2B7E-0A4D-4C55-9E1B-3B2D7C9A1E10",
            "product_id": "FFC3232-2603",
            "product_hex": " 0x0A1B2C3D ",
            "device_class": "CONTROLLER",
            "public_key": public_key,
            "registering_application": "HW-Reg",
            "registering_version": "2026.03.01",
            "mcu": {"chip": "ESP32", "revision": 3, "cores": 2.0},
            "network": [{"interface": "eth0", "mac_address": "AA:BB:CC:DD:EE:FF"}],
            "partitions": null,
        })
    }

    fn message(r: Result<NewDevice, ApiError>) -> &'static str {
        r.unwrap_err().message()
    }

    #[test]
    fn a_valid_body_becomes_firefly_item() {
        let key = public_key_of(&crate::devices::signature::tests::key_pair());
        let d = device_from(&body(valid(&key)), "D".into()).unwrap();
        assert_eq!(d.uuid, "6F1C2B7E-0A4D-4C55-9E1B-3B2D7C9A1E10");
        assert_eq!(d.item["product_hex"], "0x0A1B2C3D");
        assert_eq!(d.item["registration_date"], "D");
        // Numbers are stored as sent (FireFly's boto3 refused floats with a 500).
        assert_eq!(
            d.item["mcu"],
            json!({"chip": "ESP32", "revision": 3, "cores": 2.0})
        );
        assert!(d.item.contains_key("network"));
        assert!(
            !d.item.contains_key("partitions"),
            "null optional fields are left out"
        );
        // registered_by_email is the store's to add, from the key.
        assert_eq!(d.item.len(), 10);
    }

    #[test]
    fn each_problem_gets_firefly_message_in_firefly_order() {
        let key = public_key_of(&crate::devices::signature::tests::key_pair());
        assert_eq!(message(device_from("{", "D".into())), "Invalid JSON body");
        assert_eq!(message(device_from("[1]", "D".into())), "Invalid JSON body");
        assert_eq!(message(device_from("", "D".into())), "uuid is required");
        for (name, _) in REQUIRED {
            let mut v = valid(&key);
            // Everything before `name` present, `name` empty in each falsy form.
            for empty in [
                json!(""),
                json!(null),
                json!(0),
                json!([]),
                json!({}),
                json!(false),
            ] {
                v[name] = empty.clone();
                assert_eq!(
                    message(device_from(&body(v.clone()), "D".into())),
                    format!("{name} is required"),
                    "{name} = {empty}"
                );
            }
        }
        let with = |field: &str, value: Value| {
            let mut v = valid(&key);
            v[field] = value;
            message(device_from(&body(v), "D".into()))
        };
        // Non-strings are a 400, never a 500 (FireFly's .strip() raised).
        assert_eq!(with("uuid", json!(12345)), "uuid must be a valid UUID");
        assert_eq!(
            with("uuid", json!("not-a-uuid")),
            "uuid must be a valid UUID"
        );
        assert_eq!(
            with("product_hex", json!(7)),
            "product_hex must match 0xXXXXXXXX"
        );
        assert_eq!(
            with("product_hex", json!("0x0A1B2C3")),
            "product_hex must match 0xXXXXXXXX"
        );
        assert_eq!(
            with("public_key", json!(5)),
            "public_key must be valid Base64"
        );
        assert_eq!(
            with("public_key", json!("abc!")),
            "public_key must be valid Base64"
        );
        assert!(
            with("public_key", json!("AAAA")).starts_with("public_key must be a Base64-encoded")
        );
        assert_eq!(
            with("mcu", json!({"big": 1e300})),
            "A field holds a value that cannot be stored"
        );
    }
}
