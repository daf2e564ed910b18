//! SQL over `pagos.db`.

use crate::pagination::Bounds;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Charge, EstadoPago, Pago, PagosError};
use crate::db::Savepoint;
use crate::secuencia;

/// The columns of a row, in the order they are read.
macro_rules! pago_columns {
    () => {
        "id, estado, monto, moneda, medio, referencia, secuencia"
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
        secuencia: Some(row.get::<_, i64>(6)?).filter(|&n| n > 0),
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
/// `visto`: see `secuencia`.
pub fn charge(conn: &mut Connection, charge: Charge, visto: Option<i64>) -> Result<Pago, PagosError> {
    let tx = Savepoint::begin(conn)?;
    let checked = crate::fenced!(tx, visto);
    if let Some(referencia) = &charge.referencia
        && let Some(previo) = by_referencia(&tx, referencia)?
    {
        if previo.estado == EstadoPago::Anulado {
            return Err(PagosError::Voided(referencia.clone()));
        }
        let same = previo.monto == charge.monto
            && previo.moneda == charge.moneda
            && previo.medio == charge.medio
            && previo.estado == charge.estado;
        if !same {
            return Err(PagosError::AlreadyCharged {
                referencia: referencia.clone(),
                pago_id: previo.pago_id,
            });
        }
        return Ok(unchanged(previo, checked));
    }
    let numero = secuencia::next(&tx, checked)?;
    let pago_id = tx
        .prepare_cached(
            "INSERT INTO pagos (estado, monto, moneda, medio, referencia, secuencia)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .insert(params![
            charge.estado,
            charge.monto,
            charge.moneda,
            charge.medio,
            charge.referencia,
            numero.unwrap_or(0)
        ])?;
    tx.commit()?;
    Ok(Pago {
        pago_id,
        estado: charge.estado,
        monto: charge.monto,
        moneda: charge.moneda,
        medio: charge.medio,
        referencia: charge.referencia,
        secuencia: numero,
    })
}

/// An answer about a payment this request did not change: the number of its own last
/// change, for a caller that numbers its changes (never the counter's: a replay is not a
/// change, and pedidos checks that a peer still holds what it recorded by these numbers).
fn unchanged(mut pago: Pago, checked: Option<i64>) -> Pago {
    if checked.is_none() {
        pago.secuencia = None;
    }
    pago
}

/// Voids a referencia: the payment made with it if there is one (refunded first
/// when `refund` and it was approved), otherwise a record that no charge may be made
/// with it from now on.
pub fn void(
    conn: &mut Connection,
    referencia: &str,
    refund: bool,
    visto: Option<i64>,
) -> Result<Pago, PagosError> {
    let tx = Savepoint::begin(conn)?;
    let checked = crate::fenced!(tx, visto);
    if let Some(mut previo) = by_referencia(&tx, referencia)? {
        if refund && previo.estado == EstadoPago::Aprobado {
            let numero = secuencia::next(&tx, checked)?;
            tx.prepare_cached("UPDATE pagos SET estado = 'reembolsado', secuencia = ?2 WHERE id = ?1")?
                .execute(params![previo.pago_id, numero.unwrap_or(0)])?;
            tx.commit()?;
            previo.estado = EstadoPago::Reembolsado;
            previo.secuencia = numero;
            return Ok(previo);
        }
        return Ok(unchanged(previo, checked));
    }
    let numero = secuencia::next(&tx, checked)?;
    let pago = tx
        .prepare_cached(concat!(
            "INSERT INTO pagos (estado, monto, moneda, medio, referencia, secuencia)
             VALUES ('anulado', 0, '', '', ?1, ?2) RETURNING ",
            pago_columns!()
        ))?
        .query_row(params![referencia, numero.unwrap_or(0)], pago)?;
    tx.commit()?;
    Ok(pago)
}

/// The payments whose referencia starts with `prefijo` and that changed after `desde`,
/// oldest change first: at most `limit`.
pub fn changed_after(
    conn: &Connection,
    prefijo: &str,
    desde: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Pago>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        pago_columns!(),
        " FROM pagos WHERE referencia IS NOT NULL AND secuencia > ?2
          AND substr(referencia, 1, length(?1)) = ?1 ORDER BY secuencia LIMIT ?3"
    ))?
    .query_map(params![prefijo, desde, limit], pago)?
    .collect()
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Pago>> {
    conn.prepare_cached(concat!("SELECT ", pago_columns!(), " FROM pagos WHERE id = ?1"))?
        .query_row([id], pago)
        .optional()
}

pub fn list(conn: &Connection, page: Bounds) -> rusqlite::Result<Vec<Pago>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        pago_columns!(),
        " FROM pagos WHERE id > ?3 ORDER BY id LIMIT ?1 OFFSET ?2"
    ))?
    .query_map([page.limit, page.offset, page.after], pago)?
    .collect()
}
