//! Handlers of pedidos.

use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::clients::Peers;
use super::model::{NuevoPedido, Pedido, PedidoBody};
use super::recovery::Instancia;
use super::repo::{self, Alta};
use super::saga::{self, Contexto};
use crate::db::{Page, Pool, run_blocking, run_write};
use crate::error::ApiError;
use crate::input;
use crate::json::Json;

/// How long a retried request waits for the first one with its key to finish.
const REPLAY_WAIT: Duration = Duration::from_secs(30);

/// A failed order: the error's code and sentence beside the order as recorded.
#[derive(Serialize)]
struct PedidoFallido<'a> {
    error: &'a str,
    detail: &'a str,
    #[serde(flatten)]
    pedido: &'a Pedido,
}

/// The answer an order was given, rebuilt from what is recorded of it.
fn respond(pedido: &Pedido, retry_after: Option<u64>) -> HttpResponse {
    let status = pedido
        .respuesta
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::CREATED);
    let mut response = HttpResponse::build(status);
    response.insert_header((header::LOCATION, format!("/pedidos/{}", pedido.id)));
    if status.is_success() {
        return response.json(pedido);
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, retry_after.unwrap_or(1).to_string()));
    }
    response.json(PedidoFallido {
        error: pedido.error.as_deref().unwrap_or("pedido_failed"),
        detail: pedido.motivo.as_deref().unwrap_or_default(),
        pedido,
    })
}

pub async fn crear(
    req: HttpRequest,
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    instancia: web::Data<Instancia>,
    body: Json<PedidoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NuevoPedido::parse(body.into_inner())?;
    let clave = input::idempotency_key(&req)?;
    let (alta, nuevo) = run_write(&pool, move |conn| {
        Ok((repo::create(conn, &nuevo, clave.as_deref())?, nuevo))
    })
    .await?;
    let mut pedido = match alta {
        Alta::Nuevo(pedido) => pedido,
        Alta::Repetido(id) => return replay(&pool, id).await,
        Alta::ClaveEnUso => {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different order",
            ));
        }
    };
    let _running = instancia.begin(pedido.id);
    let ctx = Contexto {
        peers: &peers,
        pool: &pool,
        prefijo: &instancia.prefijo,
    };
    let outcome = saga::place(&ctx, &mut pedido, &nuevo).await?;
    Ok(respond(&pedido, outcome.err().and_then(|f| f.retry_after)))
}

/// A request with a key already used for the same order: the answer that order got,
/// waiting for it if the first request is still running.
async fn replay(pool: &Pool, id: i64) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        let pedido = run_blocking(pool, move |conn| Ok(repo::get(conn, id)?))
            .await?
            .ok_or_else(|| ApiError::internal(format!("idempotency key names missing pedido {id}")))?;
        if pedido.respuesta.is_some() {
            return Ok(respond(&pedido, None));
        }
        if started.elapsed() >= REPLAY_WAIT {
            return Err(ApiError::conflict(
                "idempotency_in_progress",
                format!("pedido {id} for this Idempotency-Key is still being placed; try again"),
            ));
        }
        actix_web::rt::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
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
