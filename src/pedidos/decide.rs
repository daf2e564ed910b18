//! The order's decisions, apart from I/O: which call an order needs next
//! ([`next_call`]), and where each answer takes it (one function per call). Nothing
//! here calls a peer, reads a clock or writes a row; `saga` does the calls and the
//! writes these decisions ask for, so a test can try every answer without a network.
//!
//! Compensation is data: a step that fails closes the order with what it still owes
//! ([`Owed`]: a lote to release, a referencia to void or a charge to refund), and one
//! step, [`Call::Settle`], pays what is owed, whoever drives the order.

use super::answers::{EstadoLote, EstadoPago, ListedLote, ListedPago, LoteAnswer, PagoAnswer};
use super::clients::{PeerError, lote_released};
use super::model::{Cause, ChangeNumbers, Ledger, Outcome, Owed, Pedido, Stage, payment_named};
use crate::error::ErrorCode;
use crate::money::Money;

/// A call to a peer that moves an order on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Call {
    /// Reserve the order's lote at inventario (`POST /reservas`).
    Reserve,
    /// Charge its total at pagos under its referencia (`POST /pagar`).
    Charge,
    /// Confirm its lote: the units leave for good (`POST /reservas/confirmar`).
    Confirm,
    /// Past its deadline and not known to be charged: void its referencia, or learn
    /// the charge already made with it (`POST /anular`).
    VoidOverdue,
    /// Past its deadline, for the request's own driver, which knows it never charged
    /// the order: it fails, with no call to make.
    Expire,
    /// Pay what the closed order owes: release its lote, refund or void its charge.
    Settle,
}

/// An order as a driver moves it: the stage it has reached, and what this driver has
/// learnt on the way that the stage alone does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub etapa: Stage,
    /// Whether this driver holds the order's lote reserved (asked and answered).
    pub reserved: bool,
    /// Each line's reservation, once inventario named them.
    pub reservas: Option<Vec<i64>>,
    /// Whether inventario answered the lote confirmed: the order was charged and
    /// confirmed by an earlier driver, whatever pagos says now (a restored pagos may
    /// have lost the charge), so its charge is asserted again rather than voided.
    pub sold: bool,
    /// Whether no driver asked anything of a peer for this order before this one: the
    /// request that placed it. Any other driver (recovery, after a crash or a restore)
    /// cannot know what was done before it, so a failure leaves both compensations owed.
    pub fresh: bool,
    /// Whether the order costs nothing: pagos is never asked anything for it.
    pub free: bool,
    /// The peers that did not answer this driver: what is owed to them waits for the
    /// next driver, rather than count against their circuit twice for one order.
    pub silent: Silent,
    /// The numbers the peers gave the changes this driver saw.
    pub seen: ChangeNumbers,
}

/// Which of the peers an order owes work to did not answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silent {
    pub inventario: bool,
    pub pagos: bool,
}

impl Progress {
    /// A driver's start: the recorded stage, nothing learnt yet.
    pub fn start(etapa: Stage, fresh: bool) -> Self {
        Self {
            etapa,
            reserved: false,
            reservas: None,
            sold: false,
            fresh,
            free: false,
            silent: Silent::default(),
            seen: ChangeNumbers::default(),
        }
    }

    /// Notes that `peer` gave no answer, if `error` says so.
    fn heard(mut self, peer: Ledger, error: &PeerError) -> Self {
        if matches!(error, PeerError::Call(_) | PeerError::Stale { .. }) {
            match peer {
                Ledger::Inventario => self.silent.inventario = true,
                Ledger::Pagos => self.silent.pagos = true,
            }
        }
        self
    }

    /// The debts this driver can still try to pay: each owed to a peer that has not
    /// been silent with it.
    pub fn payable(&self) -> Owed {
        match &self.etapa {
            Stage::Cerrado { deuda, .. } => Owed {
                liberar: deuda.liberar && !self.silent.inventario,
                anular_cobro: deuda.anular_cobro && !self.silent.pagos,
            },
            _ => Owed::default(),
        }
    }

    fn to(self, etapa: Stage) -> Self {
        Self { etapa, ..self }
    }

    fn closed(self, desenlace: Outcome, deuda: Owed) -> Self {
        self.to(Stage::Cerrado { desenlace, deuda })
    }

    /// What a failure before the order's outcome leaves owed: `may_have_reserved` and
    /// `may_have_charged` as this driver saw it, and both for a driver that was not first.
    fn owing(&self, may_have_reserved: bool, may_have_charged: bool) -> Owed {
        Owed {
            liberar: may_have_reserved || !self.fresh,
            anular_cobro: may_have_charged || (!self.fresh && !self.free),
        }
    }
}

/// A decision: where the order now stands, and whether the driver goes on (a peer
/// answered) or stops here and records it (a peer did not answer, or said something
/// that needs a person's eyes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub progress: Progress,
    pub go_on: bool,
}

fn go_on(progress: Progress) -> Decision {
    Decision {
        progress,
        go_on: true,
    }
}

