//! Handlers of inventario.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};

use super::model::{ClaveBody, LoteBody, NuevoLote, ReservaRef, ReservaRefBody, Unidades, UnidadesBody};
use super::repo;
use crate::db::{Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode};
use crate::input;
use crate::json::Json;

/// How long a reservation holds its units unless confirmed or released.
#[derive(Debug, Clone, Copy)]
pub struct ReservationTtl(pub Duration);

pub async fn cargar_stock(pool: web::Data<Pool>, body: Json<UnidadesBody>) -> Result<HttpResponse, ApiError> {
    let unidades = Unidades::stock(body.into_inner())?;
    let stock = run_write(&pool, move |conn| Ok(repo::set_stock(conn, unidades)?)).await?;
    Ok(HttpResponse::Ok().json(stock))
}

pub async fn consultar_stock(
    pool: web::Data<Pool>,
    producto_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let producto_id = input::path_id(&producto_id, ErrorCode::StockNotFound, "stock row for producto")?;
    let stock = run_blocking(&pool, move |conn| Ok(repo::get_stock(conn, producto_id)?)).await?;
    stock.map(|s| HttpResponse::Ok().json(s)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::StockNotFound,
            format!("producto {producto_id} has no stock row"),
        )
    })
}

pub async fn reservar(
    req: HttpRequest,
    pool: web::Data<Pool>,
    ttl: web::Data<ReservationTtl>,
    body: Json<UnidadesBody>,
) -> Result<HttpResponse, ApiError> {
    let unidades = Unidades::reserva(body.into_inner())?;
    let clave = input::idempotency_key(&req)?;
    let ttl = ttl.0;
    let reserva = run_write(&pool, move |conn| {
        Ok(repo::reserve(conn, unidades, clave.as_deref(), ttl)?)
    })
    .await?;
    Ok(HttpResponse::Created().json(reserva))
}

pub async fn liberar(pool: web::Data<Pool>, body: Json<ReservaRefBody>) -> Result<HttpResponse, ApiError> {
    let referencia = ReservaRef::parse(body.into_inner())?;
    let reserva = run_write(&pool, move |conn| Ok(repo::release(conn, &referencia)?)).await?;
    Ok(HttpResponse::Ok().json(reserva))
}

pub async fn confirmar(pool: web::Data<Pool>, body: Json<ReservaRefBody>) -> Result<HttpResponse, ApiError> {
    let referencia = ReservaRef::parse(body.into_inner())?;
    let reserva = run_write(&pool, move |conn| Ok(repo::confirm(conn, &referencia)?)).await?;
    Ok(HttpResponse::Ok().json(reserva))
}

pub async fn reservar_lote(pool: web::Data<Pool>, body: Json<LoteBody>) -> Result<HttpResponse, ApiError> {
    let nuevo = NuevoLote::parse(body.into_inner())?;
    let lote = run_write(&pool, move |conn| Ok(repo::reserve_lote(conn, &nuevo)?)).await?;
    Ok(HttpResponse::Created().json(lote))
}

pub async fn confirmar_lote(pool: web::Data<Pool>, body: Json<ClaveBody>) -> Result<HttpResponse, ApiError> {
    let clave = body.into_inner().parse()?;
    let lote = run_write(&pool, move |conn| Ok(repo::confirm_lote(conn, &clave)?)).await?;
    Ok(HttpResponse::Ok().json(lote))
}

pub async fn liberar_lote(pool: web::Data<Pool>, body: Json<ClaveBody>) -> Result<HttpResponse, ApiError> {
    let clave = body.into_inner().parse()?;
    let lote = run_write(&pool, move |conn| Ok(repo::release_lote(conn, &clave)?)).await?;
    Ok(HttpResponse::Ok().json(lote))
}
