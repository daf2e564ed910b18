//! pedidos' own, typed view of its peers over HTTP: the prices of an order's products
//! (productos), its lote of reservations (inventario) and its charge (pagos). pedidos
//! knows its peers only through these calls, so each can run on its own host. Every
//! call that changes state names the order's key, so asking twice acts once.
//!
//! Answers are read tolerantly: only the fields the flow uses are required.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::metrics::PedidosMetrics;
use super::model::{Item, Linea};
use super::resilience::{Breakers, CallError, Peer, Refusal};
use crate::config::PeerSettings;
use crate::money::Money;

/// What went wrong with a peer call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// No usable answer: connection errors, timeouts, `5xx`, answers cut short, or an
    /// open circuit.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The peer answered with a `4xx`.
    #[error("{peer} answered {}: {}", .refusal.status, .refusal.detail)]
    Refused { peer: &'static str, refusal: Refusal },
    /// The peer has no such route: another implementation (the original design's
    /// inventario has no lotes), or an older penguin.
    #[error(
        "{peer} does not offer {route}, which penguin's pedidos needs: is it another or an older implementation?"
    )]
    Missing { peer: &'static str, route: String },
}

impl PeerError {
    /// The refusal, if the peer answered with a `4xx`.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            Self::Call(_) | Self::Missing { .. } => None,
        }
    }

    /// Whether the call may have had its effect at the peer: it was sent and no
    /// answer came back.
    pub fn may_have_reached(&self) -> bool {
        matches!(self, Self::Call(CallError::Unavailable { sent: true, .. }))
    }
}

#[derive(Debug, Deserialize)]
struct ProductoAnswer {
    id: i64,
    precio: Money,
}

#[derive(Debug, Serialize)]
struct LoteRequest<'a> {
    clave: &'a str,
    lineas: Vec<Linea>,
}

#[derive(Debug, Serialize)]
struct ClaveRequest<'a> {
    clave: &'a str,
}

/// inventario's answer about an order's lote: the reservation of each line.
#[derive(Debug, Clone, Deserialize)]
pub struct LoteAnswer {
    pub estado: EstadoLote,
    pub reservas: Vec<ReservaAnswer>,
}

/// Whether a lote holds its units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoLote {
    Activa,
    Confirmada,
    Liberada,
    Expirada,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReservaAnswer {
    pub reserva_id: i64,
}

impl LoteAnswer {
    /// The reservation ids, one per line.
    pub fn ids(&self) -> Vec<i64> {
        self.reservas.iter().map(|r| r.reserva_id).collect()
    }
}

/// The charge pedidos asks pagos for.
#[derive(Debug, Serialize)]
pub struct PagarRequest<'a> {
    pub monto: Money,
    pub moneda: &'a str,
    pub medio: &'a str,
    pub referencia: &'a str,
    pub fail: bool,
}

#[derive(Debug, Serialize)]
struct ReferenciaRequest<'a> {
    referencia: &'a str,
}

/// What pagos says a referencia's payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EstadoPago {
    Aprobado,
    Rechazado,
    /// Not a charge: the referencia was voided, so no charge can be made with it.
    Anulado,
    /// An approved charge whose money was given back.
    Reembolsado,
}

/// pagos' answer about a charge. The original design's pagos answers only its estado.
#[derive(Debug, Clone, Deserialize)]
pub struct PagoAnswer {
    #[serde(default)]
    pub pago_id: Option<i64>,
    pub estado: EstadoPago,
}

/// The three peers as one worker reaches them, over one HTTP client.
pub struct Peers {
    productos: Peer,
    inventario: Peer,
    pagos: Peer,
    metrics: Arc<PedidosMetrics>,
}

impl Peers {
    /// Builds the worker's HTTP client (bounded connections and timeouts) around the shared breakers.
    pub fn new(
        settings: &PeerSettings,
        token: &str,
        breakers: &Breakers,
        metrics: &Arc<PedidosMetrics>,
    ) -> Self {
        // Connecting gives up well within the attempt's own timeout, so a peer that
        // cannot be reached is known as one the request never reached.
        let connector = awc::Connector::new()
            .timeout(settings.connect_timeout.min(settings.timeout / 2))
            .limit(settings.max_connections);
        // The whole-attempt timeout (PEER_TIMEOUT_MS) is applied by `resilience` around
        // sending and reading the answer; a second timer inside awc would only add work.
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        let peer = |name, url: &str, breaker| {
            Peer::new(name, url, token, client.clone(), breaker, settings, metrics)
        };
        Self {
            metrics: metrics.clone(),
            productos: peer("productos", &settings.products_url, breakers.productos.clone()),
            inventario: peer("inventario", &settings.inventory_url, breakers.inventario.clone()),
            pagos: peer("pagos", &settings.payments_url, breakers.pagos.clone()),
        }
    }

    /// productos, inventario and pagos, for reads outside the order path (the panel).
    pub fn each(&self) -> [&Peer; 3] {
        [&self.productos, &self.inventario, &self.pagos]
    }

    /// The longest any open circuit still stays open, if one is.
    pub fn retry_after(&self) -> Option<u64> {
        self.each()
            .iter()
            .filter_map(|peer| peer.ensure_available().err())
            .filter_map(|e| match e {
                CallError::CircuitOpen { retry_after, .. } => Some(retry_after.as_secs()),
                CallError::Unavailable { .. } => None,
            })
            .max()
    }

    fn compensating(&self, kind: &str) {
        self.metrics.compensations.with_label_values(&[kind]).inc();
    }
}

