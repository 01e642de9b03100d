//! The route table: API Gateway route keys to handlers, and which function serves each.
//!
//! Events with a concrete `routeKey` (`POST /registration-keys`) are dispatched by that key
//! alone; their path is never re-parsed, so stage prefixes and custom-domain base paths
//! cannot change which handler runs. Only `$default` events (a catch-all route, a function
//! URL, `cargo lambda watch`) are matched by method and path, with matchit.

use crate::route::Route;
use std::collections::{BTreeMap, HashMap};

/// The outcome of looking up an event.
#[derive(Debug)]
pub enum Resolved<'t> {
    Found {
        route: &'t Route,
        /// The route's position in the table (the app keeps its handler there).
        index: usize,
        /// Path parameters: from matchit for `$default`, else API Gateway's `pathParameters`.
        params: Vec<(String, String)>,
    },
    /// The path exists, not with this method; the value is the `Allow` header.
    MethodNotAllowed(String),
    /// The key is another function's route (API Gateway wired it here by mistake).
    Elsewhere(&'t Route),
    NotFound,
}

/// A table that failed to build: a programming error, caught by the unit tests.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("route table: {0}")]
pub struct TableError(pub String);

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub struct RouteTable {
    routes: &'static [Route],
    /// Route key → index into `routes`: dispatch by key costs the same for 2 routes or 200.
    by_key: HashMap<&'static str, usize>,
    /// Path template → (method, index into `routes`), for `$default` events and for the
    /// `Allow` header.
    paths: matchit::Router<Vec<(&'static str, usize)>>,
    /// Keyed by API Gateway's path template, the same paths as `paths`.
    templates: BTreeMap<&'static str, Vec<(&'static str, usize)>>,
}

impl RouteTable {
    /// The table of every route (a local run of the whole API; the generator's check).
    pub fn new(routes: &'static [Route]) -> Result<Self, TableError> {
        Self::serving(routes, |_| true)
    }

    /// The table of the routes `serves` keeps (one Lambda function's): only they are
    /// indexed, so a function's start-up pays for its own routes, not the whole table's.
    /// Indices still point into `routes`; another function's key resolves to
    /// [`Resolved::Elsewhere`].
    pub fn serving(
        routes: &'static [Route],
        serves: impl Fn(&Route) -> bool,
    ) -> Result<Self, TableError> {
        let mut templates: BTreeMap<&'static str, Vec<(&'static str, usize)>> = BTreeMap::new();
        let mut by_key = HashMap::new();
        // Entries that are not API routes (S3 functions) are never routed.
        let api = |r: &Route| r.kind() == crate::route::Kind::Api;
        for (i, route) in routes
            .iter()
            .enumerate()
            .filter(|(_, r)| api(r) && serves(r))
        {
            by_key.insert(route.key, i);
            let (method, path) = route
                .key
                .split_once(' ')
                .ok_or_else(|| TableError(format!("{:?} is not METHOD /path", route.key)))?;
            if !METHODS.contains(&method) && method != "ANY" {
                return Err(TableError(format!(
                    "{}: unknown method {method}",
                    route.key
                )));
            }
            if !path.starts_with('/') {
                return Err(TableError(format!("{}: path must start with /", route.key)));
            }
            let methods = templates.entry(path).or_default();
            if methods.iter().any(|(m, _)| *m == method) {
                return Err(TableError(format!("{} is listed twice", route.key)));
            }
            methods.push((method, i));
        }
        let mut paths = matchit::Router::new();
        for (template, methods) in &templates {
            paths
                .insert(to_matchit(template), methods.clone())
                .map_err(|e| TableError(format!("{template}: {e}")))?;
        }
        Ok(Self {
            routes,
            by_key,
            paths,
            templates,
        })
    }

    pub fn routes(&self) -> &'static [Route] {
        self.routes
    }

    /// Looks up an event by its route key, method and raw path.
    pub fn resolve(
        &self,
        route_key: &str,
        method: &str,
        raw_path: &str,
        path_parameters: impl FnOnce() -> Vec<(String, String)>,
    ) -> Resolved<'_> {
        if route_key != "$default" {
            return self.resolve_key(route_key, path_parameters);
        }
        match self.paths.at(raw_path) {
            Ok(m) => match pick(m.value, method) {
                Some(i) => Resolved::Found {
                    route: &self.routes[i],
                    index: i,
                    params: m
                        .params
                        .iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                },
                None => Resolved::MethodNotAllowed(allow(m.value)),
            },
            Err(_) => Resolved::NotFound,
        }
    }

    fn resolve_key(
        &self,
        route_key: &str,
        path_parameters: impl FnOnce() -> Vec<(String, String)>,
    ) -> Resolved<'_> {
        if let Some(&index) = self.by_key.get(route_key) {
            return Resolved::Found {
                route: &self.routes[index],
                index,
                params: path_parameters(),
            };
        }
        // Another function's route: found by a scan, on this (wrong) path only.
        if let Some(route) = self
            .routes
            .iter()
            .find(|r| r.key == route_key && r.kind() == crate::route::Kind::Api)
        {
            return Resolved::Elsewhere(route);
        }
        // A route key nobody serves, on a path we do: API Gateway wired a method we lack.
        match route_key
            .split_once(' ')
            .and_then(|(_, path)| self.templates.get(path))
        {
            Some(methods) => Resolved::MethodNotAllowed(allow(methods)),
            None => Resolved::NotFound,
        }
    }
}

