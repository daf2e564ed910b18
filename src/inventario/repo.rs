//! SQL over `inventario.db`.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{EstadoReserva, Reserva, ReservaRef, Stock, Unidades};
use crate::db::{Savepoint, now_millis};
use crate::error::ApiError;

const STOCK_COLUMNS: &str = "producto_id, cantidad, reservado, confirmado";
const RESERVA_COLUMNS: &str = "id, producto_id, cantidad, estado, clave, expira_en";

fn stock(row: &Row) -> rusqlite::Result<Stock> {
    Ok(Stock {
        producto_id: row.get(0)?,
        cantidad: row.get(1)?,
        reservado: row.get(2)?,
        confirmado: row.get(3)?,
    })
}

/// A reservation row and its deadline.
struct Fila {
    reserva: Reserva,
    expira_en: i64,
}

fn fila(row: &Row) -> rusqlite::Result<Fila> {
    let estado: String = row.get(3)?;
    Ok(Fila {
        reserva: Reserva {
            reserva_id: row.get(0)?,
            producto_id: row.get(1)?,
            cantidad: row.get(2)?,
            estado: EstadoReserva::parse(&estado).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    format!("unknown estado {estado:?}").into(),
                )
            })?,
            clave: row.get(4)?,
        },
        expira_en: row.get(5)?,
    })
}

/// Sets the units that can be reserved, creating the row if needed.
pub fn set_stock(conn: &Connection, unidades: Unidades) -> rusqlite::Result<Stock> {
    conn.prepare_cached(&format!(
        "INSERT INTO stock (producto_id, cantidad) VALUES (?1, ?2)
         ON CONFLICT (producto_id) DO UPDATE SET cantidad = excluded.cantidad
         RETURNING {STOCK_COLUMNS}"
    ))?
    .query_row(params![unidades.producto_id, unidades.cantidad], stock)
}

pub fn get_stock(conn: &Connection, producto_id: i64) -> rusqlite::Result<Option<Stock>> {
    conn.prepare_cached(&format!(
        "SELECT {STOCK_COLUMNS} FROM stock WHERE producto_id = ?1"
    ))?
    .query_row([producto_id], stock)
    .optional()
}

fn find(tx: &Connection, referencia: &ReservaRef) -> rusqlite::Result<Option<Fila>> {
    match referencia {
        ReservaRef::Id(id) => tx
            .prepare_cached(&format!("SELECT {RESERVA_COLUMNS} FROM reservas WHERE id = ?1"))?
            .query_row([id], fila),
        ReservaRef::Clave(clave) => tx
            .prepare_cached(&format!(
                "SELECT {RESERVA_COLUMNS} FROM reservas WHERE clave = ?1"
            ))?
            .query_row([clave], fila),
    }
    .optional()
}

/// Moves an active reservation to `to`, moving its units in the stock row to match.
fn settle(tx: &Connection, reserva: &mut Reserva, to: EstadoReserva) -> rusqlite::Result<()> {
    let stock_change = match to {
        EstadoReserva::Confirmada => {
            "UPDATE stock SET reservado = reservado - ?2, confirmado = confirmado + ?2 WHERE producto_id = ?1"
        }
        _ => "UPDATE stock SET reservado = reservado - ?2, cantidad = cantidad + ?2 WHERE producto_id = ?1",
    };
    tx.prepare_cached(stock_change)?
        .execute(params![reserva.producto_id, reserva.cantidad])?;
    tx.prepare_cached("UPDATE reservas SET estado = ?2 WHERE id = ?1")?
        .execute(params![reserva.reserva_id, to.as_str()])?;
    reserva.estado = to;
    Ok(())
}

/// Finds a reservation, expiring it first if its time ran out.
fn find_current(tx: &Connection, referencia: &ReservaRef) -> Result<Option<Reserva>, ApiError> {
    let Some(Fila {
        mut reserva,
        expira_en,
    }) = find(tx, referencia)?
    else {
        return Ok(None);
    };
    if reserva.estado == EstadoReserva::Activa && expira_en <= now_millis() {
        settle(tx, &mut reserva, EstadoReserva::Expirada)?;
    }
    Ok(Some(reserva))
}

fn not_found(referencia: &ReservaRef) -> ApiError {
    let detail = match referencia {
        ReservaRef::Id(id) => format!("there is no reserva {id}"),
        ReservaRef::Clave(clave) => format!("there is no reserva with clave {clave:?}"),
    };
    ApiError::not_found("reserva_not_found", detail)
}

