//! The order flow, one explicit step after another, each step's outcome recorded
//! before the next:
//!
//! 1. price each line at productos, and the total;
//! 2. reserve each line at inventario, with a key derived from the order and line
//!    (record the reservations);
//! 3. charge the total at pagos, with the order's key as `referencia` (record the
//!    payment); if the answer is lost, ask pagos what happened;
//! 4. confirm every reservation, or compensate by releasing them.
//!
//! Every call that changes state carries a key, so a retry never reserves or charges
//! twice. Work at inventario that cannot be done now (the peer is down) is recorded
//! as `pendiente` and finished by `recovery`, which also resolves orders a crash left
//! half-way with the same functions.

use actix_web::http::StatusCode;

use super::clients::{PagarRequest, PagoAnswer, PeerError, Peers, ReservaRef};
use super::model::{EstadoPedido, NuevoPedido, Paso, Pedido, Pendiente};
use super::repo;
use super::resilience::CallError;
use crate::db::{Pool, run_write};
use crate::error::ApiError;
use crate::money::{Money, MoneyError};

const LOG_TARGET: &str = "pedidos";

/// What the flow needs: the peers, the database, and this database's key prefix.
pub struct Contexto<'a> {
    pub peers: &'a Peers,
    pub pool: &'a Pool,
    pub prefijo: &'a str,
}

/// Why an order did not succeed, as the client is told.
#[derive(Debug)]
pub struct Fallo {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Seconds until an open circuit lets calls through again.
    pub retry_after: Option<u64>,
}

impl Fallo {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A failed peer call, in the words of the step that made it.
    fn from_peer(error: &PeerError) -> Self {
        match error {
            PeerError::Call(CallError::CircuitOpen { retry_after, .. }) => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "peer_unavailable",
                    error.to_string(),
                )
            },
            PeerError::Call(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "peer_unavailable",
                error.to_string(),
            ),
            PeerError::Refused { .. } | PeerError::Invalid { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "peer_error", error.to_string())
            }
        }
    }
}

/// The key of line `linea` of an order at inventario.
fn clave_linea(clave: &str, linea: usize) -> String {
    format!("{clave}-{linea}")
}

/// Records the order as it stands.
pub async fn save(pool: &Pool, pedido: &mut Pedido) -> Result<(), ApiError> {
    let mut copia = pedido.clone();
    let saved = run_write(pool, move |conn| {
        repo::save(conn, &mut copia)?;
        Ok(copia)
    })
    .await?;
    *pedido = saved;
    Ok(())
}

/// Runs the whole flow on a freshly recorded order, records its outcome and the
/// answer given, and returns that answer's failure, if any.
pub async fn place(
    ctx: &Contexto<'_>,
    pedido: &mut Pedido,
    nuevo: &NuevoPedido,
) -> Result<Result<(), Fallo>, ApiError> {
    let outcome = steps(ctx, pedido, nuevo).await?;
    record_answer(pedido, &outcome);
    save(ctx.pool, pedido).await?;
    Ok(outcome)
}

/// Keeps the answer an outcome gives, so that a retried request gets it again.
pub fn record_answer(pedido: &mut Pedido, outcome: &Result<(), Fallo>) {
    match outcome {
        Ok(()) => {
            pedido.respuesta = Some(StatusCode::CREATED.as_u16());
            pedido.error = None;
        }
        Err(fallo) => {
            pedido.respuesta = Some(fallo.status.as_u16());
            pedido.error = Some(fallo.code.to_string());
            pedido.motivo = Some(fallo.detail.clone());
            log::info!(target: LOG_TARGET, "pedido {} {}: {}", pedido.id, pedido.estado.as_str(), fallo.detail);
        }
    }
}

async fn steps(
    ctx: &Contexto<'_>,
    pedido: &mut Pedido,
    nuevo: &NuevoPedido,
) -> Result<Result<(), Fallo>, ApiError> {
    let closed = |pedido: &mut Pedido, estado| {
        pedido.estado = estado;
        pedido.paso = Paso::Cerrado;
    };
    if let Err(e) = ctx.peers.ensure_available() {
        closed(pedido, EstadoPedido::Fallido);
        return Ok(Err(Fallo::from_peer(&e)));
    }
    if let Err(fallo) = price(ctx.peers, pedido).await {
        closed(pedido, EstadoPedido::Fallido);
        return Ok(Err(fallo));
    }
    if let Err(fallo) = reserve(ctx, pedido).await {
        closed(pedido, EstadoPedido::Fallido);
        return Ok(Err(fallo));
    }
    pedido.paso = Paso::Reservado;
    save(ctx.pool, pedido).await?;

    let clave = pedido.clave(ctx.prefijo);
    let request = PagarRequest {
        monto: pedido.total,
        moneda: &nuevo.moneda,
        medio: &nuevo.medio,
        referencia: clave.clone(),
        fail: nuevo.fail,
    };
    let pago = match ctx.peers.pagar(&request).await {
        Ok(pago) => pago,
        Err(e) => {
            // The order fails and gives its units back now. If the charge may have
            // reached pagos, recovery voids its referencia: it then never happens,
            // or, if it did, it is refunded.
            if may_have_reached(&e) {
                log::warn!(
                    target: LOG_TARGET,
                    "pedido {}: the charge may have reached pagos ({e}); it will be voided",
                    pedido.id
                );
                pedido.verificar_pago = true;
            }
            release_all(ctx, pedido).await;
            closed(pedido, EstadoPedido::Fallido);
            return Ok(Err(Fallo::from_peer(&e)));
        }
    };
    Ok(conclude(ctx, pedido, &pago).await)
}

