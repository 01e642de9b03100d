//! `GET /devices/{uuid}/registration`: a controller checks that it is registered, with a
//! signed request ([`super::signature`]), as FireFly's `devices-registration-get` answers:
//! 404 `Device not registered` for an unknown device before any header is read (the
//! firmware reads 404 as "not registered"), then the signature's checks, then 200 with
//! exactly seven fields.

use super::Devices;
use super::signature::{self, DeviceSignature};
use crate::deploy::{READS_APPCONFIG, Use};
use crate::error::ApiError;
use crate::handler::{Deadline, HandlerResult, Path, PathParam};
use crate::response::Response;
use crate::route::{Answer, Param, Route};
use lambda_http::http::StatusCode;
use serde_json::{Map, Value};

pub const ROUTE: Route = Route {
    key: "GET /devices/{uuid}/registration",
    function: "firefly-func-api-devices-registration-get",
    summary: "A device checks its registration with a signed request (X-Device-* headers)",
    uses: &[
        Use {
            resource: &super::TABLE,
            actions: &["dynamodb:GetItem"],
            objects: &[],
        },
        super::NONCE_USE,
        READS_APPCONFIG,
    ],
    answers: &[
        Answer {
            status: 200,
            description: "Registered: the device's registration",
            schema: Some(REGISTRATION_SCHEMA),
            example: Some(
                r#"{"uuid":"6f1c2b7e-0a4d-4c55-9e1b-3b2d7c9a1e10","product_id":"FFC3232-2603","product_hex":"0x0A1B2C3D","device_class":"CONTROLLER","registration_date":"2026-05-24T15:32:51.123456+00:00","registering_application":"HW-Reg","registering_version":"2026.03.01"}"#,
            ),
        },
        Answer::new(400, "A missing or malformed X-Device-* header"),
        Answer::new(
            401,
            "Timestamp outside ±10 s, the signature does not verify, or the nonce was used before",
        ),
        Answer::new(403, "X-Device-UUID does not match the path"),
        Answer::new(404, "Device not registered"),
        super::UNEXPECTED,
        Answer::new(503, "DynamoDB unavailable"),
    ],
    scopes: &[],
    params: &[Param {
        name: DeviceUuid::NAME,
        description: "The device's UUID, as it registered",
        schema: r#"{"type": "string", "minLength": 1}"#,
    }],
    headers: &signature::HEADERS,
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::endpoint!(check, Devices::build),
};

const REGISTRATION_SCHEMA: &str = r#"{
  "title": "DeviceRegistrationResponse",
  "type": "object",
  "required": ["uuid", "product_id", "product_hex", "device_class", "registration_date", "registering_application", "registering_version"],
  "additionalProperties": false,
  "properties": {
    "uuid": {"type": "string"},
    "product_id": {},
    "product_hex": {"type": "string"},
    "device_class": {},
    "registration_date": {"type": "string"},
    "registering_application": {},
    "registering_version": {}
  }
}"#;

/// The fields of a 200, FireFly's, in its order.
pub const FIELDS: [&str; 7] = [
    "uuid",
    "product_id",
    "product_hex",
    "device_class",
    "registration_date",
    "registering_application",
    "registering_version",
];

/// The `{uuid}` of the path, trimmed as FireFly trims it.
pub struct DeviceUuid(pub String);

impl PathParam for DeviceUuid {
    const NAME: &'static str = "uuid";
    fn parse(text: &str) -> Result<Self, ApiError> {
        Ok(Self(text.trim().to_owned()))
    }
}

pub const NOT_REGISTERED: ApiError = ApiError::ResourceNotFound {
    message: "Device not registered",
};

/// The handler.
pub async fn check(
    devices: Devices,
    deadline: Deadline,
    Path(DeviceUuid(uuid)): Path<DeviceUuid>,
    signature: DeviceSignature,
) -> HandlerResult {
    let item = devices
        .signed_device(deadline, &uuid, &signature, NOT_REGISTERED)
        .await?;
    let body: Map<String, Value> = FIELDS
        .iter()
        .map(|f| {
            (
                (*f).to_owned(),
                item.get(*f).cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    Ok(Response::json(StatusCode::OK, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_has_exactly_the_fields_the_handler_writes() {
        // The schema is a literal (the OpenAPI document embeds it); FIELDS builds the answer.
        let schema: Value = serde_json::from_str(REGISTRATION_SCHEMA).unwrap();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(required, FIELDS);
        let properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(properties.len(), FIELDS.len());
        assert!(
            FIELDS
                .iter()
                .all(|f| schema["properties"].get(*f).is_some())
        );
        assert_eq!(schema["additionalProperties"], false);
    }
}
