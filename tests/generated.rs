//! Drift: every file that repeats the route table's facts is exactly what `firefly-gen`
//! writes from it, and the route table itself is sound.

use firefly_api::generate::{self, COMMAND, HEADER};
use firefly_api::route::Resource;
use firefly_api::routes::ROUTES;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn generated_files_are_up_to_date() {
    let mut stale = Vec::new();
    for output in generate::files(ROUTES).expect("the table is valid") {
        let current = std::fs::read_to_string(root().join(&output.path)).ok();
        let wanted = generate::apply(&output, current.as_deref()).unwrap();
        if current.as_deref() != Some(wanted.as_str()) {
            stale.push(output.path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `{COMMAND}` and commit the result"
    );
}

#[test]
fn no_route_manifest_is_left_without_its_route() {
    let wanted: Vec<String> = generate::files(ROUTES)
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    for entry in std::fs::read_dir(root().join("routes")).unwrap() {
        let rel = format!("routes/{}", entry.unwrap().file_name().to_string_lossy());
        assert!(
            wanted.contains(&rel),
            "{rel} belongs to no route in src/routes.rs: run `{COMMAND}`"
        );
    }
}

#[test]
fn whole_generated_files_say_they_are() {
    for output in generate::files(ROUTES).unwrap() {
        if let generate::Content::Whole(text) = &output.content {
            assert!(text.contains(HEADER), "{} lacks the header", output.path);
        }
    }
}

#[test]
fn every_route_uses_what_its_function_is_granted_and_nothing_is_wildcarded() {
    for route in ROUTES {
        assert!(!route.uses.is_empty() || route.env().is_empty());
        for u in route.uses {
            // Only the bucket whose notification invokes an S3 function may be listed for
            // its name alone (the permission's SourceArn): nothing is granted on it. A
            // value or a setting is never granted anything.
            let notifier = match route.trigger() {
                firefly_api::route::Trigger::S3(n) => n.bucket == u.resource,
                firefly_api::route::Trigger::Cognito(c) => c.pool == u.resource,
                firefly_api::route::Trigger::Api => false,
            };
            let value = matches!(
                u.resource,
                Resource::StackValue { .. } | Resource::Setting { .. }
            );
            assert!(
                !value || u.actions.is_empty(),
                "{}: actions on a value",
                route.key
            );
            assert!(
                !u.actions.is_empty() || notifier || value,
                "{}: a use without actions",
                route.key
            );
            for a in u.actions {
                assert!(!a.contains('*'), "{}: wildcard action {a}", route.key);
                let service = a.split(':').next().unwrap();
                let fits = match u.resource {
                    Resource::DynamoTable { .. } => service == "dynamodb",
                    Resource::Bucket { .. } => service == "s3",
                    Resource::Distribution { .. } => service == "cloudfront",
                    Resource::AppConfig | Resource::AppConfigApplications => service == "appconfig",
                    Resource::Functions => service == "lambda",
                    Resource::UserPool { .. } => service == "cognito-idp",
                    Resource::StackValue { .. } | Resource::Setting { .. } => false,
                };
                assert!(fits, "{}: {a} on {:?}", route.key, u.resource);
            }
        }
    }
}

#[test]
fn the_checker_names_bad_function_names() {
    use firefly_api::route::Route;
    static BAD: [Route; 1] = [Route::unbuilt("GET /x", "devices-get")];
    let err = generate::check(&BAD).unwrap_err();
    assert!(err.contains("firefly-func-api-<name>"), "{err}");
}
