//! Healing after a restore: whichever one service was put back from an older copy of
//! its database, the shop makes its books agree again by itself.
//!
//! - **inventario or pagos behind pedidos.** Each change pedidos asks of them carries
//!   the highest number that peer ever gave it (`?visto=`, see `crate::secuencia`); a
//!   restored copy is behind it and refuses (`409 stale_copy`), and the driver that
//!   hears it marks the peer stale ([`super::instance::Healing`]), which stops every
//!   driver from asking it anything and wakes recovery. Recovery then records the
//!   healing (`curas`: from the copy's last number to the highest pedidos saw, so a
//!   pedidos that stops halfway goes on at its next start), re-asserts every order whose
//!   last change there is numbered in between ([`decide::reassertion`]: hold and confirm
//!   the lote again, charge the referencia again, release or void), and raises the
//!   peer's number (`POST /secuencia`), which lifts the refusal. What the peer refuses
//!   to hold again is logged, counted (`penguin_orders_reasserted_total{outcome=
//!   "unhealed"}`) and left for a person.
//! - **pedidos behind its peers.** A restored pedidos does not know the orders it
//!   placed after its copy, but their lotes and charges carry their keys. At its first
//!   recovery pass it lists what inventario and pagos changed after the highest numbers
//!   it recorded (`GET /cambios`), and brings back every order with its prefix that it
//!   does not know ([`decide::brought_back`]), under the id its key names (or another,
//!   if that id was given out again meanwhile, keeping its key); recovery then drives
//!   each one on as it would any other.

use super::clients::{PeerApi, PeerError};
use super::decide::{self, Held, Reassert, Reasserted};
use super::model::{ChangeNumbers, Ledger};
use super::repo::BroughtBack;
use super::saga::{SagaContext, Store};
use crate::error::ApiError;
use crate::money::Money;
use crate::secuencia::{Cambios, SequenceState};

const LOG_TARGET: &str = "pedidos";
/// How many orders or peer records one step reads.
const BATCH: i64 = 200;
/// How many of the first changes recorded after a peer started are checked at it.
const VERIFIED: i64 = 32;

/// Heals what is owed: each peer found behind, then the orders this database lost
/// (once per start). Returns whether nothing is left to heal.
pub async fn pass<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>) -> Result<bool, ApiError> {
    let mut done = true;
    for ledger in Ledger::BOTH {
        if !ctx.instance.healing.is_stale(ledger) && behind(ctx, ledger).await? {
            ctx.instance.healing.found_stale(ledger);
        }
        if ctx.instance.healing.is_stale(ledger) {
            done &= heal(ctx, ledger).await?;
        }
    }
    if !ctx.instance.healing.learned() {
        let learned = learn(ctx).await;
        ctx.instance.healing.set_tried();
        let learned = learned?;
        if learned {
            ctx.instance.healing.set_learned();
        }
        done &= learned;
    }
    Ok(done)
}

/// Whether `ledger` knows less than this pedidos: its last number is below the highest
/// it answered; it knows itself found behind; or, the first time it is asked after it
/// started, it no longer holds one of the first changes pedidos recorded after the
/// number it started at (a restored copy starts at the copy's number, and what pedidos
/// recorded after it is what the copy lost, unless a change asked before the restore
/// made it again). A peer restored while no order asks anything of it is found this
/// way, and so is one a pedidos that restarted had found behind before it recorded so.
async fn behind<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>, ledger: Ledger) -> Result<bool, ApiError> {
    let seen = ctx.instance.vistos.get(ledger);
    let Ok(numbers) = last_number(ctx.peers, &ctx.instance.prefijo, ledger).await else {
        return Ok(false);
    };
    if numbers.secuencia < seen || numbers.rezagada.is_some() {
        return Ok(true);
    }
    let Some(start) = numbers.al_iniciar else {
        return Ok(false);
    };
    if ctx.instance.healing.verified(ledger) == Some(start) {
        return Ok(false);
    }
    for (numero, id) in ctx.store.recorded_after(ledger, start, VERIFIED).await? {
        let Some(pedido) = ctx.store.load(id).await? else {
            continue;
        };
        let key = Cambios::Key(pedido.clave(&ctx.instance.prefijo));
        let held = match ledger {
            Ledger::Inventario => ctx
                .peers
                .lotes(&key)
                .await
                .map(|l| l.lotes.first().and_then(|l| l.secuencia)),
            Ledger::Pagos => ctx
                .peers
                .pagos(&key)
                .await
                .map(|p| p.pagos.first().and_then(|p| p.secuencia)),
        };
        match held {
            Ok(held) if held.is_none_or(|n| n < numero) => return Ok(true),
            Ok(_) => {}
            Err(_) => return Ok(false),
        }
    }
    ctx.instance.healing.verify(ledger, start);
    Ok(false)
}

