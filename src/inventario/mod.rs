//! inventario: stock per product, and reservations that take units out of it.
//!
//! Routes: `POST /stock`, `GET /stock` (a page of every product's),
//! `GET /stock/{producto_id}`, `POST /reservar`, `POST /liberar`, `POST /confirmar`,
//! and for a whole order at once `POST /reservas`, `POST /reservas/confirmar`,
//! `POST /reservas/liberar`; and for pedidos' healing after a restore, `GET /cambios`,
//! `GET /cambios/{clave}` and `POST /secuencia` (see `crate::secuencia`).
//!
//! A reservation takes its units in one `BEGIN IMMEDIATE` transaction, so no two
//! concurrent reservations can take the same unit. It then either is confirmed (its
//! units leave for good), is released (they come back, once however often it is
//! asked), or expires after `RESERVATION_TTL` and is released by inventario itself.
//! A reservation asked for with an `Idempotency-Key` is made once per key.
//!
//! A lote is every line of one order reserved in one transaction under the order's
//! key, all or none; it is confirmed or released as one, and never expires: its owner
//! (pedidos) records the order before reserving and always settles it, so a charged
//! order can always confirm its units.

mod metrics;
pub(crate) mod model;
pub(crate) mod repo;
mod routes;

use std::time::Duration;

use actix_web::web;
use rusqlite_migration::M;
use utoipa::OpenApi;

pub use metrics::register as register_metrics;
pub use routes::ReservationTtl;

use crate::db::{Pool, Schema, run_write};
use crate::service::Service;
use crate::shutdown::Stop;

use crate::error::{get, post, resource};

/// The schema of `inventario.db`.
pub fn schema() -> Schema {
    Schema::new(
        Service::Inventario,
        "stock",
        vec![
            M::up(include_str!("../../migrations/inventario/0001_inventario.sql")),
            M::up(include_str!(
                "../../migrations/inventario/0002_confirmar_y_expirar.sql"
            )),
            M::up(include_str!("../../migrations/inventario/0003_lotes.sql")),
            M::up(include_str!("../../migrations/inventario/0004_secuencia.sql")),
            M::up(include_str!(
                "../../migrations/inventario/0005_reservas_por_estado.sql"
            )),
        ],
    )
}

const RESERVAS: &str = "/reservas";
const RESERVAS_CONFIRMAR: &str = "/reservas/confirmar";
const RESERVAS_LIBERAR: &str = "/reservas/liberar";
const STOCK: &str = "/stock";
const RESERVAR: &str = "/reservar";
const LIBERAR: &str = "/liberar";
const CONFIRMAR: &str = "/confirmar";
const STOCK_DE: &str = "/stock/{producto_id}";

/// The route table of inventario.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The routes pedidos calls for every order come first, and the one with a path
    // parameter last: the router tries each in turn, and a parameter costs a regex.
    cfg.service(post(RESERVAS, routes::reservar_lote))
        .service(post(RESERVAS_CONFIRMAR, routes::confirmar_lote))
        .service(post(RESERVAS_LIBERAR, routes::liberar_lote))
        .configure(|cfg| crate::secuencia::configure(cfg, routes::cambios, routes::cambios_de))
        .service(
            resource(STOCK, "GET, POST")
                .route(web::post().to(routes::cargar_stock))
                .route(web::get().to(routes::listar_stock)),
        )
        .service(post(RESERVAR, routes::reservar))
        .service(post(LIBERAR, routes::liberar))
        .service(post(CONFIRMAR, routes::confirmar))
        .service(get(STOCK_DE, routes::consultar_stock));
}

/// The OpenAPI document of inventario's own routes.
#[derive(OpenApi)]
#[openapi(
    info(
        description = "Stock per product, and reservations that take units out of it: one at a \
        time (`/reservar`) or a whole order's lines at once (a lote, `/reservas`)."
    ),
    paths(
        routes::cargar_stock,
        routes::listar_stock,
        routes::consultar_stock,
        routes::reservar,
        routes::liberar,
        routes::confirmar,
        routes::reservar_lote,
        routes::confirmar_lote,
        routes::liberar_lote,
        routes::cambios,
        routes::cambios_de,
        crate::secuencia::subir_secuencia,
    )
)]
pub struct Api;

/// Releases expired reservations every so often (a quarter of the TTL, between
/// 50 ms and 5 s), until `stop` is asked. Confirming checks the deadline itself, so a
/// reservation is never confirmed late even between two sweeps.
pub fn spawn_expiry(pool: Pool, ttl: Duration, mut stop: Stop) {
    let every = (ttl / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    actix_web::rt::spawn(async move {
        while stop
            .unless_asked(actix_web::rt::time::sleep(every))
            .await
            .is_some()
        {
            match run_write(&pool, |conn| Ok(repo::expire_due(conn)?)).await {
                Ok(0) => {}
                Ok(n) => log::info!(target: "inventario", "released {n} expired reservations"),
                Err(e) => log::warn!(target: "inventario", "could not release expired reservations: {e}"),
            }
        }
        log::debug!(target: "inventario", "expiry sweeper stopped");
    });
}
