//! `GET /health` and `GET /ready`, answered without a token.
//!
//! `/health` is liveness: the process is up and answering. `/ready` is readiness: the
//! service can do its work now — its database file is still there, answers a query
//! with the owner and schema version the service expects, and commits a write —
//! and answers `503` `not_ready` naming what is wrong otherwise. A service may add
//! what it knows about its state (pedidos: its peers' circuits) as information only.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use crate::db::Pool;
use crate::error::{ApiError, ErrorCode, method_not_allowed};
use crate::service::Service;

/// How long a client should wait before asking `/ready` again.
const READY_RETRY_SECS: u64 = 5;

/// What a service adds to its readiness answer, as `(field, value)`.
#[derive(Clone)]
pub struct Detail(pub Arc<dyn Fn() -> (&'static str, Value) + Send + Sync>);

async fn health(service: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok", "service": service.name()}))
}

async fn ready(
    service: web::Data<Service>,
    pool: web::Data<Pool>,
    detail: Option<web::Data<Detail>>,
) -> Result<HttpResponse, ApiError> {
    let version = pool.ready().await.map_err(|why| {
        log::warn!(target: service.name(), "not ready: {why}");
        ApiError::Unavailable {
            code: ErrorCode::NotReady,
            detail: why,
            retry_after: READY_RETRY_SECS,
        }
    })?;
    let mut body = json!({
        "status": "ready",
        "service": service.name(),
        "version": env!("CARGO_PKG_VERSION"),
        "schema_version": version,
    });
    if let Some(detail) = detail {
        let (field, value) = (detail.0)();
        body[field] = value;
    }
    Ok(HttpResponse::Ok().json(body))
}

/// The route table of the operational routes; the app must hold a `web::Data<Service>`
/// and a `web::Data<Pool>`, and may hold a `web::Data<Detail>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/ready")
            .route(web::get().to(ready))
            .default_service(web::to(method_not_allowed("GET"))),
    );
}
