//! A deterministic simulation of the whole shop, for the order saga. One seed drives
//! everything: in one thread, with no sockets and no real clock, pedidos' own saga,
//! recovery and database code (`saga`, `recovery`, `pedidos::repo`) runs against
//! inventario's and pagos' own rules (`inventario::repo`, `pagos::repo`, each on its
//! own in-memory SQLite), while the seed decides, at every step, which request or
//! recovery pass moves next, and what happens to each peer call: answered, refused
//! before it left, lost before it arrived, lost after the peer acted, duplicated,
//! delayed (while the clock runs past deadlines), or delivered late after the caller
//! gave up. pedidos may crash between any two steps (its drivers and turns gone, its
//! database kept); one service per run may be rolled back to an earlier copy of its
//! database, as a restore from a backup would (a restored inventario or pagos starts
//! again: calls on their way to it are cut), and pedidos heals it (`heal`). When the
//! faults stop, recovery runs until nothing is left to do and the books are checked
//! (see [`Shop::check`]).
//!
//! It lives in the library, under `cfg(test)`, because it reaches into the services'
//! repositories, which are not public. A failing seed prints what happened, step by
//! step; `PENGUIN_SIM_SEED=N cargo test --lib simulation -- --nocapture` replays it, and
//! `PENGUIN_SIM_SEEDS=N` explores more seeds than `cargo test` does.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_web::http::StatusCode;
use rusqlite::Connection;

use crate::error::ApiError;
use crate::inventario::model::{NewLote, Units};
use crate::metrics::Metrics;
use crate::money::Money;
use crate::pagos::model::{Charge, EstadoPago as Pago};
use crate::pedidos::PedidosMetrics;
use crate::pedidos::answers::{LoteAnswer, LotesListed, PagoAnswer, PagosListed, PeerCode};
use crate::pedidos::clients::{PagarRequest, PeerApi, PeerError, lote_held};
use crate::pedidos::instance::{Claim, Healing, InProgress, Instance, PeerNumbers};
use crate::pedidos::model::{ChangeNumbers, Ledger};
use crate::pedidos::model::{EstadoPedido, Item, Linea, NewPedido, Pedido, Stage};
use crate::pedidos::peer::{CallError, Refusal};
use crate::pedidos::recovery;
use crate::pedidos::repo::{self, BroughtBack, FirstRecord, Placement};
use crate::pedidos::saga::{self, SagaContext, Store};
use crate::secuencia::Cambios;
use crate::service::Service;

/// How long after it is placed an order may be charged, in simulated milliseconds.
const DEADLINE_MS: i64 = 1_000;
/// The most scheduler steps a run takes before its faults stop.
const MAX_STEPS: usize = 4_000;

/// What a run may do to the shop.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// The chance that a peer call meets a fault.
    pub call: f64,
    /// The chance, each step, that pedidos crashes.
    pub crash: f64,
    /// Whether a service may be rolled back to an earlier copy of its database.
    pub rollback: bool,
}

/// The peers pedidos calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Inventario,
    Pagos,
}

/// A call whose caller gave up on it, still on its way: what it is, and its effect.
type LateCall = (String, Effect);

/// Something that happens to the shop later.
type Effect = Box<dyn FnOnce(&Shop)>;

/// The shop's state: each service's database, the clock, the seed's choices, and a
/// record of what happened.
pub struct Shop {
    seed: u64,
    rng: RefCell<fastrand::Rng>,
    clock: Cell<i64>,
    pedidos: RefCell<Connection>,
    inventario: RefCell<Connection>,
    pagos: RefCell<Connection>,
    precios: HashMap<i64, Money>,
    stock: BTreeMap<i64, i64>,
    faults: Cell<Faults>,
    /// The requests whose clients hung up: their answers go unheard.
    hung_up: RefCell<std::collections::HashSet<usize>>,
    /// pedidos' writes waiting for its writer, in order.
    writes: RefCell<std::collections::VecDeque<Effect>>,
    /// Effects sent by callers that gave up on them, still to arrive.
    late: RefCell<Vec<LateCall>>,
    /// Copies of a database taken during the run, to roll back to.
    copies: RefCell<Vec<(Service, Connection)>>,
    /// Whether pedidos was rolled back: orders it lost that left nothing at its peers
    /// (failed before any call) are gone for good, and their answers with them.
    pedidos_restored: Cell<bool>,
    /// How often inventario and pagos were restored: a restore stops the service, so a
    /// call on its way to it when it did is cut, and acts on neither database.
    restarts: [Cell<u32>; 2],
    trace: RefCell<Vec<String>>,
}

/// A new database of `service`'s schema: a copy of one migrated once per thread, as
/// migrating takes longer than a whole run.
fn database(service: Service) -> Connection {
    thread_local! {
        static MIGRATED: RefCell<HashMap<Service, Connection>> = RefCell::default();
    }
    MIGRATED.with(|migrated| {
        let mut migrated = migrated.borrow_mut();
        let template = migrated.entry(service).or_insert_with(|| {
            let schema = match service {
                Service::Pedidos => crate::pedidos::schema(),
                Service::Inventario => crate::inventario::schema(),
                _ => crate::pagos::schema(),
            };
            schema.in_memory(None)
        });
        copy_of(template)
    })
}

