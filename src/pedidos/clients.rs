//! pedidos' own, typed view of its peers over HTTP: the price of a product
//! (productos), reserving and releasing units (inventario) and charging (pagos).
//! pedidos knows its peers only through these calls, so each can run on its own host.

use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::resilience::{Breakers, CallError, Peer};
use crate::config::PeerSettings;
use crate::money::Money;

/// What went wrong with a peer call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// No answer: connection errors, timeouts, `5xx`, or an open circuit.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The peer answered with a `4xx`.
    #[error("{peer} answered {status}: {detail}")]
    Refused {
        peer: &'static str,
        status: StatusCode,
        code: String,
        detail: String,
    },
    /// The peer answered something pedidos does not understand.
    #[error("{peer} gave an unexpected answer: {cause}")]
    Invalid { peer: &'static str, cause: String },
}

impl PeerError {
    /// The status of a `4xx` answer, if that is what this is.
    pub fn refused_status(&self) -> Option<StatusCode> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The error body every service answers with.
#[derive(Debug, Deserialize)]
struct ErrorAnswer {
    error: String,
    detail: String,
}

#[derive(Debug, Deserialize)]
struct ProductoAnswer {
    precio: Money,
}

#[derive(Debug, Serialize)]
struct ReservarRequest {
    producto_id: i64,
    cantidad: i64,
}

/// inventario's answer about a reservation.
#[derive(Debug, Clone, Deserialize)]
pub struct ReservaAnswer {
    pub reserva_id: i64,
    pub estado: String,
}

impl ReservaAnswer {
    /// Whether it holds its units (a reservation asked for again with a key that was
    /// already released holds none).
    pub fn activa(&self) -> bool {
        self.estado == "activa"
    }
}

/// How pedidos names a reservation to inventario: by id once it knows it, by the key
/// it was asked for with otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ReservaRef<'a> {
    Id { reserva_id: i64 },
    Clave { clave: &'a str },
}

/// The charge pedidos asks pagos for.
#[derive(Debug, Serialize)]
pub struct PagarRequest<'a> {
    pub monto: Money,
    pub moneda: &'a str,
    pub medio: &'a str,
    pub referencia: String,
    pub fail: bool,
}

#[derive(Debug, Serialize)]
struct ReferenciaRequest<'a> {
    referencia: &'a str,
}

/// pagos' answer to a charge.
#[derive(Debug, Clone, Deserialize)]
pub struct PagoAnswer {
    pub pago_id: i64,
    pub estado: String,
}

impl PagoAnswer {
    pub fn aprobado(&self) -> bool {
        self.estado == "aprobado"
    }

    /// Whether this is a voided referencia rather than a charge.
    pub fn anulado(&self) -> bool {
        self.estado == "anulado"
    }

    /// Whether this charge was refunded.
    pub fn reembolsado(&self) -> bool {
        self.estado == "reembolsado"
    }
}

/// The three peers as one worker reaches them, over one HTTP client.
pub struct Peers {
    productos: Peer,
    inventario: Peer,
    pagos: Peer,
}

impl Peers {
    /// Builds the worker's HTTP client (bounded connections and timeouts) around the shared breakers.
    pub fn new(settings: &PeerSettings, token: &str, breakers: &Breakers) -> Self {
        let connector = awc::Connector::new()
            .timeout(settings.connect_timeout)
            .limit(settings.max_connections);
        // The whole-attempt timeout (PEER_TIMEOUT_MS) is applied by `resilience` around
        // sending and reading the answer; a second timer inside awc would only add work.
        let client = awc::Client::builder()
            .connector(connector)
            .disable_timeout()
            .disable_redirects()
            .finish();
        let peer = |name, url: &str, breaker| Peer::new(name, url, token, client.clone(), breaker, settings);
        Self {
            productos: peer("productos", &settings.products_url, breakers.productos.clone()),
            inventario: peer("inventario", &settings.inventory_url, breakers.inventario.clone()),
            pagos: peer("pagos", &settings.payments_url, breakers.pagos.clone()),
        }
    }

