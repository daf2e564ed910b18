//! design-es.md's circuit breaker ("se abre a los 3 fallos y se cierra tras
//! 30s") walked through with real processes: pagos fails from the start — it accepts
//! connections and resets them, or answers `500` — so pedidos never heard from it
//! before its circuit opens. `BREAKER_OPEN_SECS` is scaled down to [`OPEN_SECS`];
//! "still open" and "closed after" are read from pedidos' own state (`GET /ready`),
//! not from a clock.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::service::Service;
use serde_json::json;

use crate::helpers::{Running, Script, ScriptedPeer, TOKEN, TestApp, free_port, serve_alone};

/// `BREAKER_OPEN_SECS` in these walk-throughs: the original's 30 s, scaled down.
pub const OPEN_SECS: u64 = 8;

/// A pagos that accepts the connection and resets it before answering.
pub const RESETS: Script = Script::Reset;
/// A pagos that answers every request `500`.
pub const ANSWERS_500: Script =
    Script::Answer("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");

/// How the walk-through sees what reached pagos once it is back.
pub enum Charges {
    /// penguin's pagos at this URL: its `GET /pagos`.
    Listed(String),
    /// A stand-in that counts the charges it got.
    Counted(Arc<AtomicUsize>),
}

impl Charges {
    async fn count(&self, app: &TestApp) -> usize {
        match self {
            Self::Counted(charges) => charges.load(Ordering::SeqCst),
            Self::Listed(url) => {
                let answer = app
                    .http
                    .call(Method::GET, format!("{url}/pagos"))
                    .token(TOKEN)
                    .send()
                    .await
                    .expect("pagos answers");
                answer.body.as_array().map_or(0, Vec::len)
            }
        }
    }
}

/// A peer's circuit as pedidos' `/ready` shows it: its state, and while open, how
/// long until it lets a trial call through.
pub async fn circuit(app: &TestApp, peer: &str) -> (String, Option<u64>) {
    let ready = app.get(Service::Pedidos, "/ready").await.body;
    let circuit = &ready["peers"][peer];
    (
        circuit["circuit"].as_str().expect("a circuit").to_string(),
        circuit["retry_in_ms"].as_u64(),
    )
}

