//! Reservations that are neither confirmed nor released expire on their own.

use std::time::{Duration, Instant};

use penguin::service::Service;
use serde_json::json;

use penguin::config::PeerSettings;

use crate::helpers::{Script, ScriptedPeer, TestApp, fast_peers};

#[actix_web::test]
async fn a_reservation_with_a_short_ttl_is_released_on_its_own() {
    let mut app = TestApp::empty();
    app.start_service_with_ttl(Service::Inventario, Duration::from_millis(300));
    app.cargar_stock(1, 10).await;
    let reserva = app
        .post(
            Service::Inventario,
            "/reservar",
            json!({"producto_id": 1, "cantidad": 4}),
        )
        .await;
    assert_eq!(app.stock(1).await, (6, 4, 0));

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.stock(1).await != (10, 0, 0) {
        assert!(Instant::now() < deadline, "the reservation never expired");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let id = reserva.body["reserva_id"].as_i64().unwrap();
    let answer = app
        .post(Service::Inventario, "/confirmar", json!({"reserva_id": id}))
        .await;
    assert_eq!(answer.status, 409, "an expired reservation cannot be confirmed");
    assert_eq!(answer.body["error"], "reserva_expired");
    let answer = app
        .post(Service::Inventario, "/liberar", json!({"reserva_id": id}))
        .await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (200, Some("expirada"))
    );
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

const APPROVED: &str = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 99\r\n\
                        connection: close\r\n\r\n{\"pago_id\": 9, \"estado\": \"aprobado\", \"monto\": 10, \
                        \"moneda\": \"PYG\", \"medio\": \"t\", \"referencia\": \"r\"}";

/// productos and inventario (reservations lasting `ttl`) for real, pedidos with a pagos
/// that approves every charge after 600 ms.
async fn shop_with_slow_pagos(ttl: Duration) -> (TestApp, ScriptedPeer, i64) {
    let slow_pagos = ScriptedPeer::start(Script::Slow(Duration::from_millis(600), APPROVED)).await;
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    app.start_service(Service::Productos, any, fast_peers());
    app.start_service_with_ttl(Service::Inventario, ttl);
    let peers = PeerSettings {
        products_url: app.url(Service::Productos).to_string(),
        inventory_url: app.url(Service::Inventario).to_string(),
        payments_url: slow_pagos.url(),
        ..fast_peers()
    };
    app.start_service(Service::Pedidos, any, peers);
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    (app, slow_pagos, hielo)
}

#[actix_web::test]
async fn an_order_charged_after_the_reservation_ttl_still_keeps_its_units() {
    let (app, slow_pagos, hielo) = shop_with_slow_pagos(Duration::from_millis(200)).await;
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["estado"], "confirmado");
    assert_eq!(slow_pagos.requests(), 1);
    app.wait_until_expiry_passes_now(hielo).await;
    assert_eq!(app.stock(hielo).await, (9, 0, 1), "an order's lote never expires");
}

#[actix_web::test]
async fn a_lote_released_before_the_charge_answers_fails_the_order_and_refunds_it() {
    let (app, slow_pagos, hielo) = shop_with_slow_pagos(Duration::from_secs(600)).await;
    let order = app.pedir(&[(hielo, 1)], false);
    let release = async {
        // While pagos has the charge in hand, someone releases the order's lote by hand.
        while slow_pagos.requests() == 0 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        // The order's key at its peers: its database's prefix, its id and its nonce.
        let clave: String = rusqlite::Connection::open(app.dir.path().join("pedidos.db"))
            .unwrap()
            .query_row(
                "SELECT prefijo || '-' || p.id || '-' || printf('%x', p.nonce) FROM instancia, pedidos p WHERE p.id = 1",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let answer = app
            .post(Service::Inventario, "/reservas/liberar", json!({"clave": clave}))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    };
    let (answer, ()) = futures_util::future::join(order, release).await;
    answer.assert_refused(409, "reserva_released");
    assert_eq!(answer.body["estado"], "fallido");
    assert!(
        answer.body["detail"].as_str().unwrap().contains("refunded"),
        "{answer:?}"
    );
    assert_eq!(slow_pagos.requests(), 2, "the charge, then its refund");
    assert_eq!(app.stock(hielo).await, (10, 0, 0), "no unit stays held or leaves");
}
