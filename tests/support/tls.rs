//! A local CA and a server certificate for localhost/127.0.0.1 signed by it (openssl), so
//! that a TLS server on 127.0.0.1 (dynalite with `--tls`) can be trusted through
//! `FIREFLY_EXTRA_CA_FILE`, or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct Tls {
    /// The CA certificate (what `FIREFLY_EXTRA_CA_FILE` names to trust the server).
    pub ca: PathBuf,
    /// The system bundle plus the CA (for builds that read the system store).
    pub bundle: PathBuf,
    pub key: PathBuf,
    pub cert: PathBuf,
}

fn run(cmd: &mut Command) {
    let status = cmd.status().expect("spawn openssl");
    assert!(status.success(), "{cmd:?} failed");
}

/// A local CA and a certificate for localhost/127.0.0.1 signed by it, so that the first
/// DynamoDB call pays a real TLS handshake with certificate verification.
pub fn make_ca(dir: &Path) -> Tls {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        run(Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null()));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Firefly bench CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        p("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    // The baseline reads the system store; give it the system bundle plus our CA, so it
    // does the work it would do in Lambda.
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.extend(std::fs::read(p("ca.pem")).unwrap());
    std::fs::write(p("bundle.pem"), bundle).unwrap();
    Tls {
        ca: p("ca.pem"),
        bundle: p("bundle.pem"),
        key: p("server.key"),
        cert: p("server.pem"),
    }
}
