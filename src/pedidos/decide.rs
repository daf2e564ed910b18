//! The order's decisions, apart from I/O: which call an order needs next
//! ([`next_call`]), and where each answer takes it (one function per call). Nothing
//! here calls a peer, reads a clock or writes a row; `saga` does the calls and the
//! writes these decisions ask for, so a test can try every answer without a network.
//!
//! Compensation is data: a step that fails closes the order with what it still owes
//! ([`Deuda`]: a lote to release, a referencia to void or a charge to refund), and one
//! step, [`Call::Settle`], pays what is owed, whoever drives the order.

use super::clients::{EstadoLote, EstadoPago, LoteAnswer, PagoAnswer, PeerError, lote_released};
use super::model::{Causa, Desenlace, Deuda, Etapa, Pedido, el_pago};

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
    pub etapa: Etapa,
    /// Whether this driver holds the order's lote reserved (asked and answered).
    pub reserved: bool,
    /// Each line's reservation, once inventario named them.
    pub reservas: Option<Vec<i64>>,
    /// Whether no driver asked anything of a peer for this order before this one: the
    /// request that placed it. Any other driver (recovery, after a crash or a restore)
    /// cannot know what was done before it, so a failure leaves both compensations owed.
    pub fresh: bool,
    /// Whether the order costs nothing: pagos is never asked anything for it.
    pub free: bool,
    /// The peers that did not answer this driver: what is owed to them waits for the
    /// next driver, rather than count against their circuit twice for one order.
    pub silent: Silent,
}

/// Which of the peers an order owes work to did not answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Silent {
    pub inventario: bool,
    pub pagos: bool,
}

/// Which peer a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    Inventario,
    Pagos,
}

impl Progress {
    /// A driver's start: the recorded stage, nothing learnt yet.
    pub fn start(etapa: Etapa, fresh: bool) -> Self {
        Self {
            etapa,
            reserved: false,
            reservas: None,
            fresh,
            free: false,
            silent: Silent::default(),
        }
    }

    /// Notes that `peer` gave no answer, if `error` says so.
    fn heard(mut self, peer: Owed, error: &PeerError) -> Self {
        if matches!(error, PeerError::Call(_)) {
            match peer {
                Owed::Inventario => self.silent.inventario = true,
                Owed::Pagos => self.silent.pagos = true,
            }
        }
        self
    }

    /// The debts this driver can still try to pay: each owed to a peer that has not
    /// been silent with it.
    pub fn payable(&self) -> Deuda {
        match &self.etapa {
            Etapa::Cerrado { deuda, .. } => Deuda {
                liberar: deuda.liberar && !self.silent.inventario,
                anular_cobro: deuda.anular_cobro && !self.silent.pagos,
            },
            _ => Deuda::default(),
        }
    }

    fn to(self, etapa: Etapa) -> Self {
        Self { etapa, ..self }
    }

    fn closed(self, desenlace: Desenlace, deuda: Deuda) -> Self {
        self.to(Etapa::Cerrado { desenlace, deuda })
    }

