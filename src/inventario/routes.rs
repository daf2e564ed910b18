//! Handlers of inventario.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};

use super::model::{
    ClaveBody, Lote, LoteBody, NewLote, Reserva, ReservaRef, ReservaRefBody, Stock, StockBody, StockPath,
    Units, UnitsBody,
};
use super::repo;
use crate::db::{self, Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, IdPath, schema::IdempotencyKey};
use crate::json::{self, Json};
use crate::openapi::refusals;
use crate::pagination::Page;
use crate::secuencia::{
    self, Cambios, CambiosDeRefusals, CambiosQuery, CambiosRefusals, ClavePath, SequenceState, Visto,
};

/// How long a reservation holds its units unless confirmed or released.
#[derive(Debug, Clone, Copy)]
pub struct ReservationTtl(pub Duration);

refusals!(CargarStockRefusals: json::REFUSALS, db::WRITE_REFUSALS, &[ErrorCode::StockNotFound]);
refusals!(ListarStockRefusals: Page::REFUSALS, db::REFUSALS);
refusals!(ConsultarStockRefusals: IdPath::REFUSALS, &[ErrorCode::StockNotFound], db::REFUSALS);
refusals!(
    ReservarRefusals: json::REFUSALS, db::WRITE_REFUSALS,
    &[
        ErrorCode::StockNotFound,
        ErrorCode::InsufficientStock,
        ErrorCode::ReservaReleased,
        ErrorCode::InvalidKey,
        ErrorCode::IdempotencyKeyReused,
    ]
);
refusals!(
    LiberarRefusals: json::REFUSALS, db::WRITE_REFUSALS,
    &[
        ErrorCode::InvalidKey,
        ErrorCode::ReservaNotFound,
        ErrorCode::ReservaInLote,
        ErrorCode::ReservaConfirmed,
    ]
);
refusals!(
    ConfirmarRefusals: json::REFUSALS, db::WRITE_REFUSALS,
    &[
        ErrorCode::InvalidKey,
        ErrorCode::ReservaNotFound,
        ErrorCode::ReservaInLote,
        ErrorCode::ReservaNotActive,
        ErrorCode::ReservaExpired,
    ]
);
refusals!(
    ReservarLoteRefusals: json::REFUSALS, db::WRITE_REFUSALS, Visto::REFUSALS,
    &[
        ErrorCode::InvalidKey,
        ErrorCode::StockNotFound,
        ErrorCode::InsufficientStock,
        ErrorCode::ReservaReleased,
        ErrorCode::IdempotencyKeyReused,
    ]
);
refusals!(
    ConfirmarLoteRefusals: json::REFUSALS, db::WRITE_REFUSALS, Visto::REFUSALS,
    &[ErrorCode::InvalidKey, ErrorCode::ReservaNotFound, ErrorCode::ReservaNotActive]
);
refusals!(LiberarLoteRefusals: json::REFUSALS, db::WRITE_REFUSALS, Visto::REFUSALS, &[ErrorCode::InvalidKey, ErrorCode::ReservaConfirmed]);

/// Sets (not adds) the units of a product that can be reserved.
#[utoipa::path(
    post,
    path = super::STOCK,
    tag = "inventario",
    request_body = StockBody,
    responses(
        (status = 200, description = "the stock row", body = Stock,
            links(
                ("consultar" = (operation_id = "consultar_stock",
                    parameters(("producto_id" = "$response.body#/producto_id")))),
                ("reservar" = (operation_id = "reservar",
                    request_body = json!({"producto_id": "$response.body#/producto_id", "cantidad": 1}))),
            )),
        CargarStockRefusals,
    )
)]
pub async fn cargar_stock(pool: web::Data<Pool>, body: Json<StockBody>) -> Result<HttpResponse, ApiError> {
    let unidades = Units::stock(body.into_inner())?;
    let stock = run_write(&pool, move |conn| Ok(repo::set_stock(conn, unidades)?)).await?;
    Ok(HttpResponse::Ok().json(stock))
}

/// A page of every product's stock, by product id: `cantidad` can still be reserved,
/// `reservado` is held by active reservations, `confirmado` has left for good.
#[utoipa::path(
    get,
    path = super::STOCK,
    tag = "inventario",
    params(Page),
    responses((status = 200, description = "the stock rows", body = Vec<Stock>), ListarStockRefusals)
)]
pub async fn listar_stock(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let page = page.bounds()?;
    let stock = run_blocking(&pool, move |conn| Ok(repo::list_stock(conn, page)?)).await?;
    Ok(page.answer(super::STOCK, &stock, |s| s.producto_id))
}

