//! `GET /health`, `GET /ready` and `GET /metrics`: what probes and scrapers call,
//! answered without a token.
//!
//! `/health` is liveness: the process is up and answering. `/ready` is readiness: the
//! service can do its work now — its database file is still there, answers a query
//! with the owner and schema version the service expects, and commits a write —
//! and answers `503` `not_ready` naming what is wrong otherwise. pedidos adds its
//! peers' circuits, as information only.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;
use serde_json::Value;

use crate::db::{Pool, run_blocking};
use crate::error::{ApiError, ErrorCode, get};
use crate::metrics::Metrics;
use crate::service::Service;

pub(crate) const HEALTH: &str = "/health";
pub(crate) const READY: &str = "/ready";
pub(crate) const METRICS: &str = "/metrics";
/// How long a client should wait before asking `/ready` again.
const READY_RETRY_SECS: u64 = 5;

/// pedidos' peers' circuits as its readiness answer shows them, read at each call.
#[derive(Clone)]
pub struct Circuits(pub Arc<dyn Fn() -> Value + Send + Sync>);

/// The answer of `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
    /// The service that answered: `productos`, `inventario`, `pagos` or `pedidos`.
    service: &'static str,
}

/// The answer of `GET /ready`.
#[derive(Serialize, utoipa::ToSchema)]
struct Ready {
    /// Always `ready`.
    #[schema(pattern = "^ready$")]
    status: &'static str,
    /// The service that answered.
    service: &'static str,
    /// penguin's version.
    version: &'static str,
    /// The schema version of the service's database.
    schema_version: usize,
    /// pedidos only: each peer's circuit, `{"circuit": "closed" | "half_open" | "open"}`,
    /// with `retry_in_ms` while open. Information only: a peer down does not make
    /// pedidos unready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    peers: Option<Value>,
}

/// Whether the process is up; no token needed.
#[utoipa::path(get, path = HEALTH, tag = "public", responses((status = 200, description = "up", body = Health)))]
pub(crate) async fn health(service: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        service: service.name(),
    })
}

/// Whether the service can do its work now: its database is the one it opened,
/// answers and commits; no token needed.
#[utoipa::path(
    get,
    path = READY,
    tag = "public",
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "`not_ready`: the detail names what is wrong",
         body = crate::error::ErrorBody,
         headers(("Retry-After" = u64, description = "seconds to wait before asking again"))),
    )
)]
pub(crate) async fn ready(
    service: web::Data<Service>,
    pool: web::Data<Pool>,
    circuits: Option<web::Data<Circuits>>,
) -> Result<HttpResponse, ApiError> {
    let schema_version = pool.ready().await.map_err(|why| {
        log::warn!(target: service.name(), "not ready: {why}");
        ApiError::Unavailable {
            code: ErrorCode::NotReady,
            detail: why,
            retry_after: READY_RETRY_SECS,
        }
    })?;
    let peers = circuits.map(|circuits| (circuits.0)());
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        service: service.name(),
        version: env!("CARGO_PKG_VERSION"),
        schema_version,
        peers,
    }))
}

/// The route table of the operational routes; the app must hold a `web::Data<Service>`
/// and a `web::Data<Pool>`, and pedidos' a `web::Data<Circuits>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get(HEALTH, health)).service(get(READY, ready));
}

/// The service's metrics in Prometheus' text format (version 0.0.4); no token needed.
#[utoipa::path(
    get,
    path = METRICS,
    tag = "public",
    responses(
        (status = 200, description = "every series carries `service`", content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "`database_unavailable`: the database could not be sampled",
         body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn metrics(
    metrics: web::Data<Metrics>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    if let Some(sample) = metrics.sampler() {
        run_blocking(&pool, move |conn| Ok(sample(conn)?)).await?;
    }
    Ok(HttpResponse::Ok()
        .content_type(TextEncoder::new().format_type())
        .body(metrics.render()))
}

/// The route table of `/metrics`; the app must hold a `web::Data<Metrics>` and a
/// `web::Data<Pool>`.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(get(METRICS, metrics));
}
