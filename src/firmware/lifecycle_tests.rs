//! The lifecycle after ingest, in memory: status changes (claims, undo, completion of a
//! stopped change), delete, download and OTA, each against what FireFly's functions did
//! wrong. End to end (the binary, moto, a fault proxy): tests/firmware_lifecycle.rs.

use super::bucket::{Bucket, MemoryBucket};
use super::build::Build;
use super::public::{Cdn, Public, REVOKED};
use super::status::{PUBLISHED, Releases, TIMEOUT_S};
use super::store::{CLAIM, Claim, FirmwareStore, MemoryFirmwareStore};
use super::*;
use crate::aws::cloudfront::CloudFrontError;
use crate::devices::store::Item;
use crate::handler::{BoxFuture, Deadline};
use crate::response::Response;
use crate::s3_event::{Notice, Records, S3Event};
use serde_json::Value;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const NOW: i64 = 1_765_000_000;

/// A CDN stand-in that fails its next `failures` calls, and can run `hook` on each call
/// (something else happening while a change does its work).
#[derive(Default)]
struct TestCdn {
    memory: public::MemoryCdn,
    failures: AtomicUsize,
    hook: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Cdn for TestCdn {
    fn invalidate<'a>(
        &'a self,
        path: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<(), CloudFrontError>> {
        if let Some(hook) = self.hook.lock().unwrap().as_ref() {
            hook();
        }
        let fail = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(std::future::ready(Err(CloudFrontError::Unavailable(
                "test".into(),
            ))));
        }
        self.memory.invalidate(path, reference)
    }
}

struct World {
    store: Arc<MemoryFirmwareStore>,
    private: Arc<MemoryBucket>,
    public: Arc<MemoryBucket>,
    cdn: Arc<TestCdn>,
    ingest: Ingest,
    releases: Releases,
    files: Files,
}

fn world() -> World {
    let store = Arc::new(MemoryFirmwareStore::default());
    let private = Arc::new(MemoryBucket::new("fw", None));
    let public = Arc::new(MemoryBucket::new("fw-public", None));
    let cdn = Arc::new(TestCdn::default());
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(crate::clock::FixedClock(NOW));
    let public_side = Public {
        bucket: public.clone(),
        cdn: cdn.clone(),
    };
    World {
        ingest: Ingest {
            store: store.clone(),
            bucket: private.clone(),
            bucket_name: "fw".into(),
            clock: clock.clone(),
            random: Arc::new(crate::random::SystemRandom),
            limits: archive::Limits::FIREFLY,
            public: public_side.clone(),
        },
        releases: Releases {
            store: store.clone(),
            bucket: private.clone(),
            public: public_side,
            clock: clock.clone(),
            random: Arc::new(crate::random::SystemRandom),
            production: false,
            limits: archive::Limits::FIREFLY,
        },
        files: Files {
            store: store.clone(),
            bucket: private.clone(),
            clock,
        },
        store,
        private,
        public,
        cdn,
    }
}

