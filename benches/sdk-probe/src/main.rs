//! Makes the DynamoDB client as `bootstrap` makes it and, with `--features s3`, an S3 client
//! beside it that can do FireFly's S3 operations (Get, Put with metadata, Delete, Copy,
//! HeadObject, ListObjectsV2, a presigned GET). With an argument it calls them (so the
//! optimizer keeps them); without, it only makes the clients and exits: what init pays.
use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::Region;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let call = std::env::args().nth(1);
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(EnvironmentVariableCredentialsProvider::new())
            .build(),
    );
    if let Some(key) = &call {
        let _ = dynamodb.get_item().table_name(key).send().await;
    }
    #[cfg(feature = "s3")]
    {
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .build(),
        );
        if let Some(key) = &call {
            let b = "bucket";
            let _ = s3.get_object().bucket(b).key(key).send().await;
            let _ = s3
                .put_object()
                .bucket(b)
                .key(key)
                .metadata("etag", key)
                .body(Vec::from(key.as_bytes()).into())
                .send()
                .await;
            let _ = s3.delete_object().bucket(b).key(key).send().await;
            let _ = s3.copy_object().bucket(b).key(key).copy_source(key).send().await;
            let _ = s3.head_object().bucket(b).key(key).send().await;
            let _ = s3.list_objects_v2().bucket(b).prefix(key).send().await;
            let presigning = aws_sdk_s3::presigning::PresigningConfig::expires_in(
                std::time::Duration::from_secs(900),
            )
            .unwrap();
            if let Ok(p) = s3.get_object().bucket(b).key(key).presigned(presigning).await {
                println!("{}", p.uri());
            }
        }
    }
}
