//! What every request of every service goes through before its route: it gets its
//! request id (`trace`), answered in `X-Request-Id` and carried by every log line made
//! while it is answered; it is counted while in flight (a draining shutdown waits for it), cut off after `REQUEST_TIMEOUT`
//! (a body that never ends holds no worker for long), logged with its method, path,
//! status and time (`/health`, `/ready` and `/metrics` at debug, so probes do not flood the logs), answered
//! with `Connection: close` while the process drains, and a JSON answer ends with a
//! newline, so a terminal's prompt starts on a line of its own.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::ResponseHead;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::ConnectionType;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use tokio::sync::Notify;

use crate::error::{ApiError, ErrorCode};
use crate::health::{HEALTH, METRICS, READY};
use crate::metrics::Metrics;
use crate::service::Service;
use crate::trace::{KeyValue, REQUEST_ID, Span, SpanKind, Trace, Tracer, Value};

/// What the middleware needs of its service, kept in the app's data.
#[derive(Clone)]
pub struct RequestContext {
    pub service: Service,
    pub request_timeout: Duration,
    pub in_flight: Arc<InFlight>,
    pub metrics: Arc<Metrics>,
    /// Where the service's spans go, when a collector is named.
    pub tracer: Option<Tracer>,
}

/// Routes that probes and scrapers call all day: logged at debug.
fn is_probe(path: &str) -> bool {
    [HEALTH, READY, METRICS].contains(&path)
}

pub async fn around(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<Newline>, actix_web::Error> {
    let Some(context) = req.app_data::<web::Data<RequestContext>>().cloned() else {
        return next
            .call(req)
            .await
            .map(|r| r.map_body(|_, body| Newline::new(body.boxed(), false)));
    };
    let counted = context.in_flight.enter();
    // Probes and scrapes make no spans: they would bury the orders' traces.
    let tracer = context.tracer.as_ref().filter(|_| !is_probe(req.path()));
    let trace = Trace::of_request(req.headers(), tracer);
    let mut span = trace.span(crate::trace::method_name(req.method()), SpanKind::Server);
    let id = HeaderValue::from_str(trace.id()).ok();
    span.set_with(|| {
        let mut attributes = vec![
            KeyValue::new("http.request.method", crate::trace::method_name(req.method())),
            KeyValue::new("url.path", req.path().to_owned()),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new(
                "http.request.header.x-request-id",
                Value::List(vec![Value::from(trace.id().to_owned())]),
            ),
        ];
        if let Some(peer) = req.peer_addr() {
            attributes.push(KeyValue::new("network.peer.address", peer.ip().to_string()));
        }
        attributes
    });
    match trace
        .under(&span)
        .scope(answer(req, next, &context, &mut span))
        .await
    {
        Ok(mut response) => {
            finish(response.response_mut().head_mut(), id, counted.draining());
            let json = is_json(response.headers());
            Ok(response.map_body(|_, body| Newline::new(body.boxed(), json)))
        }
        Err(e) => {
            // The request went with the future that timed out: its answer is built here.
            let mut answer = e.error_response();
            finish(answer.head_mut(), id, counted.draining());
            let json = is_json(answer.headers());
            let answer = answer
                .map_body(|_, body| Newline::new(body, json))
                .map_into_boxed_body();
            Err(InternalError::from_response(e, answer).into())
        }
    }
}

/// Every answer names its request id, and while draining closes its connection.
fn finish(head: &mut ResponseHead, id: Option<HeaderValue>, draining: bool) {
    if let Some(id) = id {
        head.headers_mut().insert(REQUEST_ID, id);
    }
    if draining {
        head.set_connection_type(ConnectionType::Close);
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// The request's answer, within its time limit, and its access log line.
async fn answer<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    context: &RequestContext,
    span: &mut Span,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let timeout = context.request_timeout;
    let response = match actix_web::rt::time::timeout(timeout, next.call(req)).await {
        Ok(response) => response,
        Err(_) => {
            let detail = format!("the request took longer than {} s", timeout.as_secs_f64());
            Err(ApiError::new(ErrorCode::RequestTimeout, detail).into())
        }
    };
    let (status, route) = match &response {
        Ok(r) => (r.status(), r.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let took = started.elapsed();
    if span.recording() {
        span.rename(match &route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        });
        span.set(KeyValue::new(
            "http.response.status_code",
            i64::from(status.as_u16()),
        ));
        if let Some(route) = &route {
            span.set(KeyValue::new("http.route", route.clone()));
        }
        if status.is_server_error() {
            span.set(KeyValue::new("error.type", status.as_u16().to_string()));
            span.fail(|| status.to_string());
        }
    }
    context
        .metrics
        .observe(route.as_deref(), method.as_str(), status, took);
    let millis = took.as_secs_f64() * 1000.0;
    let level = if is_probe(&path) && status.as_u16() < 400 {
        log::Level::Debug
    } else {
        log::Level::Info
    };
    let code = status.as_u16();
    // The fields are what LOG_FORMAT=json shows apart; the text line shows the message.
    log::log!(
        target: context.service.name(),
        level,
        method = method.as_str(), path = path.as_str(), status = code, duration_ms = millis;
        "{method} {path} {code} {millis:.2}ms"
    );
    response
}

/// A body, with a newline after it when `add`.
pub struct Newline {
    body: BoxBody,
    add: bool,
}

impl Newline {
    fn new(body: BoxBody, add: bool) -> Self {
        Self { body, add }
    }
}

impl MessageBody for Newline {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        match self.body.size() {
            BodySize::Sized(n) if self.add => BodySize::Sized(n + 1),
            size => size,
        }
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_next(cx) {
            Poll::Ready(None) if this.add => {
                this.add = false;
                Poll::Ready(Some(Ok(Bytes::from_static(b"\n"))))
            }
            other => other,
        }
    }
}

/// The requests being answered by the services of one process.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    draining: AtomicBool,
    idle: Notify,
}

/// One request in flight, counted until dropped.
pub struct Request(Arc<InFlight>);

impl Request {
    /// Whether the process is shutting down.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    pub fn enter(self: &Arc<Self>) -> Request {
        self.count.fetch_add(1, Ordering::AcqRel);
        Request(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Marks the process as shutting down and waits until no request is in flight,
    /// or `grace` is over. Returns how many requests were still in flight.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.draining.store(true, Ordering::Release);
        let deadline = Instant::now() + grace;
        loop {
            let idle = self.idle.notified();
            if self.count() == 0 {
                return 0;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || actix_web::rt::time::timeout(left, idle).await.is_err() {
                return self.count();
            }
        }
    }
}
