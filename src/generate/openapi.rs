//! `routes/openapi.json`: the OpenAPI 3.1 document of the whole API, from the route table.
//! `firefly-local serve` serves the same document at `/openapi.json`.

use super::HEADER;
use crate::handler::Auth;
use crate::route::Route;
use serde_json::{Map, Value, json};

/// Statuses every JWT route can answer besides its own: the authorizer's 401 (and the
/// function's, without a usable `sub`).
const UNAUTHORIZED: &str = "No valid bearer token (API Gateway's authorizer answers `{\"message\":\"Unauthorized\"}`), or a token without a usable `sub`";

pub fn document(routes: &[Route]) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut named_schemas: Map<String, Value> = Map::new();
    // Only API routes are operations: an S3 function has no HTTP face.
    for route in routes
        .iter()
        .filter(|r| r.kind() == crate::route::Kind::Api)
    {
        let item = paths
            .entry(route.path().to_owned())
            .or_insert_with(|| json!({}));
        let params: Vec<Value> = route
            .path()
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let name = name.trim_end_matches('+');
                let doc = route.params.iter().find(|p| p.name == name);
                let schema = doc
                    .and_then(|p| serde_json::from_str::<Value>(p.schema).ok())
                    .unwrap_or_else(|| json!({"type": "string", "minLength": 1}));
                let mut param =
                    json!({"name": name, "in": "path", "required": true, "schema": schema});
                if let Some(doc) = doc {
                    param["description"] = doc.description.into();
                }
                param
            })
            .collect();
        if !params.is_empty() {
            item["parameters"] = Value::Array(params);
        }
        item[route.method().to_ascii_lowercase()] = operation(route, &mut named_schemas);
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Firefly API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("{HEADER}\n\nEvery route of every Firefly function, served by one Lambda binary behind API Gateway (HTTP API). Every answer is `application/json`; errors are FireFly-Cloud's `{{\"message\": \"...\"}}` (MessageResponse)."),
        },
        "servers": [{"url": "http://127.0.0.1:3000", "description": "firefly-local serve"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "CognitoJWT": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "A Cognito ID or access token, checked by API Gateway's JWT authorizer (locally: `firefly-local token --sub USER`)",
                },
            },
            "schemas": {
                "MessageResponse": {
                    "type": "object",
                    "required": ["message"],
                    "additionalProperties": false,
                    "properties": {"message": {"type": "string"}},
                    "description": "An error, as every FireFly function and API Gateway itself answer it",
                },
            },
        },
    });
    // Schemas the named ones refer to (a device's values).
    let _ = named(
        crate::devices::register::STORABLE_SCHEMA,
        &mut named_schemas,
    );
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(named_schemas);
    }
    doc
}

fn message(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageResponse"}}},
    })
}

/// A schema with a `title` goes to `components/schemas` under that name (FireFly's names)
/// and is referred to; one without stays inline.
fn named(schema: &str, components: &mut Map<String, Value>) -> Value {
    let schema: Value = serde_json::from_str(schema).unwrap_or(Value::Null);
    let mut schema = schema;
    if let Some(items) = schema.pointer_mut("/properties/registration_keys/items") {
        let inner = items.take();
        *items = lift(inner, components);
    }
    lift(schema, components)
}

fn lift(schema: Value, components: &mut Map<String, Value>) -> Value {
    match schema
        .get("title")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        Some(name) => {
            let reference = json!({"$ref": format!("#/components/schemas/{name}")});
            components.insert(name, schema);
            reference
        }
        None => schema,
    }
}

fn operation(route: &Route, components: &mut Map<String, Value>) -> Value {
    let mut responses = Map::new();
    for answer in route.answers {
        let response = if answer.status >= 400 {
            message(answer.description)
        } else {
            let mut r = json!({"description": answer.description});
            if let Some(schema) = answer.schema {
                let mut media = json!({"schema": named(schema, components)});
                if let Some(example) = answer
                    .example
                    .and_then(|e| serde_json::from_str::<Value>(e).ok())
                {
                    media["example"] = example;
                }
                r["content"] = json!({"application/json": media});
            }
            r["headers"] =
                json!({"Cache-Control": {"schema": {"type": "string", "const": "no-store"}}});
            r
        };
        responses.insert(answer.status.to_string(), response);
    }
    if route.auth() == Auth::Jwt {
        responses.insert(
            "401".into(),
            json!({
                "description": UNAUTHORIZED,
                "headers": {"WWW-Authenticate": {"schema": {"type": "string", "pattern": "^Bearer"}}},
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/MessageResponse"}},
                },
            }),
        );
    }
    let mut op = json!({
        "operationId": super::pascal(&route.slug()),
        "summary": route.summary,
        "description": format!("Served by the Lambda function `{}`.", route.function),
        "responses": responses,
    });
    if !route.headers.is_empty() {
        let headers: Vec<Value> = route
            .headers
            .iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "in": "header",
                    "required": true,
                    "description": h.description,
                    "schema": serde_json::from_str::<Value>(h.schema).unwrap_or(Value::Null),
                })
            })
            .collect();
        op["parameters"] = Value::Array(headers);
    }
    if let Some(request) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": named(request, components)}},
        });
    }
    if route.auth() == Auth::Jwt {
        op["security"] = json!([{"CognitoJWT": route.scopes}]);
    }
    op
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firefly_schema_names_are_components_and_operations_refer_to_them() {
        let doc = document(crate::routes::ROUTES);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in [
            "MessageResponse",
            "RegistrationKeyCreateResponse",
            "RegistrationKeyListResponse",
            "RegistrationKeyRecord",
            "RegisterDeviceRequest",
            "DeviceRegistrationResponse",
            "HealthResponse",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        let paths = &doc["paths"];
        assert_eq!(
            paths["/registration-keys"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/RegistrationKeyListResponse"
        );
        assert_eq!(
            paths["/devices/register"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/RegisterDeviceRequest"
        );
        assert_eq!(
            schemas["RegistrationKeyListResponse"]["properties"]["registration_keys"]["items"]["$ref"],
            "#/components/schemas/RegistrationKeyRecord"
        );
        // FireFly's security scheme, on the JWT routes only.
        assert!(doc["components"]["securitySchemes"]["CognitoJWT"].is_object());
        assert!(paths["/health"]["get"].get("security").is_none());
        assert!(paths["/devices"]["get"]["security"][0]["CognitoJWT"].is_array());
    }
}
