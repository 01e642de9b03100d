//! `routes/*.json` and the code's route table must say the same thing, entry for entry.

use firefly_api::handlers::ROUTES;
use firefly_api::routing::RouteTable;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    route_key: String,
    handler: String,
    function: String,
    authorization: String,
    iam_actions: Vec<String>,
}

fn manifest() -> BTreeMap<String, (String, Entry)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("routes");
    let mut entries = BTreeMap::new();
    for file in std::fs::read_dir(&dir).expect("routes/ exists") {
        let path = file.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let entry: Entry =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let previous = entries.insert(entry.route_key.clone(), (name, entry));
        assert!(
            previous.is_none(),
            "two routes/ files declare the same route key"
        );
    }
    entries
}

/// `POST /registration-keys` → `registration-keys-post`: the file name a route key gets.
fn file_name(route_key: &str) -> String {
    let (method, path) = route_key.split_once(' ').unwrap();
    let path: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_matches(|c| c == '{' || c == '}' || c == '+')
                .to_owned()
        })
        .collect();
    format!("{}-{}", path.join("-"), method.to_ascii_lowercase())
}

#[test]
fn every_code_route_has_its_manifest_entry_and_they_agree() {
    let manifest = manifest();
    for route in ROUTES {
        let (name, entry) = manifest
            .get(route.key)
            .unwrap_or_else(|| panic!("{} is in the code but not in routes/", route.key));
        assert_eq!(*name, file_name(route.key), "file name for {}", route.key);
        assert_eq!(entry.handler, route.handler, "{}: handler", route.key);
        assert_eq!(entry.function, route.function, "{}: function", route.key);
        assert_eq!(
            entry.authorization,
            route.auth.as_str(),
            "{}: authorization",
            route.key
        );
        assert_eq!(
            entry.iam_actions, route.iam_actions,
            "{}: iamActions",
            route.key
        );
        let module = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/handlers")
            .join(&entry.handler);
        assert!(
            module.join("mod.rs").is_file(),
            "{}: no module {}",
            route.key,
            module.display()
        );
    }
}

#[test]
fn every_manifest_entry_is_in_the_code() {
    for (key, (name, _)) in manifest() {
        assert!(
            ROUTES.iter().any(|r| r.key == key),
            "routes/{name}.json declares {key}, which the code's table lacks"
        );
    }
}

#[test]
fn the_table_builds() {
    RouteTable::new(ROUTES).expect("valid table");
    assert!(!ROUTES.is_empty());
}

#[test]
fn file_names_follow_the_route_key() {
    assert_eq!(
        file_name("POST /registration-keys"),
        "registration-keys-post"
    );
    assert_eq!(file_name("GET /devices/{deviceId}"), "devices-deviceId-get");
    assert_eq!(file_name("GET /files/{proxy+}"), "files-proxy-get");
}
