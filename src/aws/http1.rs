//! The DynamoDB client's HTTP transport: HTTP/1.1 over rustls (ring), hyper's pooled client.
//!
//! The SDK's stock client links HTTP/2, proxy support and the system root store; DynamoDB
//! speaks HTTP/1.1, Lambda has no proxy, and the roots are the five AWS ones. Dropping them
//! is most of what keeps `bootstrap` inside its size budget (README, Cold start). The
//! connections init opens ([`Http1Client::warm`]) wait in the pool's connector for the first
//! request to their origin. Timeouts:
//! connecting is bounded here; each attempt and the whole operation are bounded by the SDK's
//! timeout config, which wraps every call of this connector.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::body::SdkBody;
use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower_service::Service;

/// An HTTP/1.1 client for the AWS SDK.
#[derive(Clone, Debug)]
pub struct Http1Client {
    client: Client<Opened, SdkBody>,
    opened: Opened,
}

impl Http1Client {
    /// `roots` are the only trust anchors; plain `http://` stays allowed for local servers.
    pub fn new(roots: rustls::RootCertStore, connect_timeout: Duration) -> Result<Self, String> {
        let tls = tls_config(roots)?;
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let opened = Opened {
            connect: https,
            ready: Arc::default(),
        };
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                // DynamoDB closes idle connections after about a minute; retire them first
                // rather than learn it from a failed write.
                .pool_idle_timeout(Duration::from_secs(45))
                .build(opened.clone()),
            opened,
        })
    }
}

impl Http1Client {
    /// Sends one request on the shared pool: the signed REST calls of [`super::s3`] use
    /// the same connections and trust roots as the DynamoDB client.
    pub async fn send(
        &self,
        request: hyper::Request<SdkBody>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }

    /// Opens a connection to `url`'s origin (DNS, TCP and the TLS handshake, no request) and
    /// keeps it for the first request there, so that request finds the handshake done
    /// without init waiting for an answer to a request of its own. Any failure is only
    /// logged: the call it would have sped up connects again and reports it properly.
    pub async fn warm(&self, url: &str) {
        let Ok(uri) = url.parse::<Uri>() else {
            return;
        };
        let Some(origin) = Origin::of(&uri) else {
            return;
        };
        let started = Instant::now();
        let mut connect = self.opened.connect.clone();
        let opening = async move {
            std::future::poll_fn(|cx| connect.poll_ready(cx)).await?;
            connect.call(uri).await
        };
        match tokio::time::timeout(Duration::from_secs(1), opening).await {
            Ok(Ok(stream)) => {
                tracing::debug!(
                    micros = started.elapsed().as_micros() as u64,
                    "connection opened during init"
                );
                self.opened.keep(origin, stream);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "connection warm-up failed"),
            Err(_) => tracing::debug!("connection warm-up timed out"),
        }
    }
}

/// A connection is handed to a request only this long after it was opened: servers close
/// idle connections (DynamoDB after about a minute), and one opened by an init that Lambda
/// ran long before the first invoke is better opened again than found closed.
const OPENED_FRESH_FOR: Duration = Duration::from_secs(10);

type Https = HttpsConnector<TcpConnector>;
type Stream = <Https as Service<Uri>>::Response;

/// The pool's connector: the connection init opened to an origin goes to the first request
/// there (once, while fresh); every other connection is made as usual.
#[derive(Clone)]
struct Opened {
    connect: Https,
    ready: Arc<Mutex<Vec<(Origin, Instant, Stream)>>>,
}

impl Opened {
    fn keep(&self, origin: Origin, stream: Stream) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.push((origin, Instant::now(), stream));
        }
    }

    /// The connection opened to `uri`'s origin, if there is one still fresh; a stale one is
    /// dropped (closed) here.
    fn take(&self, uri: &Uri, now: Instant) -> Option<Stream> {
        // Every connection the pool makes asks; after init's are taken, none need the origin.
        let mut ready = self.ready.lock().ok()?;
        if ready.is_empty() {
            return None;
        }
        let origin = Origin::of(uri)?;
        let at = ready.iter().position(|(o, _, _)| *o == origin)?;
        let (_, opened, stream) = ready.swap_remove(at);
        (now.saturating_duration_since(opened) < OPENED_FRESH_FOR).then_some(stream)
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.ready.lock().map(|r| r.len()).unwrap_or(0);
        f.debug_struct("Opened").field("ready", &ready).finish()
    }
}

impl Service<Uri> for Opened {
    type Response = Stream;
    type Error = <Https as Service<Uri>>::Error;
    type Future = <Https as Service<Uri>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.connect.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self.take(&uri, Instant::now()) {
            Some(stream) => Box::pin(std::future::ready(Ok(stream))),
            None => self.connect.call(uri),
        }
    }
}

