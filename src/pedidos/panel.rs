//! The status page. `GET /panel` is one page for a person (no token: it holds no data)
//! that asks for the token once and then shows, every few seconds, what
//! `GET /panel/estado` answers (token): each service's readiness, each peer's circuit
//! and its next trial, the last orders, the orders of the last minute by estado and
//! every product's units. Scripts can read `GET /panel/estado` too.
//!
//! Its keys follow one rule: the panel's own are Spanish, as the shop's JSON is
//! (`servicios`, `circuitos`, `ultimo_minuto`, ...); a service's or a circuit's entry
//! repeats what that service's `GET /ready` answers, with `/ready`'s keys (`service`,
//! `ready`, `version`, `schema_version`, `detail`; `circuit`, `retry_in_ms`, and
//! `retry_at` beside it).
//!
//! Reading a peer's state is not using it: those calls are made once, with a short
//! timeout, outside the breakers and the peer call metrics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::answers::{ErrorAnswer, ProductoAnswer, ReadyAnswer, StockAnswer};
use super::breaker::{Breakers, CircuitStatus};
use super::clients::Peers;
use super::instance::Instance;
use super::model::Ledger;
use super::model::{EstadoPedido, PedidoView};
use super::repo;
use crate::clock;
use crate::db::{self, Pool, run_blocking};
use crate::error::ApiError;
use crate::money::Money;
use crate::openapi::refusals;
use crate::service::Service;

const PAGE: &str = include_str!("panel.html");

/// How many of the last orders the panel shows.
const LAST_ORDERS: i64 = 20;
/// How many products the panel shows (the first, by id), and the rows of one page of stock.
const PRODUCTS: usize = 1000;
/// The most pages of stock rows read to reach the last product shown.
const STOCK_PAGES: usize = 5;
/// How long the panel waits for its peers' answers: less than its refresh.
const PEEK_LIMIT: Duration = Duration::from_millis(1500);
/// The largest `/ready` answer read.
const MAX_READY_BODY: usize = 16 * 1024;
/// The largest list read: 1000 products with the longest names fit.
const MAX_LIST_BODY: usize = 4 * 1024 * 1024;

refusals!(EstadoRefusals: db::REFUSALS);

/// What the panel shows, as of `generado_en`.
#[derive(Serialize, ToSchema)]
pub struct Panel<'a> {
    /// When this answer was made (UTC).
    generado_en: String,
    /// pedidos, then its peers as pedidos reaches them.
    servicios: Vec<ServiceStatus>,
    /// Each peer's circuit breaker at pedidos.
    circuitos: Vec<PeerCircuit>,
    /// The last 20 orders, newest first.
    pedidos: Vec<PedidoView<'a>>,
    /// Orders placed in the last minute, by their estado now.
    ultimo_minuto: LastMinute,
    /// The first 1000 products by id, with their units at inventario; `null` when
    /// productos gave no readable list (no answer, not `2xx`, unreadable or beyond
    /// 4 MiB): `productos_detalle` says why.
    productos: Option<Vec<ProductRow>>,
    /// Why `productos`, or some or all of their units, are missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    productos_detalle: Option<String>,
    /// What this pedidos healed after a restore since it started.
    restauracion: RestoreStatus,
}

/// Healing after a restore of one service from an older copy, since pedidos started.
#[derive(Serialize, ToSchema)]
struct RestoreStatus {
    /// The peers found restored behind pedidos and being healed now: orders that need
    /// them fail at once until they are.
    sanando: Vec<&'static str>,
    /// Orders re-asserted at a restored peer.
    reafirmados: u64,
    /// Orders a restored peer refused to hold again: the log names each; a person must look.
    sin_sanar: u64,
    /// Orders this database had lost and learned back from its peers.
    traidos: u64,
}

fn restore_status(instance: &Instance) -> RestoreStatus {
    let metrics = &instance.metrics;
    let count = |outcome: &str| {
        Ledger::BOTH
            .iter()
            .map(|l| {
                metrics
                    .reasserted
                    .with_label_values(&[<&str>::from(*l), outcome])
                    .get()
            })
            .sum()
    };
    RestoreStatus {
        sanando: Ledger::BOTH
            .into_iter()
            .filter(|l| instance.healing.is_stale(*l))
            .map(<&str>::from)
            .collect(),
        reafirmados: count("healed"),
        sin_sanar: count("unhealed"),
        traidos: metrics.brought_back.get(),
    }
}

