//! Structured logs through `tracing`, and, when an OTLP endpoint is
//! configured, the calls' spans exported as OpenTelemetry traces (each a
//! child of the caller's W3C trace context). Record contents and tokens
//! are never logged nor put in a span; the ledger is data, not logs.

use std::io::IsTerminal;
use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// The provider of exported traces, once installed.
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber: logs to standard error as `format`
/// says, filtered by `level` (`RUST_LOG`, when set, overrides it), and,
/// with `otlp_endpoint`, spans exported over OTLP/gRPC. Call it within the
/// runtime (the exporter's client runs on it).
pub fn init(format: LogFormat, level: &str, otlp_endpoint: Option<&str>) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let traces = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|e| anyhow::anyhow!("cannot export traces to {endpoint}: {e}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("accord")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("accord");
            let _ = TRACES.set(provider);
            Some(tracing_opentelemetry::layer().with_tracer(tracer))
        }
        None => None,
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(traces)
        .with(filter)
        .try_init();
    Ok(())
}

/// Whether spans are exported.
pub fn exporting() -> bool {
    TRACES.get().is_some()
}

/// Makes `span` a child of the W3C trace context in `metadata`, when
/// spans are exported (an invalid or absent context leaves it a root).
pub fn follow_caller(span: &tracing::Span, metadata: &MetadataMap) {
    if !exporting() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(metadata));
    let _ = span.set_parent(parent);
}

/// Sends the spans not yet exported, before the process ends.
pub fn shutdown() {
    if let Some(provider) = TRACES.get()
        && let Err(e) = provider.shutdown()
    {
        tracing::warn!(error = %e, "could not export the last traces");
    }
}

/// Request metadata as the propagator reads it.
struct Headers<'a>(&'a MetadataMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// `error` and its causes, outermost first, joined by ": ", each said
/// once: drivers often repeat their cause in their own message, and a
/// cause already said is left out.
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        next = cause.source();
    }
    text
}

/// A subscriber for tests: silent unless `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = init(LogFormat::Text, "debug", None);
    }
}

#[cfg(test)]
mod tests {
    use super::causes;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the database")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn causes_are_said_once_in_order() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = Outer(Middle(refused));
        assert_eq!(
            causes(&error),
            "cannot open the database: database error: connection refused"
        );
    }
}
