//! What inventario shows in `/metrics` beside every service's own, read from its
//! database at each scrape: active reservations, reservations expired so far, and the
//! units of all products by where they stand (available, reserved, confirmed).

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
        // Through the stock rows and the (producto_id, estado) index: a seek per
        // product, never a scan of every reservation ever made.
        let count = |estado: &str| -> rusqlite::Result<i64> {
            conn.prepare_cached(
                "SELECT COUNT(*) FROM stock s JOIN reservas r
                 ON r.producto_id = s.producto_id AND r.estado = ?1",
            )?
            .query_row([estado], |row| row.get(0))
        };
        active.set(count("activa")?);
        let expired_now = u64::try_from(count("expirada")?).unwrap_or(0);
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
