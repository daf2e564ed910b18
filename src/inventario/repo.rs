//! SQL over `inventario.db`, and the rules it keeps: a reservation's units move from
//! what can be reserved to what is reserved, then to confirmed or back, once.
//! A reservation on its own and a lote's reservations move by the same functions.

use std::time::Duration;

use crate::pagination::Bounds;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{EstadoReserva, InventarioError, Lote, NewLote, Reserva, ReservaRef, Stock, Units};
use crate::clock::now_millis;
use crate::db::Savepoint;
use crate::secuencia;

/// The columns of a stock row, in the order [`stock`] reads them.
macro_rules! stock_columns {
    () => {
        "producto_id, cantidad, reservado, confirmado"
    };
}
/// The columns of a reservation row, in the order [`reserva_row`] reads them.
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
struct ReservaRow {
    reserva: Reserva,
    expira_en: i64,
    lote: Option<String>,
}

fn reserva_row(row: &Row) -> rusqlite::Result<ReservaRow> {
    Ok(ReservaRow {
        reserva: Reserva {
            reserva_id: row.get(0)?,
            producto_id: row.get(1)?,
            cantidad: row.get(2)?,
            estado: row.get(3)?,
            clave: row.get(4)?,
        },
        expira_en: row.get(5)?,
        lote: row.get(6)?,
    })
}

/// Sets the units that can be reserved, creating the row if needed.
pub fn set_stock(conn: &Connection, unidades: Units) -> rusqlite::Result<Stock> {
    conn.prepare_cached(concat!(
        "INSERT INTO stock (producto_id, cantidad) VALUES (?1, ?2)
         ON CONFLICT (producto_id) DO UPDATE SET cantidad = excluded.cantidad
         RETURNING ",
        stock_columns!()
    ))?
    .query_row(params![unidades.producto_id, unidades.cantidad], stock)
}

/// A page of the stock rows, by product id.
pub fn list_stock(conn: &Connection, page: Bounds) -> rusqlite::Result<Vec<Stock>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        stock_columns!(),
        " FROM stock WHERE producto_id > ?3 ORDER BY producto_id LIMIT ?1 OFFSET ?2"
    ))?
    .query_map([page.limit, page.offset, page.after], stock)?
    .collect()
}

pub fn stock_of(conn: &Connection, producto_id: i64) -> rusqlite::Result<Option<Stock>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        stock_columns!(),
        " FROM stock WHERE producto_id = ?1"
    ))?
    .query_row([producto_id], stock)
    .optional()
}

/// Moves units from what can be reserved to what is reserved, or says why it cannot.
fn take(tx: &Connection, unidades: Units) -> Result<(), InventarioError> {
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
        None => InventarioError::NoStockRow(unidades.producto_id),
        Some(disponible) => InventarioError::Insufficient {
            producto_id: unidades.producto_id,
            disponible,
            pedidas: unidades.cantidad,
        },
    })
}

/// Records an active reservation whose units were taken, by the change numbered
/// `numero` (0: not numbered; see `secuencia`).
fn insert(
    tx: &Connection,
    unidades: Units,
    clave: Option<&str>,
    lote: Option<&str>,
    expira_en: i64,
    numero: i64,
) -> rusqlite::Result<Reserva> {
    let reserva_id = tx
        .prepare_cached(
            "INSERT INTO reservas (producto_id, cantidad, estado, clave, lote, expira_en, secuencia)
             VALUES (?1, ?2, 'activa', ?3, ?4, ?5, ?6)",
        )?
        .insert(params![
            unidades.producto_id,
            unidades.cantidad,
            clave,
            lote,
            expira_en,
            numero
        ])?;
    Ok(Reserva {
        reserva_id,
        producto_id: Some(unidades.producto_id),
        cantidad: unidades.cantidad,
        estado: EstadoReserva::Activa,
        clave: clave.map(str::to_string),
    })
}

/// Records that a key was released before any reservation was made with it, so that a
/// request with it that arrives late takes nothing.
fn insert_tombstone(
    tx: &Connection,
    clave: Option<&str>,
    lote: Option<&str>,
    numero: i64,
) -> rusqlite::Result<Reserva> {
    let reserva_id = tx
        .prepare_cached(
            "INSERT INTO reservas (producto_id, cantidad, estado, clave, lote, expira_en, secuencia)
             VALUES (NULL, 0, 'liberada', ?1, ?2, 0, ?3)",
        )?
        .insert(params![clave, lote, numero])?;
    Ok(Reserva {
        reserva_id,
        producto_id: None,
        cantidad: 0,
        estado: EstadoReserva::Liberada,
        clave: clave.map(str::to_string),
    })
}

