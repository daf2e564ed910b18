//! SQL over `pedidos.db`: an order's stage is written to and read from its row in
//! one place each ([`stage_columns`], [`pedido`]).

use std::collections::HashMap;

use crate::pagination::Bounds;
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Cause, EstadoPedido, Item, NewPedido, Outcome, Owed, Pedido, Stage};
use super::model::{ChangeNumbers, Ledger};
use crate::db::Savepoint;
use crate::money::Money;

/// The columns of a row, in the order they are read.
macro_rules! pedido_columns {
    () => {
        "id, etapa, desenlace, causa, motivo, pago_id, debe_liberar, debe_anular_cobro, \
     total, moneda, medio, fail, creado_en, vence_en, request_id, nonce, clave, traceparent"
    };
}

/// Orders not over, or still owing work to a peer: the condition of the partial index
/// `pedidos_sin_terminar` (migration 0003), written the same so that SQLite uses it.
macro_rules! sin_terminar {
    () => {
        "etapa <> 'cerrado' OR debe_liberar = 1 OR debe_anular_cobro = 1"
    };
}

fn conversion(column: usize, kind: Type, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, kind, what.into())
}

/// The columns that hold an order's stage, in the order of `pedido_columns!`
/// after the id: etapa, desenlace, causa, motivo, pago_id, debe_liberar, debe_anular_cobro.
type StageColumns<'a> = (
    &'static str,
    Option<&'static str>,
    Option<Cause>,
    Option<&'a str>,
    Option<i64>,
    bool,
    bool,
);

fn stage_columns(etapa: &Stage) -> StageColumns<'_> {
    let nombre: &'static str = etapa.into();
    match etapa {
        Stage::Registrado => (nombre, None, None, None, None, false, false),
        Stage::Cobrado { pago_id } => (nombre, None, None, None, *pago_id, false, false),
        Stage::Cerrado { desenlace, deuda } => {
            let (causa, motivo, pago_id) = match desenlace {
                Outcome::Confirmado { pago_id } | Outcome::Rechazado { pago_id } => (None, None, *pago_id),
                Outcome::Fallido {
                    causa,
                    motivo,
                    pago_id,
                } => (Some(*causa), Some(motivo.as_str()), *pago_id),
            };
            (
                nombre,
                Some(desenlace.into()),
                causa,
                motivo,
                pago_id,
                deuda.liberar,
                deuda.anular_cobro,
            )
        }
    }
}

fn stage(row: &Row) -> rusqlite::Result<Stage> {
    let nombre: String = row.get(1)?;
    let pago_id: Option<i64> = row.get(5)?;
    Ok(match nombre.as_str() {
        "registrado" => Stage::Registrado,
        "cobrado" => Stage::Cobrado { pago_id },
        "cerrado" => {
            let desenlace: String = row.get(2)?;
            let desenlace = match desenlace.as_str() {
                "confirmado" => Outcome::Confirmado { pago_id },
                "rechazado" => Outcome::Rechazado { pago_id },
                "fallido" => Outcome::Fallido {
                    causa: row.get(3)?,
                    motivo: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    pago_id,
                },
                other => return Err(conversion(2, Type::Text, format!("desenlace {other:?}"))),
            };
            Stage::Cerrado {
                desenlace,
                deuda: Owed {
                    liberar: row.get(6)?,
                    anular_cobro: row.get(7)?,
                },
            }
        }
        other => return Err(conversion(1, Type::Text, format!("etapa {other:?}"))),
    })
}

fn pedido(row: &Row) -> rusqlite::Result<Pedido> {
    Ok(Pedido {
        id: row.get(0)?,
        etapa: stage(row)?,
        total: row.get(8)?,
        moneda: row.get(9)?,
        medio: row.get(10)?,
        fail: row.get(11)?,
        creado_en: row.get(12)?,
        vence_en: row.get(13)?,
        request_id: row.get(14)?,
        nonce: row.get(15)?,
        brought_back_key: row.get(16)?,
        traceparent: row.get(17)?,
        items: Vec::new(),
    })
}