    /// Fails at once if any peer's circuit is open: an order needs all three.
    pub fn ensure_available(&self) -> Result<(), PeerError> {
        for peer in [&self.productos, &self.inventario, &self.pagos] {
            peer.ensure_available()?;
        }
        Ok(())
    }

    /// The current price of a product.
    pub async fn precio(&self, producto_id: i64) -> Result<Money, PeerError> {
        let answer = self
            .productos
            .call(Method::GET, &format!("/productos/{producto_id}"), None, None)
            .await?;
        decode::<ProductoAnswer>(&self.productos, StatusCode::OK, answer).map(|p| p.precio)
    }

    /// Reserves units of a product, at most once for a given key.
    pub async fn reservar(
        &self,
        producto_id: i64,
        cantidad: i64,
        clave: &str,
    ) -> Result<ReservaAnswer, PeerError> {
        let body = ReservarRequest {
            producto_id,
            cantidad,
        };
        post(
            &self.inventario,
            "/reservar",
            &body,
            Some(clave),
            StatusCode::CREATED,
        )
        .await
    }

    /// Releases a reservation; releasing one already released or expired is not an
    /// error, and releasing a key no reservation was made with makes sure none will be.
    pub async fn liberar(&self, reserva: &ReservaRef<'_>) -> Result<ReservaAnswer, PeerError> {
        post(&self.inventario, "/liberar", reserva, None, StatusCode::OK).await
    }

    /// Confirms a reservation: its units leave for good. A `409` if it expired or was released.
    pub async fn confirmar(&self, reserva: &ReservaRef<'_>) -> Result<ReservaAnswer, PeerError> {
        post(&self.inventario, "/confirmar", reserva, None, StatusCode::OK).await
    }

    /// Charges an order, at most once for its `referencia`.
    pub async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError> {
        post(&self.pagos, "/pagar", request, None, StatusCode::CREATED).await
    }

    /// The payment made with a `referencia`; if there is none, pagos voids the
    /// referencia so that no charge can be made with it any more (estado `anulado`).
    pub async fn anular(&self, referencia: &str) -> Result<PagoAnswer, PeerError> {
        post(
            &self.pagos,
            "/anular",
            &ReferenciaRequest { referencia },
            None,
            StatusCode::OK,
        )
        .await
    }

    /// Makes sure no money is kept for a `referencia`: an approved payment is
    /// refunded (estado `reembolsado`), a referencia never charged is voided.
    pub async fn reembolsar(&self, referencia: &str) -> Result<PagoAnswer, PeerError> {
        post(
            &self.pagos,
            "/reembolsar",
            &ReferenciaRequest { referencia },
            None,
            StatusCode::OK,
        )
        .await
    }
}

/// POSTs `body` as JSON and reads the answer as `T` when it has the `expected` status.
async fn post<B: Serialize, T: DeserializeOwned>(
    peer: &Peer,
    path: &str,
    body: &B,
    key: Option<&str>,
    expected: StatusCode,
) -> Result<T, PeerError> {
    let answer = peer.call(Method::POST, path, Some(encode(body)), key).await?;
    decode(peer, expected, answer)
}

fn encode<T: Serialize>(body: &T) -> Bytes {
    // Serialising these plain structs of numbers and strings cannot fail.
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(
    peer: &Peer,
    expected: StatusCode,
    (status, body): (StatusCode, Bytes),
) -> Result<T, PeerError> {
    if status == expected {
        return serde_json::from_slice(&body).map_err(|e| PeerError::Invalid {
            peer: peer.name(),
            cause: e.to_string(),
        });
    }
    if status.is_client_error() {
        let answer: Option<ErrorAnswer> = serde_json::from_slice(&body).ok();
        let (code, detail) = answer.map_or_else(|| (String::new(), String::new()), |a| (a.error, a.detail));
        return Err(PeerError::Refused {
            peer: peer.name(),
            status,
            code,
            detail,
        });
    }
    Err(PeerError::Invalid {
        peer: peer.name(),
        cause: format!("answered {status}, expected {expected}"),
    })
}
