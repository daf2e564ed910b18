//! The catalog in memory: every product, loaded at start and kept up to date by each
//! committed write, in commit order. Reads are answered from it without touching
//! SQLite; the database stays the source of truth across restarts. It holds the
//! whole catalog, which for a shop is thousands of products, not millions.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::model::Producto;
use super::repo;
use crate::db::Pool;
use crate::pagination::Bounds;

#[derive(Debug, Default)]
pub struct Catalog(RwLock<BTreeMap<i64, Producto>>);

impl Catalog {
    /// Reads every product from the database.
    pub fn load(pool: &Pool) -> anyhow::Result<Self> {
        let productos = repo::all(&*pool.get()?)?;
        Ok(Self(RwLock::new(
            productos.into_iter().map(|p| (p.id, p)).collect(),
        )))
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<i64, Producto>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<i64, Producto>> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: i64) -> Option<Producto> {
        self.read().get(&id).cloned()
    }

    /// The products among `ids` that exist, in the order of `ids`.
    pub fn some(&self, ids: &[i64]) -> Vec<Producto> {
        let catalog = self.read();
        ids.iter().filter_map(|id| catalog.get(id).cloned()).collect()
    }

    /// The products in id order whose id is above `page.after`, `page.limit` of them
    /// after skipping `page.offset`.
    pub fn page(&self, page: Bounds) -> Vec<Producto> {
        let catalog = self.read();
        let past = catalog.range((Bound::Excluded(page.after), Bound::Unbounded));
        page.window(past.map(|(_, producto)| producto)).cloned().collect()
    }

    pub fn put(&self, producto: &Producto) {
        self.write().insert(producto.id, producto.clone());
    }

    pub fn remove(&self, id: i64) {
        self.write().remove(&id);
    }
}
