//! `GET /firmware` and `GET /firmware/{zip_name}`: FireFly's `func-api-firmware-get`, one
//! function with both routes, as the console's Firmware page reads them: `{"items"}` (with
//! `?product_hex`, lower-cased, through its index; `?version` a filter) without the large
//! or internal fields (`files`, `manifest`, `pk`), and one record without `pk`, numbers as
//! numbers. Every page is read (FireFly's read one: past 1 MB records vanished). Signed-in
//! users only; FireFly checks no group for firmware.

use super::Firmware;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::devices::get::{Cursor, PAGE_BUDGET, travelling_size};
use crate::error::ApiError;
use crate::handler::{Deadline, FromRequest, HandlerResult, Path, PathParam, Request};
use crate::identity::Caller;
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

const FUNCTION: &str = "firefly-func-api-firmware-get";

/// What both routes do on the table: Query (its indexes) and Scan.
const USES: &[Use] = &[
    Use {
        resource: &super::TABLE,
        actions: &["dynamodb:Query", "dynamodb:Scan"],
        objects: &[],
    },
    READS_APPCONFIG,
];

pub const LIST: Route = Route {
    key: "GET /firmware",
    function: FUNCTION,
    summary: "List firmware records (?product_hex, ?version), as the console's Firmware page does",
    uses: USES,
    answers: &[
        Answer {
            status: 200,
            description: "The records, without files, manifest and pk",
            schema: Some(
                r#"{"title": "FirmwareListResponse", "type": "object", "required": ["items"], "additionalProperties": false, "properties": {"items": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": "string", "description": "Present when more records follow (a listing past one answer, Lambda's 6 MB): GET /firmware?cursor=<next_cursor>"}}}"#,
            ),
            example: Some(
                r#"{"items":[{"zip_name":"1c9a5c1e-2f7b-4c1e-9d55-3b1f0f6a7e21.zip","product_hex":"0x00000001","version":"2026.03.01","class":"controller","application":"controller","release_status":"READY_TO_TEST","created":"2026-03-01T12:00:00Z"}]}"#,
            ),
        },
        Answer::new(400, "A cursor no page gave"),
        Answer::new(401, "No signed-in caller"),
        Answer::new(
            500,
            "An unexpected failure (for example the table is missing)",
        ),
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(list, Firmware::build),
};

pub const ITEM: Route = Route {
    key: "GET /firmware/{zip_name}",
    function: FUNCTION,
    summary: "One firmware record by its ZIP's name",
    uses: USES,
    answers: &[
        Answer {
            status: 200,
            description: "The record, without pk",
            schema: Some(r#"{"title": "FirmwareItem", "type": "object"}"#),
            example: Some(
                r#"{"zip_name":"1c9a5c1e-2f7b-4c1e-9d55-3b1f0f6a7e21.zip","product_hex":"0x00000001","version":"2026.03.01","files":[{"name":"controller.ino.bin","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}"#,
            ),
        },
        Answer::new(401, "No signed-in caller"),
        Answer::new(404, "Firmware not found: <zip_name>"),
        Answer::new(
            500,
            "An unexpected failure (for example the table is missing)",
        ),
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[ZIP_PARAM],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(item, Firmware::build),
};

/// The list's filters, as FireFly reads them (an empty value is no filter).
pub struct Filter {
    product_hex: Option<String>,
    version: Option<String>,
}

impl FromRequest for Filter {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let q = |name: &str| {
            req.event
                .query_string_parameters
                .first(name)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Ok(Self {
            product_hex: q("product_hex"),
            version: q("version"),
        })
    }
}

/// The `{zip_name}` parameter, as every route of one ZIP documents it.
pub const ZIP_PARAM: Param = Param {
    name: ZipName::NAME,
    description: "The ZIP's name, as the record's zip_name holds it",
    schema: r#"{"type": "string", "minLength": 1}"#,
};

/// The `{zip_name}` of the path.
pub struct ZipName(pub String);

impl PathParam for ZipName {
    const NAME: &'static str = "zip_name";
    fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(Self(text.to_owned()))
    }
}

/// The fields a listing leaves out, as FireFly's does (large, or internal), and a
/// transition's claim (ours).
const LIST_EXCLUDED: [&str; 4] = ["files", "manifest", "pk", super::store::CLAIM];

/// The list handler.
pub async fn list(
    firmware: Firmware,
    deadline: Deadline,
    _: Caller,
    Filter {
        product_hex,
        version,
    }: Filter,
    Cursor(after): Cursor,
) -> HandlerResult {
    // `?cursor=` is the `[pk, version]` a previous page ended with.
    let after: Option<(String, String)> = match after {
        None => None,
        Some(text) => Some(
            serde_json::from_str(&text).map_err(|_| ApiError::BadRequest {
                message: "cursor is not one a previous page gave",
            })?,
        ),
    };
    let strip = |mut item: serde_json::Map<String, Value>| {
        for field in LIST_EXCLUDED {
            item.remove(field);
        }
        item
    };
    // What a record costs of the answer: as it is listed, not as it is stored.
    let size = |item: &serde_json::Map<String, Value>| travelling_size(&strip(item.clone()));
    let (page, next) = deadline
        .run(
            firmware
                .store
                .list_page(product_hex, version, after, PAGE_BUDGET, &size),
        )
        .await??;
    let items: Vec<Value> = page.into_iter().map(|i| Value::Object(strip(i))).collect();
    let mut body = json!({ "items": items });
    // ERROR records never expire, so a listing grows without end: past one answer (Lambda's
    // 6 MB) it comes in pages, as GET /devices does, each but the last with next_cursor.
    if let Some(key) = next {
        use base64::Engine as _;
        body["next_cursor"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_string(&key).unwrap_or_default())
            .into();
    }
    Ok(Response::json(StatusCode::OK, &body))
}

/// The item handler.
pub async fn item(
    firmware: Firmware,
    deadline: Deadline,
    _: Caller,
    Path(ZipName(zip_name)): Path<ZipName>,
) -> HandlerResult {
    // No key DynamoDB would accept is no record (FireFly's call failed with a 500).
    let found = if zip_name.is_empty() || zip_name.len() > 1024 {
        None
    } else {
        deadline
            .run(firmware.store.by_zip(zip_name.clone()))
            .await??
    };
    let Some(mut record) = found else {
        return Ok(not_found(&zip_name));
    };
    record.remove("pk");
    record.remove(super::store::CLAIM);
    Ok(Response::json(StatusCode::OK, &Value::Object(record)))
}

/// Whether a ZIP name is one a ZIP of FireFly's pipeline could have (a UUID's characters,
/// a test's `-` and `_`): only such a name reaches a key, a URL or an answer.
pub fn plain_zip_name(zip_name: &str) -> bool {
    !zip_name.is_empty()
        && zip_name.len() <= 128
        && zip_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !zip_name.starts_with('.')
}

/// FireFly's 404 for a ZIP with no record, which names it; a name of other characters than
/// a ZIP's is not echoed.
pub fn not_found(zip_name: &str) -> Response {
    let message = if plain_zip_name(zip_name) {
        format!("Firmware not found: {zip_name}")
    } else {
        "Firmware not found".to_owned()
    };
    Response::message(StatusCode::NOT_FOUND, &message)
}
