//! Reservations that are neither confirmed nor released expire on their own.

use std::time::{Duration, Instant};

use penguin::config::Service;
use serde_json::json;

use crate::helpers::TestApp;

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
    assert_eq!(answer.body["error"], "reserva_not_active");
    let answer = app
        .post(Service::Inventario, "/liberar", json!({"reserva_id": id}))
        .await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (200, Some("expirada"))
    );
    assert_eq!(app.stock(1).await, (10, 0, 0));
}