fn text<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn body(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

impl World {
    /// Files `build` as the ingest does: its record.
    async fn filed(&self, build: &Build) -> Item {
        let key = format!("{INCOMING}{}.zip", text(&build.manifest(), "version"));
        let version = self.private.put(&key, build.zip().unwrap().into());
        let n = Notice::from(
            &S3Event::one("ObjectCreated:Put", "fw", &key, Some(&version), "0A", None).records[0],
        );
        uploaded::uploaded(self.ingest.clone(), Records(vec![n]), Deadline(None))
            .await
            .unwrap();
        let version = text(&build.manifest(), "version").to_owned();
        self.store
            .list(None, Some(version))
            .await
            .unwrap()
            .into_iter()
            .find(|r| text(r, "release_status") == "READY_TO_TEST")
            .unwrap()
    }

    async fn patch(&self, record: &Item, to: &str) -> Response {
        self.releases
            .change_for_tests(text(record, "zip_name"), to)
            .await
            .unwrap_or_else(crate::error::ApiError::into_response)
    }

    async fn now(&self, record: &Item) -> Item {
        self.store
            .get(text(record, "pk").into(), text(record, "version").into())
            .await
            .unwrap()
            .unwrap()
    }

    /// A record walked to TESTING.
    async fn testing(&self, hex: &str, version: &str) -> Item {
        let r = self.filed(&Build::example(hex, version)).await;
        assert_eq!(self.patch(&r, "TESTING").await.status, 200);
        r
    }
}

/// The files a release publishes of [`Build::example`].
const PUBLISHED_FILES: [&str; 5] = [
    "Controller.ino.bin",
    "Controller.ino.bootloader.bin",
    "Controller.ino.elf",
    "Controller.ino.map",
    "Controller.ino.partitions.bin",
];

#[tokio::test]
async fn a_release_publishes_every_file_with_its_headers_then_one_invalidation() {
    let w = world();
    let r = w.testing("0xABCD0101", "2026.03.01").await;
    let answer = w.patch(&r, "RELEASED").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let b = body(&answer);
    assert_eq!(b["release_status"], "RELEASED");
    assert!(b.get("pk").is_none() && b.get(CLAIM).is_none(), "{b}");
    let statuses: Vec<&str> = b["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["READY_TO_TEST", "TESTING", "RELEASED"]);
    let folder = "controller/0xabcd0101/controller/2026.03.01/";
    let mut expected: Vec<String> = PUBLISHED_FILES
        .iter()
        .chain(["ui.bin"].iter())
        .map(|f| format!("{folder}{f}"))
        .collect();
    expected.sort();
    // config.bin and manifest.json stay private, as FireFly's release keeps them.
    assert_eq!(w.public.keys(""), expected);
    for key in &expected {
        assert_eq!(w.public.published(key), Some(PUBLISHED), "{key}");
    }
    let (bytes, _) = w.public.object(&format!("{folder}ui.bin")).unwrap();
    assert_eq!(bytes.len(), 1024 * 1024);
    assert_eq!(w.cdn.memory.invalidated(), [format!("/{folder}*")]);
    assert!(w.now(&r).await.get(CLAIM).is_none());
}

#[tokio::test]
async fn a_zip_that_fails_verification_publishes_nothing_at_all() {
    // FireFly's release published member by member and raised at the first mismatch,
    // leaving the members before it public under a TESTING record.
    let w = world();
    let r = w.testing("0xABCD0102", "2026.03.02").await;
    let key = format!("{PROCESSED}{}", text(&r, "zip_name"));
    let mut tampered = Build::example("0xABCD0102", "2026.03.02");
    tampered.corrupt_hash("ui.bin");
    w.private.put(&key, tampered.zip().unwrap().into());
    let answer = w.patch(&r, "RELEASED").await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(
        body(&answer)["message"]
            .as_str()
            .unwrap()
            .starts_with("Firmware cannot be released: "),
        "{}",
        answer.body
    );
    assert!(w.public.keys("").is_empty());
    assert!(w.cdn.memory.invalidated().is_empty());
    let now = w.now(&r).await;
    assert_eq!(text(&now, "release_status"), "TESTING");
    assert!(now.get(CLAIM).is_none());
    // A ZIP past its 30 days: 410, nothing changed.
    w.private.remove_quietly(&key, None);
    assert_eq!(w.patch(&r, "RELEASED").await.status, 410);
    assert_eq!(text(&w.now(&r).await, "release_status"), "TESTING");
}

#[tokio::test]
async fn a_release_that_fails_part_way_is_undone() {
    // Every file written, then CloudFront fails: FireFly answered 500 and left the files
    // public under a TESTING record.
    let w = world();
    let r = w.testing("0xABCD0103", "2026.03.03").await;
    w.cdn.failures.store(1, Ordering::SeqCst);
    let answer = w.patch(&r, "RELEASED").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(w.public.keys("").is_empty(), "{:?}", w.public.keys(""));
    let now = w.now(&r).await;
    assert_eq!(text(&now, "release_status"), "TESTING");
    assert!(now.get(CLAIM).is_none());
    assert_eq!(now["status_history"].as_array().unwrap().len(), 2);
    // Retried, it is released.
    assert_eq!(w.patch(&r, "RELEASED").await.status, 200);
    assert_eq!(w.public.keys("").len(), 6);
}

#[tokio::test]
async fn a_revocation_that_fails_part_way_is_moved_back_and_a_retry_completes_it() {
    let w = world();
    let r = w.testing("0xABCD0104", "2026.03.04").await;
    assert_eq!(w.patch(&r, "RELEASED").await.status, 200);
    let folder = "controller/0xabcd0104/controller/2026.03.04/";
    w.cdn.failures.store(1, Ordering::SeqCst);
    assert_eq!(w.patch(&r, "REVOKED").await.status, 503);
    assert_eq!(w.public.keys(folder).len(), 6, "moved back");
    assert!(w.public.keys(REVOKED).is_empty());
    assert_eq!(text(&w.now(&r).await, "release_status"), "RELEASED");
    let answer = w.patch(&r, "REVOKED").await;
    assert_eq!(answer.status, 200);
    let b = body(&answer);
    assert_eq!(b["release_status"], "REVOKED");
    assert_eq!(b["ttl"], NOW + status::TTL_SECONDS);
    assert_eq!(b["status_history"].as_array().unwrap().len(), 4);
    assert!(w.public.keys(folder).is_empty());
    assert_eq!(w.public.keys(&format!("{REVOKED}{folder}")).len(), 6);
}

#[tokio::test]
async fn a_live_claim_refuses_a_second_change_and_a_stopped_ones_is_completed_first() {
    let w = world();
    let r = w.testing("0xABCD0105", "2026.03.05").await;
    let (pk, version) = (text(&r, "pk").to_owned(), text(&r, "version").to_owned());
    // Another invocation claimed a release a moment ago: its work is running.
    let live = Claim {
        id: "other".into(),
        from: "TESTING".into(),
        to: "RELEASED".into(),
        at: NOW - 5,
    };
    assert!(
        w.store
            .claim(pk.clone(), version.clone(), live, NOW - 60)
            .await
            .unwrap()
    );
    let answer = w.patch(&r, "READY_TO_TEST").await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        body(&answer)["message"],
        "Status was modified concurrently; please retry."
    );
    assert_eq!(files::deleted(&w).await.status, 409, "nor deleted under it");
    // ...and that invocation was stopped (its claim is older than the timeout): the next
    // change completes its release first, then is judged against RELEASED.
    w.store
        .unclaim(pk.clone(), version.clone(), "other".into())
        .await
        .unwrap();
    let stopped = Claim {
        id: "stopped".into(),
        from: "TESTING".into(),
        to: "RELEASED".into(),
        at: NOW - i64::from(TIMEOUT_S) - 1,
    };
    assert!(w.store.claim(pk, version, stopped, NOW - 60).await.unwrap());
    let answer = w.patch(&r, "READY_TO_TEST").await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(body(&answer)["current_status"], "RELEASED");
    assert_eq!(w.public.keys("").len(), 6);
    let now = w.now(&r).await;
    assert!(now.get(CLAIM).is_none());
    assert_eq!(now["status_history"].as_array().unwrap().len(), 3);
}

mod files {
    use super::*;

    /// DELETE of the world's only record.
    pub async fn deleted(w: &World) -> Response {
        let r = w.store.list(None, None).await.unwrap().remove(0);
        delete::remove(&w.files, text(&r, "zip_name"))
            .await
            .unwrap_or_else(crate::error::ApiError::into_response)
    }
}

#[tokio::test]
async fn a_record_whose_zip_is_deleted_during_its_release_keeps_no_public_file() {
    // The ZIP's deletion (its event) marks the record DELETED while the release works:
    // FireFly's release then wrote RELEASED over DELETED with public files; here the
    // completion needs the status it claimed, so the work is undone.
    let w = world();
    let r = w.testing("0xABCD0106", "2026.03.06").await;
    let (store, pk, version) = (
        w.store.clone(),
        text(&r, "pk").to_owned(),
        text(&r, "version").to_owned(),
    );
    *w.cdn.hook.lock().unwrap() = Some(Box::new(move || {
        let (store, pk, version) = (store.clone(), pk.clone(), version.clone());
        let moved =
            futures_ready(store.transition(pk, version, "TESTING".into(), "DELETED", NOW, NOW + 1));
        assert!(
            moved.unwrap(),
            "the record was TESTING while the release worked"
        );
    }));
    let answer = w.patch(&r, "RELEASED").await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(w.public.keys("").is_empty(), "{:?}", w.public.keys(""));
    assert_eq!(text(&w.now(&r).await, "release_status"), "DELETED");
}

/// Runs a memory store's future, which is ready at once.
fn futures_ready<T>(f: BoxFuture<'_, T>) -> T {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = f;
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a memory store's future is ready at once"),
    }
}

