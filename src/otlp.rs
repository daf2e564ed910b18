//! OTLP/HTTP, the little of it penguin sends: a batch of spans encoded as an
//! `ExportTraceServiceRequest` (protobuf), posted to a collector over plain HTTP/1.1.
//!
//! Written here rather than taken from `opentelemetry-otlp`: with the SDK, each span
//! was copied into the generated messages before it was encoded, and its HTTP stack
//! (reqwest, hyper, tokio) ran beside the services'. That cost one-item orders a
//! quarter of their speed; this costs them a few percent (the bench's tracing rows).
//! The tests decode what it sends with the OTLP definitions' generated decoder.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::trace::{KeyValue, Record, Value};

/// The OTLP field numbers used, from `opentelemetry/proto/{collector/trace,trace,
/// common,resource}/v1/*.proto`.
mod field {
    pub const RESOURCE_SPANS: u32 = 1;
    pub const RESOURCE: u32 = 1;
    pub const SCOPE_SPANS: u32 = 2;
    pub const RESOURCE_ATTRIBUTES: u32 = 1;
    pub const SCOPE: u32 = 1;
    pub const SPANS: u32 = 2;
    pub const SCOPE_NAME: u32 = 1;
    pub const SCOPE_VERSION: u32 = 2;

    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START: u32 = 7;
    pub const END: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const EVENTS: u32 = 11;
    pub const LINKS: u32 = 13;
    pub const STATUS: u32 = 15;
    pub const FLAGS: u32 = 16;

    pub const EVENT_TIME: u32 = 1;
    pub const EVENT_NAME: u32 = 2;
    pub const EVENT_ATTRIBUTES: u32 = 3;
    pub const LINK_TRACE_ID: u32 = 1;
    pub const LINK_SPAN_ID: u32 = 2;
    pub const LINK_FLAGS: u32 = 6;
    pub const STATUS_MESSAGE: u32 = 2;
    pub const STATUS_CODE: u32 = 3;

    pub const KEY: u32 = 1;
    pub const VALUE: u32 = 2;
    pub const STRING: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const ARRAY: u32 = 5;
    pub const ARRAY_VALUES: u32 = 1;
}

/// `Status.code` ERROR.
const STATUS_ERROR: u64 = 2;
/// `SpanFlags`: the trace flags' sampled bit, and that the flags say whether the
/// parent is remote, and that it is.
const SAMPLED: u32 = 0x01;
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

/// The protobuf wire types used.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LENGTH: u32 = 2;
const FIXED32: u32 = 5;

/// Appends one span to `spans`, as an entry of a `ScopeSpans`' spans: what
/// [`envelope`] wraps.
pub fn encode(spans: &mut Vec<u8>, span: &Record) {
    message(spans, field::SPANS, |buf| encode_span(buf, span));
}

/// What comes before spans encoded by [`encode`], `spans_len` bytes of them, to make
/// one service's `ExportTraceServiceRequest`: its resource and one scope (`penguin`).
pub fn envelope(resource: &[KeyValue], spans_len: usize) -> Vec<u8> {
    let mut scope = Vec::with_capacity(32);
    message(&mut scope, field::SCOPE, |buf| {
        text(buf, field::SCOPE_NAME, "penguin");
        text(buf, field::SCOPE_VERSION, env!("CARGO_PKG_VERSION"));
    });
    let mut resource_spans = Vec::with_capacity(256);
    message(&mut resource_spans, field::RESOURCE, |buf| {
        for attribute in resource {
            message(buf, field::RESOURCE_ATTRIBUTES, |buf| key_value(buf, attribute));
        }
    });
    tag(&mut resource_spans, field::SCOPE_SPANS, LENGTH);
    varint(&mut resource_spans, (scope.len() + spans_len) as u64);
    resource_spans.extend_from_slice(&scope);
    let mut head = Vec::with_capacity(resource_spans.len() + 8);
    tag(&mut head, field::RESOURCE_SPANS, LENGTH);
    varint(&mut head, (resource_spans.len() + spans_len) as u64);
    head.extend_from_slice(&resource_spans);
    head
}

