//! Firmware records: what FireFly's console lists on its Firmware page
//! (`GET /firmware`, `GET /firmware/{zip_name}`: [`get`]), in FireFly's `firefly-firmware`
//! table (hash key `pk` = `class#product_hex#application`, range key `version`; GSIs
//! `product_hex-index` and `zip_name-index`, projection ALL), made by its own stack; and
//! the two functions S3 invokes on FireFly's private firmware bucket, which file them:
//! [`uploaded`] (ZIPs in `incoming/`) and [`deleted`] (ZIPs leaving `processed/` and
//! `errors/`).

pub mod archive;
pub mod bucket;
#[cfg(any(test, feature = "tools", feature = "test-hooks"))]
pub mod build;
pub mod delete;
pub mod deleted;
pub mod download;
pub mod get;
#[cfg(test)]
mod lifecycle_tests;
pub mod ota;
pub mod public;
pub mod status;
pub mod store;
pub mod uploaded;

use crate::deploy::{READS_APPCONFIG, Resource, Use};
use crate::error::StartupError;
use crate::init::{Init, StoreMode};
use crate::route::{Route, S3Notification};
use std::sync::Arc;
use store::{DynamoFirmwareStore, FirmwareStore, MemoryFirmwareStore};

/// The variable that names the table (FireFly's).
pub const TABLE_ENV: &str = crate::vars::DYNAMODB_FIRMWARE_TABLE_NAME.name;

/// The table, deployed by FireFly's `dynamodb-firmware` workflow.
pub const TABLE: Resource = Resource::DynamoTable {
    name: "firefly-firmware",
    env: TABLE_ENV,
    stack: "firefly-dynamodb-firmware",
    workflow: "dynamodb-firmware",
};

/// The variable that names the private firmware bucket (FireFly's name for it).
pub const BUCKET_ENV: &str = crate::vars::S3_FIRMWARE_PRIVATE_BUCKET_NAME.name;

/// FireFly's private firmware bucket (`templates/s3-firmware.yaml`: versioned, SSE-S3),
/// named by the `FirmwareBucketName` parameter as FireFly's function templates name it.
/// Its stack owns the notifications that invoke the ingest functions; it takes their
/// ARNs, so on a first install the functions deploy first (docs/deploying.md).
pub const BUCKET: Resource = Resource::Bucket {
    parameter: "FirmwareBucketName",
    output: "BucketName",
    env: BUCKET_ENV,
    stack: "firefly-s3-firmware",
    workflow: "s3-firmware",
};

/// FireFly's public firmware bucket (`templates/s3-firmware-public.yaml`), where released
/// files live, named by the `FirmwarePublicBucketName` parameter as FireFly's function
/// templates name it.
pub const PUBLIC_BUCKET: Resource = Resource::Bucket {
    parameter: "FirmwarePublicBucketName",
    output: "BucketName",
    env: crate::vars::S3_FIRMWARE_PUBLIC_BUCKET_NAME.name,
    stack: "firefly-s3-firmware-public",
    workflow: "s3-firmware-public",
};

/// The CloudFront distribution in front of the public bucket
/// (`templates/cloudfront-firmware.yaml`), named by `CloudFrontDistributionId` as FireFly's
/// templates name it.
pub const DISTRIBUTION: Resource = Resource::Distribution {
    parameter: "CloudFrontDistributionId",
    output: "DistributionId",
    env: crate::vars::CLOUDFRONT_DISTRIBUTION_ID.name,
    stack: "firefly-cloudfront-firmware",
    workflow: "cloudfront-firmware",
};

/// What changing the public side ([`public::Public`]) needs of the public bucket: the
/// folder listed, files written, copied to `revoked/` (a copy reads and writes) and
/// deleted.
pub const CHANGES_PUBLIC_FILES: Use = Use {
    resource: &PUBLIC_BUCKET,
    actions: &[
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    ],
    objects: &[],
};

/// What telling CloudFront to forget a version's files needs.
pub const INVALIDATES: Use = Use {
    resource: &DISTRIBUTION,
    actions: &["cloudfront:CreateInvalidation"],
    objects: &[],
};