/// One service's readiness, as its `GET /ready` answered.
#[derive(Serialize, ToSchema)]
struct ServiceStatus {
    /// `productos`, `inventario`, `pagos` or `pedidos`.
    service: &'static str,
    /// Where pedidos reaches it (peers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    /// Whether it answered `200` to `GET /ready`.
    ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<u64>,
    /// Why it is not ready: its own `not_ready` detail, or why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// One peer's circuit breaker.
#[derive(Serialize, ToSchema)]
struct PeerCircuit {
    peer: &'static str,
    #[serde(flatten)]
    status: CircuitStatus,
    /// While open: when that trial may go (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at: Option<String>,
}

/// Orders placed in the last minute, by estado.
#[derive(Serialize, ToSchema, Default)]
struct LastMinute {
    pendiente: u64,
    confirmado: u64,
    rechazado: u64,
    fallido: u64,
}

/// A product and its units: `disponible` can still be reserved, `reservado` is held,
/// `confirmado` has been sold. The units are `null` for a product without stock, or
/// when inventario did not answer.
#[derive(Serialize, ToSchema)]
struct ProductRow {
    id: i64,
    nombre: String,
    precio: Money,
    disponible: Option<i64>,
    reservado: Option<i64>,
    confirmado: Option<i64>,
}

/// The status page: HTML, CSS and a small script, with no data in it and nothing
/// loaded from elsewhere. It asks for the token and keeps it in the tab's session
/// storage.
#[utoipa::path(
    get,
    path = super::PANEL,
    tag = "public",
    responses((status = 200, description = "an HTML page", content_type = "text/html", body = String))
)]
pub async fn pagina() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // The page may talk to this service only, and loads no code or style from anywhere.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; \
             style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
        ))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(PAGE)
}

/// What the status page shows: each service's readiness and version, each peer's
/// circuit and its next trial, the last 20 orders (with `motivo` and `request_id`),
/// the orders of the last minute by estado, and every product's units.
#[utoipa::path(
    get,
    path = super::PANEL_ESTADO,
    tag = "pedidos",
    responses((status = 200, description = "the shop as of `generado_en`", body = Panel), EstadoRefusals)
)]
pub async fn estado(
    pool: web::Data<Pool>,
    peers: web::Data<Peers>,
    breakers: web::Data<Breakers>,
    instance: web::Data<Instance>,
) -> Result<HttpResponse, ApiError> {
    let now = jiff::Timestamp::now();
    let since = clock::stored(now - jiff::SignedDuration::from_secs(60));
    let circuitos = peer_circuits(&breakers, now);
    let deadline = Instant::now() + PEEK_LIMIT;
    let (propio, peers_ready, productos) = tokio::join!(
        pool.ready(),
        futures_util::future::join_all(peers.each().map(|peer| async move {
            ready(
                peer.name(),
                peer.url(),
                peer.peek("/ready", PEEK_LIMIT, MAX_READY_BODY).await,
            )
        })),
        product_rows(&peers, deadline),
    );
    let mut servicios = vec![ServiceStatus {
        service: Service::Pedidos.name(),
        url: None,
        ready: propio.is_ok(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        schema_version: propio.as_ref().ok().map(|v| *v as u64),
        detail: propio.err(),
    }];
    servicios.extend(peers_ready);
    let (productos, productos_detalle) = match productos {
        Ok((productos, detalle)) => (Some(productos), detalle),
        Err(detalle) => (None, Some(detalle)),
    };
    let (pedidos, recientes) = run_blocking(&pool, move |conn| {
        Ok((
            repo::latest(conn, LAST_ORDERS)?,
            repo::counts_since(conn, &since)?,
        ))
    })
    .await?;
    let mut ultimo_minuto = LastMinute::default();
    for (estado, n) in recientes {
        *match estado {
            EstadoPedido::Pendiente => &mut ultimo_minuto.pendiente,
            EstadoPedido::Confirmado => &mut ultimo_minuto.confirmado,
            EstadoPedido::Rechazado => &mut ultimo_minuto.rechazado,
            EstadoPedido::Fallido => &mut ultimo_minuto.fallido,
        } += n;
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Panel {
            generado_en: clock::stored(now),
            servicios,
            circuitos,
            pedidos: pedidos.iter().map(PedidoView::from).collect(),
            ultimo_minuto,
            productos,
            productos_detalle,
            restauracion: restore_status(&instance),
        }))
}

