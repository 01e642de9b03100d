//! What Powertools for AWS Lambda gives Python and TypeScript functions, in this binary:
//! structured logs with the request's context on every line, CloudWatch metrics in Embedded
//! Metric Format (EMF: a log line that CloudWatch turns into metrics, no API call), and the
//! X-Ray trace id carried along.
//!
//! Logs are one JSON object per line on stdout with Powertools' field names, so Logs
//! Insights queries written for Powertools work unchanged: `level` (Python's names:
//! `WARNING`, as FireFly's functions write them), `logger` (the function's name, as
//! FireFly's), `message`, `timestamp`, and within a request `function_name`, `function_request_id` (Lambda's), `correlation_id`
//! (API Gateway's `requestContext.requestId`), `xray_trace_id`, `route_key`, `cold_start`.
//!
//! Only this crate logs below INFO. Dependencies (the Lambda runtime, the AWS SDK, hyper)
//! are capped at INFO whatever level is asked for: at DEBUG and TRACE they print request and
//! response payloads, and a response payload holds a registration key.

use crate::clock::rfc3339_millis;
use crate::sync::Locked;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// The level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls: the
/// function's `LoggingConfig.ApplicationLogLevel`), else `RUST_LOG`, else INFO. `RUST_LOG`
/// may be a directive list; its bare level is used.
pub fn level_from_env(env: &crate::deploy::Env<'_>) -> LevelFilter {
    let parse = |v: &str| -> Option<LevelFilter> {
        v.split(',')
            .map(str::trim)
            .filter(|d| !d.contains('='))
            .find_map(|d| match d.to_ascii_lowercase().as_str() {
                // Lambda's FATAL has no tracing equivalent; ERROR is the closest.
                "fatal" => Some(LevelFilter::ERROR),
                other => other.parse().ok(),
            })
    };
    env(crate::vars::AWS_LAMBDA_LOG_LEVEL.name)
        .as_deref()
        .and_then(parse)
        .or_else(|| env(crate::vars::RUST_LOG.name).as_deref().and_then(parse))
        .unwrap_or(LevelFilter::INFO)
}

/// A level in Python's names (FireFly's `logging` profile): CRITICAL is ERROR's level here.
pub fn level_from_python(name: &str) -> LevelFilter {
    match name {
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "ERROR" | "CRITICAL" => LevelFilter::ERROR,
        _ => LevelFilter::WARN,
    }
}

/// The filter: `level` for this crate, at most INFO for everything else.
pub fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target("firefly_api", level)
        .with_target("bootstrap", level)
        .with_target("firefly_local", level)
}

/// Where log lines and metric documents go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
    /// Nowhere (benches).
    Discard,
}

impl Output {
    /// Writes one line whole: one `write_all` of the line and its newline, under the
    /// stream's lock, so lines from two tasks never interleave.
    fn line(self, mut text: String) {
        text.push('\n');
        let _ = match self {
            Self::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Self::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
            Self::Discard => Ok(()),
        };
    }
}

struct Global {
    output: Output,
    namespace: String,
    /// Every line's `logger`: the function's name, as FireFly's Python loggers are named.
    logger: String,
}

static GLOBAL: OnceLock<Global> = OnceLock::new();

/// The CloudWatch namespace of the metrics when `FIREFLY_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = crate::vars::FIREFLY_METRICS_NAMESPACE.default;

/// The metrics namespace from `FIREFLY_METRICS_NAMESPACE` (the template's
/// `MetricsNamespace`), else [`DEFAULT_NAMESPACE`]. CloudWatch accepts 1 to 255 characters
/// of letters, digits and `.-_/#:`, not starting with a colon.
pub fn namespace_from_env(env: &crate::deploy::Env<'_>) -> Result<String, String> {
    let Some(ns) = env(crate::vars::FIREFLY_METRICS_NAMESPACE.name).filter(|v| !v.is_empty())
    else {
        return Ok(DEFAULT_NAMESPACE.into());
    };
    let ok = ns.len() <= 255
        && !ns.starts_with(':')
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c));
    if ok {
        Ok(ns)
    } else {
        Err(format!(
            "FIREFLY_METRICS_NAMESPACE={ns:?}: 1 to 255 letters, digits and .-_/#: (not starting with ':')"
        ))
    }
}