/// The domain OTA's URLs name: FireFly's firmware domain, from its CloudFront stack.
pub const DOMAIN: Resource = Resource::StackValue {
    parameter: "CloudFrontDomain",
    output: "FirmwareDomain",
    env: crate::vars::CLOUDFRONT_DOMAIN.name,
    stack: "firefly-cloudfront-firmware",
    workflow: "cloudfront-firmware",
};

/// Whether this deployment is production, where the debug build is never released
/// (FireFly's `EnvironmentName`).
pub const ENVIRONMENT: Resource = Resource::Setting {
    parameter: "EnvironmentName",
    env: crate::vars::ENVIRONMENT_NAME.name,
    allowed: &["dev", "production"],
    default: "production",
};

/// The public bucket's name in memory runs without `S3_FIRMWARE_PUBLIC_BUCKET_NAME`.
pub const LOCAL_PUBLIC_BUCKET: &str = "firefly-firmware-public-local";

/// FireFly's debug build's version: its CI uploads it on every build, and outside
/// production it may be released.
pub const DEBUG_VERSION: &str = "9999.99.99";

/// The bucket's prefixes, as FireFly's pipeline moves a ZIP through them.
pub const INCOMING: &str = "incoming/";
pub const PROCESSING: &str = "processing/";
pub const PROCESSED: &str = "processed/";
pub const ERRORS: &str = "errors/";

/// The bucket's name in memory runs without `S3_FIRMWARE_PRIVATE_BUCKET_NAME`.
pub const LOCAL_BUCKET: &str = "firefly-firmware-local";

const UPLOADED_FUNCTION: &str = "firefly-func-s3-firmware-uploaded";
const DELETED_FUNCTION: &str = "firefly-func-s3-firmware-deleted";

/// `firefly-func-s3-firmware-uploaded`, on `s3:ObjectCreated:*` of `incoming/*.zip`.
pub const UPLOADED: Route = Route {
    key: "S3 ObjectCreated incoming/*.zip",
    function: UPLOADED_FUNCTION,
    summary: "Checks a firmware ZIP put in incoming/ and files its record (READY_TO_TEST or ERROR)",
    uses: &[
        Use {
            resource: &TABLE,
            actions: &["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"],
            objects: &[],
        },
        Use {
            resource: &BUCKET,
            // ListBucket: a missing key reads as missing (a redelivery), not AccessDenied.
            // The Version actions: the upload's own version leaves incoming/ for good.
            actions: &[
                "s3:ListBucket",
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            ],
            objects: &[],
        },
        // A released debug build an upload replaces is revoked first: its public files
        // move to revoked/, CloudFront forgets them.
        CHANGES_PUBLIC_FILES,
        INVALIDATES,
        READS_APPCONFIG,
    ],
    answers: &[],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::s3_endpoint!(
        uploaded::uploaded,
        Ingest::build,
        S3Notification {
            bucket: &BUCKET,
            events: &["s3:ObjectCreated:*"],
            prefixes: &[INCOMING],
            suffix: ".zip",
        }
    ),
};

/// `firefly-func-s3-firmware-deleted`, on `s3:ObjectRemoved:*` of `processed/*.zip` and
/// `errors/*.zip`.
pub const DELETED: Route = Route {
    key: "S3 ObjectRemoved processed/*.zip errors/*.zip",
    function: DELETED_FUNCTION,
    summary: "Marks the records of a ZIP deleted from processed/ or errors/ DELETED",
    uses: &[
        Use {
            resource: &TABLE,
            actions: &["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"],
            objects: &[],
        },
        // Nothing is read from the bucket: it is here for its notification.
        Use {
            resource: &BUCKET,
            actions: &[],
            objects: &[],
        },
        READS_APPCONFIG,
    ],
    answers: &[],
    scopes: &[],
    params: &[],
    headers: &[],
    alarms: &[],
    reserved_concurrency: None,
    timeout_s: None,
    request: None,
    endpoint: crate::s3_endpoint!(
        deleted::deleted,
        Deletions::build,
        S3Notification {
            bucket: &BUCKET,
            events: &["s3:ObjectRemoved:*"],
            prefixes: &[PROCESSED, ERRORS],
            suffix: ".zip",
        }
    ),
};