fn copy_of(conn: &Connection) -> Connection {
    let mut copy = Connection::open_in_memory().expect("an in-memory database");
    rusqlite::backup::Backup::new(conn, &mut copy)
        .and_then(|b| b.run_to_completion(1 << 20, Duration::ZERO, None))
        .expect("copied");
    copy
}

fn refusal(peer: &'static str, error: ApiError) -> PeerError {
    let code = error.code();
    if code == crate::error::ErrorCode::StaleCopy {
        return PeerError::Stale {
            peer,
            detail: error.to_string(),
        };
    }
    PeerError::Refused {
        peer,
        refusal: Refusal {
            status: code.status(),
            code: PeerCode::Known(code),
            detail: error.body().detail.to_string(),
        },
    }
}

/// A peer's answer as pedidos' client reads it off the wire: serialised by the peer,
/// read back tolerantly into the client's own type.
fn wire<A: serde::Serialize, B: serde::de::DeserializeOwned>(answer: &A) -> B {
    serde_json::from_value(serde_json::to_value(answer).expect("serialised")).expect("read by the client")
}

impl Shop {
    fn new(seed: u64, faults: Faults) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let productos = rng.i64(1..=3);
        let mut precios = HashMap::new();
        let mut stock = BTreeMap::new();
        let inventario = database(Service::Inventario);
        for id in 1..=productos {
            // Now and then a free product: its orders ask nothing of pagos.
            let precio = if rng.u8(..10) == 0 {
                0
            } else {
                rng.i64(1..=5) * 100
            };
            precios.insert(id, Money::from_hundredths(precio).expect("money"));
            let unidades = rng.i64(1..=6);
            stock.insert(id, unidades);
            crate::inventario::repo::set_stock(
                &inventario,
                Units {
                    producto_id: id,
                    cantidad: unidades,
                },
            )
            .expect("stock set");
        }
        // The key prefix from the seed, so that a replay names every key as the run did.
        let pedidos = database(Service::Pedidos);
        pedidos
            .execute(
                "UPDATE instancia SET prefijo = printf('%012x', ?1)",
                [seed as i64],
            )
            .expect("a prefix");
        Self {
            seed,
            rng: RefCell::new(rng),
            clock: Cell::new(1_000_000),
            pedidos: RefCell::new(pedidos),
            inventario: RefCell::new(inventario),
            pagos: RefCell::new(database(Service::Pagos)),
            precios,
            stock,
            faults: Cell::new(faults),
            late: RefCell::default(),
            writes: RefCell::default(),
            hung_up: RefCell::default(),
            copies: RefCell::default(),
            pedidos_restored: Cell::new(false),
            restarts: [Cell::new(0), Cell::new(0)],
            trace: RefCell::default(),
        }
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.borrow_mut().f64() < p
    }

    fn below(&self, n: usize) -> usize {
        self.rng.borrow_mut().usize(..n.max(1))
    }

    fn log(&self, what: impl AsRef<str>) {
        let line = format!("t={} {}", self.clock.get(), what.as_ref());
        self.trace.borrow_mut().push(line);
    }

    fn now(&self) -> i64 {
        self.clock.get()
    }

    // The peers' own rules, each an effect on its database.

    fn reserve(&self, clave: &str, items: &[Item], visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        let nuevo = NewLote {
            clave: clave.to_string(),
            lineas: items
                .iter()
                .map(|i| Units {
                    producto_id: i.producto_id,
                    cantidad: i.cantidad,
                })
                .collect(),
        };
        let lote = crate::inventario::repo::reserve_lote(&mut self.inventario.borrow_mut(), &nuevo, visto)
            .map_err(|e| refusal("inventario", e.into()))?;
        lote_held("inventario", clave, wire(&lote))
    }

    fn confirm(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        crate::inventario::repo::confirm_lote(&mut self.inventario.borrow_mut(), clave, visto)
            .map(|lote| wire(&lote))
            .map_err(|e| refusal("inventario", e.into()))
    }

    fn release(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        crate::inventario::repo::release_lote(&mut self.inventario.borrow_mut(), clave, visto)
            .map(|lote| wire(&lote))
            .map_err(|e| refusal("inventario", e.into()))
    }

    fn charge(&self, charge: Charge, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        crate::pagos::repo::charge(&mut self.pagos.borrow_mut(), charge, visto)
            .map(|pago| wire(&pago))
            .map_err(|e| refusal("pagos", e.into()))
    }

    fn void(&self, referencia: &str, refund: bool, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        crate::pagos::repo::void(&mut self.pagos.borrow_mut(), referencia, refund, visto)
            .map(|pago| wire(&pago))
            .map_err(|e| refusal("pagos", e.into()))
    }

    fn list_lotes(&self, cambios: &Cambios) -> Result<LotesListed, PeerError> {
        let conn = self.inventario.borrow();
        let lotes = match cambios {
            Cambios::After {
                prefijo,
                desde,
                limit,
            } => crate::inventario::repo::lotes_after(&conn, prefijo, *desde, *limit),
            Cambios::Key(clave) => {
                crate::inventario::repo::lote(&conn, clave).map(|l| l.into_iter().collect())
            }
        }
        .expect("listed");
        let sequence = crate::secuencia::numbers(&conn).expect("numbered");
        Ok(wire(&serde_json::json!({
            "secuencia": sequence.secuencia, "al_iniciar": sequence.al_iniciar, "rezagada": sequence.rezagada,
            "lotes": lotes
        })))
    }

    fn list_pagos(&self, cambios: &Cambios) -> Result<PagosListed, PeerError> {
        let conn = self.pagos.borrow();
        let pagos = match cambios {
            Cambios::After {
                prefijo,
                desde,
                limit,
            } => crate::pagos::repo::changed_after(&conn, prefijo, *desde, *limit),
            Cambios::Key(clave) => {
                crate::pagos::repo::by_referencia(&conn, clave).map(|p| p.into_iter().collect())
            }
        }
        .expect("listed");
        let sequence = crate::secuencia::numbers(&conn).expect("numbered");
        Ok(wire(&serde_json::json!({
            "secuencia": sequence.secuencia, "al_iniciar": sequence.al_iniciar, "rezagada": sequence.rezagada,
            "pagos": pagos
        })))
    }

    /// One call from pedidos to `peer`: the seed decides what becomes of it.
    async fn call<T: std::fmt::Debug + 'static>(
        &self,
        peer: Peer,
        what: String,
        effect: impl Fn(&Shop) -> Result<T, PeerError> + 'static,
    ) -> Result<T, PeerError> {
        let name = match peer {
            Peer::Inventario => "inventario",
            Peer::Pagos => "pagos",
        };
        let unavailable = |sent| {
            Err(PeerError::Call(CallError::Unavailable {
                peer: name,
                cause: "simulated".into(),
                sent,
            }))
        };
        // The call is on its way: others move meanwhile, and the clock may run past a deadline.
        let restarts = &self.restarts[usize::from(peer == Peer::Pagos)];
        let sent_to = restarts.get();
        let delay = self.below(4);
        for _ in 0..delay {
            Yield::default().await;
        }
        if restarts.get() != sent_to {
            let answer = unavailable(true);
            self.log(format!(
                "pedidos -> {name} {what}: cut by the restore => {answer:?}"
            ));
            return answer;
        }
        let faults = self.faults.get();
        let fault = if self.chance(faults.call) {
            self.below(7)
        } else {
            usize::MAX
        };
        let answer = match fault {
            0 => unavailable(false),
            1 => unavailable(true),
            2 => {
                let _ = effect(self);
                unavailable(true)
            }
            3 => {
                let _ = effect(self);
                effect(self)
            }
            4 => {
                // Held up long enough for its order's deadline to pass.
                self.clock.set(self.now() + DEADLINE_MS);
                Yield::default().await;
                if restarts.get() != sent_to {
                    let answer = unavailable(true);
                    self.log(format!(
                        "pedidos -> {name} {what}: cut by the restore => {answer:?}"
                    ));
                    return answer;
                }
                effect(self)
            }
            5 => {
                self.late.borrow_mut().push((
                    format!("{name} {what}"),
                    Box::new(move |shop| {
                        if shop.restarts[usize::from(peer == Peer::Pagos)].get() != sent_to {
                            shop.log("  late delivery cut by a restore");
                            return;
                        }
                        let answer = effect(shop);
                        shop.log(format!("  late delivery acted: {answer:?}"));
                    }),
                ));
                unavailable(true)
            }
            6 => Err(PeerError::Call(CallError::CircuitOpen {
                peer: name,
                retry_after: Duration::from_secs(1),
            })),
            _ => effect(self),
        };
        let fault_name = [
            "refused before sending",
            "lost before arriving",
            "lost after acting",
            "duplicated",
            "delayed past the deadline",
            "delivered late, after the caller gave up",
            "circuit open",
        ]
        .get(fault)
        .copied()
        .unwrap_or("answered");
        self.log(format!("pedidos -> {name} {what}: {fault_name} => {answer:?}"));
        answer
    }

    /// pedidos' writer commits the next write waiting for it, if any.
    fn write_next(&self) {
        let next = self.writes.borrow_mut().pop_front();
        if let Some(write) = next {
            write(self);
        }
    }

    /// Delivers one call a caller gave up on, if any is on its way.
    fn deliver_late(&self) {
        let len = self.late.borrow().len();
        if len == 0 {
            return;
        }
        let (what, effect) = self.late.borrow_mut().remove(self.below(len));
        self.log(format!("late delivery: {what}"));
        effect(self);
    }

    fn connection(&self, service: Service) -> &RefCell<Connection> {
        match service {
            Service::Pedidos => &self.pedidos,
            Service::Inventario => &self.inventario,
            _ => &self.pagos,
        }
    }

    /// Keeps a copy of one service's database, or puts an older copy back.
    /// One service per run is backed up and restored, as the contract promises: the
    /// books hold through a restore of any one service, not of two at once.
    fn backup_or_restore(&self) -> Option<Service> {
        let services = [Service::Pedidos, Service::Inventario, Service::Pagos];
        let service = services[(self.seed / 16 % 3) as usize];
        let restore = self.below(2) == 0;
        let mut copies = self.copies.borrow_mut();
        if restore && let Some(i) = copies.iter().position(|(s, _)| *s == service) {
            let (_, copy) = copies.remove(i);
            *self.connection(service).borrow_mut() = copy;
            drop(copies);
            if service == Service::Pedidos {
                self.pedidos_restored.set(true);
            } else {
                // The service starts again on the copy.
                crate::secuencia::started(&self.connection(service).borrow()).expect("started");
                let restarts = &self.restarts[usize::from(service == Service::Pagos)];
                restarts.set(restarts.get() + 1);
            }
            self.log(format!(
                "*** {} restored from an older copy of its database",
                service.name()
            ));
            return Some(service);
        }
        let copy = copy_of(&self.connection(service).borrow());
        copies.push((service, copy));
        drop(copies);
        self.log(format!("{} backed up", service.name()));
        None
    }
}