/// Moves an active reservation to `to`, moving its units in the stock row to match, by
/// the change numbered `numero` (0: not numbered).
fn settle(tx: &Connection, reserva: &mut Reserva, to: EstadoReserva, numero: i64) -> rusqlite::Result<()> {
    let stock_change = match to {
        EstadoReserva::Confirmada => {
            "UPDATE stock SET reservado = reservado - ?2, confirmado = confirmado + ?2 WHERE producto_id = ?1"
        }
        _ => "UPDATE stock SET reservado = reservado - ?2, cantidad = cantidad + ?2 WHERE producto_id = ?1",
    };
    tx.prepare_cached(stock_change)?
        .execute(params![reserva.producto_id, reserva.cantidad])?;
    tx.prepare_cached(
        "UPDATE reservas SET estado = ?2, secuencia = max(secuencia, ?3) WHERE id = ?1 AND estado = 'activa'",
    )?
    .execute(params![reserva.reserva_id, to, numero])?;
    reserva.estado = to;
    Ok(())
}

/// Confirms reservations that move together (one, or a lote's, all in `estado`): their
/// units leave for good. Confirming twice is harmless; released or expired ones refuse.
fn confirm_all(
    tx: &Connection,
    what: String,
    estado: EstadoReserva,
    reservas: &mut [Reserva],
    numero: i64,
) -> Result<(), InventarioError> {
    match estado {
        EstadoReserva::Activa => {
            for reserva in reservas {
                settle(tx, reserva, EstadoReserva::Confirmada, numero)?;
            }
            Ok(())
        }
        EstadoReserva::Confirmada => Ok(()),
        EstadoReserva::Liberada | EstadoReserva::Expirada => Err(InventarioError::NotActive(what, estado)),
    }
}

/// Releases reservations that move together, giving their units back once however
/// often it is asked; confirmed ones refuse.
fn release_all(
    tx: &Connection,
    what: String,
    estado: EstadoReserva,
    reservas: &mut [Reserva],
    numero: i64,
) -> Result<(), InventarioError> {
    match estado {
        EstadoReserva::Activa => {
            for reserva in reservas {
                settle(tx, reserva, EstadoReserva::Liberada, numero)?;
            }
            Ok(())
        }
        EstadoReserva::Liberada | EstadoReserva::Expirada => Ok(()),
        EstadoReserva::Confirmada => Err(InventarioError::Confirmed(what)),
    }
}

fn describe(referencia: &ReservaRef) -> String {
    match referencia {
        ReservaRef::Id(id) => format!("reserva {id}"),
        ReservaRef::Clave(clave) => format!("the reserva with clave {clave:?}"),
    }
}

/// Finds a reservation on its own, expiring it first if its time ran out. A
/// reservation of a lote moves only with its lote.
fn find(tx: &Connection, referencia: &ReservaRef) -> Result<Option<Reserva>, InventarioError> {
    let row = match referencia {
        ReservaRef::Id(id) => tx
            .prepare_cached(concat!(
                "SELECT ",
                reserva_columns!(),
                " FROM reservas WHERE id = ?1"
            ))?
            .query_row([id], reserva_row),
        ReservaRef::Clave(clave) => tx
            .prepare_cached(concat!(
                "SELECT ",
                reserva_columns!(),
                " FROM reservas WHERE clave = ?1"
            ))?
            .query_row([clave], reserva_row),
    }
    .optional()?;
    let Some(ReservaRow {
        mut reserva,
        expira_en,
        lote,
    }) = row
    else {
        return Ok(None);
    };
    if let Some(lote) = lote {
        return Err(InventarioError::InLote {
            reserva_id: reserva.reserva_id,
            lote,
        });
    }
    if reserva.estado == EstadoReserva::Activa && expira_en <= now_millis() {
        settle(tx, &mut reserva, EstadoReserva::Expirada, 0)?;
    }
    Ok(Some(reserva))
}

/// Takes the units out of the stock and records an active reservation that expires
/// after `ttl`, atomically. With a key, a reservation already made with it is
/// returned as it stands instead, and no units are taken again.
pub fn reserve(
    conn: &mut Connection,
    unidades: Units,
    clave: Option<&str>,
    ttl: Duration,
) -> Result<Reserva, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    if let Some(clave) = clave
        && let Some(previa) = find(&tx, &ReservaRef::Clave(clave.to_string()))?
    {
        tx.commit()?;
        let same_request = previa.producto_id.is_none_or(|p| p == unidades.producto_id)
            && (previa.cantidad == unidades.cantidad || previa.producto_id.is_none());
        if !same_request {
            return Err(InventarioError::KeyReused(clave.to_string(), "reservation"));
        }
        // The same request again gets its reservation as it stands now; a key released
        // before any reservation was made with it takes nothing.
        if previa.producto_id.is_none() {
            return Err(InventarioError::Released(format!(
                "the reservation with clave {clave:?}"
            )));
        }
        return Ok(previa);
    }
    take(&tx, unidades)?;
    let expira_en = now_millis().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
    let reserva = insert(&tx, unidades, clave, None, expira_en, 0)?;
    tx.commit()?;
    Ok(reserva)
}

