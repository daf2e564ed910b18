//! Each peer's circuit breaker, shared by every worker ([`Breakers`]).
//!
//! It opens after `BREAKER_FAILURES` consecutive failed calls (a call fails when its
//! last attempt fails; a refusal is an answer, not a failure) and rejects calls at
//! once while open, for `BREAKER_OPEN_SECS` (30 s, as the contract says) — except for
//! a peer that is not listening yet: one that has not answered once since pedidos
//! started and whose every failure since was a request that never left (connection
//! refused, unreachable, connect timeout). It is taken to be starting, and its
//! circuit opens for a second at most, so a peer that comes up after pedidos (an
//! orchestrator may start it later) costs users a second, not thirty. A peer that
//! accepts the connection and then fails (a reset, a timeout, a `5xx`, an answer cut
//! short) is failing, not starting, whether or not it ever answered. When a period is
//! over, one trial call goes through (the others are still rejected): its success
//! closes the circuit, its failure opens it again. A trial that never ends (its
//! order was dropped) gives way to another after the longest a call may take.
//!
//! Written here rather than with the `failsafe` crate, which the first version used:
//! failsafe lets every call through a half-open circuit, has no open period that
//! depends on how the calls failed, and its backoffs panic below one second. Each
//! was added around it, which kept a second state machine beside failsafe's, fed by
//! its callbacks and by the backoff iterator it asked for periods. One small state
//! machine ([`State`]) is the one source of truth instead.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::metrics::PedidosMetrics;
use crate::config::PeerSettings;

const LOG_TARGET: &str = "pedidos";

/// A circuit's state, as pedidos reports it: in `/ready`, on the status page, and
/// in its metrics (a label, and `penguin_circuit_state`'s value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Circuit {
    Closed,
    /// A trial call is under way.
    HalfOpen,
    Open,
}

impl Circuit {
    /// The gauge's value: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// One peer's circuit, as `/ready` and the status page show it.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct CircuitStatus {
    pub circuit: Circuit,
    /// While open: milliseconds until the next call goes through as a trial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// A duration in whole milliseconds, as the answers and metrics give it.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl CircuitStatus {
    /// A circuit and, while open, how long until its trial, as [`Breaker::status`] gives them.
    pub fn of((circuit, left): (Circuit, Option<Duration>)) -> Self {
        Self {
            circuit,
            retry_in_ms: left.map(millis),
        }
    }
}

/// One peer's circuit breaker; clones share the same state.
#[derive(Clone)]
pub struct Breaker(Arc<Parts>);

struct Parts {
    peer: &'static str,
    state: Mutex<State>,
    /// How many consecutive failed calls open the circuit.
    failures: u32,
    /// How long the circuit stays open for a peer that is not starting.
    longest: Duration,
    /// How long a trial call may take before another may be tried in its place (it
    /// was cut off before it could tell the breaker how it went).
    trial_timeout: Duration,
    metrics: Arc<PedidosMetrics>,
}

/// What a breaker knows of its peer.
#[derive(Debug)]
struct State {
    circuit: Circuit,
    /// Consecutive failed calls while closed.
    failures: u32,
    /// Whether the peer ever answered.
    reached: bool,
    /// Whether every failed call since the peer last answered (or since pedidos
    /// started) never left pedidos: the peer is not listening, rather than failing.
    only_unsent: bool,
    /// While open: when it lets a trial call through.
    open_until: Option<Instant>,
    /// While half-open: since when the one trial call has been under way.
    trial_since: Option<Instant>,
}