/// What `ledger` says of its numbers now.
async fn last_number<P: PeerApi>(
    peers: &P,
    prefijo: &str,
    ledger: Ledger,
) -> Result<SequenceState, PeerError> {
    let probe = Cambios::After {
        prefijo: prefijo.to_string(),
        desde: i64::MAX,
        limit: 1,
    };
    match ledger {
        Ledger::Inventario => peers.lotes(&probe).await.map(|l| l.sequence),
        Ledger::Pagos => peers.pagos(&probe).await.map(|l| l.sequence),
    }
}

/// Re-asserts at `ledger` every order its restored copy may have lost, then lifts its
/// refusal. Returns whether it is healed.
async fn heal<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>, ledger: Ledger) -> Result<bool, ApiError> {
    let name: &str = ledger.into();
    let (desde, hasta) = match ctx.store.healing(ledger).await? {
        Some(under_way) => under_way,
        None => {
            // Where the copy ends: the number it started at, unless changes asked of it
            // before it was found behind (sent before it was restored, and arriving
            // after) have been numbered since. Those the order's drivers redo anyway.
            let numbers = match last_number(ctx.peers, &ctx.instance.prefijo, ledger).await {
                Ok(numbers) => numbers,
                Err(e) => {
                    log::warn!(target: LOG_TARGET, "{name} is behind pedidos and cannot be healed yet: {e}");
                    return Ok(false);
                }
            };
            let secuencia = numbers
                .al_iniciar
                .map_or(numbers.secuencia, |s| s.min(numbers.secuencia));
            // What it answered this pedidos, recorded or not (see `PeerNumbers`).
            let hasta = ctx.instance.vistos.get(ledger).max(numbers.rezagada.unwrap_or(0));
            if secuencia >= hasta {
                // It lost nothing pedidos recorded: only its mark is lifted.
                if let Err(e) = ctx.peers.raise(ledger, hasta).await {
                    log::warn!(target: LOG_TARGET, "{name}'s refusal is not lifted yet: {e}");
                    return Ok(false);
                }
                ctx.instance.healing.healed(ledger);
                return Ok(true);
            }
            ctx.store.begin_healing(ledger, secuencia, hasta).await?
        }
    };
    log::warn!(
        target: LOG_TARGET,
        "healing {name}: re-asserting the orders whose changes there are numbered after {desde} and up to {hasta}"
    );
    // Orders being driven now may have heard the peer before the copy was put back
    // and not recorded it yet: each is re-asserted once its driver is done.
    let driven = ctx.instance.in_progress.driven();
    let mut complete = true;
    for id in driven {
        complete &= reassert(ctx, ledger, id).await?;
    }
    let mut after = desde;
    'orders: loop {
        let batch = ctx.store.recorded_after(ledger, after, BATCH).await?;
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        for (numero, id) in batch {
            if numero > hasta {
                break 'orders;
            }
            complete &= reassert(ctx, ledger, id).await?;
        }
        after = last;
    }
    if !complete {
        return Ok(false);
    }
    match ctx.peers.raise(ledger, hasta).await {
        Ok(_) => {
            ctx.store.end_healing(ledger).await?;
            ctx.instance.healing.healed(ledger);
            log::warn!(target: LOG_TARGET, "{name} is healed: it holds again every order pedidos recorded");
            Ok(true)
        }
        Err(e) => {
            log::warn!(target: LOG_TARGET, "{name} is healed but its refusal is not lifted yet: {e}");
            Ok(false)
        }
    }
}

