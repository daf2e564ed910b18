//! Handlers of pedidos. How an order is answered — status, error code, headers — is
//! decided here, from its stage, in one place: [`respond`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::{RefOr, Response};
use utoipa::{IntoResponses, ToSchema};

use super::clients::Peers;
use super::instance::Instance;
use super::model::{NewPedido, Pedido, PedidoBody, PedidoView};
use super::repo::{self, Placement};
use super::saga::{self, SagaContext, Store};
use crate::db::{self, Pool, run_blocking};
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, IdPath, schema::IdempotencyKey};
use crate::json::{self, Json};
use crate::openapi::{self, refusals};
use crate::pagination::Page;
use crate::trace;

/// How long a retried request waits for the driver of its order to let go of it.
const REPLAY_WAIT: Duration = Duration::from_secs(30);

/// A failed order: the error's code and sentence beside the order as recorded.
#[derive(Serialize, ToSchema)]
pub struct PedidoFallido<'a> {
    #[schema(value_type = ErrorCode)]
    error: &'static str,
    detail: String,
    #[serde(flatten)]
    pedido: PedidoView<'a>,
}

/// The codes an order that was recorded and did not succeed is answered with, beside
/// the order ([`answer_of`]).
const ORDER_FAILURES: &[ErrorCode] = &[
    ErrorCode::PaymentRejected,
    ErrorCode::ProductoNotFound,
    ErrorCode::TotalTooLarge,
    ErrorCode::InsufficientStock,
    ErrorCode::ReservaReleased,
    ErrorCode::PeerError,
    ErrorCode::PeerUnavailable,
    ErrorCode::Interrupted,
];

/// The refusals of `POST /pedidos`: an order refused before it was recorded answers with
/// an error; one recorded that did not succeed, with the order beside its error.
pub struct CrearRefusals;

impl IntoResponses for CrearRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let refused = [
            json::REFUSALS,
            db::REFUSALS,
            db::WRITE_REFUSALS,
            &[
                // An id too large for any product, in the body.
                ErrorCode::ProductoNotFound,
                ErrorCode::InvalidKey,
                ErrorCode::IdempotencyKeyReused,
                ErrorCode::IdempotencyInProgress,
            ],
        ]
        .concat();
        openapi::responses_for(&refused, Some((ORDER_FAILURES, "PedidoFallido")))
    }
}

refusals!(ListarRefusals: Page::REFUSALS, db::REFUSALS);
refusals!(ObtenerRefusals: IdPath::REFUSALS, &[ErrorCode::PedidoNotFound], db::REFUSALS);

/// The answer an order gets, whether to the request that placed it or to a retry.
fn respond(pedido: &Pedido, peers: &Peers) -> HttpResponse {
    let (status, error) = pedido.etapa.answer();
    let mut response = HttpResponse::build(status);
    response.insert_header((header::LOCATION, format!("/pedidos/{}", pedido.id)));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let retry_after = peers.retry_after().unwrap_or(1);
        response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
    }
    let vista = PedidoView::from(pedido);
    match error {
        None => response.json(vista),
        Some(error) => response.json(PedidoFallido {
            error: error.as_str(),
            detail: vista.motivo().unwrap_or_default().to_string(),
            pedido: vista,
        }),
    }
}

/// How long a new order waits, right after pedidos starts, for the orders a restore
/// lost to be learned back from its peers; then it goes on regardless.
const LEARNING_WAIT: Duration = Duration::from_secs(3);
const LEARNING_POLL: Duration = Duration::from_millis(10);

