//! What a route's handler can ask for while it is built at start-up.
//!
//! Each Lambda function builds only its own routes' handlers, and each handler asks only
//! for what it needs: its environment variables (declared in its route's `uses`), the
//! process's one DynamoDB client, its settings section, the clock, the random source.
//! Nothing is built that no route of the function asked for.

use crate::clock::Clock;
use crate::config::{ConfigSource, Section, Settings};
use crate::error::StartupError;
use crate::random::SecureRandom;
use crate::route::{Resource, Route};
use lambda_http::http::Extensions;
use std::sync::Arc;

/// Which stores the features use. DynamoDB unless the memory stores are asked for by name
/// (`FIREFLY_STORE=memory`, local runs only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    DynamoDb,
    Memory,
}

/// The process-wide parts every handler may share, built once.
pub struct Init<'e> {
    env: &'e dyn Fn(&str) -> Option<String>,
    route: &'static Route,
    clock: Arc<dyn Clock>,
    random: Arc<dyn SecureRandom>,
    store_mode: StoreMode,
    config: Option<Arc<ConfigSource>>,
    dynamodb: Option<aws_sdk_dynamodb::Client>,
    /// State the routes of one function share (a feature's store, its settings), keyed by
    /// type; tests put their own in first.
    shared: Extensions,
}

impl<'e> Init<'e> {
    pub(crate) fn new(
        env: &'e dyn Fn(&str) -> Option<String>,
        first: &'static Route,
        clock: Arc<dyn Clock>,
        random: Arc<dyn SecureRandom>,
        store_mode: StoreMode,
        shared: Extensions,
    ) -> Self {
        Self {
            env,
            route: first,
            clock,
            random,
            store_mode,
            config: None,
            dynamodb: None,
            shared,
        }
    }

    /// The route being built; errors name it.
    pub(crate) fn set_route(&mut self, route: &'static Route) {
        self.route = route;
    }

    fn error(&self, message: impl std::fmt::Display) -> StartupError {
        StartupError(format!("route {}: {message}", self.route.key))
    }

    /// A variable the route declared (through a resource in its `uses`). Missing or empty:
    /// a start-up error naming the route. Undeclared: a start-up error too, so that what a
    /// handler reads and what the template gives it cannot drift apart.
    pub fn var(&self, name: &str) -> Result<String, StartupError> {
        let declared = self.route.env().iter().any(|(k, _)| *k == name);
        if !declared {
            return Err(self.error(format_args!(
                "reads {name}, which no resource in its `uses` provides"
            )));
        }
        (self.env)(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| self.error(format_args!("needs {name}, which is not set")))
    }

    pub fn store_mode(&self) -> StoreMode {
        self.store_mode
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    pub fn random(&self) -> Arc<dyn SecureRandom> {
        Arc::clone(&self.random)
    }

    /// The process's DynamoDB client: one per process, so one connection pool, whichever
    /// routes and tables use it. The route must use a DynamoDB table.
    pub fn dynamodb(&mut self) -> Result<aws_sdk_dynamodb::Client, StartupError> {
        if !self
            .route
            .uses
            .iter()
            .any(|u| matches!(u.resource, Resource::DynamoTable { .. }))
        {
            return Err(self.error("asks for DynamoDB but uses no DynamoDB table"));
        }
        if let Some(client) = &self.dynamodb {
            return Ok(client.clone());
        }
        let client = crate::aws::dynamodb_client(self.env).map_err(|e| self.error(e))?;
        self.dynamodb = Some(client.clone());
        Ok(client)
    }

    /// The feature's settings section, shared by every route of the function that reads
    /// it. The route must use AppConfig.
    pub fn settings<T: Section>(&mut self) -> Result<Arc<Settings<T>>, StartupError> {
        if !self
            .route
            .uses
            .iter()
            .any(|u| *u.resource == Resource::AppConfig)
        {
            return Err(self.error("reads settings but does not use AppConfig"));
        }
        if let Some(s) = self.shared.get::<Arc<Settings<T>>>() {
            return Ok(Arc::clone(s));
        }
        let source = match &self.config {
            Some(source) => Arc::clone(source),
            None => {
                let source = Arc::new(ConfigSource::from_env(self.env).map_err(|e| self.error(e))?);
                self.config = Some(Arc::clone(&source));
                source
            }
        };
        let settings = Arc::new(Settings::<T>::new(source));
        self.shared.insert(Arc::clone(&settings));
        Ok(settings)
    }

    /// State that the routes of one function share, made by the first route that asks.
    pub fn shared<T, F>(&mut self, make: F) -> Result<T, StartupError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce(&mut Self) -> Result<T, StartupError>,
    {
        if let Some(v) = self.shared.get::<T>() {
            return Ok(v.clone());
        }
        let v = make(self)?;
        self.shared.insert(v.clone());
        Ok(v)
    }
}
