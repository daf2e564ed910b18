//! productos: the catalog of products and their prices.
//!
//! Routes: `POST /productos`, `GET /productos` (a page, or `?ids=1,2,3` for the
//! products named), `GET /productos/{id}`, `PUT /productos/{id}`, `DELETE /productos/{id}`.
//!
//! Reads come from the catalog in memory (`catalog`), which every committed write
//! keeps up to date; the app must hold a `web::Data<Catalog>`.

mod catalog;
mod model;
mod repo;
mod routes;

use actix_web::web;
use rusqlite_migration::M;
use utoipa::OpenApi;

pub use catalog::Catalog;

use crate::db::Schema;
use crate::error::resource;
use crate::service::Service;

/// The schema of `productos.db`.
pub fn schema() -> Schema {
    Schema::new(
        Service::Productos,
        "productos",
        vec![M::up(include_str!(
            "../../migrations/productos/0001_productos.sql"
        ))],
    )
}

const PRODUCTOS: &str = "/productos";
const PRODUCTO: &str = "/productos/{id}";

/// The route table of productos.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(PRODUCTOS, "GET, POST")
            .route(web::post().to(routes::crear))
            .route(web::get().to(routes::listar)),
    )
    .service(
        resource(PRODUCTO, "GET, PUT, DELETE")
            .route(web::get().to(routes::obtener))
            .route(web::put().to(routes::actualizar))
            .route(web::delete().to(routes::borrar)),
    );
}

/// The OpenAPI document of productos' own routes.
#[derive(OpenApi)]
#[openapi(
    info(description = "The catalog of products and their prices."),
    paths(
        routes::crear,
        routes::listar,
        routes::obtener,
        routes::actualizar,
        routes::borrar
    )
)]
pub struct Api;