fn encode_span(buf: &mut Vec<u8>, span: &Record) {
    bytes(buf, field::TRACE_ID, &span.trace_id.to_be_bytes());
    bytes(buf, field::SPAN_ID, &span.span_id.to_be_bytes());
    if span.parent != 0 {
        bytes(buf, field::PARENT_SPAN_ID, &span.parent.to_be_bytes());
    }
    text(buf, field::NAME, &span.name);
    tag(buf, field::KIND, VARINT);
    varint(buf, span.kind as u64);
    tag(buf, field::START, FIXED64);
    buf.extend_from_slice(&span.start.to_le_bytes());
    tag(buf, field::END, FIXED64);
    buf.extend_from_slice(&span.end.to_le_bytes());
    for attribute in &span.attributes {
        message(buf, field::ATTRIBUTES, |buf| key_value(buf, attribute));
    }
    for event in &span.events {
        message(buf, field::EVENTS, |buf| {
            tag(buf, field::EVENT_TIME, FIXED64);
            buf.extend_from_slice(&event.time.to_le_bytes());
            text(buf, field::EVENT_NAME, event.name);
            for attribute in &event.attributes {
                message(buf, field::EVENT_ATTRIBUTES, |buf| key_value(buf, attribute));
            }
        });
    }
    if let Some((trace_id, span_id, sampled)) = span.link {
        message(buf, field::LINKS, |buf| {
            bytes(buf, field::LINK_TRACE_ID, &trace_id.to_be_bytes());
            bytes(buf, field::LINK_SPAN_ID, &span_id.to_be_bytes());
            tag(buf, field::LINK_FLAGS, FIXED32);
            let flags = HAS_IS_REMOTE | IS_REMOTE | if sampled { SAMPLED } else { 0 };
            buf.extend_from_slice(&flags.to_le_bytes());
        });
    }
    if let Some(why) = &span.error {
        message(buf, field::STATUS, |buf| {
            text(buf, field::STATUS_MESSAGE, why);
            tag(buf, field::STATUS_CODE, VARINT);
            varint(buf, STATUS_ERROR);
        });
    }
    tag(buf, field::FLAGS, FIXED32);
    let remote = if span.remote_parent { IS_REMOTE } else { 0 };
    buf.extend_from_slice(&(SAMPLED | HAS_IS_REMOTE | remote).to_le_bytes());
}

fn key_value(buf: &mut Vec<u8>, attribute: &KeyValue) {
    text(buf, field::KEY, attribute.key);
    message(buf, field::VALUE, |buf| any_value(buf, &attribute.value));
}

/// An `AnyValue`: one of its fields, written even when it is the default (a oneof).
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        // Written even when empty, unlike `text`: a oneof's field says which it is.
        Value::Text(s) => bytes(buf, field::STRING, s.as_bytes()),
        Value::Shared(s) => bytes(buf, field::STRING, s.as_bytes()),
        Value::Int(n) => {
            tag(buf, field::INT, VARINT);
            varint(buf, *n as u64);
        }
        Value::Bool(b) => {
            tag(buf, field::BOOL, VARINT);
            varint(buf, u64::from(*b));
        }
        Value::List(values) => message(buf, field::ARRAY, |buf| {
            for value in values {
                message(buf, field::ARRAY_VALUES, |buf| any_value(buf, value));
            }
        }),
    }
}

fn tag(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from(field << 3 | wire));
}

fn varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn bytes(buf: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(buf, field, LENGTH);
    varint(buf, data.len() as u64);
    buf.extend_from_slice(data);
}

/// A string field; left out when empty, as proto3 does.
fn text(buf: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        bytes(buf, field, s.as_bytes());
    }
}

/// A nested message: written in place, then its length put before it.
fn message(buf: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    tag(buf, field, LENGTH);
    let at = buf.len();
    buf.push(0);
    write(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        varint(&mut prefix, len as u64);
        buf.splice(at..=at, prefix);
    }
}

