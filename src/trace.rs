//! Request ids, W3C trace context and spans, so one order can be followed through the
//! four services' logs and, when a collector is named (`telemetry`), opened as one trace.
//!
//! Every request gets an id ([`Trace::of_request`]): its `X-Request-Id` when that is
//! sane (1 to [`MAX_ID_LEN`] visible ASCII characters), else the trace id of a valid
//! `traceparent`, else a new random one. The id is answered in `X-Request-Id`, written
//! in every log line made while the request is answered ([`current_id`], read by
//! `logging`), and sent on every peer call made for it, with a `traceparent` that keeps
//! the trace id and names the span of that call ([`Trace::peer_headers`]). Work no
//! request asked for (recovery) runs under a [`Trace::new`] of its own.
//!
//! A [`Trace`] is also the span its work runs in: [`Trace::span`] starts a child of it,
//! and [`Trace::under`] is the trace of the work done inside that child. Without a
//! tracer (no collector named) a span is only an id, so `traceparent` still names a new
//! span per call and nothing is recorded.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::http::header::{HeaderMap, HeaderName};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The longest `X-Request-Id` taken as given.
pub const MAX_ID_LEN: usize = 128;

/// The trace a piece of work belongs to, the span it runs in, and the id its log
/// lines carry.
#[derive(Debug, Clone)]
pub struct Trace {
    id: Arc<str>,
    trace_id: u128,
    /// The span this work runs in (0: none yet, the work is a trace's root).
    parent: u64,
    /// Whether `parent` is another process' span (a request's `traceparent`).
    remote: bool,
    sampled: bool,
    tracer: Option<Tracer>,
}

tokio::task_local! {
    static CURRENT: Trace;
}

impl Trace {
    /// A new trace, with its trace id (32 hex digits) as its id; its spans go to
    /// `tracer`, if any.
    pub fn new(tracer: Option<&Tracer>) -> Self {
        let trace_id = new_trace_id();
        Self {
            id: format!("{trace_id:032x}").into(),
            trace_id,
            parent: 0,
            remote: false,
            sampled: false,
            tracer: tracer.cloned(),
        }
    }

