//! SQL over `productos.db`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{NewProducto, Producto, ProductoChange};

fn producto(row: &Row) -> rusqlite::Result<Producto> {
    Ok(Producto {
        id: row.get(0)?,
        nombre: row.get(1)?,
        precio: row.get(2)?,
    })
}

pub fn insert(conn: &Connection, nuevo: &NewProducto) -> rusqlite::Result<Producto> {
    conn.prepare_cached(
        "INSERT INTO productos (nombre, precio) VALUES (?1, ?2) RETURNING id, nombre, precio",
    )?
    .query_row(params![nuevo.nombre, nuevo.precio], producto)
}

/// Every product, in id order.
pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Producto>> {
    conn.prepare("SELECT id, nombre, precio FROM productos ORDER BY id")?
        .query_map([], producto)?
        .collect()
}

/// Changes the given fields in one statement; `None` when there is no such product.
pub fn update(conn: &Connection, id: i64, cambio: &ProductoChange) -> rusqlite::Result<Option<Producto>> {
    conn.prepare_cached(
        "UPDATE productos SET nombre = coalesce(?2, nombre), precio = coalesce(?3, precio)
         WHERE id = ?1 RETURNING id, nombre, precio",
    )?
    .query_row(params![id, cambio.nombre, cambio.precio], producto)
    .optional()
}

/// Whether a product was deleted.
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM productos WHERE id = ?1")?
        .execute([id])?
        > 0)
}
