//! How pedidos calls a peer: a timeout on every attempt, retries with jittered
//! backoff on connection errors, timeouts, `5xx` and answers cut short or unreadable
//! (never on `4xx`), all inside that peer's circuit breaker (`breaker`), which is
//! told how each call ended. Retries are logged; each attempt is a client span.
//!
//! Every attempt carries the request id and a `traceparent` with a new span id of the
//! work it is made for (`trace`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode, header};
use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use serde::de::DeserializeOwned;

use super::answers::{ErrorAnswer, PeerCode};
use super::breaker::{Breaker, millis};
use super::metrics::PedidosMetrics;
use crate::config::PeerSettings;
use crate::trace::{self, KeyValue, SpanKind};

/// The largest peer response pedidos reads.
const MAX_PEER_BODY: usize = 256 * 1024;
const LOG_TARGET: &str = "pedidos";

/// A peer call that did not produce an answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// Every attempt failed to connect, timed out or got a `5xx`. `sent` tells
    /// whether any attempt may have reached the peer (it connected at least once),
    /// so whether the peer may have acted on it.
    #[error("{peer} is unavailable: {cause}")]
    Unavailable {
        peer: &'static str,
        cause: String,
        sent: bool,
    },
    /// The peer's circuit is open; the call was not made.
    #[error("{peer} is unavailable: its circuit is open")]
    CircuitOpen {
        peer: &'static str,
        retry_after: Duration,
    },
}

/// A peer as one worker sees it: its URL, the worker's HTTP client and the shared breaker.
pub struct Peer {
    name: &'static str,
    base_url: String,
    /// `server.address` and `server.port` of its client spans, read from `base_url` once.
    server: Vec<KeyValue>,
    authorization: String,
    client: awc::Client,
    breaker: Breaker,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
    metrics: Arc<PedidosMetrics>,
}

