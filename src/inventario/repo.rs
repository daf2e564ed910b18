//! SQL over `inventario.db`.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::model::{EstadoReserva, Reserva, Stock, Unidades};
use crate::error::ApiError;

fn stock(row: &Row) -> rusqlite::Result<Stock> {
    Ok(Stock {
        producto_id: row.get(0)?,
        cantidad: row.get(1)?,
        reservado: row.get(2)?,
    })
}

/// Sets the units that can be reserved, creating the row if needed.
pub fn set_stock(conn: &Connection, unidades: Unidades) -> rusqlite::Result<Stock> {
    conn.prepare_cached(
        "INSERT INTO stock (producto_id, cantidad) VALUES (?1, ?2)
         ON CONFLICT (producto_id) DO UPDATE SET cantidad = excluded.cantidad
         RETURNING producto_id, cantidad, reservado",
    )?
    .query_row(params![unidades.producto_id, unidades.cantidad], stock)
}

pub fn get_stock(conn: &Connection, producto_id: i64) -> rusqlite::Result<Option<Stock>> {
    conn.prepare_cached("SELECT producto_id, cantidad, reservado FROM stock WHERE producto_id = ?1")?
        .query_row([producto_id], stock)
        .optional()
}

/// Takes the units out of the stock and records an active reservation, atomically.
pub fn reserve(conn: &mut Connection, unidades: Unidades) -> Result<Reserva, ApiError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let disponible: Option<i64> = tx
        .prepare_cached("SELECT cantidad FROM stock WHERE producto_id = ?1")?
        .query_row([unidades.producto_id], |row| row.get(0))
        .optional()?;
    let Some(disponible) = disponible else {
        return Err(ApiError::not_found(
            "stock_not_found",
            format!("producto {} has no stock row", unidades.producto_id),
        ));
    };
    if disponible < unidades.cantidad {
        return Err(ApiError::conflict(
            "insufficient_stock",
            format!(
                "producto {} has {disponible} units available, {} were asked for",
                unidades.producto_id, unidades.cantidad
            ),
        ));
    }
    tx.prepare_cached(
        "UPDATE stock SET cantidad = cantidad - ?2, reservado = reservado + ?2 WHERE producto_id = ?1",
    )?
    .execute(params![unidades.producto_id, unidades.cantidad])?;
    let reserva_id: i64 = tx
        .prepare_cached("INSERT INTO reservas (producto_id, cantidad) VALUES (?1, ?2) RETURNING id")?
        .query_row(params![unidades.producto_id, unidades.cantidad], |row| row.get(0))?;
    tx.commit()?;
    Ok(Reserva {
        reserva_id,
        producto_id: unidades.producto_id,
        cantidad: unidades.cantidad,
        estado: EstadoReserva::Activa,
    })
}

/// Releases a reservation, giving its units back once however often it is called.
pub fn release(conn: &mut Connection, reserva_id: i64) -> Result<Reserva, ApiError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx
        .prepare_cached("SELECT producto_id, cantidad, estado FROM reservas WHERE id = ?1")?
        .query_row([reserva_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    let Some((producto_id, cantidad, estado)) = found else {
        return Err(ApiError::not_found(
            "reserva_not_found",
            format!("there is no reserva {reserva_id}"),
        ));
    };
    let estado = EstadoReserva::parse(&estado)
        .ok_or_else(|| ApiError::internal(format!("reserva {reserva_id} has unknown estado {estado:?}")))?;
    if estado == EstadoReserva::Activa {
        tx.prepare_cached("UPDATE reservas SET estado = 'liberada' WHERE id = ?1")?
            .execute([reserva_id])?;
        tx.prepare_cached(
            "UPDATE stock SET cantidad = cantidad + ?2, reservado = reservado - ?2 WHERE producto_id = ?1",
        )?
        .execute(params![producto_id, cantidad])?;
        tx.commit()?;
    }
    Ok(Reserva {
        reserva_id,
        producto_id,
        cantidad,
        estado: EstadoReserva::Liberada,
    })
}