/// Whether a failed call may still have had its effect at the peer.
fn may_have_reached(error: &PeerError) -> bool {
    match error {
        PeerError::Call(CallError::Unavailable { sent, .. }) => *sent,
        PeerError::Call(CallError::CircuitOpen { .. }) | PeerError::Refused { .. } => false,
        PeerError::Invalid { .. } => true,
    }
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
                Fallo::from_peer(&e)
            }
        })?;
        let too_large = |_: MoneyError| {
            Fallo::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "total_too_large",
                "the order's total is larger than penguin can charge",
            )
        };
        let subtotal = precio.times(item.cantidad).map_err(too_large)?;
        total = total.plus(subtotal).map_err(too_large)?;
        item.precio_unitario = Some(precio);
        pedido.lineas_guardadas = false;
        item.subtotal = Some(subtotal);
    }
    pedido.total = total;
    Ok(())
}

/// Step 2: reserve every line's units at inventario, stopping at the first refusal;
/// on a failure the reservations made (and the one whose answer was lost) are released.
async fn reserve(ctx: &Contexto<'_>, pedido: &mut Pedido) -> Result<(), Fallo> {
    let clave = pedido.clave(ctx.prefijo);
    for linea in 0..pedido.items.len() {
        let item = &pedido.items[linea];
        let clave_linea = clave_linea(&clave, linea);
        let fallo = match ctx
            .peers
            .reservar(item.producto_id, item.cantidad, &clave_linea)
            .await
        {
            Ok(reserva) if reserva.activa() => {
                pedido.items[linea].reserva_id = Some(reserva.reserva_id);
                pedido.lineas_guardadas = false;
                continue;
            }
            Ok(reserva) => Fallo::new(
                StatusCode::CONFLICT,
                "reserva_not_active",
                format!("reserva {} was already {}", reserva.reserva_id, reserva.estado),
            ),
            Err(PeerError::Refused {
                status, code, detail, ..
            }) if status == StatusCode::CONFLICT && code == "reserva_released" => {
                Fallo::new(StatusCode::CONFLICT, "reserva_released", detail)
            }
            Err(e) => match e.refused_status() {
                Some(StatusCode::CONFLICT | StatusCode::NOT_FOUND) => Fallo::new(
                    StatusCode::CONFLICT,
                    "insufficient_stock",
                    format!(
                        "not enough stock of producto {} for {} units",
                        item.producto_id, item.cantidad
                    ),
                ),
                Some(_) => Fallo::from_peer(&e),
                None => {
                    // No answer: the reservation may exist; its key releases it or
                    // makes sure it will never be made.
                    let fallo = Fallo::from_peer(&e);
                    let lost = ReservaRef::Clave { clave: &clave_linea };
                    if ctx.peers.liberar(&lost).await.is_err() {
                        pedido.pendiente = Some(Pendiente::Liberar);
                    }
                    fallo
                }
            },
        };
        release_all(ctx, pedido).await;
        return Err(fallo);
    }
    Ok(())
}

/// How each line's reservation is named: by id when known, otherwise by its key.
fn referencias<'a>(pedido: &Pedido, claves: &'a [String]) -> Vec<ReservaRef<'a>> {
    pedido
        .items
        .iter()
        .zip(claves)
        .map(|(item, clave)| match item.reserva_id {
            Some(reserva_id) => ReservaRef::Id { reserva_id },
            None => ReservaRef::Clave { clave },
        })
        .collect()
}

fn claves_lineas(pedido: &Pedido, prefijo: &str) -> Vec<String> {
    let clave = pedido.clave(prefijo);
    (0..pedido.items.len())
        .map(|linea| clave_linea(&clave, linea))
        .collect()
}

