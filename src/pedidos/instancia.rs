//! What every worker of one pedidos shares: its database's key prefix, the order
//! deadline, which orders are being driven right now, what it learned of an
//! inventario without lotes, and its metrics.
//!
//! An order is moved on by one driver at a time: the request that placed it, or a
//! recovery pass. The request claims its order before the order is committed, so no
//! reader (recovery) can ever see it unclaimed while that request runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::clients::LineByLine;
use super::metrics::PedidosMetrics;
use super::repo;
use crate::db::Pool;

pub struct Instancia {
    /// Prefix of every key pedidos gives its peers, unique to this database.
    pub prefijo: String,
    /// How long after it is placed an order may still be charged.
    pub plazo: Duration,
    pub en_curso: Arc<EnCurso>,
    /// The lotes reserved line by line at an inventario without lotes.
    pub line_by_line: Arc<LineByLine>,
    pub metrics: Arc<PedidosMetrics>,
}

impl Instancia {
    /// Reads the database's key prefix.
    pub fn load(pool: &Pool, plazo: Duration, metrics: Arc<PedidosMetrics>) -> anyhow::Result<Self> {
        Ok(Self {
            prefijo: repo::prefijo(&*pool.get()?)?,
            plazo,
            en_curso: Arc::default(),
            line_by_line: Arc::default(),
            metrics,
        })
    }
}

/// The orders being driven in this process.
#[derive(Debug, Default)]
pub struct EnCurso(Mutex<HashSet<i64>>);

/// The right to move one order on, held until dropped.
#[derive(Debug)]
pub struct Turno {
    en_curso: Arc<EnCurso>,
    id: i64,
}

impl Drop for Turno {
    fn drop(&mut self) {
        self.en_curso.ids().remove(&self.id);
    }
}

impl EnCurso {
    fn ids(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The turn to drive order `id`, unless someone else holds it.
    pub fn tomar(self: &Arc<Self>, id: i64) -> Option<Turno> {
        self.ids().insert(id).then(|| Turno {
            en_curso: self.clone(),
            id,
        })
    }

    /// Whether someone is driving order `id` now.
    pub fn ocupado(&self, id: i64) -> bool {
        self.ids().contains(&id)
    }
}
