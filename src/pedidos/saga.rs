//! An order's life as one state machine. [`avanzar`] is the only thing that moves an
//! order on: the request that places it calls it, and so does recovery for every
//! order that no request is driving. Each call does what the order's stage needs
//! of its peers and records where the order got to in one write, which names the
//! stage it started from (a stale change finds the order moved on and does nothing).
//!
//! ```text
//!  priced ─record─▶ Registrado ─reserve lote─▶ charge ─approved─▶ confirm lote ─▶ Cerrado: confirmado
//!                     │   │            │              │                 │ no answer ─▶ Cobrado ─confirm─▶ …
//!                     │   │ refused    │ rejected     │ no answer       │ refused ─▶ refund, release ─▶ fallido
//!                     │   ▼            ▼              ▼
//!                     │  fallido     release ─▶ rechazado / fallido (its referencia voided later)
//!                     └─ past its deadline: ask pagos (the charge, or the referencia voided) and settle by it
//!  Cerrado with a debt (a peer did not answer): release the lote, void or refund the referencia.
//! ```
//!
//! Every call that changes a peer's state names the order's key (its lote at
//! inventario, its `referencia` at pagos), so a step done twice acts once, and
//! recovery can move an order on from any stage without knowing how far the last
//! driver got. An order that was not charged by its deadline never is. A free order
//! (every price 0) asks nothing of pagos.

use super::clients::{EstadoPago, PagarRequest, PagoAnswer, PeerError, Peers, lote_released};
use super::instancia::Instancia;
use super::model::{Causa, Desenlace, Deuda, Etapa, Item, NuevoPedido, Pedido, el_pago};
use super::repo::{self, Alta, Registro};
use crate::clock::now_millis;
use crate::db::{Pool, run_blocking, run_write, run_write_owed};
use crate::error::ApiError;
use crate::money::Money;
use crate::trace;

const LOG_TARGET: &str = "pedidos";

/// What the flow needs: the peers, the database, and what this pedidos shares.
pub struct Contexto<'a> {
    pub peers: &'a Peers,
    pub pool: &'a Pool,
    pub instancia: &'a Instancia,
}

/// A stage an order moves to, and the reservation of each line once an answer named them.
struct Paso {
    hacia: Etapa,
    reservas: Option<Vec<i64>>,
}

fn cerrado(desenlace: Desenlace, deuda: Deuda, reservas: Option<Vec<i64>>) -> Option<Paso> {
    Some(Paso {
        hacia: Etapa::Cerrado { desenlace, deuda },
        reservas,
    })
}

fn fallido(causa: Causa, motivo: impl Into<String>) -> Desenlace {
    Desenlace::Fallido {
        causa,
        motivo: motivo.into(),
        pago_id: None,
    }
}

/// A failed peer call, as the reason an order failed.
fn fallido_por(error: &PeerError) -> Desenlace {
    let causa = match error {
        PeerError::Call(_) => Causa::PeerUnavailable,
        PeerError::Refused { .. } | PeerError::Missing { .. } => Causa::PeerError,
    };
    fallido(causa, error.to_string())
}

/// Places a new order: prices it, records it (claimed by this request before anyone
/// can see it), and moves it on as far as it goes.
pub async fn colocar(
    ctx: &Contexto<'_>,
    nuevo: NuevoPedido,
    clave: Option<String>,
) -> Result<Alta, ApiError> {
    let (items, total, etapa) = cotizar(ctx.peers, &nuevo).await;
    let plazo = i64::try_from(ctx.instancia.plazo.as_millis()).unwrap_or(i64::MAX);
    let vence_en = now_millis().saturating_add(plazo);
    let en_curso = ctx.instancia.en_curso.clone();
    let request_id = trace::current_id().map(|id| id.to_string());
    let (alta, turno) = run_write(ctx.pool, move |conn| {
        let registro = Registro {
            nuevo: &nuevo,
            items,
            total,
            etapa,
            vence_en,
            request_id,
        };
        let alta = repo::create(conn, registro, clave.as_deref())?;
        let turno = match &alta {
            Alta::Nuevo(pedido) => en_curso.tomar(pedido.id),
            Alta::Repetido(_) | Alta::ClaveEnUso => None,
        };
        Ok((alta, turno))
    })
    .await?;
    let Alta::Nuevo(pedido) = alta else {
        return Ok(alta);
    };
    let pedido = match pedido.etapa {
        Etapa::Registrado => avanzar(ctx, pedido).await?,
        _ => {
            contar_final(ctx, &pedido.etapa);
            pedido
        }
    };
    drop(turno);
    Ok(Alta::Nuevo(pedido))
}

