//! The real `bootstrap` binary under a local Lambda Runtime API (2018-06-01 protocol).

use super::http::{self, Reply, Request, Server};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What the runtime posted back for one invocation.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `/invocation/{id}/response`: the API Gateway response object.
    Response(Value),
    /// `/invocation/{id}/error`: the runtime's error report.
    Error(Value),
}

/// A parsed API Gateway v2 response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

impl Outcome {
    pub fn http(&self) -> HttpResponse {
        let Outcome::Response(v) = self else {
            panic!("expected a response, got {self:?}")
        };
        HttpResponse {
            status: v["statusCode"].as_u64().expect("statusCode") as u16,
            headers: v["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .map(|(k, v)| {
                            (
                                k.to_ascii_lowercase(),
                                v.as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
        }
    }
}

struct Invocation {
    id: String,
    payload: Vec<u8>,
    /// How long from now until the invocation's deadline (Lambda's `deadline-ms`).
    deadline: Duration,
}

/// A Lambda Runtime API stand-in with one function process attached.
pub struct Function {
    child: Child,
    events: Option<Sender<Invocation>>,
    outcomes: Receiver<(String, Outcome)>,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<thread::JoinHandle<()>>,
    _server: Server,
    next_id: AtomicU64,
}

/// The environment every function process gets; tests add to it.
pub fn base_env(function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_FUNCTION_NAME", function),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("AWS_LAMBDA_LOG_LEVEL", "TRACE"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Function {
    /// Starts `bootstrap` with exactly `env` (nothing inherited but PATH) and a Runtime API.
    pub fn start(env: &[(String, String)]) -> Self {
        let (event_tx, event_rx) = mpsc::channel::<Invocation>();
        let (outcome_tx, outcomes) = mpsc::channel();
        let event_rx = Arc::new(Mutex::new(event_rx));
        let outcome_tx = Mutex::new(outcome_tx);
        let server = http::serve(move |req: Request| route(req, &event_rx, &outcome_tx));
        // FIREFLY_BOOTSTRAP runs another build of the same binary through these tests (the
        // arm64 artifact under qemu, in scripts/check).
        let program = std::env::var("FIREFLY_BOOTSTRAP")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_bootstrap").to_owned());
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("127.0.0.1:{}", server.port),
            )
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn bootstrap");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            readers.push(thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            }));
        }
        Self {
            child,
            events: Some(event_tx),
            outcomes,
            logs,
            readers,
            _server: server,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends one event and waits for the runtime's answer.
    pub fn invoke(&mut self, event: &Value) -> Outcome {
        self.invoke_raw(serde_json::to_vec(event).unwrap())
    }

    pub fn invoke_raw(&mut self, payload: Vec<u8>) -> Outcome {
        self.invoke_within(payload, Duration::from_secs(30))
    }

    /// Sends one event whose deadline is `deadline` from now, and waits for the answer.
    pub fn invoke_within(&mut self, payload: Vec<u8>, deadline: Duration) -> Outcome {
        let id = format!("req-{}", self.next_id.fetch_add(1, Ordering::SeqCst));
        self.events
            .as_ref()
            .unwrap()
            .send(Invocation {
                id: id.clone(),
                payload,
                deadline,
            })
            .unwrap();
        loop {
            match self.outcomes.recv_timeout(Duration::from_millis(200)) {
                Ok((got, outcome)) => {
                    assert_eq!(got, id, "answer for the wrong invocation");
                    if matches!(outcome, Outcome::Response(_)) {
                        self.await_metrics_line(&id);
                    }
                    return outcome;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "bootstrap exited ({status}) during {id}; logs:\n{}",
                            self.logs().join("\n")
                        );
                    }
                }
                Err(RecvTimeoutError::Disconnected) => panic!("runtime API stopped"),
            }
        }
    }

    /// Every answered request's last line is its metrics document, written before the
    /// answer; the thread that reads the pipe may still be behind. Wait (up to 5 s) until it
    /// has read that line, so that a test reading the logs next sees the whole request.
    fn await_metrics_line(&self, id: &str) {
        let needle = format!("\"function_request_id\":\"{id}\"");
        self.await_line(
            |l| l.contains("\"_aws\"") && l.contains(&needle),
            Duration::from_secs(5),
        );
    }

    /// Waits (up to 30 s) until init has finished, DynamoDB warm-up included: its `ready`
    /// line is written after it. Panics, with the logs, if it never comes.
    pub fn await_ready(&self) {
        let ready =
            |l: &str| serde_json::from_str::<Value>(l).is_ok_and(|v| v["message"] == "ready");
        if !self.await_line(ready, Duration::from_secs(30)) {
            panic!("no ready line; logs:\n{}", self.logs().join("\n"));
        }
    }

    /// Whether a line `what` accepts is read within `within`.
    fn await_line(&self, what: impl Fn(&str) -> bool, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if self.logs.lock().unwrap().iter().rev().any(|l| what(l)) {
                return true;
            }
            thread::park_timeout(Duration::from_millis(2));
        }
        false
    }

    /// Waits for the process to exit by itself (start-up failures); `None` if it keeps running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                // The pipes are closed now: let the readers take in the last lines.
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return Some(s);
            }
            thread::park_timeout(Duration::from_millis(20));
        }
        None
    }

    /// The process's peak resident memory so far (Linux's `VmHWM`), in KiB: what
    /// Lambda's memory size must hold.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every line the process printed so far, stdout and stderr.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Log lines parsed as JSON (every stdout line must be).
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
            })
            .collect()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.events.take();
    }
}

fn route(
    req: Request,
    events: &Mutex<Receiver<Invocation>>,
    outcomes: &Mutex<Sender<(String, Outcome)>>,
) -> Reply {
    let path = req
        .path
        .strip_prefix("/2018-06-01/runtime/")
        .unwrap_or(&req.path);
    if req.method == "GET" && path == "invocation/next" {
        let next = events.lock().unwrap().recv();
        return match next {
            Ok(inv) => Reply::Respond {
                status: 200,
                headers: vec![
                    ("lambda-runtime-aws-request-id".into(), inv.id.clone()),
                    (
                        "lambda-runtime-deadline-ms".into(),
                        deadline_ms(inv.deadline),
                    ),
                    (
                        "lambda-runtime-invoked-function-arn".into(),
                        "arn:aws:lambda:eu-west-1:123456789012:function:test".into(),
                    ),
                    ("lambda-runtime-trace-id".into(), trace_header(&inv.id)),
                ],
                body: inv.payload,
            },
            Err(_) => Reply::Hang,
        };
    }
    let parse = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let answer = path.strip_prefix("invocation/").and_then(|rest| {
        let (id, kind): (_, fn(Value) -> Outcome) = match rest.strip_suffix("/response") {
            Some(id) => (id, Outcome::Response),
            None => (rest.strip_suffix("/error")?, Outcome::Error),
        };
        Some((id.to_owned(), kind(parse(&req.body))))
    });
    if let Some(answer) = answer {
        let _ = outcomes.lock().unwrap().send(answer);
        return Reply::status(202, "{}");
    }
    Reply::status(404, "{}")
}

/// The X-Ray trace header the runtime API gives invocation `id` (`req-N`): one per
/// invocation, so a test can follow it into the logs and downstream calls.
pub fn trace_header(id: &str) -> String {
    let n: u64 = id.trim_start_matches("req-").parse().unwrap_or(0);
    format!("Root=1-6745f1a2-{n:024x};Parent={n:016x};Sampled=1")
}

fn deadline_ms(after: Duration) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    (now + after.as_millis()).to_string()
}
