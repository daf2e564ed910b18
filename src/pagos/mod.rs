//! pagos: simulated charges, approved or (on request, `fail: true`) rejected.
//!
//! Routes: `POST /pagar`, `POST /anular`, `POST /reembolsar`, `GET /pagos`,
//! `GET /pagos/{id}`, `GET /pagos/referencia/{referencia}`.
//!
//! A rejection is a business outcome recorded like an approval, answered with `201`,
//! never an HTTP error. A `referencia` is charged at most once: asking again with the
//! same charge returns the first payment, so a retried request never charges twice.
//! `POST /anular {referencia}` answers with the payment made with a referencia, or
//! voids it so that no charge can be made with it any more; `POST /reembolsar` does
//! the same and also refunds an approved payment.

mod model;
mod repo;
mod routes;

use actix_web::web;
use rusqlite_migration::M;

use crate::db::Schema;
use crate::error::method_not_allowed;
use crate::service::Service;

/// The schema of `pagos.db`.
pub fn schema() -> Schema {
    Schema::new(
        Service::Pagos,
        "pagos",
        vec![
            M::up(include_str!("../../migrations/pagos/0001_pagos.sql")),
            M::up(include_str!("../../migrations/pagos/0002_anular.sql")),
            M::up(include_str!("../../migrations/pagos/0003_sin_listas.sql")),
        ],
    )
}

/// The route table of pagos.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/pagar")
            .route(web::post().to(routes::pagar))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/anular")
            .route(web::post().to(routes::anular))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/reembolsar")
            .route(web::post().to(routes::reembolsar))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/pagos")
            .route(web::get().to(routes::listar))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/pagos/referencia/{referencia}")
            .route(web::get().to(routes::por_referencia))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/pagos/{id}")
            .route(web::get().to(routes::obtener))
            .default_service(web::to(method_not_allowed("GET"))),
    );
}