#[tokio::test]
async fn delete_writes_deleting_first_so_the_zips_event_always_ends_deleted() {
    // The event handled before the delete function's own write (FireFly: DELETING then
    // overwrote DELETED, with no ttl, for ever).
    let w = world();
    let r = w.filed(&Build::example("0xABCD0107", "2026.03.07")).await;
    let answer = files::deleted(&w).await;
    assert_eq!(answer.status, 202);
    assert_eq!(
        body(&answer),
        serde_json::json!({"message": "Deletion initiated"})
    );
    let now = w.now(&r).await;
    assert_eq!(text(&now, "release_status"), "DELETING");
    assert!(w.private.keys(PROCESSED).is_empty());
    // The ZIP's event, whenever it comes, finds DELETING and completes it.
    let key = format!("{PROCESSED}{}", text(&r, "zip_name"));
    let n = Notice::from(
        &S3Event::one("ObjectRemoved:Delete", "fw", &key, None, "0B", None).records[0],
    );
    let deletions = Deletions {
        store: w.store.clone(),
        clock: w.files.clock.clone(),
    };
    deleted::deleted(deletions, Records(vec![n]), Deadline(None))
        .await
        .unwrap();
    let done = w.now(&r).await;
    assert_eq!(text(&done, "release_status"), "DELETED");
    assert_eq!(done["ttl"], NOW + deleted::TTL_SECONDS);
    let again = files::deleted(&w).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        body(&again)["message"],
        "Firmware is already in state 'DELETED'"
    );
}

