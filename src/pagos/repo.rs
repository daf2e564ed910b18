//! SQL over `pagos.db`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Cobro, EstadoPago, Pago, Rechazo};
use crate::db::Savepoint;

/// The columns of a row, in the order they are read.
macro_rules! pago_columns {
    () => {
        "id, estado, monto, moneda, medio, referencia"
    };
}

fn pago(row: &Row) -> rusqlite::Result<Pago> {
    Ok(Pago {
        pago_id: row.get(0)?,
        estado: row.get(1)?,
        monto: row.get(2)?,
        moneda: row.get(3)?,
        medio: row.get(4)?,
        referencia: row.get(5)?,
    })
}

/// The payment made with a referencia, if any.
pub fn by_referencia(conn: &Connection, referencia: &str) -> rusqlite::Result<Option<Pago>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        pago_columns!(),
        " FROM pagos WHERE referencia = ?1 ORDER BY id LIMIT 1"
    ))?
    .query_row([referencia], pago)
    .optional()
}

/// Records a charge. A charge whose `referencia` was already charged is not made
/// again: the same request gets the first payment back, a different one a `409`.
pub fn charge(conn: &mut Connection, cobro: Cobro) -> Result<Pago, Rechazo> {
    let tx = Savepoint::begin(conn)?;
    if let Some(referencia) = &cobro.referencia
        && let Some(previo) = by_referencia(&tx, referencia)?
    {
        if previo.estado == EstadoPago::Anulado {
            return Err(Rechazo::Anulada(referencia.clone()));
        }
        let same = previo.monto == cobro.monto
            && previo.moneda == cobro.moneda
            && previo.medio == cobro.medio
            && previo.estado == cobro.estado;
        if !same {
            return Err(Rechazo::EnUso {
                referencia: referencia.clone(),
                pago_id: previo.pago_id,
            });
        }
        return Ok(previo);
    }
    let pago_id = tx
        .prepare_cached(
            "INSERT INTO pagos (estado, monto, moneda, medio, referencia) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .insert(params![
            cobro.estado,
            cobro.monto,
            cobro.moneda,
            cobro.medio,
            cobro.referencia
        ])?;
    tx.commit()?;
    Ok(Pago {
        pago_id,
        estado: cobro.estado,
        monto: cobro.monto,
        moneda: cobro.moneda,
        medio: cobro.medio,
        referencia: cobro.referencia,
    })
}

/// Voids a referencia: the payment made with it if there is one (refunded first
/// when `refund` and it was approved), otherwise a record that no charge may be made
/// with it from now on.
pub fn void(conn: &mut Connection, referencia: &str, refund: bool) -> rusqlite::Result<Pago> {
    let tx = Savepoint::begin(conn)?;
    if let Some(mut previo) = by_referencia(&tx, referencia)? {
        if refund && previo.estado == EstadoPago::Aprobado {
            tx.prepare_cached("UPDATE pagos SET estado = 'reembolsado' WHERE id = ?1")?
                .execute([previo.pago_id])?;
            tx.commit()?;
            previo.estado = EstadoPago::Reembolsado;
        }
        return Ok(previo);
    }
    let pago = tx
        .prepare_cached(concat!(
            "INSERT INTO pagos (estado, monto, moneda, medio, referencia) VALUES ('anulado', 0, '', '', ?1)
             RETURNING ",
            pago_columns!()
        ))?
        .query_row([referencia], pago)?;
    tx.commit()?;
    Ok(pago)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Pago>> {
    conn.prepare_cached(concat!("SELECT ", pago_columns!(), " FROM pagos WHERE id = ?1"))?
        .query_row([id], pago)
        .optional()
}

pub fn list(conn: &Connection, limit: i64, offset: i64) -> rusqlite::Result<Vec<Pago>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        pago_columns!(),
        " FROM pagos ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?
    .query_map([limit, offset], pago)?
    .collect()
}
