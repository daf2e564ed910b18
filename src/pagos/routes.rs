//! Handlers of pagos.

use actix_web::{HttpResponse, web};

use super::model::{Cobro, PagarBody, Pago, ReferenciaBody, ReferenciaPath};
use super::repo;
use crate::db::{self, Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, IdPath};
use crate::json::{self, Json};
use crate::openapi::refusals;
use crate::pagination::Page;

refusals!(
    PagarRefusals: json::REFUSALS, db::WRITE_REFUSALS,
    &[ErrorCode::ReferenciaInUse, ErrorCode::ReferenciaVoid]
);
refusals!(AnularRefusals: json::REFUSALS, db::WRITE_REFUSALS);
refusals!(ListarRefusals: Page::REFUSALS, db::REFUSALS);
refusals!(ObtenerRefusals: IdPath::REFUSALS, &[ErrorCode::PagoNotFound], db::REFUSALS);
refusals!(PorReferenciaRefusals: &[ErrorCode::PagoNotFound], db::REFUSALS);

/// Charges an amount: `aprobado`, or `rechazado` when asked to fail. A rejection is a
/// payment recorded, not an error. A `referencia` already charged the same way answers
/// that payment.
#[utoipa::path(
    post,
    path = super::PAGAR,
    tag = "pagos",
    request_body = PagarBody,
    responses(
        (status = 201, description = "the payment, `aprobado` or `rechazado`", body = Pago,
            links(("obtener" = (operation_id = "obtener", parameters(("id" = "$response.body#/pago_id")))))),
        PagarRefusals,
    )
)]
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

/// The payment made with a referencia; if none was, the referencia is voided (`anulado`)
/// so that no charge can be made with it any more.
#[utoipa::path(
    post,
    path = super::ANULAR,
    tag = "pagos",
    request_body = ReferenciaBody,
    responses((status = 200, description = "the payment, or the referencia voided", body = Pago), AnularRefusals)
)]
pub async fn anular(pool: web::Data<Pool>, body: Json<ReferenciaBody>) -> Result<HttpResponse, ApiError> {
    void(&pool, body.into_inner(), false).await
}

/// As `POST /anular`, and an approved payment is refunded (`reembolsado`).
#[utoipa::path(
    post,
    path = super::REEMBOLSAR,
    tag = "pagos",
    request_body = ReferenciaBody,
    responses((status = 200, description = "the payment, or the referencia voided", body = Pago), AnularRefusals)
)]
pub async fn reembolsar(pool: web::Data<Pool>, body: Json<ReferenciaBody>) -> Result<HttpResponse, ApiError> {
    void(&pool, body.into_inner(), true).await
}

/// A page of the payments, by id.
#[utoipa::path(
    get,
    path = super::PAGOS,
    tag = "pagos",
    params(Page),
    responses((status = 200, description = "the payments", body = Vec<Pago>), ListarRefusals)
)]
pub async fn listar(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.bounds()?;
    let pagos = run_blocking(&pool, move |conn| Ok(repo::list(conn, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(pagos))
}

/// One payment.
#[utoipa::path(
    get,
    path = super::PAGO,
    tag = "pagos",
    params(IdPath),
    responses((status = 200, description = "the payment", body = Pago), ObtenerRefusals)
)]
pub async fn obtener(pool: web::Data<Pool>, path: web::Path<IdPath>) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&path.id, "id", ErrorCode::PagoNotFound, "pago")?;
    let pago = run_blocking(&pool, move |conn| Ok(repo::get(conn, id)?)).await?;
    pago.map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| ApiError::new(ErrorCode::PagoNotFound, format!("there is no pago {id}")))
}

/// The payment made with a referencia.
#[utoipa::path(
    get,
    path = super::PAGO_POR_REFERENCIA,
    tag = "pagos",
    params(ReferenciaPath),
    responses((status = 200, description = "the payment", body = Pago), PorReferenciaRefusals)
)]
pub async fn por_referencia(
    pool: web::Data<Pool>,
    path: web::Path<ReferenciaPath>,
) -> Result<HttpResponse, ApiError> {
    let referencia = path.into_inner().referencia;
    let buscada = referencia.clone();
    let pago = run_blocking(&pool, move |conn| Ok(repo::by_referencia(conn, &buscada)?)).await?;
    pago.map(|p| HttpResponse::Ok().json(p)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::PagoNotFound,
            format!("there is no pago with referencia {referencia:?}"),
        )
    })
}