/// The private bucket, refusing deletes.
struct NoDeletes(Arc<MemoryBucket>);

impl Bucket for NoDeletes {
    fn get<'a>(
        &'a self,
        key: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<bytes::Bytes>, crate::aws::s3::S3Error>> {
        self.0.get(key, limit)
    }
    fn copy<'a>(
        &'a self,
        from: &'a str,
        version: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<bool, crate::aws::s3::S3Error>> {
        self.0.copy(from, version, to)
    }
    fn delete<'a>(
        &'a self,
        _: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), crate::aws::s3::S3Error>> {
        Box::pin(std::future::ready(Err(
            crate::aws::s3::S3Error::Unavailable("test".into()),
        )))
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, crate::aws::s3::S3Error>> {
        self.0.list(prefix)
    }
    fn publish<'a>(
        &'a self,
        key: &'a str,
        body: bytes::Bytes,
        headers: bucket::Published,
    ) -> BoxFuture<'a, Result<(), crate::aws::s3::S3Error>> {
        self.0.publish(key, body, headers)
    }
    fn exists<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool, crate::aws::s3::S3Error>> {
        self.0.exists(key)
    }
    fn presign_get(
        &self,
        key: &str,
        now: std::time::SystemTime,
        expires: std::time::Duration,
    ) -> Result<String, crate::aws::s3::S3Error> {
        self.0.presign_get(key, now, expires)
    }
}

#[tokio::test]
async fn a_zip_that_cannot_be_deleted_leaves_its_record_as_it_was() {
    let mut w = world();
    let r = w.filed(&Build::example("0xABCD0108", "2026.03.08")).await;
    let before = w.now(&r).await;
    w.files.bucket = Arc::new(NoDeletes(w.private.clone()));
    let err = files::deleted(&w).await;
    assert_eq!(err.status, 503);
    assert_eq!(
        w.now(&r).await,
        before,
        "status, history and ttl as they were"
    );
    assert_eq!(w.private.keys(PROCESSED).len(), 1);
}

#[tokio::test]
async fn a_download_is_presigned_and_a_zip_gone_or_going_is_410_not_500() {
    let w = world();
    w.private.presign_with(Arc::new(|bucket, key, _, expires| {
        format!(
            "http://127.0.0.1:9/{bucket}/{key}?expires={}",
            expires.as_secs()
        )
    }));
    let r = w.filed(&Build::example("0xABCD0109", "2026.03.09")).await;
    let zip = text(&r, "zip_name").to_owned();
    let answer = download::presign(&w.files, &zip).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        body(&answer),
        serde_json::json!({"url": format!("http://127.0.0.1:9/fw/processed/{zip}?expires=900"), "expires_in": 900})
    );
    // Past its 30 days (FireFly: 500).
    let (bytes, _) = w.private.object(&format!("{PROCESSED}{zip}")).unwrap();
    w.private.remove_quietly(&format!("{PROCESSED}{zip}"), None);
    let gone = download::presign(&w.files, &zip).await.unwrap();
    assert_eq!(gone.status, 410);
    assert!(
        body(&gone)["message"]
            .as_str()
            .unwrap()
            .contains("no longer stored")
    );
    w.private.put_quietly(&format!("{PROCESSED}{zip}"), bytes);
    // Being deleted (FireFly: 500 once the ZIP had gone).
    assert_eq!(files::deleted(&w).await.status, 202);
    let going = download::presign(&w.files, &zip).await.unwrap();
    assert_eq!(going.status, 410);
    assert_eq!(body(&going)["message"], "Firmware is being deleted");
}

