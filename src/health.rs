//! `GET /health`, answered without a token: the process is up.

use actix_web::{HttpResponse, web};

use crate::error::method_not_allowed;
use crate::service::Service;

async fn health(service: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok", "service": service.name()}))
}

/// The route table of the operational routes; the app must hold a `web::Data<Service>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/health")
            .route(web::get().to(health))
            .default_service(web::to(method_not_allowed("GET"))),
    );
}