/// Scheme, host and port: what makes two URLs' connections interchangeable.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: String,
    port: u16,
}

impl Origin {
    fn of(uri: &Uri) -> Option<Self> {
        let https = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        Some(Self {
            https,
            host: uri.host()?.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        })
    }
}

/// The client TLS configuration of every outbound HTTPS call: ring, safe protocol
/// versions, `roots` as the only trust anchors.
pub fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl HttpClient for Http1Client {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Http1Client {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let response = self.client.request(request);
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(r) => HttpResponse::try_from(r.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(classify(e)),
            }
        })
    }
}

/// What a failed exchange was, for callers outside the SDK: TLS that does not verify (a
/// configuration error, never retried), or anything else (worth a retry).
pub fn is_tls_failure(err: &hyper_util::client::legacy::Error) -> Option<String> {
    tls_error(err).map(ToString::to_string)
}

/// Tells the SDK's retry strategy what failed: connection-level failures (refused, reset,
/// closed, timed out while connecting) are I/O errors, which it retries; the rest are not.
/// A TLS failure (a certificate that does not verify, a protocol mismatch) is a
/// configuration error: a "user" error, never retried, so it surfaces at once as a 500.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    if let Some(tls) = tls_error(&err) {
        return ConnectorError::user(
            format!("TLS with the DynamoDB endpoint failed: {tls} (a configuration error: check the endpoint and FIREFLY_EXTRA_CA_FILE)").into(),
        );
    }
    let io_like = err.is_connect()
        || source::<std::io::Error>(&err).is_some()
        || source::<hyper::Error>(&err)
            .is_some_and(|h| h.is_closed() || h.is_canceled() || h.is_incomplete_message());
    let timed_out = source::<hyper::Error>(&err).is_some_and(hyper::Error::is_timeout)
        || source::<std::io::Error>(&err).is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
    if timed_out {
        ConnectorError::timeout(err.into())
    } else if io_like {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

/// The rustls error behind a failed connection, if TLS is what failed. tokio-rustls wraps
/// it in an `io::Error` (sometimes wrapped again), whose `source()` skips the wrapped error
/// itself: step into each `io::Error` with `get_ref`.
fn tls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

fn source<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain HTTP server on 127.0.0.1 that counts the connections it accepts and the
    /// requests it answers (each `200` with an empty body).
    async fn counting_server() -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let requests = Arc::new(AtomicUsize::new(0));
        let answered = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let answered = answered.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            answered.fetch_add(1, Ordering::SeqCst);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (port, accepted, requests)
    }

    fn client() -> Http1Client {
        Http1Client::new(rustls::RootCertStore::empty(), Duration::from_secs(1)).unwrap()
    }

    async fn get(client: &Http1Client, url: &str) -> u16 {
        let request = hyper::Request::get(url).body(SdkBody::empty()).unwrap();
        client.send(request).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn the_connection_opened_during_init_carries_the_first_request_and_no_request_of_its_own()
    {
        let (port, accepted, requests) = counting_server().await;
        let client = client();
        client.warm(&format!("http://127.0.0.1:{port}/")).await;
        assert_eq!(client.opened.ready.lock().unwrap().len(), 1);
        assert_eq!(
            get(&client, &format!("http://127.0.0.1:{port}/table")).await,
            200
        );
        assert_eq!(
            get(&client, &format!("http://127.0.0.1:{port}/table")).await,
            200
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        assert!(client.opened.ready.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_connection_is_handed_only_to_its_origin_and_only_while_fresh() {
        let (port, _, _) = counting_server().await;
        let (other, _, _) = counting_server().await;
        let client = client();
        let url = format!("http://127.0.0.1:{port}/");
        client.warm(&url).await;
        let now = Instant::now();
        let elsewhere = format!("http://127.0.0.1:{other}/").parse().unwrap();
        assert!(client.opened.take(&elsewhere, now).is_none());
        let https = format!("https://127.0.0.1:{port}/").parse().unwrap();
        assert!(client.opened.take(&https, now).is_none());
        let later = now + OPENED_FRESH_FOR;
        assert!(client.opened.take(&url.parse().unwrap(), later).is_none());
        // Taken, stale, it is gone: the request after it connects again.
        assert!(client.opened.ready.lock().unwrap().is_empty());

        client.warm(&url).await;
        let same = format!("http://127.0.0.1:{port}/other/path?x=1")
            .parse()
            .unwrap();
        assert!(client.opened.take(&same, Instant::now()).is_some());
        assert!(client.opened.take(&same, Instant::now()).is_none());
    }

    #[tokio::test]
    async fn nothing_listening_keeps_nothing() {
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = client();
        client.warm(&format!("http://127.0.0.1:{closed}/")).await;
        assert!(client.opened.ready.lock().unwrap().is_empty());
    }
}
