//! Handlers of pedidos.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::clients::Peers;
use super::model::{NuevoPedido, Pedido, PedidoBody};
use super::{repo, saga};
use crate::db::{Page, Pool, run_blocking};
use crate::error::ApiError;

/// A failed order: the error's code and sentence beside the order as recorded.
#[derive(Serialize)]
struct PedidoFallido<'a> {
    error: &'static str,
    detail: &'a str,
    #[serde(flatten)]
    pedido: &'a Pedido,
}

pub async fn crear(
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    body: web::Json<PedidoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NuevoPedido::parse(body.into_inner())?;
    let recorded = nuevo.clone();
    let mut pedido = run_blocking(&pool, move |conn| Ok(repo::create(conn, &recorded)?)).await?;
    let outcome = saga::place(&peers, &mut pedido, &nuevo).await;
    let pedido = run_blocking(&pool, move |conn| {
        repo::finish(conn, &pedido)?;
        Ok(pedido)
    })
    .await?;
    let location = (header::LOCATION, format!("/pedidos/{}", pedido.id));
    match outcome {
        Ok(()) => Ok(HttpResponse::Created().insert_header(location).json(pedido)),
        Err(fallo) => {
            let mut response = HttpResponse::build(fallo.status);
            response.insert_header(location);
            if let Some(seconds) = fallo.retry_after {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            Ok(response.json(PedidoFallido {
                error: fallo.code,
                detail: &fallo.detail,
                pedido: &pedido,
            }))
        }
    }
}

pub async fn listar(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let (limit, offset) = page.bounds()?;
    let pedidos = run_blocking(&pool, move |conn| Ok(repo::list(conn, limit, offset)?)).await?;
    Ok(HttpResponse::Ok().json(pedidos))
}

pub async fn obtener(pool: web::Data<Pool>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let pedido = run_blocking(&pool, move |conn| Ok(repo::get(conn, id)?)).await?;
    pedido
        .map(|p| HttpResponse::Ok().json(p))
        .ok_or_else(|| ApiError::not_found("pedido_not_found", format!("there is no pedido {id}")))
}
