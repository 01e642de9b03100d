//! `GET /ota/{class}/{product_hex}/{application}`: FireFly's `func-api-ota-get`, which every
//! controller asks which firmware to install next (no sign-in: the controller has none).
//! FireFly's answers in every case: the released versions' manifests without
//! `?current_version`; with it, the next released version, or the current one when it is
//! still released and nothing is newer, 409 when it is no longer released and nothing is
//! newer, 404 when nothing of that application is released.
//!
//! Better than FireFly's:
//! - **Order.** Versions are ordered as the controller orders them: esp32OTA reads each
//!   with `sscanf("%d.%d.%d")` (missing parts 0) and updates only to a greater one.
//!   FireFly compared strings, so `10.0.0` came before `9.0.0`. Ties (`1.0.1` and `1.0.01`,
//!   or a test's `2026.03.r<ts>`) are broken by the string, so FireFly's own test versions
//!   keep their order.
//! - **Every page** of the query is read (FireFly read the first 1 MB).
//! - **URLs** are percent-encoded, segment by segment, and path parts are checked before
//!   they reach a key or a URL (a `#` would address another record).
//! - A version whose files are being revoked is never offered.

use super::Ota;
use super::store::Claim;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::store::Item;
use crate::error::ApiError;
use crate::handler::{Deadline, FromRequest, HandlerResult, Path, PathParam, Request};
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};
use std::cmp::Ordering;

const FUNCTION: &str = "firefly-func-api-ota-get";

/// FireFly's LittleFS image, the `ui` partition's binary.
const UI_BINARY: &str = "ui.bin";

pub const ROUTE: Route = Route {
    key: "GET /ota/{class}/{product_hex}/{application}",
    function: FUNCTION,
    summary: "The firmware a controller should install next (no sign-in), as FireFly's controllers ask for it",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Query"],
            objects: &[],
        },
        Use {
            resource: &super::DOMAIN,
            actions: &[],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "The manifests: every released version (no current_version), or the one to install",
            schema: Some(
                r#"{"title": "OtaManifests", "type": "array", "items": {"type": "object", "required": ["application_name", "version", "commit", "binaries"], "properties": {"application_name": {"type": ["string", "null"]}, "version": {"type": "string"}, "commit": {}, "release_url": {"type": "string"}, "binaries": {"type": "array", "items": {"type": "object", "required": ["partition", "url", "sha256"], "properties": {"partition": {"type": "string", "enum": ["app", "ui"]}, "url": {"type": "string"}, "sha256": {}}}}}}}"#,
            ),
            example: Some(
                r#"[{"application_name":"FireFly Controller","version":"2026.03.02","commit":"0a1b2c3","binaries":[{"partition":"app","url":"https://firmware.example.com/controller/0x00000001/controller/2026.03.02/Controller.ino.bin","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}]"#,
            ),
        },
        Answer::new(400, "A path part that cannot name a firmware"),
        Answer::new(
            404,
            "No released firmware found for class='..' product_hex='..' application='..'",
        ),
        Answer::new(
            409,
            "Current version '<v>' is no longer released and no newer version is available",
        ),
        Answer::new(
            500,
            "Firmware record missing firmware_type, No main firmware binary found in released record, or an unexpected failure",
        ),
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[
        Param {
            name: Class::NAME,
            description: "The device class (`controller`), any case",
            schema: PART_SCHEMA,
        },
        Param {
            name: ProductHex::NAME,
            description: "The product, as `0x%08lx`, any case",
            schema: PART_SCHEMA,
        },
        Param {
            name: Application::NAME,
            description: "The application (`controller`), any case",
            schema: PART_SCHEMA,
        },
    ],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(ota, Ota::build),
};

/// What [`part`] accepts, as the OpenAPI document says it: 1 to 128 characters, no `#`,
/// `/`, `\\` or control character, and not `.` or `..`.
const PART_SCHEMA: &str = r#"{"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^([^#/.\\\\\\x00-\\x1f\\u007f-\\u009f][^#/\\\\\\x00-\\x1f\\u007f-\\u009f]{0,127}|\\.[^#/.\\\\\\x00-\\x1f\\u007f-\\u009f][^#/\\\\\\x00-\\x1f\\u007f-\\u009f]{0,126}|\\.\\.[^#/\\\\\\x00-\\x1f\\u007f-\\u009f]{1,126})$"}"#;

