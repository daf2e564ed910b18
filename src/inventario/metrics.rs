//! What inventario shows in `/metrics` beside every service's own, read from its
//! database at each scrape: active reservations, reservations expired so far, and the
//! units of all products by where they stand (available, reserved, confirmed). A scrape
//! costs the same however many reservations were ever made: the counts by estado are
//! kept as reservations change (`reservas_por_estado`, migration 0005), and the units
//! are one row per product.

use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts};
use rusqlite::Connection;

use crate::metrics::Metrics;

pub fn register(metrics: &mut Metrics) -> prometheus::Result<()> {
    let active = metrics.register(IntGauge::new(
        "reservations_active",
        "Reservations holding units now",
    )?)?;
    let expired = metrics.register(IntCounter::new(
        "reservations_expired_total",
        "Reservations that expired before they were confirmed",
    )?)?;
    let units = metrics.register(IntGaugeVec::new(
        Opts::new(
            "stock_units",
            "Units of all products: disponible, reservado, confirmado",
        ),
        &["estado"],
    )?)?;
    metrics.sample_with(std::sync::Arc::new(move |conn: &Connection| {
        let (activas, expiradas): (i64, i64) = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(n * (estado = 'activa')), 0), COALESCE(SUM(n * (estado = 'expirada')), 0)
                 FROM reservas_por_estado",
            )?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        active.set(activas);
        let expired_now = u64::try_from(expiradas).unwrap_or(0);
        expired.inc_by(expired_now.saturating_sub(expired.get()));
        let (disponible, reservado, confirmado): (i64, i64, i64) = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(cantidad), 0), COALESCE(SUM(reservado), 0), COALESCE(SUM(confirmado), 0)
                 FROM stock",
            )?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        units.with_label_values(&["disponible"]).set(disponible);
        units.with_label_values(&["reservado"]).set(reservado);
        units.with_label_values(&["confirmado"]).set(confirmado);
        Ok(())
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    fn counts(conn: &Connection) -> Vec<(String, i64)> {
        conn.prepare("SELECT estado, n FROM reservas_por_estado WHERE n <> 0 ORDER BY estado")
            .and_then(|mut s| s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
            .expect("read")
    }

    #[test]
    fn the_counts_by_estado_follow_every_reservation_from_the_migration_on() {
        let mut conn = crate::inventario::schema().in_memory(Some(4));
        conn.execute_batch(
            "INSERT INTO stock (producto_id, cantidad) VALUES (1, 10);
             INSERT INTO reservas (producto_id, cantidad, estado, expira_en) VALUES
                 (1, 1, 'activa', 0), (1, 1, 'expirada', 0), (1, 1, 'confirmada', 0);",
        )
        .expect("reservations of the older schema");
        crate::inventario::schema()
            .migrations
            .to_latest(&mut conn)
            .expect("migrated");
        let expected =
            |list: &[(&str, i64)]| list.iter().map(|(e, n)| (e.to_string(), *n)).collect::<Vec<_>>();
        assert_eq!(
            counts(&conn),
            expected(&[("activa", 1), ("confirmada", 1), ("expirada", 1)])
        );
        conn.execute_batch(
            "INSERT INTO reservas (producto_id, cantidad, estado, expira_en) VALUES (1, 2, 'activa', 0);
             UPDATE reservas SET estado = 'liberada' WHERE id = 1;
             UPDATE reservas SET cantidad = 3 WHERE id = 4;
             DELETE FROM reservas WHERE id = 2;",
        )
        .expect("changes");
        assert_eq!(
            counts(&conn),
            expected(&[("activa", 1), ("confirmada", 1), ("liberada", 1)])
        );
    }
}
