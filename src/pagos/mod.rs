//! pagos: simulated charges, approved or (on request, `fail: true`) rejected.
//!
//! Routes: `POST /pagar`. A rejection is a business outcome recorded like an
//! approval, answered with `201`, never an HTTP error.

mod model;
mod repo;
mod routes;

use actix_web::web;
use rusqlite_migration::{M, Migrations};

use crate::error::method_not_allowed;

/// The schema of `pagos.db`.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(include_str!("../../migrations/pagos/0001_pagos.sql"))])
}

/// The route table of pagos.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/pagar")
            .route(web::post().to(routes::pagar))
            .default_service(web::to(method_not_allowed("POST"))),
    );
}
