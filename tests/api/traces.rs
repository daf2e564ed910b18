//! Spans exported with OpenTelemetry: `penguin serve all` (and a second pedidos whose
//! pagos is gone) sends OTLP/HTTP to a receiver in this test, whose exports are decoded
//! with the `opentelemetry-proto` definitions: one trace per order, the four services'
//! spans in one parent/child tree, each attempt at a peer its own span, failures marked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{
    Fault, FaultProxy, Http, Running, TOKEN, free_port, order_body, penguin, start, stocked_product,
};

/// The exports received: path, content type and body of each.
type Exports = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// What a [`Receiver`] does with an export.
const TAKE: u8 = 0;
const REFUSE: u8 = 1;
const HANG: u8 = 2;

/// An OTLP/HTTP receiver on a real port: keeps every export's body and answers `200`
/// ([`TAKE`]), or answers `503` ([`REFUSE`]), or reads it and never answers ([`HANG`]).
struct Receiver {
    url: String,
    bodies: Exports,
    mode: Arc<AtomicU8>,
    /// Exports read, kept or not.
    received: Arc<AtomicUsize>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let bodies: Exports = Arc::default();
        let mode: Arc<AtomicU8> = Arc::default();
        let received: Arc<AtomicUsize> = Arc::default();
        let (kept, chosen, counted) = (bodies.clone(), mode.clone(), received.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (kept, chosen, counted) = (kept.clone(), chosen.clone(), counted.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream);
                    // One exporter connection carries many requests (keep-alive).
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                        let (mut length, mut content_type) = (0, String::new());
                        loop {
                            let mut header = String::new();
                            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                                return;
                            }
                            let header = header.trim_end();
                            if header.is_empty() {
                                break;
                            }
                            let (name, value) = header.split_once(':').unwrap_or((header, ""));
                            match name.to_ascii_lowercase().as_str() {
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                "content-type" => content_type = value.trim().to_string(),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; length];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        counted.fetch_add(1, Ordering::SeqCst);
                        let status = match chosen.load(Ordering::SeqCst) {
                            TAKE => {
                                kept.lock().unwrap().push((path, content_type, body));
                                "200 OK"
                            }
                            REFUSE => "503 Service Unavailable",
                            _ => {
                                std::thread::sleep(Duration::from_secs(3600));
                                return;
                            }
                        };
                        let answer = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
                        );
                        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            url,
            bodies,
            mode,
            received,
        }
    }

    /// A receiver that meets every export with `mode`.
    fn in_mode(mode: u8) -> Self {
        let receiver = Self::start();
        receiver.mode.store(mode, Ordering::SeqCst);
        receiver
    }

    /// Every span received so far, decoded.
    fn spans(&self) -> Vec<Span> {
        let bodies = self.bodies.lock().unwrap().clone();
        let mut spans = Vec::new();
        for (path, content_type, body) in bodies {
            assert_eq!(path, "/v1/traces", "OTLP/HTTP's path for traces");
            assert_eq!(content_type, "application/x-protobuf");
            let export = ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP export");
            for resource in export.resource_spans {
                let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
                let service = text_of(&attributes, "service.name").expect("service.name");
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push(Span {
                            service: service.clone(),
                            trace: hex(&span.trace_id),
                            id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                            name: span.name.clone(),
                            kind: span.kind,
                            error: span
                                .status
                                .as_ref()
                                .is_some_and(|s| s.code == SpanStatus::Error as i32),
                            events: span.events.iter().map(|e| e.name.clone()).collect(),
                            links: span.links.iter().map(|l| hex(&l.trace_id)).collect(),
                            attributes: span
                                .attributes
                                .iter()
                                .filter_map(|kv| {
                                    Some((kv.key.clone(), shown(kv.value.as_ref()?.value.as_ref()?)))
                                })
                                .collect(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// The spans of `trace` once `wanted` of them have arrived (or all after 15 s).
    async fn trace(&self, trace: &str, wanted: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans: Vec<Span> = self.spans().into_iter().filter(|s| s.trace == trace).collect();
            if wanted(&spans) || Instant::now() > deadline {
                return spans;
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[derive(Debug, Clone)]
struct Span {
    service: String,
    trace: String,
    id: String,
    parent: String,
    name: String,
    kind: i32,
    error: bool,
    events: Vec<String>,
    links: Vec<String>,
    attributes: HashMap<String, String>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn shown(value: &Any) -> String {
    match value {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::BoolValue(b) => b.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        Any::ArrayValue(a) => a
            .values
            .iter()
            .filter_map(|v| v.value.as_ref().map(shown))
            .collect::<Vec<_>>()
            .join(","),
        other => format!("{other:?}"),
    }
}

fn text_of(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(shown)
}

/// `penguin serve all` sending spans to `endpoint`, each export within 100 ms, with
/// a product of 100 units.
struct TracedShop {
    dir: tempfile::TempDir,
    running: Running,
    http: Http,
    producto: i64,
}

impl TracedShop {
    async fn start(endpoint: &str, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a folder");
        let mut command = penguin(dir.path());
        command
            .args(["serve", "all", "--base-port", "0", "--data-dir", "data"])
            .env("SERVICE_TOKEN", TOKEN)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        for (name, value) in extra {
            command.env(name, value);
        }
        let running = start(&mut command, 4);
        let http = Http::default();
        let urls = (
            running.urls["productos"].as_str(),
            running.urls["inventario"].as_str(),
        );
        let producto = stocked_product(&http, urls, "Hielo", json!(10), 100).await;
        Self {
            dir,
            running,
            http,
            producto,
        }
    }

    fn url(&self, service: &str) -> &str {
        &self.running.urls[service]
    }

    /// An order of one unit at serve all's pedidos.
    async fn order(&self, fail: bool, headers: &[(&str, &str)]) -> Value {
        order(&self.http, self.url("pedidos"), self.producto, fail, headers).await
    }

    /// A second pedidos, a process of its own with its database in `data`, using this
    /// shop's productos and inventario and the pagos at `payments`, sending spans to
    /// `receiver` within 100 ms.
    fn pedidos_beside(
        &self,
        data: &str,
        payments: &str,
        receiver: &Receiver,
        env: &[(&str, &str)],
    ) -> Running {
        let mut command = penguin(self.dir.path());
        command
            .args(["serve", "pedidos", "--port", "0", "--data-dir", data])
            .env("SERVICE_TOKEN", TOKEN)
            .env("PRODUCTS_URL", self.url("productos"))
            .env("INVENTORY_URL", self.url("inventario"))
            .env("PAYMENTS_URL", payments)
            .env("RETRY_BACKOFF_MS", "10")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
        for (name, value) in env {
            command.env(name, value);
        }
        start(&mut command, 1)
    }

    /// pedidos' count of spans with `outcome`, once it is above 0 (panics after 15 s).
    async fn spans_counted(&self, outcome: &str) -> f64 {
        let series = format!("penguin_trace_spans_total{{outcome=\"{outcome}\",service=\"pedidos\"}} ");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let metrics = self
                .http
                .call(Method::GET, format!("{}/metrics", self.url("pedidos")))
                .send()
                .await
                .expect("metrics")
                .text;
            let count = metrics
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            if count > 0.0 {
                return count;
            }
            assert!(Instant::now() < deadline, "no {outcome} spans counted: {metrics}");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn order(http: &Http, pedidos: &str, producto: i64, fail: bool, headers: &[(&str, &str)]) -> Value {
    let mut call = http
        .call(Method::POST, format!("{pedidos}/pedidos"))
        .token(TOKEN)
        .json(&order_body(&[(producto, 1)], fail));
    for (name, value) in headers {
        call = call.header(name, value);
    }
    call.send().await.expect("pedidos answers").body
}

/// Whether every span but one root has its parent in `spans`.
fn one_tree(spans: &[Span]) -> bool {
    let ids: Vec<&str> = spans.iter().map(|s| s.id.as_str()).collect();
    spans.iter().filter(|s| !ids.contains(&s.parent.as_str())).count() == 1
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.parent == parent.id).collect()
}

#[actix_web::test]
async fn an_order_is_one_trace_across_the_four_services() {
    let receiver = Receiver::start();
    let shop = TracedShop::start(&receiver.url, &[]).await;

    // A confirmed order, placed with a traceparent of the caller's.
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let confirmed = shop
        .order(
            false,
            &[("traceparent", &format!("00-{caller}-00f067aa0ba902b7-01"))],
        )
        .await;
    assert_eq!(confirmed["estado"], "confirmado", "{confirmed}");
    let spans = receiver.trace(caller, |s| s.len() >= 18).await;
    let services: std::collections::BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["inventario", "pagos", "pedidos", "productos"],
        "{spans:#?}"
    );
    let root = spans
        .iter()
        .find(|s| s.parent == "00f067aa0ba902b7")
        .expect("pedidos' server span is the caller's span's child");
    assert!(one_tree(&spans), "one tree under the caller's span: {spans:#?}");
    assert_eq!(
        (root.service.as_str(), root.name.as_str()),
        ("pedidos", "POST /pedidos")
    );
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(root.attr("http.route"), Some("/pedidos"));
    assert_eq!(root.attr("http.response.status_code"), Some("201"));
    assert_eq!(root.attr("http.request.header.x-request-id"), Some(caller));
    let steps: Vec<&str> = children(&spans, root).iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        [
            "price",
            "sqlite write",
            "reserve",
            "charge",
            "confirm",
            "sqlite write"
        ],
        "the saga's steps and pedidos' writes, in order"
    );
    for step in children(&spans, root)
        .into_iter()
        .filter(|s| s.name != "sqlite write")
    {
        let calls = children(&spans, step);
        assert_eq!(calls.len(), 1, "one attempt at its peer: {step:?} {calls:#?}");
        let call = calls[0];
        assert_eq!(call.kind, SpanKind::Client as i32);
        assert!(
            call.attr("url.full").is_some() && call.attr("peer").is_some(),
            "{call:?}"
        );
        assert_eq!(
            call.attr("http.response.status_code").map(|c| c.starts_with('2')),
            Some(true)
        );
        let served = children(&spans, call);
        assert_eq!(served.len(), 1, "the peer's server span under the call: {call:?}");
        assert_eq!(served[0].service, call.attr("peer").unwrap_or_default());
        assert_eq!(served[0].kind, SpanKind::Server as i32);
        if step.name != "price" {
            assert_eq!(
                step.attr("pedido.id"),
                confirmed["id"].as_i64().map(|i| i.to_string()).as_deref()
            );
            let write = children(&spans, served[0]);
            assert_eq!(write.len(), 1, "the peer's write: {:?}", served[0]);
            assert_eq!(write[0].attr("db.system.name"), Some("sqlite"));
            assert!(write[0].attr("db.operation.batch.size").is_some());
        }
    }
    assert!(spans.iter().all(|s| !s.error), "nothing failed: {spans:#?}");

    // A rejected charge: its own trace, the order's estado on its steps.
    let rejected = shop.order(true, &[]).await;
    assert_eq!(rejected["estado"], "rechazado", "{rejected}");
    let trace = rejected["request_id"].as_str().expect("a request id");
    let spans = receiver
        .trace(trace, |s| s.iter().any(|s| s.name == "settle"))
        .await;
    assert!(one_tree(&spans), "{spans:#?}");
    let charge = spans.iter().find(|s| s.name == "charge").expect("a charge step");
    assert_eq!(charge.attr("pedido.estado"), Some("rechazado"));
    assert!(
        spans
            .iter()
            .any(|s| s.name == "POST /reservas/liberar" && s.service == "inventario")
    );

    // Counted in /metrics (spans_counted waits for a count above 0).
    shop.spans_counted("exported").await;
}

/// A pedidos whose pagos does not answer: each attempt is a client span of its own,
/// the retry says so, the order's step fails, and the open circuit is an event.
#[actix_web::test]
async fn retries_failures_and_the_open_circuit_are_in_the_trace() {
    let receiver = Receiver::start();
    let shop = TracedShop::start(&receiver.url, &[]).await;
    let gone = format!("http://127.0.0.1:{}", free_port());
    let traces = format!("{}/v1/traces", receiver.url);
    let lonely = shop.pedidos_beside(
        "lonely",
        &gone,
        &receiver,
        &[
            ("RETRY_ATTEMPTS", "2"),
            ("BREAKER_FAILURES", "1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces),
            ("OTEL_SERVICE_NAME", "pedidos-sin-pagos"),
        ],
    );
    let pedidos = &lonely.urls["pedidos"];

    let failed = order(&shop.http, pedidos, shop.producto, false, &[]).await;
    assert_eq!(failed["estado"], "fallido", "{failed}");
    let trace = failed["request_id"].as_str().expect("a request id");
    let spans = receiver
        .trace(trace, |s| {
            s.iter().filter(|s| s.name == "POST pagos").count() >= 2
        })
        .await;
    assert!(one_tree(&spans), "{spans:#?}");
    let services: std::collections::BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        services.into_iter().collect::<Vec<_>>(),
        ["inventario", "pedidos-sin-pagos", "productos"],
        "named by OTEL_SERVICE_NAME; nothing reached pagos"
    );
    let attempts: Vec<&Span> = spans.iter().filter(|s| s.name == "POST pagos").collect();
    assert_eq!(attempts.len(), 2, "two attempts: {spans:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.error && a.service == "pedidos-sin-pagos"),
        "{attempts:#?}"
    );
    assert_eq!(
        attempts[0].parent, attempts[1].parent,
        "both under the charge step"
    );
    assert_eq!(attempts[1].attr("http.request.resend_count"), Some("1"));
    let charge = spans
        .iter()
        .find(|s| s.id == attempts[0].parent)
        .expect("the step");
    assert_eq!(charge.name, "charge");
    assert!(charge.error, "the step that failed the order: {charge:?}");
    assert_eq!(charge.attr("pedido.estado"), Some("fallido"));

    // The circuit is open now: the next order's call never leaves, and says why.
    let refused = order(&shop.http, pedidos, shop.producto, false, &[]).await;
    assert_eq!(refused["estado"], "fallido", "{refused}");
    let trace = refused["request_id"].as_str().expect("a request id");
    let spans = receiver
        .trace(trace, |s| {
            s.iter().any(|s| s.events.iter().any(|e| e == "breaker.rejected"))
        })
        .await;
    let rejected = spans
        .iter()
        .find(|s| s.events.iter().any(|e| e == "breaker.rejected"))
        .unwrap_or_else(|| panic!("a breaker rejection: {spans:#?}"));
    assert!(
        rejected.error && rejected.attr("peer") == Some("pagos"),
        "{rejected:?}"
    );
    // No attempt at pagos in this order: its client spans there are rejections only.
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32 && s.attr("peer") == Some("pagos"))
        .filter(|s| !s.events.iter().any(|e| e == "breaker.rejected"))
        .collect();
    assert!(attempts.is_empty(), "nothing reached pagos: {attempts:#?}");
}

/// A collector that refuses, hangs or is gone costs counts and one warning, not
/// answers, and a hung one holds no stop for more than a second.
#[actix_web::test]
async fn a_refusing_hung_or_missing_collector_is_counted_and_said_once() {
    let receiver = Receiver::in_mode(REFUSE);
    let shop = TracedShop::start(&receiver.url, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "500")]).await;
    for _ in 0..5 {
        let placed = shop.order(false, &[]).await;
        assert_eq!(placed["estado"], "confirmado", "{placed}");
    }
    shop.spans_counted("failed").await;
    assert!(
        receiver.received.load(Ordering::SeqCst) > 0,
        "the exports reached the receiver"
    );
    // Five more orders, each answered as before; the warning is not said again.
    for _ in 0..5 {
        let placed = shop.order(false, &[]).await;
        assert_eq!(placed["estado"], "confirmado", "{placed}");
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let logs = std::fs::read_to_string(shop.dir.path().join("data/logs.log")).unwrap_or_default();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("pedidos") && l.contains("spans are lost"))
        .count();
    assert_eq!(warnings, 1, "one warning a minute: {logs}");
    drop(shop);

    // A collector that reads each export and never answers: orders are answered as
    // fast as ever, and SIGTERM gives the exporters a second, not their timeout.
    let hung = Receiver::in_mode(HANG);
    let mut shop = TracedShop::start(&hung.url, &[]).await;
    let started = Instant::now();
    for _ in 0..5 {
        let placed = shop.order(false, &[]).await;
        assert_eq!(placed["estado"], "confirmado", "{placed}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "orders wait for no collector"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while hung.received.load(Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < deadline,
            "an export was sent to the hung collector"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let stopping = Instant::now();
    let status = shop.running.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "a hung collector held the stop for {:?}",
        stopping.elapsed()
    );

    // No collector at all where one is named: orders go on, the loss is counted.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let shop = TracedShop::start(&gone, &[]).await;
    for _ in 0..5 {
        let placed = shop.order(false, &[]).await;
        assert_eq!(placed["estado"], "confirmado", "{placed}");
    }
    shop.spans_counted("failed").await;
}

/// Recovery's work on an order is a trace of its own, linked to the one that placed it.
#[actix_web::test]
async fn recovery_links_to_the_trace_that_placed_the_order() {
    let receiver = Receiver::start();
    let shop = TracedShop::start(&receiver.url, &[]).await;
    // pagos charges, and its answer never reaches this pedidos: the order fails owing
    // the charge back, which recovery settles.
    let pagos = FaultProxy::start(shop.url("pagos"));
    pagos.fault(Method::POST, "/pagar", Fault::LoseAnswer);
    let lost = shop.pedidos_beside(
        "lost",
        &pagos.url,
        &receiver,
        &[("PEER_TIMEOUT_MS", "400"), ("RECOVERY_INTERVAL", "1")],
    );

    let failed = order(&shop.http, &lost.urls["pedidos"], shop.producto, false, &[]).await;
    assert_eq!(failed["estado"], "fallido", "{failed}");
    let placing = failed["request_id"].as_str().expect("a request id").to_string();
    let id = failed["id"].as_i64().expect("an id").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let spans = receiver.spans();
        if let Some(span) = spans
            .iter()
            .find(|s| s.name == "recover pedido" && s.attr("pedido.id") == Some(&id))
        {
            break span.clone();
        }
        assert!(Instant::now() < deadline, "no recovery span: {spans:#?}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(recovered.trace, placing, "recovery's own trace");
    assert_eq!(recovered.links, [placing], "linked to the placing trace");
    let spans = receiver
        .trace(&recovered.trace, |s| {
            s.iter()
                .any(|s| s.name == "POST /anular" || s.name == "POST /reembolsar")
        })
        .await;
    assert!(one_tree(&spans), "{spans:#?}");
    assert!(
        spans
            .iter()
            .any(|s| s.service == "pagos" && s.kind == SpanKind::Server as i32),
        "pagos' answer to recovery is in recovery's trace: {spans:#?}"
    );
}
