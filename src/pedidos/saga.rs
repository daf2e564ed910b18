//! An order's life as one state machine, driven. [`advance`] is the only thing that
//! moves an order on: the request that places it calls it, and so does recovery for
//! every order that no request is driving. It asks [`decide::next_call`] which call the
//! order needs, makes it, hands the answer to that call's decision, and goes on until
//! the order is over or a peer does not answer; then it records where the order got
//! to in one write, which names the stage it started from (a stale change finds the
//! order moved on and does nothing).
//!
//! ```text
//!  priced ─record─▶ Registrado ─Reserve─▶ Charge ─approved─▶ Confirm ─▶ Cerrado: confirmado
//!                     │            │         │                  │ no answer ─▶ Cobrado ─Confirm─▶ …
//!                     │            │         │ rejected         │ refused ─▶ Cerrado: fallido, owing refund + release
//!                     │            │         ▼
//!                     │            │      Cerrado: rechazado, owing the release
//!                     │            ▼ refused or no answer
//!                     │         Cerrado: fallido, owing what may have been done
//!                     └─ past its deadline: fallido if this driver never charged it (Expire); else
//!                        VoidOverdue (pagos tells the charge made, or voids the referencia) and settle by it
//!  Cerrado owing anything: Settle (release the lote, refund or void the referencia) until paid.
//! ```
//!
//! Every call that changes a peer's state names the order's key (its lote at
//! inventario, its `referencia` at pagos), so a step done twice acts once, and any
//! driver can move an order on from any stage without knowing how far the last one
//! got. Steps are not recorded one by one: a driver that dies leaves the order at its
//! recorded stage, and the next one asks again under the same key. An order that was
//! not charged by its deadline never is. A free order (every price 0) asks nothing of
//! pagos.

use std::sync::Arc;

use super::answers::{EstadoPago, LoteAnswer, PagoAnswer};
use super::clients::{PagarRequest, PeerApi, PeerError, Peers};
use super::decide::{self, Call, Decision, Progress, Settlement};
use super::instance::{Claim, InProgress, Instance};
use super::model::{Cause, Item, NewPedido, Outcome, Owed, Pedido, Stage, payment_named};
use super::model::{ChangeNumbers, Ledger};
use super::repo::{self, BroughtBack, FirstRecord, Placement};
use crate::clock::now_millis;
use crate::db::{Pool, run_blocking, run_write, run_write_always};
use crate::error::ApiError;
use crate::money::Money;
use crate::trace::{self, KeyValue, SpanKind};

const LOG_TARGET: &str = "pedidos";
/// The most calls one driver makes for an order before it records where it got to.
const MAX_CALLS: usize = 8;

/// Where orders are recorded: pedidos' database, or the simulation's.
// The order flow runs on one worker's thread: no Send bound is wanted on these futures.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// The clock deadlines are measured by, in Unix milliseconds.
    fn now_millis(&self) -> i64;
    /// Records a new order (or finds its idempotency key used), and takes its turn in
    /// `in_progress` inside the same write, before anyone else can see it.
    async fn create(
        &self,
        first_record: FirstRecord,
        clave: Option<String>,
        in_progress: &Arc<InProgress>,
    ) -> Result<(Placement, Option<Claim>), ApiError>;
    /// Records that order `id` moved from `from` to `to` (and its reservations, and
    /// the numbers its peers gave the changes seen), if it still stands at `from`;
    /// returns whether it did.
    async fn transition(
        &self,
        id: i64,
        from: Stage,
        to: Stage,
        reservas: Option<Vec<i64>>,
        seen: ChangeNumbers,
    ) -> Result<bool, ApiError>;
    async fn load(&self, id: i64) -> Result<Option<Pedido>, ApiError>;
    /// Orders not over or still owing work to a peer, oldest first.
    async fn unfinished(&self, limit: i64) -> Result<Vec<i64>, ApiError>;
    /// Orders whose last change at `ledger` is numbered after `after`, as `(number, id)`.
    async fn recorded_after(
        &self,
        ledger: Ledger,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, ApiError>;
    /// The order known at its peers by `clave`, if recorded here.
    async fn by_clave(&self, prefijo: &str, clave: &str) -> Result<Option<i64>, ApiError>;
    /// Records an order learned back from its peers; its id, or `None` if it was here.
    async fn bring_back(&self, prefijo: &str, lost: BroughtBack) -> Result<Option<i64>, ApiError>;
    /// The healing under way at `ledger`, as `(desde, hasta)`.
    async fn healing(&self, ledger: Ledger) -> Result<Option<(i64, i64)>, ApiError>;
    /// Records a healing of `ledger` (or finds one under way, which it returns).
    async fn begin_healing(&self, ledger: Ledger, desde: i64, hasta: i64) -> Result<(i64, i64), ApiError>;
    async fn end_healing(&self, ledger: Ledger) -> Result<(), ApiError>;
}