    /// What a failure before the order's outcome leaves owed: `may_have_reserved` and
    /// `may_have_charged` as this driver saw it, and both for a driver that was not first.
    fn owing(&self, may_have_reserved: bool, may_have_charged: bool) -> Deuda {
        Deuda {
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
pub fn fallido(causa: Causa, motivo: impl Into<String>) -> Desenlace {
    Desenlace::Fallido {
        causa,
        motivo: motivo.into(),
        pago_id: None,
    }
}

/// A failed peer call, as the reason an order failed.
pub fn fallido_por(error: &PeerError) -> Desenlace {
    let causa = match error {
        PeerError::Call(_) => Causa::PeerUnavailable,
        PeerError::Refused { .. } | PeerError::Missing { .. } => Causa::PeerError,
    };
    fallido(causa, error.to_string())
}

/// The call the order needs next, or `None` when it is over and owes nothing.
/// `overdue`: its deadline has passed.
pub fn next_call(pedido: &Pedido, progress: &Progress, overdue: bool) -> Option<Call> {
    match &progress.etapa {
        Etapa::Registrado if overdue && !pedido.gratis() && progress.fresh => Some(Call::Expire),
        Etapa::Registrado if overdue && !pedido.gratis() => Some(Call::VoidOverdue),
        Etapa::Registrado if !progress.reserved => Some(Call::Reserve),
        // Nothing to charge for a free order: no payment, and no deadline to meet.
        Etapa::Registrado if pedido.gratis() => Some(Call::Confirm),
        Etapa::Registrado => Some(Call::Charge),
        Etapa::Cobrado { .. } => Some(Call::Confirm),
        Etapa::Cerrado { .. } if !progress.payable().is_empty() => Some(Call::Settle),
        Etapa::Cerrado { .. } => None,
    }
}

/// [`Call::Reserve`] answered. A refusal reserved nothing (a lote is all or none); a
/// call without an answer may have, so its lote is owed a release.
pub fn reserved(progress: Progress, answer: Result<LoteAnswer, PeerError>) -> Decision {
    let error = match answer {
        Ok(lote) => {
            return go_on(Progress {
                reserved: true,
                reservas: Some(lote.ids()),
                ..progress
            });
        }
        Err(error) => error,
    };
    let progress = progress.heard(Owed::Inventario, &error);
    let Some(refusal) = error.refusal() else {
        let deuda = progress.owing(error.may_have_reached(), false);
        return go_on(progress.closed(fallido_por(&error), deuda));
    };
    if lote_released(refusal) {
        // An earlier driver released the lote: it may have charged first.
        let motivo = "the order's reservation was released before it was completed";
        let deuda = Deuda {
            liberar: false,
            anular_cobro: !progress.free,
        };
        return go_on(progress.closed(fallido(Causa::ReservaReleased, motivo), deuda));
    }
    let desenlace = match refusal.code.as_str() {
        "insufficient_stock" | "stock_not_found" => fallido(Causa::InsufficientStock, refusal.detail.clone()),
        _ => fallido_por(&error),
    };
    let deuda = progress.owing(false, false);
    go_on(progress.closed(desenlace, deuda))
}

/// [`Call::Charge`] answered: approved, the units are confirmed next; otherwise the
/// order closes and its lote is owed a release (and, without an answer, its charge a
/// void, which refunds it if it was made after all).
pub fn charged(progress: Progress, answer: Result<PagoAnswer, PeerError>) -> Decision {
    let liberar = Deuda {
        liberar: true,
        anular_cobro: false,
    };
    match answer {
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Aprobado,
        }) => go_on(progress.to(Etapa::Cobrado { pago_id })),
        Ok(PagoAnswer {
            pago_id,
            estado: EstadoPago::Rechazado,
        }) => go_on(progress.closed(Desenlace::Rechazado { pago_id }, liberar)),
        Ok(PagoAnswer { pago_id, estado }) => {
            let motivo = format!(
                "pagos answered {} {estado:?}: nothing is charged",
                el_pago(pago_id)
            );
            go_on(progress.closed(fallido(Causa::PeerError, motivo), liberar))
        }
        Err(error) => {
            let progress = progress.heard(Owed::Pagos, &error);
            let deuda = progress.owing(true, error.refusal().is_none() && error.may_have_reached());
            go_on(progress.closed(fallido_por(&error), deuda))
        }
    }
}

/// [`Call::Confirm`] answered: the order is confirmed. Without an answer the
/// confirmation is owed (`Cobrado`, recorded); if inventario refuses, the units are
/// gone: the order fails, its charge refunded and its lote released.
pub fn confirmed(pedido: &Pedido, progress: Progress, answer: Result<LoteAnswer, PeerError>) -> Decision {
    let pago_id = match &progress.etapa {
        Etapa::Cobrado { pago_id } => *pago_id,
        _ => None,
    };
    match answer {
        Ok(lote) if lote.estado == EstadoLote::Confirmada => {
            let reservas = Some(lote.ids());
            go_on(Progress {
                reservas,
                ..progress.closed(Desenlace::Confirmado { pago_id }, Deuda::default())
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
            etapa: Etapa::Cobrado { pago_id },
            ..progress
        }),
    }
}

fn failed_confirmation(pedido: &Pedido, progress: Progress, pago_id: Option<i64>, why: &str) -> Decision {
    let motivo = format!(
        "pedido {} was paid ({}) but its reservation can no longer be confirmed ({why}); \
         the payment is refunded",
        pedido.id,
        el_pago(pago_id)
    );
    let desenlace = Desenlace::Fallido {
        causa: Causa::ReservaReleased,
        motivo,
        pago_id,
    };
    let deuda = Deuda {
        liberar: true,
        anular_cobro: !pedido.gratis(),
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
    let liberar = Deuda {
        liberar: true,
        anular_cobro: false,
    };
    let pago_id = pago.pago_id;
    match pago.estado {
        EstadoPago::Aprobado => go_on(progress.to(Etapa::Cobrado { pago_id })),
        EstadoPago::Rechazado => go_on(progress.closed(Desenlace::Rechazado { pago_id }, liberar)),
        EstadoPago::Anulado => {
            let motivo = "the order was not completed within its deadline; nothing was charged";
            go_on(progress.closed(fallido(Causa::Interrupted, motivo), liberar))
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
            go_on(progress.closed(desenlace, liberar))
        }
    }
}

/// [`Call::Expire`]: the order ran out of time before its driver charged it, so it
/// never is; the lote this driver reserved is owed a release.
pub fn expired(progress: Progress) -> Decision {
    let motivo = "the order was not completed within its deadline; nothing was charged";
    let deuda = Deuda {
        liberar: progress.reserved,
        anular_cobro: false,
    };
    go_on(progress.closed(fallido(Causa::Interrupted, motivo), deuda))
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
    let Etapa::Cerrado {
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
            && let Desenlace::Fallido { pago_id, .. } = &mut desenlace
        {
            *pago_id = pago.pago_id;
        }
    }
    let paid = deuda.is_empty();
    let progress = progress.closed(desenlace, deuda);
    if paid { go_on(progress) } else { stop(progress) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use crate::pedidos::clients::ReservaAnswer;
    use crate::pedidos::model::Item;
    use crate::pedidos::resilience::{CallError, Refusal};
    use actix_web::http::StatusCode;
    use std::time::Duration;

    fn pedido(total: i64) -> Pedido {
        Pedido {
            id: 7,
            nonce: Some(9),
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
            etapa: Etapa::Registrado,
        }
    }

    /// Every kind of answer a peer call can end with, but a success.
    fn failures() -> Vec<(&'static str, PeerError)> {
        let refused = |status: StatusCode, code: &str| PeerError::Refused {
            peer: "peer",
            refusal: Refusal {
                status,
                code: code.into(),
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
        }
    }

    fn pago(estado: EstadoPago) -> PagoAnswer {
        PagoAnswer {
            pago_id: Some(5),
            estado,
        }
    }

    fn deuda(d: &Decision) -> Deuda {
        match &d.progress.etapa {
            Etapa::Cerrado { deuda, .. } => *deuda,
            other => panic!("not closed: {other:?}"),
        }
    }

    #[test]
    fn next_call_follows_the_stage_the_deadline_and_the_price() {
        let paid = pedido(1000);
        let free = pedido(0);
        let start = Progress::start(Etapa::Registrado, true);
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
        assert_eq!(next_call(&free, &reserved, true), Some(Call::Confirm));
        assert_eq!(next_call(&free, &start, true), Some(Call::Reserve));
        let cobrado = start.clone().to(Etapa::Cobrado { pago_id: Some(1) });
        assert_eq!(next_call(&paid, &cobrado, true), Some(Call::Confirm));
        let owing = start.clone().closed(
            Desenlace::Rechazado { pago_id: None },
            Deuda {
                liberar: true,
                anular_cobro: false,
            },
        );
        assert_eq!(next_call(&paid, &owing, false), Some(Call::Settle));
        let over = start.closed(Desenlace::Confirmado { pago_id: None }, Deuda::default());
        assert_eq!(next_call(&paid, &over, false), None);
    }

    #[test]
    fn a_reserved_lote_goes_on_to_the_charge_with_its_reservations() {
        let d = reserved(
            Progress::start(Etapa::Registrado, true),
            Ok(lote(EstadoLote::Activa)),
        );
        assert!(d.go_on);
        assert!(d.progress.reserved);
        assert_eq!(d.progress.reservas, Some(vec![11]));
        assert_eq!(d.progress.etapa, Etapa::Registrado);
    }

    #[test]
    fn every_failure_to_reserve_closes_the_order_owing_what_may_have_happened() {
        for fresh in [true, false] {
            for (what, error) in failures() {
                let d = reserved(Progress::start(Etapa::Registrado, fresh), Err(error.clone()));
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
                ..Progress::start(Etapa::Registrado, false)
            };
            let d = reserved(start, Err(error));
            assert!(!deuda(&d).anular_cobro, "{what}");
        }
    }

    #[test]
    fn a_charge_approved_is_confirmed_next_and_anything_else_closes_owing_the_lote() {
        let reserved = Progress {
            reserved: true,
            ..Progress::start(Etapa::Registrado, true)
        };
        let d = charged(reserved.clone(), Ok(pago(EstadoPago::Aprobado)));
        assert_eq!(d.progress.etapa, Etapa::Cobrado { pago_id: Some(5) });
        for estado in [
            EstadoPago::Rechazado,
            EstadoPago::Anulado,
            EstadoPago::Reembolsado,
        ] {
            let d = charged(reserved.clone(), Ok(pago(estado)));
            assert_eq!(
                deuda(&d),
                Deuda {
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
        let cobrado = Progress::start(Etapa::Cobrado { pago_id: Some(5) }, false);
        let d = confirmed(&p, cobrado.clone(), Ok(lote(EstadoLote::Confirmada)));
        assert_eq!(
            d.progress.etapa,
            Etapa::Cerrado {
                desenlace: Desenlace::Confirmado { pago_id: Some(5) },
                deuda: Deuda::default()
            }
        );
        assert_eq!(d.progress.reservas, Some(vec![11]));
        for estado in [EstadoLote::Activa, EstadoLote::Liberada, EstadoLote::Expirada] {
            let d = confirmed(&p, cobrado.clone(), Ok(lote(estado)));
            assert_eq!(
                deuda(&d),
                Deuda {
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
                    Deuda {
                        liberar: true,
                        anular_cobro: true
                    },
                    "{what}"
                );
                assert!(matches!(
                    &d.progress.etapa,
                    Etapa::Cerrado {
                        desenlace: Desenlace::Fallido { pago_id: Some(5), .. },
                        ..
                    }
                ));
            } else {
                assert!(!d.go_on, "{what}");
                assert_eq!(d.progress.etapa, Etapa::Cobrado { pago_id: Some(5) }, "{what}");
            }
        }
        // A free order was never charged: a refused confirmation owes no refund.
        let free = pedido(0);
        let d = confirmed(
            &free,
            Progress::start(Etapa::Registrado, true),
            Err(failures().remove(6).1),
        );
        assert_eq!(
            deuda(&d),
            Deuda {
                liberar: true,
                anular_cobro: false
            }
        );
    }

    #[test]
    fn an_overdue_order_is_settled_by_what_pagos_knows_and_waits_for_an_answer() {
        let start = Progress::start(Etapa::Registrado, false);
        assert_eq!(
            voided(start.clone(), Ok(pago(EstadoPago::Aprobado)))
                .progress
                .etapa,
            Etapa::Cobrado { pago_id: Some(5) }
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
            Etapa::Cerrado {
                desenlace: fallido(Causa::PeerUnavailable, "x"),
                deuda: Deuda {
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
            Etapa::Cerrado { desenlace: Desenlace::Fallido { pago_id: Some(5), .. }, deuda } if deuda.is_empty()
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
                Deuda {
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
                Deuda {
                    liberar: false,
                    anular_cobro: true
                },
                "{what}"
            );
        }
    }
}