fn stop(progress: Progress) -> Decision {
    Decision {
        progress,
        go_on: false,
    }
}

/// An order failed for `causa`, with nothing charged.
pub fn fallido(causa: Cause, motivo: impl Into<String>) -> Outcome {
    Outcome::Fallido {
        causa,
        motivo: motivo.into(),
        pago_id: None,
    }
}

/// A failed peer call, as the reason an order failed.
pub fn failed_by(error: &PeerError) -> Outcome {
    let causa = match error {
        PeerError::Call(_) | PeerError::Stale { .. } => Cause::PeerUnavailable,
        PeerError::Refused { .. } | PeerError::Missing { .. } => Cause::PeerError,
    };
    fallido(causa, error.to_string())
}

/// The call the order needs next, or `None` when it is over and owes nothing.
/// `overdue`: its deadline has passed.
pub fn next_call(pedido: &Pedido, progress: &Progress, overdue: bool) -> Option<Call> {
    match &progress.etapa {
        Stage::Registrado if overdue && !pedido.is_free() && progress.fresh => Some(Call::Expire),
        // Any other driver asks inventario first: a lote it finds confirmed was sold.
        Stage::Registrado if !progress.reserved => Some(Call::Reserve),
        Stage::Registrado if overdue && !pedido.is_free() && !progress.sold => Some(Call::VoidOverdue),
        // Nothing to charge for a free order: no payment, and no deadline to meet.
        Stage::Registrado if pedido.is_free() => Some(Call::Confirm),
        Stage::Registrado => Some(Call::Charge),
        Stage::Cobrado { .. } => Some(Call::Confirm),
        Stage::Cerrado { .. } if !progress.payable().is_empty() => Some(Call::Settle),
        Stage::Cerrado { .. } => None,
    }
}

/// [`Call::Reserve`] answered. A refusal reserved nothing (a lote is all or none); a
/// call without an answer may have, so its lote is owed a release.
pub fn reserved(progress: Progress, answer: Result<LoteAnswer, PeerError>) -> Decision {
    let error = match answer {
        Ok(lote) => {
            return go_on(Progress {
                reserved: true,
                sold: lote.estado == EstadoLote::Confirmada,
                reservas: Some(lote.ids()),
                ..progress
            });
        }
        Err(error) => error,
    };
    let progress = progress.heard(Ledger::Inventario, &error);
    let Some(refusal) = error.refusal() else {
        let deuda = progress.owing(error.may_have_reached(), false);
        return go_on(progress.closed(failed_by(&error), deuda));
    };
    if lote_released(refusal) {
        // An earlier driver released the lote: it may have charged first.
        let motivo = "the order's reservation was released before it was completed";
        let deuda = Owed {
            liberar: false,
            anular_cobro: !progress.free,
        };
        return go_on(progress.closed(fallido(Cause::ReservaReleased, motivo), deuda));
    }
    let desenlace =
        if refusal.code.is(ErrorCode::InsufficientStock) || refusal.code.is(ErrorCode::StockNotFound) {
            fallido(Cause::InsufficientStock, refusal.detail.clone())
        } else {
            failed_by(&error)
        };
    let deuda = progress.owing(false, false);
    go_on(progress.closed(desenlace, deuda))
}

/// [`Call::Charge`] answered: approved, the units are confirmed next; otherwise the
/// order closes and its lote is owed a release (and, without an answer, its charge a
/// void, which refunds it if it was made after all).
pub fn charged(progress: Progress, answer: Result<PagoAnswer, PeerError>) -> Decision {
    let liberar = Owed {
        liberar: true,
        anular_cobro: false,
    };
    match answer {
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Aprobado,
            ..
        }) => go_on(progress.to(Stage::Cobrado { pago_id })),
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Rechazado,
            ..
        }) => go_on(progress.closed(Outcome::Rechazado { pago_id }, liberar)),
        Ok(PagoAnswer { pago_id, estado, .. }) => {
            let motivo = format!(
                "pagos answered {} {estado:?}: nothing is charged",
                payment_named(pago_id)
            );
            go_on(progress.closed(fallido(Cause::PeerError, motivo), liberar))
        }
        Err(error) => {
            let progress = progress.heard(Ledger::Pagos, &error);
            let deuda = progress.owing(true, error.refusal().is_none() && error.may_have_reached());
            go_on(progress.closed(failed_by(&error), deuda))
        }
    }
}

