//! `firefly-local serve`'s stand-in for CloudFront in front of FireFly's public firmware
//! bucket: the released files (of the memory store, or of the public bucket in moto's S3),
//! over TLS (OTA's URLs are `https://`, as
//! FireFly's tests require and the controllers fetch them), under a CA made for the run.
//! Its certificate (`ca.pem`, written where `serve` says) is what the device simulator is
//! told to trust (`firefly-local device ota --ca`).
//!
//! As FireFly's distribution serves the bucket: `GET /<class>/<hex>/<app>/<version>/<file>`
//! with the object's own `Content-Type` and `Cache-Control`; nothing under `revoked/` (the
//! bucket's policy keeps it private: 403); a missing file 404 (FireFly's distribution turns
//! both into a 200 `/error.html`, which a controller would take for a binary: the stand-in
//! says what happened instead).

use crate::firmware::bucket::MemoryBucket;
use crate::firmware::public::REVOKED;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::http::{self, HeaderValue, Method, StatusCode};
use std::sync::Arc;

/// A CA made for this run, and the server configuration of a certificate it signed for
/// `localhost` and `127.0.0.1`.
pub struct LocalCa {
    /// The CA's certificate, PEM: what a client trusts.
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl LocalCa {
    pub fn new() -> Result<Self, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let err = |e: rcgen::Error| e.to_string();
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::CommonName, "firefly-local CDN stand-in CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .map_err(err)?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;
        let der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| e.to_string())?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], der)
        .map_err(|e| e.to_string())?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }
}

/// Where the released files are.
pub enum Source {
    /// The memory store's public bucket.
    Memory(Arc<MemoryBucket>),
    /// The public bucket of an S3 server on this machine (moto's), read with `s3`.
    Upstream {
        s3: Box<crate::aws::s3::S3Client>,
        bucket: String,
    },
}

/// A released file as the source holds it: its bytes, `Content-Type` and `Cache-Control`.
type Released = (Bytes, Option<String>, Option<String>);

impl Source {
    /// The file at `key`; `None`: none. The error is an operator's text.
    async fn fetch(&self, key: &str) -> Result<Option<Released>, String> {
        match self {
            Self::Memory(public) => Ok(public.object(key).map(|(body, _)| {
                let headers = public.published(key);
                (
                    body,
                    headers.map(|p| p.content_type.to_owned()),
                    headers.map(|p| p.cache_control.to_owned()),
                )
            })),
            // Read with the bucket's credentials, as CloudFront's origin access reads it.
            Self::Upstream { s3, bucket } => s3
                .get_object_limited(bucket, key, 64 << 20)
                .await
                .map(|found| found.map(|o| (o.body, o.content_type, o.cache_control)))
                .map_err(|e| e.to_string()),
        }
    }

    /// One request's answer, as the distribution serves the bucket.
    pub async fn answer(&self, method: &Method, path: &str) -> http::Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return status(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let key = crate::s3_event::unquote_plus(&path.trim_start_matches('/').replace('+', "%2B"));
        if key.starts_with(REVOKED) {
            return status(StatusCode::FORBIDDEN, "revoked files are not served\n");
        }
        let (body, content_type, cache_control) = match self.fetch(&key).await {
            Ok(Some(found)) => found,
            Ok(None) => return status(StatusCode::NOT_FOUND, "no such released file\n"),
            Err(e) => {
                tracing::warn!(key, error = %e, "CDN stand-in: the S3 server failed");
                return status(StatusCode::BAD_GATEWAY, "the S3 server failed\n");
            }
        };
        let length = body.len();
        let mut r = http::Response::new(Full::new(if method == Method::HEAD {
            Bytes::new()
        } else {
            body
        }));
        let h = r.headers_mut();
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        for (name, value) in [
            (http::header::CONTENT_TYPE, content_type),
            (http::header::CACHE_CONTROL, cache_control),
        ] {
            if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                h.insert(name, v);
            }
        }
        r
    }
}

fn status(s: StatusCode, text: &str) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = s;
    r
}

/// Serves `source` over TLS on `listener` until the process ends.
pub async fn run(
    source: Source,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let source = Arc::new(source);
    loop {
        let (stream, _) = listener.accept().await?;
        let (acceptor, source) = (acceptor.clone(), Arc::clone(&source));
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |req: http::Request<Incoming>| {
                let source = Arc::clone(&source);
                async move {
                    let answer = source.answer(req.method(), req.uri().path()).await;
                    Ok::<_, std::convert::Infallible>(answer)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn released_files_are_served_with_their_headers_and_revoked_ones_never() {
        let public = Arc::new(MemoryBucket::new("public", None));
        let headers = crate::firmware::status::PUBLISHED;
        use crate::firmware::bucket::Bucket as _;
        let key = "controller/0x1/controller/1.0.0/Controller.ino.bin";
        public
            .publish(key, Bytes::from_static(b"app"), headers)
            .await
            .unwrap();
        public.put_quietly(&format!("{REVOKED}{key}"), Bytes::from_static(b"old"));
        let cdn = Source::Memory(public.clone());
        let r = cdn.answer(&Method::GET, &format!("/{key}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], headers.content_type);
        assert_eq!(r.headers()["cache-control"], headers.cache_control);
        let revoked = cdn.answer(&Method::GET, &format!("/{REVOKED}{key}")).await;
        assert_eq!(revoked.status(), 403);
        assert_eq!(cdn.answer(&Method::GET, "/nothing").await.status(), 404);
        assert!(LocalCa::new().unwrap().ca_pem.contains("BEGIN CERTIFICATE"));
    }
}