/// Takes the units out of the stock and records an active reservation that expires
/// after `ttl`, atomically. With a key, a reservation already made with it is
/// returned instead, and no units are taken again.
pub fn reserve(
    conn: &mut Connection,
    unidades: Unidades,
    clave: Option<&str>,
    ttl: Duration,
) -> Result<Reserva, ApiError> {
    let tx = Savepoint::begin(conn)?;
    if let Some(clave) = clave
        && let Some(previa) = find_current(&tx, &ReservaRef::Clave(clave.to_string()))?
    {
        tx.commit()?;
        let same_request = previa.producto_id.is_none_or(|p| p == unidades.producto_id)
            && (previa.cantidad == unidades.cantidad || previa.producto_id.is_none());
        if !same_request {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                format!("clave {clave:?} was used for a different reservation"),
            ));
        }
        return match previa.estado {
            EstadoReserva::Activa | EstadoReserva::Confirmada => Ok(previa),
            // A request arriving after its reservation was released (or its key was
            // released before it came) takes nothing.
            EstadoReserva::Liberada | EstadoReserva::Expirada => Err(ApiError::conflict(
                "reserva_released",
                format!(
                    "the reservation with clave {clave:?} is {}; nothing was reserved",
                    previa.estado.as_str()
                ),
            )),
        };
    }
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
    let expira_en = now_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let reserva_id: i64 = tx
        .prepare_cached(
            "INSERT INTO reservas (producto_id, cantidad, estado, clave, expira_en)
             VALUES (?1, ?2, 'activa', ?3, ?4) RETURNING id",
        )?
        .query_row(
            params![unidades.producto_id, unidades.cantidad, clave, expira_en],
            |row| row.get(0),
        )?;
    tx.commit()?;
    Ok(Reserva {
        reserva_id,
        producto_id: Some(unidades.producto_id),
        cantidad: unidades.cantidad,
        estado: EstadoReserva::Activa,
        clave: clave.map(str::to_string),
    })
}

/// Releases a reservation, giving its units back once however often it is called.
/// Releasing an unknown key records it as released, so that a reservation asked for
/// with that key later (a request that arrives late) takes nothing.
pub fn release(conn: &mut Connection, referencia: &ReservaRef) -> Result<Reserva, ApiError> {
    let tx = Savepoint::begin(conn)?;
    let reserva = match (find_current(&tx, referencia)?, referencia) {
        (Some(mut reserva), _) => {
            match reserva.estado {
                EstadoReserva::Activa => settle(&tx, &mut reserva, EstadoReserva::Liberada)?,
                EstadoReserva::Liberada | EstadoReserva::Expirada => {}
                EstadoReserva::Confirmada => {
                    return Err(ApiError::conflict(
                        "reserva_confirmed",
                        format!("reserva {} is confirmed; its units are gone", reserva.reserva_id),
                    ));
                }
            }
            reserva
        }
        (None, ReservaRef::Clave(clave)) => {
            let reserva_id: i64 = tx
                .prepare_cached(
                    "INSERT INTO reservas (producto_id, cantidad, estado, clave, expira_en)
                     VALUES (NULL, 0, 'liberada', ?1, 0) RETURNING id",
                )?
                .query_row([clave], |row| row.get(0))?;
            Reserva {
                reserva_id,
                producto_id: None,
                cantidad: 0,
                estado: EstadoReserva::Liberada,
                clave: Some(clave.clone()),
            }
        }
        (None, ReservaRef::Id(_)) => return Err(not_found(referencia)),
    };
    tx.commit()?;
    Ok(reserva)
}

/// Confirms a reservation: its units leave for good. Confirming twice is harmless;
/// confirming a released or expired reservation is a `409`.
pub fn confirm(conn: &mut Connection, referencia: &ReservaRef) -> Result<Reserva, ApiError> {
    let tx = Savepoint::begin(conn)?;
    let Some(mut reserva) = find_current(&tx, referencia)? else {
        return Err(not_found(referencia));
    };
    match reserva.estado {
        EstadoReserva::Activa => settle(&tx, &mut reserva, EstadoReserva::Confirmada)?,
        EstadoReserva::Confirmada => {}
        EstadoReserva::Liberada | EstadoReserva::Expirada => {
            // The expiry found above must stay recorded even though the request fails.
            tx.commit()?;
            let code = if reserva.estado == EstadoReserva::Expirada {
                "reserva_expired"
            } else {
                "reserva_not_active"
            };
            return Err(ApiError::conflict(
                code,
                format!(
                    "reserva {} is {}; it can no longer be confirmed",
                    reserva.reserva_id,
                    reserva.estado.as_str()
                ),
            ));
        }
    }
    tx.commit()?;
    Ok(reserva)
}

/// Releases every active reservation whose time ran out; returns how many.
pub fn expire_due(conn: &mut Connection) -> rusqlite::Result<usize> {
    let now = now_millis();
    let tx = Savepoint::begin(conn)?;
    tx.prepare_cached(
        "UPDATE stock SET cantidad = cantidad + vencidas.unidades, reservado = reservado - vencidas.unidades
         FROM (SELECT producto_id, sum(cantidad) AS unidades FROM reservas
               WHERE estado = 'activa' AND expira_en <= ?1 GROUP BY producto_id) AS vencidas
         WHERE stock.producto_id = vencidas.producto_id",
    )?
    .execute([now])?;
    let expired = tx
        .prepare_cached(
            "UPDATE reservas SET estado = 'expirada' WHERE estado = 'activa' AND expira_en <= ?1",
        )?
        .execute([now])?;
    tx.commit()?;
    Ok(expired)
}