/// Waits until `peer`'s circuit lets the next call through: closed, or its open period over.
async fn until_it_lets_a_call_through(app: &TestApp, peer: &str) {
    let deadline = Instant::now() + Duration::from_secs(OPEN_SECS + 60);
    loop {
        let (state, left) = circuit(app, peer).await;
        if state == "closed" || left == Some(0) {
            return;
        }
        assert!(Instant::now() < deadline, "the circuit of {peer} stays {state}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An order, which the open circuit of one of its peers fails at once.
async fn refused_by_an_open_circuit(app: &TestApp, producto_id: i64) -> crate::helpers::Answer {
    let answer = app.pedir(&[(producto_id, 3)], false).await;
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(answer.status == 503 && detail.contains("circuit"), "{answer:?}");
    answer
}

fn retry_after(answer: &crate::helpers::Answer) -> u64 {
    answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .expect("a Retry-After")
}

/// The original's breaker walk-through. `app` names productos, inventario and
/// pedidos, whose pagos is `broken` and whose circuits open for [`OPEN_SECS`]; `back`
/// starts pagos again at `broken`'s address and says how to see its charges (and
/// what to keep alive until the end).
pub async fn walkthrough<F, Fut, Keep>(app: &TestApp, broken: ScriptedPeer, back: F)
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = (Charges, Keep)>,
{
    let hielo = app.stocked("Hielo Premium", json!(10000), 50).await;

    // 1) Three orders fail, each after trying pagos twice.
    for failed in 1..=3 {
        let answer = app.pedir(&[(hielo, 3)], false).await;
        assert_eq!(
            (
                answer.status,
                answer.body["error"].as_str(),
                answer.body["estado"].as_str()
            ),
            (503, Some("peer_unavailable"), Some("fallido")),
            "{answer:?}"
        );
        assert_eq!(broken.requests(), 2 * failed, "each order tries pagos twice");
    }

    // 2) The circuit is open for BREAKER_OPEN_SECS, though pagos never answered:
    //    the next order fails at once, and pagos is not contacted.
    let answer = refused_by_an_open_circuit(app, hielo).await;
    let (state, left) = circuit(app, "pagos").await;
    assert_eq!(state, "open");
    assert!(
        retry_after(&answer) > 1 && left > Some(1000),
        "open for BREAKER_OPEN_SECS ({OPEN_SECS} s), not the second of a peer that is starting: \
         Retry-After {}, retry_in_ms {left:?}",
        retry_after(&answer)
    );
    assert_eq!(broken.requests(), 6, "an open circuit does not touch pagos");

    // 3) pagos is back; within the period the circuit stays open and pagos untouched.
    let addr = broken.addr;
    broken.stop().await;
    let (charges, _keep) = back(addr).await;
    let (state, left) = circuit(app, "pagos").await;
    assert!(
        state == "open" && left > Some(0),
        "still within the period: {state} {left:?}"
    );
    refused_by_an_open_circuit(app, hielo).await;
    assert_eq!(charges.count(app).await, 0, "nothing reached pagos while open");

    // 4) Once the period is over, the next order is the trial call: charged,
    //    confirmed, and the circuit closed.
    until_it_lets_a_call_through(app, "pagos").await;
    let answer = app.pedir(&[(hielo, 3)], false).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (201, Some("confirmado")),
        "{answer:?}"
    );
    assert_eq!(circuit(app, "pagos").await.0, "closed");
    assert_eq!(charges.count(app).await, 1);
    let stock = app.get(Service::Inventario, &format!("/stock/{hielo}")).await;
    assert_eq!(
        stock.body["cantidad"], 47,
        "only the confirmed order holds units: {stock:?}"
    );
}

/// pedidos as a process of its own, its peers at these URLs, its circuits open for
/// [`OPEN_SECS`], and no recovery pass during the test.
fn pedidos_process(dir: &std::path::Path, products: &str, inventory: &str, payments: &str) -> Running {
    serve_alone(
        dir,
        Service::Pedidos,
        0,
        &[
            ("PRODUCTS_URL", products.to_string()),
            ("INVENTORY_URL", inventory.to_string()),
            ("PAYMENTS_URL", payments.to_string()),
            ("BREAKER_OPEN_SECS", OPEN_SECS.to_string()),
            ("RETRY_BACKOFF_MS", "10".into()),
            ("RECOVERY_INTERVAL", "3600".into()),
        ],
    )
}

/// penguin's pagos as a process on `addr`'s port.
fn pagos_process(dir: &std::path::Path) -> impl FnOnce(SocketAddr) -> std::future::Ready<(Charges, Running)> {
    move |addr| {
        let pagos = serve_alone(dir, Service::Pagos, addr.port(), &[]);
        let url = pagos.urls["pagos"].clone();
        std::future::ready((Charges::Listed(url), pagos))
    }
}

/// The walk-through against four processes, pagos `broken` from the start.
async fn with_pagos_broken_from_the_start(broken: Script) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let productos = serve_alone(dir.path(), Service::Productos, 0, &[]);
    let inventario = serve_alone(dir.path(), Service::Inventario, 0, &[]);
    let broken = ScriptedPeer::start(broken).await;
    let pedidos = pedidos_process(
        dir.path(),
        &productos.urls["productos"],
        &inventario.urls["inventario"],
        &broken.url(),
    );
    let mut app = TestApp::empty();
    for (service, running) in [
        (Service::Productos, &productos),
        (Service::Inventario, &inventario),
        (Service::Pedidos, &pedidos),
    ] {
        app.urls.insert(service, running.urls[service.name()].clone());
    }
    walkthrough(&app, broken, pagos_process(dir.path())).await;
}

#[actix_web::test]
async fn a_pagos_that_resets_from_the_start_opens_the_circuit_for_breaker_open_secs() {
    with_pagos_broken_from_the_start(RESETS).await;
}

#[actix_web::test]
async fn a_pagos_that_answers_500_from_the_start_opens_the_circuit_for_breaker_open_secs() {
    with_pagos_broken_from_the_start(ANSWERS_500).await;
}

#[actix_web::test]
async fn pedidos_started_before_its_peers_waits_a_second_for_them_then_the_full_period_for_a_failing_one() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let port = |_| free_port();
    let [productos_port, inventario_port, pagos_port] = [0; 3].map(port);
    let url = |port| format!("http://127.0.0.1:{port}");
    let pedidos = pedidos_process(
        dir.path(),
        &url(productos_port),
        &url(inventario_port),
        &url(pagos_port),
    );
    let mut app = TestApp::empty();
    app.urls.insert(Service::Pedidos, pedidos.urls["pedidos"].clone());

    // Nothing listens yet: every connection is refused. The circuit of productos (the
    // first peer an order needs) opens, but for a second, not BREAKER_OPEN_SECS.
    for _ in 0..3 {
        assert_eq!(app.pedir(&[(1, 1)], false).await.status, 503);
    }
    let answer = app.pedir(&[(1, 1)], false).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let (state, left) = circuit(&app, "productos").await;
    assert_eq!(state, "open");
    assert!(
        retry_after(&answer) == 1 && left <= Some(1000),
        "a peer not listening yet is retried within a second: Retry-After {}, retry_in_ms {left:?}",
        retry_after(&answer)
    );

    // productos and inventario come up; pagos comes up broken, answering 500.
    let productos = serve_alone(dir.path(), Service::Productos, productos_port, &[]);
    let inventario = serve_alone(dir.path(), Service::Inventario, inventario_port, &[]);
    app.urls
        .insert(Service::Productos, productos.urls["productos"].clone());
    app.urls
        .insert(Service::Inventario, inventario.urls["inventario"].clone());
    let broken = ScriptedPeer::start_at(([127, 0, 0, 1], pagos_port).into(), ANSWERS_500).await;
    until_it_lets_a_call_through(&app, "productos").await;
    walkthrough(&app, broken, pagos_process(dir.path())).await;
}