/// A collector's OTLP/HTTP traces endpoint, and the connection kept to it.
#[derive(Debug)]
pub struct Collector {
    /// `host:port`, as connected to and named in `Host`.
    authority: String,
    path: String,
    /// Extra headers (`OTEL_EXPORTER_OTLP_HEADERS`), written out once.
    headers: String,
    connection: Option<TcpStream>,
}

/// What a post that did not succeed ran into.
pub type PostError = String;

impl Collector {
    /// The collector at `url` (`http://host[:port][/path]`).
    pub fn new(url: &str, headers: &[(String, String)]) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: expected an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let headers = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        Ok(Self {
            authority,
            path: path.to_string(),
            headers,
            connection: None,
        })
    }

    /// Posts one encoded batch (`body`, in parts), waiting at most `timeout` for each step (connecting,
    /// sending, the answer); succeeds when the collector answers 2xx. A kept
    /// connection the collector closed meanwhile is opened anew once.
    pub fn post(&mut self, body: &[&[u8]], timeout: Duration) -> Result<(), PostError> {
        let deadline = Instant::now() + timeout;
        if let Some(stream) = self.connection.take() {
            match self.exchange(&stream, body, deadline) {
                Ok(keep) => {
                    if keep {
                        self.connection = Some(stream);
                    }
                    return Ok(());
                }
                Err(Exchange::Answered(e)) => return Err(e),
                Err(Exchange::Unanswered(_)) => {}
            }
        }
        let stream = self.connect(deadline)?;
        match self.exchange(&stream, body, deadline) {
            Ok(keep) => {
                if keep {
                    self.connection = Some(stream);
                }
                Ok(())
            }
            Err(Exchange::Answered(e) | Exchange::Unanswered(e)) => Err(e),
        }
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, PostError> {
        let addresses = self
            .authority
            .to_socket_addrs()
            .map_err(|e| format!("{}: {e}", self.authority))?;
        let mut last = format!("{}: no address", self.authority);
        for address in addresses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{}: timed out connecting", self.authority));
            }
            match TcpStream::connect_timeout(&address, left) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = format!("{address}: {e}"),
            }
        }
        Err(last)
    }

    /// Sends the request and reads the answer: whether the connection may be kept.
    fn exchange(&self, mut stream: &TcpStream, body: &[&[u8]], deadline: Instant) -> Result<bool, Exchange> {
        let timed = |stream: &TcpStream| {
            let left = deadline.saturating_duration_since(Instant::now());
            let left = left.max(Duration::from_millis(1));
            stream
                .set_write_timeout(Some(left))
                .and_then(|()| stream.set_read_timeout(Some(left)))
        };
        let unanswered = |e: std::io::Error| Exchange::Unanswered(format!("{}: {e}", self.authority));
        timed(stream).map_err(unanswered)?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n{}\r\n",
            self.path,
            self.authority,
            body.iter().map(|part| part.len()).sum::<usize>(),
            self.headers
        );
        stream.write_all(head.as_bytes()).map_err(unanswered)?;
        for part in body {
            stream.write_all(part).map_err(unanswered)?;
        }
        let mut answer = Answer::default();
        let mut chunk = [0u8; 4096];
        loop {
            timed(stream).map_err(unanswered)?;
            let n = match stream.read(&mut chunk) {
                Ok(0) if answer.received.is_empty() => {
                    return Err(Exchange::Unanswered(format!(
                        "{}: closed without an answer",
                        self.authority
                    )));
                }
                Ok(0) => return answer.closed().map_err(Exchange::Answered),
                Ok(n) => n,
                Err(e) if answer.received.is_empty() => return Err(unanswered(e)),
                Err(e) => return Err(Exchange::Answered(format!("{}: {e}", self.authority))),
            };
            answer.received.extend_from_slice(&chunk[..n]);
            if let Some(done) = answer.complete() {
                return done.map_err(Exchange::Answered);
            }
        }
    }
}

enum Exchange {
    /// Nothing came back: on a kept connection, the collector may have closed it.
    Unanswered(PostError),
    Answered(PostError),
}

/// An HTTP/1.1 answer as it arrives.
#[derive(Default)]
struct Answer {
    received: Vec<u8>,
}

/// The longest answer head read.
const MAX_HEAD: usize = 16 * 1024;