/// pedidos' view of its peers in the simulation.
struct SimPeers<'a>(&'a Shop);

impl SimPeers<'_> {
    /// A call that names only the order's key: `verb` it at `peer`.
    async fn by_key<T: std::fmt::Debug + 'static>(
        &self,
        peer: Peer,
        verb: &str,
        key: &str,
        visto: Option<i64>,
        effect: fn(&Shop, &str, Option<i64>) -> Result<T, PeerError>,
    ) -> Result<T, PeerError> {
        let key = key.to_string();
        let what = format!("{verb} {key} visto={visto:?}");
        self.0
            .call(peer, what, move |shop| effect(shop, &key, visto))
            .await
    }
}

impl PeerApi for SimPeers<'_> {
    fn ensure_available(&self) -> Result<(), PeerError> {
        Ok(())
    }

    async fn precios(&self, ids: &[i64]) -> Result<HashMap<i64, Money>, PeerError> {
        let shop = self.0;
        Ok(ids
            .iter()
            .filter_map(|id| shop.precios.get(id).map(|p| (*id, *p)))
            .collect())
    }

    async fn reservar(
        &self,
        clave: &str,
        items: &[Item],
        visto: Option<i64>,
    ) -> Result<LoteAnswer, PeerError> {
        let (clave, items) = (clave.to_string(), items.to_vec());
        let what = format!("reserve {clave} visto={visto:?}");
        self.0
            .call(Peer::Inventario, what, move |shop| {
                shop.reserve(&clave, &items, visto)
            })
            .await
    }

    async fn confirmar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        self.by_key(Peer::Inventario, "confirm", clave, visto, Shop::confirm)
            .await
    }

    async fn liberar(&self, clave: &str, visto: Option<i64>) -> Result<LoteAnswer, PeerError> {
        self.by_key(Peer::Inventario, "release", clave, visto, Shop::release)
            .await
    }

    async fn pagar(&self, request: &PagarRequest<'_>) -> Result<PagoAnswer, PeerError> {
        let (monto, moneda, medio, referencia, fail, visto) = (
            request.monto,
            request.moneda.to_string(),
            request.medio.to_string(),
            request.referencia.to_string(),
            request.fail,
            request.visto,
        );
        let what = format!("charge {referencia} {monto:?} fail={fail} visto={visto:?}");
        self.0
            .call(Peer::Pagos, what, move |shop| {
                let charge = Charge {
                    monto,
                    moneda: moneda.clone(),
                    medio: medio.clone(),
                    referencia: Some(referencia.clone()),
                    estado: if fail { Pago::Rechazado } else { Pago::Aprobado },
                };
                shop.charge(charge, visto)
            })
            .await
    }

    async fn anular(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        self.by_key(Peer::Pagos, "void", referencia, visto, |shop, r, v| {
            shop.void(r, false, v)
        })
        .await
    }

    async fn reembolsar(&self, referencia: &str, visto: Option<i64>) -> Result<PagoAnswer, PeerError> {
        self.by_key(Peer::Pagos, "refund", referencia, visto, |shop, r, v| {
            shop.void(r, true, v)
        })
        .await
    }

    async fn lotes(&self, cambios: &Cambios) -> Result<LotesListed, PeerError> {
        let cambios = cambios.clone();
        let what = format!("list {cambios:?}");
        self.0
            .call(Peer::Inventario, what, move |shop| shop.list_lotes(&cambios))
            .await
    }

    async fn pagos(&self, cambios: &Cambios) -> Result<PagosListed, PeerError> {
        let cambios = cambios.clone();
        let what = format!("list {cambios:?}");
        self.0
            .call(Peer::Pagos, what, move |shop| shop.list_pagos(&cambios))
            .await
    }

    async fn raise(&self, ledger: Ledger, to: i64) -> Result<i64, PeerError> {
        let (peer, service) = match ledger {
            Ledger::Inventario => (Peer::Inventario, Service::Inventario),
            Ledger::Pagos => (Peer::Pagos, Service::Pagos),
        };
        self.0
            .call(peer, format!("raise its secuencia to {to}"), move |shop| {
                Ok(crate::secuencia::raise(&shop.connection(service).borrow(), to).expect("raised"))
            })
            .await
    }
}

