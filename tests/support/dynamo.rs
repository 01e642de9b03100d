//! dynalite, a DynamoDB-API server, on 127.0.0.1, and an SDK client to inspect it; or
//! moto's server in its place, where a test needs a DynamoDB feature dynalite lacks
//! (`ReturnValuesOnConditionCheckFailure`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

pub struct Dynalite {
    child: Child,
    pub port: u16,
}

impl Dynalite {
    /// Starts dynalite on `port` (0: any free port) and waits until it listens.
    pub fn start(port: u16) -> Self {
        Self::start_with(port, &[])
    }

    /// As [`Dynalite::start`], with `tools/dynalite-server.js` options (`--tls`, `--table`).
    pub fn start_with(port: u16, options: &[&std::ffi::OsStr]) -> Self {
        let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools");
        assert!(
            tools.join("node_modules/dynalite").is_dir(),
            "dynalite is not installed: run `npm ci --prefix tools` (README, Testing)"
        );
        let mut child = Command::new("node")
            .arg(tools.join("dynalite-server.js"))
            .arg(port.to_string())
            .args(options)
            // The server exits when this pipe closes, even if the test process is killed.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is on PATH");
        let port = listening_port(&mut child, "dynalite");
        Self { child, port }
    }

    /// moto's server (`tools/moto-server.py` in `.venv`), with the same helpers.
    pub fn moto() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv/bin/python");
        assert!(
            python.is_file(),
            "moto is not installed: run scripts/setup (README, Testing)"
        );
        let mut child = Command::new(python)
            .arg(root.join("tools/moto-server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let port = listening_port(&mut child, "moto");
        Self { child, port }
    }

    /// One moto shared by every test in this process that needs it.
    pub fn shared_moto() -> &'static Dynalite {
        static SHARED: OnceLock<Dynalite> = OnceLock::new();
        SHARED.get_or_init(Dynalite::moto)
    }

    /// One dynalite shared by every test in this process; each test uses its own table.
    pub fn shared() -> &'static Dynalite {
        static SHARED: OnceLock<Dynalite> = OnceLock::new();
        SHARED.get_or_init(|| Dynalite::start(0))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(self.endpoint())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(config)
    }

    /// Creates the registration-keys table as FireFly's dynamodb-registration-keys stack
    /// does: hash key `key` (S), on demand. (Its TTL on `ttl` is a setting dynalite lacks;
    /// nothing here relies on DynamoDB deleting anything.)
    pub fn create_table(&self, name: &str) {
        self.create_table_keyed(name, "key");
    }

    /// Creates the invitations table as FireFly's dynamodb-users stack does: hash key
    /// `email` (S), on demand.
    pub fn create_users_table(&self, name: &str) {
        self.create_table_keyed(name, "email");
    }

    fn create_table_keyed(&self, name: &str, key: &str) {
        let client = self.client();
        block_on(
            client
                .create_table()
                .table_name(name)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()
                        .unwrap(),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send(),
        )
        .expect("create table");
    }

    /// Creates the devices table as FireFly's dynamodb-devices stack does: hash key `uuid`
    /// (S), on demand, GSI `product_hex-index` (hash `product_hex`, projection ALL).
    pub fn create_devices_table(&self, name: &str) {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let hash = |n: &str| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(KeyType::Hash)
                .build()
                .unwrap()
        };
        block_on(
            self.client()
                .create_table()
                .table_name(name)
                .attribute_definitions(attr("uuid"))
                .attribute_definitions(attr("product_hex"))
                .key_schema(hash("uuid"))
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name("product_hex-index")
                        .key_schema(hash("product_hex"))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send(),
        )
        .expect("create devices table");
    }

    /// FireFly's `firefly-firmware` table, as templates/dynamodb-firmware.yaml makes it:
    /// `pk` and `version`, GSIs `product_hex-index` and `zip_name-index` (ALL).
    pub fn create_firmware_table(&self, name: &str) {
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap()
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .unwrap()
        };
        let gsi = |index: &str, hash: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(key(hash, KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap()
        };
        block_on(
            self.client()
                .create_table()
                .table_name(name)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(
                    ["pk", "version", "product_hex", "zip_name"]
                        .map(attr)
                        .to_vec(),
                ))
                .key_schema(key("pk", KeyType::Hash))
                .key_schema(key("version", KeyType::Range))
                .global_secondary_indexes(gsi("product_hex-index", "product_hex"))
                .global_secondary_indexes(gsi("zip_name-index", "zip_name"))
                .send(),
        )
        .expect("create firmware table");
    }

    /// The item under `uuid` in a devices table.
    pub fn get_device(&self, table: &str, uuid: &str) -> Option<HashMap<String, AttributeValue>> {
        block_on(
            self.client()
                .get_item()
                .table_name(table)
                .key("uuid", AttributeValue::S(uuid.into()))
                .consistent_read(true)
                .send(),
        )
        .expect("get device")
        .item
    }

    /// Writes `item` as is (an item in the other implementation's exact shape).
    pub fn put_item(&self, table: &str, item: HashMap<String, AttributeValue>) {
        block_on(
            self.client()
                .put_item()
                .table_name(table)
                .set_item(Some(item))
                .send(),
        )
        .expect("put item");
    }

    pub fn get(&self, table: &str, key: &str) -> Option<HashMap<String, AttributeValue>> {
        self.get_by(table, "key", key)
    }

    /// The item whose string key `name` is `value`, read consistently.
    pub fn get_by(
        &self,
        table: &str,
        name: &str,
        value: &str,
    ) -> Option<HashMap<String, AttributeValue>> {
        block_on(
            self.client()
                .get_item()
                .table_name(table)
                .key(name, AttributeValue::S(value.into()))
                .consistent_read(true)
                .send(),
        )
        .expect("get item")
        .item
    }

    /// Writes a key exactly as FireFly's Python `registration-keys-post` writes it (no
    /// `mint_nonce`): the other implementation's item, during a migration.
    pub fn put(&self, table: &str, key: &str, user: &str, created_at: i64, expires_at: i64) {
        block_on(
            self.client()
                .put_item()
                .table_name(table)
                .item("key", AttributeValue::S(key.into()))
                .item("ttl", AttributeValue::N(expires_at.to_string()))
                .item("generated_at", AttributeValue::N(created_at.to_string()))
                .item("generated_by_sub", AttributeValue::S(user.into()))
                .item("generated_by_email", AttributeValue::S(String::new()))
                .send(),
        )
        .expect("put item");
    }

    /// Every item in `table`.
    pub fn scan(&self, table: &str) -> Vec<HashMap<String, AttributeValue>> {
        let client = self.client();
        block_on(async {
            let mut items = Vec::new();
            let mut start = None;
            loop {
                let page = client
                    .scan()
                    .table_name(table)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .expect("scan");
                items.extend(page.items.unwrap_or_default());
                start = page.last_evaluated_key;
                if start.is_none() {
                    return items;
                }
            }
        })
    }
}

/// The port from a test server's first line, `listening PORT` (both launchers print it).
fn listening_port(child: &mut Child, what: &str) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{what} did not start: {line:?}"))
        .parse()
        .unwrap()
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .unwrap_or_else(|| panic!("no {name} in {item:?}"))
        .as_s()
        .unwrap_or_else(|_| panic!("{name} is not S in {item:?}"))
}

pub fn n(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .unwrap_or_else(|| panic!("no {name} in {item:?}"))
        .as_n()
        .unwrap_or_else(|_| panic!("{name} is not N in {item:?}"))
        .parse()
        .unwrap()
}
