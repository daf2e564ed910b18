//! Handlers of pagos.

use actix_web::{HttpResponse, web};

use super::model::{Cobro, PagarBody};
use super::repo;
use crate::db::{Pool, run_blocking};
use crate::error::ApiError;

pub async fn pagar(pool: web::Data<Pool>, body: web::Json<PagarBody>) -> Result<HttpResponse, ApiError> {
    let cobro = Cobro::parse(body.into_inner())?;
    let pago = run_blocking(&pool, move |conn| Ok(repo::insert(conn, cobro)?)).await?;
    Ok(HttpResponse::Created().json(pago))
}