/// Python's truth, for FireFly's `if item.get(...)` and `if not value`.
pub(crate) fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
    }
}

/// What the ingest functions share.
#[derive(Clone)]
pub struct Ingest {
    pub store: Arc<dyn FirmwareStore>,
    pub bucket: Arc<dyn bucket::Bucket>,
    pub bucket_name: String,
    pub clock: Arc<dyn crate::clock::Clock>,
    pub random: Arc<dyn crate::random::SecureRandom>,
    pub limits: archive::Limits,
    /// Where a replaced debug build's released files are revoked.
    pub public: public::Public,
}

/// The memory public bucket and CDN stand-in of a local run, shared by its routes (a
/// newtype: the private memory bucket is shared under its own type).
#[derive(Clone)]
pub struct LocalPublic {
    pub bucket: Arc<bucket::MemoryBucket>,
    pub cdn: Arc<public::MemoryCdn>,
}

impl Ingest {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let store = Firmware::build(init)?.store;
        let (bucket, bucket_name) = private_bucket(init, None)?;
        Ok(Self {
            public: public_side(init, None)?,
            store,
            bucket,
            bucket_name,
            clock: init.clock(),
            random: init.random(),
            limits: archive::Limits::FIREFLY,
        })
    }
}

/// The private bucket and its name: S3's, or the memory bucket every function of a local
/// run shares (its writes announced as S3 would).
fn private_bucket(
    init: &mut Init<'_>,
    attempt: Option<std::time::Duration>,
) -> Result<(Arc<dyn bucket::Bucket>, String), StartupError> {
    Ok(match init.store_mode() {
        StoreMode::Memory => {
            let name = init
                .optional_var(BUCKET_ENV)?
                .unwrap_or_else(|| LOCAL_BUCKET.to_owned());
            let announce = init.provided::<bucket::Announce>();
            let memory: Arc<bucket::MemoryBucket> =
                init.shared(|_| Ok(Arc::new(bucket::MemoryBucket::new(&name, announce))))?;
            let name = memory.name().to_owned();
            (memory, name)
        }
        StoreMode::DynamoDb => {
            let name = init.var(BUCKET_ENV)?;
            let mut client = init.s3(&name)?;
            if let Some(t) = attempt {
                client = client.with_attempt_timeout(t);
            }
            (Arc::new(bucket::S3Bucket::new(client, name.clone())), name)
        }
    })
}

/// The public bucket and the CDN in front of it: S3's and CloudFront's, or the memory
/// stand-ins a local run shares.
fn public_side(
    init: &mut Init<'_>,
    attempt: Option<std::time::Duration>,
) -> Result<public::Public, StartupError> {
    Ok(match init.store_mode() {
        StoreMode::Memory => {
            let name = init
                .optional_var(crate::vars::S3_FIRMWARE_PUBLIC_BUCKET_NAME.name)?
                .unwrap_or_else(|| LOCAL_PUBLIC_BUCKET.to_owned());
            let local = init.shared(|_| {
                Ok(LocalPublic {
                    bucket: Arc::new(bucket::MemoryBucket::new(&name, None)),
                    cdn: Arc::new(public::MemoryCdn::default()),
                })
            })?;
            public::Public {
                bucket: local.bucket,
                cdn: local.cdn,
            }
        }
        StoreMode::DynamoDb => {
            let name = init.var(crate::vars::S3_FIRMWARE_PUBLIC_BUCKET_NAME.name)?;
            let distribution = init.var(crate::vars::CLOUDFRONT_DISTRIBUTION_ID.name)?;
            // Seldom used: no connection of its own opened during init.
            let mut s3 = init.s3_cold()?;
            if let Some(t) = attempt {
                s3 = s3.with_attempt_timeout(t);
            }
            public::Public {
                bucket: Arc::new(bucket::S3Bucket::new(s3, name)),
                cdn: Arc::new(public::CloudFront::new(init.cloudfront()?, distribution)),
            }
        }
    })
}

