//! An HTTP request as API Gateway (HTTP API, payload 2.0) hands it to a function: the route
//! API Gateway would choose, and the event it would send.

use crate::route::Route;
use base64::Engine;
use lambda_http::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The route API Gateway chooses for `method` and `path`, with its path parameters.
#[derive(Debug, PartialEq)]
pub struct Selected {
    pub index: usize,
    pub params: Vec<(String, String)>,
}

/// As API Gateway chooses: among routes whose path matches and whose method is the
/// request's or `ANY`, the most specific path wins (no greedy `{proxy+}` over greedy, then
/// more literal segments), then the exact method over `ANY`. No match: `None` (there is no
/// `$default` route in the table; API Gateway answers 404 `{"message":"Not Found"}`).
pub fn select(routes: &[Route], method: &str, path: &str) -> Option<Selected> {
    let mut best: Option<((bool, usize, bool), Selected)> = None;
    for (index, route) in routes.iter().enumerate() {
        let m = route.method();
        if m != method && m != "ANY" {
            continue;
        }
        let Some((literals, greedy, params)) = match_path(route.path(), path) else {
            continue;
        };
        let rank = (!greedy, literals, m == method);
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, Selected { index, params }));
        }
    }
    best.map(|(_, s)| s)
}

/// A path's match: literal segments matched, whether a greedy `{proxy+}` took the rest,
/// and the parameters.
type PathMatch = (usize, bool, Vec<(String, String)>);

/// Matches a route path template against a request path. Parameters are percent-decoded,
/// as API Gateway passes them.
fn match_path(template: &str, path: &str) -> Option<PathMatch> {
    let t: Vec<&str> = template.split('/').skip(1).collect();
    let p: Vec<&str> = path.split('/').skip(1).collect();
    let mut params = Vec::new();
    let mut literals = 0;
    for (i, seg) in t.iter().enumerate() {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            let rest = p
                .get(i..)
                .filter(|r| !r.is_empty() && !r.join("/").is_empty())?;
            params.push((name.to_owned(), percent_decode(&rest.join("/"))));
            return Some((literals, true, params));
        }
        let actual = p.get(i)?;
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !actual.is_empty() => {
                params.push((name.to_owned(), percent_decode(actual)));
            }
            Some(_) => return None,
            None if seg == actual => literals += 1,
            None => return None,
        }
    }
    (t.len() == p.len()).then_some((literals, false, params))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What API Gateway's JWT authorizer adds to the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwtContext {
    pub claims: Map<String, Value>,
    pub scopes: Option<Vec<String>>,
}

/// Everything about one request that the event needs.
pub struct HttpRequest<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: &'a str,
    /// API Gateway's `requestContext.requestId`.
    pub request_id: &'a str,
    pub now: SystemTime,
}

/// The payload 2.0 event for `req`, routed to `route` with `params` (`None`: `$default`).
pub fn event(
    req: &HttpRequest<'_>,
    route: Option<(&Route, &[(String, String)])>,
    jwt: Option<&JwtContext>,
) -> Value {
    let route_key = route.map_or("$default", |(r, _)| r.key);
    let path = req.uri.path();
    let raw_query = req.uri.query().unwrap_or("");
    // API Gateway lowercases header names and joins repeated headers with commas; the
    // cookie header becomes the `cookies` array.
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (name, value) in req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name.as_str() == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_owned())),
            );
            continue;
        }
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(value));
            }
        }
    }
    let mut query = Map::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (
            percent_decode(&k.replace('+', " ")),
            percent_decode(&v.replace('+', " ")),
        );
        match query.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let millis = req
        .now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let header = |name: &str| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let host = header("host");
    let (body, base64) = body_of(req.body, &header("content-type"));
    let mut context = json!({
        "accountId": "anonymous",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(""),
        "http": {
            "method": req.method.as_str(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": req.source_ip,
            "userAgent": header("user-agent"),
        },
        "requestId": req.request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": clf_time(millis),
        "timeEpoch": millis,
    });
    if let Some(jwt) = jwt {
        let claims: Map<String, Value> = jwt
            .claims
            .iter()
            .filter_map(|(k, v)| stringify_claim(v).map(|s| (k.clone(), Value::String(s))))
            .collect();
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": jwt.scopes}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if let Some((_, params)) = route.filter(|(_, p)| !p.is_empty()) {
        let params: Map<String, Value> = params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        event["pathParameters"] = Value::Object(params);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body);
    }
    event
}