/// The order's lines priced by productos, in one call, its total, and the stage it is
/// recorded at: `Registrado`, or already failed if it cannot be priced.
async fn cotizar(peers: &Peers, nuevo: &NuevoPedido) -> (Vec<Item>, Money, Etapa) {
    let mut items: Vec<Item> = nuevo
        .lineas
        .iter()
        .map(|l| Item {
            producto_id: l.producto_id,
            cantidad: l.cantidad,
            precio_unitario: None,
            reserva_id: None,
        })
        .collect();
    let sin_precio = |items: Vec<Item>, desenlace| {
        let items = items
            .into_iter()
            .map(|i| Item {
                precio_unitario: None,
                ..i
            })
            .collect();
        let etapa = Etapa::Cerrado {
            desenlace,
            deuda: Deuda::default(),
        };
        (items, Money::ZERO, etapa)
    };
    // An open circuit fails the order at once, before any peer is called.
    if let Err(e) = peers.ensure_available() {
        return sin_precio(items, fallido_por(&e));
    }
    let ids: Vec<i64> = items.iter().map(|i| i.producto_id).collect();
    let precios = match peers.precios(&ids).await {
        Ok(precios) => precios,
        Err(e) => return sin_precio(items, fallido_por(&e)),
    };
    let mut total = Money::ZERO;
    for item in &mut items {
        let Some(precio) = precios.get(&item.producto_id).copied() else {
            let motivo = format!("producto {} does not exist", item.producto_id);
            return sin_precio(items, fallido(Causa::ProductoNotFound, motivo));
        };
        let Ok(sumado) = precio.times(item.cantidad).and_then(|s| total.plus(s)) else {
            let motivo = "the order's total is larger than penguin can charge";
            return sin_precio(items, fallido(Causa::TotalTooLarge, motivo));
        };
        total = sumado;
        item.precio_unitario = Some(precio);
    }
    (items, total, Etapa::Registrado)
}

/// Moves an order from its stage to the next: does what the stage needs of the
/// peers, and records the stage reached. Returns the order as it now stands.
pub async fn avanzar(ctx: &Contexto<'_>, pedido: Pedido) -> Result<Pedido, ApiError> {
    let paso = match &pedido.etapa {
        Etapa::Registrado if pedido.vencido() && !pedido.gratis() => {
            por_lo_que_sabe_pagos(ctx, &pedido).await
        }
        Etapa::Registrado => reservar_y_cobrar(ctx, &pedido).await,
        Etapa::Cobrado { pago_id } => confirmar(ctx, &pedido, *pago_id, None).await,
        Etapa::Cerrado { desenlace, deuda } => saldar(ctx, &pedido, desenlace, *deuda).await,
    };
    match paso {
        Some(paso) if paso.hacia != pedido.etapa || paso.reservas.is_some() => {
            registrar(ctx, pedido, paso).await
        }
        _ => Ok(pedido),
    }
}

