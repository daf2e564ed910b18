//! A service's counters, gauges and histograms, in Prometheus' text format: what
//! `GET /metrics` (`health`) answers, without a token (they hold no shop data).
//!
//! Every service counts its requests by route, method and status and times them
//! (`penguin_http_*`), and shows its database write queue (`db`) and the log lines
//! dropped because the log writer fell behind (`logging`). Each service registers its
//! own beside them (pedidos: orders, peer calls, circuits, compensations, recovery;
//! inventario: reservations and units), and may sample its database at each scrape.
//! Every series carries `service="<name>"`, so the four services of `serve all`,
//! scraped on their four ports, never mix. Beside them, under the standard names a
//! platform's dashboards expect and without the `penguin_` prefix, the process's own:
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds` and more (read from `/proc`; the
//! four services of `serve all` share one process, so they show the same numbers).

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use prometheus::core::Collector;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use rusqlite::Connection;

use crate::service::Service;

/// Reads what a service shows from its database, at each scrape.
pub type Sampler = Arc<dyn Fn(&Connection) -> rusqlite::Result<()> + Send + Sync>;

/// The route label of requests that matched no route: their paths are not labels,
/// so that a scan of random paths cannot make series without bound.
const UNMATCHED: &str = "unmatched";

/// One service's metrics.
pub struct Metrics {
    registry: Registry,
    /// The process' own series, which keep their standard names (no prefix).
    process: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    sampler: Option<Sampler>,
}

impl Metrics {
    pub fn new(service: Service) -> prometheus::Result<Self> {
        let labels: std::collections::HashMap<_, _> =
            [("service".to_string(), service.name().to_string())].into();
        let registry = Registry::new_custom(Some("penguin".into()), Some(labels.clone()))?;
        let process = Registry::new_custom(None, Some(labels))?;
        #[cfg(target_os = "linux")]
        process.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let metrics = Self {
            requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "Requests answered, by route, method and status",
                ),
                &["route", "method", "status"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "Time from a request's arrival to its answer, by route and method",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["route", "method"],
            )?,
            registry,
            process,
            sampler: None,
        };
        metrics.register(metrics.requests.clone())?;
        metrics.register(metrics.latency.clone())?;
        metrics.register(crate::logging::DROPPED.clone())?;
        Ok(metrics)
    }

    /// Adds a service's own metric; returns it for its owner to update.
    pub fn register<C: Collector + Clone + 'static>(&self, collector: C) -> prometheus::Result<C> {
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    /// Sets what is read from the database at each scrape.
    pub fn sample_with(&mut self, sampler: Sampler) {
        self.sampler = Some(sampler);
    }

    /// Counts and times one answered request. `route` is the pattern it matched.
    pub fn observe(&self, route: Option<&str>, method: &str, status: StatusCode, took: Duration) {
        let route = route.unwrap_or(UNMATCHED);
        self.requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(took.as_secs_f64());
    }

    /// What is read from the database at each scrape, if anything.
    pub(crate) fn sampler(&self) -> Option<Sampler> {
        self.sampler.clone()
    }

    /// Everything, in Prometheus' text format.
    pub(crate) fn render(&self) -> String {
        let mut text = Vec::new();
        // Encoding what was gathered into memory cannot fail.
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let _ = TextEncoder::new().encode(&families, &mut text);
        String::from_utf8(text).unwrap_or_default()
    }
}