fn ota_of(w: &World) -> Ota {
    Ota {
        store: w.store.clone(),
        domain: "firmware.example.com".into(),
    }
}

async fn ask(w: &World, hex: &str, current: Option<&str>) -> Response {
    use crate::handler::Path;
    use ota::{Application, Class, CurrentVersion, ProductHex};
    ota::ota(
        ota_of(w),
        Deadline(None),
        Path(Class("controller".into())),
        Path(ProductHex(hex.to_lowercase())),
        Path(Application("controller".into())),
        CurrentVersion(current.map(str::to_owned)),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn ota_offers_the_next_version_by_the_controllers_order() {
    let w = world();
    for v in ["9.0.0", "10.0.0"] {
        let r = w.testing("0xABCD0110", v).await;
        assert_eq!(w.patch(&r, "RELEASED").await.status, 200);
    }
    // FireFly compared strings: "10.0.0" < "9.0.0", so a controller on 9.0.0 was told to
    // stay, and every listing put 10.0.0 first.
    let next = ask(&w, "0xABCD0110", Some("9.0.0")).await;
    assert_eq!(next.status, 200);
    let m = &body(&next)[0];
    assert_eq!(m["version"], "10.0.0");
    assert_eq!(m["application_name"], "FireFly Controller");
    let app = &m["binaries"][0];
    assert_eq!(app["partition"], "app");
    assert_eq!(
        app["url"],
        "https://firmware.example.com/controller/0xabcd0110/controller/10.0.0/Controller.ino.bin"
    );
    assert_eq!(m["binaries"][1]["partition"], "ui");
    let all = body(&ask(&w, "0xABCD0110", None).await);
    let versions: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["9.0.0", "10.0.0"]);
    // The latest asks: itself. Nothing of another product.
    assert_eq!(
        body(&ask(&w, "0xABCD0110", Some("10.0.0")).await)[0]["version"],
        "10.0.0"
    );
    assert_eq!(ask(&w, "0xABCD0111", Some("1.0.0")).await.status, 404);
}

#[tokio::test]
async fn ota_never_offers_a_version_whose_files_are_going_and_says_409_for_a_revoked_one() {
    let w = world();
    let r = w.testing("0xABCD0112", "1.0.0").await;
    assert_eq!(w.patch(&r, "RELEASED").await.status, 200);
    // A revocation's work is running (its claim): the files are leaving.
    let claim = Claim {
        id: "revoking".into(),
        from: "RELEASED".into(),
        to: "REVOKED".into(),
        at: NOW,
    };
    let (pk, version) = (text(&r, "pk").to_owned(), text(&r, "version").to_owned());
    assert!(
        w.store
            .claim(pk.clone(), version.clone(), claim, NOW - 60)
            .await
            .unwrap()
    );
    assert_eq!(ask(&w, "0xABCD0112", None).await.status, 404);
    w.store
        .unclaim(pk, version, "revoking".into())
        .await
        .unwrap();
    assert_eq!(w.patch(&r, "REVOKED").await.status, 200);
    let answer = ask(&w, "0xABCD0112", Some("1.0.0")).await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        body(&answer)["message"],
        "Current version '1.0.0' is no longer released and no newer version is available"
    );
    assert_eq!(ask(&w, "0xABCD0112", Some("0.9.0")).await.status, 404);
}

#[tokio::test]
async fn the_debug_build_is_never_released_in_production() {
    let mut w = world();
    w.releases.production = true;
    let r = w.testing("0xABCD0113", DEBUG_VERSION).await;
    let answer = w.patch(&r, "RELEASED").await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        body(&answer)["message"],
        "DEBUG firmware cannot be transitioned to RELEASED."
    );
    assert!(w.public.keys("").is_empty());
}