/// Records a transition, if the order still stands where it was when the step began.
async fn registrar(ctx: &Contexto<'_>, mut pedido: Pedido, paso: Paso) -> Result<Pedido, ApiError> {
    let pool = ctx.pool;
    let id = pedido.id;
    let desde = pedido.etapa.clone();
    let (recorded, paso) = run_write_owed(pool, move |conn| {
        let recorded = repo::transition(conn, id, &desde, &paso.hacia, paso.reservas.as_deref())?;
        Ok((recorded, paso))
    })
    .await?;
    if !recorded {
        log::warn!(
            target: LOG_TARGET,
            "pedido {id} had moved on from {}; what this step found ({:?}) is not recorded",
            <&str>::from(&pedido.etapa),
            paso.hacia
        );
        return run_blocking(pool, move |conn| Ok(repo::get(conn, id)?))
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("pedido {id} disappeared")));
    }
    // The step that closes the order is logged and counted once, by whoever takes it.
    if !matches!(pedido.etapa, Etapa::Cerrado { .. })
        && let Etapa::Cerrado { desenlace, .. } = &paso.hacia
    {
        match desenlace {
            Desenlace::Fallido { causa, motivo, .. } => {
                log::info!(target: LOG_TARGET, "pedido {id} fallido ({}): {motivo}", <&str>::from(causa));
            }
            Desenlace::Rechazado { pago_id } => {
                log::info!(target: LOG_TARGET, "pedido {id} rechazado: pagos rejected {}", el_pago(*pago_id));
            }
            Desenlace::Confirmado { .. } => {}
        }
        contar_final(ctx, &paso.hacia);
    }
    if let Some(reservas) = paso.reservas {
        for (item, reserva_id) in pedido.items.iter_mut().zip(reservas) {
            item.reserva_id = Some(reserva_id);
        }
    }
    pedido.etapa = paso.hacia;
    Ok(pedido)
}

/// Counts an order that reached its final estado.
fn contar_final(ctx: &Contexto<'_>, etapa: &Etapa) {
    if matches!(etapa, Etapa::Cerrado { .. }) {
        let estado: &str = etapa.estado().into();
        ctx.instancia.metrics.orders.with_label_values(&[estado]).inc();
    }
}

/// `Registrado`: reserve every line, then charge the total. Both are idempotent under
/// the order's key, so a second driver (recovery after a crash) finds what the first
/// one did instead of doing it again.
async fn reservar_y_cobrar(ctx: &Contexto<'_>, pedido: &Pedido) -> Option<Paso> {
    let clave = pedido.clave(&ctx.instancia.prefijo);
    let reservas = match ctx.peers.reservar(&clave, &pedido.items).await {
        Ok(lote) => Some(lote.ids()),
        Err(e) => return sin_reserva(ctx, pedido, &e).await,
    };
    if pedido.gratis() {
        // Nothing to charge: no payment, and no deadline to meet.
        return confirmar(ctx, pedido, None, reservas).await;
    }
    if pedido.vencido() {
        return por_lo_que_sabe_pagos(ctx, pedido).await;
    }
    let cobro = PagarRequest {
        monto: pedido.total,
        moneda: &pedido.moneda,
        medio: &pedido.medio,
        referencia: &clave,
        fail: pedido.fail,
    };
    match ctx.peers.pagar(&cobro).await {
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Aprobado,
        }) => confirmar(ctx, pedido, pago_id, reservas).await,
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Rechazado,
        }) => {
            compensar(
                ctx,
                pedido,
                Desenlace::Rechazado { pago_id },
                Deuda::default(),
                reservas,
            )
            .await
        }
        Ok(PagoAnswer { pago_id, estado }) => {
            let motivo = format!(
                "pagos answered {} {estado:?}: nothing is charged",
                el_pago(pago_id)
            );
            compensar(
                ctx,
                pedido,
                fallido(Causa::PeerError, motivo),
                Deuda::default(),
                reservas,
            )
            .await
        }
        Err(e) => {
            // If the charge may have reached pagos, its referencia is voided later: the
            // charge then never happens or, if it did, is refunded.
            let deuda = Deuda {
                anular_cobro: e.may_have_reached(),
                liberar: false,
            };
            compensar(ctx, pedido, fallido_por(&e), deuda, reservas).await
        }
    }
}