/// A product's stock: `cantidad` can still be reserved, `reservado` is held by active
/// reservations, `confirmado` has left for good.
#[utoipa::path(
    get,
    path = super::STOCK_DE,
    tag = "inventario",
    params(StockPath),
    responses((status = 200, description = "the stock row", body = Stock), ConsultarStockRefusals)
)]
pub async fn consultar_stock(
    pool: web::Data<Pool>,
    path: web::Path<StockPath>,
) -> Result<HttpResponse, ApiError> {
    let producto_id = input::path_id(
        &path.producto_id,
        "producto_id",
        ErrorCode::StockNotFound,
        "stock row for producto",
    )?;
    let stock = run_blocking(&pool, move |conn| Ok(repo::stock_of(conn, producto_id)?)).await?;
    stock.map(|s| HttpResponse::Ok().json(s)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::StockNotFound,
            format!("producto {producto_id} has no stock row"),
        )
    })
}

/// Takes units out of the stock at once, for `RESERVATION_TTL` unless confirmed or released.
#[utoipa::path(
    post,
    path = super::RESERVAR,
    tag = "inventario",
    params(IdempotencyKey),
    request_body = UnitsBody,
    responses(
        (status = 201, description = "the reservation, `activa`. Replayed (the same key and \
            request), the reservation the key made, as it stands (`liberada` or `expirada` hold \
            nothing), with the same 201; only a key released before any reservation was made \
            with it is 409 `reserva_released`", body = Reserva,
            links(
                ("liberar" = (operation_id = "liberar",
                    request_body = json!({"reserva_id": "$response.body#/reserva_id"}))),
                ("confirmar" = (operation_id = "confirmar",
                    request_body = json!({"reserva_id": "$response.body#/reserva_id"}))),
            )),
        ReservarRefusals,
    )
)]
pub async fn reservar(
    req: HttpRequest,
    pool: web::Data<Pool>,
    ttl: web::Data<ReservationTtl>,
    body: Json<UnitsBody>,
) -> Result<HttpResponse, ApiError> {
    let unidades = Units::reserva(body.into_inner())?;
    let clave = input::idempotency_key(&req)?;
    let ttl = ttl.0;
    let reserva = run_write(&pool, move |conn| {
        Ok(repo::reserve(conn, unidades, clave.as_deref(), ttl)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(reserva))
}

/// Gives a reservation's units back, once however often it is asked. An unknown `clave`
/// is recorded released, so that a reservation asked for with it later takes nothing.
#[utoipa::path(
    post,
    path = super::LIBERAR,
    tag = "inventario",
    request_body = ReservaRefBody,
    responses((status = 200, description = "the reservation, `liberada` (or `expirada`)", body = Reserva), LiberarRefusals)
)]
pub async fn liberar(pool: web::Data<Pool>, body: Json<ReservaRefBody>) -> Result<HttpResponse, ApiError> {
    let referencia = ReservaRef::parse(body.into_inner())?;
    let reserva = run_write(&pool, move |conn| Ok(repo::release(conn, &referencia)?)).await?;
    Ok(HttpResponse::Ok().json(reserva))
}

/// Confirms a reservation: its units leave for good. Twice is harmless.
#[utoipa::path(
    post,
    path = super::CONFIRMAR,
    tag = "inventario",
    request_body = ReservaRefBody,
    responses((status = 200, description = "the reservation, `confirmada`", body = Reserva), ConfirmarRefusals)
)]
pub async fn confirmar(pool: web::Data<Pool>, body: Json<ReservaRefBody>) -> Result<HttpResponse, ApiError> {
    let referencia = ReservaRef::parse(body.into_inner())?;
    let reserva = run_write(&pool, move |conn| Ok(repo::confirm(conn, &referencia)?)).await?;
    Ok(HttpResponse::Ok().json(reserva))
}