impl Answer {
    /// Once the whole answer is in: Ok(whether the connection may be kept) for a
    /// 2xx, else why not.
    fn complete(&self) -> Option<Result<bool, PostError>> {
        let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (self.received.len() > MAX_HEAD).then(|| Err("an answer head too long".into()));
        };
        let head = String::from_utf8_lossy(&self.received[..end]);
        let body = &self.received[end + 4..];
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok());
        let Some(status) = status else {
            return Some(Err(format!("not an HTTP answer: {:?}", head.lines().next())));
        };
        let mut length = None;
        let mut chunked = false;
        // HTTP/1.0 closes unless it says it keeps the connection.
        let mut close = head.starts_with("HTTP/1.0");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => {
                    let said = |word: &str| value.split(',').any(|t| t.trim().eq_ignore_ascii_case(word));
                    close = said("close") || (close && !said("keep-alive"));
                }
                _ => {}
            }
        }
        // 204 and 304 never have a body, whatever their headers say.
        let bodiless = matches!(status, 204 | 304);
        let whole = if bodiless {
            true
        } else if chunked {
            match chunked_end(body) {
                Some(whole) => whole,
                None => return Some(Err("a chunked answer that is not one".into())),
            }
        } else if let Some(length) = length {
            body.len() >= length
        } else {
            // Read to the end of the connection.
            false
        };
        if !whole {
            return None;
        }
        let keep = !close && (bodiless || chunked || length.is_some());
        Some(if (200..300).contains(&status) {
            Ok(keep)
        } else {
            Err(format!("the collector answered {status}"))
        })
    }

    /// The connection closed: the answer is whatever came, and the connection is not
    /// kept.
    fn closed(&self) -> Result<bool, PostError> {
        match self.complete() {
            Some(done) => done.map(|_| false),
            // Its head came whole (an answer read to the end of the connection).
            None if self.received.windows(4).any(|w| w == b"\r\n\r\n") => {
                let status = String::from_utf8_lossy(&self.received)
                    .split(' ')
                    .nth(1)
                    .and_then(|code| code.parse::<u16>().ok());
                match status {
                    Some(200..=299) => Ok(false),
                    Some(status) => Err(format!("the collector answered {status}")),
                    None => Err("not an HTTP answer".into()),
                }
            }
            None => Err("the collector closed the connection mid-answer".into()),
        }
    }
}

