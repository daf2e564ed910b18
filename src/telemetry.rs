//! Spans sent to an OpenTelemetry collector over OTLP/HTTP (protobuf), when one is named.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` added) is set, and off whatever is
//! set under `OTEL_SDK_DISABLED=true`. Each service has its own tracer provider, named
//! by `OTEL_SERVICE_NAME` (in `serve all`, from its config file only; else the
//! service's own name), sampled by `OTEL_TRACES_SAMPLER` and `_ARG`.
//!
//! A span that ends goes into a bounded queue ([`Admitted`]): never a wait on a worker.
//! The SDK's batch processor exports from its own thread, with the OTLP exporter's
//! blocking client. What cannot be queued (the queue is full: the collector is slow,
//! down or refusing) is dropped, and what the collector did not take is lost; both are
//! counted in `penguin_trace_spans_total{outcome}` and said in a warning at most once
//! a minute ([`Counted`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler as SdkSampler, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::metrics::Metrics;
use crate::service::Service;
use crate::trace::Tracer;

/// The spans a service may hold for export, unless `OTEL_BSP_MAX_QUEUE_SIZE` says.
const QUEUE: usize = 8192;
/// How often a failing export is said in the log, at most.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The standard OpenTelemetry settings penguin reads, as flags and variables.
#[derive(Debug, Clone, Args)]
pub struct TraceArgs {
    /// Where to send spans: an OTLP/HTTP collector's base URL (`/v1/traces` is added). Unset: no spans are sent.
    #[arg(long = "otel-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL", value_parser = collector_url)]
    pub endpoint: Option<String>,
    /// Where to send spans, used as it is: wins over OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long = "otel-traces-endpoint", env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_name = "URL", value_parser = collector_url)]
    pub traces_endpoint: Option<String>,
    /// How the OTLP exporter sends: only http/protobuf is built in. Read only to refuse
    /// another (grpc) at start, rather than send what the collector does not expect.
    #[arg(long = "otel-protocol", env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_name = "PROTOCOL", value_enum, default_value_t = OtlpProtocol::HttpProtobuf)]
    pub protocol: OtlpProtocol,
    /// The name the service's spans carry (in serve all, from its config file; default: the service's name).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME", value_name = "NAME", value_parser = crate::config::non_blank)]
    pub service_name: Option<String>,
    /// Which traces are kept.
    #[arg(long = "otel-traces-sampler", env = "OTEL_TRACES_SAMPLER", value_name = "SAMPLER", value_enum, default_value_t = SamplerName::ParentbasedAlwaysOn)]
    pub sampler: SamplerName,
    /// The ratio of the traceidratio samplers, from 0 to 1 (default 1).
    #[arg(long = "otel-traces-sampler-arg", env = "OTEL_TRACES_SAMPLER_ARG", value_name = "RATIO", value_parser = ratio)]
    pub sampler_arg: Option<f64>,
    /// true: send no spans, whatever else is set.
    #[arg(long = "otel-sdk-disabled", env = "OTEL_SDK_DISABLED", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub disabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The samplers OpenTelemetry's `OTEL_TRACES_SAMPLER` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SamplerName {
    AlwaysOn,
    AlwaysOff,
    Traceidratio,
    ParentbasedAlwaysOn,
    ParentbasedAlwaysOff,
    ParentbasedTraceidratio,
}

/// An http:// URL, or nothing (an empty value, as a compose file passes an unset one).
fn collector_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    if text.starts_with("https://") {
        return Err("https needs TLS, which this build leaves out: name an http:// collector".into());
    }
    if !text.starts_with("http://") || text.len() == "http://".len() {
        return Err("expected an http:// URL".into());
    }
    Ok(text.to_string())
}

fn ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// What one service exports, resolved from its [`TraceArgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The URL spans are posted to.
    pub endpoint: String,
    pub service_name: String,
    pub sampler: SamplerName,
    pub ratio: f64,
}