/// [`Call::Confirm`] answered: the order is confirmed. Without an answer the
/// confirmation is owed (`Cobrado`, recorded); if inventario refuses, the units are
/// gone: the order fails, its charge refunded and its lote released.
pub fn confirmed(pedido: &Pedido, progress: Progress, answer: Result<LoteAnswer, PeerError>) -> Decision {
    let pago_id = match &progress.etapa {
        Stage::Cobrado { pago_id } => *pago_id,
        _ => None,
    };
    match answer {
        Ok(lote) if lote.estado == EstadoLote::Confirmada => {
            let reservas = Some(lote.ids());
            go_on(Progress {
                reservas,
                ..progress.closed(Outcome::Confirmado { pago_id }, Owed::default())
            })
        }
        Ok(lote) => {
            let motivo = format!(
                "inventario answered the confirmation of the order's lote with estado {:?}",
                lote.estado
            );
            failed_confirmation(pedido, progress, pago_id, &motivo)
        }
        Err(PeerError::Refused { refusal, .. }) => {
            failed_confirmation(pedido, progress, pago_id, &refusal.detail)
        }
        Err(_) => stop(Progress {
            etapa: Stage::Cobrado { pago_id },
            ..progress
        }),
    }
}

fn failed_confirmation(pedido: &Pedido, progress: Progress, pago_id: Option<i64>, why: &str) -> Decision {
    let motivo = format!(
        "pedido {} was paid ({}) but its reservation can no longer be confirmed ({why}); \
         the payment is refunded",
        pedido.id,
        payment_named(pago_id)
    );
    let desenlace = Outcome::Fallido {
        causa: Cause::ReservaReleased,
        motivo,
        pago_id,
    };
    let deuda = Owed {
        liberar: true,
        anular_cobro: !pedido.is_free(),
    };
    go_on(progress.closed(desenlace, deuda))
}

/// [`Call::VoidOverdue`] answered: the order is settled by what pagos knows of its
/// referencia, exactly as its first driver would have settled it. Without an answer it
/// stays where it is.
pub fn voided(progress: Progress, answer: Result<PagoAnswer, PeerError>) -> Decision {
    let Ok(pago) = answer else {
        return stop(progress);
    };
    let liberar = Owed {
        liberar: true,
        anular_cobro: false,
    };
    let pago_id = pago.pago_id;
    match pago.estado {
        EstadoPago::Aprobado => go_on(progress.to(Stage::Cobrado { pago_id })),
        EstadoPago::Rechazado => go_on(progress.closed(Outcome::Rechazado { pago_id }, liberar)),
        EstadoPago::Anulado => {
            let motivo = "the order was not completed within its deadline; nothing was charged";
            go_on(progress.closed(fallido(Cause::Interrupted, motivo), liberar))
        }
        EstadoPago::Reembolsado => {
            let desenlace = Outcome::Fallido {
                causa: Cause::Interrupted,
                motivo: format!(
                    "the order was not completed within its deadline; {} was refunded",
                    payment_named(pago_id)
                ),
                pago_id,
            };
            go_on(progress.closed(desenlace, liberar))
        }
    }
}

/// [`Call::Expire`]: the order ran out of time before its driver charged it, so it
/// never is; the lote this driver reserved is owed a release.
pub fn expired(progress: Progress) -> Decision {
    let motivo = "the order was not completed within its deadline; nothing was charged";
    let deuda = Owed {
        liberar: progress.reserved,
        anular_cobro: false,
    };
    go_on(progress.closed(fallido(Cause::Interrupted, motivo), deuda))
}

/// What [`Call::Settle`] heard: the answer to the release of the lote and to the
/// refund of the charge, for each of the two that was owed.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub release: Option<Result<LoteAnswer, PeerError>>,
    pub refund: Option<Result<PagoAnswer, PeerError>>,
}

/// [`Call::Settle`] answered: each debt a peer acknowledged is paid; one it did not
/// is still owed, and the driver stops. A refund names the payment it gave back.
pub fn settled(progress: Progress, settlement: Settlement) -> Decision {
    let Stage::Cerrado {
        mut desenlace,
        mut deuda,
    } = progress.etapa.clone()
    else {
        return stop(progress);
    };
    if let Some(Ok(_)) = settlement.release {
        deuda.liberar = false;
    }
    if let Some(Ok(pago)) = settlement.refund {
        deuda.anular_cobro = false;
        if pago.estado == EstadoPago::Reembolsado
            && let Outcome::Fallido { pago_id, .. } = &mut desenlace
        {
            *pago_id = pago.pago_id;
        }
    }
    let paid = deuda.is_empty();
    let progress = progress.closed(desenlace, deuda);
    if paid { go_on(progress) } else { stop(progress) }
}

/// What re-asserting an order at a peer restored from an older copy asks of it: the
/// peer is made to hold again what pedidos recorded, through the order's key, so that
/// nothing is done twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reassert {
    /// The lote held and confirmed (reserved again if the copy lacks it): the order
    /// is confirmed, its units sold.
    HoldConfirmed,
    /// The lote held: the order is charged and its confirmation still to come.
    Hold,
    /// The lote released, or its key marked released: the order ended without it.
    Release,
    /// The charge standing under the order's referencia, made again if the copy lacks
    /// it (a referencia is charged at most once, so never twice).
    Charge,
    /// No charge standing under the referencia: refunded, or the referencia voided.
    Void,
}