impl Peer {
    pub fn new(
        name: &'static str,
        base_url: &str,
        token: &str,
        client: awc::Client,
        breaker: Breaker,
        settings: &PeerSettings,
        metrics: &Arc<PedidosMetrics>,
    ) -> Self {
        let mut server = Vec::new();
        if let Ok(uri) = base_url.parse::<actix_web::http::Uri>() {
            if let Some(host) = uri.host() {
                server.push(KeyValue::new("server.address", host.to_string()));
            }
            if let Some(port) = uri.port_u16() {
                server.push(KeyValue::new("server.port", i64::from(port)));
            }
        }
        Self {
            name,
            server,
            base_url: base_url.to_string(),
            authorization: format!("Bearer {token}"),
            client,
            breaker,
            attempts: settings.retry_attempts,
            backoff: settings.retry_backoff,
            timeout: settings.timeout,
            metrics: metrics.clone(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Fails at once while this peer's circuit is open (and its trial call, if it
    /// is time for one, is under way).
    pub fn ensure_available(&self) -> Result<(), CallError> {
        if self.breaker.admits(false) {
            return Ok(());
        }
        self.rejected(None, "");
        Err(self.circuit_open())
    }

    fn circuit_open(&self) -> CallError {
        CallError::CircuitOpen {
            peer: self.name,
            retry_after: self.breaker.retry_after(),
        }
    }

    /// Sends `method path` with an optional JSON body and reads a `2xx` answer as
    /// `T`, or a `4xx` as a [`Refusal`]. A connection error, a timeout, a `5xx`, an
    /// answer cut short or one that cannot be read is a failure: retried, and counted
    /// by the breaker when the last attempt fails too.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Result<T, Refusal>, CallError> {
        let started = Instant::now();
        let (answer, outcome) = if self.breaker.admits(true) {
            match self.retried(&method, path, body).await {
                Ok(answer) => {
                    self.breaker.answered();
                    let outcome = if answer.is_ok() { "ok" } else { "refused" };
                    (Ok(answer), outcome)
                }
                Err(e) => {
                    self.breaker
                        .failed(matches!(e, CallError::Unavailable { sent: true, .. }));
                    (Err(e), "failed")
                }
            }
        } else {
            self.rejected(Some(&method), path);
            (Err(self.circuit_open()), "circuit_open")
        };
        self.metrics
            .peer_calls
            .with_label_values(&[self.name, outcome])
            .inc();
        self.metrics
            .peer_latency
            .with_label_values(&[self.name])
            .observe(started.elapsed().as_secs_f64());
        answer
    }

    async fn retried<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Result<T, Refusal>, CallError> {
        let url = format!("{}{path}", self.base_url);
        let mut attempt = 1;
        let mut sent = false;
        loop {
            let cause = match self.attempt(method, &url, body.clone(), attempt - 1).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => {
                    sent |= failure.sent;
                    failure.cause
                }
            };
            if attempt >= self.attempts {
                log::warn!(target: LOG_TARGET, "{} {method} {path} failed after {attempt} attempts: {cause}", self.name);
                return Err(CallError::Unavailable {
                    peer: self.name,
                    cause,
                    sent,
                });
            }
            let pause = self.backoff * attempt + jitter(self.backoff);
            log::warn!(
                target: LOG_TARGET,
                "{} {method} {path} failed ({cause}); retry {} of {} in {} ms",
                self.name,
                attempt,
                self.attempts - 1,
                pause.as_millis()
            );
            actix_web::rt::time::sleep(pause).await;
            self.metrics.retries.with_label_values(&[self.name]).inc();
            attempt += 1;
        }
    }

    /// A request to the peer with the token and the current request's trace headers.
    fn request(&self, method: &Method, url: &str) -> awc::ClientRequest {
        let mut request = self
            .client
            .request(method.clone(), url)
            .insert_header((header::AUTHORIZATION, self.authorization.as_str()));
        if let Some(trace) = trace::current() {
            for pair in trace.peer_headers() {
                request = request.insert_header(pair);
            }
        }
        request
    }

    /// The peer's base URL.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// One `GET` outside any order: a single attempt within `PEER_TIMEOUT_MS` (and
    /// at most `within`), reading at most `max_body` bytes, never retried and neither
    /// counted by the breaker nor by the peer call metrics, since reading a peer's
    /// state is not using it (the panel). The status and whole body, whatever the
    /// status, or why there are none.
    pub async fn peek(
        &self,
        path: &str,
        within: Duration,
        max_body: usize,
    ) -> Result<(StatusCode, Bytes), String> {
        let url = format!("{}{path}", self.base_url);
        self.exchange(&Method::GET, &url, None, within.min(self.timeout), max_body)
            .await
            .map_err(|failure| failure.cause)
    }

    /// A call the open circuit kept from the peer (`method path`, or any call before
    /// an order is placed): a span of no attempt, with the breaker's rejection as its
    /// event.
    fn rejected(&self, method: Option<&Method>, path: &str) {
        let Some(trace) = trace::recorded() else {
            return;
        };
        let mut span = trace.span_named(
            || match method {
                Some(method) => format!("{method} {}", self.name),
                None => format!("call {}", self.name),
            },
            SpanKind::Client,
        );
        span.set_with(|| {
            vec![
                KeyValue::new("url.full", format!("{}{path}", self.base_url)),
                KeyValue::new("peer", self.name),
            ]
        });
        span.event("breaker.rejected", || {
            vec![KeyValue::new(
                "retry_in_ms",
                i64::try_from(millis(self.breaker.retry_after())).unwrap_or(i64::MAX),
            )]
        });
        span.fail(|| format!("the circuit to {} is open", self.name));
    }

    /// What a client span of a call to this peer says of it, by OpenTelemetry's HTTP
    /// conventions, and which peer it is.
    fn attributes(&self, method: &Method, url: &str) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new("http.request.method", trace::method_name(method)),
            KeyValue::new("url.full", url.to_string()),
            KeyValue::new("peer", self.name),
        ];
        attributes.extend(self.server.iter().cloned());
        attributes
    }

    /// One attempt (`resent` attempts came before it), in a client span of its own:
    /// a readable answer or a refusal, or why it counts as a failure.
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        resent: u32,
    ) -> Result<Result<T, Refusal>, Failure> {
        let Some(trace) = trace::recorded() else {
            return self.attempt_in_span(method, url, body).await.0;
        };
        let mut span = trace.span_named(|| format!("{method} {}", self.name), SpanKind::Client);
        span.set_with(|| {
            let mut attributes = self.attributes(method, url);
            if resent > 0 {
                attributes.push(KeyValue::new("http.request.resend_count", i64::from(resent)));
            }
            attributes
        });
        let (answer, status) = trace
            .under(&span)
            .scope(Box::pin(self.attempt_in_span(method, url, body)))
            .await;
        if let Some(status) = status {
            span.set(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
        }
        match &answer {
            Ok(Ok(_)) => {}
            Ok(Err(refusal)) => {
                span.set_with(|| vec![KeyValue::new("error.type", refusal.code.to_string())]);
                span.fail(|| format!("{} {}: {}", refusal.status.as_u16(), refusal.code, refusal.detail));
            }
            Err(failure) => {
                span.set_with(|| {
                    let kind = match status {
                        Some(status) => status.as_u16().to_string(),
                        None => "no_answer".to_string(),
                    };
                    vec![KeyValue::new("error.type", kind)]
                });
                span.fail(|| failure.cause.clone());
            }
        }
        answer
    }

    /// One attempt's exchange and reading, and the status the peer answered, if any.
    async fn attempt_in_span<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
    ) -> (Result<Result<T, Refusal>, Failure>, Option<StatusCode>) {
        match self
            .exchange(method, url, body, self.timeout, MAX_PEER_BODY)
            .await
        {
            Ok((status, bytes)) => (Self::read(status, &bytes), Some(status)),
            Err(failure) => (Err(failure), None),
        }
    }

    /// A peer's answer read: a `2xx` as `T`, a `4xx` as a refusal, else a failure.
    fn read<T: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<Result<T, Refusal>, Failure> {
        if status.is_success() {
            return serde_json::from_slice(bytes)
                .map(Ok)
                .map_err(|e| Failure::sent(format!("the answer could not be read: {e}")));
        }
        if status.is_client_error() {
            return Ok(Err(Refusal::read(status, bytes)));
        }
        Err(Failure::sent(format!("answered {status}")))
    }

    /// Sends one request and reads its whole answer within `timeout`: the status and
    /// the body, or a failure, which an answer shorter than its `Content-Length`, or
    /// longer than `max_body`, is too.
    async fn exchange(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let request = self.request(method, url);
        let exchange = async {
            let mut response = match body {
                Some(body) => {
                    request
                        .insert_header((header::CONTENT_TYPE, "application/json"))
                        .send_body(body)
                        .await
                }
                None => request.send().await,
            }
            .map_err(|e| Failure {
                sent: !never_sent(&e),
                cause: e.to_string(),
            })?;
            let status = response.status();
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let bytes = response
                .body()
                .limit(max_body)
                .await
                .map_err(|e| Failure::sent(format!("the answer could not be read: {e}")))?;
            if let Some(declared) = declared.filter(|d| *d != bytes.len()) {
                return Err(Failure::sent(format!(
                    "the answer was cut short: {} of {declared} bytes",
                    bytes.len()
                )));
            }
            Ok((status, bytes))
        };
        actix_web::rt::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::sent(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                )))
            })
    }
}

