//! Spans sent to an OpenTelemetry collector over OTLP/HTTP (protobuf), when one is named.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` added) is set, and off whatever is
//! set under `OTEL_SDK_DISABLED=true`. Each service has its own tracer and exporter,
//! named by `OTEL_SERVICE_NAME` (in `serve all`, from its config file only; else the
//! service's own name), sampled by `OTEL_TRACES_SAMPLER` and `_ARG`, and batched as
//! `OTEL_BSP_*` say.
//!
//! A span that ends is encoded into a bounded queue ([`Queue`]): never a wait on a
//! worker. A thread of the service's own sends a batch when one is full or every
//! `OTEL_BSP_SCHEDULE_DELAY` ([`otlp`]). What cannot be queued (the queue is full: the
//! collector is slow, down or refusing) is dropped, and what the collector did not
//! take is lost; both are counted in `penguin_trace_spans_total{outcome}` and said in a
//! warning at most once a minute ([`Loss`]).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use prometheus::{IntCounter, IntCounterVec, Opts};

use crate::metrics::Metrics;
use crate::otlp::{self, Collector};
use crate::service::Service;
use crate::trace::{KeyValue, Record, Sampler, Sink, Tracer};

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
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME", value_name = "NAME", value_parser = service_name)]
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
    /// Headers sent with every export, as key=value pairs joined by commas (values percent-encoded).
    #[arg(long = "otel-headers", env = "OTEL_EXPORTER_OTLP_HEADERS", value_name = "HEADERS", value_parser = headers)]
    pub headers: Option<Headers>,
    /// Headers sent with every export of spans: win over OTEL_EXPORTER_OTLP_HEADERS.
    #[arg(long = "otel-traces-headers", env = "OTEL_EXPORTER_OTLP_TRACES_HEADERS", value_name = "HEADERS", value_parser = headers)]
    pub traces_headers: Option<Headers>,
    /// How long one export may take, in milliseconds.
    #[arg(long = "otel-timeout", env = "OTEL_EXPORTER_OTLP_TIMEOUT", value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
    /// How long one export of spans may take, in milliseconds: wins over OTEL_EXPORTER_OTLP_TIMEOUT.
    #[arg(long = "otel-traces-timeout", env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub traces_timeout_ms: Option<u64>,
    /// How often the spans waiting are sent, in milliseconds (sooner when a batch is full).
    #[arg(long = "otel-bsp-schedule-delay", env = "OTEL_BSP_SCHEDULE_DELAY", value_name = "MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub schedule_delay_ms: u64,
    /// The most spans one export sends.
    #[arg(long = "otel-bsp-max-export-batch-size", env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", value_name = "SPANS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub batch: u64,
    /// The most spans a service holds for export; those that end beyond it are dropped.
    #[arg(long = "otel-bsp-max-queue-size", env = "OTEL_BSP_MAX_QUEUE_SIZE", value_name = "SPANS", default_value_t = 8_192, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub queue: u64,
}

/// Headers for a collector, read as OpenTelemetry writes them: `k=v,k2=v2`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(pub Vec<(String, String)>);

fn headers(text: &str) -> Result<Headers, String> {
    let mut pairs = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?}: expected key=value"))?;
        let name = name.trim();
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(format!("{name:?}: not a header name"));
        }
        let value = percent_decoded(value.trim()).ok_or_else(|| format!("{name}: a bad %-escape"))?;
        if value.chars().any(char::is_control) {
            return Err(format!("{name}: control characters in its value"));
        }
        pairs.push((name.to_string(), value));
    }
    Ok(Headers(pairs))
}

fn percent_decoded(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
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

fn service_name(text: &str) -> Result<String, String> {
    match text.trim() {
        "" => Err("it is empty".into()),
        name => Ok(name.to_string()),
    }
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
    pub headers: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
    /// How long a span waits for its batch, at most (unless the collector is slow).
    pub every: Duration,
    pub batch: usize,
    pub queue: usize,
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
            headers: self
                .traces_headers
                .clone()
                .or_else(|| self.headers.clone())
                .unwrap_or_default()
                .0,
            timeout: Duration::from_millis(self.traces_timeout_ms.unwrap_or(self.timeout_ms)),
            every: Duration::from_millis(self.schedule_delay_ms),
            // OpenTelemetry asks that a batch be no larger than the queue: a larger one
            // would never be full, and spans would go only on the timer.
            batch: usize::try_from(self.batch.min(self.queue)).unwrap_or(512),
            queue: usize::try_from(self.queue).unwrap_or(8192),
        })
    }
}