impl status::Releases {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let store = Firmware::build(init)?.store;
        let environment = init.optional_var(crate::vars::ENVIRONMENT_NAME.name)?;
        // Unset is production in AWS (the safe side) and dev on a laptop.
        let production = match (environment.as_deref(), init.store_mode()) {
            (Some("production"), _) | (None, StoreMode::DynamoDb) => true,
            (Some("dev"), _) | (None, StoreMode::Memory) => false,
            (Some(other), _) => {
                return Err(StartupError(format!(
                    "{}={other:?}: dev or production",
                    crate::vars::ENVIRONMENT_NAME.name
                )));
            }
        };
        Ok(Self {
            store,
            bucket: private_bucket(init, Some(status::TRANSFER_ATTEMPT))?.0,
            public: public_side(init, Some(status::TRANSFER_ATTEMPT))?,
            clock: init.clock(),
            random: init.random(),
            production,
            limits: archive::Limits::FIREFLY,
        })
    }
}

/// What the delete and download functions need: the records, the private bucket, the time.
#[derive(Clone)]
pub struct Files {
    pub store: Arc<dyn FirmwareStore>,
    pub bucket: Arc<dyn bucket::Bucket>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Files {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            store: Firmware::build(init)?.store,
            bucket: private_bucket(init, None)?.0,
            clock: init.clock(),
        })
    }
}

/// The domain OTA's URLs name in local runs without `CLOUDFRONT_DOMAIN`.
pub const LOCAL_DOMAIN: &str = "firmware.localhost";

/// What the OTA function needs: the records and the domain its URLs name.
#[derive(Clone)]
pub struct Ota {
    pub store: Arc<dyn FirmwareStore>,
    pub domain: String,
}

impl Ota {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let domain = match init.store_mode() {
            StoreMode::Memory => init
                .optional_var(crate::vars::CLOUDFRONT_DOMAIN.name)?
                .unwrap_or_else(|| LOCAL_DOMAIN.to_owned()),
            StoreMode::DynamoDb => init.var(crate::vars::CLOUDFRONT_DOMAIN.name)?,
        };
        Ok(Self {
            store: Firmware::build(init)?.store,
            domain,
        })
    }
}

/// What the deleted function needs: the table and the time (it never reads the bucket).
#[derive(Clone)]
pub struct Deletions {
    pub store: Arc<dyn FirmwareStore>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Deletions {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        Ok(Self {
            store: Firmware::build(init)?.store,
            clock: init.clock(),
        })
    }
}

/// What the feature's handlers share.
#[derive(Clone)]
pub struct Firmware {
    pub store: Arc<dyn FirmwareStore>,
}

impl Firmware {
    pub fn build(init: &mut Init<'_>) -> Result<Self, StartupError> {
        let store: Arc<dyn FirmwareStore> = match init.store_mode() {
            // Nothing ingests firmware on a laptop yet: the console's page lists none.
            StoreMode::Memory => init.shared(|_| Ok(Arc::new(MemoryFirmwareStore::default())))?,
            StoreMode::DynamoDb => Arc::new(DynamoFirmwareStore::new(
                init.dynamodb()?,
                init.var(TABLE_ENV)?,
            )),
        };
        Ok(Self { store })
    }
}

#[cfg(test)]
mod tests {
    use super::bucket::{Bucket, MemoryBucket};
    use super::build::Build;
    use super::*;
    use crate::handler::Deadline;
    use crate::s3_event::{Notice, Records, S3Event};
    use serde_json::Value;

    struct Fixture {
        ingest: Ingest,
        store: Arc<MemoryFirmwareStore>,
        bucket: Arc<MemoryBucket>,
        public: Arc<MemoryBucket>,
        cdn: Arc<FlakyCdn>,
    }

    /// The CDN stand-in, failing its next `failures` calls (a crash half way).
    #[derive(Default)]
    struct FlakyCdn {
        memory: public::MemoryCdn,
        failures: std::sync::atomic::AtomicUsize,
    }