/// Records a new order and, if it is new, takes its turn before the write commits, so
/// that no reader (recovery) can see it unclaimed.
pub fn record_new(
    conn: &mut rusqlite::Connection,
    first_record: FirstRecord,
    clave: Option<&str>,
    in_progress: &Arc<InProgress>,
) -> rusqlite::Result<(Placement, Option<Claim>)> {
    let placement = repo::create(conn, first_record, clave)?;
    let claim = match &placement {
        Placement::New(pedido) => in_progress.claim(pedido.id),
        Placement::Repeat(_) | Placement::KeyInUse => None,
    };
    Ok((placement, claim))
}

impl Store for Pool {
    fn now_millis(&self) -> i64 {
        now_millis()
    }

    async fn create(
        &self,
        first_record: FirstRecord,
        clave: Option<String>,
        in_progress: &Arc<InProgress>,
    ) -> Result<(Placement, Option<Claim>), ApiError> {
        let in_progress = in_progress.clone();
        run_write(self, move |conn| {
            Ok(record_new(conn, first_record, clave.as_deref(), &in_progress)?)
        })
        .await
    }

    async fn transition(
        &self,
        id: i64,
        from: Stage,
        to: Stage,
        reservas: Option<Vec<i64>>,
        seen: ChangeNumbers,
    ) -> Result<bool, ApiError> {
        run_write_always(self, move |conn| {
            Ok(repo::transition(conn, id, &from, &to, reservas.as_deref(), seen)?)
        })
        .await
    }

    async fn load(&self, id: i64) -> Result<Option<Pedido>, ApiError> {
        run_blocking(self, move |conn| Ok(repo::get(conn, id)?)).await
    }

    async fn unfinished(&self, limit: i64) -> Result<Vec<i64>, ApiError> {
        run_blocking(self, move |conn| Ok(repo::unfinished(conn, limit)?)).await
    }

    async fn recorded_after(
        &self,
        ledger: Ledger,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, ApiError> {
        run_blocking(self, move |conn| {
            Ok(repo::recorded_after(conn, ledger, after, limit)?)
        })
        .await
    }

    async fn by_clave(&self, prefijo: &str, clave: &str) -> Result<Option<i64>, ApiError> {
        let (prefijo, clave) = (prefijo.to_string(), clave.to_string());
        run_blocking(self, move |conn| Ok(repo::by_clave(conn, &prefijo, &clave)?)).await
    }

    async fn bring_back(&self, prefijo: &str, lost: BroughtBack) -> Result<Option<i64>, ApiError> {
        let prefijo = prefijo.to_string();
        run_write(self, move |conn| Ok(repo::bring_back(conn, &prefijo, &lost)?)).await
    }

    async fn healing(&self, ledger: Ledger) -> Result<Option<(i64, i64)>, ApiError> {
        run_blocking(self, move |conn| Ok(repo::healing(conn, ledger)?)).await
    }

    async fn begin_healing(&self, ledger: Ledger, desde: i64, hasta: i64) -> Result<(i64, i64), ApiError> {
        run_write(self, move |conn| {
            Ok(repo::begin_healing(conn, ledger, desde, hasta)?)
        })
        .await
    }

    async fn end_healing(&self, ledger: Ledger) -> Result<(), ApiError> {
        run_write(self, move |conn| Ok(repo::end_healing(conn, ledger)?)).await
    }
}

/// What the flow needs: the peers, where orders are recorded, and what this pedidos shares.
pub struct SagaContext<'a, P: PeerApi = Peers, S: Store = Pool> {
    pub peers: &'a P,
    pub store: &'a S,
    pub instance: &'a Instance,
}

fn unpriced(items: Vec<Item>, desenlace: Outcome) -> (Vec<Item>, Money, Stage) {
    let items = items
        .into_iter()
        .map(|i| Item {
            precio_unitario: None,
            ..i
        })
        .collect();
    let etapa = Stage::Cerrado {
        desenlace,
        deuda: Owed::default(),
    };
    (items, Money::ZERO, etapa)
}