/// Places an order: prices its lines at productos, reserves them at inventario, charges
/// the total at pagos and confirms the units; or releases what it reserved and keeps the
/// order as `rechazado` or `fallido`.
#[utoipa::path(
    post,
    path = super::PEDIDOS,
    tag = "pedidos",
    params(IdempotencyKey),
    request_body = PedidoBody,
    responses(
        (status = 201, description = "the order, `confirmado`", body = PedidoView,
            headers(("Location" = String, description = "`/pedidos/{id}`")),
            links(("obtener" = (operation_id = "obtener", parameters(("id" = "$response.body#/id")))))),
        (status = 202, description = "the order, `pendiente`: charged, its units not yet \
            confirmed; poll its `Location`", body = PedidoView,
            headers(("Location" = String, description = "`/pedidos/{id}`"))),
        CrearRefusals,
    )
)]
pub async fn crear(
    req: HttpRequest,
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    instance: web::Data<Instance>,
    body: Json<PedidoBody>,
) -> Result<HttpResponse, ApiError> {
    let nuevo = NewPedido::parse(body.into_inner())?;
    let clave = input::idempotency_key(&req)?;
    // Right after a start, the orders a restore of this database lost are learned back
    // first, under the ids they had: a new order must not take one of them. (Once: if
    // a peer cannot be asked, orders go on, and a lost order comes back under a new id.)
    let mut waited = Duration::ZERO;
    while !instance.healing.tried() && waited < LEARNING_WAIT {
        actix_web::rt::time::sleep(LEARNING_POLL).await;
        waited += LEARNING_POLL;
    }
    // The order is placed by a task of its own, which goes on if this request is
    // dropped (its client hangs up, or it times out): it holds the order's turn until
    // what it found is written, so recovery never drives the order on a stale copy.
    let placing = {
        let (pool, peers, instance) = (pool.clone(), peers.clone(), instance.clone());
        let work = async move {
            let ctx = SagaContext {
                peers: &**peers,
                store: &**pool,
                instance: &instance,
            };
            saga::place(&ctx, nuevo, clave).await
        };
        match trace::current() {
            Some(trace) => actix_web::rt::spawn(trace.scope(work)),
            None => actix_web::rt::spawn(work),
        }
    };
    let placement = placing.await.map_err(ApiError::internal)??;
    let ctx = SagaContext {
        peers: &**peers,
        store: &**pool,
        instance: &instance,
    };
    match placement {
        Placement::New(pedido) => Ok(respond(&pedido, &peers)),
        Placement::Repeat(id) => replay(&ctx, id).await,
        Placement::KeyInUse => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different order",
        )),
    }
}

/// A request with a key already used for the same order: that order's answer, once
/// no one is moving it on any more (the first request, or recovery).
async fn replay(ctx: &SagaContext<'_>, id: i64) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        // Read once no one drives it: what is read then is its answer.
        if !ctx.instance.in_progress.is_driven(id) {
            let pedido = ctx.store.load(id).await?.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("idempotency key names missing pedido {id}"))
            })?;
            return Ok(respond(&pedido, ctx.peers));
        }
        if started.elapsed() >= REPLAY_WAIT {
            return Err(ApiError::new(
                ErrorCode::IdempotencyInProgress,
                format!("pedido {id} for this Idempotency-Key is still being placed; try again"),
            ));
        }
        actix_web::rt::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A page of the orders, by id.
#[utoipa::path(
    get,
    path = super::PEDIDOS,
    tag = "pedidos",
    params(Page),
    responses((status = 200, description = "the orders", body = Vec<PedidoView>), ListarRefusals)
)]
pub async fn listar(pool: web::Data<Pool>, page: web::Query<Page>) -> Result<HttpResponse, ApiError> {
    let page = page.bounds()?;
    let pedidos = run_blocking(&pool, move |conn| Ok(repo::list(conn, page)?)).await?;
    let vistas: Vec<_> = pedidos.iter().map(PedidoView::from).collect();
    Ok(page.answer(super::PEDIDOS, &vistas, |p| p.id))
}

/// One order, as it stands.
#[utoipa::path(
    get,
    path = super::PEDIDO,
    tag = "pedidos",
    params(IdPath),
    responses((status = 200, description = "the order", body = PedidoView), ObtenerRefusals)
)]
pub async fn obtener(pool: web::Data<Pool>, path: web::Path<IdPath>) -> Result<HttpResponse, ApiError> {
    let id = input::path_id(&path.id, "id", ErrorCode::PedidoNotFound, "pedido")?;
    let pedido = run_blocking(&pool, move |conn| Ok(repo::get(conn, id)?)).await?;
    pedido
        .map(|p| HttpResponse::Ok().json(PedidoView::from(&p)))
        .ok_or_else(|| ApiError::new(ErrorCode::PedidoNotFound, format!("there is no pedido {id}")))
}