fn peer_circuits(breakers: &Breakers, now: jiff::Timestamp) -> Vec<PeerCircuit> {
    breakers
        .each()
        .into_iter()
        .map(|(peer, breaker)| {
            // Read once, so that `retry_in_ms` and `retry_at` tell the same moment.
            let (circuit, left) = breaker.status();
            PeerCircuit {
                peer,
                status: CircuitStatus::of((circuit, left)),
                retry_at: left
                    .and_then(|l| jiff::SignedDuration::try_from(l).ok())
                    .and_then(|l| now.checked_add(l).ok())
                    .map(clock::stored),
            }
        })
        .collect()
}

/// A peer's readiness from its `GET /ready` answer: ready only when it answered `200`
/// with `"status": "ready"`.
fn ready(
    service: &'static str,
    url: &str,
    answer: Result<(StatusCode, web::Bytes), String>,
) -> ServiceStatus {
    let mut servicio = ServiceStatus {
        service,
        url: Some(url.to_string()),
        ready: false,
        version: None,
        schema_version: None,
        detail: None,
    };
    match answer {
        Ok((status, body)) if status == StatusCode::OK => {
            match serde_json::from_slice::<ReadyAnswer>(&body) {
                Ok(ready) if ready.status == "ready" => {
                    servicio.ready = true;
                    servicio.version = ready.version;
                    servicio.schema_version = ready.schema_version;
                }
                _ => servicio.detail = Some("answered 200 without saying it is ready".into()),
            }
        }
        Ok((status, body)) => {
            let detail = serde_json::from_slice::<ErrorAnswer>(&body)
                .map(|e| e.detail)
                .unwrap_or_default();
            servicio.detail = Some(format!("answered {status} {detail}").trim_end().to_string());
        }
        Err(why) => servicio.detail = Some(why),
    }
    servicio
}

/// Reads a peer's `2xx` JSON answer, or says why there is none.
fn read<T: serde::de::DeserializeOwned>(
    peer: &str,
    answer: Result<(StatusCode, web::Bytes), String>,
) -> Result<T, String> {
    let (status, body) = answer.map_err(|why| format!("{peer}: {why}"))?;
    if !status.is_success() {
        return Err(format!("{peer} answered {status}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{peer}: the answer could not be read: {e}"))
}

/// The first products of the catalog joined with their units, and why some units are
/// missing if they are; `Err` when the products themselves are. inventario's stock rows
/// are read page by page (they may include products since deleted) until they reach
/// the last product shown, or `deadline` passes.
async fn product_rows(peers: &Peers, deadline: Instant) -> Result<(Vec<ProductRow>, Option<String>), String> {
    let [productos, inventario, _] = peers.each();
    let left = || deadline.saturating_duration_since(Instant::now());
    let catalog = productos
        .peek(&format!("/productos?limit={PRODUCTS}"), left(), MAX_LIST_BODY)
        .await;
    let catalog: Vec<ProductoAnswer> = read("productos", catalog)?;
    let last = catalog.iter().map(|p| p.id).max().unwrap_or(0);
    let mut stock: HashMap<i64, StockAnswer> = HashMap::new();
    let mut detalle = None;
    let mut after = 0;
    for page in 0..STOCK_PAGES {
        let path = format!("/stock?limit={PRODUCTS}&after={after}");
        let rows: Vec<StockAnswer> =
            match read("inventario", inventario.peek(&path, left(), MAX_LIST_BODY).await) {
                Ok(rows) => rows,
                Err(why) => {
                    detalle = Some(why);
                    break;
                }
            };
        let full = rows.len() == PRODUCTS;
        let reached = rows.last().is_some_and(|row| row.producto_id >= last);
        after = rows.last().map_or(after, |row| row.producto_id);
        stock.extend(rows.into_iter().map(|s| (s.producto_id, s)));
        if !full || reached {
            break;
        }
        if page + 1 == STOCK_PAGES {
            detalle = Some(format!(
                "inventario: units read for the first {} stock rows only",
                STOCK_PAGES * PRODUCTS
            ));
        }
    }
    let productos = catalog
        .into_iter()
        .map(|p| {
            let units = stock.remove(&p.id);
            ProductRow {
                id: p.id,
                nombre: p.nombre,
                precio: p.precio,
                disponible: units.as_ref().map(|s| s.cantidad),
                reservado: units.as_ref().map(|s| s.reservado),
                confirmado: units.as_ref().map(|s| s.confirmado),
            }
        })
        .collect();
    Ok((productos, detalle))
}
