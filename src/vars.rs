//! Every environment variable the binary reads, written once: its name, what it means, its
//! default and which module reads it. The readers name their variables through these
//! constants, and `firefly-gen` writes docs/configuration.md's table from [`ALL`] (as
//! ripgrep's flag definitions write its man page).

/// One variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    pub meaning: &'static str,
    /// What holds when it is unset (`-`: nothing; the meaning says what happens).
    pub default: &'static str,
    /// The module that reads it.
    pub read_by: &'static str,
}

macro_rules! vars {
    ($($id:ident => ($meaning:expr, $default:expr, $read_by:expr);)*) => {
        $(
            pub const $id: Var = Var {
                name: stringify!($id),
                meaning: $meaning,
                default: $default,
                read_by: $read_by,
            };
        )*
        /// Every variable, in the order the documentation lists them.
        pub const ALL: &[Var] = &[$($id),*];
    };
}

vars! {
    AWS_LAMBDA_FUNCTION_NAME => ("Set by Lambda. The function serves only its own routes; another function's route answers 404 and logs a misrouting error. Also the AppConfig application and every log line's `logger`.", "-", "app, config, main");
    FIREFLY_FUNCTION_NAME => ("Overrides `AWS_LAMBDA_FUNCTION_NAME` for local runs (`cargo lambda watch` names the function after the binary).", "-", "app, config, main");
    DYNAMODB_REGISTRATION_KEYS_TABLE_NAME => ("FireFly's registration-keys table (`firefly-registration-keys`), for the functions whose routes use it. A function reads only the variables its own routes declare; missing, a start-up error names the route that needs it, never a fallback.", "-", "registration_keys, devices");
    DYNAMODB_DEVICES_TABLE_NAME => ("FireFly's devices table (`firefly-devices`), for the device routes.", "-", "devices");
    DYNAMODB_USERS_TABLE_NAME => ("FireFly's invitations table (`firefly-users`: `email`, `invited_by`, `created_at`, `expires_at`), for the users functions and the pre-sign-up trigger.", "-", "users");
    COGNITO_USER_POOL_ID => ("FireFly's user pool (template parameter `UserPoolId`, the output `UserPoolId` of FireFly's `firefly-cognito` stack): the pool whose trigger the pre-sign-up function is.", "-", "users");
    DYNAMODB_FIRMWARE_TABLE_NAME => ("FireFly's firmware table (`firefly-firmware`), for the firmware routes.", "-", "firmware");
    S3_BACKUP_BUCKET_NAME => ("FireFly's device-backup bucket (template parameter `BackupBucketName`, the output `BucketName` of FireFly's `firefly-s3-device-backups` stack), for the backup routes.", "-", "backups");
    S3_FIRMWARE_PRIVATE_BUCKET_NAME => ("FireFly's private firmware bucket (template parameter `FirmwareBucketName`, the output `BucketName` of FireFly's `firefly-s3-firmware` stack), for the firmware ingest functions.", "-", "firmware");
    S3_FIRMWARE_PUBLIC_BUCKET_NAME => ("FireFly's public firmware bucket (template parameter `FirmwarePublicBucketName`, the output `BucketName` of FireFly's `firefly-s3-firmware-public` stack), where released files live: the ingest moves a replaced debug build's files to `revoked/`.", "-", "firmware");
    CLOUDFRONT_DISTRIBUTION_ID => ("The CloudFront distribution in front of the public firmware bucket (template parameter `CloudFrontDistributionId`, the output `DistributionId` of FireFly's `firefly-cloudfront-firmware` stack): invalidated when public files move.", "-", "firmware");
    CLOUDFRONT_DOMAIN => ("The domain OTA's binary URLs name (`https://<domain>/<class>/<hex>/<app>/<version>/<file>`): FireFly's firmware domain (template parameter `CloudFrontDomain`, the output `FirmwareDomain` of FireFly's `firefly-cloudfront-firmware` stack).", "-", "firmware");
    ENVIRONMENT_NAME => ("`dev` or `production` (template parameter `EnvironmentName`, from the deploying job's `ENVIRONMENT_NAME`, else `production`): in production the debug build (`9999.99.99`) is never released.", "production", "firmware");
    FIREFLY_STORE => ("`dynamodb`, or `memory` (local runs only, refused inside a Lambda sandbox; data vanishes with the process): every feature's store at once.", "dynamodb", "app");
    AWS_LAMBDA_INITIALIZATION_TYPE => ("Set by Lambda; its presence marks a Lambda sandbox (where `FIREFLY_STORE=memory` is refused).", "-", "app");
    LAMBDA_TASK_ROOT => ("Set by Lambda; as `AWS_LAMBDA_INITIALIZATION_TYPE`.", "-", "app");
    AWS_REGION => ("Set by Lambda: the DynamoDB client's region.", "-", "aws");
    AWS_DEFAULT_REGION => ("Read when `AWS_REGION` is unset (local runs).", "-", "aws");
    AWS_ENDPOINT_URL_DYNAMODB => ("A local DynamoDB-API server: `https://`, or `http://` on a loopback host only; a URL with user information is refused.", "DynamoDB's regional endpoint", "aws");
    AWS_ENDPOINT_URL_S3 => ("A local S3-API server (moto), path-style: `https://`, or `http://` on a loopback host only.", "S3's regional endpoint (virtual-hosted)", "aws");
    AWS_ENDPOINT_URL_CLOUDFRONT => ("A local stand-in of CloudFront's API: `https://`, or `http://` on a loopback host only.", "CloudFront's global endpoint", "aws");
    AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER => ("A local stand-in of Cognito's user-pool API (moto's server): `https://`, or `http://` on a loopback host only.", "Cognito's regional endpoint", "aws");
    AWS_ENDPOINT_URL_APPCONFIG => ("A stand-in of AppConfig's API (firefly-local's own, or a test's): `https://`, or `http://` on a loopback host only.", "AppConfig's regional endpoint", "aws");
    AWS_ENDPOINT_URL_LAMBDA => ("A stand-in of Lambda's API (firefly-local's own, or a test's), as `AWS_ENDPOINT_URL_APPCONFIG`.", "Lambda's regional endpoint", "aws");
    AWS_ACCESS_KEY_ID => ("Set by Lambda (the role's credentials): S3 requests are signed with them; the DynamoDB client reads them too.", "-", "aws");
    AWS_SECRET_ACCESS_KEY => ("Set by Lambda, with `AWS_ACCESS_KEY_ID`.", "-", "aws");
    AWS_SESSION_TOKEN => ("Set by Lambda, with `AWS_ACCESS_KEY_ID`.", "-", "aws");
    AWS_ENDPOINT_URL => ("As `AWS_ENDPOINT_URL_DYNAMODB`, for every service.", "-", "aws");
    FIREFLY_ALLOW_PLAINTEXT_ENDPOINT => ("`true` accepts an `http://` DynamoDB endpoint on another host (DynamoDB Local on a container network); never a plaintext JWKS.", "false", "aws");
    AWS_USE_FIPS_ENDPOINT => ("`true`/`false`, honoured by the DynamoDB client's endpoint resolution; any other value stops the start.", "-", "aws");
    AWS_USE_DUALSTACK_ENDPOINT => ("As `AWS_USE_FIPS_ENDPOINT`, for dual-stack endpoints.", "-", "aws");
    FIREFLY_EXTRA_CA_FILE => ("PEM certificates trusted besides the embedded AWS roots (a local TLS server).", "-", "aws");
    APP_CONFIG_ENV => ("FireFly's AppConfig environment (template parameter `AppConfigEnvironment`). Set: the `features` profile (our settings) and the `logging` profile (the level, as FireFly's console sets it) of the application named as the function, through the AppConfig extension. Unset: the built-in defaults, which behave as FireFly's functions do.", "-", "config, main");
    AWS_APPCONFIG_EXTENSION_HTTP_PORT => ("The AppConfig extension's port.", "2772", "config");
    FIREFLY_APPCONFIG_TIMEOUT_MS => ("How long a read from the AppConfig extension may take (1 to 1000).", "250", "config");
    FIREFLY_CONFIG_CACHE_SECONDS => ("How long settings are reused before the extension is asked again (0 to 3600).", "15", "config");
    FIREFLY_CONFIG_FILE => ("Local runs: a `features`-style profile file instead of AppConfig, read again when it changes (`firefly-local serve --config`, `firefly-local invoke`).", "-", "config");
    FIREFLY_METRICS_NAMESPACE => ("The EMF namespace (template parameter `MetricsNamespace`).", "Firefly", "telemetry");
    AWS_LAMBDA_LOG_LEVEL => ("The log level when there is no `logging` profile (no `APP_CONFIG_ENV`). Dependencies never log below INFO (their DEBUG lines carry payloads).", "INFO", "telemetry");
    RUST_LOG => ("Read when `AWS_LAMBDA_LOG_LEVEL` is unset (its bare level).", "-", "telemetry");
    AWS_LAMBDA_RUNTIME_API => ("Set by Lambda: the Runtime API the process polls; without it, `bootstrap` says to use `firefly-local invoke`.", "-", "main");
    AWS_LAMBDA_FUNCTION_VERSION => ("Set by Lambda (the runtime needs it).", "-", "main");
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE => ("Set by Lambda (the runtime needs it).", "-", "main");
    FIREFLY_TEST_NOW => ("Tests only (`test-hooks` builds, never deployed): the clock, epoch seconds.", "-", "test_hooks");
    FIREFLY_TEST_KEYS => ("Tests only (`test-hooks` builds): the next keys drawn, comma-separated.", "-", "test_hooks");
}

