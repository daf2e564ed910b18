//! What every worker of one pedidos shares: its database's key prefix, the order
//! deadline, which orders are being driven right now, what it learned of an
//! inventario without lotes, and its metrics.
//!
//! An order is moved on by one driver at a time: the request that placed it, or a
//! recovery pass. The request claims its order before the order is committed, so no
//! reader (recovery) can ever see it unclaimed while that request runs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::clients::LineByLine;
use super::metrics::PedidosMetrics;
use super::model::{ChangeNumbers, Ledger};
use super::repo;
use crate::db::Pool;
use crate::trace::Tracer;

pub struct Instance {
    /// Prefix of every key pedidos gives its peers, unique to this database.
    pub prefijo: String,
    /// How long after it is placed an order may still be charged.
    pub plazo: Duration,
    pub in_progress: Arc<InProgress>,
    /// The lotes reserved line by line at an inventario without lotes.
    pub line_by_line: Arc<LineByLine>,
    pub metrics: Arc<PedidosMetrics>,
    /// The highest number each peer gave a change made for this pedidos, sent with
    /// every change asked of it (`?visto=`) so that a peer restored behind it refuses.
    pub vistos: PeerNumbers,
    /// What this pedidos still has to heal: a peer restored behind it, orders lost to a
    /// restore of its own database.
    pub healing: Healing,
    /// Where recovery's spans go, when a collector is named.
    pub tracer: Option<Tracer>,
}

/// The highest number each peer gave a change (see `secuencia`).
#[derive(Debug, Default)]
pub struct PeerNumbers {
    inventario: AtomicI64,
    pagos: AtomicI64,
}

impl PeerNumbers {
    pub fn starting_at(seen: ChangeNumbers) -> Self {
        Self {
            inventario: AtomicI64::new(seen.inventario.unwrap_or(0)),
            pagos: AtomicI64::new(seen.pagos.unwrap_or(0)),
        }
    }

    fn slot(&self, ledger: Ledger) -> &AtomicI64 {
        match ledger {
            Ledger::Inventario => &self.inventario,
            Ledger::Pagos => &self.pagos,
        }
    }

    pub fn get(&self, ledger: Ledger) -> i64 {
        self.slot(ledger).load(Ordering::Relaxed)
    }

    /// Notes a number `ledger` answered with.
    pub fn saw(&self, ledger: Ledger, secuencia: Option<i64>) {
        if let Some(n) = secuencia {
            self.slot(ledger).fetch_max(n, Ordering::Relaxed);
        }
    }
}

/// The healing this pedidos owes: which peers refused a change as a restored copy
/// behind it, and whether it has yet learned from its peers of orders its own database
/// lost. Recovery does both, and is woken as soon as a peer is found behind.
#[derive(Debug)]
pub struct Healing {
    stale: [AtomicBool; 2],
    learned: AtomicBool,
    /// Whether learning was tried once since the start, whatever came of it.
    tried: AtomicBool,
    /// For each peer, the number it started at whose following changes were found held.
    verified: [AtomicI64; 2],
    /// The highest numbers its database had recorded when this pedidos started: what
    /// its peers changed after them is what it may have lost.
    pub recorded: ChangeNumbers,
    pub wake: tokio::sync::Notify,
}

impl Healing {
    /// The healing a pedidos owes as it starts on `conn`'s database: the peers it was
    /// healing when it stopped, and learning what its peers changed after what it recorded.
    pub fn at_start(conn: &rusqlite::Connection) -> rusqlite::Result<Self> {
        let healing = Self {
            stale: [AtomicBool::new(false), AtomicBool::new(false)],
            learned: AtomicBool::new(false),
            tried: AtomicBool::new(false),
            verified: [AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)],
            recorded: repo::seen(conn)?,
            wake: tokio::sync::Notify::new(),
        };
        for ledger in Ledger::BOTH {
            if repo::healing(conn, ledger)?.is_some() {
                healing.stale[Self::index(ledger)].store(true, Ordering::Relaxed);
            }
        }
        Ok(healing)
    }

    fn index(ledger: Ledger) -> usize {
        match ledger {
            Ledger::Inventario => 0,
            Ledger::Pagos => 1,
        }
    }

    /// `ledger` refused a change as a copy behind what this pedidos has seen.
    pub fn found_stale(&self, ledger: Ledger) {
        if !self.stale[Self::index(ledger)].swap(true, Ordering::Relaxed) {
            log::error!(
                target: "pedidos",
                "{} was restored from an older copy of its database: its changes are refused until \
                 pedidos re-asserts what the copy lost",
                <&str>::from(ledger)
            );
            self.wake.notify_one();
        }
    }

    pub fn is_stale(&self, ledger: Ledger) -> bool {
        self.stale[Self::index(ledger)].load(Ordering::Relaxed)
    }

    pub fn healed(&self, ledger: Ledger) {
        self.stale[Self::index(ledger)].store(false, Ordering::Relaxed);
    }

    /// The number `ledger` started at whose following changes were found held.
    pub fn verified(&self, ledger: Ledger) -> Option<i64> {
        Some(self.verified[Self::index(ledger)].load(Ordering::Relaxed)).filter(|&n| n != i64::MIN)
    }

    pub fn verify(&self, ledger: Ledger, start: i64) {
        self.verified[Self::index(ledger)].store(start, Ordering::Relaxed);
    }

    pub fn learned(&self) -> bool {
        self.learned.load(Ordering::Relaxed)
    }

    pub fn set_learned(&self) {
        self.learned.store(true, Ordering::Relaxed);
    }

    /// Whether learning was tried since the start (new orders wait for that, once).
    pub fn tried(&self) -> bool {
        self.tried.load(Ordering::Relaxed)
    }

    pub fn set_tried(&self) {
        self.tried.store(true, Ordering::Relaxed);
    }
}

impl Instance {
    /// Reads the database's key prefix.
    pub fn load(
        pool: &Pool,
        plazo: Duration,
        metrics: Arc<PedidosMetrics>,
        tracer: Option<Tracer>,
    ) -> anyhow::Result<Self> {
        let conn = pool.get()?;
        let healing = Healing::at_start(&conn)?;
        Ok(Self {
            prefijo: repo::prefijo(&conn)?,
            plazo,
            in_progress: Arc::default(),
            line_by_line: Arc::default(),
            metrics,
            vistos: PeerNumbers::starting_at(healing.recorded),
            healing,
            tracer,
        })
    }
}

/// The orders being driven in this process.
#[derive(Debug, Default)]
pub struct InProgress(Mutex<HashSet<i64>>);

/// The right to move one order on, held until dropped.
#[derive(Debug)]
pub struct Claim {
    in_progress: Arc<InProgress>,
    id: i64,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.in_progress.ids().remove(&self.id);
    }
}

impl InProgress {
    fn ids(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The turn to drive order `id`, unless someone else holds it.
    pub fn claim(self: &Arc<Self>, id: i64) -> Option<Claim> {
        self.ids().insert(id).then(|| Claim {
            in_progress: self.clone(),
            id,
        })
    }

    /// The orders being driven now.
    pub fn driven(&self) -> Vec<i64> {
        self.ids().iter().copied().collect()
    }

    /// Whether someone is driving order `id` now.
    pub fn is_driven(&self, id: i64) -> bool {
        self.ids().contains(&id)
    }
}
