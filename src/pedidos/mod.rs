//! pedidos: orders, placed by orchestrating productos, inventario and pagos over HTTP.
//!
//! Routes: `POST /pedidos` (with an optional `Idempotency-Key`), `GET /pedidos`,
//! `GET /pedidos/{id}`; the status page `GET /panel` and its data, `GET /panel/estado`.
//!
//! An order is one state machine: its stages are `model::Stage`, its decisions
//! (stage + a peer's answer → next stage, no I/O) are in `decide`, and
//! `saga::advance` is the one function that moves an order on, called by the request
//! that places it and by `recovery` for every order no request is driving. The typed
//! peer calls are in `clients`, what the peers answer in `answers`; one call's
//! attempts, retries and timeouts in `peer`; the per-peer circuit breakers in
//! `breaker`; who is driving which order, in `instance`. `heal` makes the books
//! agree again after any one service was restored from an older copy of its database.

pub(crate) mod answers;
pub(crate) mod breaker;
pub(crate) mod clients;
pub(crate) mod decide;
pub(crate) mod heal;
pub(crate) mod instance;
mod metrics;
pub(crate) mod model;
mod panel;
pub(crate) mod peer;
pub(crate) mod recovery;
pub(crate) mod repo;
mod routes;
pub(crate) mod saga;

use actix_web::web;
use rusqlite_migration::M;
use utoipa::OpenApi;

pub use breaker::Breakers;
pub use clients::Peers;
pub use instance::Instance;
pub use metrics::PedidosMetrics;
pub use recovery::spawn as spawn_recovery;

use crate::db::Schema;
use crate::error::{get, resource};
use crate::service::Service;

/// The schema of `pedidos.db`.
pub fn schema() -> Schema {
    Schema::new(
        Service::Pedidos,
        "pedidos",
        vec![
            M::up(include_str!("../../migrations/pedidos/0001_pedidos.sql")),
            M::up(include_str!("../../migrations/pedidos/0002_pasos_y_claves.sql")),
            M::up(include_str!("../../migrations/pedidos/0003_etapas.sql")),
            M::up(include_str!("../../migrations/pedidos/0004_request_id.sql")),
            M::up(include_str!("../../migrations/pedidos/0005_clave_nonce.sql")),
            M::up(include_str!("../../migrations/pedidos/0006_secuencias.sql")),
            M::up(include_str!(
                "../../migrations/pedidos/0007_pedidos_por_segundo.sql"
            )),
            M::up(include_str!(
                "../../migrations/pedidos/0008_claves_por_pedido.sql"
            )),
            M::up(include_str!("../../migrations/pedidos/0009_traceparent.sql")),
        ],
    )
}

const PEDIDOS: &str = "/pedidos";
const PEDIDO: &str = "/pedidos/{id}";
const PANEL: &str = "/panel";
const PANEL_ESTADO: &str = "/panel/estado";

/// The route table of pedidos. The app must also hold a `web::Data<Peers>`, a
/// `web::Data<Instance>` and a `web::Data<Breakers>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(PEDIDOS, "GET, POST")
            .route(web::post().to(routes::crear))
            .route(web::get().to(routes::listar)),
    )
    .service(get(PEDIDO, routes::obtener))
    .service(get(PANEL, panel::pagina))
    .service(get(PANEL_ESTADO, panel::estado));
}

/// The OpenAPI document of pedidos' own routes.
#[derive(OpenApi)]
#[openapi(
    info(
        description = "Orders, placed by pricing their lines at productos, reserving them at \
        inventario and charging the total at pagos; an order that cannot be completed holds \
        no stock and is kept as `rechazado` or `fallido`."
    ),
    paths(routes::crear, routes::listar, routes::obtener, panel::pagina, panel::estado),
    components(schemas(routes::PedidoFallido))
)]
pub struct Api;
