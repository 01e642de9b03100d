//! `GET /devices`: every registered device, for super users (`cognito:groups` holds
//! `super_users`, in either of API Gateway's forms), by `registration_date`, every
//! attribute of every item, as FireFly's `devices-get` lists them.

use super::Devices;
use crate::deploy::{READS_APPCONFIG, Use};
use crate::handler::{Deadline, HandlerResult};
use crate::identity::SuperUser;
use crate::response::Response;
use crate::route::{Answer, Route};
use lambda_http::http::StatusCode;
use serde_json::{Value, json};

pub const ROUTE: Route = Route {
    key: "GET /devices",
    function: "firefly-func-api-devices-get",
    summary: "List every registered device (super users only)",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:Scan"],
        },
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Every device, by registration_date ascending",
            schema: Some(
                r#"{"title": "DeviceListResponse", "type": "object", "required": ["devices"], "additionalProperties": false, "properties": {"devices": {"type": "array", "items": {"type": "object", "required": ["uuid"]}}}}"#,
            ),
            example: Some(
                r#"{"devices":[{"uuid":"6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10","product_id":"FFC3232-2603","product_hex":"0x0A1B2C3D","device_class":"CONTROLLER","registration_date":"2026-05-24T15:32:51.123456+00:00","registering_application":"HW-Reg","registering_version":"2026.03.01","mcu":{"chip":"ESP32"},"public_key":"BASE64","registered_by_email":"a@example.com"}]}"#,
            ),
        },
        Answer::new(403, "The caller is not in the super_users group"),
        super::UNEXPECTED,
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    request: None,
    endpoint: crate::endpoint!(list, Devices::build),
};

/// The handler: only a [`SuperUser`] gets here (403 otherwise).
pub async fn list(devices: Devices, deadline: Deadline, _: SuperUser) -> HandlerResult {
    let mut all = deadline.run(devices.store.list()).await??;
    let date = |d: &serde_json::Map<String, Value>| {
        d.get("registration_date")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    all.sort_by_key(date);
    Ok(Response::json(StatusCode::OK, &json!({ "devices": all })))
}
