//! `GET /health`, answered without a token: the process is up.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::error::method_not_allowed;
use crate::service::Service;

const HEALTH: &str = "/health";

/// The answer of `GET /health`.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
    /// The service that answered: `productos`, `inventario`, `pagos` or `pedidos`.
    service: &'static str,
}

/// Whether the process is up; no token needed.
#[utoipa::path(get, path = HEALTH, tag = "public", responses((status = 200, description = "up", body = Health)))]
pub(crate) async fn health(service: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        service: service.name(),
    })
}

/// The route table of the operational routes; the app must hold a `web::Data<Service>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(HEALTH)
            .route(web::get().to(health))
            .default_service(web::to(method_not_allowed("GET"))),
    );
}