/// What `ledger`, restored behind pedidos, must hold again for the order; `None` if it
/// owes it nothing a driver would not ask for anyway (an order still `Registrado`
/// reserves and charges under its key; a free one never asks pagos).
pub fn reassertion(pedido: &Pedido, ledger: Ledger) -> Option<Reassert> {
    let confirmado = matches!(
        pedido.etapa,
        Stage::Cerrado {
            desenlace: Outcome::Confirmado { .. },
            ..
        }
    );
    match (ledger, &pedido.etapa) {
        (_, Stage::Registrado) => None,
        (Ledger::Inventario, Stage::Cobrado { .. }) => Some(Reassert::Hold),
        (Ledger::Inventario, _) if confirmado => Some(Reassert::HoldConfirmed),
        (Ledger::Inventario, _) => Some(Reassert::Release),
        (Ledger::Pagos, _) if pedido.is_free() => None,
        (Ledger::Pagos, Stage::Cobrado { .. }) => Some(Reassert::Charge),
        (Ledger::Pagos, _) if confirmado => Some(Reassert::Charge),
        (Ledger::Pagos, _) => Some(Reassert::Void),
    }
}

/// Where a re-assertion got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasserted {
    /// The peer holds what pedidos recorded; the order now stands at `etapa` (its
    /// charge may have a new id) with these reservations.
    Healed {
        etapa: Stage,
        reservas: Option<Vec<i64>>,
    },
    /// The peer did not answer: try again later.
    Retry,
    /// The peer refused: what pedidos recorded cannot be made true there (the units
    /// were sold to another order meanwhile, say). A person must look.
    Unhealed(String),
}

/// A failed re-assertion call: tried again if the peer did not answer, else surfaced.
pub fn reassertion_failed(error: &PeerError) -> Reasserted {
    match error {
        PeerError::Call(_) | PeerError::Stale { .. } => Reasserted::Retry,
        PeerError::Refused { .. } | PeerError::Missing { .. } => Reasserted::Unhealed(error.to_string()),
    }
}

/// [`Reassert::Charge`] answered: the order's charge is the one pagos holds now.
pub fn charge_reasserted(pedido: &Pedido, answer: Result<PagoAnswer, PeerError>) -> Reasserted {
    let pago = match answer {
        Ok(pago) => pago,
        Err(error) => return reassertion_failed(&error),
    };
    if pago.estado != EstadoPago::Aprobado {
        return Reasserted::Unhealed(format!(
            "pagos holds {} for its referencia as {:?}, not approved",
            payment_named(pago.pago_id),
            pago.estado
        ));
    }
    let etapa = match pedido.etapa.clone() {
        Stage::Cobrado { .. } => Stage::Cobrado {
            pago_id: pago.pago_id,
        },
        Stage::Cerrado { deuda, .. } => Stage::Cerrado {
            desenlace: Outcome::Confirmado {
                pago_id: pago.pago_id,
            },
            deuda,
        },
        other => other,
    };
    Reasserted::Healed {
        etapa,
        reservas: None,
    }
}

/// What a lost order's peers hold under its key, as inventario and pagos list them.
#[derive(Debug, Clone, Default)]
pub struct Held {
    pub lote: Option<ListedLote>,
    pub pago: Option<ListedPago>,
    /// Whether productos prices every line of the lote at 0 now: an order that asks
    /// nothing of pagos, so a held lote without a charge is one still to confirm.
    pub free: bool,
}

