//! Request ids and W3C trace context, so one order can be followed through the four
//! services' logs.
//!
//! Every request gets an id ([`Trace::of_request`]): its `X-Request-Id` when that is
//! sane (1 to [`MAX_ID_LEN`] visible ASCII characters), else the trace id of a valid
//! `traceparent`, else a new random one. The id is answered in `X-Request-Id`, written
//! in every log line made while the request is answered ([`current_id`], read by
//! `logging`), and sent on every peer call made for it, with a `traceparent` that keeps
//! the trace id and names a new span ([`Trace::peer_headers`]). Work no request asked
//! for (recovery) runs under a [`Trace::new`] of its own.

use std::future::Future;
use std::sync::Arc;

use actix_web::http::header::{HeaderMap, HeaderName};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The longest `X-Request-Id` taken as given.
pub const MAX_ID_LEN: usize = 128;

/// The trace a piece of work belongs to, and the id its log lines carry.
#[derive(Debug, Clone)]
pub struct Trace {
    id: Arc<str>,
    trace_id: u128,
    sampled: bool,
}

tokio::task_local! {
    static CURRENT: Trace;
}

impl Trace {
    /// A new trace, with its trace id (32 hex digits) as its id.
    pub fn new() -> Self {
        let trace_id = new_trace_id();
        Self {
            id: format!("{trace_id:032x}").into(),
            trace_id,
            sampled: false,
        }
    }

    /// The trace of an incoming request, from its `X-Request-Id` and `traceparent`.
    pub fn of_request(headers: &HeaderMap) -> Self {
        let parent = headers
            .get(TRACEPARENT)
            .and_then(|v| parse_traceparent(v.as_bytes()));
        let given = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| sane_id(id));
        let (trace_id, sampled) = parent.unwrap_or_else(|| (new_trace_id(), false));
        let id = match given {
            Some(id) => id.into(),
            None => format!("{trace_id:032x}").into(),
        };
        Self {
            id,
            trace_id,
            sampled,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The headers of a call to a peer made for this trace: the same id, and a
    /// `traceparent` with the same trace id and a new span id.
    pub fn peer_headers(&self) -> [(HeaderName, String); 2] {
        let span = loop {
            let span = fastrand::u64(..);
            if span != 0 {
                break span;
            }
        };
        let flags = u8::from(self.sampled);
        [
            (REQUEST_ID, self.id.to_string()),
            (
                TRACEPARENT,
                format!("00-{:032x}-{span:016x}-{flags:02x}", self.trace_id),
            ),
        ]
    }

    /// Runs `work` under this trace: its log lines and peer calls carry it.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

/// The trace of the work running now, if it runs under one.
pub fn current() -> Option<Trace> {
    CURRENT.try_with(Trace::clone).ok()
}

/// The id of the work running now, if it runs under a trace.
pub fn current_id() -> Option<Arc<str>> {
    CURRENT.try_with(|t| t.id.clone()).ok()
}

fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

/// Whether a given request id can be taken as it is: bounded, visible ASCII only, so
/// it cannot break a log line or a header.
fn sane_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A `traceparent` of version `00` (or a later one, read as `00` as the W3C spec asks):
/// its trace id and whether it is sampled; `None` if it is not valid.
fn parse_traceparent(value: &[u8]) -> Option<(u128, bool)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace = parts.next()?;
    let span = parts.next()?;
    let flags = parts.next()?;
    let lower_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex(version, 2)
        || version == "ff"
        || !lower_hex(trace, 32)
        || !lower_hex(span, 16)
        || !lower_hex(flags, 2)
    {
        return None;
    }
    // Version 00 has exactly four fields; later versions may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let trace_id = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace_id, flags & 1 == 1))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                (*name).clone(),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        map
    }

    #[test]
    fn a_sane_request_id_is_kept_and_the_parent_trace_goes_on() {
        let trace = Trace::of_request(&headers(&[(&REQUEST_ID, "order-42"), (&TRACEPARENT, PARENT)]));
        assert_eq!(trace.id(), "order-42");
        let [(_, id), (_, parent)] = trace.peer_headers();
        assert_eq!(id, "order-42");
        assert!(
            parent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{parent}"
        );
        assert!(parent.ends_with("-01"), "sampled stays sampled: {parent}");
        assert_ne!(&parent[36..52], "00f067aa0ba902b7", "a new span per peer call");
        assert_eq!(
            parse_traceparent(parent.as_bytes()).map(|(t, _)| t),
            Some(0x4bf92f3577b34da6a3ce929d0e0e4736)
        );
    }

    #[test]
    fn without_a_sane_request_id_the_trace_id_is_the_id() {
        for bad in ["", "has space", "tab\there", &"x".repeat(MAX_ID_LEN + 1), "ñ"] {
            let mut map = headers(&[(&TRACEPARENT, PARENT)]);
            if let Ok(value) = HeaderValue::from_bytes(bad.as_bytes()) {
                map.insert(REQUEST_ID, value);
            }
            assert_eq!(
                Trace::of_request(&map).id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_invalid_traceparent_starts_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let trace = Trace::of_request(&headers(&[(&TRACEPARENT, bad)]));
            assert_eq!(trace.id().len(), 32, "{bad}");
            assert_ne!(trace.id(), "4bf92f3577b34da6a3ce929d0e0e4736", "{bad}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        assert_eq!(
            Trace::of_request(&headers(&[(&TRACEPARENT, later)])).id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn new_traces_differ() {
        assert_ne!(Trace::new().id(), Trace::new().id());
    }
}
