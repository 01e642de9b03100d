//! A fault-injecting HTTP proxy on 127.0.0.1 in front of dynalite: each request is passed
//! through or met with the fault the test sets, and every fault is counted.

use super::http::{self, Reply, Request, Server};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Mutex};

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Forward to dynalite and relay its answer.
    Pass,
    /// Accept, read the request, never answer.
    Hang,
    /// Close the connection without answering.
    Reset,
    /// Answer with this status and DynamoDB error type (e.g. 500 InternalServerError).
    Error(u16, &'static str),
    /// Forward to dynalite (the write happens), then close without relaying the answer.
    CutResponse,
    /// Answer, without forwarding, as DynamoDB cancels a transaction: 400
    /// TransactionCanceledException with one reason code per action, in order ("None" for
    /// an action that did not fail).
    Cancelled(&'static [&'static str]),
    /// Forward to dynalite, then relay its answer this many milliseconds later (a slow but
    /// healthy DynamoDB).
    Slow(u64),
}

pub struct Proxy {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

struct State {
    /// Faults to apply to the next requests, in order; then `then`.
    script: Vec<Fault>,
    then: Fault,
    /// Every request number that met a fault other than Pass, with the fault.
    injected: Vec<Fault>,
    requests: u64,
    /// Apply `CutResponse` to every n-th request (0: never), on top of the script.
    cut_every: u64,
    /// The headers of every request, in order.
    headers: Vec<Vec<(String, String)>>,
    /// Requests for this DynamoDB operation wait until all of the barrier's have arrived,
    /// then go on together: a race made certain, not left to scheduling.
    /// Requests of this operation wait for each other; the count is how many more may.
    gate: Option<(String, Arc<Barrier>, usize)>,
    /// Work to do once, just before the next request for an operation is handled (another
    /// writer changing an item between a function's read and its write).
    hooks: Vec<(String, Box<dyn FnOnce() + Send>)>,
}

impl Proxy {
    pub fn start(upstream_port: u16) -> Self {
        let state = Arc::new(Mutex::new(State {
            script: Vec::new(),
            then: Fault::Pass,
            injected: Vec::new(),
            requests: 0,
            cut_every: 0,
            headers: Vec::new(),
            gate: None,
            hooks: Vec::new(),
        }));
        let st = state.clone();
        let server = http::serve(move |req: Request| {
            let operation = req
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"));
            // A request without an operation (none of the binary's: init opens its connection
            // without one) is recorded and passed through, never scripted.
            if !operation {
                st.lock().unwrap().headers.push(req.headers.clone());
                return forward(upstream_port, &req);
            }
            let gate = {
                let mut s = st.lock().unwrap();
                let gated = s.gate.as_mut().and_then(|(op, barrier, left)| {
                    let hit = req.headers.iter().any(|(k, v)| {
                        k.eq_ignore_ascii_case("x-amz-target") && v.ends_with(&format!(".{op}"))
                    });
                    (hit && *left > 0).then(|| {
                        *left -= 1;
                        Arc::clone(barrier)
                    })
                });
                if s.gate.as_ref().is_some_and(|(_, _, left)| *left == 0) {
                    s.gate = None;
                }
                gated
            };
            if let Some(barrier) = gate {
                barrier.wait();
            }
            let hook = {
                let mut s = st.lock().unwrap();
                let i = s.hooks.iter().position(|(op, _)| {
                    req.headers.iter().any(|(k, v)| {
                        k.eq_ignore_ascii_case("x-amz-target") && v.ends_with(&format!(".{op}"))
                    })
                });
                i.map(|i| s.hooks.remove(i).1)
            };
            if let Some(hook) = hook {
                hook();
            }
            let fault = {
                let mut s = st.lock().unwrap();
                s.requests += 1;
                s.headers.push(req.headers.clone());
                let f = if s.script.is_empty() {
                    if s.cut_every > 0 && s.requests.is_multiple_of(s.cut_every) {
                        Fault::CutResponse
                    } else {
                        s.then.clone()
                    }
                } else {
                    s.script.remove(0)
                };
                if f != Fault::Pass {
                    s.injected.push(f.clone());
                }
                f
            };
            match fault {
                Fault::Pass => forward(upstream_port, &req),
                Fault::Hang => Reply::Hang,
                Fault::Reset => Reply::Close,
                Fault::Error(status, kind) => Reply::Respond {
                    status,
                    headers: vec![("content-type".into(), "application/x-amz-json-1.0".into())],
                    body: format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected by the test proxy"}}"#)
                        .into_bytes(),
                },
                Fault::CutResponse => {
                    let _ = forward(upstream_port, &req);
                    Reply::Close
                }
                Fault::Cancelled(codes) => {
                    let reasons: Vec<String> = codes
                        .iter()
                        .map(|c| match *c {
                            "None" => r#"{"Code":"None"}"#.to_owned(),
                            c => format!(r#"{{"Code":"{c}","Message":"injected by the test proxy"}}"#),
                        })
                        .collect();
                    Reply::Respond {
                        status: 400,
                        headers: vec![("content-type".into(), "application/x-amz-json-1.0".into())],
                        body: format!(
                            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [{}]","CancellationReasons":[{}]}}"#,
                            codes.join(", "),
                            reasons.join(",")
                        )
                        .into_bytes(),
                    }
                }
                Fault::Slow(ms) => {
                    let answer = forward(upstream_port, &req);
                    // The server being slow, not the test waiting: the client sees a late answer.
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    answer
                }
            }
        });
        Self { server, state }
    }

    /// Runs `hook` once, just before the next `operation` request goes on.
    pub fn before(&self, operation: &str, hook: impl FnOnce() + Send + 'static) {
        self.state
            .lock()
            .unwrap()
            .hooks
            .push((operation.to_owned(), Box::new(hook)));
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// The next requests meet `script` in order, then every request meets `then`.
    pub fn set(&self, script: Vec<Fault>, then: Fault) {
        let mut s = self.state.lock().unwrap();
        s.script = script;
        s.then = then;
    }

    /// Holds every `operation` request (`TransactWriteItems`) until `n` have arrived.
    pub fn gather(&self, operation: &str, n: usize) {
        self.state.lock().unwrap().gate =
            Some((operation.to_owned(), Arc::new(Barrier::new(n)), usize::MAX));
    }

    /// Holds the next `n` `operation` requests until all `n` have arrived, once; later
    /// ones pass.
    pub fn gather_once(&self, operation: &str, n: usize) {
        self.state.lock().unwrap().gate =
            Some((operation.to_owned(), Arc::new(Barrier::new(n)), n));
    }

    pub fn cut_every(&self, n: u64) {
        self.state.lock().unwrap().cut_every = n;
    }

    /// The headers of every request so far (names as sent), with or without an operation.
    pub fn headers(&self) -> Vec<Vec<(String, String)>> {
        self.state.lock().unwrap().headers.clone()
    }

    /// The faults injected so far.
    pub fn injected(&self) -> Vec<Fault> {
        self.state.lock().unwrap().injected.clone()
    }
}

/// Sends `req` to dynalite on a fresh connection and returns its answer.
/// Passes `req` to the server on `port` and brings its answer back.
pub fn forward(port: u16, req: &Request) -> Reply {
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", port)) else {
        return Reply::Close;
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        if !k.eq_ignore_ascii_case("connection") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("connection: close\r\n\r\n");
    if up
        .write_all(head.as_bytes())
        .and_then(|_| up.write_all(&req.body))
        .is_err()
    {
        return Reply::Close;
    }
    let mut reader = BufReader::new(up);
    let mut status_line = String::new();
    if reader.read_line(&mut status_line).unwrap_or(0) == 0 {
        return Reply::Close;
    }
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let Some((mut headers, length)) = http::read_headers(&mut reader) else {
        return Reply::Close;
    };
    // Relayed as a complete answer of its own on the client's connection.
    headers.retain(|(k, _)| {
        !["content-length", "connection", "transfer-encoding"]
            .iter()
            .any(|h| k.eq_ignore_ascii_case(h))
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            if reader.read_exact(&mut body).is_err() {
                return Reply::Close;
            }
        }
        None => {
            let _ = reader.read_to_end(&mut body);
        }
    }
    Reply::Respond {
        status,
        headers,
        body,
    }
}
