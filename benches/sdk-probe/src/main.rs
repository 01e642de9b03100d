//! Makes the DynamoDB client as `bootstrap` makes it and, with a feature, another service's
//! client beside it able to do FireFly's operations of that service: `s3` (Get, Put with
//! metadata, Delete, Copy, HeadObject, ListObjectsV2, a presigned GET), `cloudfront`
//! (CreateInvalidation), `cognito` (the users functions' admin calls), `appconfig` (the
//! AppConfig page's listings, hosted versions and deployments, and Lambda's ListFunctions).
//! With an argument it calls them (so the optimizer keeps them); without, it only makes the
//! clients and exits: what init pays.
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
    #[cfg(feature = "cloudfront")]
    {
        let c = aws_sdk_cloudfront::Client::from_conf(
            aws_sdk_cloudfront::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .build(),
        );
        if let Some(key) = &call {
            use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
            let batch = InvalidationBatch::builder()
                .paths(Paths::builder().quantity(1).items(key).build().unwrap())
                .caller_reference(key)
                .build()
                .unwrap();
            let _ = c
                .create_invalidation()
                .distribution_id(key)
                .invalidation_batch(batch)
                .send()
                .await;
        }
    }
    #[cfg(feature = "cognito")]
    {
        let c = aws_sdk_cognitoidentityprovider::Client::from_conf(
            aws_sdk_cognitoidentityprovider::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .build(),
        );
        if let Some(key) = &call {
            let _ = c.list_users().user_pool_id(key).send().await;
            let _ = c.list_users_in_group().user_pool_id(key).group_name(key).send().await;
            let _ = c.admin_get_user().user_pool_id(key).username(key).send().await;
            let _ = c.admin_create_user().user_pool_id(key).username(key).send().await;
            let _ = c.admin_delete_user().user_pool_id(key).username(key).send().await;
            let _ = c
                .admin_add_user_to_group()
                .user_pool_id(key)
                .username(key)
                .group_name(key)
                .send()
                .await;
            let _ = c
                .admin_remove_user_from_group()
                .user_pool_id(key)
                .username(key)
                .group_name(key)
                .send()
                .await;
            let _ = c
                .admin_list_groups_for_user()
                .user_pool_id(key)
                .username(key)
                .send()
                .await;
            let _ = c.admin_user_global_sign_out().user_pool_id(key).username(key).send().await;
        }
    }
    #[cfg(feature = "appconfig")]
    {
        let c = aws_sdk_appconfig::Client::from_conf(
            aws_sdk_appconfig::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .build(),
        );
        let l = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("eu-west-1"))
                .credentials_provider(EnvironmentVariableCredentialsProvider::new())
                .build(),
        );
        if let Some(key) = &call {
            let _ = l.list_functions().send().await;
            let _ = c.list_applications().send().await;
            let _ = c.list_environments().application_id(key).send().await;
            let _ = c.list_configuration_profiles().application_id(key).send().await;
            let _ = c
                .list_hosted_configuration_versions()
                .application_id(key)
                .configuration_profile_id(key)
                .send()
                .await;
            let _ = c
                .get_hosted_configuration_version()
                .application_id(key)
                .configuration_profile_id(key)
                .version_number(1)
                .send()
                .await;
            let _ = c
                .create_hosted_configuration_version()
                .application_id(key)
                .configuration_profile_id(key)
                .content_type("application/json")
                .content(aws_smithy_types::Blob::new(key.as_bytes()))
                .send()
                .await;
            let _ = c.list_deployments().application_id(key).environment_id(key).send().await;
            let _ = c
                .start_deployment()
                .application_id(key)
                .environment_id(key)
                .configuration_profile_id(key)
                .configuration_version("1")
                .deployment_strategy_id(key)
                .send()
                .await;
            let _ = c.create_application().name(key).send().await;
            let _ = c.create_environment().application_id(key).name(key).send().await;
            let _ = c
                .create_configuration_profile()
                .application_id(key)
                .name(key)
                .location_uri("hosted")
                .send()
                .await;
            let _ = c.delete_application().application_id(key).send().await;
        }
    }
}