/// Whether a chunked body is whole: `Some(true)` once its last chunk (size 0) and its
/// trailers have come, `Some(false)` while it is still arriving, `None` if it is no
/// chunked body. Chunk extensions and trailers are read past, not used.
fn chunked_end(mut body: &[u8]) -> Option<bool> {
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return Some(false);
        };
        let line = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            // Trailers, each a line, end with an empty one.
            let mut rest = body;
            loop {
                let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return Some(false);
                };
                if end == 0 {
                    return Some(true);
                }
                rest = &rest[end + 2..];
            }
        }
        if body.len() < size + 2 {
            return Some(false);
        }
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::net::TcpListener;

    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message;

    use super::*;
    use crate::trace::{Event, SpanKind};

    fn span() -> Record {
        Record {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 0x00f067aa0ba902b7,
            parent: 0x1122334455667788,
            remote_parent: true,
            name: Cow::Borrowed("POST /pedidos"),
            kind: SpanKind::Server,
            start: 1_700_000_000_000_000_000,
            end: 1_700_000_000_003_000_000,
            attributes: vec![
                KeyValue::new("http.response.status_code", 201i64),
                KeyValue::new("url.path", "/pedidos".to_string()),
                KeyValue::new("retried", true),
                KeyValue::new("negative", -3i64),
                KeyValue::new("long", "x".repeat(300)),
                KeyValue::new("ids", Value::List(vec![Value::from("a"), Value::from("")])),
            ],
            events: vec![Event {
                time: 1_700_000_000_001_000_000,
                name: "breaker.rejected",
                attributes: vec![KeyValue::new("retry_in_ms", 500i64)],
            }],
            link: Some((7, 9, true)),
            error: Some("the circuit is open".into()),
        }
    }

    fn request(resource: &[KeyValue], spans: &[Record]) -> Vec<u8> {
        let mut encoded = Vec::new();
        for span in spans {
            encode(&mut encoded, span);
        }
        let mut body = envelope(resource, encoded.len());
        body.extend_from_slice(&encoded);
        body
    }

    #[test]
    fn what_is_encoded_is_what_the_otlp_definitions_decode() {
        let resource = [KeyValue::new("service.name", "pedidos")];
        let decoded =
            ExportTraceServiceRequest::decode(request(&resource, &[span(), span(), span()]).as_slice())
                .expect("a valid ExportTraceServiceRequest");
        let [resource_spans] = decoded.resource_spans.as_slice() else {
            panic!("one resource: {decoded:?}");
        };
        let attributes = &resource_spans.resource.as_ref().expect("a resource").attributes;
        assert_eq!(attributes[0].key, "service.name");
        let scope = &resource_spans.scope_spans[0];
        assert_eq!(scope.scope.as_ref().map(|s| s.name.as_str()), Some("penguin"));
        assert_eq!(scope.spans.len(), 3);
        let got = &scope.spans[0];
        assert_eq!(got.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes());
        assert_eq!(got.span_id, 0x00f067aa0ba902b7u64.to_be_bytes());
        assert_eq!(got.parent_span_id, 0x1122334455667788u64.to_be_bytes());
        assert_eq!(got.name, "POST /pedidos");
        assert_eq!(got.kind, 2);
        assert_eq!(got.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(got.end_time_unix_nano, 1_700_000_000_003_000_000);
        assert_eq!(got.flags, 0x301);
        let value = |i: usize| got.attributes[i].value.as_ref().and_then(|v| v.value.clone());
        assert_eq!(value(0), Some(Any::IntValue(201)));
        assert_eq!(value(1), Some(Any::StringValue("/pedidos".into())));
        assert_eq!(value(2), Some(Any::BoolValue(true)));
        assert_eq!(value(3), Some(Any::IntValue(-3)));
        assert_eq!(value(4), Some(Any::StringValue("x".repeat(300))));
        let Some(Any::ArrayValue(list)) = value(5) else {
            panic!("a list: {:?}", value(5));
        };
        let items: Vec<_> = list.values.into_iter().map(|v| v.value).collect();
        assert_eq!(
            items,
            [
                Some(Any::StringValue("a".into())),
                Some(Any::StringValue(String::new()))
            ]
        );
        assert_eq!(got.events[0].name, "breaker.rejected");
        assert_eq!(got.events[0].time_unix_nano, 1_700_000_000_001_000_000);
        assert_eq!(got.links[0].trace_id, 7u128.to_be_bytes());
        assert_eq!(got.links[0].span_id, 9u64.to_be_bytes());
        let status = got.status.as_ref().expect("a status");
        assert_eq!((status.code, status.message.as_str()), (2, "the circuit is open"));

        let root = Record {
            parent: 0,
            remote_parent: false,
            link: None,
            error: None,
            ..span()
        };
        let decoded = ExportTraceServiceRequest::decode(request(&[], &[root]).as_slice()).expect("valid");
        let got = &decoded.resource_spans[0].scope_spans[0].spans[0];
        assert!(got.parent_span_id.is_empty() && got.links.is_empty() && got.status.is_none());
        assert_eq!(got.flags, 0x101);
    }

    /// A collector on a real port answering each post with `answers` in turn (and
    /// closing after each when `close`); what it read comes back from its thread.
    fn collector(
        answers: &'static [&'static str],
        close: bool,
    ) -> (String, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("an address"));
        let served = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            let mut stream = None;
            for answer in answers {
                let s: &mut TcpStream = match &mut stream {
                    Some(s) => s,
                    None => stream.insert(listener.accept().expect("a connection").0),
                };
                let mut got = Vec::new();
                let mut chunk = [0u8; 1024];
                let body = loop {
                    let n = s.read(&mut chunk).expect("a request");
                    got.extend_from_slice(&chunk[..n]);
                    let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
                    let length: usize = head
                        .split("content-length: ")
                        .nth(1)
                        .and_then(|l| l.split("\r\n").next())
                        .and_then(|l| l.parse().ok())
                        .expect("a length");
                    if got.len() >= end + 4 + length {
                        break got[end + 4..end + 4 + length].to_vec();
                    }
                };
                bodies.push(body);
                s.write_all(answer.as_bytes()).expect("answered");
                if close {
                    stream = None;
                }
            }
            bodies
        });
        (url, served)
    }

    #[test]
    fn a_post_keeps_its_connection_and_reads_every_kind_of_answer() {
        let (url, served) = collector(
            &[
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            ],
            false,
        );
        let mut collector = Collector::new(&url, &[("x-key".into(), "v".into())]).expect("a URL");
        assert_eq!(collector.post(&[b"one"], Duration::from_secs(5)), Ok(()));
        assert!(collector.connection.is_some(), "kept");
        assert_eq!(collector.post(&[b"tw", b"o"], Duration::from_secs(5)), Ok(()));
        assert_eq!(
            collector.post(&[b"2b"], Duration::from_secs(5)),
            Ok(()),
            "no body after a 204"
        );
        let refused = collector.post(&[b"three"], Duration::from_secs(5));
        assert_eq!(refused, Err("the collector answered 503".into()));
        assert_eq!(
            served.join().expect("served"),
            [
                b"one".to_vec(),
                b"two".to_vec(),
                b"2b".to_vec(),
                b"three".to_vec()
            ]
        );
    }

    #[test]
    fn a_connection_the_collector_closed_is_opened_anew_and_a_hung_one_times_out() {
        let (url, served) = collector(
            &[
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            ],
            true,
        );
        let mut collector = Collector::new(&url, &[]).expect("a URL");
        assert_eq!(collector.post(&[b"one"], Duration::from_secs(5)), Ok(()));
        assert_eq!(
            collector.post(&[b"two"], Duration::from_secs(5)),
            Ok(()),
            "the closed one reopened"
        );
        served.join().expect("served");

        let silent = TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}", silent.local_addr().expect("an address"));
        let started = Instant::now();
        let hung = Collector::new(&url, &[])
            .expect("a URL")
            .post(&[b"x"], Duration::from_millis(200));
        assert!(hung.is_err(), "{hung:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        drop(silent);
        let gone = Collector::new(&url, &[])
            .expect("a URL")
            .post(&[b"x"], Duration::from_secs(1));
        assert!(gone.is_err(), "nothing listens: {gone:?}");
    }

    #[test]
    fn an_answer_is_whole_when_its_framing_says_so() {
        let complete = |text: &str| {
            Answer {
                received: text.as_bytes().to_vec(),
            }
            .complete()
        };
        // Chunk data that ends like a last chunk is data, not the end.
        let data = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab0\r\n\r\n";
        assert_eq!(complete(data), None, "still arriving");
        assert_eq!(complete(&format!("{data}0\r\n\r\n")), Some(Ok(true)));
        let trailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0;x=1\r\nX-Trace: y\r\n\r\n";
        assert_eq!(complete(trailers), Some(Ok(true)), "an extension and a trailer");
        let bad = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(complete(bad), Some(Err(_))));
        let old = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(complete(old), Some(Ok(false)), "HTTP/1.0 closes");
        let kept = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(complete(kept), Some(Ok(true)));
        let listed = "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(complete(listed), Some(Ok(false)), "close among other tokens");
    }

    #[test]
    fn only_http_urls_with_a_host_are_collectors() {
        assert!(Collector::new("https://c:4318", &[]).is_err());
        assert!(Collector::new("http:///v1/traces", &[]).is_err());
        let c = Collector::new("http://collector/v1/traces", &[]).expect("a URL");
        assert_eq!(
            (c.authority.as_str(), c.path.as_str()),
            ("collector:80", "/v1/traces")
        );
        let c = Collector::new("http://127.0.0.1:4318", &[]).expect("a URL");
        assert_eq!((c.authority.as_str(), c.path.as_str()), ("127.0.0.1:4318", "/"));
    }
}
