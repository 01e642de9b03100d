//! `firefly-local`: the whole Firefly API on this machine (see `firefly_api::local_api`).
//! Its commands and options are defined once, in [`COMMANDS`]: `--help` is written from
//! it and every command's options are checked against it.

use firefly_api::app::App;
use firefly_api::clock::{Clock, SystemClock};
use firefly_api::init::Parts;
use firefly_api::local_api::Server;
use firefly_api::local_api::device;
use firefly_api::local_api::jwt::{self, Authorizer, DevKey, Extra};
use firefly_api::local_api::s3;
use firefly_api::routes::ROUTES;
use firefly_api::telemetry;
use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// One option of a command: `--name VALUE`.
struct Opt {
    name: &'static str,
    value: &'static str,
}

const fn opt(name: &'static str, value: &'static str) -> Opt {
    Opt { name, value }
}

/// A command: its words, what follows them, its options and what it does.
struct Command {
    words: &'static str,
    args: &'static str,
    options: &'static [Opt],
    about: &'static str,
}

/// Every command and option of firefly-local, once.
const COMMANDS: &[Command] = &[
    Command {
        words: "serve",
        args: "",
        options: &[
            opt("port", "3000"),
            opt("s3-port", "3001"),
            opt("cdn-port", "3002"),
            opt("store", "memory|dynamodb"),
            opt("config", "FILE"),
            opt("issuer", "URL"),
            opt("audience", "ID"),
            opt("jwks", "FILE"),
            opt("key-file", "FILE"),
            opt("cors-origin", "URL (repeatable)"),
            opt("redirect-uri", "URL (repeatable)"),
            opt("client-id", "ID"),
            opt("users", "FILE"),
            opt("sign-in-as", "USER"),
        ],
        about: "Serves every route of every function on 127.0.0.1 as API Gateway would, with its JWT authorizer: by default it trusts the local development key (memory store or a loopback DynamoDB only); --issuer/--audience point it at a real Cognito user pool (its JWKS fetched from ISSUER/.well-known/jwks.json, again when a token names an unknown key, or read from --jwks). --store dynamodb uses DYNAMODB_REGISTRATION_KEYS_TABLE_NAME, DYNAMODB_DEVICES_TABLE_NAME and AWS_ENDPOINT_URL_DYNAMODB from the environment; --config is a features-style profile file, re-read when it changes; --cors-origin lets a browser page at URL call the API, as FireFly's gateway lets its console. The S3 endpoint on --s3-port (path-style; point AWS_ENDPOINT_URL_S3 at it) turns every write into the event S3 would send to the functions it invokes (the firmware pipeline): with --store memory it holds the firmware bucket itself (S3_FIRMWARE_PRIVATE_BUCKET_NAME, default firefly-firmware-local); with --store dynamodb it passes every request on to AWS_ENDPOINT_URL_S3 (moto's S3 on this machine), and the functions' own S3 calls go through it; the download route's presigned URLs point at it, which checks their signature and expiry. Released firmware (the memory store's, or S3_FIRMWARE_PUBLIC_BUCKET_NAME's in moto's S3) is served over TLS on --cdn-port (a stand-in for CloudFront, under a CA made for the run and written beside --key-file as cdn-ca.pem; OTA's URLs name it unless CLOUDFRONT_DOMAIN is set). --redirect-uri turns on a Cognito-style sign-in (authorization code with PKCE, refresh tokens, /logout, the OpenID configuration and JWKS at this address) for --client-id (default firefly-local) and the users in --users (a JSON list of username, email, groups; default one dev user in super_users), chosen on a page or preset with --sign-in-as; its RS256 tokens pass the authorizer on every route, and carry each user's groups of the moment they are issued. The page also takes a first sign-in by address, which the pre-sign-up function admits (a live invitation) or refuses with its message, as Cognito's hosted UI does. With --store memory the users routes manage these same users and their invitations (with --store dynamodb, the pool COGNITO_USER_POOL_ID at AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER, moto's Cognito on this machine).",
    },
    Command {
        words: "token",
        args: "--sub USER",
        options: &[
            opt("sub", "USER"),
            opt("email", "ADDRESS"),
            opt("groups", "a,b"),
            opt("scope", "\"a b\""),
            opt("ttl", "SECONDS"),
            opt("key-file", "FILE"),
        ],
        about: "Prints a token signed by the local development key (alone on stdout). --groups super_users makes a user who may list every device; --ttl 0 a token that has already expired.",
    },
    Command {
        words: "invoke",
        args: "EVENT.json",
        options: &[opt("store", "memory|dynamodb"), opt("function", "NAME")],
        about: "Runs one API Gateway v2 event through the app and prints the Lambda response.",
    },
    Command {
        words: "device register",
        args: "--key KEY",
        options: &[
            opt("key", "KEY"),
            opt("uuid", "UUID"),
            opt("url", "URL"),
            opt("dir", "DIR"),
        ],
        about: "A simulated controller registers with a registration key: makes and keeps a P-256 key pair (DIR, default ~/.config/firefly-local/devices) and sends the firmware's payload to URL (default http://127.0.0.1:3000). Prints the device's UUID.",
    },
    Command {
        words: "device check",
        args: "UUID",
        options: &[opt("url", "URL"), opt("dir", "DIR")],
        about: "Checks that device's registration, signed as the firmware signs it. Prints the answer's body.",
    },
    Command {
        words: "device backup",
        args: "FILE",
        options: &[opt("uuid", "UUID"), opt("url", "URL"), opt("dir", "DIR")],
        about: "Backs FILE (at most 512 KiB) up as the firmware does: encrypted into an FFCE blob with the device's own key (DIR/<uuid>.backup-key), ETag = the file's SHA-256, signed headers. --uuid may be left out when DIR holds one device. Prints the answer's body.",
    },
    Command {
        words: "device restore",
        args: "",
        options: &[
            opt("uuid", "UUID"),
            opt("out", "FILE"),
            opt("url", "URL"),
            opt("dir", "DIR"),
        ],
        about: "Restores the device's backup as the firmware does (Content-Length checked, decrypted, its SHA-256 compared with the ETag) and writes the plaintext to --out FILE (default: standard output).",
    },
    Command {
        words: "device ota",
        args: "--product-hex 0x%08x",
        options: &[
            opt("product-hex", "0x%08x"),
            opt("current-version", "VERSION"),
            opt("class", "CLASS"),
            opt("application", "NAME"),
            opt("application-name", "NAME"),
            opt("template", "URL"),
            opt("ca", "FILE"),
            opt("uuid", "UUID"),
            opt("url", "URL"),
            opt("dir", "DIR"),
        ],
        about: "Updates as the controller does: fills its OTA URL template (--template, default $$url$$/ota/$$class$$/$$product_hex$$/$$application$$?current_version=$$current_version$$, $$url$$ being --url) with --class (controller), --product-hex, --application (controller) and --current-version (0.0.0), sends its uuid header, takes the entry named --application-name (FireFly Controller), and when its version is greater by the controller's own comparison downloads each binary from the CDN stand-in (trusting --ca, default the cdn-ca.pem `serve` wrote) and checks its SHA-256. Prints what it installed, or that it is up to date.",
    },
    Command {
        words: "device delete-backup",
        args: "",
        options: &[opt("uuid", "UUID"), opt("url", "URL"), opt("dir", "DIR")],
        about: "Removes the device's backup. Prints the answer's body.",
    },
    Command {
        words: "firmware build",
        args: "--out FILE.zip",
        options: &[
            opt("out", "FILE.zip"),
            opt("product-hex", "0x32322304"),
            opt("version", "9999.99.99"),
            opt("image-kib", "1024"),
        ],
        about: "Writes a firmware ZIP as FireFly-Controller's build makes one: manifest.json (class, product, version, commit, created, bootloader_addr, memory, and every file with its SHA-256), the application image (--image-kib of it), bootloader, partition table (FireFly's 16 MB scheme), .elf, .map, ui.bin and a 512 KiB config.bin.",
    },
    Command {
        words: "firmware upload",
        args: "FILE.zip",
        options: &[
            opt("s3-url", "URL"),
            opt("bucket", "NAME"),
            opt("name", "NAME"),
        ],
        about: "Puts FILE.zip into incoming/ of the firmware bucket through `serve`'s S3 endpoint (--s3-url, default http://127.0.0.1:3001; --bucket, default S3_FIRMWARE_PRIVATE_BUCKET_NAME or firefly-firmware-local), as FireFly's CI uploads a build; the pipeline runs and its record appears in GET /firmware. --name is the key's file name (default FILE's).",
    },
];

