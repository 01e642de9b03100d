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

/// The keys of a local CA and its server certificate.
#[allow(dead_code)]
#[derive(Clone, Copy)]
pub enum Keys {
    /// ECDSA P-256: the cheapest to make.
    P256,
    /// RSA 2048, as the chains DynamoDB's and S3's regional endpoints present (Amazon RSA
    /// 2048 M0x intermediates under Amazon Root CA 1): what the benches verify, so that a
    /// handshake costs what it costs against AWS (an ECDSA P-256 signature check costs
    /// ring about 0.7 M instructions, an RSA 2048 one a small fraction of that).
    Rsa2048,
}

/// A local CA and a certificate for localhost/127.0.0.1 signed by it, so that the first
/// DynamoDB call pays a real TLS handshake with certificate verification.
#[allow(dead_code)]
pub fn make_ca(dir: &Path) -> Tls {
    make_ca_with(dir, Keys::P256)
}

/// As [`make_ca`], with `keys`.
pub fn make_ca_with(dir: &Path, keys: Keys) -> Tls {
    let p = |n: &str| dir.join(n);
    let newkey: &[&str] = match keys {
        Keys::P256 => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        Keys::Rsa2048 => &["-newkey", "rsa:2048"],
    };
    let openssl = |args: &[&str]| {
        run(Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null()));
    };
    openssl(
        &[
            &["req", "-x509"][..],
            newkey,
            &[
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
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            newkey,
            &[
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
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
