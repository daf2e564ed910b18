//! Handlers of inventario.

use actix_web::{HttpResponse, web};

use super::model::{LiberarBody, Unidades, UnidadesBody};
use super::repo;
use crate::db::{Pool, run_blocking};
use crate::error::ApiError;
use crate::input;

pub async fn cargar_stock(
    pool: web::Data<Pool>,
    body: web::Json<UnidadesBody>,
) -> Result<HttpResponse, ApiError> {
    let unidades = Unidades::stock(body.into_inner())?;
    let stock = run_blocking(&pool, move |conn| Ok(repo::set_stock(conn, unidades)?)).await?;
    Ok(HttpResponse::Ok().json(stock))
}

pub async fn consultar_stock(
    pool: web::Data<Pool>,
    producto_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let producto_id = producto_id.into_inner();
    let stock = run_blocking(&pool, move |conn| Ok(repo::get_stock(conn, producto_id)?)).await?;
    stock.map(|s| HttpResponse::Ok().json(s)).ok_or_else(|| {
        ApiError::not_found(
            "stock_not_found",
            format!("producto {producto_id} has no stock row"),
        )
    })
}

pub async fn reservar(
    pool: web::Data<Pool>,
    body: web::Json<UnidadesBody>,
) -> Result<HttpResponse, ApiError> {
    let unidades = Unidades::reserva(body.into_inner())?;
    let reserva = run_blocking(&pool, move |conn| repo::reserve(conn, unidades)).await?;
    Ok(HttpResponse::Created().json(reserva))
}

pub async fn liberar(pool: web::Data<Pool>, body: web::Json<LiberarBody>) -> Result<HttpResponse, ApiError> {
    let reserva_id = input::id("reserva_id", body.reserva_id)?;
    let reserva = run_blocking(&pool, move |conn| repo::release(conn, reserva_id)).await?;
    Ok(HttpResponse::Ok().json(reserva))
}
