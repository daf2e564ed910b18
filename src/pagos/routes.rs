//! Handlers of pagos.

use actix_web::{HttpResponse, web};

use super::model::{Cobro, PagarBody, ReferenciaBody};
use super::repo;
use crate::db::{Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode};
use crate::input;
use crate::json::Json;
use crate::pagination::Page;

pub async fn pagar(pool: web::Data<Pool>, body: Json<PagarBody>) -> Result<HttpResponse, ApiError> {
    let cobro = Cobro::parse(body.into_inner())?;
    let pago = run_write(&pool, move |conn| Ok(repo::charge(conn, cobro)?)).await?;
    Ok(HttpResponse::Created().json(pago))
}

async fn void(pool: &Pool, body: ReferenciaBody, refund: bool) -> Result<HttpResponse, ApiError> {
    let referencia = input::text("referencia", &body.referencia)?;
    let pago = run_write(pool, move |conn| Ok(repo::void(conn, &referencia, refund)?)).await?;
    Ok(HttpResponse::Ok().json(pago))
}

pub async fn anular(pool: web::Data<Pool>, body: Json<ReferenciaBody>) -> Result<HttpResponse, ApiError> {
    void(&pool, body.into_inner(), false).await
}

pub async fn reembolsar(pool: web::Data<Pool>, body: Json<ReferenciaBody>) -> Result<HttpResponse, ApiError> {
    void(&pool, body.into_inner(), true).await
}

pub async fn listar(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.bounds()?;
    let pagos = run_blocking(&pool, move |conn| Ok(repo::list(conn, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(pagos))
}

pub async fn obtener(pool: web::Data<Pool>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&id, ErrorCode::PagoNotFound, "pago")?;
    let pago = run_blocking(&pool, move |conn| Ok(repo::get(conn, id)?)).await?;
    pago.map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| ApiError::new(ErrorCode::PagoNotFound, format!("there is no pago {id}")))
}

pub async fn por_referencia(
    pool: web::Data<Pool>,
    referencia: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let referencia = referencia.into_inner();
    let buscada = referencia.clone();
    let pago = run_blocking(&pool, move |conn| Ok(repo::by_referencia(conn, &buscada)?)).await?;
    pago.map(|p| HttpResponse::Ok().json(p)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::PagoNotFound,
            format!("there is no pago with referencia {referencia:?}"),
        )
    })
}
