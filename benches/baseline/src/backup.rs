//! The typical shape of a Rust Lambda that restores a device's backup (FireFly's
//! `devices-backup-get`): the device from DynamoDB, its request's nonce recorded, the object
//! from S3 with the SDK's defaults. It skips the ECDSA check ours makes (about 0.1 M
//! instructions), which only flatters it.
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use std::time::{SystemTime, UNIX_EPOCH};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let s3 = aws_sdk_s3::Client::new(&config);
    let devices = std::env::var("DYNAMODB_DEVICES_TABLE_NAME")?;
    let keys = std::env::var("DYNAMODB_REGISTRATION_KEYS_TABLE_NAME")?;
    let bucket = std::env::var("S3_BACKUP_BUCKET_NAME")?;
    run(service_fn(|req: Request| {
        let (dynamodb, s3) = (dynamodb.clone(), s3.clone());
        let (devices, keys, bucket) = (devices.clone(), keys.clone(), bucket.clone());
        async move {
            let uuid = req
                .path_parameters_ref()
                .and_then(|p| p.first("uuid"))
                .unwrap_or_default()
                .to_owned();
            let device = dynamodb
                .get_item()
                .table_name(devices)
                .key("uuid", AttributeValue::S(uuid.clone()))
                .send()
                .await?;
            if device.item.is_none() {
                return Ok(Response::builder()
                    .status(401)
                    .body(Body::Text(r#"{"message":"Device not registered"}"#.into()))?);
            }
            let nonce = req
                .headers()
                .get("x-device-nonce")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            dynamodb
                .put_item()
                .table_name(keys)
                .item("key", AttributeValue::S(format!("device-nonce#{uuid}#{nonce}")))
                .item("ttl", AttributeValue::N((now + 12).to_string()))
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", "key")
                .send()
                .await?;
            let object = s3.get_object().bucket(bucket).key(&uuid).send().await?;
            let etag = object
                .metadata()
                .and_then(|m| m.get("etag"))
                .cloned()
                .unwrap_or_default();
            let bytes = object.body.collect().await?.into_bytes();
            Ok::<_, Error>(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/octet-stream")
                    .header("etag", format!("\"{etag}\""))
                    .body(Body::Binary(bytes.to_vec()))?,
            )
        }
    }))
    .await
}