/// Installs the JSON log layer writing to `output`, and sets the metrics namespace. Safe to
/// call more than once (later calls do nothing), so tests and benches can share it.
pub fn init(level: LevelFilter, output: Output, namespace: &str, logger: &str) {
    let _ = GLOBAL.set(Global {
        output,
        namespace: namespace.to_owned(),
        logger: logger.to_owned(),
    });
    let _ = tracing_subscriber::registry()
        .with(JsonLines { output })
        .with(filter(level))
        .try_init();
}

/// firefly-local's levels, one per function (a deployed AppConfig `logging` profile),
/// over a default: set by [`init_local`], never in Lambda, where one process is one
/// function and its level is the filter's.
struct LocalLevels {
    default: LevelFilter,
    per_function: Mutex<std::collections::HashMap<String, LevelFilter>>,
}

static LOCAL_LEVELS: OnceLock<LocalLevels> = OnceLock::new();

/// [`init`] for a process that serves every function (firefly-local): each function's
/// lines at its own level ([`set_function_level`]), `default` for the rest.
pub fn init_local(default: LevelFilter, output: Output, namespace: &str, logger: &str) {
    let _ = LOCAL_LEVELS.set(LocalLevels {
        default,
        per_function: Mutex::new(std::collections::HashMap::new()),
    });
    init(default.max(LevelFilter::DEBUG), output, namespace, logger);
}

/// Sets `function`'s level in a process made by [`init_local`] (`None`: back to the
/// default). Does nothing elsewhere.
pub fn set_function_level(function: &str, level: Option<LevelFilter>) {
    if let Some(local) = LOCAL_LEVELS.get() {
        let mut per = local.per_function.locked();
        match level {
            Some(l) => per.insert(function.to_owned(), l),
            None => per.remove(function),
        };
    }
}

/// Whether a line at `level` is written now: always in Lambda (the filter decided); in
/// firefly-local, by the level of the function whose request is being served.
fn local_enabled(level: &tracing::Level) -> bool {
    let Some(local) = LOCAL_LEVELS.get() else {
        return true;
    };
    let function = CURRENT
        .try_with(|c| {
            c.route
                .locked()
                .map_or_else(|| c.function_name.clone(), |(_, f)| f.to_owned())
        })
        .ok();
    let max = function
        .and_then(|f| local.per_function.locked().get(&f).copied())
        .unwrap_or(local.default);
    *level <= max
}

fn output() -> Output {
    GLOBAL.get().map_or(Output::Stdout, |g| g.output)
}

// ---------------------------------------------------------------------------------------
// The request context

/// One request's context: on every log line written while it is served, and the source of
/// its metric document. Carried in a task-local, so concurrent requests (a local server)
/// never see each other's.
#[derive(Debug)]
pub struct RequestContext {
    pub function_name: String,
    /// Lambda's request id.
    pub function_request_id: String,
    /// API Gateway's request id (`requestContext.requestId`), which a caller can quote.
    pub correlation_id: String,
    /// The X-Ray trace id (the `Root` of the invocation's trace header), if traced.
    pub xray_trace_id: Option<String>,
    /// The event's route key.
    pub route_key: String,
    /// True on the first request this process serves.
    pub cold_start: bool,
    /// The route the event resolved to and its function (the metrics' dimensions).
    route: Mutex<Option<(&'static str, &'static str)>>,
    metrics: Mutex<Vec<(&'static str, Unit, f64)>>,
}

static COLD: AtomicBool = AtomicBool::new(true);

impl RequestContext {
    /// A context for one request; the first one created in a process is the cold start.
    pub fn new(
        function_name: &str,
        function_request_id: &str,
        correlation_id: &str,
        trace_header: Option<&str>,
        route_key: &str,
    ) -> Arc<Self> {
        Arc::new(Self {
            function_name: function_name.to_owned(),
            function_request_id: function_request_id.to_owned(),
            correlation_id: correlation_id.to_owned(),
            xray_trace_id: trace_header.and_then(xray_root).map(str::to_owned),
            route_key: route_key.to_owned(),
            cold_start: COLD.swap(false, Ordering::Relaxed),
            route: Mutex::new(None),
            metrics: Mutex::new(Vec::new()),
        })
    }

