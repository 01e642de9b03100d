//! What a route's handler can ask for while it is built at start-up.
//!
//! Each Lambda function builds only its own routes' handlers, and each handler asks only
//! for what it needs: its environment variables (declared in its route's `uses`), the
//! process's one DynamoDB client, its settings section, the clock, the random source.
//! Nothing is built that no route of the function asked for. Whatever the routes of one
//! function share (the client, the AppConfig source, a feature's store) is made by the
//! first route that asks and kept in one cache, [`Parts::shared`].

use crate::clock::Clock;
use crate::config::{ConfigSource, Section, Settings};
use crate::deploy::{Env, Resource, Use};
use crate::error::StartupError;
use crate::random::SecureRandom;
use lambda_http::http::Extensions;
use std::sync::Arc;

/// Where a memory run without a stand-in sends AppConfig's and Lambda's calls: the discard
/// port of this machine, where nothing listens (each call a quick 503).
pub const CLOSED_ENDPOINT: &str = "http://127.0.0.1:9";

/// Which stores the features use. DynamoDB unless the memory stores are asked for by name
/// (`FIREFLY_STORE=memory`, local runs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    DynamoDb,
    Memory,
}

/// The buckets whose connection is already opened during init (one per bucket, whichever
/// routes use it).
#[derive(Clone, Default)]
struct WarmedBuckets(Vec<String>);

/// What a function's routes are built from besides the environment, and what they share.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn SecureRandom>,
    pub store_mode: StoreMode,
    /// What the routes of one function share, keyed by type (the DynamoDB client, the
    /// AppConfig source, a feature's store and settings); tests put their own in first.
    pub shared: Extensions,
}

/// One route being built: its declared needs, and the function's [`Parts`].
pub struct Init<'a> {
    env: &'a Env<'a>,
    key: &'static str,
    uses: &'static [Use],
    parts: &'a mut Parts,
}