/// Reads the lines of the orders whose ids lie in `first..=last`, by order id.
fn items_between(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<HashMap<i64, Vec<Item>>> {
    let mut items: HashMap<i64, Vec<Item>> = HashMap::new();
    let mut statement = conn.prepare_cached(
        "SELECT pedido_id, producto_id, cantidad, precio_unitario, reserva_id FROM pedido_items
         WHERE pedido_id BETWEEN ?1 AND ?2 ORDER BY pedido_id, linea",
    )?;
    let mut rows = statement.query([first, last])?;
    while let Some(row) = rows.next()? {
        items.entry(row.get(0)?).or_default().push(Item {
            producto_id: row.get(1)?,
            cantidad: row.get(2)?,
            precio_unitario: row.get(3)?,
            reserva_id: row.get(4)?,
        });
    }
    Ok(items)
}

/// Records an order's lines, with their reservations where known.
fn insert_items(tx: &Connection, id: i64, items: &[Item]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO pedido_items (pedido_id, linea, producto_id, cantidad, precio_unitario, reserva_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (linea, item) in items.iter().enumerate() {
        insert.execute(params![
            id,
            linea as i64,
            item.producto_id,
            item.cantidad,
            item.precio_unitario,
            item.reserva_id
        ])?;
    }
    Ok(())
}

/// The outcome of recording a new order.
#[derive(Debug)]
pub enum Placement {
    /// A new order, recorded at its first stage with its lines (`saga::place`
    /// answers it moved on as far as it goes).
    New(Box<Pedido>),
    /// The idempotency key was used before for the same order: this one.
    Repeat(i64),
    /// The idempotency key was used before for a different order.
    KeyInUse,
}

/// A new order as it is first recorded: its lines as priced, its total, its first
/// stage and its deadline.
#[derive(Debug)]
pub struct FirstRecord {
    pub nuevo: NewPedido,
    /// The random part of the order's key at its peers.
    pub nonce: i64,
    pub items: Vec<Item>,
    pub total: Money,
    pub etapa: Stage,
    pub vence_en: i64,
    pub request_id: Option<String>,
    /// The placing request's `traceparent`, when its trace is sampled.
    pub traceparent: Option<String>,
}

/// Records a new order with its lines (and its idempotency key), in one write.
pub fn create(
    conn: &mut Connection,
    first_record: FirstRecord,
    clave: Option<&str>,
) -> rusqlite::Result<Placement> {
    let tx = Savepoint::begin(conn)?;
    let fingerprint = clave.map(|_| first_record.nuevo.fingerprint());
    if let Some(clave) = clave {
        let previa: Option<(String, i64)> = tx
            .prepare_cached("SELECT huella, pedido_id FROM claves_idempotencia WHERE clave = ?1")?
            .query_row([clave], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((previous, pedido_id)) = previa {
            return Ok(if Some(previous) == fingerprint {
                Placement::Repeat(pedido_id)
            } else {
                Placement::KeyInUse
            });
        }
    }
    let (etapa, desenlace, causa, motivo, pago_id, liberar, anular_cobro) =
        stage_columns(&first_record.etapa);
    let id = tx
        .prepare_cached(
            "INSERT INTO pedidos (etapa, desenlace, causa, motivo, pago_id, debe_liberar, debe_anular_cobro,
                                  total, moneda, medio, fail, vence_en, request_id, nonce, traceparent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .insert(params![
            etapa,
            desenlace,
            causa,
            motivo,
            pago_id,
            liberar,
            anular_cobro,
            first_record.total,
            first_record.nuevo.moneda,
            first_record.nuevo.medio,
            first_record.nuevo.fail,
            first_record.vence_en,
            first_record.request_id,
            first_record.nonce,
            first_record.traceparent
        ])?;
    // A read by rowid: cheaper than RETURNING, which builds a temporary table.
    let creado_en: String = tx
        .prepare_cached("SELECT creado_en FROM pedidos WHERE id = ?1")?
        .query_row([id], |row| row.get(0))?;
    insert_items(&tx, id, &first_record.items)?;
    if let (Some(clave), Some(fingerprint)) = (clave, fingerprint) {
        tx.prepare_cached("INSERT INTO claves_idempotencia (clave, huella, pedido_id) VALUES (?1, ?2, ?3)")?
            .execute(params![clave, fingerprint, id])?;
    }
    tx.commit()?;
    Ok(Placement::New(Box::new(Pedido {
        id,
        items: first_record.items,
        total: first_record.total,
        moneda: first_record.nuevo.moneda,
        medio: first_record.nuevo.medio,
        fail: first_record.nuevo.fail,
        creado_en,
        vence_en: first_record.vence_en,
        request_id: first_record.request_id,
        nonce: Some(first_record.nonce),
        brought_back_key: None,
        traceparent: first_record.traceparent,
        etapa: first_record.etapa,
    })))
}

/// Records that an order moved from stage `from` to `to`, and the reservation of
/// each of its lines when given, if the order still stands at `from`. Returns
/// whether it did; `false` means the order had moved on and nothing was written.
pub fn transition(
    conn: &mut Connection,
    id: i64,
    from: &Stage,
    to: &Stage,
    reservas: Option<&[i64]>,
    seen: ChangeNumbers,
) -> rusqlite::Result<bool> {
    let tx = Savepoint::begin(conn)?;
    let (from_etapa, _, _, _, _, from_liberar, from_anular) = stage_columns(from);
    let (etapa, desenlace, causa, motivo, pago_id, liberar, anular_cobro) = stage_columns(to);
    let changed = tx
        .prepare_cached(
            "UPDATE pedidos SET etapa = ?5, desenlace = ?6, causa = ?7, motivo = ?8, pago_id = ?9,
                                debe_liberar = ?10, debe_anular_cobro = ?11,
                                secuencia_inventario = CASE WHEN ?12 IS NULL THEN secuencia_inventario
                                    ELSE max(coalesce(secuencia_inventario, 0), ?12) END,
                                secuencia_pagos = CASE WHEN ?13 IS NULL THEN secuencia_pagos
                                    ELSE max(coalesce(secuencia_pagos, 0), ?13) END
             WHERE id = ?1 AND etapa = ?2 AND debe_liberar = ?3 AND debe_anular_cobro = ?4",
        )?
        .execute(params![
            id,
            from_etapa,
            from_liberar,
            from_anular,
            etapa,
            desenlace,
            causa,
            motivo,
            pago_id,
            liberar,
            anular_cobro,
            seen.inventario,
            seen.pagos
        ])?;
    if changed == 0 {
        return Ok(false);
    }
    if let Some(reservas) = reservas {
        let mut update =
            tx.prepare_cached("UPDATE pedido_items SET reserva_id = ?3 WHERE pedido_id = ?1 AND linea = ?2")?;
        for (linea, reserva_id) in reservas.iter().enumerate() {
            update.execute(params![id, linea as i64, reserva_id])?;
        }
    }
    tx.commit()?;
    Ok(true)
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Pedido>> {
    let Some(mut pedido) = conn
        .prepare_cached(concat!(
            "SELECT ",
            pedido_columns!(),
            " FROM pedidos WHERE id = ?1"
        ))?
        .query_row([id], pedido)
        .optional()?
    else {
        return Ok(None);
    };
    pedido.items = items_between(conn, id, id)?.remove(&id).unwrap_or_default();
    Ok(Some(pedido))
}

/// `pedidos` with their lines: one query for every order whose id lies between the
/// smallest and the largest of them.
fn with_items(conn: &Connection, mut pedidos: Vec<Pedido>) -> rusqlite::Result<Vec<Pedido>> {
    let ids = pedidos.iter().map(|p| p.id);
    let (Some(first), Some(last)) = (ids.clone().min(), ids.max()) else {
        return Ok(pedidos);
    };
    let mut items = items_between(conn, first, last)?;
    for pedido in &mut pedidos {
        pedido.items = items.remove(&pedido.id).unwrap_or_default();
    }
    Ok(pedidos)
}

pub fn list(conn: &Connection, page: Bounds) -> rusqlite::Result<Vec<Pedido>> {
    let pedidos = conn
        .prepare_cached(concat!(
            "SELECT ",
            pedido_columns!(),
            " FROM pedidos WHERE id > ?3 ORDER BY id LIMIT ?1 OFFSET ?2"
        ))?
        .query_map([page.limit, page.offset, page.after], pedido)?
        .collect::<rusqlite::Result<_>>()?;
    with_items(conn, pedidos)
}

/// The last `limit` orders, newest first.
pub fn latest(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<Pedido>> {
    let pedidos = conn
        .prepare_cached(concat!(
            "SELECT ",
            pedido_columns!(),
            " FROM pedidos ORDER BY id DESC LIMIT ?1"
        ))?
        .query_map([limit], pedido)?
        .collect::<rusqlite::Result<_>>()?;
    with_items(conn, pedidos)
}

/// How many orders placed at `since` (as `creado_en` writes it, to the second) or later
/// stand in each estado now, read from the counts kept per second
/// (`pedidos_por_segundo`, migration 0007): at most four rows a second, however many
/// orders were placed.
pub fn counts_since(conn: &Connection, since: &str) -> rusqlite::Result<Vec<(EstadoPedido, u64)>> {
    let second = since.get(..19).unwrap_or(since);
    conn.prepare_cached("SELECT estado, sum(n) FROM pedidos_por_segundo WHERE segundo >= ?1 GROUP BY estado")?
        .query_map([second], |row| {
            let estado: String = row.get(0)?;
            let estado = estado
                .parse::<EstadoPedido>()
                .map_err(|_| conversion(0, Type::Text, format!("estado {estado:?}")))?;
            Ok((estado, u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0)))
        })?
        .collect()
}

/// Drops the per-second counts of seconds before `before` (as `creado_en` writes it);
/// returns how many rows went.
pub fn forget_seconds_before(conn: &Connection, before: &str) -> rusqlite::Result<usize> {
    let second = before.get(..19).unwrap_or(before);
    conn.prepare_cached("DELETE FROM pedidos_por_segundo WHERE segundo < ?1")?
        .execute([second])
}

/// Forgets at most `limit` Idempotency-Keys of orders placed before `before` (as
/// `creado_en` writes it) that are over and owe nothing: a key whose order is still
/// being driven is kept whatever its age, so that a retry never places it twice.
/// Keys are read oldest order first, past the kept ones, until `limit` are forgotten
/// or an order placed at `before` or later comes: fewer than `limit` forgotten means
/// no older key is left to forget. Returns how many keys went.
pub fn forget_keys_before(conn: &Connection, before: &str, limit: usize) -> rusqlite::Result<usize> {
    let mut old = Vec::new();
    {
        let mut statement = conn.prepare_cached(concat!(
            "SELECT k.clave, p.creado_en, NOT (",
            sin_terminar!(),
            ") FROM claves_idempotencia k JOIN pedidos p ON p.id = k.pedido_id
             ORDER BY k.pedido_id"
        ))?;
        let mut rows = statement.query([])?;
        while old.len() < limit
            && let Some(row) = rows.next()?
        {
            if row.get_ref(1)?.as_str()? >= before {
                break;
            }
            if row.get::<_, bool>(2)? {
                old.push(row.get::<_, String>(0)?);
            }
        }
    }
    let mut delete = conn.prepare_cached("DELETE FROM claves_idempotencia WHERE clave = ?1")?;
    for clave in &old {
        delete.execute([clave])?;
    }
    Ok(old.len())
}

/// The ids of orders that are not over or still owe work to a peer, oldest first.
pub fn unfinished(conn: &Connection, limit: i64) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(concat!(
        "SELECT id FROM pedidos WHERE ",
        sin_terminar!(),
        " ORDER BY id LIMIT ?1"
    ))?
    .query_map([limit], |row| row.get(0))?
    .collect()
}

/// How many orders are not over or still owe work to a peer.
pub fn count_unfinished(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(concat!("SELECT COUNT(*) FROM pedidos WHERE ", sin_terminar!()))?
        .query_row([], |row| row.get(0))
}

/// This database's prefix for peer keys.
pub fn prefijo(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("SELECT prefijo FROM instancia WHERE id = 1", [], |row| row.get(0))
}

/// The highest number each peer gave a change recorded here (see `secuencia`), or that
/// a healing under way goes up to.
pub fn seen(conn: &Connection) -> rusqlite::Result<ChangeNumbers> {
    conn.prepare_cached(
        // `IS NOT NULL` lets SQLite read each max from the end of its partial index;
        // without it, it reads every order.
        "SELECT max(coalesce((SELECT max(secuencia_inventario) FROM pedidos
                              WHERE secuencia_inventario IS NOT NULL), 0),
                    coalesce((SELECT hasta FROM curas WHERE peer = 'inventario'), 0)),
                max(coalesce((SELECT max(secuencia_pagos) FROM pedidos WHERE secuencia_pagos IS NOT NULL), 0),
                    coalesce((SELECT hasta FROM curas WHERE peer = 'pagos'), 0))",
    )?
    .query_row([], |row| {
        Ok(ChangeNumbers {
            inventario: Some(row.get(0)?),
            pagos: Some(row.get(1)?),
        })
    })
}

/// The orders whose last recorded change at `ledger` is numbered after `after`, by that
/// number: at most `limit`, as `(number, id)`.
pub fn recorded_after(
    conn: &Connection,
    ledger: Ledger,
    after: i64,
    limit: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    let sql = match ledger {
        Ledger::Inventario => {
            "SELECT secuencia_inventario, id FROM pedidos WHERE secuencia_inventario IS NOT NULL
             AND secuencia_inventario > ?1 ORDER BY secuencia_inventario LIMIT ?2"
        }
        Ledger::Pagos => {
            "SELECT secuencia_pagos, id FROM pedidos WHERE secuencia_pagos IS NOT NULL
             AND secuencia_pagos > ?1 ORDER BY secuencia_pagos LIMIT ?2"
        }
    };
    conn.prepare_cached(sql)?
        .query_map([after, limit], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

/// The order known at its peers by `clave`, if this database has it.
pub fn by_clave(conn: &Connection, prefijo: &str, clave: &str) -> rusqlite::Result<Option<i64>> {
    let traida = conn
        .prepare_cached("SELECT id FROM pedidos WHERE clave = ?1")?
        .query_row([clave], |row| row.get(0))
        .optional()?;
    if traida.is_some() {
        return Ok(traida);
    }
    let Some((id, nonce)) = parse_clave(prefijo, clave) else {
        return Ok(None);
    };
    conn.prepare_cached("SELECT id FROM pedidos WHERE id = ?1 AND nonce IS ?2 AND clave IS NULL")?
        .query_row(params![id, nonce], |row| row.get(0))
        .optional()
}

/// The id and nonce a key made by [`Pedido::clave`] carries.
pub fn parse_clave(prefijo: &str, clave: &str) -> Option<(i64, Option<i64>)> {
    let rest = clave.strip_prefix(prefijo)?.strip_prefix('-')?;
    match rest.split_once('-') {
        Some((id, nonce)) => Some((id.parse().ok()?, Some(i64::from_str_radix(nonce, 16).ok()?))),
        None => Some((rest.parse().ok()?, None)),
    }
}

/// An order this database lost, as its peers' records tell it.
#[derive(Debug, Clone)]
pub struct BroughtBack {
    pub clave: String,
    pub items: Vec<Item>,
    pub total: Money,
    pub moneda: String,
    pub medio: String,
    pub etapa: Stage,
    pub seen: ChangeNumbers,
}

/// Records an order brought back from its peers: under the id its key names if this
/// database has not given that id to another order since, else under a new id with
/// its key kept. Returns its id, or `None` if it is already here.
pub fn bring_back(conn: &mut Connection, prefijo: &str, lost: &BroughtBack) -> rusqlite::Result<Option<i64>> {
    let tx = Savepoint::begin(conn)?;
    if by_clave(&tx, prefijo, &lost.clave)?.is_some() {
        return Ok(None);
    }
    let parsed = parse_clave(prefijo, &lost.clave);
    let free = match parsed {
        Some((id, _)) => tx
            .prepare_cached("SELECT 1 FROM pedidos WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_none(),
        None => false,
    };
    let (id, nonce, clave) = match parsed {
        Some((id, nonce)) if free => (Some(id), nonce, None),
        _ => (None, None, Some(lost.clave.as_str())),
    };
    let (etapa, desenlace, causa, motivo, pago_id, liberar, anular_cobro) = stage_columns(&lost.etapa);
    let id = tx
        .prepare_cached(
            "INSERT INTO pedidos (id, etapa, desenlace, causa, motivo, pago_id, debe_liberar, debe_anular_cobro,
                                  total, moneda, medio, fail, vence_en, nonce, clave,
                                  secuencia_inventario, secuencia_pagos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, 0, ?12, ?13, ?14, ?15)",
        )?
        .insert(params![
            id,
            etapa,
            desenlace,
            causa,
            motivo,
            pago_id,
            liberar,
            anular_cobro,
            lost.total,
            lost.moneda,
            lost.medio,
            nonce,
            clave,
            lost.seen.inventario,
            lost.seen.pagos
        ])?;
    insert_items(&tx, id, &lost.items)?;
    tx.commit()?;
    Ok(Some(id))
}

/// The healing under way at `ledger`: the last change its restored copy had, and the
/// highest this pedidos had seen.
pub fn healing(conn: &Connection, ledger: Ledger) -> rusqlite::Result<Option<(i64, i64)>> {
    let peer: &str = ledger.into();
    conn.prepare_cached("SELECT desde, hasta FROM curas WHERE peer = ?1")?
        .query_row([peer], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
}

/// Records that `ledger` is healed from `desde` to `hasta` (once: a healing already
/// under way is kept); returns the one under way.
pub fn begin_healing(
    conn: &Connection,
    ledger: Ledger,
    desde: i64,
    hasta: i64,
) -> rusqlite::Result<(i64, i64)> {
    let peer: &str = ledger.into();
    conn.prepare_cached(
        "INSERT INTO curas (peer, desde, hasta) VALUES (?1, ?2, ?3) ON CONFLICT (peer) DO NOTHING",
    )?
    .execute(params![peer, desde, hasta])?;
    Ok(healing(conn, ledger)?.unwrap_or((desde, hasta)))
}

pub fn end_healing(conn: &Connection, ledger: Ledger) -> rusqlite::Result<()> {
    let peer: &str = ledger.into();
    conn.prepare_cached("DELETE FROM curas WHERE peer = ?1")?
        .execute([peer])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pedidos::model::Linea;

    fn database() -> Connection {
        crate::pedidos::schema().in_memory(None)
    }

    fn registered(conn: &mut Connection) -> Pedido {
        let nuevo = NewPedido {
            lineas: vec![Linea {
                producto_id: 1,
                cantidad: 2,
            }],
            medio: "t".into(),
            moneda: "PYG".into(),
            fail: false,
        };
        let first_record = FirstRecord {
            nuevo,
            items: vec![Item {
                producto_id: 1,
                cantidad: 2,
                precio_unitario: Money::from_hundredths(500).ok(),
                reserva_id: None,
            }],
            total: Money::from_hundredths(1000).expect("money"),
            etapa: Stage::Registrado,
            vence_en: 0,
            request_id: Some("the-request".into()),
            traceparent: None,
            nonce: 42,
        };
        match create(conn, first_record, None).expect("created") {
            Placement::New(pedido) => *pedido,
            other => panic!("{other:?}"),
        }
    }

    fn counts(conn: &Connection) -> Vec<(EstadoPedido, u64)> {
        let mut counts = counts_since(conn, "2000-01-01T00:00:00.000Z").expect("read");
        counts.sort_by_key(|(estado, _)| *estado as u8);
        counts.retain(|(_, n)| *n > 0);
        counts
    }

    /// Moves registered order `id` to its outcome, owing nothing.
    fn close(conn: &mut Connection, id: i64, desenlace: Outcome) {
        let cerrado = Stage::Cerrado {
            desenlace,
            deuda: Owed::default(),
        };
        let written = transition(
            conn,
            id,
            &Stage::Registrado,
            &cerrado,
            None,
            ChangeNumbers::default(),
        );
        assert!(written.expect("written"));
    }

    #[test]
    fn the_counts_by_second_follow_every_order_as_it_is_placed_and_moves_on() {
        let mut conn = database();
        let first = registered(&mut conn);
        registered(&mut conn);
        assert_eq!(counts(&conn), [(EstadoPedido::Pendiente, 2)]);
        close(&mut conn, first.id, Outcome::Rechazado { pago_id: Some(1) });
        assert_eq!(
            counts(&conn),
            [(EstadoPedido::Pendiente, 1), (EstadoPedido::Rechazado, 1)]
        );
        // A later second is not counted from an earlier `since`'s point of view.
        assert_eq!(counts_since(&conn, "9999-01-01T00:00:00.000Z").expect("read"), []);
        assert_eq!(
            forget_seconds_before(&conn, "9999-01-01T00:00:00.000Z").expect("forgotten"),
            2
        );
        assert_eq!(counts(&conn), []);
    }

    #[test]
    fn migrating_counts_the_last_two_minutes_orders_already_stored() {
        let mut conn = crate::pedidos::schema().in_memory(Some(6));
        conn.execute_batch(
            "INSERT INTO pedidos (etapa, desenlace, total, moneda, medio) VALUES
                 ('cerrado', 'confirmado', 1, 'PYG', 't'), ('cerrado', 'confirmado', 1, 'PYG', 't'),
                 ('registrado', NULL, 1, 'PYG', 't');
             INSERT INTO pedidos (etapa, desenlace, total, moneda, medio, creado_en)
                 VALUES ('cerrado', 'fallido', 1, 'PYG', 't', '2001-01-01T00:00:00.000Z');",
        )
        .expect("orders of the older schema");
        crate::pedidos::schema()
            .migrations
            .to_latest(&mut conn)
            .expect("migrated");
        assert_eq!(
            counts(&conn),
            [(EstadoPedido::Pendiente, 1), (EstadoPedido::Confirmado, 2)],
            "the order of 2001 is long past"
        );
    }

    #[test]
    fn only_the_keys_of_old_orders_that_are_over_are_forgotten() {
        let mut conn = database();
        let keyed = |clave: &str, conn: &mut Connection| {
            let pedido = registered(conn);
            conn.execute(
                "INSERT INTO claves_idempotencia (clave, huella, pedido_id) VALUES (?1, 'h', ?2)",
                params![clave, pedido.id],
            )
            .expect("key stored");
            pedido
        };
        let over = keyed("over", &mut conn);
        keyed("unfinished", &mut conn);
        close(&mut conn, over.id, Outcome::Confirmado { pago_id: Some(1) });
        assert_eq!(
            forget_keys_before(&conn, "2000-01-01T00:00:00.000Z", 100).expect("read"),
            0,
            "none is that old"
        );
        assert_eq!(
            forget_keys_before(&conn, "9999-01-01T00:00:00.000Z", 100).expect("read"),
            1
        );
        let left: Vec<String> = conn
            .prepare("SELECT clave FROM claves_idempotencia")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
            .expect("read");
        assert_eq!(left, ["unfinished"], "a key whose order is still driven is kept");

        // Kept keys at the front hold back none behind them, whatever the batch.
        let later = keyed("later", &mut conn);
        close(&mut conn, later.id, Outcome::Confirmado { pago_id: Some(2) });
        assert_eq!(
            forget_keys_before(&conn, "9999-01-01T00:00:00.000Z", 1).expect("read"),
            1,
            "the key behind an unfinished order's"
        );
    }

    #[test]
    fn a_transition_from_a_stage_the_order_has_left_writes_nothing() {
        let mut conn = database();
        let pedido = registered(&mut conn);
        let confirmado = Stage::Cerrado {
            desenlace: Outcome::Confirmado { pago_id: Some(7) },
            deuda: Owed::default(),
        };
        assert!(
            transition(
                &mut conn,
                pedido.id,
                &Stage::Registrado,
                &confirmado,
                Some(&[3]),
                ChangeNumbers::default()
            )
            .expect("written")
        );
        // A second driver that still believes the order is registrado finds it moved on.
        let fallido = Stage::Cerrado {
            desenlace: Outcome::Fallido {
                causa: Cause::Interrupted,
                motivo: "stale".into(),
                pago_id: None,
            },
            deuda: Owed {
                liberar: true,
                anular_cobro: false,
            },
        };
        assert!(
            !transition(
                &mut conn,
                pedido.id,
                &Stage::Registrado,
                &fallido,
                None,
                ChangeNumbers::default()
            )
            .expect("no error")
        );
        let stored = get(&conn, pedido.id).expect("read").expect("there");
        assert_eq!(stored.etapa, confirmado);
        assert_eq!(stored.items[0].reserva_id, Some(3));
    }

    #[test]
    fn every_stage_reads_back_as_it_was_written() {
        let mut conn = database();
        let pedido = registered(&mut conn);
        let stages = [
            Stage::Cobrado { pago_id: Some(4) },
            Stage::Cerrado {
                desenlace: Outcome::Fallido {
                    causa: Cause::ReservaReleased,
                    motivo: "gone".into(),
                    pago_id: Some(4),
                },
                deuda: Owed {
                    liberar: true,
                    anular_cobro: true,
                },
            },
            Stage::Cerrado {
                desenlace: Outcome::Fallido {
                    causa: Cause::ReservaReleased,
                    motivo: "gone".into(),
                    pago_id: Some(4),
                },
                deuda: Owed::default(),
            },
        ];
        let mut from = Stage::Registrado;
        for etapa in stages {
            assert!(
                transition(
                    &mut conn,
                    pedido.id,
                    &from,
                    &etapa,
                    None,
                    ChangeNumbers::default()
                )
                .expect("written")
            );
            assert_eq!(get(&conn, pedido.id).expect("read").expect("there").etapa, etapa);
            from = etapa;
        }
        assert_eq!(unfinished(&conn, 10).expect("read"), Vec::<i64>::new());
    }

    #[test]
    fn an_order_brought_back_keeps_its_key_under_its_own_id_or_another() {
        let mut conn = database();
        let prefijo = prefijo(&conn).expect("a prefix");
        let placed = registered(&mut conn);
        let clave = placed.clave(&prefijo);
        assert_eq!(parse_clave(&prefijo, &clave), Some((placed.id, placed.nonce)));
        assert_eq!(parse_clave(&prefijo, "other-1-a"), None);
        assert_eq!(by_clave(&conn, &prefijo, &clave).expect("read"), Some(placed.id));
        let order = |clave: String| BroughtBack {
            clave,
            items: vec![Item {
                producto_id: 2,
                cantidad: 3,
                precio_unitario: None,
                reserva_id: Some(9),
            }],
            total: Money::from_hundredths(700).expect("money"),
            moneda: "PYG".into(),
            medio: "tarjeta".into(),
            etapa: Stage::Cerrado {
                desenlace: Outcome::Confirmado { pago_id: Some(5) },
                deuda: Owed::default(),
            },
            seen: ChangeNumbers {
                inventario: Some(4),
                pagos: Some(2),
            },
        };
        // Already here: nothing is written.
        assert_eq!(
            bring_back(&mut conn, &prefijo, &order(clave)).expect("written"),
            None
        );
        // Its id free: it comes back under it, its key rebuilt from id and nonce.
        let lost = format!("{prefijo}-40-ff");
        let id = bring_back(&mut conn, &prefijo, &order(lost.clone())).expect("written");
        assert_eq!(id, Some(40));
        let back = get(&conn, 40).expect("read").expect("there");
        assert_eq!(
            (back.clave(&prefijo), back.items.len(), back.total.hundredths()),
            (lost, 1, 700)
        );
        // Its id given to another order since: another id, the key kept.
        let taken = format!("{prefijo}-{}-abc", placed.id);
        let id = bring_back(&mut conn, &prefijo, &order(taken.clone()))
            .expect("written")
            .expect("a new id");
        assert_ne!(id, placed.id);
        assert_eq!(
            get(&conn, id).expect("read").expect("there").clave(&prefijo),
            taken
        );
        assert_eq!(by_clave(&conn, &prefijo, &taken).expect("read"), Some(id));
        assert_eq!(
            seen(&conn).expect("read"),
            ChangeNumbers {
                inventario: Some(4),
                pagos: Some(2)
            }
        );
    }
}