/// The lote could not be reserved. A refusal reserved nothing (a lote is all or
/// none); a call without an answer may have, so its key is released.
async fn sin_reserva(ctx: &Contexto<'_>, pedido: &Pedido, error: &PeerError) -> Option<Paso> {
    let Some(refusal) = error.refusal() else {
        if !error.may_have_reached() {
            return cerrado(fallido_por(error), Deuda::default(), None);
        }
        return compensar(ctx, pedido, fallido_por(error), Deuda::default(), None).await;
    };
    if lote_released(refusal) {
        // An earlier driver released the lote: it may have charged first.
        let motivo = "the order's reservation was released before it was completed";
        let deuda = Deuda {
            anular_cobro: true,
            liberar: false,
        };
        return cerrado(fallido(Causa::ReservaReleased, motivo), deuda, None);
    }
    let desenlace = match refusal.code.as_str() {
        "insufficient_stock" | "stock_not_found" => fallido(Causa::InsufficientStock, refusal.detail.clone()),
        _ => fallido_por(error),
    };
    cerrado(desenlace, Deuda::default(), None)
}

/// Compensation: releases the order's lote and closes it with `desenlace`. A lote
/// that cannot be released now is owed; one inventario refuses to release (it is
/// confirmed) contradicts the outcome, which is then not recorded.
async fn compensar(
    ctx: &Contexto<'_>,
    pedido: &Pedido,
    desenlace: Desenlace,
    deuda: Deuda,
    reservas: Option<Vec<i64>>,
) -> Option<Paso> {
    let clave = pedido.clave(&ctx.instancia.prefijo);
    log::info!(target: LOG_TARGET, "pedido {}: compensating, releasing lote {clave}", pedido.id);
    match ctx.peers.liberar(&clave).await {
        Ok(_) => cerrado(desenlace, deuda, reservas),
        Err(PeerError::Refused { refusal, .. }) => {
            log::error!(
                target: LOG_TARGET,
                "pedido {}: inventario refuses to release lote {clave} ({}), which contradicts its outcome \
                 {desenlace:?}; the order is left as it is",
                pedido.id,
                refusal.detail
            );
            None
        }
        Err(e) => {
            log::warn!(target: LOG_TARGET, "pedido {}: lote {clave} not released yet ({e}); recovery will retry", pedido.id);
            let deuda = Deuda {
                liberar: true,
                ..deuda
            };
            cerrado(desenlace, deuda, reservas)
        }
    }
}

/// Charged: confirm the lote. Without an answer the confirmation is owed (`Cobrado`);
/// if inventario refuses it, the units are gone and the charge is refunded.
async fn confirmar(
    ctx: &Contexto<'_>,
    pedido: &Pedido,
    pago_id: Option<i64>,
    reservas: Option<Vec<i64>>,
) -> Option<Paso> {
    let clave = pedido.clave(&ctx.instancia.prefijo);
    match ctx.peers.confirmar(&clave).await {
        Ok(lote) => cerrado(
            Desenlace::Confirmado { pago_id },
            Deuda::default(),
            Some(lote.ids()),
        ),
        Err(PeerError::Refused { refusal, .. }) => {
            let motivo = format!(
                "pedido {} was paid ({}) but its reservation can no longer be confirmed ({}); \
                 the payment is refunded",
                pedido.id,
                el_pago(pago_id),
                refusal.detail
            );
            log::error!(target: LOG_TARGET, "{motivo}");
            let refunded = match ctx.peers.reembolsar(&clave).await {
                Ok(_) => true,
                Err(e) => {
                    log::warn!(target: LOG_TARGET, "pedido {}: refund not made yet ({e}); recovery will retry", pedido.id);
                    false
                }
            };
            let desenlace = Desenlace::Fallido {
                causa: Causa::ReservaReleased,
                motivo,
                pago_id,
            };
            let deuda = Deuda {
                anular_cobro: !refunded,
                liberar: false,
            };
            compensar(ctx, pedido, desenlace, deuda, reservas).await
        }
        Err(e) => {
            log::warn!(
                target: LOG_TARGET,
                "pedido {}: paid; its confirmation is owed ({e}) and recovery will retry",
                pedido.id
            );
            Some(Paso {
                hacia: Etapa::Cobrado { pago_id },
                reservas,
            })
        }
    }
}