/// Places a new order: prices it, records it (claimed by this request before anyone
/// can see it), and moves it on as far as it goes.
pub async fn place<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    nuevo: NewPedido,
    clave: Option<String>,
) -> Result<Placement, ApiError> {
    let (items, total, etapa) = trace::in_span(
        "price",
        SpanKind::Internal,
        |_| {},
        |span, (_, total, etapa): &(Vec<Item>, Money, Stage)| {
            span.set_with(|| [KeyValue::new("pedido.total", total.to_string())]);
            describe(span, etapa);
        },
        quote(ctx.peers, &nuevo),
    )
    .await;
    let plazo = i64::try_from(ctx.instance.plazo.as_millis()).unwrap_or(i64::MAX);
    let first_record = FirstRecord {
        nuevo,
        nonce: fastrand::i64(0..),
        items,
        total,
        etapa,
        vence_en: ctx.store.now_millis().saturating_add(plazo),
        request_id: trace::current_id().map(|id| id.to_string()),
        traceparent: trace::recorded()
            .filter(trace::Trace::sampled)
            .map(|t| t.traceparent()),
    };
    let (placement, claim) = ctx
        .store
        .create(first_record, clave, &ctx.instance.in_progress)
        .await?;
    let Placement::New(pedido) = placement else {
        return Ok(placement);
    };
    let pedido = match pedido.etapa {
        Stage::Registrado => Box::new(advance(ctx, *pedido, true).await?),
        _ => {
            count_outcome(ctx.instance, &pedido.etapa);
            pedido
        }
    };
    drop(claim);
    Ok(Placement::New(pedido))
}

/// The order's lines priced by productos, in one call, its total, and the stage it is
/// recorded at: `Registrado`, or already failed if it cannot be priced.
async fn quote<P: PeerApi>(peers: &P, nuevo: &NewPedido) -> (Vec<Item>, Money, Stage) {
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
    // An open circuit fails the order at once, before any peer is called.
    if let Err(e) = peers.ensure_available() {
        return unpriced(items, decide::failed_by(&e));
    }
    let ids: Vec<i64> = items.iter().map(|i| i.producto_id).collect();
    let precios = match peers.precios(&ids).await {
        Ok(precios) => precios,
        Err(e) => return unpriced(items, decide::failed_by(&e)),
    };
    let mut total = Money::ZERO;
    for item in &mut items {
        let Some(precio) = precios.get(&item.producto_id).copied() else {
            let motivo = format!("producto {} does not exist", item.producto_id);
            return unpriced(items, decide::fallido(Cause::ProductoNotFound, motivo));
        };
        let Ok(sumado) = precio.times(item.cantidad).and_then(|s| total.plus(s)) else {
            let motivo = "the order's total is larger than penguin can charge";
            return unpriced(items, decide::fallido(Cause::TotalTooLarge, motivo));
        };
        total = sumado;
        item.precio_unitario = Some(precio);
    }
    (items, total, Stage::Registrado)
}

/// Moves an order on from its recorded stage as far as its peers' answers take it,
/// and records the stage reached. `fresh`: this driver is the request that placed the
/// order, so nothing was asked of a peer for it before. Returns the order as it now stands.
pub async fn advance<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    pedido: Pedido,
    fresh: bool,
) -> Result<Pedido, ApiError> {
    let mut progress = Progress {
        free: pedido.is_free(),
        ..Progress::start(pedido.etapa.clone(), fresh)
    };
    for _ in 0..MAX_CALLS {
        let overdue = pedido.overdue(ctx.store.now_millis());
        let Some(call) = decide::next_call(&pedido, &progress, overdue) else {
            break;
        };
        let name: &'static str = call.into();
        let decision = trace::in_span(
            name,
            SpanKind::Internal,
            |span| span.set(KeyValue::new("pedido.id", pedido.id)),
            |span, decision: &Decision| describe(span, &decision.progress.etapa),
            make(ctx, &pedido, progress, call),
        )
        .await;
        progress = decision.progress;
        if !decision.go_on {
            break;
        }
    }
    record(ctx, pedido, progress).await
}

