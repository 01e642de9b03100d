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
    for route in routes {
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
        item[route.method().to_ascii_lowercase()] = operation(route);
    }
    json!({
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
                "cognito": {
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
                "GatewayMessage": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {"message": {"type": "string"}},
                    "description": "An answer of API Gateway itself (its authorizer, or no route)",
                },
            },
        },
    })
}

fn message(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MessageResponse"}}},
    })
}

fn operation(route: &Route) -> Value {
    let mut responses = Map::new();
    for answer in route.answers {
        let response = if answer.status >= 400 {
            message(answer.description)
        } else {
            let mut r = json!({"description": answer.description});
            if let Some(schema) = answer.schema {
                let schema: Value = serde_json::from_str(schema).unwrap_or(Value::Null);
                let mut media = json!({"schema": schema});
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
    if route.auth() == Auth::Jwt {
        op["security"] = json!([{"cognito": route.scopes}]);
    }
    op
}
