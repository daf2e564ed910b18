//! pedidos' own, typed view of its peers over HTTP: the prices of an order's products
//! (productos), its lote of reservations (inventario) and its charge (pagos). pedidos
//! knows its peers only through these calls, so each can run on its own host. Every
//! call that changes state names the order's key, so asking twice acts once.
//!
//! Answers are read tolerantly: only the fields the flow uses are required.
//!
//! An inventario without lotes (the Flask demo's of `design-es.md`, which answers
//! `POST /reservas` with a `404` or `405` and none of penguin's error codes) is reached line
//! by line behind the same methods: one `POST /reservar` per line (the lines already
//! reserved are released if a later one is refused), one `POST /liberar` per
//! reservation, and no confirmation, since a reservation there is final once the order
//! is paid (`POST /confirmar` is asked once per order, which the original answers
//! `404`). Which lotes were reserved that way, and that this inventario lacks the lote
//! routes, is kept in a [`LineByLine`] that every worker shares; the latter is
//! forgotten after [`RECHECK`], or at once when a call to inventario cannot connect or
//! it confirms a reservation (it restarted, perhaps as penguin's), so the lote routes
//! are tried again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::answers::{
    EstadoLote, LoteAnswer, LotesListed, PagoAnswer, PagosListed, PeerCode, ProductoAnswer, ReservaAnswer,
};
use super::breaker::Breakers;
use super::metrics::PedidosMetrics;
use super::model::Ledger;
use super::model::{Item, Linea};
use super::peer::{CallError, Peer, Refusal};
use crate::config::PeerSettings;
use crate::error::ErrorCode;
use crate::money::Money;
use crate::secuencia::{Cambios, Secuencia};

const LOG_TARGET: &str = "pedidos";

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
    /// The peer has no such route: another implementation (the Flask demo's
    /// inventario has no lotes), or an older penguin.
    #[error(
        "{peer} does not offer {route}, which penguin's pedidos needs: is it another or an older implementation?"
    )]
    Missing { peer: &'static str, route: String },
    /// The peer's database is an older copy than pedidos has seen (`409 stale_copy`):
    /// it changed nothing, and waits for pedidos to heal it.
    #[error("{peer} was restored from an older copy of its database: {detail}")]
    Stale { peer: &'static str, detail: String },
}

impl PeerError {
    /// The refusal, if the peer answered with a `4xx`.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { refusal, .. } => Some(refusal),
            Self::Call(_) | Self::Missing { .. } | Self::Stale { .. } => None,
        }
    }

    /// Whether the call may have had its effect at the peer: it was sent and no
    /// answer came back.
    pub fn may_have_reached(&self) -> bool {
        matches!(self, Self::Call(CallError::Unavailable { sent: true, .. }))
    }
}

#[derive(Debug, Serialize)]
struct LoteRequest<'a> {
    clave: &'a str,
    lineas: &'a [Linea],
}

#[derive(Debug, Serialize)]
struct ClaveRequest<'a> {
    clave: &'a str,
}

/// How long pedidos takes it that inventario lacks the lote routes before it tries
/// them again.
pub const RECHECK: Duration = Duration::from_secs(60);

/// What every worker of one pedidos knows of an inventario without lotes: since when
/// it is known to lack the lote routes, and the reservation of each line of the lotes
/// reserved there line by line, by key, until they are confirmed or released. Kept in
/// memory only: a pedidos that restarts knows none of them.
#[derive(Debug, Default)]
pub struct LineByLine(Mutex<Learned>);

#[derive(Debug, Default)]
struct Learned {
    without_lotes_since: Option<Instant>,
    lotes: HashMap<String, Vec<i64>>,
}

impl LineByLine {
    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether inventario is known, since less than [`RECHECK`], to lack the lote routes.
    fn without_lotes(&self) -> bool {
        self.learned()
            .without_lotes_since
            .is_some_and(|since| since.elapsed() < RECHECK)
    }

    /// Notes that inventario lacks the lote routes; says so in the log when it is news.
    fn lacks_lotes(&self) {
        let news = self
            .learned()
            .without_lotes_since
            .replace(Instant::now())
            .is_none();
        if news {
            log::warn!(
                target: LOG_TARGET,
                "inventario offers no lotes (POST /reservas): reserving line by line, as with the \
                 Flask demo's inventario; reservations there never expire"
            );
        }
    }

    /// Forgets that inventario lacks the lote routes, `because` it may have restarted
    /// as another implementation.
    fn forget_routes(&self, because: &str) {
        if self.learned().without_lotes_since.take().is_some() {
            log::info!(target: LOG_TARGET, "inventario's lote routes are tried again: {because}");
        }
    }

    fn held(&self, clave: &str) -> Option<Vec<i64>> {
        self.learned().lotes.get(clave).cloned()
    }