/// `--help`, written from [`COMMANDS`].
fn usage() -> String {
    let mut out = String::from("usage:\n");
    for c in COMMANDS {
        let mut line = format!("  firefly-local {}", c.words);
        if !c.args.is_empty() {
            line.push(' ');
            line.push_str(c.args);
        }
        for o in c.options {
            if c.args.contains(&format!("--{} ", o.name)) {
                continue;
            }
            let item = format!(" [--{} {}]", o.name, o.value);
            if line.len() + item.len() > 92 {
                out.push_str(&line);
                out.push('\n');
                line = " ".repeat(16 + c.words.len());
            }
            line.push_str(&item);
        }
        out.push_str(&line);
        out.push('\n');
        let mut text = String::from("     ");
        for word in c.about.split(' ') {
            if text.len() + word.len() > 91 {
                out.push_str(&text);
                out.push('\n');
                text = String::from("     ");
            }
            text.push(' ');
            text.push_str(word);
        }
        out.push_str(&text);
        out.push('\n');
    }
    out
}

/// Refuses an option `words` does not define.
fn check_options(words: &str, flags: &HashMap<String, String>) -> Result<(), String> {
    let command = COMMANDS.iter().find(|c| c.words == words);
    let known = command.map_or(&[][..], |c| c.options);
    match flags
        .keys()
        .find(|f| !known.iter().any(|o| o.name == f.as_str()))
    {
        Some(f) => Err(format!("{words}: unknown option --{f}")),
        None => Ok(()),
    }
}