/// Compensation: release every reservation the order made. What cannot be released
/// now is left `pendiente` for recovery.
async fn release_all(ctx: &Contexto<'_>, pedido: &mut Pedido) {
    let reservas: Vec<i64> = pedido.items.iter().filter_map(|i| i.reserva_id).collect();
    if reservas.is_empty() {
        return;
    }
    log::info!(target: LOG_TARGET, "pedido {}: compensating, releasing reservas {reservas:?}", pedido.id);
    for reserva_id in reservas {
        if let Err(e) = ctx.peers.liberar(&ReservaRef::Id { reserva_id }).await {
            log::warn!(
                target: LOG_TARGET,
                "pedido {}: reserva {reserva_id} not released yet ({e}); recovery will retry",
                pedido.id
            );
            pedido.pendiente = Some(Pendiente::Liberar);
        }
    }
}

/// Step 4, once pagos has answered: confirm the reservations, or release them.
pub async fn conclude(ctx: &Contexto<'_>, pedido: &mut Pedido, pago: &PagoAnswer) -> Result<(), Fallo> {
    pedido.pago_id = Some(pago.pago_id);
    pedido.paso = Paso::Cerrado;
    if !pago.aprobado() {
        pedido.estado = EstadoPedido::Rechazado;
        pedido.pendiente = Some(Pendiente::Liberar);
        settle(ctx, pedido).await;
        return Err(Fallo::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment_rejected",
            format!("pagos rejected the payment {}", pago.pago_id),
        ));
    }
    pedido.estado = EstadoPedido::Confirmado;
    pedido.pendiente = Some(Pendiente::Confirmar);
    settle(ctx, pedido).await;
    if pedido.estado == EstadoPedido::Confirmado {
        Ok(())
    } else {
        Err(Fallo::new(
            StatusCode::CONFLICT,
            "reserva_expired",
            pedido.motivo.clone().unwrap_or_default(),
        ))
    }
}

/// Does the work at inventario the order owes (`pendiente`), line by line, and
/// clears it once every line is done. A reservation that can no longer be confirmed
/// (it expired) turns a charged order into `fallido`: its other reservations are
/// released and recovery refunds the payment.
pub async fn settle(ctx: &Contexto<'_>, pedido: &mut Pedido) {
    let Some(pendiente) = pedido.pendiente else {
        return;
    };
    let claves = claves_lineas(pedido, ctx.prefijo);
    let referencias = referencias(pedido, &claves);
    let mut done = true;
    for referencia in &referencias {
        let result = match pendiente {
            Pendiente::Confirmar => ctx.peers.confirmar(referencia).await,
            Pendiente::Liberar => ctx.peers.liberar(referencia).await,
        };
        match result {
            Ok(_) => {}
            // A refusal is final: a reservation that cannot be released is confirmed
            // or gone already; one that cannot be confirmed has expired or was released.
            Err(e) if e.refused_status().is_some() && pendiente == Pendiente::Liberar => {
                log::warn!(target: LOG_TARGET, "pedido {}: reservation not released: {e}", pedido.id);
            }
            Err(e) if e.refused_status().is_some() => {
                let detail = format!(
                    "pedido {} was charged (pago {}) but a reservation can no longer be confirmed ({e}); \
                     the payment is refunded",
                    pedido.id,
                    pedido.pago_id.unwrap_or_default()
                );
                log::error!(target: LOG_TARGET, "{detail}");
                pedido.estado = EstadoPedido::Fallido;
                pedido.motivo = Some(detail);
                pedido.verificar_pago = true;
                refund(ctx, pedido).await;
                pedido.pendiente = Some(Pendiente::Liberar);
                Box::pin(settle(ctx, pedido)).await;
                return;
            }
            Err(e) => {
                log::warn!(
                    target: LOG_TARGET,
                    "pedido {}: could not {} a reservation yet ({e}); recovery will retry",
                    pedido.id,
                    pendiente.as_str()
                );
                done = false;
                break;
            }
        }
    }
    if done {
        pedido.pendiente = None;
    }
}

/// For an order that failed after its charge may have been made: makes sure pagos
/// keeps no money for it, refunding the charge if it was made, or voiding the
/// referencia so it never will be. Left to recovery (`verificar_pago`) if pagos
/// does not answer.
pub async fn refund(ctx: &Contexto<'_>, pedido: &mut Pedido) {
    match ctx.peers.reembolsar(&pedido.clave(ctx.prefijo)).await {
        Ok(pago) => {
            if pago.reembolsado() {
                log::warn!(target: LOG_TARGET, "pedido {} failed after it was charged; pago {} refunded", pedido.id, pago.pago_id);
                pedido.pago_id = Some(pago.pago_id);
            }
            pedido.verificar_pago = false;
        }
        Err(e) => log::warn!(target: LOG_TARGET, "pedido {}: payment not verified yet: {e}", pedido.id),
    }
}