    fn hold(&self, clave: &str, ids: Vec<i64>) {
        self.learned().lotes.insert(clave.to_string(), ids);
    }

    fn take(&self, clave: &str) -> Option<Vec<i64>> {
        self.learned().lotes.remove(clave)
    }
}

#[derive(Debug, Serialize)]
struct ReservaRequest {
    reserva_id: i64,
}

/// The charge pedidos asks pagos for.
#[derive(Debug, Serialize)]
pub struct PagarRequest<'a> {
    pub monto: Money,
    pub moneda: &'a str,
    pub medio: &'a str,
    pub referencia: &'a str,
    pub fail: bool,
    /// Sent as `?visto=`: see `secuencia`.
    #[serde(skip)]
    pub visto: Option<i64>,
}

#[derive(Debug, Serialize)]
struct ReferenciaRequest<'a> {
    referencia: &'a str,
}

/// `path` asking for a numbered change (`?visto=`), if pedidos numbers it.
fn fenced(path: &str, visto: Option<i64>) -> String {
    match visto {
        Some(visto) => format!("{path}?visto={visto}"),
        None => path.to_string(),
    }
}

/// The query of `GET /cambios`.
fn cambios_path(cambios: &Cambios) -> String {
    match cambios {
        Cambios::After {
            prefijo,
            desde,
            limit,
        } => {
            format!("/cambios?prefijo={prefijo}&desde={desde}&limit={limit}")
        }
        Cambios::Key(clave) => format!("/cambios/{clave}"),
    }
}

/// The three peers as one worker reaches them, over one HTTP client.
pub struct Peers {
    productos: Peer,
    inventario: Peer,
    pagos: Peer,
    line_by_line: Arc<LineByLine>,
    metrics: Arc<PedidosMetrics>,
}

