//! pagos: simulated charges, approved or (on request, `fail: true`) rejected.
//!
//! Routes: `POST /pagar`, `POST /anular`, `POST /reembolsar`, `GET /pagos`,
//! `GET /pagos/{id}`, `GET /pagos/referencia/{referencia}`; and for pedidos' healing
//! after a restore, `GET /cambios`, `GET /cambios/{clave}` and `POST /secuencia` (see `crate::secuencia`).
//!
//! A rejection is a business outcome recorded like an approval, answered with `201`,
//! never an HTTP error. A `referencia` is charged at most once: asking again with the
//! same charge returns the first payment, so a retried request never charges twice.
//! `POST /anular {referencia}` answers with the payment made with a referencia, or
//! voids it so that no charge can be made with it any more; `POST /reembolsar` does
//! the same and also refunds an approved payment.

pub(crate) mod model;
pub(crate) mod repo;
mod routes;

use actix_web::web;
use rusqlite_migration::M;
use utoipa::OpenApi;

use crate::db::Schema;
use crate::error::{get, post};
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
            M::up(include_str!("../../migrations/pagos/0004_secuencia.sql")),
        ],
    )
}

const PAGAR: &str = "/pagar";
const ANULAR: &str = "/anular";
const REEMBOLSAR: &str = "/reembolsar";
const PAGOS: &str = "/pagos";
const PAGO_POR_REFERENCIA: &str = "/pagos/referencia/{referencia}";
const PAGO: &str = "/pagos/{id}";

/// The route table of pagos.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(post(PAGAR, routes::pagar))
        .service(post(ANULAR, routes::anular))
        .service(post(REEMBOLSAR, routes::reembolsar))
        .configure(|cfg| crate::secuencia::configure(cfg, routes::cambios, routes::cambios_de))
        .service(get(PAGOS, routes::listar))
        .service(get(PAGO_POR_REFERENCIA, routes::por_referencia))
        .service(get(PAGO, routes::obtener));
}

/// The OpenAPI document of pagos' own routes.
#[derive(OpenApi)]
#[openapi(
    info(
        description = "Simulated charges, approved or (with `fail: true`) rejected; a \
        `referencia` is charged at most once."
    ),
    paths(
        routes::pagar,
        routes::anular,
        routes::reembolsar,
        routes::listar,
        routes::obtener,
        routes::por_referencia,
        routes::cambios,
        routes::cambios_de,
        crate::secuencia::subir_secuencia,
    )
)]
pub struct Api;
