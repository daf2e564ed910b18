//! What pedidos shows in `/metrics` beside every service's own: orders by outcome,
//! peer calls by peer and outcome with their time, retries, each peer's circuit
//! (state and transitions), compensations, and recovery passes with what they settled.

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use rusqlite::Connection;

use crate::metrics::Metrics;

/// pedidos' own metrics, shared behind an `Arc`.
pub struct PedidosMetrics {
    /// Orders that reached a final estado (confirmado, rechazado, fallido).
    pub orders: IntCounterVec,
    /// Orders not over yet or still owing work to a peer, sampled at each scrape.
    pub unfinished: IntGauge,
    /// Peer calls by peer and outcome: ok, refused (4xx), failed, circuit_open.
    pub peer_calls: IntCounterVec,
    pub peer_latency: HistogramVec,
    pub retries: IntCounterVec,
    /// 0 closed, 1 half-open, 2 open.
    pub circuit: IntGaugeVec,
    pub transitions: IntCounterVec,
    /// Compensating calls made: release (a lote), void (a referencia), refund (a charge).
    pub compensations: IntCounterVec,
    pub recovery_passes: IntCounter,
    /// Orders recovery finished, by final estado.
    pub recovered: IntCounterVec,
    /// Orders re-asserted at a peer restored from an older copy, by peer and outcome
    /// (`healed`, or `unhealed`: the peer refused and a person must look).
    pub reasserted: IntCounterVec,
    /// Orders this database had lost (restored from an older copy) and learned back
    /// from its peers.
    pub brought_back: IntCounter,
}

impl PedidosMetrics {
    pub fn register(metrics: &Metrics) -> prometheus::Result<Self> {
        let counters = |name: &str, help: &str, labels: &[&str]| {
            metrics.register(IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let own = Self {
            orders: counters(
                "orders_total",
                "Orders that reached a final estado, by estado",
                &["estado"],
            )?,
            unfinished: metrics.register(IntGauge::new(
                "orders_unfinished",
                "Orders not over yet or still owing work to a peer",
            )?)?,
            peer_calls: counters(
                "peer_calls_total",
                "Calls to peers by peer and outcome (ok, refused, failed, circuit_open)",
                &["peer", "outcome"],
            )?,
            peer_latency: metrics.register(HistogramVec::new(
                HistogramOpts::new(
                    "peer_call_duration_seconds",
                    "Time of a call to a peer, retries included, by peer",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["peer"],
            )?)?,
            retries: counters(
                "peer_retries_total",
                "Attempts at a peer call after the first, by peer",
                &["peer"],
            )?,
            circuit: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "circuit_state",
                    "Each peer's circuit: 0 closed, 1 half-open, 2 open",
                ),
                &["peer"],
            )?)?,
            transitions: counters(
                "circuit_transitions_total",
                "Changes of a peer's circuit, by peer and the state it went to",
                &["peer", "to"],
            )?,
            compensations: counters(
                "compensations_total",
                "Compensating calls: release (a lote), void (a referencia), refund (a charge)",
                &["kind"],
            )?,
            recovery_passes: metrics
                .register(IntCounter::new("recovery_passes_total", "Recovery passes run")?)?,
            recovered: counters(
                "recovery_settled_total",
                "Orders recovery brought to their end, by final estado",
                &["estado"],
            )?,
            reasserted: counters(
                "orders_reasserted_total",
                "Orders re-asserted at a peer restored from an older copy, by peer and outcome (healed, unhealed)",
                &["peer", "outcome"],
            )?,
            brought_back: metrics.register(IntCounter::new(
                "orders_brought_back_total",
                "Orders pedidos had lost to a restore of its database and learned back from its peers",
            )?)?,
        };
        // Series that exist from the start, at 0, so that a rate over them is defined.
        for estado in ["confirmado", "rechazado", "fallido"] {
            own.orders.with_label_values(&[estado]);
            own.recovered.with_label_values(&[estado]);
        }
        for peer in ["inventario", "pagos"] {
            for outcome in ["healed", "unhealed"] {
                own.reasserted.with_label_values(&[peer, outcome]);
            }
        }
        for kind in ["release", "void", "refund"] {
            own.compensations.with_label_values(&[kind]);
        }
        Ok(own)
    }

    /// Reads what is sampled at each scrape.
    pub fn sample(&self, conn: &Connection) -> rusqlite::Result<()> {
        self.unfinished.set(super::repo::count_unfinished(conn)?);
        Ok(())
    }
}
