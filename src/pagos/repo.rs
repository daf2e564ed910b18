//! SQL over `pagos.db`.

use rusqlite::{Connection, params};

use super::model::{Cobro, Pago};

pub fn insert(conn: &Connection, cobro: Cobro) -> rusqlite::Result<Pago> {
    let pago_id = conn
        .prepare_cached(
            "INSERT INTO pagos (estado, monto, moneda, medio, referencia) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        )?
        .query_row(
            params![
                cobro.estado.as_str(),
                cobro.monto.hundredths(),
                cobro.moneda,
                cobro.medio,
                cobro.referencia
            ],
            |row| row.get(0),
        )?;
    Ok(Pago {
        pago_id,
        estado: cobro.estado,
        monto: cobro.monto,
        moneda: cobro.moneda,
        medio: cobro.medio,
        referencia: cobro.referencia,
    })
}