/// Where firefly-local keeps its development key and simulated devices unless told
/// otherwise: `$XDG_CONFIG_HOME/firefly-local`, else `~/.config/firefly-local`. Never
/// relative to the working directory, so the key trusted does not depend on where a
/// command runs (nor can a checkout plant one).
fn state_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"))
        .join("firefly-local")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{}", usage());
        return ExitCode::from(2);
    };
    if command == "device" {
        return device_command(rest);
    }
    if command == "firmware" {
        return firmware_command(rest);
    }
    if command == "invoke" {
        // One event through the app, as `bootstrap` would serve it under Lambda.
        let env = |name: &str| std::env::var(name).ok();
        telemetry::init(
            telemetry::level_from_env(&env),
            telemetry::Output::Stderr,
            telemetry::DEFAULT_NAMESPACE,
            "firefly-local",
        );
        return match one_thread() {
            Ok(rt) => rt.block_on(firefly_api::local::invoke(rest)),
            Err(code) => code,
        };
    }
    let flags = match parse_flags(rest) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("firefly-local: {e}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let key_file = flags
        .get("key-file")
        .map_or_else(|| state_dir().join("dev-signing-key.p8"), PathBuf::from);
    match command.as_str() {
        "token" => token(&flags, &key_file),
        "serve" => serve(&flags, &key_file),
        "-h" | "--help" | "help" => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("firefly-local: unknown command {other:?}\n{}", usage());
            ExitCode::from(2)
        }
    }
}

/// `--name value` or `--name=value`, each at most once.
fn parse_flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut flags = HashMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let flag = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = it.next().ok_or_else(|| format!("--{flag} needs a value"))?;
                (flag.to_owned(), value.clone())
            }
        };
        // --cors-origin and --redirect-uri may be repeated: kept comma-separated.
        if name == "cors-origin" || name == "redirect-uri" {
            let all = flags.entry(name).or_insert_with(String::new);
            if !all.is_empty() {
                all.push(',');
            }
            all.push_str(&value);
            continue;
        }
        if flags.insert(name.clone(), value).is_some() {
            return Err(format!("--{name} is given twice"));
        }
    }
    Ok(flags)
}