/// Re-asserts one order at `ledger`, holding its turn. Returns whether it is done with
/// (healed, or surfaced as unhealable); `false` to try again.
async fn reassert<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    ledger: Ledger,
    id: i64,
) -> Result<bool, ApiError> {
    let Some(_claim) = ctx.instance.in_progress.claim(id) else {
        return Ok(false);
    };
    let Some(pedido) = ctx.store.load(id).await? else {
        return Ok(true);
    };
    let Some(reassert) = decide::reassertion(&pedido, ledger) else {
        return Ok(true);
    };
    let clave = pedido.clave(&ctx.instance.prefijo);
    let peers = ctx.peers;
    // Numbered (so that a later restore sees them) but not fenced: the peer is behind.
    let visto = Some(0);
    let outcome = match reassert {
        Reassert::Hold | Reassert::HoldConfirmed => {
            match peers.reservar(&clave, &pedido.items, visto).await {
                Err(e) => decide::reassertion_failed(&e),
                Ok(lote) if reassert == Reassert::Hold => Reasserted::Healed {
                    etapa: pedido.etapa.clone(),
                    reservas: Some(lote.ids()),
                },
                Ok(_) => match peers.confirmar(&clave, visto).await {
                    Err(e) => decide::reassertion_failed(&e),
                    Ok(lote) => Reasserted::Healed {
                        etapa: pedido.etapa.clone(),
                        reservas: Some(lote.ids()),
                    },
                },
            }
        }
        Reassert::Release => match peers.liberar(&clave, visto).await {
            Err(e) => decide::reassertion_failed(&e),
            Ok(_) => Reasserted::Healed {
                etapa: pedido.etapa.clone(),
                reservas: None,
            },
        },
        Reassert::Charge => {
            let cobro = super::clients::PagarRequest {
                monto: pedido.total,
                moneda: &pedido.moneda,
                medio: &pedido.medio,
                referencia: &clave,
                fail: false,
                visto,
            };
            decide::charge_reasserted(&pedido, peers.pagar(&cobro).await)
        }
        Reassert::Void => match peers.reembolsar(&clave, visto).await {
            Err(e) => decide::reassertion_failed(&e),
            Ok(_) => Reasserted::Healed {
                etapa: pedido.etapa.clone(),
                reservas: None,
            },
        },
    };
    let name: &str = ledger.into();
    match outcome {
        Reasserted::Retry => Ok(false),
        Reasserted::Unhealed(why) => {
            log::error!(
                target: LOG_TARGET,
                "pedido {id} cannot be re-asserted at {name}, restored from an older copy: {why}; a person must look"
            );
            ctx.instance
                .metrics
                .reasserted
                .with_label_values(&[name, "unhealed"])
                .inc();
            Ok(true)
        }
        Reasserted::Healed { etapa, reservas } => {
            if etapa != pedido.etapa || reservas.is_some() {
                let moved = ctx
                    .store
                    .transition(
                        id,
                        pedido.etapa.clone(),
                        etapa,
                        reservas,
                        ChangeNumbers::default(),
                    )
                    .await?;
                if !moved {
                    return Ok(false);
                }
            }
            log::info!(target: LOG_TARGET, "pedido {id}: re-asserted at {name} ({reassert:?})");
            ctx.instance
                .metrics
                .reasserted
                .with_label_values(&[name, "healed"])
                .inc();
            Ok(true)
        }
    }
}