/// The Markdown table of [`ALL`] (docs/configuration.md).
pub fn table() -> Vec<String> {
    let mut lines = vec![
        "| Variable | Meaning | Default | Read by |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    for v in ALL {
        lines.push(format!(
            "| `{}` | {} | {} | `{}` |",
            v.name,
            v.meaning,
            if v.default == "-" {
                "-".to_owned()
            } else {
                format!("`{}`", v.default)
            },
            v.read_by
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_once_and_every_resource_variable_listed() {
        let mut names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a variable listed twice");
        // What the routes' resources give a function is documented here too.
        for route in crate::routes::ROUTES {
            for (name, _) in route.env() {
                assert!(
                    names.contains(&name),
                    "{name} ({}) is not in vars::ALL",
                    route.key
                );
            }
        }
    }

    #[test]
    fn no_module_names_a_variable_the_list_lacks() {
        // Every `FOO_BAR` string literal passed to an environment look-up in src/ is a
        // listed variable: scan the sources for `env("...")`.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root];
        let listed: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (i, _) in text.match_indices("env(\"") {
                        let rest = &text[i + 5..];
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                            .collect();
                        if name.len() > 3 && rest[name.len()..].starts_with('"') {
                            assert!(
                                listed.contains(&name.as_str()),
                                "{}: reads {name}, which vars::ALL lacks",
                                path.display()
                            );
                        }
                    }
                }
            }
        }
    }
}
