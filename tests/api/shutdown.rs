//! SIGTERM while orders are in flight: the real binary stops accepting, answers every
//! order it was placing, and exits 0 right after — no order is left half-way.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::service::Service;
use serde_json::json;

use crate::helpers::{Fault, FaultProxy, Http, TOKEN, TestApp, fast_peers, free_port, penguin};

#[actix_web::test]
async fn sigterm_answers_every_order_in_flight_then_exits_at_once() {
    // productos, inventario and pagos in this process; pagos takes 700 ms to charge.
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    for service in [Service::Productos, Service::Inventario, Service::Pagos] {
        app.start_service(service, any, fast_peers());
    }
    let pagos = FaultProxy::start(app.url(Service::Pagos));
    pagos.fault(Method::POST, "/pagar", Fault::Delay(Duration::from_millis(700)));
    let hielo = app.stocked("Hielo", json!(10), 100).await;

    // pedidos as its own process.
    let port = free_port();
    let mut pedidos = penguin(app.dir.path())
        .args(["serve", "pedidos"])
        .env("PORT", port.to_string())
        .env("SERVICE_TOKEN", TOKEN)
        .env("PRODUCTS_URL", app.url(Service::Productos))
        .env("INVENTORY_URL", app.url(Service::Inventario))
        .env("PAYMENTS_URL", &pagos.url)
        // Far longer than the orders take: an exit that waited it out is seen.
        .env("SHUTDOWN_GRACE", "600")
        .stderr(Stdio::null())
        .spawn()
        .expect("pedidos starts");
    let url = format!("http://127.0.0.1:{port}");
    let http = Http::default();
    http.wait_healthy(&url).await;

    let body =
        json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG"}});
    let orders = (0..20).map(|_| async {
        let answer = http
            .call(Method::POST, format!("{url}/pedidos"))
            .token(TOKEN)
            .json(&body)
            .send()
            .await?;
        Ok::<_, String>((answer.status, answer.body["estado"].as_str().map(str::to_string)))
    });
    let signal = async {
        // Every order is waiting for pagos when the signal comes.
        while pagos.received() < 20 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pedidos.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        sent
    };
    let (answers, sent) = futures_util::future::join(futures_util::future::join_all(orders), signal).await;
    for answer in &answers {
        assert_eq!(answer, &Ok((201, Some("confirmado".to_string()))), "{answers:?}");
    }
    let exited = loop {
        if let Some(status) = pedidos.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(60),
            "pedidos answered every order and still did not exit: it waits out its grace"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(exited.success(), "{exited:?}");
    assert_eq!(
        app.stock(hielo).await,
        (80, 0, 20),
        "every order confirmed its units"
    );
    // Its database file alone, read before anything opens it and copied without the
    // write-ahead log, holds every order: the stop checkpointed it.
    let wal = app.dir.path().join("pedidos.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "everything was checkpointed into pedidos.db");
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(app.dir.path().join("pedidos.db"), copy.path().join("pedidos.db")).unwrap();
    let copied: i64 = rusqlite::Connection::open(copy.path().join("pedidos.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM pedidos", [], |row| row.get(0))
        .unwrap();
    assert_eq!(copied, 20, "a copy of the stopped service's file is a backup");

    let registrados: i64 = rusqlite::Connection::open(app.dir.path().join("pedidos.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM pedidos WHERE etapa <> 'cerrado'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(registrados, 0, "no order is left half-way");

    // Once stopped, pedidos refuses connections rather than hanging them.
    assert!(
        http.call(Method::GET, format!("{url}/health"))
            .send()
            .await
            .is_err()
    );
}
