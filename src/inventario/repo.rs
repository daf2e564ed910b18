//! SQL over `inventario.db`.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{EstadoReserva, Lote, NuevoLote, Reserva, ReservaRef, Stock, Unidades};
use crate::db::{Savepoint, now_millis};
use crate::error::ApiError;

/// The columns of a row, in the order they are read.
macro_rules! stock_columns {
    () => {
        "producto_id, cantidad, reservado, confirmado"
    };
}
/// The columns of a row, in the order they are read.
macro_rules! reserva_columns {
    () => {
        "id, producto_id, cantidad, estado, clave, expira_en, lote"
    };
}
/// The deadline of a reservation that never expires (a lote's).
const NUNCA: i64 = i64::MAX;

fn stock(row: &Row) -> rusqlite::Result<Stock> {
    Ok(Stock {
        producto_id: row.get(0)?,
        cantidad: row.get(1)?,
        reservado: row.get(2)?,
        confirmado: row.get(3)?,
    })
}

/// A reservation row, its deadline and the lote it belongs to, if any.
struct Fila {
    reserva: Reserva,
    expira_en: i64,
    lote: Option<String>,
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
        lote: row.get(6)?,
    })
}

/// Sets the units that can be reserved, creating the row if needed.
pub fn set_stock(conn: &Connection, unidades: Unidades) -> rusqlite::Result<Stock> {
    conn.prepare_cached(concat!(
        "INSERT INTO stock (producto_id, cantidad) VALUES (?1, ?2)
         ON CONFLICT (producto_id) DO UPDATE SET cantidad = excluded.cantidad
         RETURNING ",
        stock_columns!()
    ))?
    .query_row(params![unidades.producto_id, unidades.cantidad], stock)
}

pub fn get_stock(conn: &Connection, producto_id: i64) -> rusqlite::Result<Option<Stock>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        stock_columns!(),
        " FROM stock WHERE producto_id = ?1"
    ))?
    .query_row([producto_id], stock)
    .optional()
}

fn find(tx: &Connection, referencia: &ReservaRef) -> rusqlite::Result<Option<Fila>> {
    match referencia {
        ReservaRef::Id(id) => tx
            .prepare_cached(concat!(
                "SELECT ",
                reserva_columns!(),
                " FROM reservas WHERE id = ?1"
            ))?
            .query_row([id], fila),
        ReservaRef::Clave(clave) => tx
            .prepare_cached(concat!(
                "SELECT ",
                reserva_columns!(),
                " FROM reservas WHERE clave = ?1"
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
    tx.prepare_cached("UPDATE reservas SET estado = ?2 WHERE id = ?1 AND estado = 'activa'")?
        .execute(params![reserva.reserva_id, to.as_str()])?;
    reserva.estado = to;
    Ok(())
}

/// Finds a reservation, expiring it first if its time ran out. A reservation of a
/// lote moves only with its lote.
fn find_current(tx: &Connection, referencia: &ReservaRef) -> Result<Option<Reserva>, ApiError> {
    let Some(Fila {
        mut reserva,
        expira_en,
        lote,
    }) = find(tx, referencia)?
    else {
        return Ok(None);
    };
    if let Some(lote) = lote {
        return Err(ApiError::conflict(
            "reserva_in_lote",
            format!(
                "reserva {} belongs to the lote {lote:?}; confirm or release the lote",
                reserva.reserva_id
            ),
        ));
    }
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

/// Moves units from what can be reserved to what is reserved, or says why it cannot.
fn take(tx: &Connection, unidades: Unidades) -> Result<(), ApiError> {
    let taken = tx
        .prepare_cached(
            "UPDATE stock SET cantidad = cantidad - ?2, reservado = reservado + ?2
             WHERE producto_id = ?1 AND cantidad >= ?2",
        )?
        .execute(params![unidades.producto_id, unidades.cantidad])?;
    if taken == 1 {
        return Ok(());
    }
    let disponible: Option<i64> = tx
        .prepare_cached("SELECT cantidad FROM stock WHERE producto_id = ?1")?
        .query_row([unidades.producto_id], |row| row.get(0))
        .optional()?;
    Err(match disponible {
        None => ApiError::not_found(
            "stock_not_found",
            format!("producto {} has no stock row", unidades.producto_id),
        ),
        Some(disponible) => ApiError::conflict(
            "insufficient_stock",
            format!(
                "producto {} has {disponible} units available, {} were asked for",
                unidades.producto_id, unidades.cantidad
            ),
        ),
    })
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
    take(&tx, unidades)?;
    let expira_en = now_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let reserva_id: i64 = tx
        .prepare_cached(
            "INSERT INTO reservas (producto_id, cantidad, estado, clave, expira_en)
             VALUES (?1, ?2, 'activa', ?3, ?4)",
        )?
        .insert(params![unidades.producto_id, unidades.cantidad, clave, expira_en])?;
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
                     VALUES (NULL, 0, 'liberada', ?1, 0)",
                )?
                .insert([clave])?;
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
               WHERE estado = 'activa' AND lote IS NULL AND expira_en <= ?1 GROUP BY producto_id) AS vencidas
         WHERE stock.producto_id = vencidas.producto_id",
    )?
    .execute([now])?;
    let expired = tx
        .prepare_cached(
            "UPDATE reservas SET estado = 'expirada' WHERE estado = 'activa' AND lote IS NULL AND expira_en <= ?1",
        )?
        .execute([now])?;
    tx.commit()?;
    Ok(expired)
}

/// The reservations of a lote as they stand; `None` if no request ever named it.
fn find_lote(tx: &Connection, clave: &str) -> rusqlite::Result<Option<Lote>> {
    let filas = tx
        .prepare_cached(concat!(
            "SELECT ",
            reserva_columns!(),
            " FROM reservas WHERE lote = ?1 ORDER BY id"
        ))?
        .query_map([clave], fila)?
        .collect::<rusqlite::Result<Vec<Fila>>>()?;
    let Some(primera) = filas.first() else {
        return Ok(None);
    };
    // The rows of a lote only ever change together, so the first tells the state of all.
    let estado = primera.reserva.estado;
    Ok(Some(Lote {
        clave: clave.to_string(),
        estado,
        reservas: filas
            .into_iter()
            .map(|f| f.reserva)
            .filter(|r| r.producto_id.is_some())
            .collect(),
    }))
}

fn lote_not_found(clave: &str) -> ApiError {
    ApiError::not_found("reserva_not_found", format!("there is no lote {clave:?}"))
}

/// Reserves every line of a lote in one transaction, or none: the first line that
/// cannot be reserved refuses the whole lote. A lote asked for again with the same
/// key and lines is returned as it stands, and nothing is taken again.
pub fn reserve_lote(conn: &mut Connection, nuevo: &NuevoLote) -> Result<Lote, ApiError> {
    let tx = Savepoint::begin(conn)?;
    if let Some(previo) = find_lote(&tx, &nuevo.clave)? {
        if previo.reservas.is_empty()
            || !matches!(previo.estado, EstadoReserva::Activa | EstadoReserva::Confirmada)
        {
            return Err(ApiError::conflict(
                "reserva_released",
                format!("the lote {:?} was released; nothing was reserved", nuevo.clave),
            ));
        }
        let same_lines = previo.reservas.len() == nuevo.lineas.len()
            && previo
                .reservas
                .iter()
                .zip(&nuevo.lineas)
                .all(|(r, u)| r.producto_id == Some(u.producto_id) && r.cantidad == u.cantidad);
        if !same_lines {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                format!("clave {:?} was used for a different lote", nuevo.clave),
            ));
        }
        return Ok(previo);
    }
    let mut reservas = Vec::with_capacity(nuevo.lineas.len());
    for unidades in &nuevo.lineas {
        take(&tx, *unidades)?;
        let reserva_id: i64 = tx
            .prepare_cached(
                "INSERT INTO reservas (producto_id, cantidad, estado, lote, expira_en)
                 VALUES (?1, ?2, 'activa', ?3, ?4)",
            )?
            .insert(params![
                unidades.producto_id,
                unidades.cantidad,
                nuevo.clave,
                NUNCA
            ])?;
        reservas.push(Reserva {
            reserva_id,
            producto_id: Some(unidades.producto_id),
            cantidad: unidades.cantidad,
            estado: EstadoReserva::Activa,
            clave: None,
        });
    }
    tx.commit()?;
    Ok(Lote {
        clave: nuevo.clave.clone(),
        estado: EstadoReserva::Activa,
        reservas,
    })
}

