//! Logs: one JSON object per line on stdout, which CloudWatch Logs Insights parses.
//!
//! Only this crate logs below INFO. Dependencies (the Lambda runtime, the AWS SDK, hyper)
//! are capped at INFO whatever level is asked for: at DEBUG and TRACE they print request and
//! response payloads, and a response payload holds a registration key.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The level from `AWS_LAMBDA_LOG_LEVEL` (Lambda's advanced logging controls), else
/// `RUST_LOG`, else INFO. `RUST_LOG` may be a directive list; its bare level is used.
pub fn level_from_env(env: &dyn Fn(&str) -> Option<String>) -> LevelFilter {
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
    env("AWS_LAMBDA_LOG_LEVEL")
        .as_deref()
        .and_then(parse)
        .or_else(|| env("RUST_LOG").as_deref().and_then(parse))
        .unwrap_or(LevelFilter::INFO)
}

/// The filter: `level` for this crate, at most INFO for everything else.
pub fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(level.min(LevelFilter::INFO))
        .with_target("firefly_api", level)
        .with_target("bootstrap", level)
}

/// Installs the JSON subscriber writing to `writer`. Safe to call more than once (later calls
/// do nothing), so tests and benches can share it.
pub fn init<W>(level: LevelFilter, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer);
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter(level))
        .try_init();
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
}