/// What a step's span says of the stage it left the order at: its estado, and a
/// failure when the order failed there.
fn describe(span: &mut trace::Span, etapa: &Stage) {
    span.set(KeyValue::new("pedido.estado", <&str>::from(etapa.estado())));
    if let Stage::Cerrado {
        desenlace: Outcome::Fallido { causa, motivo, .. },
        ..
    } = etapa
    {
        span.set(KeyValue::new("error.type", <&str>::from(causa)));
        span.fail(|| motivo.clone());
    }
}

/// Makes `call` for the order and hands the answer to its decision.
async fn make<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    pedido: &Pedido,
    progress: Progress,
    call: Call,
) -> Decision {
    let clave = pedido.clave(&ctx.instance.prefijo);
    let peers = ctx.peers;
    let inventario = Fence::new(ctx, Ledger::Inventario);
    let pagos = Fence::new(ctx, Ledger::Pagos);
    match call {
        Call::Reserve => {
            let answer = inventario
                .ask(peers.reservar(&clave, &pedido.items, inventario.visto))
                .await;
            decide::reserved(inventario.noted(progress, &answer), answer)
        }
        Call::Charge => {
            let cobro = PagarRequest {
                monto: pedido.total,
                moneda: &pedido.moneda,
                medio: &pedido.medio,
                referencia: &clave,
                fail: pedido.fail,
                visto: pagos.visto,
            };
            let answer = pagos.ask(peers.pagar(&cobro)).await;
            decide::charged(pagos.noted(progress, &answer), answer)
        }
        Call::Confirm => {
            let answer = inventario.ask(peers.confirmar(&clave, inventario.visto)).await;
            if let Err(e) = &answer {
                log::warn!(target: LOG_TARGET, "pedido {}: its confirmation is not made ({e})", pedido.id);
            }
            decide::confirmed(pedido, inventario.noted(progress, &answer), answer)
        }
        Call::VoidOverdue => {
            let answer = pagos.ask(peers.anular(&clave, pagos.visto)).await;
            if let Err(e) = &answer {
                log::warn!(target: LOG_TARGET, "pedido {} stays registrado until pagos answers: {e}", pedido.id);
            }
            decide::voided(pagos.noted(progress, &answer), answer)
        }
        Call::Expire => decide::expired(progress),
        Call::Settle => {
            let deuda = progress.payable();
            let mut progress = progress;
            let release = match deuda.liberar {
                true => {
                    let answer = inventario
                        .ask(release(pedido, &clave, peers, inventario.visto))
                        .await;
                    progress = inventario.noted(progress, &answer);
                    Some(answer)
                }
                false => None,
            };
            let refund = match deuda.anular_cobro {
                true => {
                    let answer = pagos.ask(refund(pedido, &clave, peers, pagos.visto)).await;
                    progress = pagos.noted(progress, &answer);
                    Some(answer)
                }
                false => None,
            };
            decide::settled(progress, Settlement { release, refund })
        }
    }
}

/// The answers that carry the number a peer gave the change they report.
pub trait Numbered {
    fn secuencia(&self) -> Option<i64>;
}

impl Numbered for LoteAnswer {
    fn secuencia(&self) -> Option<i64> {
        self.secuencia
    }
}

impl Numbered for PagoAnswer {
    fn secuencia(&self) -> Option<i64> {
        self.secuencia
    }
}

/// A driver's changes at one peer, fenced by what this pedidos has seen of it: each is
/// asked with `?visto=`, none is asked while the peer is known to be a restored copy
/// behind it (until it is healed), and each answer's number is noted.
struct Fence<'a> {
    ledger: Ledger,
    instance: &'a Instance,
    visto: Option<i64>,
}

impl<'a> Fence<'a> {
    fn new<P: PeerApi, S: Store>(ctx: &SagaContext<'a, P, S>, ledger: Ledger) -> Self {
        Self {
            ledger,
            instance: ctx.instance,
            visto: Some(ctx.instance.vistos.get(ledger)),
        }
    }

    /// The answer to a change, unless the peer is being healed: then it is not asked.
    async fn ask<T>(
        &self,
        change: impl std::future::Future<Output = Result<T, PeerError>>,
    ) -> Result<T, PeerError> {
        if self.instance.healing.is_stale(self.ledger) {
            return Err(PeerError::Stale {
                peer: self.ledger.into(),
                detail: "it is being healed: pedidos re-asserts what its restored copy lost".into(),
            });
        }
        change.await
    }