/// The body as API Gateway passes it: text as is, anything else base64-encoded.
fn body_of(body: &[u8], content_type: &str) -> (Option<String>, bool) {
    if body.is_empty() {
        return (None, false);
    }
    let ct = content_type.to_ascii_lowercase();
    let textual = ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded");
    match std::str::from_utf8(body) {
        Ok(text) if textual => (Some(text.to_owned()), false),
        _ => (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    }
}

/// A claim as API Gateway's JWT authorizer passes it: every value a string; arrays as
/// `[a b c]`, objects as `map[k:v]`, like the authorizer does. Null claims are dropped.
pub fn stringify_claim(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .filter_map(stringify_claim)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Value::Object(map) => {
            let mut parts: Vec<String> = map
                .iter()
                .filter_map(|(k, v)| stringify_claim(v).map(|s| format!("{k}:{s}")))
                .collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
    })
}

/// `26/Nov/2026:22:13:11 +0000`: `requestContext.time`, in the access log's format.
fn clf_time(millis: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let iso = crate::clock::rfc3339(millis.div_euclid(1000));
    let (y, rest) = iso.split_at(4);
    let month: usize = rest[1..3].parse().unwrap_or(1);
    format!(
        "{}/{}/{y}:{} +0000",
        &rest[4..6],
        MONTHS[month.clamp(1, 12) - 1],
        &rest[7..15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use lambda_http::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn build(method: &str, uri: &str, h: &HeaderMap, body: &[u8]) -> Value {
        let method: Method = method.parse().unwrap();
        let uri: Uri = uri.parse().unwrap();
        let req = HttpRequest {
            method: &method,
            uri: &uri,
            headers: h,
            body,
            source_ip: "127.0.0.1",
            request_id: "Cq2bTjk9joEEMhQ=",
            now: UNIX_EPOCH + std::time::Duration::from_millis(1_795_731_191_042),
        };
        let selected = select(ROUTES, method.as_str(), uri.path());
        let route = selected
            .as_ref()
            .map(|s| (&ROUTES[s.index], s.params.as_slice()));
        event(&req, route, None)
    }

    fn post() -> Value {
        build(
            "POST",
            "/registration-keys?a=1&b=x%20y&a=2",
            &headers(&[
                ("Host", "localhost:3000"),
                ("User-Agent", "curl/8"),
                ("X-Multi", "one"),
                ("X-Multi", "two"),
                ("Cookie", "s=1; t=2"),
            ]),
            b"",
        )
    }

    #[test]
    fn version_route_key_and_raw_path() {
        let e = post();
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "POST /registration-keys");
        assert_eq!(e["rawPath"], "/registration-keys");
        assert_eq!(e["requestContext"]["routeKey"], "POST /registration-keys");
    }

    #[test]
    fn raw_query_string_and_parameters() {
        let e = post();
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2");
        assert_eq!(e["queryStringParameters"]["a"], "1,2");
        assert_eq!(e["queryStringParameters"]["b"], "x y");
    }

    #[test]
    fn headers_are_lowercased_and_repeats_joined_with_commas() {
        let e = post();
        assert_eq!(e["headers"]["user-agent"], "curl/8");
        assert_eq!(e["headers"]["x-multi"], "one,two");
        assert!(e["headers"].get("User-Agent").is_none());
        assert!(e["headers"].get("cookie").is_none());
    }

    #[test]
    fn cookies_are_an_array() {
        assert_eq!(post()["cookies"], json!(["s=1", "t=2"]));
    }

    #[test]
    fn path_parameters_are_decoded_and_absent_without_any() {
        let e = build("DELETE", "/registration-keys/7kq%32mx", &headers(&[]), b"");
        assert_eq!(e["routeKey"], "DELETE /registration-keys/{registrationKey}");
        assert_eq!(e["pathParameters"]["registrationKey"], "7kq2mx");
        assert!(post().get("pathParameters").is_none());
    }

    #[test]
    fn request_context_http_source_ip_request_id_stage_and_time() {
        let e = post();
        let c = &e["requestContext"];
        assert_eq!(c["http"]["method"], "POST");
        assert_eq!(c["http"]["path"], "/registration-keys");
        assert_eq!(c["http"]["protocol"], "HTTP/1.1");
        assert_eq!(c["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(c["http"]["userAgent"], "curl/8");
        assert_eq!(c["requestId"], "Cq2bTjk9joEEMhQ=");
        assert_eq!(c["stage"], "$default");
        assert_eq!(c["timeEpoch"], 1_795_731_191_042i64);
        assert_eq!(c["time"], "26/Nov/2026:22:13:11 +0000");
        assert_eq!(c["domainName"], "localhost:3000");
    }

    #[test]
    fn text_bodies_pass_as_is_and_binary_ones_in_base64() {
        let h = headers(&[("content-type", "application/json")]);
        let e = build("POST", "/registration-keys", &h, br#"{"a":1}"#);
        assert_eq!(e["body"], r#"{"a":1}"#);
        assert_eq!(e["isBase64Encoded"], false);
        let h = headers(&[("content-type", "application/octet-stream")]);
        let e = build("POST", "/registration-keys", &h, &[0, 159, 146, 150]);
        assert_eq!(e["body"], "AJ+Slg==");
        assert_eq!(e["isBase64Encoded"], true);
        let e = build("POST", "/registration-keys", &headers(&[]), b"");
        assert!(e.get("body").is_none());
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn the_event_is_what_the_lambda_types_read() {
        let e: ApiGatewayV2httpRequest = serde_json::from_value(post()).unwrap();
        assert_eq!(e.route_key.as_deref(), Some("POST /registration-keys"));
        assert_eq!(e.request_context.http.method, Method::POST);
    }

    #[test]
    fn claims_are_stringified_as_the_jwt_authorizer_does() {
        let jwt = JwtContext {
            claims: json!({"sub": "u", "exp": 1795733600, "email_verified": true,
                           "cognito:groups": ["admins", "users"], "address": {"b": 2, "a": "x"},
                           "gone": null})
            .as_object()
            .unwrap()
            .clone(),
            scopes: Some(vec!["keys/write".into()]),
        };
        let method = Method::POST;
        let uri: Uri = "/registration-keys".parse().unwrap();
        let h = headers(&[]);
        let req = HttpRequest {
            method: &method,
            uri: &uri,
            headers: &h,
            body: b"",
            source_ip: "127.0.0.1",
            request_id: "r",
            now: UNIX_EPOCH,
        };
        let e = event(&req, Some((&ROUTES[0], &[])), Some(&jwt));
        let claims = &e["requestContext"]["authorizer"]["jwt"]["claims"];
        assert_eq!(claims["sub"], "u");
        assert_eq!(claims["exp"], "1795733600");
        assert_eq!(claims["email_verified"], "true");
        assert_eq!(claims["cognito:groups"], "[admins users]");
        assert_eq!(claims["address"], "map[a:x b:2]");
        assert!(claims.get("gone").is_none());
        assert_eq!(
            e["requestContext"]["authorizer"]["jwt"]["scopes"],
            json!(["keys/write"])
        );
    }

    #[test]
    fn route_selection_prefers_specific_paths_then_exact_methods() {
        const fn r(key: &'static str) -> Route {
            Route::unbuilt(key, "f")
        }
        static T: [Route; 5] = [
            r("GET /files/{proxy+}"),
            r("GET /files/{name}"),
            r("GET /files/readme"),
            r("ANY /files/readme"),
            r("ANY /echo"),
        ];
        let key = |m: &str, p: &str| select(&T, m, p).map(|s| T[s.index].key);
        assert_eq!(key("GET", "/files/readme"), Some("GET /files/readme"));
        assert_eq!(key("POST", "/files/readme"), Some("ANY /files/readme"));
        assert_eq!(key("GET", "/files/other"), Some("GET /files/{name}"));
        assert_eq!(key("GET", "/files/a/b"), Some("GET /files/{proxy+}"));
        assert_eq!(key("DELETE", "/echo"), Some("ANY /echo"));
        assert_eq!(key("GET", "/files"), None);
        assert_eq!(key("GET", "/files/"), None);
        assert_eq!(key("GET", "/nope"), None);
        let s = select(&T, "GET", "/files/a/b%20c").unwrap();
        assert_eq!(s.params, [("proxy".to_string(), "a/b c".to_string())]);
    }
}