fn pick(methods: &[(&str, usize)], method: &str) -> Option<usize> {
    let exact = methods.iter().find(|(m, _)| *m == method);
    // HEAD is answered by GET where no HEAD route exists, as HTTP expects.
    let head = (method == "HEAD")
        .then(|| methods.iter().find(|(m, _)| *m == "GET"))
        .flatten();
    let any = methods.iter().find(|(m, _)| *m == "ANY");
    exact.or(head).or(any).map(|(_, i)| *i)
}

fn allow(methods: &[(&str, usize)]) -> String {
    let mut names: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
    if names.contains(&"ANY") {
        names = METHODS.to_vec();
    }
    names.sort_unstable();
    names.join(", ")
}

/// API Gateway's `{name}` is matchit's `{name}`; its greedy `{name+}` is matchit's `{*name}`.
fn to_matchit(template: &str) -> String {
    template
        .split('/')
        .map(
            |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                Some(name) => format!("{{*{name}}}"),
                None => seg.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Strips an API Gateway stage from a `$default` event's raw path: on a named stage the raw
/// path starts with `/{stage}`, which is not part of any route.
pub fn strip_stage<'p>(raw_path: &'p str, stage: Option<&str>) -> &'p str {
    match stage {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            match raw_path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(stage))
            {
                Some("") => "/",
                Some(rest) if rest.starts_with('/') => rest,
                _ => raw_path,
            }
        }
        _ => raw_path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn route(key: &'static str) -> Route {
        Route::unbuilt(key, "f")
    }

    static ROUTES: [Route; 6] = [
        route("POST /registration-keys"),
        route("GET /devices/{deviceId}"),
        route("DELETE /devices/{deviceId}"),
        route("GET /files/{proxy+}"),
        route("ANY /echo"),
        route("GET /devices/{deviceId}/status"),
    ];

    fn table() -> RouteTable {
        RouteTable::new(&ROUTES).unwrap()
    }

    fn found(r: Resolved<'_>) -> (&'static str, Vec<(String, String)>) {
        match r {
            Resolved::Found { route, params, .. } => (route.key, params),
            other => panic!("expected Found, got {other:?}"),
        }
    }

    #[test]
    fn a_function_indexes_only_its_own_routes() {
        static SPLIT: [Route; 3] = [
            Route::unbuilt("GET /devices/{uuid}/backup", "get"),
            Route::unbuilt("POST /devices/{uuid}/backup", "post"),
            Route::unbuilt("GET /health", "health"),
        ];
        let t = RouteTable::serving(&SPLIT, |r| r.function == "get").unwrap();
        assert_eq!(t.by_key.len(), 1);
        assert_eq!(t.templates.len(), 1);
        let r = t.resolve("GET /devices/{uuid}/backup", "GET", "/x", none);
        assert!(matches!(r, Resolved::Found { index: 0, .. }), "{r:?}");
        // A sibling's key, and another path's: named as another function's, never a 405.
        for key in ["POST /devices/{uuid}/backup", "GET /health"] {
            let r = t.resolve(key, "GET", "/x", none);
            assert!(
                matches!(r, Resolved::Elsewhere(route) if route.key == key),
                "{r:?}"
            );
        }
        assert!(matches!(
            t.resolve("PUT /devices/{uuid}/backup", "PUT", "/x", none),
            Resolved::MethodNotAllowed(allow) if allow == "GET"
        ));
        // `$default` events match only its own paths.
        assert!(matches!(
            t.resolve("$default", "GET", "/health", none),
            Resolved::NotFound
        ));
    }

    fn none() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn concrete_route_keys_dispatch_by_key_not_path() {
        let t = table();
        // The raw path is a stage-prefixed mess; the key decides.
        let (key, _) = found(t.resolve("POST /registration-keys", "POST", "/prod/x", none));
        assert_eq!(key, "POST /registration-keys");
        let (key, params) = found(t.resolve("GET /devices/{deviceId}", "GET", "/", || {
            vec![("deviceId".into(), "d1".into())]
        }));
        assert_eq!(key, "GET /devices/{deviceId}");
        assert_eq!(params, [("deviceId".to_string(), "d1".to_string())]);
    }

    #[test]
    fn unknown_route_keys_are_404_or_405() {
        let t = table();
        assert!(matches!(
            t.resolve("GET /nope", "GET", "/nope", none),
            Resolved::NotFound
        ));
        assert!(matches!(
            t.resolve("garbage", "GET", "/", none),
            Resolved::NotFound
        ));
        match t.resolve("GET /registration-keys", "GET", "/registration-keys", none) {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, "POST"),
            other => panic!("{other:?}"),
        }
        match t.resolve("PUT /devices/{deviceId}", "PUT", "/", none) {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, "DELETE, GET"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn default_events_match_method_and_path() {
        let t = table();
        let (key, params) = found(t.resolve("$default", "POST", "/registration-keys", none));
        assert_eq!(key, "POST /registration-keys");
        assert!(params.is_empty());
        let (key, params) = found(t.resolve("$default", "DELETE", "/devices/abc", none));
        assert_eq!(key, "DELETE /devices/{deviceId}");
        assert_eq!(params, [("deviceId".to_string(), "abc".to_string())]);
        let (key, params) = found(t.resolve("$default", "GET", "/devices/abc/status", none));
        assert_eq!(key, "GET /devices/{deviceId}/status");
        assert_eq!(params[0].1, "abc");
    }

    #[test]
    fn greedy_proxy_parameters_take_the_rest_of_the_path() {
        let t = table();
        let (key, params) = found(t.resolve("$default", "GET", "/files/a/b/c.txt", none));
        assert_eq!(key, "GET /files/{proxy+}");
        assert_eq!(params, [("proxy".to_string(), "a/b/c.txt".to_string())]);
    }

    #[test]
    fn default_events_405_with_allow_and_404() {
        let t = table();
        match t.resolve("$default", "GET", "/registration-keys", none) {
            Resolved::MethodNotAllowed(allow) => assert_eq!(allow, "POST"),
            other => panic!("{other:?}"),
        }
        for path in ["/", "/registration-keys/x", "/registration", "/devices", ""] {
            assert!(
                matches!(
                    t.resolve("$default", "POST", path, none),
                    Resolved::NotFound
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn head_falls_back_to_get_and_any_takes_every_method() {
        let t = table();
        let (key, _) = found(t.resolve("$default", "HEAD", "/devices/x", none));
        assert_eq!(key, "GET /devices/{deviceId}");
        for m in METHODS {
            let (key, _) = found(t.resolve("$default", m, "/echo", none));
            assert_eq!(key, "ANY /echo");
        }
    }

    #[test]
    fn bad_tables_are_refused() {
        static DUP: [Route; 2] = [route("GET /a"), route("GET /a")];
        static BAD_METHOD: [Route; 1] = [route("FETCH /a")];
        static NO_SPACE: [Route; 1] = [route("/a")];
        static REL: [Route; 1] = [route("GET a")];
        for t in [&DUP[..], &BAD_METHOD, &NO_SPACE, &REL] {
            assert!(RouteTable::new(t).is_err());
        }
    }

    #[test]
    fn stage_prefix_is_stripped_only_for_named_stages() {
        assert_eq!(
            strip_stage("/prod/registration-keys", Some("prod")),
            "/registration-keys"
        );
        assert_eq!(strip_stage("/prod", Some("prod")), "/");
        assert_eq!(strip_stage("/production/x", Some("prod")), "/production/x");
        assert_eq!(
            strip_stage("/registration-keys", Some("$default")),
            "/registration-keys"
        );
        assert_eq!(
            strip_stage("/registration-keys", None),
            "/registration-keys"
        );
    }

    #[test]
    fn proxy_templates_translate_to_matchit_catch_alls() {
        assert_eq!(to_matchit("/files/{proxy+}"), "/files/{*proxy}");
        assert_eq!(to_matchit("/a/{id}/b"), "/a/{id}/b");
    }
}
