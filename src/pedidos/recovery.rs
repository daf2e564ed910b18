//! Finishes what a crash or an outage left half-way, once at start and then every
//! `RECOVERY_INTERVAL`:
//!
//! - an order still `pendiente` whose request is no longer running is settled by
//!   what its peers know: not charged (pagos has no payment with its `referencia`,
//!   which it then voids) means `fallido` and its reservations released; a payment
//!   found means `confirmado` or `rechazado`, exactly as the flow would have ended;
//! - an order that owes work at inventario (`pendiente` confirmar or liberar, because
//!   inventario was down) gets it done;
//! - an order that failed after its charge may have been made (the answer was lost,
//!   or a reservation expired before it was confirmed) has its referencia voided at
//!   pagos, so the charge never happens, or refunded if it did.
//!
//! pagos settles an order left `pendiente` after its reservations were recorded the
//! same way: `POST /anular` returns the charge if it was made, or voids the
//! referencia so a request still on its way can never charge it.
//!
//! Reservations are addressed by id or by their key, so even one made by a request
//! whose answer was lost is found, and releasing a key no reservation was made with
//! keeps a late request from ever making one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::http::StatusCode;

use super::clients::{PagoAnswer, Peers};
use super::model::{EstadoPedido, Paso, Pedido, Pendiente};
use super::repo;
use super::resilience::Breakers;
use super::saga::{self, Contexto, Fallo};
use crate::config::PeerSettings;
use crate::db::{Pool, now_millis, run_blocking};
use crate::error::ApiError;

const LOG_TARGET: &str = "pedidos";
/// How many unfinished orders one pass takes on.
const BATCH: i64 = 500;
/// An order this process created is left alone this long after its last change,
/// so a request that has just recorded it is never raced.
const GRACE: Duration = Duration::from_secs(2);

/// What every worker of pedidos shares: the database's key prefix, and which
/// orders have a request running in this process.
#[derive(Debug)]
pub struct Instancia {
    pub prefijo: String,
    /// Orders up to this id were created before this process started.
    ultimo_previo: i64,
    en_curso: Mutex<HashSet<i64>>,
}

/// Marks an order as having a running request until dropped.
pub struct EnCurso<'a> {
    instancia: &'a Instancia,
    id: i64,
}

impl Drop for EnCurso<'_> {
    fn drop(&mut self) {
        self.instancia.running().remove(&self.id);
    }
}

impl Instancia {
    /// Reads the prefix and the last order id of the database.
    pub fn load(pool: &Pool) -> Result<Self, String> {
        let conn = pool.get().map_err(|e| e.to_string())?;
        let (prefijo, ultimo_previo) = repo::instancia(&conn).map_err(|e| e.to_string())?;
        Ok(Self {
            prefijo,
            ultimo_previo,
            en_curso: Mutex::default(),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.en_curso.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn begin(&self, id: i64) -> EnCurso<'_> {
        self.running().insert(id);
        EnCurso { instancia: self, id }
    }

    /// Whether recovery may take this order on now.
    fn abandoned(&self, pedido: &Pedido) -> bool {
        if self.running().contains(&pedido.id) {
            return false;
        }
        pedido.id <= self.ultimo_previo || now_millis() - pedido.actualizado_en >= GRACE.as_millis() as i64
    }
}

/// Runs recovery for as long as the runtime runs.
pub fn spawn(
    pool: Pool,
    instancia: Arc<Instancia>,
    settings: PeerSettings,
    token: String,
    breakers: Breakers,
) {
    actix_web::rt::spawn(async move {
        let peers = Peers::new(&settings, &token, &breakers);
        let ctx = Contexto {
            peers: &peers,
            pool: &pool,
            prefijo: &instancia.prefijo,
        };
        loop {
            if let Err(e) = pass(&ctx, &instancia).await {
                log::warn!(target: LOG_TARGET, "recovery pass failed: {e}");
            }
            actix_web::rt::time::sleep(settings.recovery_interval).await;
        }
    });
}

/// One pass over the unfinished orders; returns how many it finished.
pub async fn pass(ctx: &Contexto<'_>, instancia: &Instancia) -> Result<usize, ApiError> {
    let pedidos = run_blocking(ctx.pool, |conn| Ok(repo::unfinished(conn, BATCH)?)).await?;
    let mut finished = 0;
    for mut pedido in pedidos {
        if !instancia.abandoned(&pedido) {
            continue;
        }
        let _busy = instancia.begin(pedido.id);
        resolve(ctx, &mut pedido).await?;
        if pedido.estado != EstadoPedido::Pendiente && pedido.pendiente.is_none() && !pedido.verificar_pago {
            log::info!(target: LOG_TARGET, "recovery finished pedido {}: {}", pedido.id, pedido.estado.as_str());
            finished += 1;
        }
    }
    Ok(finished)
}

async fn resolve(ctx: &Contexto<'_>, pedido: &mut Pedido) -> Result<(), ApiError> {
    if pedido.estado == EstadoPedido::Pendiente {
        let pago = match pedido.paso {
            // Nothing is charged before the reservations are recorded.
            Paso::Creado => None,
            // The payment is recorded only once approved.
            Paso::Cobrado => pedido.pago_id.map(|pago_id| PagoAnswer {
                pago_id,
                estado: "aprobado".into(),
            }),
            // The charge may or may not have been made: pagos answers with it, or
            // voids the referencia so that it never will be.
            Paso::Reservado | Paso::Cerrado => match ctx.peers.anular(&pedido.clave(ctx.prefijo)).await {
                Ok(pago) if pago.anulado() => None,
                Ok(pago) => Some(pago),
                Err(e) => {
                    log::warn!(target: LOG_TARGET, "pedido {} stays pendiente: {e}", pedido.id);
                    return Ok(());
                }
            },
        };
        let outcome = match pago {
            Some(pago) => saga::conclude(ctx, pedido, &pago).await,
            None => {
                pedido.estado = EstadoPedido::Fallido;
                pedido.paso = Paso::Cerrado;
                pedido.pendiente = Some(Pendiente::Liberar);
                saga::settle(ctx, pedido).await;
                Err(Fallo::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "interrupted",
                    "the order was interrupted before it was charged",
                ))
            }
        };
        saga::record_answer(pedido, &outcome);
    } else {
        if pedido.verificar_pago {
            saga::refund(ctx, pedido).await;
        }
        saga::settle(ctx, pedido).await;
    }
    saga::save(ctx.pool, pedido).await
}