/// Reserves every line of an order under its key, all or none. The same key with the same
/// lines answers the lote as it stands and takes nothing again.
#[utoipa::path(
    post,
    path = super::RESERVAS,
    tag = "inventario",
    params(Visto),
    request_body = LoteBody,
    responses(
        (status = 201, description = "the lote, `activa`. Replayed (the same clave and lines), \
            the lote the clave made, as it stands (`liberada` holds nothing), with the same 201; \
            only a clave released before any lote was made with it is 409 `reserva_released`",
            body = Lote,
            links(
                ("confirmar" = (operation_id = "confirmar_lote",
                    request_body = json!({"clave": "$response.body#/clave"}))),
                ("liberar" = (operation_id = "liberar_lote",
                    request_body = json!({"clave": "$response.body#/clave"}))),
            )),
        ReservarLoteRefusals,
    )
)]
pub async fn reservar_lote(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<LoteBody>,
) -> Result<HttpResponse, ApiError> {
    let visto = query.parse()?;
    let nuevo = NewLote::parse(body.into_inner())?;
    let lote = run_write(&pool, move |conn| Ok(repo::reserve_lote(conn, &nuevo, visto)?)).await?;
    Ok(HttpResponse::Created().json(lote))
}

/// Confirms every reservation of a lote. Twice is harmless.
#[utoipa::path(
    post,
    path = super::RESERVAS_CONFIRMAR,
    tag = "inventario",
    params(Visto),
    request_body = ClaveBody,
    responses((status = 200, description = "the lote, `confirmada`", body = Lote), ConfirmarLoteRefusals)
)]
pub async fn confirmar_lote(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<ClaveBody>,
) -> Result<HttpResponse, ApiError> {
    let visto = query.parse()?;
    let clave = body.into_inner().parse()?;
    let lote = run_write(&pool, move |conn| Ok(repo::confirm_lote(conn, &clave, visto)?)).await?;
    Ok(HttpResponse::Ok().json(lote))
}

/// Releases every reservation of a lote. An unknown `clave` is recorded released, so that
/// a lote asked for with it later takes nothing.
#[utoipa::path(
    post,
    path = super::RESERVAS_LIBERAR,
    tag = "inventario",
    params(Visto),
    request_body = ClaveBody,
    responses((status = 200, description = "the lote, `liberada`", body = Lote), LiberarLoteRefusals)
)]
pub async fn liberar_lote(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<ClaveBody>,
) -> Result<HttpResponse, ApiError> {
    let visto = query.parse()?;
    let clave = body.into_inner().parse()?;
    let lote = run_write(&pool, move |conn| Ok(repo::release_lote(conn, &clave, visto)?)).await?;
    Ok(HttpResponse::Ok().json(lote))
}

/// What `GET /cambios` answers: the number of the last change made here, and the lotes.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CambiosLotes {
    #[serde(flatten)]
    sequence: SequenceState,
    lotes: Vec<Lote>,
}

/// The lotes whose key starts with `prefijo` that changed after the change numbered
/// `desde`, oldest change first; or the one lote made with `clave`. pedidos reads it to
/// learn of orders it lost (a restore of its own database from an older copy).
#[utoipa::path(
    get,
    path = crate::secuencia::CAMBIOS,
    tag = "inventario",
    params(CambiosQuery),
    responses((status = 200, description = "the last change's number, and the lotes", body = CambiosLotes), CambiosRefusals)
)]
pub async fn cambios(
    pool: web::Data<Pool>,
    query: web::Query<CambiosQuery>,
) -> Result<HttpResponse, ApiError> {
    listed(&pool, query.parse()?).await
}

/// What was made with one key (an order's lote or charge), however long ago: one, or none.
#[utoipa::path(
    get,
    path = crate::secuencia::CAMBIOS_DE,
    tag = "inventario",
    params(ClavePath),
    responses((status = 200, description = "the last change's number, and what was made with the key", body = CambiosLotes), CambiosDeRefusals)
)]
pub async fn cambios_de(pool: web::Data<Pool>, path: web::Path<ClavePath>) -> Result<HttpResponse, ApiError> {
    listed(&pool, path.parse()?).await
}

async fn listed(pool: &Pool, cambios: Cambios) -> Result<HttpResponse, ApiError> {
    secuencia::listed(pool, cambios, |conn, sequence, cambios| {
        let lotes = match cambios {
            Cambios::After {
                prefijo,
                desde,
                limit,
            } => repo::lotes_after(conn, &prefijo, desde, limit)?,
            Cambios::Key(clave) => repo::lote(conn, &clave)?.into_iter().collect(),
        };
        Ok(CambiosLotes { sequence, lotes })
    })
    .await
}