/// An order this pedidos lost (a restore of its own database), as its peers' records
/// tell it: its lines (from its lote), its total, currency and means (from its charge),
/// and the stage it is brought back at, from which recovery takes it on as from any
/// other. A confirmed lote is a confirmed order; an approved charge without one is an
/// order charged and not yet confirmed (recovery confirms it, or refunds it if its lote
/// is gone), and so is a held lote of a free order; anything else ended without a
/// sale, and whatever its peers still hold for it is owed back.
pub fn brought_back(held: &Held) -> (Stage, Vec<super::model::Item>, Money, String, String) {
    use super::model::Item;
    let items: Vec<Item> = held
        .lote
        .iter()
        .flat_map(|lote| &lote.reservas)
        .filter_map(|r| {
            Some(Item {
                producto_id: r.producto_id?,
                cantidad: r.cantidad,
                precio_unitario: None,
                reserva_id: Some(r.reserva_id),
            })
        })
        .collect();
    let (total, moneda, medio) = match &held.pago {
        Some(pago) => (pago.monto, pago.moneda.clone(), pago.medio.clone()),
        None => (Money::ZERO, String::new(), String::new()),
    };
    let lote = held.lote.as_ref().map(|l| l.estado);
    let pago = held.pago.as_ref().map(|p| (p.estado, Some(p.pago_id)));
    let lote_active = lote == Some(EstadoLote::Activa);
    let motivo = "pedidos lost this order to a restore of its database and learned it back from its peers; \
                  it had not been completed";
    let etapa = match (lote, pago) {
        (Some(EstadoLote::Confirmada), pago) => Stage::Cerrado {
            desenlace: Outcome::Confirmado {
                pago_id: pago
                    .filter(|(e, _)| *e == EstadoPago::Aprobado)
                    .and_then(|(_, id)| id),
            },
            deuda: Owed::default(),
        },
        (_, Some((EstadoPago::Aprobado, pago_id))) => Stage::Cobrado { pago_id },
        (Some(EstadoLote::Activa), None) if held.free => Stage::Cobrado { pago_id: None },
        (_, Some((EstadoPago::Rechazado, pago_id))) => Stage::Cerrado {
            desenlace: Outcome::Rechazado { pago_id },
            deuda: Owed {
                liberar: lote_active,
                anular_cobro: false,
            },
        },
        (_, Some((estado, pago_id))) => Stage::Cerrado {
            desenlace: Outcome::Fallido {
                causa: Cause::Interrupted,
                motivo: motivo.into(),
                pago_id: (estado == EstadoPago::Reembolsado).then_some(pago_id).flatten(),
            },
            deuda: Owed {
                liberar: lote_active,
                anular_cobro: false,
            },
        },
        // No charge at all: one may still arrive late under its referencia, so it is voided.
        (_, None) => Stage::Cerrado {
            desenlace: Outcome::Fallido {
                causa: Cause::Interrupted,
                motivo: motivo.into(),
                pago_id: None,
            },
            deuda: Owed {
                liberar: lote_active,
                anular_cobro: true,
            },
        },
    };
    (etapa, items, total, moneda, medio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use crate::pedidos::answers::{PeerCode, ReservaAnswer};
    use crate::pedidos::model::Item;
    use crate::pedidos::peer::{CallError, Refusal};
    use actix_web::http::StatusCode;
    use std::time::Duration;

    fn pedido(total: i64) -> Pedido {
        Pedido {
            id: 7,
            nonce: Some(9),
            brought_back_key: None,
            items: vec![Item {
                producto_id: 1,
                cantidad: 2,
                precio_unitario: Money::from_hundredths(total / 2).ok(),
                reserva_id: None,
            }],
            total: Money::from_hundredths(total).expect("money"),
            moneda: "PYG".into(),
            medio: "tarjeta".into(),
            fail: false,
            creado_en: String::new(),
            vence_en: 0,
            request_id: None,
            traceparent: None,
            etapa: Stage::Registrado,
        }
    }

    /// Every kind of answer a peer call can end with, but a success.
    fn failures() -> Vec<(&'static str, PeerError)> {
        let refused = |status: StatusCode, code: &str| PeerError::Refused {
            peer: "peer",
            refusal: Refusal {
                status,
                code: PeerCode::parse(code),
                detail: format!("refused: {code}"),
            },
        };
        let unavailable = |sent| {
            PeerError::Call(CallError::Unavailable {
                peer: "peer",
                cause: "no answer".into(),
                sent,
            })
        };
        vec![
            ("never sent", unavailable(false)),
            ("sent, no answer (lost, cut or timed out)", unavailable(true)),
            (
                "circuit open",
                PeerError::Call(CallError::CircuitOpen {
                    peer: "peer",
                    retry_after: Duration::from_secs(30),
                }),
            ),
            (
                "insufficient stock",
                refused(StatusCode::CONFLICT, "insufficient_stock"),
            ),
            ("no stock row", refused(StatusCode::NOT_FOUND, "stock_not_found")),
            ("lote released", refused(StatusCode::CONFLICT, "reserva_released")),
            (
                "lote not active",
                refused(StatusCode::CONFLICT, "reserva_not_active"),
            ),
            (
                "lote confirmed",
                refused(StatusCode::CONFLICT, "reserva_confirmed"),
            ),
            (
                "invalid",
                refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid_value"),
            ),
            (
                "key in use",
                refused(StatusCode::CONFLICT, "idempotency_key_reused"),
            ),
            (
                "route missing",
                PeerError::Missing {
                    peer: "peer",
                    route: "POST /x".into(),
                },
            ),
        ]
    }

    fn lote(estado: EstadoLote) -> LoteAnswer {
        LoteAnswer {
            estado,
            reservas: vec![ReservaAnswer { reserva_id: 11 }],
            secuencia: None,
        }
    }

    fn pago(estado: EstadoPago) -> PagoAnswer {
        PagoAnswer {
            pago_id: Some(5),
            estado,
            secuencia: None,
        }
    }

    fn deuda(d: &Decision) -> Owed {
        match &d.progress.etapa {
            Stage::Cerrado { deuda, .. } => *deuda,
            other => panic!("not closed: {other:?}"),
        }
    }

    #[test]
    fn next_call_follows_the_stage_the_deadline_and_the_price() {
        let paid = pedido(1000);
        let free = pedido(0);
        let start = Progress::start(Stage::Registrado, true);
        let reserved = Progress {
            reserved: true,
            ..start.clone()
        };
        assert_eq!(next_call(&paid, &start, false), Some(Call::Reserve));
        assert_eq!(next_call(&paid, &reserved, false), Some(Call::Charge));
        assert_eq!(next_call(&paid, &start, true), Some(Call::Expire));
        assert_eq!(next_call(&paid, &reserved, true), Some(Call::Expire));
        let recovering = Progress {
            fresh: false,
            ..reserved.clone()
        };
        assert_eq!(next_call(&paid, &recovering, true), Some(Call::VoidOverdue));
        let unreserved = Progress {
            fresh: false,
            ..start.clone()
        };
        assert_eq!(next_call(&paid, &unreserved, true), Some(Call::Reserve));
        let sold = Progress {
            sold: true,
            ..recovering.clone()
        };
        assert_eq!(next_call(&paid, &sold, true), Some(Call::Charge));
        assert_eq!(next_call(&free, &reserved, true), Some(Call::Confirm));
        assert_eq!(next_call(&free, &start, true), Some(Call::Reserve));
        let cobrado = start.clone().to(Stage::Cobrado { pago_id: Some(1) });
        assert_eq!(next_call(&paid, &cobrado, true), Some(Call::Confirm));
        let owing = start.clone().closed(
            Outcome::Rechazado { pago_id: None },
            Owed {
                liberar: true,
                anular_cobro: false,
            },
        );
        assert_eq!(next_call(&paid, &owing, false), Some(Call::Settle));
        let over = start.closed(Outcome::Confirmado { pago_id: None }, Owed::default());
        assert_eq!(next_call(&paid, &over, false), None);
    }

    #[test]
    fn a_reserved_lote_goes_on_to_the_charge_with_its_reservations() {
        let d = reserved(
            Progress::start(Stage::Registrado, true),
            Ok(lote(EstadoLote::Activa)),
        );
        assert!(d.go_on);
        assert!(d.progress.reserved);
        assert_eq!(d.progress.reservas, Some(vec![11]));
        assert_eq!(d.progress.etapa, Stage::Registrado);
    }

    #[test]
    fn every_failure_to_reserve_closes_the_order_owing_what_may_have_happened() {
        for fresh in [true, false] {
            for (what, error) in failures() {
                let d = reserved(Progress::start(Stage::Registrado, fresh), Err(error.clone()));
                let owed = deuda(&d);
                assert!(d.go_on, "{what}: the driver settles what is owed next");
                let released = error.refusal().is_some_and(lote_released);
                // A lote released by someone else may have been charged first.
                assert_eq!(owed.anular_cobro, released || !fresh, "{what}, fresh {fresh}");
                assert_eq!(
                    owed.liberar,
                    !released && (error.may_have_reached() || !fresh),
                    "{what}, fresh {fresh}"
                );
                assert_eq!(
                    d.progress.etapa.estado(),
                    super::super::model::EstadoPedido::Fallido
                );
            }
        }
    }

    #[test]
    fn a_free_order_never_owes_pagos_anything_whoever_drives_it() {
        for (what, error) in failures() {
            let start = Progress {
                free: true,
                ..Progress::start(Stage::Registrado, false)
            };
            let d = reserved(start, Err(error));
            assert!(!deuda(&d).anular_cobro, "{what}");
        }
    }

    #[test]
    fn a_charge_approved_is_confirmed_next_and_anything_else_closes_owing_the_lote() {
        let reserved = Progress {
            reserved: true,
            ..Progress::start(Stage::Registrado, true)
        };
        let d = charged(reserved.clone(), Ok(pago(EstadoPago::Aprobado)));
        assert_eq!(d.progress.etapa, Stage::Cobrado { pago_id: Some(5) });
        for estado in [
            EstadoPago::Rechazado,
            EstadoPago::Anulado,
            EstadoPago::Reembolsado,
        ] {
            let d = charged(reserved.clone(), Ok(pago(estado)));
            assert_eq!(
                deuda(&d),
                Owed {
                    liberar: true,
                    anular_cobro: false
                },
                "{estado:?}"
            );
            let expected = if estado == EstadoPago::Rechazado {
                super::super::model::EstadoPedido::Rechazado
            } else {
                super::super::model::EstadoPedido::Fallido
            };
            assert_eq!(d.progress.etapa.estado(), expected);
        }
        for fresh in [true, false] {
            let reserved = Progress {
                fresh,
                ..reserved.clone()
            };
            for (what, error) in failures() {
                let d = charged(reserved.clone(), Err(error.clone()));
                let owed = deuda(&d);
                assert!(owed.liberar, "{what}");
                let may_have_charged = error.refusal().is_none() && error.may_have_reached();
                assert_eq!(
                    owed.anular_cobro,
                    may_have_charged || !fresh,
                    "{what}, fresh {fresh}"
                );
            }
        }
    }

    #[test]
    fn a_confirmation_unanswered_is_owed_and_a_refused_one_refunds_and_releases() {
        let p = pedido(1000);
        let cobrado = Progress::start(Stage::Cobrado { pago_id: Some(5) }, false);
        let d = confirmed(&p, cobrado.clone(), Ok(lote(EstadoLote::Confirmada)));
        assert_eq!(
            d.progress.etapa,
            Stage::Cerrado {
                desenlace: Outcome::Confirmado { pago_id: Some(5) },
                deuda: Owed::default()
            }
        );
        assert_eq!(d.progress.reservas, Some(vec![11]));
        for estado in [EstadoLote::Activa, EstadoLote::Liberada, EstadoLote::Expirada] {
            let d = confirmed(&p, cobrado.clone(), Ok(lote(estado)));
            assert_eq!(
                deuda(&d),
                Owed {
                    liberar: true,
                    anular_cobro: true
                }
            );
        }
        for (what, error) in failures() {
            let d = confirmed(&p, cobrado.clone(), Err(error.clone()));
            if error.refusal().is_some() {
                assert_eq!(
                    deuda(&d),
                    Owed {
                        liberar: true,
                        anular_cobro: true
                    },
                    "{what}"
                );
                assert!(matches!(
                    &d.progress.etapa,
                    Stage::Cerrado {
                        desenlace: Outcome::Fallido { pago_id: Some(5), .. },
                        ..
                    }
                ));
            } else {
                assert!(!d.go_on, "{what}");
                assert_eq!(d.progress.etapa, Stage::Cobrado { pago_id: Some(5) }, "{what}");
            }
        }
        // A free order was never charged: a refused confirmation owes no refund.
        let free = pedido(0);
        let d = confirmed(
            &free,
            Progress::start(Stage::Registrado, true),
            Err(failures().remove(6).1),
        );
        assert_eq!(
            deuda(&d),
            Owed {
                liberar: true,
                anular_cobro: false
            }
        );
    }

    #[test]
    fn an_overdue_order_is_settled_by_what_pagos_knows_and_waits_for_an_answer() {
        let start = Progress::start(Stage::Registrado, false);
        assert_eq!(
            voided(start.clone(), Ok(pago(EstadoPago::Aprobado)))
                .progress
                .etapa,
            Stage::Cobrado { pago_id: Some(5) }
        );
        for (estado, expected) in [
            (
                EstadoPago::Rechazado,
                super::super::model::EstadoPedido::Rechazado,
            ),
            (EstadoPago::Anulado, super::super::model::EstadoPedido::Fallido),
            (
                EstadoPago::Reembolsado,
                super::super::model::EstadoPedido::Fallido,
            ),
        ] {
            let d = voided(start.clone(), Ok(pago(estado)));
            assert_eq!(d.progress.etapa.estado(), expected);
            assert!(deuda(&d).liberar);
        }
        for (what, error) in failures() {
            let d = voided(start.clone(), Err(error));
            assert!(!d.go_on, "{what}");
            assert_eq!(d.progress, start, "{what}");
        }
    }

    #[test]
    fn a_debt_is_paid_only_when_its_peer_answers() {
        let owing = Progress::start(
            Stage::Cerrado {
                desenlace: fallido(Cause::PeerUnavailable, "x"),
                deuda: Owed {
                    liberar: true,
                    anular_cobro: true,
                },
            },
            false,
        );
        let paid = settled(
            owing.clone(),
            Settlement {
                release: Some(Ok(lote(EstadoLote::Liberada))),
                refund: Some(Ok(pago(EstadoPago::Reembolsado))),
            },
        );
        assert!(paid.go_on);
        assert!(matches!(
            paid.progress.etapa,
            Stage::Cerrado { desenlace: Outcome::Fallido { pago_id: Some(5), .. }, deuda } if deuda.is_empty()
        ));
        for (what, error) in failures() {
            let d = settled(
                owing.clone(),
                Settlement {
                    release: Some(Err(error.clone())),
                    refund: Some(Ok(pago(EstadoPago::Anulado))),
                },
            );
            assert!(!d.go_on, "{what}");
            assert_eq!(
                deuda(&d),
                Owed {
                    liberar: true,
                    anular_cobro: false
                },
                "{what}"
            );
            let d = settled(
                owing.clone(),
                Settlement {
                    release: Some(Ok(lote(EstadoLote::Liberada))),
                    refund: Some(Err(error)),
                },
            );
            assert_eq!(
                deuda(&d),
                Owed {
                    liberar: false,
                    anular_cobro: true
                },
                "{what}"
            );
        }
    }

    fn closed(desenlace: Outcome) -> Pedido {
        Pedido {
            etapa: Stage::Cerrado {
                desenlace,
                deuda: Owed::default(),
            },
            ..pedido(1000)
        }
    }

    #[test]
    fn a_restored_peer_is_asked_to_hold_again_what_the_order_left_there() {
        use Reassert::*;
        let confirmado = closed(Outcome::Confirmado { pago_id: Some(3) });
        let rechazado = closed(Outcome::Rechazado { pago_id: Some(3) });
        let cobrado = Pedido {
            etapa: Stage::Cobrado { pago_id: Some(3) },
            ..pedido(1000)
        };
        let free = Pedido {
            etapa: confirmado.etapa.clone(),
            ..pedido(0)
        };
        let table = [
            (&confirmado, Some(HoldConfirmed), Some(Charge)),
            (&cobrado, Some(Hold), Some(Charge)),
            (&rechazado, Some(Release), Some(Void)),
            (&free, Some(HoldConfirmed), None),
            (&pedido(1000), None, None),
        ];
        for (order, inventario, pagos) in table {
            assert_eq!(
                reassertion(order, Ledger::Inventario),
                inventario,
                "{:?}",
                order.etapa
            );
            assert_eq!(reassertion(order, Ledger::Pagos), pagos, "{:?}", order.etapa);
        }
    }

    #[test]
    fn a_charge_made_again_is_recorded_under_its_new_id_and_a_refusal_is_surfaced() {
        let confirmado = closed(Outcome::Confirmado { pago_id: Some(3) });
        let again = PagoAnswer {
            pago_id: Some(8),
            ..pago(EstadoPago::Aprobado)
        };
        let Reasserted::Healed { etapa, .. } = charge_reasserted(&confirmado, Ok(again)) else {
            panic!("not healed");
        };
        assert_eq!(
            etapa,
            Stage::Cerrado {
                desenlace: Outcome::Confirmado { pago_id: Some(8) },
                deuda: Owed::default()
            }
        );
        assert!(matches!(
            charge_reasserted(&confirmado, Ok(pago(EstadoPago::Anulado))),
            Reasserted::Unhealed(_)
        ));
        for (what, error) in failures() {
            let outcome = charge_reasserted(&confirmado, Err(error.clone()));
            let expected = match error {
                PeerError::Call(_) | PeerError::Stale { .. } => Reasserted::Retry,
                _ => Reasserted::Unhealed(error.to_string()),
            };
            assert_eq!(outcome, expected, "{what}");
        }
    }

    fn listed_lote(estado: EstadoLote) -> ListedLote {
        serde_json::from_value(serde_json::json!({
            "clave": "p-7-9", "estado": estado_name(estado), "secuencia": 4,
            "reservas": [{"reserva_id": 11, "producto_id": 2, "cantidad": 3}]
        }))
        .expect("a lote")
    }

    fn estado_name(estado: EstadoLote) -> &'static str {
        match estado {
            EstadoLote::Activa => "activa",
            EstadoLote::Confirmada => "confirmada",
            EstadoLote::Liberada => "liberada",
            EstadoLote::Expirada => "expirada",
        }
    }

    fn listed_pago(estado: &str) -> ListedPago {
        serde_json::from_value(serde_json::json!({
            "pago_id": 5, "estado": estado, "monto": 12.5, "moneda": "PYG", "medio": "tarjeta",
            "referencia": "p-7-9", "secuencia": 2
        }))
        .expect("a payment")
    }

    #[test]
    fn an_order_lost_by_pedidos_comes_back_as_its_peers_hold_it() {
        let held = |lote: Option<EstadoLote>, pago: Option<&str>, free: bool| Held {
            lote: lote.map(listed_lote),
            pago: pago.map(listed_pago),
            free,
        };
        let (etapa, items, total, moneda, _) =
            brought_back(&held(Some(EstadoLote::Confirmada), Some("aprobado"), false));
        assert_eq!(
            etapa,
            Stage::Cerrado {
                desenlace: Outcome::Confirmado { pago_id: Some(5) },
                deuda: Owed::default()
            }
        );
        assert_eq!((items.len(), items[0].producto_id, items[0].cantidad), (1, 2, 3));
        assert_eq!((total.hundredths(), moneda.as_str()), (1250, "PYG"));
        let stage = |lote, pago, free| brought_back(&held(lote, pago, free)).0;
        assert_eq!(
            stage(Some(EstadoLote::Activa), Some("aprobado"), false),
            Stage::Cobrado { pago_id: Some(5) }
        );
        assert_eq!(
            stage(Some(EstadoLote::Activa), None, true),
            Stage::Cobrado { pago_id: None }
        );
        let Stage::Cerrado { desenlace, deuda } = stage(Some(EstadoLote::Activa), None, false) else {
            panic!("not closed");
        };
        assert!(matches!(desenlace, Outcome::Fallido { pago_id: None, .. }));
        assert!(
            deuda.liberar && deuda.anular_cobro,
            "what its peers hold is owed back"
        );
        let Stage::Cerrado { desenlace, deuda } = stage(Some(EstadoLote::Liberada), Some("rechazado"), false)
        else {
            panic!("not closed");
        };
        assert_eq!(desenlace, Outcome::Rechazado { pago_id: Some(5) });
        assert!(deuda.is_empty());
        let Stage::Cerrado { desenlace, .. } = stage(Some(EstadoLote::Liberada), Some("reembolsado"), false)
        else {
            panic!("not closed");
        };
        assert!(matches!(desenlace, Outcome::Fallido { pago_id: Some(5), .. }));
    }
}
