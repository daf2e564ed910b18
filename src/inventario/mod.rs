//! inventario: stock per product, and reservations that take units out of it.
//!
//! Routes: `POST /stock`, `GET /stock/{producto_id}`, `POST /reservar`, `POST /liberar`.
//! A reservation takes its units in one `BEGIN IMMEDIATE` transaction, so no two
//! concurrent reservations can take the same unit; releasing gives them back once.

mod model;
mod repo;
mod routes;

use actix_web::web;
use rusqlite_migration::{M, Migrations};

use crate::error::method_not_allowed;

/// The schema of `inventario.db`.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!(
        "../../migrations/inventario/0001_inventario.sql"
    ))])
}

/// The route table of inventario.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/stock")
            .route(web::post().to(routes::cargar_stock))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/stock/{producto_id}")
            .route(web::get().to(routes::consultar_stock))
            .default_service(web::to(method_not_allowed("GET"))),
    )
    .service(
        web::resource("/reservar")
            .route(web::post().to(routes::reservar))
            .default_service(web::to(method_not_allowed("POST"))),
    )
    .service(
        web::resource("/liberar")
            .route(web::post().to(routes::liberar))
            .default_service(web::to(method_not_allowed("POST"))),
    );
}