impl TraceArgs {
    /// Where and how `service` exports, or `None` when it does not.
    pub fn resolve(&self, service: Service) -> Option<TraceSettings> {
        if self.disabled {
            return None;
        }
        let given = |url: &Option<String>| url.clone().filter(|u| !u.is_empty());
        let endpoint = match (given(&self.traces_endpoint), given(&self.endpoint)) {
            (Some(traces), _) => traces,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return None,
        };
        Some(TraceSettings {
            endpoint,
            service_name: self
                .service_name
                .clone()
                .unwrap_or_else(|| service.name().to_string()),
            sampler: self.sampler,
            ratio: self.sampler_arg.unwrap_or(1.0),
        })
    }
}

impl TraceSettings {
    fn sampler(&self) -> SdkSampler {
        let ratio = || SdkSampler::TraceIdRatioBased(self.ratio);
        let parent = |root| SdkSampler::ParentBased(Box::new(root));
        match self.sampler {
            SamplerName::AlwaysOn => SdkSampler::AlwaysOn,
            SamplerName::AlwaysOff => SdkSampler::AlwaysOff,
            SamplerName::Traceidratio => ratio(),
            SamplerName::ParentbasedAlwaysOn => parent(SdkSampler::AlwaysOn),
            SamplerName::ParentbasedAlwaysOff => parent(SdkSampler::AlwaysOff),
            SamplerName::ParentbasedTraceidratio => parent(ratio()),
        }
    }
}

/// One service's spans on their way out: the tracer that makes them and the provider
/// that exports them.
#[derive(Clone)]
pub struct Spans {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

impl Spans {
    /// Starts exporting one service's spans, and counts them in its `metrics`.
    pub fn start(settings: &TraceSettings, service: Service, metrics: &Metrics) -> anyhow::Result<Self> {
        let outcomes = metrics.register(IntCounterVec::new(
            Opts::new(
                "trace_spans_total",
                "Spans ended, by what became of them: exported, failed (the collector did not take them) \
                 or dropped (the export queue was full)",
            ),
            &["outcome"],
        )?)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.endpoint.clone())
            .build()?;
        // The SDK's builder reads OTEL_BSP_* itself; the queue's bound is read here too,
        // since the gate in front of the processor must hold to the same one.
        let config = BatchConfigBuilder::default();
        let queue = std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
            .ok()
            .and_then(|q| q.parse().ok())
            .unwrap_or(QUEUE);
        let config = config.with_max_queue_size(queue).build();
        let loss = Arc::new(Loss {
            endpoint: settings.endpoint.clone(),
            service,
            waiting: AtomicUsize::new(0),
            exported: outcomes.with_label_values(&["exported"]),
            failed: outcomes.with_label_values(&["failed"]),
            dropped: outcomes.with_label_values(&["dropped"]),
            warned: Mutex::new(None),
        });
        let counted = Counted {
            inner: exporter,
            loss: loss.clone(),
        };
        let batches = BatchSpanProcessor::builder(counted)
            .with_batch_config(config)
            .build();
        let processor = Admitted {
            inner: batches,
            queue,
            loss,
        };
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", settings.service_name.clone()),
                KeyValue::new("service.namespace", "penguin"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ])
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(settings.sampler())
            .with_resource(resource)
            .build();
        let tracer = Arc::new(provider.tracer("penguin"));
        log::info!(
            target: service.name(),
            "sending spans to {} as service {}",
            settings.endpoint,
            settings.service_name
        );
        Ok(Self { provider, tracer })
    }

    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// Sends what is queued, waiting at most `grace` for the collector; drops the rest.
    pub fn stop(&self, grace: Duration) {
        if let Err(e) = self.provider.shutdown_with_timeout(grace) {
            log::debug!("traces: stopping the exporter: {e}");
        }
    }
}