impl TraceSettings {
    fn sampler(&self) -> Sampler {
        let ratio = || Sampler::TraceIdRatio(self.ratio);
        let parent = |root| Sampler::ParentBased(Box::new(root));
        match self.sampler {
            SamplerName::AlwaysOn => Sampler::AlwaysOn,
            SamplerName::AlwaysOff => Sampler::AlwaysOff,
            SamplerName::Traceidratio => ratio(),
            SamplerName::ParentbasedAlwaysOn => parent(Sampler::AlwaysOn),
            SamplerName::ParentbasedAlwaysOff => parent(Sampler::AlwaysOff),
            SamplerName::ParentbasedTraceidratio => parent(ratio()),
        }
    }
}

/// One service's spans on their way out: the tracer that makes them, and the queue
/// a thread of its own exports them from.
#[derive(Clone)]
pub struct Spans {
    tracer: Tracer,
    queue: Arc<Queue>,
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
        let collector = Collector::new(&settings.endpoint, &settings.headers).map_err(anyhow::Error::msg)?;
        let queue = Arc::new(Queue {
            waiting: Mutex::new(Waiting::default()),
            changed: Condvar::new(),
            batch: settings.batch,
            bound: settings.queue,
            loss: Loss {
                endpoint: settings.endpoint.clone(),
                service,
                exported: outcomes.with_label_values(&["exported"]),
                failed: outcomes.with_label_values(&["failed"]),
                dropped: outcomes.with_label_values(&["dropped"]),
                warned: Mutex::new(None),
            },
        });
        let exporter = Exporter {
            queue: queue.clone(),
            collector,
            resource: vec![
                KeyValue::new("service.name", settings.service_name.clone()),
                KeyValue::new("service.namespace", "penguin"),
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            ],
            every: settings.every,
            timeout: settings.timeout,
        };
        std::thread::Builder::new()
            .name(format!("{service}-spans"))
            .spawn(move || exporter.run())?;
        log::info!(
            target: service.name(),
            "sending spans to {} as service {}",
            settings.endpoint,
            settings.service_name
        );
        Ok(Self {
            tracer: Tracer::new(settings.sampler(), queue.clone()),
            queue,
        })
    }

    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// Sends what is queued, waiting at most `grace` for the collector; drops the rest.
    pub fn stop(&self, grace: Duration) {
        let by = Instant::now() + grace;
        let Ok(mut waiting) = self.queue.waiting.lock() else {
            return;
        };
        waiting.stop_by.get_or_insert(by);
        self.queue.changed.notify_all();
        while !waiting.stopped {
            let left = by.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            waiting = match self.queue.changed.wait_timeout(waiting, left) {
                Ok((waiting, _)) => waiting,
                Err(_) => return,
            };
        }
    }
}

/// The spans that ended and wait for export, bounded: a span beyond the bound is
/// dropped and counted, never waited for.
#[derive(Debug)]
struct Queue {
    waiting: Mutex<Waiting>,
    /// Signalled when a batch is full, when the exporter is asked to stop, and when
    /// it has.
    changed: Condvar,
    batch: usize,
    bound: usize,
    loss: Loss,
}

#[derive(Debug, Default)]
struct Waiting {
    /// The spans, encoded as they ended (on the worker that ended them, so what they
    /// hold is freed where it was made).
    spans: Vec<u8>,
    /// Where each span ends in `spans`.
    ends: Vec<usize>,
    /// Set by `stop`: send what is left until then.
    stop_by: Option<Instant>,
    /// The exporter has ended.
    stopped: bool,
}

impl Sink for Queue {
    fn end(&self, span: Record) {
        // Encoded before the lock is taken, into this thread's own buffer, so that
        // workers ending spans at once wait only for each other's copy.
        ENCODED.with_borrow_mut(|encoded| {
            encoded.clear();
            otlp::encode(encoded, &span);
            drop(span);
            let Ok(mut waiting) = self.waiting.lock() else {
                return;
            };
            if waiting.stopped || waiting.ends.len() >= self.bound {
                let why = if waiting.stopped {
                    "the exporter has stopped"
                } else {
                    "the export queue is full"
                };
                drop(waiting);
                self.loss.dropped.inc();
                self.loss.warn(|| why.into());
                return;
            }
            waiting.spans.extend_from_slice(encoded);
            let end = waiting.spans.len();
            waiting.ends.push(end);
            let full = waiting.ends.len() == self.batch;
            drop(waiting);
            if full {
                self.changed.notify_all();
            }
        });
    }
}

