//! SQL over `pedidos.db`.

use std::collections::HashMap;

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{EstadoPedido, NuevoPedido, Paso, Pedido, PedidoItem, Pendiente};
use crate::db::{Savepoint, now_millis};
use crate::money::Money;

const PEDIDO_COLUMNS: &str = "id, estado, total, moneda, medio, pago_id, motivo, creado_en, paso, pendiente, \
     respuesta, error, actualizado_en, verificar_pago";

fn conversion(column: usize, kind: Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, kind, what.into())
}

fn money(row: &Row, column: usize) -> rusqlite::Result<Option<Money>> {
    row.get::<_, Option<i64>>(column)?
        .map(|h| Money::from_hundredths(h).map_err(|e| conversion(column, Type::Integer, e.to_string())))
        .transpose()
}

fn text_enum<T>(row: &Row, column: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).ok_or_else(|| conversion(column, Type::Text, format!("unknown value {text:?}")))
}

fn pedido(row: &Row) -> rusqlite::Result<Pedido> {
    let pendiente: Option<String> = row.get(9)?;
    Ok(Pedido {
        id: row.get(0)?,
        estado: text_enum(row, 1, EstadoPedido::parse)?,
        total: money(row, 2)?.unwrap_or_default(),
        moneda: row.get(3)?,
        medio: row.get(4)?,
        pago_id: row.get(5)?,
        motivo: row.get(6)?,
        creado_en: row.get(7)?,
        paso: text_enum(row, 8, Paso::parse)?,
        pendiente: pendiente
            .map(|p| {
                Pendiente::parse(&p).ok_or_else(|| conversion(9, Type::Text, format!("pendiente {p:?}")))
            })
            .transpose()?,
        respuesta: row.get(10)?,
        error: row.get(11)?,
        actualizado_en: row.get(12)?,
        verificar_pago: row.get(13)?,
        items: Vec::new(),
        lineas_guardadas: true,
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

/// The outcome of recording a new order.
#[derive(Debug)]
pub enum Alta {
    /// A new order, recorded as `pendiente` with its lines.
    Nuevo(Pedido),
    /// The idempotency key was used before for the same order: this one.
    Repetido(i64),
    /// The idempotency key was used before for a different order.
    ClaveEnUso,
}

/// Records a new order as `pendiente`, with its lines (and its idempotency key),
/// before any peer is called.
pub fn create(conn: &mut Connection, nuevo: &NuevoPedido, clave: Option<&str>) -> rusqlite::Result<Alta> {
    let tx = Savepoint::begin(conn)?;
    let huella = clave.map(|_| nuevo.huella());
    if let Some(clave) = clave {
        let previa: Option<(String, i64)> = tx
            .prepare_cached("SELECT huella, pedido_id FROM claves_idempotencia WHERE clave = ?1")?
            .query_row([clave], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((huella_previa, pedido_id)) = previa {
            return Ok(if Some(huella_previa) == huella {
                Alta::Repetido(pedido_id)
            } else {
                Alta::ClaveEnUso
            });
        }
    }
    let mut pedido = tx
        .prepare_cached(&format!(
            "INSERT INTO pedidos (estado, moneda, medio, paso, actualizado_en)
             VALUES ('pendiente', ?1, ?2, 'creado', ?3) RETURNING {PEDIDO_COLUMNS}"
        ))?
        .query_row(params![nuevo.moneda, nuevo.medio, now_millis()], pedido)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO pedido_items (pedido_id, linea, producto_id, cantidad) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (linea, item) in nuevo.lineas.iter().enumerate() {
            insert.execute(params![pedido.id, linea as i64, item.producto_id, item.cantidad])?;
        }
    }
    if let (Some(clave), Some(huella)) = (clave, huella) {
        tx.prepare_cached("INSERT INTO claves_idempotencia (clave, huella, pedido_id) VALUES (?1, ?2, ?3)")?
            .execute(params![clave, huella, pedido.id])?;
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
    Ok(Alta::Nuevo(pedido))
}

/// Records everything the flow knows of an order: estado, step, work left, answer,
/// total, payment, reason, and each line's price and reservation.
pub fn save(conn: &mut Connection, pedido: &mut Pedido) -> rusqlite::Result<()> {
    pedido.actualizado_en = now_millis();
    let tx = Savepoint::begin(conn)?;
    tx.prepare_cached(
        "UPDATE pedidos SET estado = ?2, total = ?3, pago_id = ?4, motivo = ?5, paso = ?6, pendiente = ?7,
         respuesta = ?8, error = ?9, actualizado_en = ?10, verificar_pago = ?11 WHERE id = ?1",
    )?
    .execute(params![
        pedido.id,
        pedido.estado.as_str(),
        pedido.total.hundredths(),
        pedido.pago_id,
        pedido.motivo,
        pedido.paso.as_str(),
        pedido.pendiente.map(Pendiente::as_str),
        pedido.respuesta,
        pedido.error,
        pedido.actualizado_en,
        pedido.verificar_pago
    ])?;
    if !pedido.lineas_guardadas {
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
    tx.commit()?;
    pedido.lineas_guardadas = true;
    Ok(())
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

fn with_items(conn: &Connection, mut pedidos: Vec<Pedido>) -> rusqlite::Result<Vec<Pedido>> {
    let (Some(first), Some(last)) = (pedidos.first(), pedidos.last()) else {
        return Ok(pedidos);
    };
    let mut items = items_between(conn, first.id, last.id)?;
    for pedido in &mut pedidos {
        pedido.items = items.remove(&pedido.id).unwrap_or_default();
    }
    Ok(pedidos)
}

pub fn list(conn: &Connection, limit: i64, offset: i64) -> rusqlite::Result<Vec<Pedido>> {
    let pedidos = conn
        .prepare_cached(&format!(
            "SELECT {PEDIDO_COLUMNS} FROM pedidos ORDER BY id LIMIT ?1 OFFSET ?2"
        ))?
        .query_map([limit, offset], pedido)?
        .collect::<rusqlite::Result<_>>()?;
    // The page holds every order whose id lies between its first and its last.
    with_items(conn, pedidos)
}

/// Orders that still need something: an outcome (`pendiente`), work at inventario,
/// or a payment to verify.
pub fn unfinished(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Pedido>> {
    let pedidos: Vec<Pedido> = conn
        .prepare_cached(&format!(
            "SELECT {PEDIDO_COLUMNS} FROM pedidos WHERE estado = 'pendiente' OR pendiente IS NOT NULL OR verificar_pago = 1
             ORDER BY id LIMIT ?1"
        ))?
        .query_map([limit], pedido)?
        .collect::<rusqlite::Result<_>>()?;
    // Not one contiguous page of ids: read each order's lines on its own.
    pedidos
        .into_iter()
        .map(|mut p| {
            p.items = items_between(conn, p.id, p.id)?.remove(&p.id).unwrap_or_default();
            Ok(p)
        })
        .collect()
}

/// This database's prefix for peer keys, and the highest order id it holds.
pub fn instancia(conn: &Connection) -> rusqlite::Result<(String, i64)> {
    let prefijo = conn.query_row("SELECT prefijo FROM instancia WHERE id = 1", [], |row| row.get(0))?;
    let ultimo = conn.query_row("SELECT coalesce(max(id), 0) FROM pedidos", [], |row| row.get(0))?;
    Ok((prefijo, ultimo))
}