    fn metrics(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Unit, f64)>> {
        self.metrics.locked()
    }
}

/// `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1` →
/// `1-5759e988-bd862e3fe1be46a994272793`, as Powertools writes `xray_trace_id`.
pub fn xray_root(header: &str) -> Option<&str> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .filter(|root| !root.is_empty())
}

tokio::task_local! {
    static CURRENT: Arc<RequestContext>;
}

/// Runs `work` with `ctx` as the current request's context.
pub async fn in_request<F: std::future::Future>(ctx: Arc<RequestContext>, work: F) -> F::Output {
    CURRENT.scope(ctx, work).await
}

/// The route the current request resolved to, and the function that owns it: the
/// `route` and `function` dimensions of its metrics.
pub fn set_route(key: &'static str, function: &'static str) {
    let _ = CURRENT.try_with(|c| *c.route.locked() = Some((key, function)));
}

/// The current request's trace header value for downstream calls (`Root=...`), if any.
pub fn current_trace_root() -> Option<String> {
    CURRENT.try_with(|c| c.xray_trace_id.clone()).ok().flatten()
}

// ---------------------------------------------------------------------------------------
// Metrics

/// CloudWatch units this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Adds a metric to the current request's document; the route's dimensions come with it.
/// Outside a request it does nothing. Counts of one name are summed; other units keep
/// every value (EMF takes up to 100 values per metric).
pub fn metric(name: &'static str, unit: Unit, value: f64) {
    let _ = CURRENT.try_with(|c| c.metrics().push((name, unit, value)));
}

/// Milliseconds of `d`, as metrics want them.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The route dimension when an event matched no route: API Gateway only sends configured
/// route keys, but a `$default` path or a forged event must not become a dimension value.
pub const UNMATCHED_ROUTE: &str = "$unmatched";

/// The request's EMF document: namespace, dimensions `function` and `route`, the standard
/// metrics and the handler's own. Written whatever the log level.
pub fn emit_request_metrics(ctx: &RequestContext, status: u16, latency: Duration) {
    let namespace = GLOBAL
        .get()
        .map_or(DEFAULT_NAMESPACE, |g| g.namespace.as_str());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    output().line(emf_document(ctx, namespace, now, status, latency));
}