/// Confirms every reservation of a lote: their units leave for good. Confirming
/// twice is harmless; confirming a released lote is a `409`.
pub fn confirm_lote(conn: &mut Connection, clave: &str) -> Result<Lote, ApiError> {
    let tx = Savepoint::begin(conn)?;
    let mut lote = find_lote(&tx, clave)?.ok_or_else(|| lote_not_found(clave))?;
    match lote.estado {
        EstadoReserva::Activa => {
            for reserva in &mut lote.reservas {
                settle(&tx, reserva, EstadoReserva::Confirmada)?;
            }
            lote.estado = EstadoReserva::Confirmada;
        }
        EstadoReserva::Confirmada => {}
        EstadoReserva::Liberada | EstadoReserva::Expirada => {
            return Err(ApiError::conflict(
                "reserva_not_active",
                format!("the lote {clave:?} was released; it can no longer be confirmed"),
            ));
        }
    }
    tx.commit()?;
    Ok(lote)
}

/// Releases every reservation of a lote, giving the units back once however often
/// it is called. Releasing a key no lote was made with records it as released, so
/// that a lote asked for with that key later (a request that arrives late) takes nothing.
pub fn release_lote(conn: &mut Connection, clave: &str) -> Result<Lote, ApiError> {
    let tx = Savepoint::begin(conn)?;
    let lote = match find_lote(&tx, clave)? {
        None => {
            tx.prepare_cached(
                "INSERT INTO reservas (producto_id, cantidad, estado, lote, expira_en)
                 VALUES (NULL, 0, 'liberada', ?1, 0)",
            )?
            .execute([clave])?;
            Lote {
                clave: clave.to_string(),
                estado: EstadoReserva::Liberada,
                reservas: Vec::new(),
            }
        }
        Some(mut lote) => {
            match lote.estado {
                EstadoReserva::Activa => {
                    for reserva in &mut lote.reservas {
                        settle(&tx, reserva, EstadoReserva::Liberada)?;
                    }
                    lote.estado = EstadoReserva::Liberada;
                }
                EstadoReserva::Liberada | EstadoReserva::Expirada => {}
                EstadoReserva::Confirmada => {
                    return Err(ApiError::conflict(
                        "reserva_confirmed",
                        format!("the lote {clave:?} is confirmed; its units are gone"),
                    ));
                }
            }
            lote
        }
    };
    tx.commit()?;
    Ok(lote)
}
