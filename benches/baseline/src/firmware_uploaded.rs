//! The typical shape of a Rust Lambda that ingests a firmware ZIP (FireFly's
//! `s3-firmware-uploaded`), as the examples teach it: `lambda_runtime` with
//! `aws_lambda_events`' S3 event, the SDK's S3 and DynamoDB clients with their defaults,
//! the `zip` crate with its default features, `sha2` and `uuid`. For each record: move the
//! upload from `incoming/` to `processing/`, read it, check the manifest's files against
//! their SHA-256, file the record, move it to `processed/`. It skips the limits, the
//! partition table and the ERROR records ours makes, which only flatters it.
use aws_lambda_events::event::s3::S3Event;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let s3 = aws_sdk_s3::Client::new(&config);
    let table = std::env::var("DYNAMODB_FIRMWARE_TABLE_NAME")?;
    run(service_fn(|event: LambdaEvent<S3Event>| {
        let (dynamodb, s3, table) = (dynamodb.clone(), s3.clone(), table.clone());
        async move {
            for record in event.payload.records {
                let bucket = record.s3.bucket.name.unwrap_or_default();
                let key = record.s3.object.key.unwrap_or_default();
                let zip_name = format!("{}.zip", uuid::Uuid::new_v4());
                let processing = format!("processing/{zip_name}");
                s3.copy_object()
                    .bucket(&bucket)
                    .copy_source(format!("{bucket}/{key}"))
                    .key(&processing)
                    .send()
                    .await?;
                s3.delete_object().bucket(&bucket).key(&key).send().await?;
                let object = s3
                    .get_object()
                    .bucket(&bucket)
                    .key(&processing)
                    .send()
                    .await?;
                let bytes = object.body.collect().await?.into_bytes();
                let zip_sha256 = hex(&Sha256::digest(&bytes));
                let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..]))?;
                let manifest: serde_json::Value = {
                    let mut text = String::new();
                    archive.by_name("manifest.json")?.read_to_string(&mut text)?;
                    serde_json::from_str(&text)?
                };
                let files = manifest["files"].as_array().cloned().unwrap_or_default();
                for file in &files {
                    let name = file["name"].as_str().unwrap_or_default();
                    let mut data = Vec::new();
                    archive.by_name(name)?.read_to_end(&mut data)?;
                    if hex(&Sha256::digest(&data)) != file["sha256"].as_str().unwrap_or_default()
                    {
                        return Err(Error::from(format!("SHA256 mismatch for {name}")));
                    }
                }
                let text = |f: &str| AttributeValue::S(manifest[f].as_str().unwrap_or_default().into());
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
                dynamodb
                    .put_item()
                    .table_name(&table)
                    .item(
                        "pk",
                        AttributeValue::S(format!(
                            "{}#{}",
                            manifest["product_hex"].as_str().unwrap_or_default(),
                            manifest["application"].as_str().unwrap_or_default()
                        )),
                    )
                    .item("version", text("version"))
                    .item("product_hex", text("product_hex"))
                    .item("class", text("class"))
                    .item("zip_name", AttributeValue::S(zip_name.clone()))
                    .item("zip_sha256", AttributeValue::S(zip_sha256))
                    .item("zip_size", AttributeValue::N(bytes.len().to_string()))
                    .item("uploaded_at", AttributeValue::N(now.to_string()))
                    .item("release_status", AttributeValue::S("READY_TO_TEST".into()))
                    .send()
                    .await?;
                s3.copy_object()
                    .bucket(&bucket)
                    .copy_source(format!("{bucket}/{processing}"))
                    .key(format!("processed/{zip_name}"))
                    .send()
                    .await?;
                s3.delete_object()
                    .bucket(&bucket)
                    .key(&processing)
                    .send()
                    .await?;
            }
            Ok::<_, Error>(())
        }
    }))
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