impl Peers {
    /// Builds the worker's HTTP client (bounded connections and timeouts) around the
    /// shared breakers and what is known of an inventario without lotes.
    pub fn new(
        settings: &PeerSettings,
        token: &str,
        breakers: &Breakers,
        line_by_line: &Arc<LineByLine>,
        metrics: &Arc<PedidosMetrics>,
    ) -> Self {
        // Connecting gives up well within the attempt's own timeout, so a peer that
        // cannot be reached is known as one the request never reached.
        let connector = awc::Connector::new()
            .timeout(settings.connect_timeout.min(settings.timeout / 2))
            .limit(settings.max_connections);
        // The whole-attempt timeout (PEER_TIMEOUT_MS) is applied by `peer` around
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
            line_by_line: line_by_line.clone(),
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

    /// `POST /anular` or `POST /reembolsar` (`path`) for a referencia, counted as a
    /// compensation of `kind`.
    async fn undo_charge(
        &self,
        kind: &str,
        path: &str,
        referencia: &str,
        visto: Option<i64>,
    ) -> Result<PagoAnswer, PeerError> {
        self.compensating(kind);
        let body = ReferenciaRequest { referencia };
        post(&self.pagos, &fenced(path, visto), &body).await
    }

    /// One `POST /reservar` per line. A line refused releases the lines reserved
    /// before it, so the order holds nothing, as with a lote; if they cannot be
    /// released now, the error says the call may have reached inventario, so the
    /// order owes their release (`liberar`).
    async fn reservar_line_by_line(&self, clave: &str, lineas: &[Linea]) -> Result<LoteAnswer, PeerError> {
        let mut ids = Vec::with_capacity(lineas.len());
        for linea in lineas {
            let error = match self.at_inventario::<ReservaAnswer>("/reservar", linea).await {
                Ok(reserva) => {
                    ids.push(reserva.reserva_id);
                    continue;
                }
                Err(e) => stock_refusal(e),
            };
            if ids.is_empty() {
                return Err(error);
            }
            self.line_by_line.hold(clave, ids);
            return match self.release_lines(clave).await {
                Ok(_) => Err(error),
                Err(release) => Err(PeerError::Call(CallError::Unavailable {
                    peer: self.inventario.name(),
                    cause: format!("{error}; the lines reserved before it are not released yet: {release}"),
                    sent: true,
                })),
            };
        }
        self.line_by_line.hold(clave, ids.clone());
        Ok(LoteAnswer::line_by_line(EstadoLote::Activa, &ids))
    }

    /// Releases the reservations of a lote reserved line by line, one `POST /liberar`
    /// each. Those not released because inventario did not answer stay held, for the
    /// next try; a reservation inventario refuses to release (unknown to it, released
    /// already) has nothing left to release.
    async fn release_lines(&self, clave: &str) -> Result<Vec<i64>, PeerError> {
        let ids = self.line_by_line.take(clave).unwrap_or_default();
        for (done, &reserva_id) in ids.iter().enumerate() {
            match self
                .at_inventario::<IgnoredAny>("/liberar", &ReservaRequest { reserva_id })
                .await
            {
                Ok(_) => {}
                Err(e @ (PeerError::Refused { .. } | PeerError::Missing { .. })) => {
                    log::warn!(target: LOG_TARGET, "lote {clave}: reserva {reserva_id} not released: {e}");
                }
                Err(e) => {
                    self.line_by_line.hold(clave, ids[done..].to_vec());
                    return Err(e);
                }
            }
        }
        Ok(ids)
    }

    /// POSTs the lote `clave` to `path`; at an inventario without lotes (known, or
    /// learned by this call), a lote in `estado` with no reservation: none is held
    /// there under the key.
    async fn lote_or_none(
        &self,
        path: &str,
        clave: &str,
        estado: EstadoLote,
        visto: Option<i64>,
    ) -> Result<LoteAnswer, PeerError> {
        if !self.line_by_line.without_lotes() {
            match self
                .at_inventario(&fenced(path, visto), &ClaveRequest { clave })
                .await
            {
                Err(PeerError::Missing { .. }) => self.line_by_line.lacks_lotes(),
                answer => return answer,
            }
        }
        Ok(LoteAnswer::line_by_line(estado, &[]))
    }

    /// POSTs to inventario; a call that could not connect makes its routes unknown again.
    async fn at_inventario<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, PeerError> {
        let answer = post(&self.inventario, path, body).await;
        if let Err(PeerError::Call(CallError::Unavailable { sent: false, .. })) = &answer {
            self.line_by_line.forget_routes("it could not be reached");
        }
        answer
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
    async fn reservar(
        &self,
        clave: &str,
        items: &[Item],
        visto: Option<i64>,
    ) -> Result<LoteAnswer, PeerError>;
    /// Confirms an order's lote: its units leave for good. A `409` if it was released.
    async fn confirmar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError>;
    /// Releases an order's lote; releasing one already released is not an error, and
    /// releasing a key no lote was made with makes sure none will be.
    async fn liberar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError>;
    /// Charges an order, at most once for its `referencia`.
    async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError>;
    /// The payment made with a `referencia`; if there is none, pagos voids the
    /// referencia so that no charge can be made with it any more (estado `anulado`).
    async fn anular(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError>;
    /// Makes sure no money is kept for a `referencia`: an approved payment is
    /// refunded (estado `reembolsado`), a referencia never charged is voided.
    async fn reembolsar(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError>;
    /// The lotes inventario lists (`GET /cambios`).
    async fn lotes(&self, cambios: &Cambios) -> Result<LotesListed, PeerError>;
    /// The payments pagos lists (`GET /cambios`).
    async fn pagos(&self, cambios: &Cambios) -> Result<PagosListed, PeerError>;
    /// Raises the number of `ledger`'s last change to `to` (`POST /secuencia`).
    async fn raise(&self, ledger: Ledger, to: i64) -> Result<i64, PeerError>;
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

    async fn reservar(
        &self,
        clave: &str,
        items: &[Item],
        visto: Option<i64>,
    ) -> Result<LoteAnswer, PeerError> {
        let lineas: Vec<Linea> = items
            .iter()
            .map(|i| Linea {
                producto_id: i.producto_id,
                cantidad: i.cantidad,
            })
            .collect();
        if let Some(ids) = self.line_by_line.held(clave) {
            return Ok(LoteAnswer::line_by_line(EstadoLote::Activa, &ids));
        }
        if !self.line_by_line.without_lotes() {
            let body = LoteRequest {
                clave,
                lineas: &lineas,
            };
            match self
                .at_inventario::<LoteAnswer>(&fenced("/reservas", visto), &body)
                .await
            {
                Err(PeerError::Missing { .. }) => self.line_by_line.lacks_lotes(),
                answer => return lote_held(self.inventario.name(), clave, answer?),
            }
        }
        self.reservar_line_by_line(clave, &lineas).await
    }

    async fn confirmar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        let Some(ids) = self.line_by_line.take(clave) else {
            return self
                .lote_or_none("/reservas/confirmar", clave, EstadoLote::Confirmada, visto)
                .await;
        };
        // Reserved line by line. The original inventario has no confirmation (a
        // reservation there is final once the order is paid) and answers the first
        // line 404; penguin's, which may have taken its place since, confirms each line
        // (its reservations expire otherwise), and offers lotes again.
        for &reserva_id in &ids {
            match self
                .at_inventario::<IgnoredAny>("/confirmar", &ReservaRequest { reserva_id })
                .await
            {
                Ok(_) => self.line_by_line.forget_routes("it confirms reservations"),
                Err(PeerError::Missing { .. }) => break,
                Err(e) => {
                    self.line_by_line.hold(clave, ids);
                    return Err(e);
                }
            }
        }
        Ok(LoteAnswer::line_by_line(EstadoLote::Confirmada, &ids))
    }

    async fn liberar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        self.compensating("release");
        if self.line_by_line.held(clave).is_some() {
            let ids = self.release_lines(clave).await?;
            return Ok(LoteAnswer::line_by_line(EstadoLote::Liberada, &ids));
        }
        self.lote_or_none("/reservas/liberar", clave, EstadoLote::Liberada, visto)
            .await
    }

    async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError> {
        post(&self.pagos, &fenced("/pagar", request.visto), request).await
    }

    async fn anular(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        self.undo_charge("void", "/anular", referencia, visto).await
    }

    async fn reembolsar(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        self.undo_charge("refund", "/reembolsar", referencia, visto).await
    }

    async fn lotes(&self, cambios: &Cambios) -> Result<LotesListed, PeerError> {
        read(&self.inventario, &cambios_path(cambios)).await
    }

    async fn pagos(&self, cambios: &Cambios) -> Result<PagosListed, PeerError> {
        read(&self.pagos, &cambios_path(cambios)).await
    }

    async fn raise(&self, ledger: Ledger, to: i64) -> Result<i64, PeerError> {
        let peer = match ledger {
            Ledger::Inventario => &self.inventario,
            Ledger::Pagos => &self.pagos,
        };
        let raised: Secuencia = post(peer, "/secuencia", &Secuencia { secuencia: to }).await?;
        Ok(raised.secuencia)
    }
}

/// The most a listing of changes may weigh.
const MAX_LISTING: usize = 16 << 20;
/// How long a listing may take: recovery asks for one every pass, and new orders wait
/// for the first after a start, so a peer that hangs must not hold either up for long.
const LISTING_WITHIN: Duration = Duration::from_millis(500);

/// GETs what a peer has changed, outside any order: reading its records is not using
/// it, so neither its breaker nor its call metrics count it (see `Peer::peek`).
async fn read<T: DeserializeOwned>(peer: &Peer, path: &str) -> Result<T, PeerError> {
    let unavailable = |cause: String| {
        PeerError::Call(CallError::Unavailable {
            peer: peer.name(),
            cause,
            sent: true,
        })
    };
    let (status, body) = peer
        .peek(path, LISTING_WITHIN, MAX_LISTING)
        .await
        .map_err(unavailable)?;
    if !status.is_success() {
        return Err(unavailable(format!("GET {path} answered {status}")));
    }
    serde_json::from_slice(&body)
        .map_err(|e| unavailable(format!("GET {path}: the answer could not be read: {e}")))
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
            && (refusal.code == PeerCode::Other(String::new())
                || refusal.code.is(ErrorCode::RouteNotFound)
                || refusal.code.is(ErrorCode::MethodNotAllowed));
        if refusal.code.is(ErrorCode::StaleCopy) {
            PeerError::Stale {
                peer: peer.name(),
                detail: refusal.detail,
            }
        } else if no_route {
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

/// A refusal of `POST /reservar` under the codes penguin's lotes use, so that an
/// order refused by an inventario without lotes fails as it would with lotes: `409`
/// not enough stock, `404` no stock for the product.
fn stock_refusal(error: PeerError) -> PeerError {
    match error {
        PeerError::Refused { peer, mut refusal } => {
            match refusal.status {
                StatusCode::CONFLICT => refusal.code = PeerCode::Known(ErrorCode::InsufficientStock),
                StatusCode::NOT_FOUND => refusal.code = PeerCode::Known(ErrorCode::StockNotFound),
                _ => {}
            }
            PeerError::Refused { peer, refusal }
        }
        other => other,
    }
}

/// A lote inventario answered for a reservation: one asked again after it was
/// released holds nothing, and is read as if inventario had refused it.
pub fn lote_held(peer: &'static str, clave: &str, lote: LoteAnswer) -> Result<LoteAnswer, PeerError> {
    if matches!(lote.estado, EstadoLote::Liberada | EstadoLote::Expirada) {
        return Err(PeerError::Refused {
            peer,
            refusal: Refusal {
                status: StatusCode::CONFLICT,
                code: PeerCode::Known(ErrorCode::ReservaReleased),
                detail: format!("the lote {clave:?} was released"),
            },
        });
    }
    Ok(lote)
}

/// Whether a refusal is inventario saying an order's lote was released.
pub fn lote_released(refusal: &Refusal) -> bool {
    refusal.status == StatusCode::CONFLICT
        && (refusal.code.is(ErrorCode::ReservaReleased) || refusal.code.is(ErrorCode::ReservaNotActive))
}