/// Past its deadline, an order that was not charged never is: pagos voids its
/// referencia (or answers with the charge already made), and the order is settled
/// by that answer, exactly as its first driver would have settled it.
async fn por_lo_que_sabe_pagos(ctx: &Contexto<'_>, pedido: &Pedido) -> Option<Paso> {
    let clave = pedido.clave(&ctx.instancia.prefijo);
    let pago = match ctx.peers.anular(&clave).await {
        Ok(pago) => pago,
        Err(e) => {
            log::warn!(target: LOG_TARGET, "pedido {} stays registrado until pagos answers: {e}", pedido.id);
            return None;
        }
    };
    let pago_id = pago.pago_id;
    match pago.estado {
        EstadoPago::Aprobado => confirmar(ctx, pedido, pago_id, None).await,
        EstadoPago::Rechazado => {
            compensar(
                ctx,
                pedido,
                Desenlace::Rechazado { pago_id },
                Deuda::default(),
                None,
            )
            .await
        }
        EstadoPago::Anulado => {
            let motivo = "the order was not completed within its deadline; nothing was charged";
            compensar(
                ctx,
                pedido,
                fallido(Causa::Interrupted, motivo),
                Deuda::default(),
                None,
            )
            .await
        }
        EstadoPago::Reembolsado => {
            let desenlace = Desenlace::Fallido {
                causa: Causa::Interrupted,
                motivo: format!(
                    "the order was not completed within its deadline; {} was refunded",
                    el_pago(pago_id)
                ),
                pago_id,
            };
            compensar(ctx, pedido, desenlace, Deuda::default(), None).await
        }
    }
}

/// `Cerrado` with a debt: does what is owed to the peers that did not answer before.
async fn saldar(ctx: &Contexto<'_>, pedido: &Pedido, desenlace: &Desenlace, deuda: Deuda) -> Option<Paso> {
    let clave = pedido.clave(&ctx.instancia.prefijo);
    let mut desenlace = desenlace.clone();
    let mut restante = deuda;
    if deuda.anular_cobro {
        match ctx.peers.reembolsar(&clave).await {
            Ok(pago) => {
                restante.anular_cobro = false;
                if pago.estado == EstadoPago::Reembolsado {
                    log::warn!(
                        target: LOG_TARGET,
                        "pedido {} failed after it was charged; {} refunded",
                        pedido.id,
                        el_pago(pago.pago_id)
                    );
                    if let Desenlace::Fallido { pago_id, .. } = &mut desenlace {
                        *pago_id = pago.pago_id;
                    }
                }
            }
            Err(e) => log::warn!(target: LOG_TARGET, "pedido {}: payment not voided yet: {e}", pedido.id),
        }
    }
    if deuda.liberar {
        match ctx.peers.liberar(&clave).await {
            Ok(_) => restante.liberar = false,
            Err(PeerError::Refused { refusal, .. }) => log::error!(
                target: LOG_TARGET,
                "pedido {}: inventario refuses to release lote {clave} ({}), which contradicts its outcome; \
                 the debt is kept until this is looked into",
                pedido.id,
                refusal.detail
            ),
            Err(e) => {
                log::warn!(target: LOG_TARGET, "pedido {}: lote {clave} not released yet: {e}", pedido.id)
            }
        }
    }
    cerrado(desenlace, restante, None)
}