/// A path part as it reaches the record's key (`class#hex#application`, lower-cased) and
/// the URLs: refused when it could not name one.
fn part(text: &str, message: &'static str) -> Result<String, ApiError> {
    let bad = text.is_empty()
        || text.chars().count() > 128
        || text == "."
        || text == ".."
        || text
            .chars()
            .any(|c| matches!(c, '#' | '/' | '\\') || c.is_control());
    if bad {
        return Err(ApiError::BadRequest { message });
    }
    Ok(text.to_lowercase())
}

macro_rules! path_part {
    ($t:ident, $name:literal) => {
        pub struct $t(pub String);
        impl PathParam for $t {
            const NAME: &'static str = $name;
            fn parse(text: &str) -> Result<Self, ApiError> {
                part(text, concat!("Invalid path parameter: ", $name)).map(Self)
            }
        }
    };
}
path_part!(Class, "class");
path_part!(ProductHex, "product_hex");
path_part!(Application, "application");

/// `?current_version` (empty is absent, as FireFly reads it).
pub struct CurrentVersion(pub Option<String>);

impl FromRequest for CurrentVersion {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        Ok(Self(
            req.event
                .query_string_parameters
                .first("current_version")
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
        ))
    }
}

/// A version's three numbers as the controller reads them: `sscanf(v, "%d.%d.%d")`, the
/// parts it cannot read left 0 (each `%d` skips white space and takes a sign; a number
/// past `int` is held at its bounds).
pub fn numbers(version: &str) -> [i64; 3] {
    let mut parts = [0i64; 3];
    let mut rest = version;
    for (i, slot) in parts.iter_mut().enumerate() {
        if i > 0 {
            match rest.strip_prefix('.') {
                Some(r) => rest = r,
                None => break,
            }
        }
        let t = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        let (negative, t) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let n = t[..digits]
            .parse::<i64>()
            .unwrap_or(i64::MAX)
            .min(i64::from(i32::MAX) + i64::from(negative));
        *slot = if negative { -n } else { n };
        rest = &t[digits..];
    }
    parts
}

/// The controller's order, ties broken by the string.
pub fn compare(a: &str, b: &str) -> Ordering {
    numbers(a).cmp(&numbers(b)).then_with(|| a.cmp(b))
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(Value::as_str)
}

/// Every byte but the unreserved ones percent-encoded: one segment of a URL path.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// FireFly's manifest of a released record (`_build_manifest`); `None` when it names no
/// main binary.
fn manifest(item: &Item, domain: &str, class: &str, product_hex: &str) -> Option<Value> {
    let version = text(item, "version").unwrap_or_default();
    let application = text(item, "application").unwrap_or_default().to_lowercase();
    let base = format!(
        "https://{domain}/{}/{}/{}/{}",
        segment(class),
        segment(product_hex),
        segment(&application),
        segment(version)
    );
    let main = text(item, "main_binary").filter(|m| !m.is_empty());
    let (mut app, mut ui) = (None, None);
    for f in item
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        let binary = || json!({"url": format!("{base}/{}", segment(name)), "sha256": f.get("sha256").cloned().unwrap_or(Value::Null)});
        if name == UI_BINARY {
            ui = Some(binary());
        } else if main.map_or(name.ends_with(".ino.bin"), |m| m == name) {
            app = Some(binary());
        }
    }
    let mut binaries = vec![app?];
    binaries[0]["partition"] = "app".into();
    if let Some(mut ui) = ui {
        ui["partition"] = "ui".into();
        binaries.push(ui);
    }
    let mut m = json!({
        "application_name": item.get("firmware_type").cloned().unwrap_or(Value::Null),
        "version": version,
        "commit": item.get("commit").cloned().unwrap_or(Value::Null),
        "binaries": binaries,
    });
    if let Some(url) = item.get("release_url").filter(|u| super::truthy(u)) {
        m["release_url"] = url.clone();
    }
    Some(m)
}

