//! The wall clock, for deadlines and times stored in the databases.

/// Unix time in milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time as the databases write `creado_en`: UTC, to the millisecond, so that the
/// text compares as the times do.
pub fn stored(t: jiff::Timestamp) -> String {
    format!("{:.3}", t.round(jiff::Unit::Millisecond).unwrap_or(t))
}

/// The time `ago` before now, as [`stored`] writes it; the earliest time there is
/// when `ago` reaches past it.
pub fn stored_ago(ago: std::time::Duration) -> String {
    let then = jiff::SignedDuration::try_from(ago)
        .ok()
        .and_then(|d| jiff::Timestamp::now().checked_sub(d).ok())
        .unwrap_or(jiff::Timestamp::MIN);
    stored(then)
}