    /// The trace of an incoming request, from its `X-Request-Id` and `traceparent`.
    pub fn of_request(headers: &HeaderMap, tracer: Option<&Tracer>) -> Self {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let given = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| sane_id(id));
        let remote = parent.is_some();
        let (trace_id, span, sampled) = parent.unwrap_or_else(|| (new_trace_id(), 0, false));
        let id = match given {
            Some(id) => id.into(),
            None => format!("{trace_id:032x}").into(),
        };
        Self {
            id,
            trace_id,
            parent: span,
            remote,
            sampled,
            tracer: tracer.cloned(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether this trace is sampled: its spans are kept, here or upstream.
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The `traceparent` that names the span this work runs in (a new span id when
    /// it runs in none: a trace's root work, before its first span).
    pub fn traceparent(&self) -> String {
        let flags = u8::from(self.sampled);
        let span = if self.parent == 0 {
            new_span_id()
        } else {
            self.parent
        };
        format!("00-{:032x}-{span:016x}-{flags:02x}", self.trace_id)
    }

    /// The headers of a call to a peer made in this trace's span: the same id, and a
    /// `traceparent` naming that span (the call's own, from [`Trace::under`]).
    pub fn peer_headers(&self) -> [(HeaderName, String); 2] {
        [
            (REQUEST_ID, self.id.to_string()),
            (TRACEPARENT, self.traceparent()),
        ]
    }

    /// Starts a span, a child of the one this work runs in. It ends when dropped.
    pub fn span(&self, name: impl Into<Cow<'static, str>>, kind: SpanKind) -> Span {
        self.start(|| name.into(), kind, None)
    }

    /// [`Trace::span`] with a name made only if the span is recorded.
    pub fn span_named(&self, name: impl FnOnce() -> String, kind: SpanKind) -> Span {
        self.start(|| name().into(), kind, None)
    }

    /// [`Trace::span`], linked to another trace's span given as a `traceparent` (the
    /// request that placed an order, for recovery's work on it).
    pub fn span_linked(
        &self,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        link: Option<&str>,
    ) -> Span {
        self.start(|| name.into(), kind, link)
    }

    /// A new span, named by `name` only if it is recorded.
    fn start(&self, name: impl FnOnce() -> Cow<'static, str>, kind: SpanKind, link: Option<&str>) -> Span {
        // Without a tracer a span has no id: the work inside it runs in none, and each
        // of its peer calls names a new span of its own (see `traceparent`).
        let Some(tracer) = &self.tracer else {
            return Span {
                id: 0,
                sampled: self.sampled,
                record: None,
            };
        };
        let id = new_span_id();
        let parent = (self.parent != 0).then_some(self.sampled);
        if !tracer.0.sampler.keeps(self.trace_id, parent) {
            return Span {
                id,
                sampled: false,
                record: None,
            };
        }
        let record = Record {
            trace_id: self.trace_id,
            span_id: id,
            parent: self.parent,
            remote_parent: self.remote,
            name: name(),
            kind,
            start: unix_nanos(),
            end: 0,
            attributes: Vec::with_capacity(8),
            events: Vec::new(),
            link: link.and_then(|l| parse_traceparent(l.as_bytes())),
            error: None,
        };
        Span {
            id,
            sampled: true,
            record: Some(Box::new(Open {
                record,
                tracer: tracer.clone(),
            })),
        }
    }

    /// The trace of the work done inside `span`: its spans are `span`'s children.
    pub fn under(self, span: &Span) -> Self {
        Self {
            parent: span.id,
            remote: false,
            sampled: span.sampled,
            ..self
        }
    }

    /// Runs `work` under this trace: its log lines, spans and peer calls carry it.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// One span of work: its id, and its record when it is kept. It ends when dropped,
/// and its record goes to the tracer's sink.
#[derive(Debug)]
pub struct Span {
    id: u64,
    sampled: bool,
    /// Boxed: a span lives in the futures of the work it covers, which are moved as
    /// they are polled.
    record: Option<Box<Open>>,
}

/// A kept span not yet ended, and where it goes when it ends.
#[derive(Debug)]
struct Open {
    record: Record,
    tracer: Tracer,
}

impl Span {
    /// Whether the span is recorded: what it is given would be exported.
    pub fn recording(&self) -> bool {
        self.record.is_some()
    }

    fn record(&mut self) -> Option<&mut Record> {
        self.record.as_mut().map(|open| &mut open.record)
    }

    /// Names the span anew (what it was is known only once it is done: a route).
    pub fn rename(&mut self, name: impl Into<Cow<'static, str>>) {
        if let Some(record) = self.record() {
            record.name = name.into();
        }
    }

    /// Sets an attribute (nothing when the span is not recorded).
    pub fn set(&mut self, attribute: KeyValue) {
        if let Some(record) = self.record() {
            record.attributes.push(attribute);
        }
    }

    /// Sets the attributes `attributes` makes, making them only if the span is recorded.
    pub fn set_with<A: IntoIterator<Item = KeyValue>>(&mut self, attributes: impl FnOnce() -> A) {
        if let Some(record) = self.record() {
            record.attributes.extend(attributes());
        }
    }

    /// Records that something happened during the span.
    pub fn event<A: IntoIterator<Item = KeyValue>>(
        &mut self,
        name: &'static str,
        attributes: impl FnOnce() -> A,
    ) {
        if let Some(record) = self.record() {
            record.events.push(Event {
                time: unix_nanos(),
                name,
                attributes: attributes().into_iter().collect(),
            });
        }
    }

    /// Marks the span failed, and why.
    pub fn fail(&mut self, why: impl FnOnce() -> String) {
        if let Some(record) = self.record() {
            record.error = Some(why());
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(open) = self.record.take() {
            let Open { mut record, tracer } = *open;
            record.end = unix_nanos();
            tracer.0.sink.end(record);
        }
    }
}

/// What a span was, once it ended: what an exporter sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub trace_id: u128,
    pub span_id: u64,
    /// The span it is a child of (0: none, it is its trace's root).
    pub parent: u64,
    /// Whether `parent` is another process' span.
    pub remote_parent: bool,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    /// Nanoseconds since the Unix epoch.
    pub start: u64,
    pub end: u64,
    pub attributes: Vec<KeyValue>,
    pub events: Vec<Event>,
    /// Another trace's span this one is linked to: its trace id, span id and whether
    /// it is sampled.
    pub link: Option<(u128, u64, bool)>,
    /// Why the span failed, if it did.
    pub error: Option<String>,
}

/// Something that happened during a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: u64,
    pub name: &'static str,
    pub attributes: Vec<KeyValue>,
}

/// What a span is to its trace, as OpenTelemetry (and OTLP's numbers) name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// One attribute of a span: a name from OpenTelemetry's conventions (or penguin's
/// own, `pedido.*` and `peer`) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: &'static str,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: &'static str, value: impl Into<Value>) -> Self {
        Self {
            key,
            value: value.into(),
        }
    }
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Cow<'static, str>),
    /// Text shared by many spans (a database's name), copied by reference.
    Shared(Arc<str>),
    Int(i64),
    Bool(bool),
    List(Vec<Value>),
}

impl From<&'static str> for Value {
    fn from(text: &'static str) -> Self {
        Self::Text(Cow::Borrowed(text))
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(Cow::Owned(text))
    }
}

