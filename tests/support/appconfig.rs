//! A stand-in for the AppConfig Lambda extension's local HTTP API.

use super::http::{self, Reply, Server};
use std::sync::{Arc, Mutex};

/// FireFly's names: application = the function's name, environment `APP_CONFIG_ENV`,
/// profile `features`.
pub const ENV: &str = "test";
pub const PROFILE: &str = "features";

#[derive(Clone)]
pub enum Mode {
    Serve(String),
    Status(u16),
    Hang,
}

pub struct AppConfigStub {
    pub server: Server,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<Mutex<u32>>,
    /// The `logging` profile's body (FireFly's console sets the level there); `None`: 404.
    logging: Arc<Mutex<Option<String>>>,
}

impl AppConfigStub {
    pub fn start(mode: Mode) -> Self {
        let mode = Arc::new(Mutex::new(mode));
        let hits = Arc::new(Mutex::new(0));
        let logging: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let (m, h, lg) = (mode.clone(), hits.clone(), logging.clone());
        let suffix = format!("/environments/{ENV}/configurations/{PROFILE}");
        let logging_suffix = format!("/environments/{ENV}/configurations/logging");
        let server = http::serve(move |req| {
            *h.lock().unwrap() += 1;
            if req.method == "GET"
                && req.path.starts_with("/applications/firefly-func-api-")
                && req.path.ends_with(logging_suffix.as_str())
            {
                return match lg.lock().unwrap().clone() {
                    Some(body) => Reply::ok(body),
                    None => Reply::status(404, "{}"),
                };
            }
            // Any of our functions' applications, each named as the function.
            let app = req
                .path
                .strip_prefix("/applications/firefly-func-api-")
                .and_then(|rest| rest.strip_suffix(suffix.as_str()));
            if req.method != "GET" || !app.is_some_and(|a| !a.is_empty() && !a.contains('/')) {
                return Reply::status(404, "{}");
            }
            match m.lock().unwrap().clone() {
                Mode::Serve(body) => Reply::ok(body),
                Mode::Status(s) => Reply::status(s, r#"{"message":"stub error"}"#),
                Mode::Hang => Reply::Hang,
            }
        });
        Self {
            server,
            mode,
            hits,
            logging,
        }
    }

    /// Serves `body` as the `logging` profile.
    pub fn set_logging(&self, body: &str) {
        *self.logging.lock().unwrap() = Some(body.to_owned());
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn hits(&self) -> u32 {
        *self.hits.lock().unwrap()
    }

    /// The function environment that points at this stub, reading it on every request.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("APP_CONFIG_ENV", ENV.into()),
            (
                "AWS_APPCONFIG_EXTENSION_HTTP_PORT",
                self.server.port.to_string(),
            ),
            ("FIREFLY_CONFIG_CACHE_SECONDS", "0".into()),
        ]
    }
}
