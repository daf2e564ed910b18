//! SQL over `pedidos.db`.

use std::collections::HashMap;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::model::{EstadoPedido, NuevoPedido, Pedido, PedidoItem};
use crate::money::Money;

const PEDIDO_COLUMNS: &str = "id, estado, total, moneda, medio, pago_id, motivo, creado_en";

fn conversion(
    column: usize,
    kind: Type,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, kind, Box::new(e))
}

fn money(row: &Row, column: usize) -> rusqlite::Result<Option<Money>> {
    row.get::<_, Option<i64>>(column)?
        .map(|h| Money::from_hundredths(h).map_err(|e| conversion(column, Type::Integer, e)))
        .transpose()
}

fn pedido(row: &Row) -> rusqlite::Result<Pedido> {
    let estado: String = row.get(1)?;
    Ok(Pedido {
        id: row.get(0)?,
        estado: EstadoPedido::parse(&estado).ok_or_else(|| conversion(1, Type::Text, std::fmt::Error))?,
        total: money(row, 2)?.unwrap_or_default(),
        moneda: row.get(3)?,
        medio: row.get(4)?,
        pago_id: row.get(5)?,
        motivo: row.get(6)?,
        creado_en: row.get(7)?,
        items: Vec::new(),
    })
}

/// Reads the lines of the orders whose ids lie in `first..=last`, by order id.
fn items_between(
    conn: &Connection,
    first: i64,
    last: i64,
) -> rusqlite::Result<HashMap<i64, Vec<PedidoItem>>> {
    let mut items: HashMap<i64, Vec<PedidoItem>> = HashMap::new();
    let mut statement = conn.prepare_cached(
        "SELECT pedido_id, producto_id, cantidad, precio_unitario, reserva_id FROM pedido_items
         WHERE pedido_id BETWEEN ?1 AND ?2 ORDER BY pedido_id, linea",
    )?;
    let mut rows = statement.query([first, last])?;
    while let Some(row) = rows.next()? {
        let cantidad: i64 = row.get(2)?;
        let precio_unitario = money(row, 3)?;
        items.entry(row.get(0)?).or_default().push(PedidoItem {
            producto_id: row.get(1)?,
            cantidad,
            precio_unitario,
            subtotal: precio_unitario.and_then(|p| p.times(cantidad).ok()),
            reserva_id: row.get(4)?,
        });
    }
    Ok(items)
}

/// Records a new order as `pendiente`, with its lines, before any peer is called.
pub fn create(conn: &mut Connection, nuevo: &NuevoPedido) -> rusqlite::Result<Pedido> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut pedido = tx
        .prepare_cached(&format!(
            "INSERT INTO pedidos (estado, moneda, medio) VALUES ('pendiente', ?1, ?2) RETURNING {PEDIDO_COLUMNS}"
        ))?
        .query_row(params![nuevo.moneda, nuevo.medio], pedido)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO pedido_items (pedido_id, linea, producto_id, cantidad) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (linea, item) in nuevo.lineas.iter().enumerate() {
            insert.execute(params![pedido.id, linea as i64, item.producto_id, item.cantidad])?;
        }
    }
    tx.commit()?;
    pedido.items = nuevo
        .lineas
        .iter()
        .map(|l| PedidoItem {
            producto_id: l.producto_id,
            cantidad: l.cantidad,
            precio_unitario: None,
            subtotal: None,
            reserva_id: None,
        })
        .collect();
    Ok(pedido)
}

/// Records the outcome of an order: its estado, total, payment, reason and what each line got.
pub fn finish(conn: &mut Connection, pedido: &Pedido) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached("UPDATE pedidos SET estado = ?2, total = ?3, pago_id = ?4, motivo = ?5 WHERE id = ?1")?
        .execute(params![
            pedido.id,
            pedido.estado.as_str(),
            pedido.total.hundredths(),
            pedido.pago_id,
            pedido.motivo
        ])?;
    {
        let mut update = tx.prepare_cached(
            "UPDATE pedido_items SET precio_unitario = ?3, reserva_id = ?4 WHERE pedido_id = ?1 AND linea = ?2",
        )?;
        for (linea, item) in pedido.items.iter().enumerate() {
            update.execute(params![
                pedido.id,
                linea as i64,
                item.precio_unitario.map(Money::hundredths),
                item.reserva_id
            ])?;
        }
    }
    tx.commit()
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Pedido>> {
    let Some(mut pedido) = conn
        .prepare_cached(&format!("SELECT {PEDIDO_COLUMNS} FROM pedidos WHERE id = ?1"))?
        .query_row([id], pedido)
        .optional()?
    else {
        return Ok(None);
    };
    pedido.items = items_between(conn, id, id)?.remove(&id).unwrap_or_default();
    Ok(Some(pedido))
}

pub fn list(conn: &Connection, limit: i64, offset: i64) -> rusqlite::Result<Vec<Pedido>> {
    let mut pedidos: Vec<Pedido> = conn
        .prepare_cached(&format!(
            "SELECT {PEDIDO_COLUMNS} FROM pedidos ORDER BY id LIMIT ?1 OFFSET ?2"
        ))?
        .query_map([limit, offset], pedido)?
        .collect::<rusqlite::Result<_>>()?;
    let (Some(first), Some(last)) = (pedidos.first(), pedidos.last()) else {
        return Ok(pedidos);
    };
    // The page holds every order whose id lies between its first and its last.
    let mut items = items_between(conn, first.id, last.id)?;
    for pedido in &mut pedidos {
        pedido.items = items.remove(&pedido.id).unwrap_or_default();
    }
    Ok(pedidos)
}