/// pedidos' database in the simulation: the real SQL, on the shop's connection.
struct SimStore<'a>(&'a Shop);

impl Store for SimStore<'_> {
    fn now_millis(&self) -> i64 {
        self.0.now()
    }

    async fn create(
        &self,
        first_record: FirstRecord,
        clave: Option<String>,
        in_progress: &Arc<InProgress>,
    ) -> Result<(Placement, Option<Claim>), ApiError> {
        Yield::default().await;
        Ok(saga::record_new(
            &mut self.0.pedidos.borrow_mut(),
            first_record,
            clave.as_deref(),
            in_progress,
        )?)
    }

    async fn transition(
        &self,
        id: i64,
        from: Stage,
        to: Stage,
        reservas: Option<Vec<i64>>,
        seen: ChangeNumbers,
    ) -> Result<bool, ApiError> {
        // Queued for the writer, as the real one is: it is written even if the request
        // that asked for it is gone by then (its client hung up, its turn released).
        let written: Rc<Cell<Option<bool>>> = Rc::default();
        let slot = written.clone();
        self.0.writes.borrow_mut().push_back(Box::new(move |shop: &Shop| {
            let done = repo::transition(
                &mut shop.pedidos.borrow_mut(),
                id,
                &from,
                &to,
                reservas.as_deref(),
                seen,
            )
            .expect("written");
            shop.log(format!(
                "pedidos records pedido {id}: {from:?} -> {to:?}{}",
                if done { "" } else { " (stale: not written)" }
            ));
            slot.set(Some(done));
        }));
        loop {
            if let Some(done) = written.get() {
                return Ok(done);
            }
            Yield::default().await;
        }
    }

    async fn load(&self, id: i64) -> Result<Option<Pedido>, ApiError> {
        Yield::default().await;
        Ok(repo::get(&self.0.pedidos.borrow(), id)?)
    }

    async fn unfinished(&self, limit: i64) -> Result<Vec<i64>, ApiError> {
        Yield::default().await;
        Ok(repo::unfinished(&self.0.pedidos.borrow(), limit)?)
    }

    async fn recorded_after(
        &self,
        ledger: Ledger,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, ApiError> {
        Yield::default().await;
        Ok(repo::recorded_after(
            &self.0.pedidos.borrow(),
            ledger,
            after,
            limit,
        )?)
    }

    async fn by_clave(&self, prefijo: &str, clave: &str) -> Result<Option<i64>, ApiError> {
        Yield::default().await;
        Ok(repo::by_clave(&self.0.pedidos.borrow(), prefijo, clave)?)
    }

    async fn bring_back(&self, prefijo: &str, lost: BroughtBack) -> Result<Option<i64>, ApiError> {
        Yield::default().await;
        let id = repo::bring_back(&mut self.0.pedidos.borrow_mut(), prefijo, &lost)?;
        self.0.log(format!("pedidos brings back {lost:?} as {id:?}"));
        Ok(id)
    }

    async fn healing(&self, ledger: Ledger) -> Result<Option<(i64, i64)>, ApiError> {
        Yield::default().await;
        Ok(repo::healing(&self.0.pedidos.borrow(), ledger)?)
    }

    async fn begin_healing(&self, ledger: Ledger, desde: i64, hasta: i64) -> Result<(i64, i64), ApiError> {
        Yield::default().await;
        self.0
            .log(format!("pedidos heals {ledger:?} from {desde} to {hasta}"));
        Ok(repo::begin_healing(
            &self.0.pedidos.borrow(),
            ledger,
            desde,
            hasta,
        )?)
    }

    async fn end_healing(&self, ledger: Ledger) -> Result<(), ApiError> {
        Yield::default().await;
        self.0.log(format!("pedidos healed {ledger:?}"));
        Ok(repo::end_healing(&self.0.pedidos.borrow(), ledger)?)
    }
}