    /// Notes what an answer says of the peer: its number, or that it is a copy behind.
    fn noted<T: Numbered>(&self, mut progress: Progress, answer: &Result<T, PeerError>) -> Progress {
        match answer {
            Ok(answer) => {
                progress.seen.saw(self.ledger, answer.secuencia());
                self.instance.vistos.saw(self.ledger, answer.secuencia());
            }
            Err(PeerError::Stale { .. }) => self.instance.healing.found_stale(self.ledger),
            Err(_) => {}
        }
        progress
    }
}

/// Releases the order's lote, the one place a release is made.
async fn release<P: PeerApi>(
    pedido: &Pedido,
    clave: &str,
    peers: &P,
    visto: Option<i64>,
) -> Result<LoteAnswer, PeerError> {
    log::info!(target: LOG_TARGET, "pedido {}: compensating, releasing lote {clave}", pedido.id);
    let answer = peers.liberar(clave, visto).await;
    match &answer {
        Ok(_) => {}
        Err(PeerError::Refused { refusal, .. }) => log::error!(
            target: LOG_TARGET,
            "pedido {}: inventario refuses to release lote {clave} ({}), which contradicts its outcome; \
             the debt is kept until this is looked into",
            pedido.id,
            refusal.detail
        ),
        Err(e) => {
            log::warn!(target: LOG_TARGET, "pedido {}: lote {clave} not released yet ({e}); recovery will retry", pedido.id)
        }
    }
    answer
}

/// Refunds the order's charge, or voids its referencia if none was made: the one place
/// money is given back.
async fn refund<P: PeerApi>(
    pedido: &Pedido,
    clave: &str,
    peers: &P,
    visto: Option<i64>,
) -> Result<PagoAnswer, PeerError> {
    let answer = peers.reembolsar(clave, visto).await;
    match &answer {
        Ok(pago) if pago.estado == EstadoPago::Reembolsado => log::warn!(
            target: LOG_TARGET,
            "pedido {} failed after it was charged; {} refunded",
            pedido.id,
            payment_named(pago.pago_id)
        ),
        Ok(_) => {}
        Err(e) => log::warn!(target: LOG_TARGET, "pedido {}: payment not voided yet: {e}", pedido.id),
    }
    answer
}

/// Records where a driver got to, if the order still stands where it was when the
/// driver began; otherwise reads it as it now stands.
async fn record<P: PeerApi, S: Store>(
    ctx: &SagaContext<'_, P, S>,
    mut pedido: Pedido,
    progress: Progress,
) -> Result<Pedido, ApiError> {
    let id = pedido.id;
    if progress.etapa == pedido.etapa && progress.reservas.is_none() {
        return Ok(pedido);
    }
    let from = pedido.etapa.clone();
    let recorded = ctx
        .store
        .transition(
            id,
            from,
            progress.etapa.clone(),
            progress.reservas.clone(),
            progress.seen,
        )
        .await?;
    if !recorded {
        log::warn!(
            target: LOG_TARGET,
            "pedido {id} had moved on from {}; what this driver found ({:?}) is not recorded",
            <&str>::from(&pedido.etapa),
            progress.etapa
        );
        return ctx
            .store
            .load(id)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("pedido {id} disappeared")));
    }
    // The step that closes the order is logged and counted once, by whoever takes it.
    if !matches!(pedido.etapa, Stage::Cerrado { .. })
        && let Stage::Cerrado { desenlace, .. } = &progress.etapa
    {
        match desenlace {
            Outcome::Fallido { causa, motivo, .. } => {
                log::info!(target: LOG_TARGET, "pedido {id} fallido ({}): {motivo}", <&str>::from(causa));
            }
            Outcome::Rechazado { pago_id } => {
                log::info!(target: LOG_TARGET, "pedido {id} rechazado: pagos rejected {}", payment_named(*pago_id));
            }
            Outcome::Confirmado { .. } => {}
        }
        count_outcome(ctx.instance, &progress.etapa);
    }
    if let Some(reservas) = progress.reservas {
        for (item, reserva_id) in pedido.items.iter_mut().zip(reservas) {
            item.reserva_id = Some(reserva_id);
        }
    }
    pedido.etapa = progress.etapa;
    Ok(pedido)
}

/// Counts an order that reached its final estado.
fn count_outcome(instance: &Instance, etapa: &Stage) {
    if matches!(etapa, Stage::Cerrado { .. }) {
        let estado: &str = etapa.estado().into();
        instance.metrics.orders.with_label_values(&[estado]).inc();
    }
}