/// The handler.
pub async fn ota(
    ota: Ota,
    deadline: Deadline,
    Path(Class(class)): Path<Class>,
    Path(ProductHex(product_hex)): Path<ProductHex>,
    Path(Application(application)): Path<Application>,
    CurrentVersion(current): CurrentVersion,
) -> HandlerResult {
    let pk = format!("{class}#{product_hex}#{application}");
    let records = deadline.run(ota.store.versions(pk.clone())).await??;
    // Released, and not being revoked: a version is offered only while its files are
    // published.
    let mut released: Vec<&Item> = records
        .iter()
        .filter(|r| text(r, "release_status") == Some("RELEASED"))
        .filter(|r| Claim::of(r).is_none_or(|c| c.to != "REVOKED"))
        .collect();
    released.sort_by(|a, b| {
        compare(
            text(a, "version").unwrap_or_default(),
            text(b, "version").unwrap_or_default(),
        )
    });
    let none_released = || {
        Response::message(
            StatusCode::NOT_FOUND,
            &format!(
                "No released firmware found for class='{class}' product_hex='{product_hex}' application='{application}'"
            ),
        )
    };
    let Some(current) = current else {
        if released.is_empty() {
            return Ok(none_released());
        }
        let all: Vec<Value> = released
            .iter()
            .filter_map(|r| manifest(r, &ota.domain, &class, &product_hex))
            .collect();
        return Ok(Response::json(StatusCode::OK, &all));
    };
    let no_longer = || {
        Response::message(
            StatusCode::CONFLICT,
            &format!(
                "Current version '{current}' is no longer released and no newer version is available"
            ),
        )
    };
    if released.is_empty() {
        let revoked = records.iter().any(|r| {
            text(r, "version") == Some(current.as_str())
                && text(r, "release_status") == Some("REVOKED")
        });
        return Ok(if revoked {
            no_longer()
        } else {
            none_released()
        });
    }
    let next = released
        .iter()
        .find(|r| compare(text(r, "version").unwrap_or_default(), &current) == Ordering::Greater)
        .or_else(|| {
            released
                .iter()
                .find(|r| text(r, "version") == Some(current.as_str()))
        });
    let Some(item) = next else {
        return Ok(no_longer());
    };
    let version = text(item, "version").unwrap_or_default();
    if !item.get("firmware_type").is_some_and(super::truthy) {
        tracing::error!(pk = %pk, version, "a released record has no firmware_type");
        return Ok(Response::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Firmware record missing firmware_type",
        ));
    }
    let Some(m) = manifest(item, &ota.domain, &class, &product_hex) else {
        tracing::error!(pk = %pk, version, "a released record names no main binary");
        return Ok(Response::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No main firmware binary found in released record",
        ));
    };
    tracing::debug!(pk = %pk, current = %current, offered = version, "OTA answered");
    Ok(Response::json(StatusCode::OK, &json!([m])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_the_controllers_sscanf_reads_them() {
        assert_eq!(numbers("2026.03.01"), [2026, 3, 1]);
        assert_eq!(numbers("1.0.01"), [1, 0, 1]);
        assert_eq!(numbers("2026.03.r1767225600"), [2026, 3, 0]);
        assert_eq!(numbers("9999.99.99"), [9999, 99, 99]);
        assert_eq!(numbers("v1.2.3"), [0, 0, 0]);
        assert_eq!(numbers("1.2"), [1, 2, 0]);
        assert_eq!(numbers(" 1. +2.-3x"), [1, 2, -3]);
        assert_eq!(numbers("99999999999.1.1"), [i64::from(i32::MAX), 1, 1]);
        assert_eq!(numbers(""), [0, 0, 0]);
    }

    #[test]
    fn the_order_is_numeric_where_firefly_compared_strings() {
        // FireFly's string order put 10.0.0 below 9.0.0 and 2026.10.01 below 2026.9.01.
        assert_eq!(compare("10.0.0", "9.0.0"), Ordering::Greater);
        assert_eq!(compare("2026.10.01", "2026.9.01"), Ordering::Greater);
        assert!("10.0.0" < "9.0.0", "the string order this replaces");
        // FireFly's own test versions keep their order.
        assert_eq!(compare("0.0.01", "2026.03.r1767225600"), Ordering::Less);
        assert_eq!(compare("1.0.01", "2.0.01"), Ordering::Less);
        assert_eq!(compare("2.0.01", "3.0.01"), Ordering::Less);
        // Equal numbers: the string decides, so the order is total.
        assert_eq!(compare("1.0.1", "1.0.01"), Ordering::Greater);
        assert_eq!(compare("1.0.1", "1.0.1"), Ordering::Equal);
    }

    #[test]
    fn path_parts_that_could_name_another_record_or_url_are_refused() {
        for bad in ["", "a#b", "a/b", "..", ".", "a\\b", "a\u{0}b"] {
            assert!(part(bad, "x").is_err(), "{bad:?}");
        }
        assert_eq!(part("CONTROLLER", "x").unwrap(), "controller");
        assert_eq!(segment("a b/ü"), "a%20b%2F%C3%BC");
    }
}