impl Breaker {
    pub fn new(peer: &'static str, settings: &PeerSettings, metrics: &Arc<PedidosMetrics>) -> Self {
        metrics.circuit.with_label_values(&[peer]).set(0);
        let attempt = settings.timeout + settings.retry_backoff * 2;
        Self(Arc::new(Parts {
            peer,
            state: Mutex::new(State {
                circuit: Circuit::Closed,
                failures: 0,
                reached: false,
                only_unsent: true,
                open_until: None,
                trial_since: None,
            }),
            failures: settings.breaker_failures.max(1),
            longest: settings.breaker_open,
            trial_timeout: attempt * settings.retry_attempts + Duration::from_secs(1),
            metrics: metrics.clone(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may go to the peer now: always while closed; while open, once
    /// its open period is over, as the one trial call. `claim` makes the call that
    /// asks the trial (the circuit is then half-open); without it the question is
    /// only whether one could go.
    pub fn admits(&self, claim: bool) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        let trial_free = state
            .trial_since
            .is_none_or(|since| now.duration_since(since) >= self.0.trial_timeout);
        let admitted = match state.circuit {
            Circuit::Closed => return true,
            Circuit::Open => state.open_until.is_none_or(|until| now >= until),
            Circuit::HalfOpen => trial_free,
        };
        if !admitted {
            log::debug!(target: LOG_TARGET, "circuit of {} is open: call rejected", self.0.peer);
        }
        if admitted && claim {
            state.trial_since = Some(now);
            if state.circuit == Circuit::Open {
                state.open_until = None;
                self.move_to(state, Circuit::HalfOpen);
            }
        }
        admitted
    }

    /// The peer answered (a success or a refusal): an outage from now on is not a
    /// start, and a half-open circuit closes.
    pub fn answered(&self) {
        let mut state = self.state();
        state.reached = true;
        state.only_unsent = true;
        state.failures = 0;
        if state.circuit == Circuit::HalfOpen {
            state.trial_since = None;
            self.move_to(state, Circuit::Closed);
        }
    }

    /// A call failed: counted while closed (the circuit opens at the threshold), and
    /// a half-open circuit opens again. One that may have `reached` the peer shows a
    /// peer that is failing, not one that is starting.
    pub fn failed(&self, reached: bool) {
        let mut state = self.state();
        if reached {
            state.only_unsent = false;
        }
        let opens = match state.circuit {
            Circuit::Closed => {
                state.failures += 1;
                state.failures >= self.0.failures
            }
            Circuit::HalfOpen => true,
            // Calls let through before it opened end while it is open: already counted.
            Circuit::Open => false,
        };
        if !opens {
            return;
        }
        let period = if state.reached || !state.only_unsent {
            self.0.longest
        } else {
            self.0.longest.min(Duration::from_secs(1))
        };
        state.failures = 0;
        state.open_until = Some(Instant::now() + period);
        state.trial_since = None;
        self.move_to(state, Circuit::Open);
    }

    /// Moves the circuit to `circuit` (the rest of `state` already set for it), then,
    /// with the lock let go, counts and logs the move.
    fn move_to(&self, mut state: MutexGuard<'_, State>, circuit: Circuit) {
        state.circuit = circuit;
        let open_for = state
            .open_until
            .map(|until| until.saturating_duration_since(Instant::now()));
        drop(state);
        let (peer, metrics) = (self.0.peer, &self.0.metrics);
        metrics.circuit.with_label_values(&[peer]).set(circuit.gauge());
        metrics
            .transitions
            .with_label_values(&[peer, circuit.into()])
            .inc();
        match circuit {
            Circuit::Open => log::warn!(
                target: LOG_TARGET,
                "circuit of {peer} opened for {:.0} ms",
                open_for.unwrap_or_default().as_secs_f64() * 1000.0
            ),
            Circuit::HalfOpen => {
                log::info!(target: LOG_TARGET, "circuit of {peer} half-open: letting a trial call through");
            }
            Circuit::Closed => log::info!(target: LOG_TARGET, "circuit of {peer} closed"),
        }
    }

    /// The circuit's state, and while it is open, how long until it lets a trial
    /// call through (zero once the next call will be one).
    pub fn status(&self) -> (Circuit, Option<Duration>) {
        let state = self.state();
        let left = state
            .open_until
            .map(|until| until.saturating_duration_since(Instant::now()));
        (state.circuit, left.filter(|_| state.circuit == Circuit::Open))
    }

    /// The circuit's state, as `/ready` and the status page show it.
    pub fn circuit_status(&self) -> CircuitStatus {
        CircuitStatus::of(self.status())
    }

    /// How long until the open circuit lets a call through, at least one second.
    pub fn retry_after(&self) -> Duration {
        let left = self.status().1.unwrap_or(Duration::ZERO);
        Duration::from_secs(left.as_secs_f64().ceil().max(1.0) as u64)
    }
}

/// The breakers of pedidos' three peers, built once and shared by every worker.
#[derive(Clone)]
pub struct Breakers {
    pub productos: Breaker,
    pub inventario: Breaker,
    pub pagos: Breaker,
}

impl Breakers {
    pub fn new(settings: &PeerSettings, metrics: &Arc<PedidosMetrics>) -> Self {
        let breaker = |peer| Breaker::new(peer, settings, metrics);
        Self {
            productos: breaker("productos"),
            inventario: breaker("inventario"),
            pagos: breaker("pagos"),
        }
    }

    /// Each peer's name and breaker.
    pub fn each(&self) -> [(&'static str, &Breaker); 3] {
        [
            ("productos", &self.productos),
            ("inventario", &self.inventario),
            ("pagos", &self.pagos),
        ]
    }

    /// Each peer's circuit, for `/ready`: `{"productos": {"circuit": "closed"}, …}`,
    /// with `retry_in_ms` while open.
    pub fn status(&self) -> BTreeMap<&'static str, CircuitStatus> {
        self.each()
            .into_iter()
            .map(|(peer, breaker)| (peer, breaker.circuit_status()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::service::Service;

    fn breaker(open: Duration) -> Breaker {
        let settings = PeerSettings {
            breaker_failures: 3,
            breaker_open: open,
            timeout: Duration::from_millis(20),
            retry_backoff: Duration::from_millis(1),
            retry_attempts: 1,
            ..PeerSettings::defaults()
        };
        let metrics = Metrics::new(Service::Pedidos).expect("metrics");
        let pedidos = Arc::new(PedidosMetrics::register(&metrics).expect("pedidos' metrics"));
        Breaker::new("inventario", &settings, &pedidos)
    }

    #[test]
    fn it_opens_after_consecutive_failures_and_lets_one_trial_through_at_a_time() {
        let breaker = breaker(Duration::from_millis(300));
        breaker.answered();
        breaker.failed(true);
        breaker.failed(true);
        breaker.answered();
        breaker.failed(true);
        breaker.failed(true);
        assert_eq!(
            breaker.status().0,
            Circuit::Closed,
            "an answer between restarts the count"
        );
        breaker.failed(true);
        let (circuit, left) = breaker.status();
        assert_eq!(circuit, Circuit::Open);
        assert!(left.is_some_and(|l| l <= Duration::from_millis(300)), "{left:?}");
        assert!(!breaker.admits(true) && !breaker.admits(false), "open: rejected");
        assert_eq!(breaker.retry_after(), Duration::from_secs(1), "at least a second");

        std::thread::sleep(Duration::from_millis(310));
        assert!(breaker.admits(false), "a trial could go");
        assert_eq!(breaker.status().0, Circuit::Open, "asking does not claim it");
        assert!(breaker.admits(true), "the trial");
        assert_eq!(breaker.status().0, Circuit::HalfOpen);
        assert!(!breaker.admits(true), "one trial at a time");
        breaker.failed(true);
        assert_eq!(breaker.status().0, Circuit::Open, "a failed trial opens it again");

        std::thread::sleep(Duration::from_millis(310));
        assert!(breaker.admits(true));
        breaker.answered();
        assert_eq!(breaker.status().0, Circuit::Closed, "a trial answered closes it");
        assert!(breaker.admits(true));
    }

    #[test]
    fn a_peer_not_listening_yet_is_tried_again_within_a_second_and_one_failing_after_the_whole_period() {
        let starting = breaker(Duration::from_secs(30));
        for _ in 0..3 {
            starting.failed(false);
        }
        let left = starting.status().1.expect("open");
        assert!(
            left <= Duration::from_secs(1),
            "never answered, never reached: {left:?}"
        );

        let failing = breaker(Duration::from_secs(30));
        failing.failed(false);
        failing.failed(true);
        failing.failed(false);
        let left = failing.status().1.expect("open");
        assert!(left > Duration::from_secs(29), "a request that left: {left:?}");

        let answered_once = breaker(Duration::from_secs(30));
        answered_once.answered();
        for _ in 0..3 {
            answered_once.failed(false);
        }
        let left = answered_once.status().1.expect("open");
        assert!(left > Duration::from_secs(29), "it answered before: {left:?}");
    }

    #[test]
    fn a_trial_that_never_ends_gives_way_to_another() {
        let breaker = breaker(Duration::from_millis(10));
        for _ in 0..3 {
            breaker.failed(true);
        }
        std::thread::sleep(Duration::from_millis(20));
        assert!(breaker.admits(true), "the trial, whose order is then dropped");
        assert!(!breaker.admits(true));
        // The trial timeout: one attempt of 20 ms with its backoffs, and a second.
        std::thread::sleep(Duration::from_millis(1050));
        assert!(breaker.admits(true), "another trial in its place");
        assert_eq!(breaker.status().0, Circuit::HalfOpen);
    }
}