/// A future that lets every other task move once before it goes on.
#[derive(Default)]
struct Yield(bool);

impl Future for Yield {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// What a client was answered.
#[derive(Debug, Clone, Copy)]
struct Answered {
    id: i64,
    status: StatusCode,
}

fn instance(shop: &Shop) -> Rc<Instance> {
    let metrics = Metrics::new(Service::Pedidos).expect("metrics");
    let healing = Healing::at_start(&shop.pedidos.borrow()).expect("read");
    Rc::new(Instance {
        vistos: PeerNumbers::starting_at(healing.recorded),
        healing,
        prefijo: repo::prefijo(&shop.pedidos.borrow()).expect("prefijo"),
        plazo: Duration::from_millis(DEADLINE_MS as u64),
        in_progress: Arc::default(),
        line_by_line: Arc::default(),
        metrics: Arc::new(PedidosMetrics::register(&metrics).expect("metrics")),
        tracer: None,
    })
}

/// Runs one seed; returns what went wrong, with the run's trace.
pub fn run(seed: u64, faults: Faults) -> Result<(), String> {
    fastrand::seed(seed);
    let shop = Shop::new(seed, faults);
    let peers = SimPeers(&shop);
    let store = SimStore(&shop);
    let answers: RefCell<Vec<Answered>> = RefCell::default();
    let orders = shop.below(8) + 1;
    let mut current = instance(&shop);
    let mut requests: Vec<Option<Task<'_>>> = Vec::new();
    for n in 0..orders {
        let productos = shop.precios.len() as i64;
        let lineas: Vec<Linea> = (1..=productos)
            .filter(|_| shop.below(2) == 0)
            .map(|producto_id| Linea {
                producto_id,
                cantidad: shop.below(3) as i64 + 1,
            })
            .collect();
        let lineas = if lineas.is_empty() {
            vec![Linea {
                producto_id: 1,
                cantidad: 1,
            }]
        } else {
            lineas
        };
        let nuevo = NewPedido {
            lineas,
            medio: "tarjeta".into(),
            moneda: "PYG".into(),
            fail: shop.below(5) == 0,
        };
        shop.log(format!("request {n}: {nuevo:?}"));
        requests.push(Some(place(
            &shop,
            &peers,
            &store,
            &answers,
            current.clone(),
            nuevo,
            n,
        )));
    }
    let mut recovery = Some(recover(&shop, &peers, &store, current.clone()));
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut steps = 0;
    while requests.iter().any(Option::is_some) && steps < MAX_STEPS {
        steps += 1;
        shop.clock.set(shop.now() + shop.below(5) as i64);
        if shop.chance(0.02) {
            shop.deliver_late();
        }
        if shop.chance(0.5) {
            shop.write_next();
        }
        let faults = shop.faults.get();
        // A client hangs up (or its request times out): pedidos places the order all
        // the same, holding its turn until what it found is written; no one hears the answer.
        if shop.chance(faults.crash) {
            let n = shop.below(requests.len());
            if requests[n].is_some() && shop.hung_up.borrow_mut().insert(n) {
                shop.log(format!("*** the client of request {n} hangs up"));
            }
        }
        let mut crash = shop.chance(faults.crash);
        if faults.rollback && shop.chance(0.01) && shop.backup_or_restore() == Some(Service::Pedidos) {
            crash = true;
        }
        if crash {
            shop.log("*** pedidos crashes: every driver and turn is gone, its database stays");
            // Its writer dies too: what it had not committed is lost.
            shop.writes.borrow_mut().clear();
            for request in requests.iter_mut() {
                *request = None;
            }
            current = instance(&shop);
            recovery = Some(recover(&shop, &peers, &store, current.clone()));
            continue;
        }
        // Recovery gets a turn as often as any request.
        let pick = shop.below(requests.len() + 1);
        if pick == requests.len() {
            if let Some(task) = recovery.as_mut() {
                let _ = task.as_mut().poll(&mut cx);
            }
        } else if let Some(task) = requests[pick].as_mut()
            && task.as_mut().poll(&mut cx).is_ready()
        {
            requests[pick] = None;
        }
    }
    drop(requests);
    drop(recovery);
    // The faults stop: what was on its way arrives, the clock passes every deadline,
    // and recovery runs until nothing is left to do.
    shop.faults.set(Faults {
        call: 0.0,
        crash: 0.0,
        rollback: false,
    });
    while !shop.late.borrow().is_empty() {
        shop.deliver_late();
    }
    while !shop.writes.borrow().is_empty() {
        shop.write_next();
    }
    shop.clock.set(shop.now() + 2 * DEADLINE_MS);
    shop.log("*** faults stop; recovery finishes the rest");
    let current = instance(&shop);
    for _ in 0..5 {
        let ctx = SagaContext {
            peers: &peers,
            store: &store,
            instance: &current,
        };
        let mut pass = std::pin::pin!(recovery::pass(&ctx));
        while pass.as_mut().poll(&mut cx).is_pending() {
            shop.write_next();
        }
    }
    let answered = answers.borrow().clone();
    shop.check(&answered).map_err(|problem| {
        let trace = shop.trace.borrow().join("\n");
        format!("seed {seed} ({faults:?}): {problem}\n--- what happened ---\n{trace}")
    })
}

fn place<'a>(
    shop: &'a Shop,
    peers: &'a SimPeers<'a>,
    store: &'a SimStore<'a>,
    answers: &'a RefCell<Vec<Answered>>,
    instance: Rc<Instance>,
    nuevo: NewPedido,
    n: usize,
) -> Task<'a> {
    Box::pin(async move {
        let ctx = SagaContext {
            peers,
            store,
            instance: &instance,
        };
        match saga::place(&ctx, nuevo, None).await {
            Ok(Placement::New(pedido)) => {
                let (status, _) = pedido.etapa.answer();
                if shop.hung_up.borrow().contains(&n) {
                    shop.log(format!(
                        "request {n} answered {status} for pedido {}, unheard",
                        pedido.id
                    ));
                    return;
                }
                shop.log(format!("request {n} answered {status} for pedido {}", pedido.id));
                answers.borrow_mut().push(Answered {
                    id: pedido.id,
                    status,
                });
            }
            Ok(other) => shop.log(format!("request {n}: {other:?}")),
            Err(e) => shop.log(format!("request {n} failed: {e:?}")),
        }
    })
}