/// Whether a failed request certainly never reached the peer: no connection was made
/// (refused, unreachable, timed out) or the host did not resolve. awc reports a
/// connection the peer closed after reading the request as "disconnected": that one
/// may have been acted on.
fn never_sent(error: &SendRequestError) -> bool {
    matches!(
        error,
        SendRequestError::Connect(
            ConnectError::Io(_)
                | ConnectError::Timeout
                | ConnectError::Resolver(_)
                | ConnectError::NoRecords
                | ConnectError::Unresolved
        )
    )
}

/// A `4xx` answer: the peer understood and refused. Final, never retried.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    /// The error code of penguin's error shape (`Other("")` if the body had none).
    pub code: PeerCode,
    pub detail: String,
}

impl Refusal {
    fn read(status: StatusCode, body: &[u8]) -> Self {
        let answer: Option<ErrorAnswer> = serde_json::from_slice(body).ok();
        let (code, detail) = answer.map_or_else(
            || {
                (
                    PeerCode::Other(String::new()),
                    String::from_utf8_lossy(body).chars().take(200).collect(),
                )
            },
            |a| (PeerCode::parse(&a.error), a.detail),
        );
        Self { status, code, detail }
    }
}

/// Why one attempt failed, and whether the request may have reached the peer.
struct Failure {
    cause: String,
    sent: bool,
}

impl Failure {
    fn sent(cause: String) -> Self {
        Self { cause, sent: true }
    }
}

/// Up to `max` of random extra wait, so retries from many orders do not line up.
fn jitter(max: Duration) -> Duration {
    Duration::from_millis(fastrand::u64(0..=millis(max)))
}
