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
        // One pass over the reservations (no index serves a count by estado, so each
        // scrape reads them all: cheap while they number in the hundred thousands).
        let (activas, expiradas): (i64, i64) = conn
            .prepare_cached(
                "SELECT COALESCE(SUM(estado = 'activa'), 0), COALESCE(SUM(estado = 'expirada'), 0)
                 FROM reservas",
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