/// Releases a reservation. Releasing an unknown key records it as released, so that a
/// reservation asked for with that key later (a request that arrives late) takes nothing.
pub fn release(conn: &mut Connection, referencia: &ReservaRef) -> Result<Reserva, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    let reserva = match (find(&tx, referencia)?, referencia) {
        (Some(mut reserva), _) => {
            release_all(
                &tx,
                describe(referencia),
                reserva.estado,
                std::slice::from_mut(&mut reserva),
                0,
            )?;
            reserva
        }
        (None, ReservaRef::Clave(clave)) => insert_tombstone(&tx, Some(clave), None, 0)?,
        (None, ReservaRef::Id(_)) => return Err(InventarioError::Missing(describe(referencia))),
    };
    tx.commit()?;
    Ok(reserva)
}

/// Confirms a reservation: its units leave for good.
pub fn confirm(conn: &mut Connection, referencia: &ReservaRef) -> Result<Reserva, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    let mut reserva = find(&tx, referencia)?.ok_or_else(|| InventarioError::Missing(describe(referencia)))?;
    let confirmed = confirm_all(
        &tx,
        describe(referencia),
        reserva.estado,
        std::slice::from_mut(&mut reserva),
        0,
    );
    if let Err(InventarioError::Db(_)) = confirmed {
        return confirmed.map(|()| reserva);
    }
    // An expiry found on the way stays recorded even when the request is refused.
    tx.commit()?;
    confirmed.map(|()| reserva)
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
            ", secuencia FROM reservas WHERE lote = ?1 ORDER BY id"
        ))?
        .query_map([clave], |row| Ok((reserva_row(row)?, row.get::<_, i64>(7)?)))?
        .collect::<rusqlite::Result<Vec<(ReservaRow, i64)>>>()?;
    let Some((primera, secuencia)) = filas.first() else {
        return Ok(None);
    };
    // The rows of a lote only ever change together, so the first tells the state of all.
    let estado = primera.reserva.estado;
    let secuencia = (*secuencia > 0).then_some(*secuencia);
    Ok(Some(Lote {
        clave: clave.to_string(),
        estado,
        reservas: filas
            .into_iter()
            .map(|(f, _)| f.reserva)
            .filter(|r| r.producto_id.is_some())
            .collect(),
        secuencia,
    }))
}

/// An answer about a lote this request did not change: the number of its own last
/// change, for a caller that numbers its changes (never the counter's: a replay is not a
/// change, and pedidos checks that a peer still holds what it recorded by these numbers).
fn unchanged(mut lote: Lote, checked: Option<i64>) -> Lote {
    if checked.is_none() {
        lote.secuencia = None;
    }
    lote
}

fn describe_lote(clave: &str) -> String {
    format!("the lote {clave:?}")
}

/// Reserves every line of a lote in one transaction, or none: the first line that
/// cannot be reserved refuses the whole lote. A lote asked for again with the same
/// key and lines is returned as it stands (its `estado` says whether it holds its
/// units: `liberada` holds none), and nothing is taken again. `visto`: see `secuencia`.
pub fn reserve_lote(
    conn: &mut Connection,
    nuevo: &NewLote,
    visto: Option<i64>,
) -> Result<Lote, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    let checked = crate::fenced!(tx, visto);
    if let Some(previo) = find_lote(&tx, &nuevo.clave)? {
        // A key released before any lote was made with it takes nothing; a lote made
        // with it is answered as it stands, released or not, as `reserve` answers one
        // reservation.
        if previo.reservas.is_empty() {
            return Err(InventarioError::Released(describe_lote(&nuevo.clave)));
        }
        let same_lines = previo.reservas.len() == nuevo.lineas.len()
            && previo
                .reservas
                .iter()
                .zip(&nuevo.lineas)
                .all(|(r, u)| r.producto_id == Some(u.producto_id) && r.cantidad == u.cantidad);
        if !same_lines {
            return Err(InventarioError::KeyReused(nuevo.clave.clone(), "lote"));
        }
        return Ok(unchanged(previo, checked));
    }
    let numero = secuencia::next(&tx, checked)?;
    let mut reservas = Vec::with_capacity(nuevo.lineas.len());
    for unidades in &nuevo.lineas {
        take(&tx, *unidades)?;
        let reserva = insert(
            &tx,
            *unidades,
            None,
            Some(&nuevo.clave),
            NUNCA,
            numero.unwrap_or(0),
        )?;
        reservas.push(reserva);
    }
    tx.commit()?;
    Ok(Lote {
        clave: nuevo.clave.clone(),
        estado: EstadoReserva::Activa,
        reservas,
        secuencia: numero,
    })
}