/// What the order flow asks of its peers. The real one is [`Peers`], over HTTP; the
/// simulation's is a shop in memory whose peers may lose, cut, duplicate or delay any call.
// The order flow runs on one worker's thread: no Send bound is wanted on these futures.
#[allow(async_fn_in_trait)]
pub trait PeerApi {
    /// Fails at once if a peer's circuit is open: an order needs all three.
    fn ensure_available(&self) -> Result<(), PeerError>;
    /// The current price of each product that exists, by id: one call for a whole order.
    async fn precios(&self, ids: &[i64]) -> Result<HashMap<i64, Money>, PeerError>;
    /// Reserves every line of an order, all or none, at most once for its key.
    async fn reservar(&self, clave: &str, items: &[Item]) -> Result<LoteAnswer, PeerError>;
    /// Confirms an order's lote: its units leave for good. A `409` if it was released.
    async fn confirmar(&self, clave: &str) -> Result<LoteAnswer, PeerError>;
    /// Releases an order's lote; releasing one already released is not an error, and
    /// releasing a key no lote was made with makes sure none will be.
    async fn liberar(&self, clave: &str) -> Result<LoteAnswer, PeerError>;
    /// Charges an order, at most once for its `referencia`.
    async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError>;
    /// The payment made with a `referencia`; if there is none, pagos voids the
    /// referencia so that no charge can be made with it any more (estado `anulado`).
    async fn anular(&self, referencia: &str) -> Result<PagoAnswer, PeerError>;
    /// Makes sure no money is kept for a `referencia`: an approved payment is
    /// refunded (estado `reembolsado`), a referencia never charged is voided.
    async fn reembolsar(&self, referencia: &str) -> Result<PagoAnswer, PeerError>;
}

impl PeerApi for Peers {
    fn ensure_available(&self) -> Result<(), PeerError> {
        for peer in self.each() {
            peer.ensure_available()?;
        }
        Ok(())
    }

    async fn precios(&self, ids: &[i64]) -> Result<HashMap<i64, Money>, PeerError> {
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let path = format!("/productos?ids={list}");
        let productos: Vec<ProductoAnswer> = answer(
            &self.productos,
            &Method::GET,
            "/productos",
            self.productos.call(Method::GET, &path, None).await,
        )?;
        Ok(productos.into_iter().map(|p| (p.id, p.precio)).collect())
    }

    async fn reservar(&self, clave: &str, items: &[Item]) -> Result<LoteAnswer, PeerError> {
        let body = LoteRequest {
            clave,
            lineas: items
                .iter()
                .map(|i| Linea {
                    producto_id: i.producto_id,
                    cantidad: i.cantidad,
                })
                .collect(),
        };
        let lote: LoteAnswer = post(&self.inventario, "/reservas", &body).await?;
        lote_held(self.inventario.name(), clave, lote)
    }

    async fn confirmar(&self, clave: &str) -> Result<LoteAnswer, PeerError> {
        post(&self.inventario, "/reservas/confirmar", &ClaveRequest { clave }).await
    }

    async fn liberar(&self, clave: &str) -> Result<LoteAnswer, PeerError> {
        self.compensating("release");
        post(&self.inventario, "/reservas/liberar", &ClaveRequest { clave }).await
    }

    async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError> {
        post(&self.pagos, "/pagar", request).await
    }

    async fn anular(&self, referencia: &str) -> Result<PagoAnswer, PeerError> {
        self.compensating("void");
        post(&self.pagos, "/anular", &ReferenciaRequest { referencia }).await
    }

    async fn reembolsar(&self, referencia: &str) -> Result<PagoAnswer, PeerError> {
        self.compensating("refund");
        post(&self.pagos, "/reembolsar", &ReferenciaRequest { referencia }).await
    }
}

/// POSTs `body` as JSON and reads the answer as `T`.
async fn post<B: Serialize, T: DeserializeOwned>(peer: &Peer, path: &str, body: &B) -> Result<T, PeerError> {
    // Serialising these plain structs of numbers and strings cannot fail.
    let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    answer(
        peer,
        &Method::POST,
        path,
        peer.call(Method::POST, path, Some(body)).await,
    )
}

/// A peer's answer to `method path`, or why there is none.
fn answer<T>(
    peer: &Peer,
    method: &Method,
    path: &str,
    result: Result<Result<T, Refusal>, CallError>,
) -> Result<T, PeerError> {
    result?.map_err(|refusal| {
        // A penguin service names its refusals; a 404 or 405 without one of its own
        // codes is a route the peer does not have.
        let no_route = matches!(refusal.status.as_u16(), 404 | 405)
            && matches!(
                refusal.code.as_str(),
                "" | "route_not_found" | "method_not_allowed"
            );
        if no_route {
            PeerError::Missing {
                peer: peer.name(),
                route: format!("{method} {path}"),
            }
        } else {
            PeerError::Refused {
                peer: peer.name(),
                refusal,
            }
        }
    })
}

/// A lote inventario answered for a reservation: one asked again after it was
/// released holds nothing, and is read as if inventario had refused it.
pub fn lote_held(peer: &'static str, clave: &str, lote: LoteAnswer) -> Result<LoteAnswer, PeerError> {
    if matches!(lote.estado, EstadoLote::Liberada | EstadoLote::Expirada) {
        return Err(PeerError::Refused {
            peer,
            refusal: Refusal {
                status: StatusCode::CONFLICT,
                code: "reserva_released".into(),
                detail: format!("the lote {clave:?} was released"),
            },
        });
    }
    Ok(lote)
}

/// Whether a refusal is inventario saying an order's lote was released.
pub fn lote_released(refusal: &Refusal) -> bool {
    refusal.status == StatusCode::CONFLICT
        && matches!(refusal.code.as_str(), "reserva_released" | "reserva_not_active")
}