impl From<Cow<'static, str>> for Value {
    fn from(text: Cow<'static, str>) -> Self {
        Self::Text(text)
    }
}

impl From<Arc<str>> for Value {
    fn from(text: Arc<str>) -> Self {
        Self::Shared(text)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// Where ended spans go (an exporter's queue).
pub trait Sink: Send + Sync + std::fmt::Debug {
    /// Takes a span that ended. Called on the worker that ended it: must not wait.
    fn end(&self, span: Record);
}

/// Which traces' spans are kept: OpenTelemetry's samplers (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    /// Keeps this share of traces, chosen by their trace id, so every service that
    /// sees a trace makes the same choice.
    TraceIdRatio(f64),
    /// Does as the parent span did (kept or not), and as the inner sampler says for a
    /// trace's root.
    ParentBased(Box<Sampler>),
}

impl Sampler {
    /// Whether a span of trace `trace_id` is kept; `parent` is whether its parent was
    /// sampled, or `None` for a root span.
    pub fn keeps(&self, trace_id: u128, parent: Option<bool>) -> bool {
        match (self, parent) {
            (Self::AlwaysOn, _) => true,
            (Self::AlwaysOff, _) => false,
            (Self::TraceIdRatio(ratio), _) => {
                // OpenTelemetry's rule: the trace id's low 63 bits under the ratio's share.
                // 2^63 (a ratio of 1) is above every 63-bit value; the cast saturates.
                let bound = (ratio * (1u64 << 63) as f64) as u64;
                ((trace_id as u64) >> 1) < bound
            }
            (Self::ParentBased(_), Some(sampled)) => sampled,
            (Self::ParentBased(root), None) => root.keeps(trace_id, None),
        }
    }
}

/// A service's tracer: which spans it keeps, and where they go once ended. Shared by
/// every trace of the service's work.
#[derive(Debug, Clone)]
pub struct Tracer(Arc<TracerParts>);

#[derive(Debug)]
struct TracerParts {
    sampler: Sampler,
    sink: Arc<dyn Sink>,
}

impl Tracer {
    pub fn new(sampler: Sampler, sink: Arc<dyn Sink>) -> Self {
        Self(Arc::new(TracerParts { sampler, sink }))
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Default for Trace {
    fn default() -> Self {
        Self::new(None)
    }
}

/// An HTTP method's name, for a span's name and attribute: the common ones without
/// an allocation.
pub fn method_name(method: &actix_web::http::Method) -> Cow<'static, str> {
    use actix_web::http::Method;
    Cow::Borrowed(match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => return Cow::Owned(method.as_str().to_owned()),
    })
}

/// The trace of the work running now, if it runs under one.
pub fn current() -> Option<Trace> {
    CURRENT.try_with(Trace::clone).ok()
}

/// The trace of the work running now when its spans go to a collector: without one,
/// a span that no peer call names is never seen, and is not made.
pub fn recorded() -> Option<Trace> {
    CURRENT
        .try_with(|t| t.tracer.is_some().then(|| t.clone()))
        .ok()
        .flatten()
}

/// The id of the work running now, if it runs under a trace.
pub fn current_id() -> Option<Arc<str>> {
    CURRENT.try_with(|t| t.id.clone()).ok()
}

/// Runs `work` in a new span, a child of the current one (when the work runs under a
/// trace whose spans are recorded); `describe` gives the span what `work`'s output says.
pub async fn in_span<F: Future>(
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    start: impl FnOnce(&mut Span),
    describe: impl FnOnce(&mut Span, &F::Output),
    work: F,
) -> F::Output {
    let Some(trace) = recorded() else {
        return work.await;
    };
    let mut span = trace.span(name, kind);
    start(&mut span);
    // Boxed: the work is moved into its scope, and a saga step's future is large.
    let out = trace.under(&span).scope(Box::pin(work)).await;
    describe(&mut span, &out);
    out
}

fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

/// Whether a given request id can be taken as it is: bounded, visible ASCII only, so
/// it cannot break a log line or a header.
fn sane_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A `traceparent` of version `00` (or a later one, read as `00` as the W3C spec asks):
/// its trace id, span id and whether it is sampled; `None` if it is not valid.
fn parse_traceparent(value: &[u8]) -> Option<(u128, u64, bool)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let lower_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(span, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span_id = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, span_id, flags & 1 == 1))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                (*name).clone(),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        map
    }

    #[test]
    fn a_sane_request_id_is_kept_and_the_parent_trace_goes_on() {
        // With a tracer, so that each span named in `traceparent` is a span made.
        let kept = Arc::new(Kept::default());
        let tracer = Tracer::new(Sampler::AlwaysOn, kept.clone());
        let trace = Trace::of_request(
            &headers(&[(&REQUEST_ID, "order-42"), (&TRACEPARENT, PARENT)]),
            Some(&tracer),
        );
        assert_eq!(trace.id(), "order-42");
        let call = trace.span("GET inventario", SpanKind::Client);
        let [(_, id), (_, parent)] = trace.clone().under(&call).peer_headers();
        assert_eq!(id, "order-42");
        assert!(
            parent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{parent}"
        );
        assert!(parent.ends_with("-01"), "sampled stays sampled: {parent}");
        assert_ne!(&parent[36..52], "00f067aa0ba902b7", "a new span per peer call");
        assert_eq!(
            &parent[36..52],
            format!("{:016x}", call.id),
            "the call's own span"
        );
        let again = trace.span("GET inventario", SpanKind::Client);
        assert_ne!(
            trace.under(&again).peer_headers()[1].1,
            parent,
            "one span per call"
        );
        assert_eq!(
            parse_traceparent(parent.as_bytes()).map(|(t, _, _)| t),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
    }

    #[test]
    fn without_a_sane_request_id_the_trace_id_is_the_id() {
        for bad in ["", "has space", "tab\there", &"x".repeat(MAX_ID_LEN + 1), "ñ"] {
            let mut map = headers(&[(&TRACEPARENT, PARENT)]);
            if let Ok(value) = HeaderValue::from_bytes(bad.as_bytes()) {
                map.insert(REQUEST_ID, value);
            }
            assert_eq!(
                Trace::of_request(&map, None).id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_invalid_traceparent_starts_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let trace = Trace::of_request(&headers(&[(&TRACEPARENT, bad)]), None);
            assert_eq!(trace.id().len(), 32, "{bad}");
            assert_ne!(trace.id(), "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        assert_eq!(
            Trace::of_request(&headers(&[(&TRACEPARENT, later)]), None).id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    /// A sink that keeps what it is given, to look at.
    #[derive(Debug, Default)]
    struct Kept(std::sync::Mutex<Vec<Record>>);

    impl Sink for Kept {
        fn end(&self, span: Record) {
            self.0.lock().expect("not poisoned").push(span);
        }
    }

    #[test]
    fn samplers_keep_what_opentelemetry_says() {
        let parent_based = Sampler::ParentBased(Box::new(Sampler::AlwaysOn));
        assert!(parent_based.keeps(1, None), "a root is kept");
        assert!(parent_based.keeps(1, Some(true)));
        assert!(
            !parent_based.keeps(1, Some(false)),
            "a parent not kept is followed"
        );
        assert!(
            Sampler::AlwaysOn.keeps(1, Some(false)),
            "always_on ignores the parent"
        );
        assert!(!Sampler::AlwaysOff.keeps(1, Some(true)));
        // The ratio looks at the trace id's low 63 bits: the same choice in every service.
        let quarter = Sampler::TraceIdRatio(0.25);
        let kept = (0..4000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834))
            .filter(|id| quarter.keeps(*id, None))
            .count();
        assert!((800..1200).contains(&kept), "{kept} of 4000");
        let id = 0xffff_0000_0000_0000_0000_0000_0000_0002u128;
        assert!(quarter.keeps(id, None), "a low id is under the ratio");
        assert!(
            !quarter.keeps(id | u128::from(u64::MAX), None),
            "a high one is not"
        );
        assert!(Sampler::TraceIdRatio(1.0).keeps(u128::MAX, None));
        assert!(!Sampler::TraceIdRatio(0.0).keeps(0, None));
    }

    #[test]
    fn a_kept_span_is_recorded_as_it_was_made_and_a_dropped_one_is_not() {
        let kept = Arc::new(Kept::default());
        let tracer = Tracer::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), kept.clone());
        let trace = Trace::of_request(&headers(&[(&TRACEPARENT, PARENT)]), Some(&tracer));
        {
            let mut server = trace.span("POST", SpanKind::Server);
            server.set(KeyValue::new("http.response.status_code", 201i64));
            server.rename("POST /pedidos");
            let inner = trace.clone().under(&server);
            let mut call = inner.span_linked("recover pedido", SpanKind::Internal, Some(PARENT));
            call.event("breaker.rejected", || [KeyValue::new("retry_in_ms", 5i64)]);
            call.fail(|| "the circuit is open".into());
            assert!(inner.under(&call).peer_headers()[1].1.ends_with("-01"));
        }
        let spans = std::mem::take(&mut *kept.0.lock().expect("not poisoned"));
        let [call, server] = spans.as_slice() else {
            panic!("two spans, the inner one ended first: {spans:?}");
        };
        assert_eq!(server.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!((server.parent, server.remote_parent), (0x00f067aa0ba902b7, true));
        assert_eq!(
            (server.name.as_ref(), server.kind),
            ("POST /pedidos", SpanKind::Server)
        );
        assert_eq!(
            server.attributes,
            [KeyValue::new("http.response.status_code", 201i64)]
        );
        assert!(server.start <= server.end && server.end > 0);
        assert_eq!((call.parent, call.remote_parent), (server.span_id, false));
        assert_eq!(
            call.link,
            Some((0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7, true))
        );
        assert_eq!(call.events[0].name, "breaker.rejected");
        assert_eq!(call.error.as_deref(), Some("the circuit is open"));

        // A caller that does not keep its trace: nothing is recorded, and the peers
        // are told so.
        let unsampled = PARENT.replace("-01", "-00");
        let trace = Trace::of_request(&headers(&[(&TRACEPARENT, &unsampled)]), Some(&tracer));
        let span = trace.span("POST", SpanKind::Server);
        assert!(!span.recording());
        assert!(trace.under(&span).peer_headers()[1].1.ends_with("-00"));
        assert!(kept.0.lock().expect("not poisoned").is_empty());
    }

    #[test]
    fn new_traces_differ() {
        assert_ne!(Trace::new(None).id(), Trace::new(None).id());
    }
}
