//! Telemetry set-up shared by every process: `tracing` with an env filter (`RUST_LOG`),
//! written to stderr, and — when `OTEL_EXPORTER_OTLP_ENDPOINT` is set — spans exported over
//! OTLP/gRPC to that collector, named after the process's role (`OTEL_SERVICE_NAME`
//! overrides). Without the variable nothing is exported and nothing is dialled.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Keeps the exporter alive; dropping it flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber once; later calls only return a handle (tests start many
/// servers in one process). Must run inside a tokio runtime when exporting. `json`: one
/// JSON object per line (for log pipelines) instead of text.
pub fn init(default_filter: &str, service: &str, json: bool) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only on a terminal: `up` and containers send stderr to files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi));
    let json = json.then(|| tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr));
    let provider = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok().filter(|e| !e.is_empty()).and_then(|endpoint| {
        match opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build() {
            Ok(exporter) => {
                let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("ferrocache-{service}"));
                let resource = opentelemetry_sdk::Resource::builder().with_service_name(name).build();
                Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
            }
            Err(e) => {
                eprintln!("OTLP export to {endpoint} disabled: {e}");
                None
            }
        }
    });
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("ferrocache")));
    let _ = tracing_subscriber::registry().with(filter).with(text).with(json).with(otel).try_init();
    Telemetry { provider }
}
