//! S3 in moto's server (the same server as its DynamoDB), read and prepared through the
//! binary's own S3 client: buckets made as FireFly's stack makes them, objects read back.

use super::dynamo::block_on;
use firefly_api::aws::s3::{Object, S3Client};

/// A client of the S3 at `endpoint`, with the test credentials.
pub fn client(endpoint: &str) -> S3Client {
    let endpoint = endpoint.to_owned();
    let env = move |k: &str| match k {
        "AWS_REGION" => Some("eu-west-1".to_owned()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("test".to_owned()),
        "AWS_ENDPOINT_URL_S3" => Some(endpoint.clone()),
        _ => None,
    };
    let http = firefly_api::aws::transport(&env).unwrap();
    S3Client::from_env(&env, http).unwrap()
}

/// Makes `bucket` (FireFly's backup bucket is versioned and SSE-KMS; moto keeps objects
/// the same either way).
pub fn create_bucket(endpoint: &str, bucket: &str) {
    block_on(client(endpoint).create_bucket(bucket)).unwrap();
}

/// The object stored under `key`, if any.
pub fn get(endpoint: &str, bucket: &str, key: &str) -> Option<Object> {
    block_on(client(endpoint).get_object(bucket, key)).unwrap()
}

/// Turns versioning on, as FireFly's buckets have it (moto then answers every write with a
/// version id, and a delete with a marker).
pub fn enable_versioning(endpoint: &str, bucket: &str) {
    use std::io::{Read, Write};
    let authority = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Status></VersioningConfiguration>";
    let mut s = std::net::TcpStream::connect(authority).unwrap();
    write!(
        s,
        "PUT /{bucket}?versioning HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