/// The document [`emit_request_metrics`] writes (public for the dispatch bench).
#[doc(hidden)]
pub fn emf_document(
    ctx: &RequestContext,
    namespace: &str,
    timestamp_ms: u64,
    status: u16,
    latency: Duration,
) -> String {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    let mut values: Vec<(&'static str, Unit, Vec<f64>)> = vec![
        ("Requests", Unit::Count, vec![1.0]),
        ("Latency", Unit::Milliseconds, vec![millis(latency)]),
        (
            "Errors4xx",
            Unit::Count,
            vec![flag((400..500).contains(&status))],
        ),
        ("Errors5xx", Unit::Count, vec![flag(status >= 500)]),
        ("ColdStart", Unit::Count, vec![flag(ctx.cold_start)]),
    ];
    for (name, unit, value) in ctx.metrics().iter().copied() {
        match values.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, Unit::Count, v)) => v[0] += value,
            Some((_, _, v)) if v.len() < 100 => v.push(value),
            Some(_) => {}
            None => values.push((name, unit, vec![value])),
        }
    }
    let resolved = *ctx.route.locked();
    let (route, function) = match resolved {
        Some((route, function)) => (route, function),
        None => (UNMATCHED_ROUTE, ctx.function_name.as_str()),
    };
    // Written directly, not through a serde_json::Value: a few hundred bytes per request
    // without a map per level (the dispatch bench: observability/emf-document).
    let mut doc = String::with_capacity(640);
    let _ = write!(
        doc,
        "{{\"_aws\":{{\"Timestamp\":{timestamp_ms},\"CloudWatchMetrics\":[{{\"Namespace\":{},\"Dimensions\":[[\"function\",\"route\"]],\"Metrics\":[",
        json_str(namespace)
    );
    for (i, (name, unit, _)) in values.iter().enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(
            doc,
            "{comma}{{\"Name\":{},\"Unit\":\"{}\"}}",
            json_str(name),
            unit.as_str()
        );
    }
    doc.push_str("]}]}");
    push_str_field(&mut doc, "function", function);
    push_str_field(&mut doc, "route", route);
    // Not dimensions: properties that lead from a data point to its request.
    push_str_field(&mut doc, "function_request_id", &ctx.function_request_id);
    push_str_field(&mut doc, "correlation_id", &ctx.correlation_id);
    if let Some(trace) = &ctx.xray_trace_id {
        push_str_field(&mut doc, "xray_trace_id", trace);
    }
    for (name, _, v) in &values {
        let number = |x: f64| serde_json::Number::from_f64(x).map_or("0".into(), |n| n.to_string());
        let value = match v.as_slice() {
            [one] => number(*one),
            many => format!(
                "[{}]",
                many.iter()
                    .map(|x| number(*x))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let _ = write!(doc, ",{}:{value}", json_str(name));
    }
    doc.push('}');
    doc
}

// ---------------------------------------------------------------------------------------
// Log lines

/// The log layer: one JSON object per event, the request's context merged in.
struct JsonLines {
    output: Output,
}

impl<S: Subscriber> Layer<S> for JsonLines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !local_enabled(event.metadata().level()) {
            return;
        }
        self.output.line(log_line(event, SystemTime::now()));
    }
}

fn log_line(event: &Event<'_>, now: SystemTime) -> String {
    let millis = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut line = String::with_capacity(256);
    line.push('{');
    push_str_field(&mut line, "timestamp", &rfc3339_millis(millis));
    push_str_field(&mut line, "level", level_name(event.metadata().level()));
    if let Some(g) = GLOBAL.get() {
        push_str_field(&mut line, "logger", &g.logger);
    }
    push_str_field(&mut line, "message", &fields.message);
    let _ = CURRENT.try_with(|c| {
        // The function that owns the route, once the event resolved to one: the same as
        // the process's in Lambda, the route's own in firefly-local (which serves them all).
        let owner = *c.route.locked();
        let function = owner.map_or(c.function_name.as_str(), |(_, f)| f);
        push_str_field(&mut line, "function_name", function);
        push_str_field(&mut line, "function_request_id", &c.function_request_id);
        push_str_field(&mut line, "correlation_id", &c.correlation_id);
        if let Some(t) = &c.xray_trace_id {
            push_str_field(&mut line, "xray_trace_id", t);
        }
        push_str_field(&mut line, "route_key", &c.route_key);
        let _ = write!(line, ",\"cold_start\":{}", c.cold_start);
    });
    line.push_str(&fields.rest);
    push_str_field(&mut line, "target", event.metadata().target());
    line.push('}');
    line
}

/// Python's level names, which FireFly's console and queries use (WARN is WARNING).
fn level_name(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::WARN => "WARNING",
        ref other => other.as_str(),
    }
}

