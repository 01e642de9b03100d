//! `GET /devices`: every registered device, for super users (`cognito:groups` holds
//! `super_users`, in either of API Gateway's forms), by `registration_date`, every
//! attribute of every item, as FireFly's `devices-get` lists them.

use super::Devices;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, FromRequest, HandlerResult, Request};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Map, Value, json};

pub const ROUTE: Route = Route {
    key: "GET /devices",
    function: "firefly-func-api-devices-get",
    summary: "List every registered device (super users only)",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Scan"],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Every device, by registration_date ascending; a fleet too large for one answer (Lambda's 6 MB) in pages, each but the last with next_cursor",
            schema: Some(
                r#"{"title": "DeviceListResponse", "type": "object", "required": ["devices"], "additionalProperties": false, "properties": {"devices": {"type": "array", "items": {"type": "object", "required": ["uuid"]}}, "next_cursor": {"type": "string", "description": "Present when more devices follow: GET /devices?cursor=<next_cursor>"}}}"#,
            ),
            example: Some(
                r#"{"devices":[{"uuid":"6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10","product_id":"FFC3232-2603","product_hex":"0x0A1B2C3D","device_class":"CONTROLLER","registration_date":"2026-05-24T15:32:51.123456+00:00","registering_application":"HW-Reg","registering_version":"2026.03.01","mcu":{"chip":"ESP32"},"public_key":"BASE64","registered_by_email":"a@example.com"}]}"#,
            ),
        },
        Answer::new(400, "A cursor no page gave"),
        Answer::new(403, "The caller is not in the super_users group"),
        super::UNEXPECTED,
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(list, Devices::build),
};

/// How much of an answer's body the devices may fill, as the body travels to API Gateway (a
/// JSON string inside the Lambda response, its quotes escaped): Lambda refuses a response
/// over 6 MB, so a page stops well before, with room for the headers.
pub const PAGE_BUDGET: usize = 5 * 1024 * 1024;

/// What a device costs of [`PAGE_BUDGET`]: its JSON, escaped as it travels, and a comma.
pub fn travelling_size(item: &Map<String, Value>) -> usize {
    let json = serde_json::to_string(item).unwrap_or_default();
    // Serializing the JSON text as a JSON string: the escaped length (minus its quotes).
    serde_json::to_string(&json).map_or(json.len(), |s| s.len() - 2) + 1
}

/// `?cursor=` as a previous page gave it (`next_cursor`): where the next page starts.
pub struct Cursor(pub Option<String>);

impl FromRequest for Cursor {
    fn from_request(req: &Request<'_>) -> Result<Self, ApiError> {
        let Some(text) = req.event.query_string_parameters.first("cursor") else {
            return Ok(Self(None));
        };
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|u| !u.is_empty() && u.len() <= 1024)
            .map(|u| Self(Some(u)))
            .ok_or(ApiError::BadRequest {
                message: "cursor is not one a previous page gave",
            })
    }
}

/// The handler: only a [`SuperUser`] gets here (403 otherwise). Every device, by
/// `registration_date`, as FireFly's console reads them; a fleet too large for one answer
/// comes in pages, each with the `next_cursor` to ask for the next (`?cursor=`), the last
/// without one. Nothing is dropped silently.
pub async fn list(
    devices: Devices,
    deadline: Deadline,
    _: SuperUser,
    Cursor(after): Cursor,
) -> HandlerResult {
    let (mut page, next) = deadline
        .run(
            devices
                .store
                .list_page(after, PAGE_BUDGET, &travelling_size),
        )
        .await??;
    let date = |d: &Map<String, Value>| {
        d.get("registration_date")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    page.sort_by_key(date);
    let mut body = json!({ "devices": page });
    if let Some(uuid) = next {
        use base64::Engine as _;
        body["next_cursor"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(uuid)
            .into();
    }
    Ok(Response::json(StatusCode::OK, &body))
}