/// Brings back the orders this database lost: those its peers changed after the
/// highest numbers it recorded, under its prefix, that it does not know. Returns
/// whether it has read everything its peers had.
async fn learn<P: PeerApi, S: Store>(ctx: &SagaContext<'_, P, S>) -> Result<bool, ApiError> {
    let prefijo = &ctx.instance.prefijo;
    let mut complete = true;
    for ledger in Ledger::BOTH {
        let mut desde = ctx.instance.healing.recorded.get(ledger).unwrap_or(0);
        loop {
            let page = Cambios::After {
                prefijo: format!("{prefijo}-"),
                desde,
                limit: BATCH,
            };
            let claves: Vec<(String, Option<i64>)> = match ledger {
                Ledger::Inventario => match ctx.peers.lotes(&page).await {
                    Ok(l) => l.lotes.into_iter().map(|l| (l.clave, l.secuencia)).collect(),
                    Err(e) => {
                        log::warn!(target: LOG_TARGET, "cannot list inventario's changes yet: {e}");
                        complete = false;
                        break;
                    }
                },
                Ledger::Pagos => match ctx.peers.pagos(&page).await {
                    Ok(l) => l
                        .pagos
                        .into_iter()
                        .filter_map(|p| Some((p.referencia?, p.secuencia)))
                        .collect(),
                    Err(e) => {
                        log::warn!(target: LOG_TARGET, "cannot list pagos' changes yet: {e}");
                        complete = false;
                        break;
                    }
                },
            };
            let full = claves.len() as i64 == BATCH;
            for (clave, secuencia) in claves {
                desde = desde.max(secuencia.unwrap_or(desde));
                if ctx.store.by_clave(prefijo, &clave).await?.is_some() {
                    continue;
                }
                if !bring_back(ctx, &clave).await? {
                    complete = false;
                }
            }
            if !full {
                break;
            }
        }
    }
    Ok(complete)
}

/// Asks both peers what they hold under `clave` and records the order it tells.
/// Returns whether it is done.
async fn bring_back<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    clave: &str,
) -> Result<bool, ApiError> {
    let key = Cambios::Key(clave.to_string());
    let (lotes, pagos) = match (ctx.peers.lotes(&key).await, ctx.peers.pagos(&key).await) {
        (Ok(lotes), Ok(pagos)) => (lotes, pagos),
        (Err(e), _) | (_, Err(e)) => {
            log::warn!(target: LOG_TARGET, "cannot learn yet what the peers hold under {clave}: {e}");
            return Ok(false);
        }
    };
    let lote = lotes.lotes.into_iter().next();
    let pago = pagos.pagos.into_iter().next();
    // A held lote without a charge: a free order still to confirm, or one that failed.
    let free = match (&lote, &pago) {
        (Some(lote), None) if lote.estado == super::answers::EstadoLote::Activa => {
            let ids: Vec<i64> = lote.reservas.iter().filter_map(|r| r.producto_id).collect();
            match ctx.peers.precios(&ids).await {
                Ok(precios) => ids
                    .iter()
                    .all(|id| precios.get(id).is_some_and(|p| *p == Money::ZERO)),
                Err(e) => {
                    log::warn!(target: LOG_TARGET, "cannot learn yet whether {clave} was free: {e}");
                    return Ok(false);
                }
            }
        }
        _ => false,
    };
    let held = Held { lote, pago, free };
    let seen = ChangeNumbers {
        inventario: held.lote.as_ref().and_then(|l| l.secuencia),
        pagos: held.pago.as_ref().and_then(|p| p.secuencia),
    };
    let (etapa, items, total, moneda, medio) = decide::brought_back(&held);
    let estado: &str = etapa.estado().into();
    let lost = BroughtBack {
        clave: clave.to_string(),
        items,
        total,
        moneda,
        medio,
        etapa,
        seen,
    };
    for ledger in Ledger::BOTH {
        ctx.instance.vistos.saw(ledger, seen.get(ledger));
    }
    if let Some(id) = ctx.store.bring_back(&ctx.instance.prefijo, lost).await? {
        log::warn!(
            target: LOG_TARGET,
            "pedido {id} ({clave}) was lost to a restore of this database and is brought back from its peers as {estado}"
        );
        ctx.instance.metrics.brought_back.inc();
    }
    Ok(true)
}