/// `,"name":"value"` (or without the comma first), JSON-escaped.
fn push_str_field(line: &mut String, name: &str, value: &str) {
    if line.len() > 1 {
        line.push(',');
    }
    let _ = write!(line, "{}:{}", json_str(name), json_str(value));
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// An event's fields: the message apart, the rest as `,"name":value` JSON.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn push_raw(&mut self, field: &Field, json: &str) {
        let _ = write!(self.rest, ",{}:{json}", json_str(field.name()));
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.push_raw(field, &json_str(value));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push_raw(field, &value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push_raw(field, &value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push_raw(field, if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(n) => self.push_raw(field, &n.to_string()),
            None => self.push_raw(field, "null"),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` arrives here as Display-through-Debug, `?x` as Debug: both as text.
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn lambda_level_wins_over_rust_log() {
        let e = env(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "error")]);
        assert_eq!(level_from_env(&e), LevelFilter::DEBUG);
        assert_eq!(
            level_from_env(&env(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")])),
            LevelFilter::ERROR
        );
    }

    #[test]
    fn rust_log_bare_level_then_default_info() {
        assert_eq!(
            level_from_env(&env(&[("RUST_LOG", "hyper=trace,warn")])),
            LevelFilter::WARN
        );
        assert_eq!(
            level_from_env(&env(&[("RUST_LOG", "nonsense")])),
            LevelFilter::INFO
        );
        assert_eq!(level_from_env(&env(&[])), LevelFilter::INFO);
    }

    #[test]
    fn dependencies_never_log_below_info() {
        let f = filter(LevelFilter::TRACE);
        let would = |target: &str, level: Level| f.would_enable(target, &level);
        assert!(would("firefly_api::app", Level::TRACE));
        assert!(would("lambda_runtime", Level::INFO));
        assert!(!would("lambda_runtime", Level::DEBUG));
        assert!(!would("aws_smithy_runtime::client", Level::TRACE));
        assert!(!would("hyper_util", Level::DEBUG));
        let f = filter(LevelFilter::WARN);
        assert!(!f.would_enable("firefly_api", &Level::INFO));
        assert!(!f.would_enable("lambda_runtime", &Level::INFO));
    }

    #[test]
    fn the_xray_root_is_what_powertools_logs() {
        assert_eq!(
            xray_root("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            Some("1-5759e988-bd862e3fe1be46a994272793")
        );
        assert_eq!(xray_root("Parent=1;Sampled=0"), None);
        assert_eq!(xray_root("Root="), None);
    }

    #[test]
    fn namespaces_are_checked_as_cloudwatch_checks_them() {
        assert_eq!(namespace_from_env(&env(&[])).unwrap(), "Firefly");
        assert_eq!(
            namespace_from_env(&env(&[("FIREFLY_METRICS_NAMESPACE", "Firefly/Prod")])).unwrap(),
            "Firefly/Prod"
        );
        for bad in [":x", "a\"b", "é"] {
            let e = env(Box::leak(Box::new([("FIREFLY_METRICS_NAMESPACE", bad)])));
            assert!(namespace_from_env(&e).is_err(), "{bad}");
        }
    }

    fn context() -> Arc<RequestContext> {
        let ctx = RequestContext::new(
            "firefly-func-api-registration-keys-post",
            "req-1",
            "Cq2bTjk9joEEMhQ=",
            Some("Root=1-6745f1a2-0c3f8e5b7a1d2e3f4a5b6c7d;Sampled=1"),
            "POST /registration-keys",
        );
        *ctx.route.lock().unwrap() = Some((
            "POST /registration-keys",
            "firefly-func-api-registration-keys-post",
        ));
        ctx
    }

    #[test]
    fn a_metric_document_carries_the_standard_and_the_handlers_metrics() {
        let ctx = context();
        ctx.metrics().push(("KeysMinted", Unit::Count, 1.0));
        ctx.metrics().push(("DynamoDBAttempts", Unit::Count, 1.0));
        ctx.metrics().push(("DynamoDBAttempts", Unit::Count, 2.0));
        ctx.metrics()
            .push(("DynamoDBLatency", Unit::Milliseconds, 3.5));
        ctx.metrics()
            .push(("DynamoDBLatency", Unit::Milliseconds, 4.5));
        let doc: serde_json::Value = serde_json::from_str(&emf_document(
            &ctx,
            "Firefly",
            1_795_731_191_000,
            503,
            Duration::from_micros(1500),
        ))
        .unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_731_191_000u64);
        assert_eq!(directive["Namespace"], "Firefly");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["function", "route"]])
        );
        assert_eq!(doc["function"], "firefly-func-api-registration-keys-post");
        assert_eq!(doc["route"], "POST /registration-keys");
        assert_eq!(doc["Requests"], 1.0);
        assert_eq!(doc["Latency"], 1.5);
        assert_eq!(doc["Errors4xx"], 0.0);
        assert_eq!(doc["Errors5xx"], 1.0);
        assert_eq!(doc["KeysMinted"], 1.0);
        assert_eq!(doc["DynamoDBAttempts"], 3.0);
        assert_eq!(doc["DynamoDBLatency"], serde_json::json!([3.5, 4.5]));
        assert_eq!(doc["xray_trace_id"], "1-6745f1a2-0c3f8e5b7a1d2e3f4a5b6c7d");
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "Requests",
                "Latency",
                "Errors4xx",
                "Errors5xx",
                "ColdStart",
                "KeysMinted",
                "DynamoDBAttempts",
                "DynamoDBLatency"
            ]
        );
    }

    #[test]
    fn an_unmatched_event_never_becomes_a_route_dimension() {
        let ctx = RequestContext::new("f", "r", "c", None, "GET /anything-a-caller-typed");
        let doc: serde_json::Value =
            serde_json::from_str(&emf_document(&ctx, "Firefly", 0, 404, Duration::ZERO)).unwrap();
        assert_eq!(doc["route"], UNMATCHED_ROUTE);
        assert_eq!(doc["Errors4xx"], 1.0);
        assert!(doc.get("xray_trace_id").is_none());
    }

    #[tokio::test]
    async fn log_lines_carry_the_request_context_inside_a_request_only() {
        struct Capture;
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
                LINES.with(|l| l.borrow_mut().push(log_line(event, UNIX_EPOCH)));
            }
        }
        thread_local! {
            static LINES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let subscriber = tracing_subscriber::registry().with(Capture);
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::info!(status = 201u16, user_id = "u-1", ok = true, "outside");
        in_request(context(), async {
            tracing::warn!(error = %"a \"quoted\" error", "inside");
        })
        .await;
        let lines: Vec<serde_json::Value> = LINES.with(|l| {
            l.borrow()
                .iter()
                .map(|s| serde_json::from_str(s).expect("valid JSON"))
                .collect()
        });
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["status"], 201);
        assert_eq!(lines[0]["ok"], true);
        assert_eq!(lines[0]["timestamp"], "1970-01-01T00:00:00.000Z");
        assert!(lines[0].get("function_request_id").is_none());
        let inside = &lines[1];
        assert_eq!(inside["level"], "WARNING");
        assert_eq!(inside["error"], "a \"quoted\" error");
        assert_eq!(
            inside["function_name"],
            "firefly-func-api-registration-keys-post"
        );
        assert_eq!(inside["function_request_id"], "req-1");
        assert_eq!(inside["correlation_id"], "Cq2bTjk9joEEMhQ=");
        assert_eq!(
            inside["xray_trace_id"],
            "1-6745f1a2-0c3f8e5b7a1d2e3f4a5b6c7d"
        );
        assert_eq!(inside["route_key"], "POST /registration-keys");
        assert!(inside["cold_start"].is_boolean());
    }
}