fn recover<'a>(
    shop: &'a Shop,
    peers: &'a SimPeers<'a>,
    store: &'a SimStore<'a>,
    instance: Rc<Instance>,
) -> Task<'a> {
    Box::pin(async move {
        let ctx = SagaContext {
            peers,
            store,
            instance: &instance,
        };
        loop {
            match recovery::pass(&ctx).await {
                Ok(n) => shop.log(format!("recovery pass finished {n} orders")),
                Err(e) => shop.log(format!("recovery pass failed: {e:?}")),
            }
            for _ in 0..shop.below(20) {
                Yield::default().await;
            }
        }
    })
}

impl Shop {
    /// The shop's books once recovery is done: every order final and answered truly,
    /// every unit where an order says it is, every charge for exactly one order.
    fn check(&self, answered: &[Answered]) -> Result<(), String> {
        let pedidos_conn = self.pedidos.borrow();
        let prefijo = repo::prefijo(&pedidos_conn).map_err(|e| e.to_string())?;
        let pedidos = repo::list(
            &pedidos_conn,
            crate::pagination::Bounds {
                limit: 1000,
                after: 0,
                offset: 0,
            },
        )
        .map_err(|e| e.to_string())?;
        let mut by_clave: HashMap<String, &Pedido> = HashMap::new();
        for pedido in &pedidos {
            if !pedido.is_over() {
                return Err(format!("pedido {} is not over: {:?}", pedido.id, pedido.etapa));
            }
            if by_clave.insert(pedido.clave(&prefijo), pedido).is_some() {
                return Err(format!("two orders share the key {}", pedido.clave(&prefijo)));
            }
        }
        let by_id: HashMap<i64, &Pedido> = pedidos.iter().map(|p| (p.id, p)).collect();
        for answer in answered {
            let Some(pedido) = by_id.get(&answer.id) else {
                let sold = matches!(answer.status.as_u16(), 201 | 202);
                if self.pedidos_restored.get() && !sold {
                    continue;
                }
                return Err(format!(
                    "pedido {} was answered {} and is gone",
                    answer.id, answer.status
                ));
            };
            let estado = pedido.etapa.estado();
            // A pedidos restored from an older copy forgets what it answered after it:
            // a sale it promised stays a sale (its peers hold it), but an order it
            // answered as not made may be finished again from where the copy left it.
            let forgotten = self.pedidos_restored.get();
            let truthful = match answer.status.as_u16() {
                201 | 202 => estado == EstadoPedido::Confirmado,
                _ if forgotten => true,
                402 => estado == EstadoPedido::Rechazado,
                _ => estado == EstadoPedido::Fallido,
            };
            if !truthful {
                return Err(format!(
                    "pedido {} was answered {} and is now {estado:?}",
                    answer.id, answer.status
                ));
            }
        }
        // Units: what each product had is what is left plus what confirmed orders took,
        // nothing is held, and inventario confirmed exactly what the confirmed orders hold.
        let inventario = self.inventario.borrow();
        let mut sold: BTreeMap<i64, i64> = BTreeMap::new();
        for pedido in pedidos
            .iter()
            .filter(|p| p.etapa.estado() == EstadoPedido::Confirmado)
        {
            for item in &pedido.items {
                *sold.entry(item.producto_id).or_default() += item.cantidad;
            }
            let lote: Vec<(String, i64, i64)> = inventario
                .prepare("SELECT estado, producto_id, cantidad FROM reservas WHERE lote = ?1 ORDER BY id")
                .and_then(|mut s| {
                    s.query_map([pedido.clave(&prefijo)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect()
                })
                .map_err(|e| e.to_string())?;
            let holds = lote.len() == pedido.items.len()
                && lote
                    .iter()
                    .zip(&pedido.items)
                    .all(|((estado, producto, cantidad), item)| {
                        estado == "confirmada" && *producto == item.producto_id && *cantidad == item.cantidad
                    });
            if !holds {
                return Err(format!(
                    "pedido {} is confirmado but its lote at inventario is {lote:?}",
                    pedido.id
                ));
            }
        }
        for (&producto, &loaded) in &self.stock {
            let (cantidad, reservado): (i64, i64) = inventario
                .query_row(
                    "SELECT cantidad, reservado FROM stock WHERE producto_id = ?1",
                    [producto],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(|e| e.to_string())?;
            let confirmed: i64 = inventario
                .query_row(
                    "SELECT coalesce(sum(cantidad), 0) FROM reservas WHERE producto_id = ?1 AND estado = 'confirmada'",
                    [producto],
                    |r| r.get(0),
                )
                .map_err(|e| e.to_string())?;
            let sold = sold.get(&producto).copied().unwrap_or(0);
            if reservado != 0 {
                return Err(format!("producto {producto}: {reservado} units still held"));
            }
            if cantidad + confirmed != loaded || confirmed != sold {
                return Err(format!(
                    "producto {producto}: {loaded} loaded, {cantidad} available, {confirmed} confirmed at \
                     inventario, {sold} in confirmed orders"
                ));
            }
        }
        // Money: every approved charge belongs to exactly one confirmed order, for its
        // total, and every confirmed order that cost anything has one.
        let pagos = self.pagos.borrow();
        let charges: Vec<(i64, String, Option<String>, i64)> = pagos
            .prepare("SELECT id, estado, referencia, monto FROM pagos ORDER BY id")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(|e| e.to_string())?;
        let mut charged: HashMap<String, i64> = HashMap::new();
        for (pago_id, estado, referencia, monto) in &charges {
            if estado != "aprobado" {
                continue;
            }
            let referencia = referencia.clone().unwrap_or_default();
            let Some(pedido) = by_clave.get(&referencia) else {
                return Err(format!(
                    "pago {pago_id} ({referencia}) is approved for no order pedidos lists"
                ));
            };
            let confirmed = matches!(
                pedido.etapa,
                Stage::Cerrado {
                    desenlace: crate::pedidos::model::Outcome::Confirmado { pago_id: Some(id) },
                    ..
                } if id == *pago_id
            );
            if !confirmed || pedido.total.hundredths() != *monto {
                return Err(format!(
                    "pago {pago_id} ({referencia}, {monto}) is approved but pedido {} is {:?}",
                    pedido.id, pedido.etapa
                ));
            }
            if charged.insert(referencia.clone(), *pago_id).is_some() {
                return Err(format!("{referencia} was charged twice"));
            }
        }
        for pedido in pedidos
            .iter()
            .filter(|p| p.etapa.estado() == EstadoPedido::Confirmado)
        {
            if !pedido.is_free() && !charged.contains_key(&pedido.clave(&prefijo)) {
                return Err(format!(
                    "pedido {} is confirmado but was never charged",
                    pedido.id
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `n`th quarter of the seeds to explore: 10,000 unless `PENGUIN_SIM_SEEDS`
    /// says how many, or just `PENGUIN_SIM_SEED` (in the first quarter).
    fn quarter(n: u64) -> std::ops::Range<u64> {
        if let Some(seed) = std::env::var("PENGUIN_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            return if n == 0 { seed..seed + 1 } else { 0..0 };
        }
        let count: u64 = std::env::var("PENGUIN_SIM_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        let size = count.div_ceil(4);
        (n * size).min(count)..((n + 1) * size).min(count)
    }

    /// The faults a seed tries: from none to many, with crashes, and (every other
    /// seed) restores of one service.
    fn faults_of(seed: u64) -> Faults {
        Faults {
            call: [0.0, 0.1, 0.3, 0.6][(seed % 4) as usize],
            crash: [0.0, 0.0, 0.005, 0.02][((seed / 4) % 4) as usize],
            rollback: (seed / 48).is_multiple_of(2),
        }
    }

    fn explore(range: std::ops::Range<u64>) {
        for seed in range.clone() {
            if let Err(problem) = run(seed, faults_of(seed)) {
                panic!(
                    "{problem}\n\nreplay: PENGUIN_SIM_SEED={seed} cargo test --lib simulation -- --nocapture"
                );
            }
        }
        eprintln!(
            "simulation: {} seeds explored, every invariant held",
            range.end - range.start
        );
    }

    // Ten thousand seeds, in four tests that run side by side.
    #[test]
    fn the_saga_keeps_the_books_through_lost_duplicated_late_calls_crashes_and_restores_seeds_0() {
        explore(quarter(0));
    }

    #[test]
    fn the_saga_keeps_the_books_through_lost_duplicated_late_calls_crashes_and_restores_seeds_1() {
        explore(quarter(1));
    }

    #[test]
    fn the_saga_keeps_the_books_through_lost_duplicated_late_calls_crashes_and_restores_seeds_2() {
        explore(quarter(2));
    }

    #[test]
    fn the_saga_keeps_the_books_through_lost_duplicated_late_calls_crashes_and_restores_seeds_3() {
        explore(quarter(3));
    }
}