fn token(flags: &HashMap<String, String>, key_file: &std::path::Path) -> ExitCode {
    if let Err(e) = check_options("token", flags) {
        eprintln!("firefly-local {e}\n{}", usage());
        return ExitCode::from(2);
    }
    let Some(sub) = flags.get("sub").filter(|s| !s.is_empty()) else {
        eprintln!("firefly-local token: --sub USER is required\n{}", usage());
        return ExitCode::from(2);
    };
    // 0 makes a token that has already expired (exp = now): for testing refusals.
    let ttl: i64 = match flags.get("ttl").map(|t| t.parse()) {
        None => 3600,
        Some(Ok(t)) if (0..=86_400).contains(&t) => t,
        Some(_) => {
            eprintln!("firefly-local token: --ttl is seconds, 0 (already expired) to 86400");
            return ExitCode::from(2);
        }
    };
    let groups: Vec<&str> = flags
        .get("groups")
        .map(|g| g.split([',', ' ']).filter(|g| !g.is_empty()).collect())
        .unwrap_or_default();
    let extra = Extra {
        scope: flags.get("scope").map(String::as_str),
        email: flags.get("email").map(String::as_str),
        groups: &groups,
    };
    let made = DevKey::load_or_create(key_file)
        .and_then(|k| k.token(sub, SystemClock.now_epoch_seconds(), ttl, &extra));
    match made {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("firefly-local token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(flags: &HashMap<String, String>, key_file: &std::path::Path) -> ExitCode {
    if let Err(e) = check_options("serve", flags) {
        eprintln!("firefly-local {e}\n{}", usage());
        return ExitCode::from(2);
    }
    let port: u16 = match flags.get("port").map(|p| p.parse()) {
        None => 3000,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("firefly-local serve: --port is a port number");
            return ExitCode::from(2);
        }
    };
    let store = flags
        .get("store")
        .cloned()
        .unwrap_or_else(|| "memory".into());
    let config = flags.get("config").cloned();
    let env = move |name: &str| -> Option<String> {
        match name {
            "FIREFLY_STORE" => Some(store.clone()),
            "FIREFLY_CONFIG_FILE" => config.clone().or_else(|| std::env::var(name).ok()),
            _ => std::env::var(name).ok(),
        }
    };
    let namespace =
        telemetry::namespace_from_env(&env).unwrap_or_else(|_| telemetry::DEFAULT_NAMESPACE.into());
    telemetry::init_local(
        telemetry::level_from_env(&env),
        telemetry::Output::Stdout,
        &namespace,
        "firefly-local",
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("firefly-local: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let s3_port: u16 = match flags.get("s3-port").map(|p| p.parse()) {
        None => port.checked_add(1).filter(|_| port != 0).unwrap_or(0),
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("firefly-local serve: --s3-port is a port number");
            return ExitCode::from(2);
        }
    };
    let cdn_port: u16 = match flags.get("cdn-port").map(|p| p.parse()) {
        None => s3_port.checked_add(1).filter(|_| s3_port != 0).unwrap_or(0),
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!("firefly-local serve: --cdn-port is a port number");
            return ExitCode::from(2);
        }
    };
    let served = runtime.block_on(async move {
        let authorizer = authorizer(flags, key_file, &env)
            .await
            .map_err(|e| e.to_string())?;
        // The S3 endpoint first: the functions' own S3 calls are sent to it.
        let s3_listener = tokio::net::TcpListener::bind(("127.0.0.1", s3_port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{s3_port}: {e}"))?;
        let s3_url = format!(
            "http://{}",
            s3_listener.local_addr().map_err(|e| e.to_string())?
        );
        let (events, incoming) = tokio::sync::mpsc::unbounded_channel();
        let upstream_s3 = env(firefly_api::vars::AWS_ENDPOINT_URL_S3.name)
            .or_else(|| env(firefly_api::vars::AWS_ENDPOINT_URL.name))
            .filter(|u| !u.is_empty());
        let memory = Parts::from_env(&env).map_err(|e| e.to_string())?.store_mode
            == firefly_api::init::StoreMode::Memory;
        // The CloudFront stand-in: released files over TLS.
        let cdn = {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", cdn_port))
                .await
                .map_err(|e| format!("cannot listen on 127.0.0.1:{cdn_port}: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            let ca = firefly_api::local_api::cdn::LocalCa::new()?;
            let ca_file = key_file.with_file_name("cdn-ca.pem");
            if let Some(dir) = ca_file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&ca_file, &ca.ca_pem)
                .map_err(|e| format!("{}: {e}", ca_file.display()))?;
            Some((listener, port, ca, ca_file))
        };
        let cdn_domain = cdn.as_ref().map(|(_, port, _, _)| format!("localhost:{port}"));
        // The App Configuration page's AppConfig and Lambda: this run's own stand-in, unless
        // the environment names others. A level deployed there is the level of that
        // function's lines here.
        let config_api = match (
            env(firefly_api::vars::AWS_ENDPOINT_URL_APPCONFIG.name).filter(|u| !u.is_empty()),
            env(firefly_api::vars::AWS_ENDPOINT_URL_LAMBDA.name).filter(|u| !u.is_empty()),
        ) {
            (Some(_), Some(_)) => None,
            _ => {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                    .await
                    .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
                let url = format!(
                    "http://{}",
                    listener.local_addr().map_err(|e| e.to_string())?
                );
                let mut functions: Vec<String> =
                    ROUTES.iter().map(|r| r.function.to_owned()).collect();
                functions.sort();
                functions.dedup();
                let stand_in = Arc::new(firefly_api::local_api::appconfig::StandIn::new(
                    functions,
                    Some(Box::new(|function: &str, level: Option<&str>| {
                        telemetry::set_function_level(
                            function,
                            level.map(telemetry::level_from_python),
                        );
                        tracing::info!(function, level = level.unwrap_or("the default"), "log level deployed");
                    })),
                ));
                tokio::spawn(stand_in.run(listener));
                Some(url)
            }
        };
        let app_env = |name: &str| -> Option<String> {
            if let Some(url) = &config_api {
                use firefly_api::vars;
                if name == vars::AWS_ENDPOINT_URL_APPCONFIG.name
                    || name == vars::AWS_ENDPOINT_URL_LAMBDA.name
                {
                    return Some(url.clone());
                }
            }
            if !memory && name == firefly_api::vars::AWS_ENDPOINT_URL_S3.name {
                return Some(s3_url.clone());
            }
            if name == firefly_api::vars::CLOUDFRONT_DOMAIN.name {
                return env(name)
                    .filter(|d| !d.is_empty())
                    .or_else(|| cdn_domain.clone());
            }
            env(name)
        };
        let mut parts = Parts::from_env(&app_env).map_err(|e| e.to_string())?;
        let presigner = Arc::new(s3::Presigner::new(&s3_url)?);
        let public = Arc::new(firefly_api::firmware::bucket::MemoryBucket::new(
            &env(firefly_api::vars::S3_FIRMWARE_PUBLIC_BUCKET_NAME.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| firefly_api::firmware::LOCAL_PUBLIC_BUCKET.into()),
            None,
        ));
        // The pool's users: the sign-in's, and with the memory store the users routes' too
        // (so an invitation, a promotion or a deletion there is what the next sign-in sees).
        let directory = Arc::new(firefly_api::users::directory::MemoryDirectory::new(
            local_users(flags)?,
        ));
        if memory {
            parts.shared.insert(Arc::clone(&directory));
            parts.shared.insert(firefly_api::firmware::LocalPublic {
                bucket: Arc::clone(&public),
                cdn: Arc::new(firefly_api::firmware::public::MemoryCdn::default()),
            });
        }
        let store = if memory {
            let name = env(firefly_api::firmware::BUCKET_ENV)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| firefly_api::firmware::LOCAL_BUCKET.into());
            let sender = events.clone();
            let announce: firefly_api::firmware::bucket::Announce = Arc::new(move |e| {
                let _ = sender.send(e);
            });
            let bucket = Arc::new(firefly_api::firmware::bucket::MemoryBucket::new(
                &name,
                Some(announce),
            ));
            let p = Arc::clone(&presigner);
            bucket.presign_with(Arc::new(move |bucket, key, now, expires| {
                p.url(bucket, key, now, expires)
            }));
            parts.shared.insert(bucket.clone());
            s3::Store::Memory(bucket)
        } else {
            let upstream = upstream_s3
                .clone()
                .ok_or("--store dynamodb needs AWS_ENDPOINT_URL_S3")?;
            s3::Store::Upstream(upstream.trim_end_matches('/').to_owned())
        };
        let memory_name = match &store {
            s3::Store::Memory(b) => Some(b.name().to_owned()),
            s3::Store::Upstream(_) => None,
        };
        let subscriptions = s3::subscriptions(ROUTES, |resource| match resource {
            firefly_api::deploy::Resource::Bucket { env: var, .. } => memory_name
                .clone()
                .or_else(|| env(var).filter(|n| !n.is_empty())),
            _ => None,
        });
        let app = Arc::new(App::build(ROUTES, None, parts, &app_env).map_err(|e| e.to_string())?);
        tokio::spawn(s3::deliver(Arc::clone(&app), subscriptions, incoming));
        let endpoint = Arc::new(s3::Endpoint::new(store, events).with_presigner(presigner));
        tokio::spawn(endpoint.run(s3_listener));
        let source = if memory {
            firefly_api::local_api::cdn::Source::Memory(public)
        } else {
            // Moto's S3 itself, signed with the environment's credentials (the functions'
            // own), as CloudFront reads its origin.
            let http = firefly_api::aws::transport(&env)?;
            firefly_api::local_api::cdn::Source::Upstream {
                s3: Box::new(firefly_api::aws::s3::S3Client::from_env(&env, http)?),
                bucket: env(firefly_api::vars::S3_FIRMWARE_PUBLIC_BUCKET_NAME.name)
                    .unwrap_or_default(),
            }
        };
        let cdn_line = cdn.map(|(listener, port, ca, ca_file)| {
            tokio::spawn(firefly_api::local_api::cdn::run(source, listener, ca.server));
            format!(
                "firefly-local: CDN stand-in https://localhost:{port} (released firmware; its CA: {})",
                ca_file.display()
            )
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
        let origins: Vec<String> = flags
            .get("cors-origin")
            .map(|o| {
                o.split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut server = Server::new(app, ROUTES, authorizer).with_cors(origins);
        if let Some(redirects) = flags.get("redirect-uri") {
            server = server.with_signin(signin(
                flags, redirects, addr, key_file, &env, directory,
            )?);
        }
        let server = Arc::new(server);
        eprint!("{}", server.describe(addr));
        eprintln!("firefly-local: S3 endpoint {s3_url} (path-style; its writes reach the functions S3 invokes)");
        if let Some(line) = cdn_line {
            eprintln!("{line}");
        }
        tracing::info!(address = %addr, routes = ROUTES.len(), "firefly-local listening");
        server.run(listener).await.map_err(|e| e.to_string())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firefly-local serve: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The pool's users for a local run: --users (a JSON list of `{"username", "email",
/// "groups"}`), else one `dev` user in `super_users`.
fn local_users(
    flags: &HashMap<String, String>,
) -> Result<Vec<firefly_api::users::directory::Member>, String> {
    use firefly_api::local_api::signin::User;
    let users: Vec<User> = match flags.get("users") {
        Some(file) => {
            let text = std::fs::read(file).map_err(|e| format!("--users {file}: {e}"))?;
            serde_json::from_slice(&text).map_err(|e| format!("--users {file}: {e}"))?
        }
        None => vec![User {
            username: "dev".into(),
            email: "dev@localhost".into(),
            groups: vec!["super_users".into()],
        }],
    };
    let now = {
        use firefly_api::clock::Clock as _;
        firefly_api::clock::SystemClock.now_epoch_micros()
    };
    Ok(users.into_iter().map(|u| u.member(now)).collect())
}

/// The Cognito-style sign-in: this server is its issuer (`http://127.0.0.1:PORT`), for the
/// pool's users (`directory`).
fn signin(
    flags: &HashMap<String, String>,
    redirects: &str,
    addr: std::net::SocketAddr,
    key_file: &std::path::Path,
    env: &firefly_api::deploy::Env<'_>,
    directory: Arc<firefly_api::users::directory::MemoryDirectory>,
) -> Result<firefly_api::local_api::signin::SignIn, String> {
    use firefly_api::local_api::signin::SignIn;
    // Whoever reaches the page signs in as anyone: only on data that is not real.
    if let Some(reason) = real_data(flags, env) {
        return Err(format!(
            "{reason}: the local sign-in would let anyone sign in as any user there"
        ));
    }
    SignIn::new(
        format!("http://127.0.0.1:{}", addr.port()),
        flags
            .get("client-id")
            .cloned()
            .unwrap_or_else(|| "firefly-local".into()),
        redirects
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        directory,
        flags.get("sign-in-as").cloned(),
        &key_file.with_file_name("sign-in-rsa-key.der"),
    )
}

/// The development key by default; a real issuer with --issuer and --audience.
async fn authorizer(
    flags: &HashMap<String, String>,
    key_file: &std::path::Path,
    env: &firefly_api::deploy::Env<'_>,
) -> Result<Authorizer, String> {
    match (flags.get("issuer"), flags.get("audience")) {
        (None, None) => {
            if flags.contains_key("jwks") {
                return Err("--jwks needs --issuer and --audience".into());
            }
            // Anyone who can run `token` is then anyone: only on data that is not real.
            if let Some(reason) = real_data(flags, env) {
                return Err(format!(
                    "{reason}: the local development key would let anyone who can run `firefly-local token` act as any user there; trust the real user pool instead (--issuer and --audience)"
                ));
            }
            let key = DevKey::load_or_create(key_file)?;
            Ok(Authorizer::new(
                jwt::DEV_ISSUER.into(),
                jwt::DEV_AUDIENCE.into(),
                key.jwks(),
            ))
        }
        (Some(issuer), Some(audience)) => {
            let issuer = issuer.trim_end_matches('/').to_owned();
            let url = format!("{issuer}/.well-known/jwks.json");
            match flags.get("jwks") {
                Some(file) => {
                    let text = std::fs::read(file).map_err(|e| format!("--jwks {file}: {e}"))?;
                    let jwks: JwkSet = serde_json::from_slice(&text)
                        .map_err(|e| format!("--jwks {file}: not a JWKS: {e}"))?;
                    Ok(Authorizer::new(issuer, audience.clone(), jwks))
                }
                None => {
                    let jwks = firefly_api::local_api::fetch_jwks(&url, env).await?;
                    // Fetched again (rate-limited) when a token names a key it lacks.
                    Ok(Authorizer::new(issuer, audience.clone(), jwks).refreshing_from(url))
                }
            }
        }
        _ => Err("--issuer and --audience go together".into()),
    }
}

/// A current-thread runtime for one command, or the exit code of the failure (said).
fn one_thread() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("firefly-local: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `device register` and `device check`: a simulated controller.
fn device_command(args: &[String]) -> ExitCode {
    let refuse = |e: &str| {
        eprintln!("firefly-local device: {e}\n{}", usage());
        ExitCode::from(2)
    };
    let Some((verb, rest)) = args.split_first() else {
        return refuse("register or check?");
    };
    // `check UUID` takes the device, `backup FILE` the file, as the one positional argument.
    let (positional, rest) = match (verb.as_str(), rest.split_first()) {
        ("check" | "backup", Some((u, r))) if !u.starts_with("--") => (Some(u.clone()), r),
        _ => (None, rest),
    };
    let flags = match parse_flags(rest) {
        Ok(f) => f,
        Err(e) => return refuse(&e),
    };
    if ![
        "register",
        "check",
        "backup",
        "restore",
        "delete-backup",
        "ota",
    ]
    .contains(&verb.as_str())
    {
        return refuse(&format!("unknown command {verb:?}"));
    }
    if let Err(e) = check_options(&format!("device {verb}"), &flags) {
        return refuse(&e);
    }
    let url = flags
        .get("url")
        .map_or("http://127.0.0.1:3000", String::as_str)
        .trim_end_matches('/')
        .to_owned();
    let dir = flags
        .get("dir")
        .map_or_else(|| state_dir().join("devices"), PathBuf::from);
    let runtime = match one_thread() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        match verb.as_str() {
            "register" => {
                let Some(key) = flags.get("key") else {
                    return Err("--key KEY is required (mint one: POST /registration-keys)".into());
                };
                let (uuid, answer) =
                    device::register(&url, key, flags.get("uuid").map(String::as_str), &dir)
                        .await?;
                if answer.status == 204 {
                    println!("{uuid}");
                    eprintln!("firefly-local device: registered {uuid}");
                    Ok(())
                } else {
                    Err(format!(
                        "registration answered {}: {}",
                        answer.status, answer.body
                    ))
                }
            }
            "ota" => {
                let Some(product_hex) = flags.get("product-hex") else {
                    return Err("--product-hex is required (0x%08x, as the controller prints it)".into());
                };
                let text = |name: &str, default: &str| flags.get(name).map_or(default, String::as_str).to_owned();
                let ask = device::OtaAsk {
                    template: text("template", "$$url$$/ota/$$class$$/$$product_hex$$/$$application$$?current_version=$$current_version$$"),
                    class: text("class", "controller"),
                    product_hex: product_hex.to_lowercase(),
                    application: text("application", "controller"),
                    current_version: text("current-version", "0.0.0"),
                    application_name: text("application-name", "FireFly Controller"),
                };
                let ca = flags.get("ca").map_or_else(|| state_dir().join("cdn-ca.pem"), PathBuf::from);
                let uuid = flags.get("uuid").cloned().or_else(|| device::only_device(&dir).ok());
                match device::ota(&url, &ask, uuid.as_deref(), &ca).await? {
                    device::Update::UpToDate(v) => {
                        println!("up to date: {} (offered {v})", ask.current_version);
                    }
                    device::Update::Installed { version, binaries } => {
                        for (partition, url, len) in binaries {
                            println!("{partition} {url} {len} bytes, SHA-256 checked");
                        }
                        println!("installed {version}");
                    }
                }
                Ok(())
            }
            "backup" | "restore" | "delete-backup" => {
                let uuid = match flags.get("uuid") {
                    Some(u) => u.clone(),
                    None => device::only_device(&dir)?,
                };
                backup_command(verb, &url, &uuid, &dir, positional.as_deref(), &flags).await
            }
            _ => {
                let Some(uuid) = positional else {
                    return Err("check needs the device's UUID".to_string());
                };
                let answer = device::check(&url, &uuid, &dir).await?;
                println!("{}", answer.body);
                if answer.status == 200 {
                    Ok(())
                } else {
                    Err(format!("the check answered {}", answer.status))
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firefly-local device: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `device backup FILE`, `device restore`, `device delete-backup` for the device `uuid`.
async fn backup_command(
    verb: &str,
    url: &str,
    uuid: &str,
    dir: &std::path::Path,
    file: Option<&str>,
    flags: &HashMap<String, String>,
) -> Result<(), String> {
    match verb {
        "backup" => {
            let Some(file) = file else {
                return Err("backup needs the FILE to back up".into());
            };
            let plaintext = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
            let (etag, answer) = device::backup(url, uuid, dir, &plaintext).await?;
            println!("{}", answer.body);
            if answer.status == 200 {
                eprintln!("firefly-local device: backed up {file} for {uuid} (ETag {etag})");
                Ok(())
            } else {
                Err(format!("the backup answered {}", answer.status))
            }
        }
        "restore" => {
            let (_, plaintext) = device::restore(url, uuid, dir).await?;
            match flags.get("out") {
                Some(out) => {
                    std::fs::write(out, &plaintext).map_err(|e| format!("{out}: {e}"))?;
                    eprintln!(
                        "firefly-local device: restored {} bytes for {uuid} into {out}",
                        plaintext.len()
                    );
                }
                None => {
                    use std::io::Write as _;
                    std::io::stdout()
                        .write_all(&plaintext)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        }
        _ => {
            let answer = device::delete_backup(url, uuid, dir).await?;
            println!("{}", answer.body);
            if answer.status == 200 {
                Ok(())
            } else {
                Err(format!("the delete answered {}", answer.status))
            }
        }
    }
}

/// Why the store may hold real data (`None`: the memory store, or DynamoDB on a loopback
/// endpoint such as dynalite or moto).
fn real_data(
    flags: &HashMap<String, String>,
    env: &firefly_api::deploy::Env<'_>,
) -> Option<String> {
    if flags.get("store").is_none_or(|s| s == "memory") {
        return None;
    }
    let endpoint = env(firefly_api::vars::AWS_ENDPOINT_URL_DYNAMODB.name)
        .or_else(|| env(firefly_api::vars::AWS_ENDPOINT_URL.name))
        .filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        return Some("--store dynamodb without AWS_ENDPOINT_URL_DYNAMODB is AWS itself".into());
    };
    // Every other service a function of the table calls: the backups' S3, the firmware
    // ingest's CloudFront invalidations, the users routes' Cognito.
    use firefly_api::vars::{
        AWS_ENDPOINT_URL_CLOUDFRONT, AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER,
        AWS_ENDPOINT_URL_S3,
    };
    for (var, service, for_what) in [
        (AWS_ENDPOINT_URL_S3, "S3", "the backups"),
        (
            AWS_ENDPOINT_URL_CLOUDFRONT,
            "CloudFront",
            "the firmware ingest",
        ),
        (
            AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER,
            "Cognito",
            "the users routes",
        ),
    ] {
        let at = env(var.name)
            .or_else(|| env(firefly_api::vars::AWS_ENDPOINT_URL.name))
            .filter(|e| !e.is_empty());
        match at {
            None => {
                return Some(format!(
                    "--store dynamodb without {} is {service} itself for {for_what}",
                    var.name
                ));
            }
            Some(at) if !is_loopback(&at) => {
                return Some(format!(
                    "--store dynamodb with {service} at {at}, which is not this machine"
                ));
            }
            Some(_) => {}
        }
    }
    // The App Configuration page's AppConfig and Lambda: this run's stand-in unless named.
    for var in [
        firefly_api::vars::AWS_ENDPOINT_URL_APPCONFIG,
        firefly_api::vars::AWS_ENDPOINT_URL_LAMBDA,
    ] {
        if let Some(at) = env(var.name).filter(|e| !e.is_empty() && !is_loopback(e)) {
            return Some(format!("{} is {at}, which is not this machine", var.name));
        }
    }
    (!is_loopback(&endpoint))
        .then(|| format!("--store dynamodb on {endpoint}, which is not this machine"))
}

/// Whether `endpoint` names this machine (and no user information hides another host).
fn is_loopback(endpoint: &str) -> bool {
    endpoint
        .parse::<lambda_http::http::Uri>()
        .ok()
        .filter(|u| u.authority().is_some_and(|a| !a.as_str().contains('@')))
        .and_then(|u| u.host().map(str::to_owned))
        .is_some_and(|h| {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// `firmware build` and `firmware upload`.
fn firmware_command(args: &[String]) -> ExitCode {
    let refuse = |e: &str| {
        eprintln!("firefly-local firmware: {e}\n{}", usage());
        ExitCode::from(2)
    };
    let Some((verb, rest)) = args.split_first() else {
        return refuse("build or upload?");
    };
    let (file, rest) = match (verb.as_str(), rest.split_first()) {
        ("upload", Some((f, r))) if !f.starts_with("--") => (Some(f.clone()), r),
        _ => (None, rest),
    };
    let flags = match parse_flags(rest) {
        Ok(f) => f,
        Err(e) => return refuse(&e),
    };
    if let Err(e) = check_options(&format!("firmware {verb}"), &flags) {
        return refuse(&e);
    }
    match verb.as_str() {
        "build" => {
            let Some(out) = flags.get("out") else {
                return refuse("build needs --out FILE.zip");
            };
            let Ok(kib) = flags
                .get("image-kib")
                .map_or("1024", String::as_str)
                .parse::<usize>()
            else {
                return refuse("--image-kib is a number");
            };
            let build = firefly_api::firmware::build::Build::controller(
                flags
                    .get("product-hex")
                    .map_or("0x32322304", String::as_str),
                flags.get("version").map_or("9999.99.99", String::as_str),
                kib,
            );
            match build
                .zip()
                .and_then(|z| std::fs::write(out, z).map_err(|e| e.to_string()))
            {
                Ok(()) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("firefly-local firmware build: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "upload" => {
            let Some(file) = file else {
                return refuse("upload needs FILE.zip");
            };
            let body = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => return refuse(&format!("{file}: {e}")),
            };
            let name = flags.get("name").cloned().unwrap_or_else(|| {
                std::path::Path::new(&file)
                    .file_name()
                    .map_or("firmware.zip".into(), |n| n.to_string_lossy().into_owned())
            });
            let bucket = flags.get("bucket").cloned().unwrap_or_else(|| {
                std::env::var(firefly_api::firmware::BUCKET_ENV)
                    .ok()
                    .filter(|b| !b.is_empty())
                    .unwrap_or_else(|| firefly_api::firmware::LOCAL_BUCKET.into())
            });
            let base = flags
                .get("s3-url")
                .map_or("http://127.0.0.1:3001", String::as_str)
                .trim_end_matches('/')
                .to_owned();
            let key = format!("{}{name}", firefly_api::firmware::INCOMING);
            let url = format!("{base}/{bucket}/{}", firefly_api::aws::s3::encode_key(&key));
            let rt = match one_thread() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match rt.block_on(s3::put(&url, body)) {
                Ok(()) => {
                    println!(
                        "uploaded s3://{bucket}/{key}: its record appears in GET /firmware (?product_hex=...)"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("firefly-local firmware upload: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        other => refuse(&format!("unknown command {other:?}")),
    }
}
