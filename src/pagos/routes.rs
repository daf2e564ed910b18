//! Handlers of pagos.

use actix_web::{HttpResponse, web};

use super::model::{Charge, PagarBody, Pago, ReferenciaBody, ReferenciaPath};
use super::repo;
use crate::db::{self, Pool, run_blocking, run_write};
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, IdPath};
use crate::json::{self, Json};
use crate::openapi::refusals;
use crate::pagination::Page;
use crate::secuencia::{
    self, Cambios, CambiosDeRefusals, CambiosQuery, CambiosRefusals, ClavePath, SequenceState, Visto,
};

refusals!(
    PagarRefusals: json::REFUSALS, db::WRITE_REFUSALS, Visto::REFUSALS,
    &[ErrorCode::ReferenciaInUse, ErrorCode::ReferenciaVoid]
);
refusals!(AnularRefusals: json::REFUSALS, db::WRITE_REFUSALS, Visto::REFUSALS);
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
    params(Visto),
    request_body = PagarBody,
    responses(
        (status = 201, description = "the payment, `aprobado` or `rechazado`", body = Pago,
            links(("obtener" = (operation_id = "obtener", parameters(("id" = "$response.body#/pago_id")))))),
        PagarRefusals,
    )
)]
pub async fn pagar(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<PagarBody>,
) -> Result<HttpResponse, ApiError> {
    let visto = query.parse()?;
    let charge = Charge::parse(body.into_inner())?;
    let pago = run_write(&pool, move |conn| Ok(repo::charge(conn, charge, visto)?)).await?;
    Ok(HttpResponse::Created().json(pago))
}

async fn void(
    pool: &Pool,
    query: &Visto,
    body: ReferenciaBody,
    refund: bool,
) -> Result<HttpResponse, ApiError> {
    let visto = query.parse()?;
    let referencia = input::text("referencia", &body.referencia)?;
    let pago = run_write(pool, move |conn| {
        Ok(repo::void(conn, &referencia, refund, visto)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(pago))
}

/// The payment made with a referencia; if none was, the referencia is voided (`anulado`)
/// so that no charge can be made with it any more.
#[utoipa::path(
    post,
    path = super::ANULAR,
    tag = "pagos",
    params(Visto),
    request_body = ReferenciaBody,
    responses((status = 200, description = "the payment, or the referencia voided", body = Pago), AnularRefusals)
)]
pub async fn anular(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<ReferenciaBody>,
) -> Result<HttpResponse, ApiError> {
    void(&pool, &query, body.into_inner(), false).await
}

/// As `POST /anular`, and an approved payment is refunded (`reembolsado`).
#[utoipa::path(
    post,
    path = super::REEMBOLSAR,
    tag = "pagos",
    params(Visto),
    request_body = ReferenciaBody,
    responses((status = 200, description = "the payment, or the referencia voided", body = Pago), AnularRefusals)
)]
pub async fn reembolsar(
    pool: web::Data<Pool>,
    query: web::Query<Visto>,
    body: Json<ReferenciaBody>,
) -> Result<HttpResponse, ApiError> {
    void(&pool, &query, body.into_inner(), true).await
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
    let page = page.bounds()?;
    let pagos = run_blocking(&pool, move |conn| Ok(repo::list(conn, page)?)).await?;
    Ok(page.answer(super::PAGOS, &pagos, |p| p.pago_id))
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

/// What `GET /cambios` answers: the number of the last change made here, and the payments.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CambiosPagos {
    #[serde(flatten)]
    sequence: SequenceState,
    pagos: Vec<Pago>,
}

/// The payments whose referencia starts with `prefijo` that changed after the change
/// numbered `desde`, oldest change first.
/// pedidos reads it to learn of orders it lost (a restore of its own database).
#[utoipa::path(
    get,
    path = crate::secuencia::CAMBIOS,
    tag = "pagos",
    params(CambiosQuery),
    responses((status = 200, description = "the last change's number, and the payments", body = CambiosPagos), CambiosRefusals)
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
    tag = "pagos",
    params(ClavePath),
    responses((status = 200, description = "the last change's number, and what was made with the key", body = CambiosPagos), CambiosDeRefusals)
)]
pub async fn cambios_de(pool: web::Data<Pool>, path: web::Path<ClavePath>) -> Result<HttpResponse, ApiError> {
    listed(&pool, path.parse()?).await
}

async fn listed(pool: &Pool, cambios: Cambios) -> Result<HttpResponse, ApiError> {
    secuencia::listed(pool, cambios, |conn, sequence, cambios| {
        let pagos = match cambios {
            Cambios::After {
                prefijo,
                desde,
                limit,
            } => repo::changed_after(conn, &prefijo, desde, limit)?,
            Cambios::Key(clave) => repo::by_referencia(conn, &clave)?.into_iter().collect(),
        };
        Ok(CambiosPagos { sequence, pagos })
    })
    .await
}
