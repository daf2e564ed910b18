//! The order flow, one explicit step after another:
//! price each line (productos) -> reserve each line (inventario) -> charge the
//! total (pagos) -> confirm, or compensate by releasing every reservation made.
//!
//! The flow works on a [`Pedido`] already recorded as `pendiente`; it fills in
//! prices, reservations, the payment and the final `estado`, and says why it failed.

use actix_web::http::StatusCode;

use super::clients::{PagarRequest, PeerError, Peers};
use super::model::{EstadoPedido, NuevoPedido, Pedido};
use super::resilience::CallError;
use crate::money::{Money, MoneyError};

const LOG_TARGET: &str = "pedidos";

/// Why an order did not succeed, as the client is told.
#[derive(Debug)]
pub struct Fallo {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds to wait before trying again, for a `503`.
    pub retry_after: Option<u64>,
}

impl Fallo {
    fn new(status: StatusCode, code: &'static str, detail: String) -> Self {
        Self {
            status,
            code,
            detail,
            retry_after: None,
        }
    }

    /// A failed peer call, in the words of the step that made it.
    fn from_peer(error: PeerError) -> Self {
        match error {
            PeerError::Call(CallError::CircuitOpen { retry_after, .. }) => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "peer_unavailable",
                    error.to_string(),
                )
            },
            PeerError::Call(CallError::Unavailable { .. }) => Self {
                retry_after: Some(1),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "peer_unavailable",
                    error.to_string(),
                )
            },
            PeerError::Refused { .. } | PeerError::Invalid { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "peer_error", error.to_string())
            }
        }
    }
}

/// Runs the flow on `pedido` and sets its final `estado`. While any peer's circuit
/// is open the order fails at once, before any peer is called.
pub async fn place(peers: &Peers, pedido: &mut Pedido, nuevo: &NuevoPedido) -> Result<(), Fallo> {
    let outcome = steps(peers, pedido, nuevo).await;
    match &outcome {
        Ok(()) => pedido.estado = EstadoPedido::Confirmado,
        Err(fallo) => {
            if pedido.estado == EstadoPedido::Pendiente {
                pedido.estado = EstadoPedido::Fallido;
            }
            pedido.motivo = Some(fallo.detail.clone());
            log::info!(target: LOG_TARGET, "pedido {} {}: {}", pedido.id, pedido.estado.as_str(), fallo.detail);
        }
    }
    outcome
}

async fn steps(peers: &Peers, pedido: &mut Pedido, nuevo: &NuevoPedido) -> Result<(), Fallo> {
    peers.ensure_available().map_err(Fallo::from_peer)?;
    price(peers, pedido).await?;
    reserve_and_charge(peers, pedido, nuevo).await
}

/// Step 1: the price of every line from productos, and the total.
async fn price(peers: &Peers, pedido: &mut Pedido) -> Result<(), Fallo> {
    let mut total = Money::ZERO;
    for item in &mut pedido.items {
        let precio = peers.precio(item.producto_id).await.map_err(|e| {
            if e.refused_status() == Some(StatusCode::NOT_FOUND) {
                let detail = format!("producto {} does not exist", item.producto_id);
                Fallo::new(StatusCode::NOT_FOUND, "producto_not_found", detail)
            } else {
                Fallo::from_peer(e)
            }
        })?;
        let too_large = |_: MoneyError| {
            Fallo::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "total_too_large",
                "the order's total is larger than penguin can charge".into(),
            )
        };
        let subtotal = precio.times(item.cantidad).map_err(too_large)?;
        total = total.plus(subtotal).map_err(too_large)?;
        item.precio_unitario = Some(precio);
        item.subtotal = Some(subtotal);
    }
    pedido.total = total;
    Ok(())
}

/// Steps 2 and 3; on any failure every reservation made is released.
async fn reserve_and_charge(peers: &Peers, pedido: &mut Pedido, nuevo: &NuevoPedido) -> Result<(), Fallo> {
    let outcome = match reserve(peers, pedido).await {
        Ok(()) => charge(peers, pedido, nuevo).await,
        Err(fallo) => Err(fallo),
    };
    if outcome.is_err() {
        compensate(peers, pedido).await;
    }
    outcome
}

/// Step 2: reserve every line's units at inventario, stopping at the first refusal.
async fn reserve(peers: &Peers, pedido: &mut Pedido) -> Result<(), Fallo> {
    for item in &mut pedido.items {
        let reserva_id = peers
            .reservar(item.producto_id, item.cantidad)
            .await
            .map_err(|e| match e.refused_status() {
                Some(StatusCode::CONFLICT | StatusCode::NOT_FOUND) => Fallo::new(
                    StatusCode::CONFLICT,
                    "insufficient_stock",
                    format!(
                        "not enough stock of producto {} for {} units",
                        item.producto_id, item.cantidad
                    ),
                ),
                _ => Fallo::from_peer(e),
            })?;
        item.reserva_id = Some(reserva_id);
    }
    Ok(())
}

/// Step 3: charge the total at pagos; a rejected payment is a `402`.
async fn charge(peers: &Peers, pedido: &mut Pedido, nuevo: &NuevoPedido) -> Result<(), Fallo> {
    let request = PagarRequest {
        monto: pedido.total,
        moneda: &nuevo.moneda,
        medio: &nuevo.medio,
        referencia: pedido.id.to_string(),
        fail: nuevo.fail,
    };
    let pago = peers.pagar(&request).await.map_err(Fallo::from_peer)?;
    pedido.pago_id = Some(pago.pago_id);
    if pago.aprobado() {
        return Ok(());
    }
    pedido.estado = EstadoPedido::Rechazado;
    Err(Fallo::new(
        StatusCode::PAYMENT_REQUIRED,
        "payment_rejected",
        format!("pagos rejected the payment {}", pago.pago_id),
    ))
}

/// Compensation: release every reservation this order made.
async fn compensate(peers: &Peers, pedido: &Pedido) {
    let reservas: Vec<i64> = pedido.items.iter().filter_map(|i| i.reserva_id).collect();
    if reservas.is_empty() {
        return;
    }
    log::info!(target: LOG_TARGET, "pedido {}: compensating, releasing reservas {reservas:?}", pedido.id);
    for reserva_id in reservas {
        if let Err(e) = peers.liberar(reserva_id).await {
            log::error!(
                target: LOG_TARGET,
                "pedido {}: reserva {reserva_id} could not be released and still holds stock: {e}",
                pedido.id
            );
        }
    }
}