impl<'a> Init<'a> {
    /// The builder for the route `key`, which declared `uses`.
    pub fn new(
        env: &'a Env<'a>,
        key: &'static str,
        uses: &'static [Use],
        parts: &'a mut Parts,
    ) -> Self {
        Self {
            env,
            key,
            uses,
            parts,
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> StartupError {
        StartupError(format!("route {}: {message}", self.key))
    }

    fn uses(&self, wanted: impl Fn(&Resource) -> bool) -> bool {
        self.uses.iter().any(|u| wanted(u.resource))
    }

    fn declares(&self, name: &str) -> bool {
        self.uses(|r| r.env().iter().any(|(k, _)| *k == name))
    }

    /// A variable the route declared (through a resource in its `uses`). Missing or empty:
    /// a start-up error naming the route. Undeclared: a start-up error too, so that what a
    /// handler reads and what the template gives it cannot drift apart.
    pub fn var(&self, name: &str) -> Result<String, StartupError> {
        if !self.declares(name) {
            return Err(self.error(format_args!(
                "reads {name}, which no resource in its `uses` provides"
            )));
        }
        (self.env)(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.error(format_args!("needs {name}, which is not set")))
    }

    /// A variable the route may or may not declare: `None` when it does not (a store
    /// shared by routes that use one table or two), else as [`Init::var`].
    pub fn var_if_declared(&self, name: &str) -> Result<Option<String>, StartupError> {
        if self.declares(name) {
            self.var(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A variable the route declared that may be unset (a local run's default): `None`
    /// when unset or empty.
    pub fn optional_var(&self, name: &str) -> Result<Option<String>, StartupError> {
        if !self.declares(name) {
            return Err(self.error(format_args!(
                "reads {name}, which no resource in its `uses` provides"
            )));
        }
        Ok((self.env)(name).filter(|v| !v.is_empty()))
    }

    /// Something the process put in [`Parts::shared`] before the routes were built (a
    /// local run's hooks), if it did.
    pub fn provided<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.parts.shared.get::<T>().cloned()
    }

    pub fn store_mode(&self) -> StoreMode {
        self.parts.store_mode
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.parts.clock)
    }

    pub fn random(&self) -> Arc<dyn SecureRandom> {
        Arc::clone(&self.parts.random)
    }

    /// The process's DynamoDB client: one per process, so one connection pool, whichever
    /// routes and tables use it. The route must use a DynamoDB table.
    pub fn dynamodb(&mut self) -> Result<aws_sdk_dynamodb::Client, StartupError> {
        if !self.uses(|r| matches!(r, Resource::DynamoTable { .. })) {
            return Err(self.error("asks for DynamoDB but uses no DynamoDB table"));
        }
        let env = self.env;
        let http = self.http()?;
        self.shared(|init| {
            let (client, warm) =
                crate::aws::dynamodb_client_and_warm(env, http).map_err(|e| init.error(e))?;
            init.warm(warm);
            Ok(client)
        })
    }

    /// The process's S3 client, on the same transport as DynamoDB, and its connection to
    /// `bucket` opened during init (once per bucket). The route must use a bucket.
    pub fn s3(&mut self, bucket: &str) -> Result<crate::aws::s3::S3Client, StartupError> {
        let client = self.s3_cold()?;
        let warmed = self.parts.shared.get_or_insert_default::<WarmedBuckets>();
        if !warmed.0.iter().any(|b| b == bucket) {
            warmed.0.push(bucket.to_owned());
            self.warm(client.warm(bucket));
        }
        Ok(client)
    }

    /// The process's S3 client without opening a connection during init: for a bucket a
    /// route seldom uses (its first call pays the handshake). The route must use a bucket.
    pub fn s3_cold(&mut self) -> Result<crate::aws::s3::S3Client, StartupError> {
        if !self.uses(|r| matches!(r, Resource::Bucket { .. })) {
            return Err(self.error("asks for S3 but uses no bucket"));
        }
        let env = self.env;
        let http = self.http()?;
        self.shared(|init| crate::aws::s3::S3Client::from_env(env, http).map_err(|e| init.error(e)))
    }

    /// The process's CloudFront client (no connection opened during init: invalidations
    /// are rare). The route must use a distribution.
    pub fn cloudfront(&mut self) -> Result<crate::aws::cloudfront::CloudFrontClient, StartupError> {
        if !self.uses(|r| matches!(r, Resource::Distribution { .. })) {
            return Err(self.error("asks for CloudFront but uses no distribution"));
        }
        let env = self.env;
        let http = self.http()?;
        self.shared(|init| {
            crate::aws::cloudfront::CloudFrontClient::from_env(env, http).map_err(|e| init.error(e))
        })
    }

    /// The process's Cognito user-pool client (no connection opened during init). The
    /// route must use a user pool.
    pub fn cognito(&mut self) -> Result<crate::aws::cognito::CognitoClient, StartupError> {
        if !self.uses(|r| matches!(r, Resource::UserPool { .. })) {
            return Err(self.error("asks for Cognito but uses no user pool"));
        }
        let env = self.env;
        let http = self.http()?;
        self.shared(|init| {
            crate::aws::cognito::CognitoClient::from_env(env, http).map_err(|e| init.error(e))
        })
    }

    /// The process's AppConfig and Lambda API clients (no connection opened during init).
    /// The route must use the functions' applications.
    pub fn appconfig_apis(&mut self) -> Result<crate::aws::appconfig::Apis, StartupError> {
        if !self.uses(|r| *r == Resource::AppConfigApplications) {
            return Err(self.error("asks for AppConfig's API but uses no AppConfig applications"));
        }
        let env = self.env;
        let memory = self.store_mode() == StoreMode::Memory;
        let http = self.http()?;
        self.shared(|init| {
            // A memory run's AppConfig and Lambda are its own stand-in (firefly-local names
            // it), else nothing: a closed port on this machine, never AWS. Without
            // credentials of its own it signs with placeholders (the stand-in checks that a
            // request is signed, not by whom).
            let local = |name: &str| -> Option<String> {
                use crate::vars;
                let set = env(name).filter(|v| !v.is_empty());
                if !memory || set.is_some() {
                    return set;
                }
                match name {
                    n if n == vars::AWS_ENDPOINT_URL_APPCONFIG.name
                        || n == vars::AWS_ENDPOINT_URL_LAMBDA.name =>
                    {
                        Some(CLOSED_ENDPOINT.to_owned())
                    }
                    n if n == vars::AWS_REGION.name => Some("us-east-1".to_owned()),
                    n if n == vars::AWS_ACCESS_KEY_ID.name
                        || n == vars::AWS_SECRET_ACCESS_KEY.name =>
                    {
                        Some("memory".to_owned())
                    }
                    _ => None,
                }
            };
            crate::aws::appconfig::Apis::from_env(&local, http).map_err(|e| init.error(e))
        })
    }

    /// Opens a connection during init, once every route is built
    /// ([`crate::app::App::warm_up`]).
    fn warm(&mut self, warm: crate::aws::Warm) {
        self.parts
            .shared
            .get_or_insert_default::<crate::aws::Warmups>()
            .0
            .push(warm);
    }

    /// The one HTTP/1 transport every AWS client of the process shares.
    fn http(&mut self) -> Result<crate::aws::http1::Http1Client, StartupError> {
        let env = self.env;
        self.shared(|init| crate::aws::transport(env).map_err(|e| init.error(e)))
    }

    /// The feature's settings section, shared by every route of the function that reads
    /// it. The route must use AppConfig.
    pub fn settings<T: Section>(&mut self) -> Result<Arc<Settings<T>>, StartupError> {
        if !self.uses(|r| *r == Resource::AppConfig) {
            return Err(self.error("reads settings but does not use AppConfig"));
        }
        let env = self.env;
        let source: Arc<ConfigSource> = self.shared(|init| {
            ConfigSource::from_env(env)
                .map(Arc::new)
                .map_err(|e| init.error(e))
        })?;
        self.shared(|_| Ok(Arc::new(Settings::<T>::new(source))))
    }

    /// State that the routes of one function share, made by the first route that asks.
    pub fn shared<T, F>(&mut self, make: F) -> Result<T, StartupError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce(&mut Self) -> Result<T, StartupError>,
    {
        if let Some(v) = self.parts.shared.get::<T>() {
            return Ok(v.clone());
        }
        let v = make(self)?;
        self.parts.shared.insert(v.clone());
        Ok(v)
    }
}
