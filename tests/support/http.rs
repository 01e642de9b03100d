//! A tiny HTTP/1.1 server on 127.0.0.1 for stand-ins (Lambda Runtime API, AppConfig
//! extension). Thread per connection, keep-alive, Content-Length bodies: exactly what the
//! binary's hyper clients speak, and nothing that needs a crate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

pub type Headers = Vec<(String, String)>;

pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Keep the connection open and never answer (a stuck peer).
    Hang,
    /// Close the connection without answering (a peer that crashed or reset).
    Close,
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::Respond {
            status: 200,
            headers: vec![],
            body: body.into(),
        }
    }

    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::Respond {
            status,
            headers: vec![],
            body: body.into(),
        }
    }
}

/// A running server; stops accepting when dropped.
pub struct Server {
    pub port: u16,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
}

impl Server {
    /// Connections accepted so far (whether or not a request came on them).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits (up to 5 s) until `n` connections were accepted: a client's connect returns
    /// once the kernel has the connection, before this server's accept loop counts it.
    pub fn await_connections(&self, n: usize) -> usize {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.connections() < n && std::time::Instant::now() < deadline {
            thread::yield_now();
        }
        self.connections()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub fn serve<F>(handler: F) -> Server
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    serve_on(handler, Some)
}

/// As [`serve`], over TLS with the PEM certificate chain and key at `cert` and `key` (a
/// stand-in for an HTTPS service: S3 in the cold-start bench).
pub fn serve_tls<F>(cert: &std::path::Path, key: &std::path::Path, handler: F) -> Server
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
{
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    serve_on(handler, move |tcp| {
        let tls = rustls::ServerConnection::new(config.clone()).ok()?;
        Some(rustls::StreamOwned::new(tls, tcp))
    })
}

/// The accept loop: each connection on its own thread, as `wrap` makes it a stream.
fn serve_on<F, S>(handler: F, wrap: impl Fn(TcpStream) -> Option<S> + Send + 'static) -> Server
where
    F: Fn(Request) -> Reply + Send + Sync + 'static,
    S: Read + Write + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(handler);
    let stop2 = stop.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            accepted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_nodelay(true);
            let Some(stream) = wrap(stream) else { continue };
            let handler = handler.clone();
            let stop = stop2.clone();
            thread::spawn(move || exchange(BufReader::new(stream), &*handler, &stop));
        }
    });
    Server {
        port,
        stop,
        connections,
    }
}

/// Requests and answers on one connection, until it closes.
fn exchange<S: Read + Write>(
    mut reader: BufReader<S>,
    handler: &(dyn Fn(Request) -> Reply + Send + Sync),
    stop: &AtomicBool,
) {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let Some((headers, length)) = read_headers(&mut reader) else {
            return;
        };
        let mut body = vec![0; length.unwrap_or(0)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match handler(Request {
            method,
            path,
            headers,
            body,
        }) {
            Reply::Close => return,
            Reply::Hang => {
                // Hold the socket until the peer gives up.
                let mut sink = [0u8; 1024];
                while reader.read(&mut sink).unwrap_or(0) > 0 {}
                return;
            }
            Reply::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                if !headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    head.push_str("content-type: application/json\r\n");
                }
                for (k, v) in headers {
                    if k.eq_ignore_ascii_case("content-length") {
                        continue;
                    }
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                let writer = reader.get_mut();
                if writer.write_all(head.as_bytes()).is_err()
                    || writer.write_all(&body).is_err()
                    || writer.flush().is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Reads header lines up to the blank line: the headers, and Content-Length if given.
/// `None` when the peer closed the connection first.
pub fn read_headers(reader: &mut impl BufRead) -> Option<(Headers, Option<usize>)> {
    let mut headers = Vec::new();
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some((headers, length));
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}