/// The batch processor behind a gate that counts the spans it holds: a span that
/// would go over the bound is dropped and counted here, so the processor's own queue
/// never fills and every span lost is seen.
#[derive(Debug)]
struct Admitted {
    inner: BatchSpanProcessor,
    queue: usize,
    loss: Arc<Loss>,
}

impl SpanProcessor for Admitted {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.loss.waiting.fetch_add(1, Ordering::Relaxed) >= self.queue {
            self.loss.waiting.fetch_sub(1, Ordering::Relaxed);
            self.loss.dropped.inc();
            self.loss.warn(|| "the export queue is full".into());
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// What becomes of one service's spans: how many wait for export, the counts of each
/// outcome, and when a loss was last said.
#[derive(Debug)]
struct Loss {
    endpoint: String,
    service: Service,
    waiting: AtomicUsize,
    exported: IntCounter,
    failed: IntCounter,
    dropped: IntCounter,
    warned: Mutex<Option<Instant>>,
}

impl Loss {
    /// Says what went wrong, at most once every [`WARN_EVERY`].
    fn warn(&self, why: impl FnOnce() -> String) {
        let Ok(mut last) = self.warned.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        log::warn!(
            target: self.service.name(),
            "traces: spans are lost on the way to {}: {} (said at most once a minute; \
             penguin_trace_spans_total counts them)",
            self.endpoint,
            why()
        );
    }
}

/// The OTLP exporter, counting what it sent and what the collector did not take.
#[derive(Debug)]
struct Counted {
    inner: opentelemetry_otlp::SpanExporter,
    loss: Arc<Loss>,
}

impl SpanExporter for Counted {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.loss.waiting.fetch_sub(n, Ordering::Relaxed);
        match &result {
            Ok(()) => self.loss.exported.inc_by(n as u64),
            Err(e) => {
                self.loss.failed.inc_by(n as u64);
                self.loss
                    .warn(|| format!("the collector did not take {n} spans ({e})"));
            }
        }
        result
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: Option<&str>, traces: Option<&str>) -> TraceArgs {
        TraceArgs {
            endpoint: endpoint.map(String::from),
            traces_endpoint: traces.map(String::from),
            protocol: OtlpProtocol::HttpProtobuf,
            service_name: None,
            sampler: SamplerName::ParentbasedAlwaysOn,
            sampler_arg: None,
            disabled: false,
        }
    }

    #[test]
    fn the_endpoint_is_resolved_as_the_otlp_specification_says() {
        let endpoint = |a: TraceArgs| a.resolve(Service::Pagos).map(|s| s.endpoint);
        assert_eq!(endpoint(args(None, None)), None, "off unless named");
        assert_eq!(endpoint(args(Some(""), Some(""))), None, "empty is unset");
        assert_eq!(
            endpoint(args(Some("http://c:4318"), None)).as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(
            endpoint(args(Some("http://c:4318/"), None)).as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(
            endpoint(args(Some("http://c:4318"), Some("http://t:9/spans"))).as_deref(),
            Some("http://t:9/spans"),
            "the traces endpoint wins, as it is"
        );
        let disabled = TraceArgs {
            disabled: true,
            ..args(Some("http://c:4318"), None)
        };
        assert_eq!(endpoint(disabled), None, "OTEL_SDK_DISABLED wins over all");
        let named = args(Some("http://c:4318"), None).resolve(Service::Pagos);
        assert_eq!(named.map(|s| s.service_name).as_deref(), Some("pagos"));
    }

    #[test]
    fn only_plain_http_collectors_and_ratios_from_0_to_1_are_taken() {
        assert!(collector_url("https://c:4318").is_err_and(|e| e.contains("TLS")));
        assert!(collector_url("c:4318").is_err());
        assert!(collector_url("http://").is_err());
        assert_eq!(collector_url(" http://c:4318 ").as_deref(), Ok("http://c:4318"));
        assert_eq!(ratio("0.25"), Ok(0.25));
        assert!(ratio("1.5").is_err() && ratio("-0.1").is_err() && ratio("half").is_err());
    }
}