thread_local! {
    /// Each thread's span as it is encoded, before it joins a queue.
    static ENCODED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The thread that sends a service's spans to its collector: a batch when one is
/// full, or every `every`.
struct Exporter {
    queue: Arc<Queue>,
    collector: Collector,
    resource: Vec<KeyValue>,
    every: Duration,
    timeout: Duration,
}

impl Exporter {
    fn run(mut self) {
        let queue = self.queue.clone();
        let (mut spans, mut ends) = (Vec::new(), Vec::new());
        let mut next = Instant::now() + self.every;
        loop {
            let Ok(mut waiting) = queue.waiting.lock() else {
                return;
            };
            while waiting.ends.len() < queue.batch && waiting.stop_by.is_none() {
                let left = next.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                waiting = match queue.changed.wait_timeout(waiting, left) {
                    Ok((waiting, _)) => waiting,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut waiting.spans, &mut spans);
            std::mem::swap(&mut waiting.ends, &mut ends);
            let stop_by = waiting.stop_by;
            let late = stop_by.is_some_and(|by| by <= Instant::now());
            if late || (ends.is_empty() && stop_by.is_some()) {
                waiting.stopped = true;
                drop(waiting);
                queue.loss.dropped.inc_by(ends.len() as u64);
                queue.changed.notify_all();
                return;
            }
            drop(waiting);
            next = Instant::now() + self.every;
            let mut start = 0;
            for batch in ends.chunks(queue.batch) {
                // chunks() yields no empty slice.
                let end = batch.last().copied().unwrap_or(start);
                let timeout = match stop_by {
                    Some(by) => self.timeout.min(by.saturating_duration_since(Instant::now())),
                    None => self.timeout,
                };
                let part = &spans[start..end];
                let head = otlp::envelope(&self.resource, part.len());
                let n = batch.len() as u64;
                match self.collector.post(&[&head, part], timeout) {
                    Ok(()) => queue.loss.exported.inc_by(n),
                    Err(e) => {
                        queue.loss.failed.inc_by(n);
                        queue
                            .loss
                            .warn(|| format!("the collector did not take {n} spans ({e})"));
                    }
                }
                start = end;
            }
            spans.clear();
            ends.clear();
        }
    }
}

/// What becomes of one service's spans: the counts of each outcome, and when a loss
/// was last said.
#[derive(Debug)]
struct Loss {
    endpoint: String,
    service: Service,
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
            headers: None,
            traces_headers: None,
            timeout_ms: 10_000,
            traces_timeout_ms: None,
            schedule_delay_ms: 5_000,
            batch: 512,
            queue: 8_192,
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
    fn headers_are_read_as_opentelemetry_writes_them() {
        assert_eq!(
            headers("api-key=abc%20def, x-tenant = shop ,").map(|h| h.0),
            Ok(vec![
                ("api-key".to_string(), "abc def".to_string()),
                ("x-tenant".to_string(), "shop".to_string())
            ])
        );
        assert_eq!(headers("").map(|h| h.0), Ok(vec![]));
        for bad in ["novalue", "bad name=1", "k=%zz", "k=%0d%0aInjected: 1", "=v"] {
            assert!(headers(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn spans_beyond_the_queue_are_dropped_and_counted_and_the_rest_are_sent() {
        use std::io::{Read, Write};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("an address");
        let settings = TraceSettings {
            endpoint: format!("http://{address}/v1/traces"),
            queue: 3,
            every: Duration::from_secs(3600),
            ..args(Some("http://unused"), None)
                .resolve(Service::Pagos)
                .expect("on")
        };
        let metrics = Metrics::new(Service::Pagos).expect("metrics");
        let spans = Spans::start(&settings, Service::Pagos, &metrics).expect("started");
        let trace = crate::trace::Trace::new(Some(spans.tracer()));
        for _ in 0..5 {
            drop(trace.span("sqlite write", crate::trace::SpanKind::Client));
        }
        let collector = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("the export");
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            // The whole request, body included: closing on unread bytes would reset the
            // connection before the answer is read.
            let whole = |got: &[u8]| {
                let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                    return false;
                };
                let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                let length = head
                    .split("content-length: ")
                    .nth(1)
                    .and_then(|l| l.split("\r\n").next())
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(0);
                got.len() - end - 4 >= length
            };
            while !whole(&got) {
                let n = stream.read(&mut chunk).expect("read");
                assert!(n > 0, "the request ended early");
                got.extend_from_slice(&chunk[..n]);
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .expect("answered");
        });
        spans.stop(Duration::from_secs(5));
        collector.join().expect("the collector");
        let text = metrics.render();
        let counted = |outcome: &str| {
            text.lines()
                .find(|l| l.starts_with("penguin_trace_spans_total") && l.contains(&format!("\"{outcome}\"")))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<f64>().ok())
        };
        assert_eq!(
            counted("dropped"),
            Some(2.0),
            "the two beyond the bound of 3: {text}"
        );
        assert_eq!(counted("exported"), Some(3.0), "sent when stopped: {text}");
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