    impl public::Cdn for FlakyCdn {
        fn invalidate<'a>(
            &'a self,
            path: &'a str,
            reference: &'a str,
        ) -> crate::handler::BoxFuture<'a, Result<(), crate::aws::cloudfront::CloudFrontError>>
        {
            use std::sync::atomic::Ordering;
            let fail = self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if fail {
                return Box::pin(std::future::ready(Err(
                    crate::aws::cloudfront::CloudFrontError::Unavailable("test".into()),
                )));
            }
            self.memory.invalidate(path, reference)
        }
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemoryFirmwareStore::default());
        let bucket = Arc::new(MemoryBucket::new("fw", None));
        let public = Arc::new(MemoryBucket::new("fw-public", None));
        let cdn = Arc::new(FlakyCdn::default());
        Fixture {
            ingest: Ingest {
                store: store.clone(),
                bucket: bucket.clone(),
                bucket_name: "fw".into(),
                clock: Arc::new(crate::clock::FixedClock(1_765_000_000)),
                random: Arc::new(crate::random::SystemRandom),
                limits: archive::Limits::FIREFLY,
                public: public::Public {
                    bucket: public.clone(),
                    cdn: cdn.clone(),
                },
            },
            store,
            bucket,
            public,
            cdn,
        }
    }

    impl Fixture {
        /// Puts `zip` at `incoming/<name>` and the records S3 would send for it.
        fn upload(&self, name: &str, zip: Vec<u8>) -> Notice {
            let key = format!("{INCOMING}{name}");
            let version = self.bucket.put(&key, zip.into());
            Notice::from(
                &S3Event::one("ObjectCreated:Put", "fw", &key, Some(&version), "0A", None).records
                    [0],
            )
        }

        async fn deliver(&self, notices: Vec<Notice>) {
            uploaded::uploaded(self.ingest.clone(), Records(notices), Deadline(None))
                .await
                .unwrap();
        }

        fn deletions(&self) -> Deletions {
            Deletions {
                store: self.store.clone(),
                clock: self.ingest.clock.clone(),
            }
        }

        async fn records(&self) -> Vec<Item> {
            self.store.list(None, None).await.unwrap()
        }

        /// Moves a record from `was` to `to`, as another function would; whether it did.
        async fn set_status(&self, pk: &str, version: &str, was: &str, to: &'static str) -> bool {
            self.store
                .transition(pk.into(), version.into(), was.into(), to, 1, 2)
                .await
                .unwrap()
        }
    }

    use crate::devices::store::Item;

    fn field<'a>(item: &'a Item, name: &str) -> &'a str {
        item.get(name).and_then(Value::as_str).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_good_zip_is_filed_ready_to_test_and_moved_to_processed() {
        let f = fixture();
        let build = Build::example("0xABCD0001", "2026.03.01");
        let n = f.upload("Controller-0xABCD0001-main.zip", build.zip().unwrap());
        f.deliver(vec![n]).await;
        let records = f.records().await;
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(field(r, "release_status"), "READY_TO_TEST");
        assert_eq!(field(r, "pk"), "controller#0xabcd0001#controller");
        assert_eq!(field(r, "application"), "Controller");
        assert_eq!(field(r, "original_name"), "Controller-0xABCD0001-main.zip");
        assert_eq!(field(r, "main_binary"), "Controller.ino.bin");
        assert_eq!(r["partition_offsets"]["app1"], 0x650000);
        assert!(r["zip_size"].is_u64() && r["uploaded_at"].is_i64());
        assert_eq!(r["status_history"][0]["status"], "READY_TO_TEST");
        assert_eq!(field(r, "bootloader_addr"), "0x1000");
        let zip_name = field(r, "zip_name");
        assert_eq!(f.bucket.keys(""), vec![format!("{PROCESSED}{zip_name}")]);
    }

    #[tokio::test]
    async fn a_redelivered_event_does_nothing_twice_and_a_reupload_is_a_new_upload() {
        let f = fixture();
        let zip = Build::example("0xABCD0002", "2026.03.02").zip().unwrap();
        let n = f.upload("a.zip", zip.clone());
        f.deliver(vec![n.clone()]).await;
        f.deliver(vec![n.clone(), n]).await;
        assert_eq!(f.records().await.len(), 1);
        assert_eq!(f.bucket.keys("").len(), 1);
        // The same bytes again under the same key: a new upload, a new ZIP name (and the
        // version's record now names the new ZIP).
        let again = f.upload("a.zip", zip);
        f.deliver(vec![again]).await;
        assert_eq!(f.bucket.keys(PROCESSED).len(), 2);
    }

    #[tokio::test]
    async fn a_crash_half_way_leaves_what_the_retry_completes() {
        let f = fixture();
        let zip = Build::example("0xABCD0003", "2026.03.03").zip().unwrap();
        let n = f.upload("b.zip", zip);
        // The first attempt died after moving the ZIP to processing/.
        let name = uploaded::upload_zip_name(&n).unwrap();
        assert!(
            f.bucket
                .copy(&n.key, None, &format!("{PROCESSING}{name}"))
                .await
                .unwrap()
        );
        f.deliver(vec![n.clone()]).await;
        assert_eq!(f.records().await.len(), 1);
        assert_eq!(f.bucket.keys(""), vec![format!("{PROCESSED}{name}")]);
        // The record was filed, the last move was not.
        let f = fixture();
        let zip = Build::example("0xABCD0004", "2026.03.04").zip().unwrap();
        let n = f.upload("c.zip", zip);
        f.deliver(vec![n.clone()]).await;
        let name = uploaded::upload_zip_name(&n).unwrap();
        let processed = format!("{PROCESSED}{name}");
        let (body, _) = f.bucket.object(&processed).unwrap();
        f.bucket.remove(&processed, None);
        f.bucket.put(&format!("{PROCESSING}{name}"), body);
        f.deliver(vec![n]).await;
        assert_eq!(f.bucket.keys(""), vec![processed]);
    }

    #[tokio::test]
    async fn every_record_of_an_event_is_handled() {
        let f = fixture();
        let a = f.upload(
            "a.zip",
            Build::example("0xABCD0005", "1.0.1").zip().unwrap(),
        );
        let b = f.upload("b.zip", b"not a zip".to_vec());
        f.deliver(vec![a, b]).await;
        let records = f.records().await;
        let statuses: Vec<&str> = records.iter().map(|r| field(r, "release_status")).collect();
        assert_eq!(statuses.len(), 2, "{statuses:?}");
        assert!(statuses.contains(&"READY_TO_TEST") && statuses.contains(&"ERROR"));
        assert_eq!(f.bucket.keys(ERRORS).len(), 1);
        let error = records
            .iter()
            .find(|r| field(r, "release_status") == "ERROR")
            .unwrap();
        assert_eq!(field(error, "error"), "File is not a zip file");
        assert_eq!(field(error, "product_hex"), "__unknown_product_hex__");
    }

    #[tokio::test]
    async fn a_released_version_is_never_overwritten_by_an_upload() {
        let f = fixture();
        let build = Build::example("0xABCD0006", "2026.03.06");
        f.deliver(vec![f.upload("r.zip", build.zip().unwrap())])
            .await;
        let r = f.records().await.remove(0);
        let (pk, version) = (field(&r, "pk").to_owned(), field(&r, "version").to_owned());
        let mut released = r.clone();
        released.insert("release_status".into(), "RELEASED".into());
        f.store.insert(released);
        f.deliver(vec![f.upload("r2.zip", build.zip().unwrap())])
            .await;
        let kept = f.store.get(pk.clone(), version).await.unwrap().unwrap();
        assert_eq!(field(&kept, "release_status"), "RELEASED");
        assert_eq!(field(&kept, "zip_name"), field(&r, "zip_name"));
        let errors: Vec<Item> = f
            .records()
            .await
            .into_iter()
            .filter(|r| field(r, "release_status") == "ERROR")
            .collect();
        assert_eq!(errors.len(), 1);
        assert!(
            field(&errors[0], "error").contains("already RELEASED"),
            "{:?}",
            errors[0]
        );
        assert_eq!(errors[0]["pk"], Value::from(pk));
    }

    #[tokio::test]
    async fn a_deleted_zip_marks_its_record_deleted_once_with_history() {
        let f = fixture();
        f.deliver(vec![f.upload(
            "d.zip",
            Build::example("0xABCD0007", "1.0.7").zip().unwrap(),
        )])
        .await;
        let zip_name = field(&f.records().await[0], "zip_name").to_owned();
        let key = format!("{PROCESSED}{zip_name}");
        let n = Notice::from(
            &S3Event::one("ObjectRemoved:Delete", "fw", &key, None, "0B", None).records[0],
        );
        let run = |n: Notice| deleted::deleted(f.deletions(), Records(vec![n]), Deadline(None));
        run(n.clone()).await.unwrap();
        run(n.clone()).await.unwrap();
        let r = f.records().await.remove(0);
        assert_eq!(field(&r, "release_status"), "DELETED");
        assert_eq!(r["ttl"], 1_765_000_000 + deleted::TTL_SECONDS);
        let history = r["status_history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["status"], "DELETED");
        // A ZIP nobody filed: logged, done (not an error Lambda would retry).
        let orphan = Notice::from(
            &S3Event::one(
                "ObjectRemoved:Delete",
                "fw",
                "errors/none.zip",
                None,
                "0C",
                None,
            )
            .records[0],
        );
        run(orphan).await.unwrap();
    }

    #[tokio::test]
    async fn a_record_released_between_the_read_and_the_write_stays_released() {
        // The conditional write sees the status moved and reads it again.
        let f = fixture();
        f.deliver(vec![f.upload(
            "e.zip",
            Build::example("0xABCD0008", "1.0.8").zip().unwrap(),
        )])
        .await;
        let r = f.records().await.remove(0);
        let (pk, version) = (field(&r, "pk").to_owned(), field(&r, "version").to_owned());
        // As the deleted function would have read it, then a release lands first.
        assert!(
            f.set_status(&pk, &version, "READY_TO_TEST", "RELEASED")
                .await
        );
        assert!(
            !f.set_status(&pk, &version, "READY_TO_TEST", "DELETED")
                .await
        );
        let key = format!("{PROCESSED}{}", field(&r, "zip_name"));
        let n = Notice::from(
            &S3Event::one("ObjectRemoved:Delete", "fw", &key, None, "0D", None).records[0],
        );
        deleted::deleted(f.deletions(), Records(vec![n]), Deadline(None))
            .await
            .unwrap();
        let now = f.store.get(pk, version).await.unwrap().unwrap();
        assert_eq!(field(&now, "release_status"), "RELEASED");
    }

    /// A debug build filed, then released with its files published (as the status
    /// function would): its record's key and its public folder.
    async fn released_debug(f: &Fixture) -> (String, String, String) {
        let build = Build::example("0xABCD0009", DEBUG_VERSION);
        f.deliver(vec![f.upload("debug-1.zip", build.zip().unwrap())])
            .await;
        let r = f.records().await.remove(0);
        let (pk, version) = (field(&r, "pk").to_owned(), field(&r, "version").to_owned());
        assert!(
            f.set_status(&pk, &version, "READY_TO_TEST", "RELEASED")
                .await
        );
        let folder = public::prefix(&r).unwrap();
        for name in ["Controller.ino.bin", "ui.bin"] {
            f.public
                .put_quietly(&format!("{folder}{name}"), vec![7; 16].into());
        }
        (pk, version, folder)
    }

    #[tokio::test]
    async fn a_released_debug_build_is_revoked_first_then_replaced_by_the_new_upload() {
        let f = fixture();
        let (pk, version, folder) = released_debug(&f).await;
        let old_zip = field(&f.records().await[0], "zip_name").to_owned();
        let build = Build::example("0xABCD0009", DEBUG_VERSION);
        f.deliver(vec![f.upload("debug-2.zip", build.zip().unwrap())])
            .await;
        let now = f.store.get(pk, version).await.unwrap().unwrap();
        assert_eq!(field(&now, "release_status"), "READY_TO_TEST");
        assert_ne!(field(&now, "zip_name"), old_zip);
        assert_eq!(field(&now, "original_name"), "debug-2.zip");
        assert!(now.get("ttl").is_none(), "{now:?}");
        assert_eq!(now["status_history"].as_array().unwrap().len(), 1);
        // The old public files are where a revocation puts them, and CloudFront was told.
        assert!(f.public.keys(&folder).is_empty());
        assert_eq!(f.public.keys(public::REVOKED).len(), 2);
        assert_eq!(f.cdn.memory.invalidated(), [format!("/{folder}*")]);
        // No ERROR record: the upload took the place.
        assert!(
            f.records()
                .await
                .iter()
                .all(|r| field(r, "release_status") != "ERROR")
        );
        assert_eq!(f.bucket.keys(PROCESSED).len(), 2);
    }

    #[tokio::test]
    async fn a_crash_while_replacing_a_debug_build_leaves_what_the_retry_completes() {
        let f = fixture();
        let (pk, version, folder) = released_debug(&f).await;
        let build = Build::example("0xABCD0009", DEBUG_VERSION);
        let n = f.upload("debug-3.zip", build.zip().unwrap());
        // CloudFront fails after the claim and the moves: the event fails (Lambda retries).
        f.cdn.failures.store(1, std::sync::atomic::Ordering::SeqCst);
        let failed =
            uploaded::uploaded(f.ingest.clone(), Records(vec![n.clone()]), Deadline(None)).await;
        assert!(failed.is_err());
        let half = f
            .store
            .get(pk.clone(), version.clone())
            .await
            .unwrap()
            .unwrap();
        // Never RELEASED without its files: REVOKED, with FireFly's ttl and a history entry.
        assert_eq!(field(&half, "release_status"), "REVOKED");
        assert_eq!(half["ttl"], 1_765_000_000 + deleted::TTL_SECONDS);
        assert_eq!(
            half["status_history"].as_array().unwrap().last().unwrap()["status"],
            "REVOKED"
        );
        assert!(f.public.keys(&folder).is_empty());
        // The retry: the same event, now complete.
        f.deliver(vec![n]).await;
        let done = f.store.get(pk, version).await.unwrap().unwrap();
        assert_eq!(field(&done, "release_status"), "READY_TO_TEST");
        assert_eq!(field(&done, "original_name"), "debug-3.zip");
        assert_eq!(f.cdn.memory.invalidated(), [format!("/{folder}*")]);
        assert!(f.bucket.keys(PROCESSING).is_empty() && f.bucket.keys(INCOMING).is_empty());
    }

    #[tokio::test]
    async fn a_revoked_debug_build_is_replaced_and_a_revoked_real_version_is_not() {
        let f = fixture();
        let (pk, version, _) = released_debug(&f).await;
        assert!(f.set_status(&pk, &version, "RELEASED", "REVOKED").await);
        let build = Build::example("0xABCD0009", DEBUG_VERSION);
        f.deliver(vec![f.upload("debug-4.zip", build.zip().unwrap())])
            .await;
        let now = f.store.get(pk, version).await.unwrap().unwrap();
        assert_eq!(field(&now, "release_status"), "READY_TO_TEST");
        assert_eq!(field(&now, "original_name"), "debug-4.zip");
        // A real version stays REVOKED: its upload is an ERROR record saying why.
        let real = Build::example("0xABCD0010", "2026.03.10");
        f.deliver(vec![f.upload("real-1.zip", real.zip().unwrap())])
            .await;
        let r = f
            .records()
            .await
            .into_iter()
            .find(|r| field(r, "version") == "2026.03.10")
            .unwrap();
        let (pk, v) = (field(&r, "pk").to_owned(), field(&r, "version").to_owned());
        assert!(f.set_status(&pk, &v, "READY_TO_TEST", "REVOKED").await);
        f.deliver(vec![f.upload("real-2.zip", real.zip().unwrap())])
            .await;
        let kept = f.store.get(pk, v).await.unwrap().unwrap();
        assert_eq!(field(&kept, "release_status"), "REVOKED");
        assert!(
            f.records()
                .await
                .iter()
                .any(|r| field(r, "release_status") == "ERROR"
                    && field(r, "error").contains("already REVOKED"))
        );
    }
}
