//! How pedidos calls a peer: a timeout on every attempt, retries with jittered
//! backoff on connection errors, timeouts and `5xx` (never on `4xx`), all inside
//! that peer's circuit breaker.
//!
//! Each peer has one breaker shared by every worker ([`Breakers`]): it opens after
//! `BREAKER_FAILURES` consecutive failed calls (a call fails when its last attempt
//! fails), rejects calls at once while open, and lets calls through again after
//! `BREAKER_OPEN_SECS`. Transitions and retries are logged.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode, header};
use actix_web::web::Bytes;
use awc::error::{ConnectError, SendRequestError};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::futures::CircuitBreaker;
use failsafe::{Config, Instrument, StateMachine, backoff};

use crate::config::PeerSettings;

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

/// Logs a breaker's transitions and remembers when it opened.
#[derive(Debug, Clone)]
pub struct BreakerLog {
    peer: &'static str,
    opened_at: Arc<Mutex<Option<Instant>>>,
}

impl Instrument for BreakerLog {
    fn on_call_rejected(&self) {
        log::debug!(target: LOG_TARGET, "circuit of {} is open: call rejected", self.peer);
    }

    fn on_open(&self) {
        *self.opened_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        log::warn!(target: LOG_TARGET, "circuit of {} opened", self.peer);
    }

    fn on_half_open(&self) {
        log::info!(target: LOG_TARGET, "circuit of {} half-open: letting a trial call through", self.peer);
    }

    fn on_closed(&self) {
        let was_open = self
            .opened_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if was_open.is_some() {
            log::info!(target: LOG_TARGET, "circuit of {} closed", self.peer);
        }
    }
}

type Machine = StateMachine<ConsecutiveFailures<backoff::Constant>, BreakerLog>;

/// One peer's circuit breaker; clones share the same state.
#[derive(Debug, Clone)]
pub struct Breaker {
    machine: Machine,
    log: BreakerLog,
    open_for: Duration,
}

impl Breaker {
    pub fn new(peer: &'static str, failures: u32, open_for: Duration) -> Self {
        let log = BreakerLog {
            peer,
            opened_at: Arc::default(),
        };
        let machine = Config::new()
            .failure_policy(consecutive_failures(failures, backoff::constant(open_for)))
            .instrument(log.clone())
            .build();
        Self {
            machine,
            log,
            open_for,
        }
    }

    /// How long until the open circuit lets a call through, at least one second.
    fn retry_after(&self) -> Duration {
        let opened_at = *self.log.opened_at.lock().unwrap_or_else(PoisonError::into_inner);
        let left = opened_at.map_or(self.open_for, |at| self.open_for.saturating_sub(at.elapsed()));
        Duration::from_secs(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// The breakers of pedidos' three peers, built once and shared by every worker.
#[derive(Debug, Clone)]
pub struct Breakers {
    pub productos: Breaker,
    pub inventario: Breaker,
    pub pagos: Breaker,
}

impl Breakers {
    pub fn new(settings: &PeerSettings) -> Self {
        let breaker = |peer| Breaker::new(peer, settings.breaker_failures, settings.breaker_open);
        Self {
            productos: breaker("productos"),
            inventario: breaker("inventario"),
            pagos: breaker("pagos"),
        }
    }
}

/// A peer as one worker sees it: its URL, the worker's HTTP client and the shared breaker.
pub struct Peer {
    name: &'static str,
    base_url: String,
    authorization: String,
    client: awc::Client,
    breaker: Breaker,
    attempts: u32,
    backoff: Duration,
    timeout: Duration,
}

impl Peer {
    pub fn new(
        name: &'static str,
        base_url: &str,
        token: &str,
        client: awc::Client,
        breaker: Breaker,
        settings: &PeerSettings,
    ) -> Self {
        Self {
            name,
            base_url: base_url.to_string(),
            authorization: format!("Bearer {token}"),
            client,
            breaker,
            attempts: settings.retry_attempts,
            backoff: settings.retry_backoff,
            timeout: settings.timeout,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Fails at once while this peer's circuit is open.
    pub fn ensure_available(&self) -> Result<(), CallError> {
        if self.breaker.machine.is_call_permitted() {
            return Ok(());
        }
        Err(self.circuit_open())
    }

    fn circuit_open(&self) -> CallError {
        CallError::CircuitOpen {
            peer: self.name,
            retry_after: self.breaker.retry_after(),
        }
    }

    /// Sends `method path` with an optional JSON body and idempotency key, and
    /// returns any answer below `500`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        key: Option<&str>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let attempts = self.retried(&method, path, body, key);
        match self.breaker.machine.call(attempts).await {
            Ok(answer) => Ok(answer),
            Err(failsafe::Error::Inner(e)) => Err(e),
            Err(failsafe::Error::Rejected) => Err(self.circuit_open()),
        }
    }

    async fn retried(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
        key: Option<&str>,
    ) -> Result<(StatusCode, Bytes), CallError> {
        let url = format!("{}{path}", self.base_url);
        let mut attempt = 1;
        let mut sent = false;
        loop {
            let cause = match self.attempt(method, &url, body.clone(), key).await {
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
            attempt += 1;
        }
    }

    /// One attempt: an answer below `500`, or why it counts as a failure.
    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        body: Option<Bytes>,
        key: Option<&str>,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let mut request = self
            .client
            .request(method.clone(), url)
            .insert_header((header::AUTHORIZATION, self.authorization.as_str()));
        if let Some(key) = key {
            request = request.insert_header(("Idempotency-Key", key));
        }
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
                sent: !never_connected(&e),
                cause: e.to_string(),
            })?;
            let status = response.status();
            let bytes = response
                .body()
                .limit(MAX_PEER_BODY)
                .await
                .map_err(|e| Failure::sent(e.to_string()))?;
            Ok((status, bytes))
        };
        match actix_web::rt::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(Failure::sent(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
            Ok(Err(failure)) => Err(failure),
            Ok(Ok((status, _))) if status.is_server_error() => {
                Err(Failure::sent(format!("answered {status}")))
            }
            Ok(Ok(answer)) => Ok(answer),
        }
    }
}

/// Whether a failed request certainly never reached the peer: the connection was
/// refused, timed out or the host did not resolve. Any other failure may have
/// happened after the peer read the request.
fn never_connected(error: &SendRequestError) -> bool {
    match error {
        SendRequestError::Connect(ConnectError::Io(e)) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        SendRequestError::Connect(
            ConnectError::Timeout
            | ConnectError::Resolver(_)
            | ConnectError::NoRecords
            | ConnectError::Unresolved,
        ) => true,
        _ => false,
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
    let millis = max.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(fastrand::u64(0..=millis))
}