/// Confirms every reservation of a lote: their units leave for good.
pub fn confirm_lote(conn: &mut Connection, clave: &str, visto: Option<i64>) -> Result<Lote, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    let checked = crate::fenced!(tx, visto);
    let mut lote = find_lote(&tx, clave)?.ok_or_else(|| InventarioError::Missing(describe_lote(clave)))?;
    if lote.estado != EstadoReserva::Activa {
        confirm_all(&tx, describe_lote(clave), lote.estado, &mut lote.reservas, 0)?;
        return Ok(unchanged(lote, checked));
    }
    let numero = secuencia::next(&tx, checked)?;
    confirm_all(
        &tx,
        describe_lote(clave),
        lote.estado,
        &mut lote.reservas,
        numero.unwrap_or(0),
    )?;
    tx.commit()?;
    lote.estado = EstadoReserva::Confirmada;
    lote.secuencia = numero;
    Ok(lote)
}

/// Releases every reservation of a lote. Releasing a key no lote was made with
/// records it as released, so that a lote asked for with that key later takes nothing.
pub fn release_lote(conn: &mut Connection, clave: &str, visto: Option<i64>) -> Result<Lote, InventarioError> {
    let tx = Savepoint::begin(conn)?;
    let checked = crate::fenced!(tx, visto);
    let found = match find_lote(&tx, clave)? {
        Some(mut lote) if lote.estado != EstadoReserva::Activa => {
            release_all(&tx, describe_lote(clave), lote.estado, &mut lote.reservas, 0)?;
            return Ok(unchanged(lote, checked));
        }
        found => found,
    };
    let numero = secuencia::next(&tx, checked)?;
    let mut lote = match found {
        None => {
            insert_tombstone(&tx, None, Some(clave), numero.unwrap_or(0))?;
            Lote {
                clave: clave.to_string(),
                estado: EstadoReserva::Liberada,
                reservas: Vec::new(),
                secuencia: None,
            }
        }
        Some(mut lote) => {
            release_all(
                &tx,
                describe_lote(clave),
                lote.estado,
                &mut lote.reservas,
                numero.unwrap_or(0),
            )?;
            lote
        }
    };
    tx.commit()?;
    lote.estado = EstadoReserva::Liberada;
    lote.secuencia = numero;
    Ok(lote)
}

/// The lotes whose key starts with `prefijo` and that changed after `desde`, oldest
/// change first: at most `limit`. The rows are read in the order of their numbers,
/// through `reservas_por_secuencia`, and the reading stops at the `limit`-th lote, so
/// its cost is that of the changes listed, not of every lote (a lote's rows move
/// together and carry the number of its last change).
pub fn lotes_after(conn: &Connection, prefijo: &str, desde: i64, limit: i64) -> rusqlite::Result<Vec<Lote>> {
    let wanted = usize::try_from(limit).unwrap_or(0);
    let mut claves: Vec<String> = Vec::new();
    {
        let mut statement = conn.prepare_cached(
            "SELECT lote FROM reservas
             WHERE lote IS NOT NULL AND secuencia > ?2 AND substr(lote, 1, length(?1)) = ?1
             ORDER BY secuencia",
        )?;
        let mut rows = statement.query(params![prefijo, desde])?;
        while claves.len() < wanted {
            let Some(row) = rows.next()? else { break };
            let clave = row.get_ref(0)?.as_str()?;
            // A lote's rows come one per line: a page holds at most `limit` lotes.
            if !claves.iter().any(|c| c == clave) {
                claves.push(clave.to_owned());
            }
        }
    }
    let mut lotes = Vec::with_capacity(claves.len());
    for clave in claves {
        lotes.extend(find_lote(conn, &clave)?);
    }
    Ok(lotes)
}

/// The lote made with `clave`, if any.
pub fn lote(conn: &Connection, clave: &str) -> rusqlite::Result<Option<Lote>> {
    find_lote(conn, clave)
}
