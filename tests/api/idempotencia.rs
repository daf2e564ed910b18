//! Retried requests never act twice: orders by Idempotency-Key, reservations by key,
//! charges by referencia.

use actix_web::http::Method;
use penguin::service::Service::{Inventario, Pagos, Pedidos};
use serde_json::{Value, json};

use crate::helpers::{TOKEN, TestApp};

async fn pedir_con_clave(app: &TestApp, clave: &str, body: &Value) -> crate::helpers::Answer {
    app.post_with_key(Pedidos, "/pedidos", body, clave).await
}

fn orden(producto_id: i64, cantidad: i64) -> Value {
    json!({"items": [{"producto_id": producto_id, "cantidad": cantidad}], "pago": {"medio": "tarjeta", "moneda": "PYG"}})
}

#[actix_web::test]
async fn the_same_key_sent_twenty_times_at_once_places_one_order_and_one_charge() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 100).await;
    let body = orden(hielo, 3);
    let answers =
        futures_util::future::join_all((0..20).map(|_| pedir_con_clave(&app, "compra-42", &body))).await;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{answer:?}");
        assert_eq!(answer.body, answers[0].body, "every retry gets the same answer");
    }
    assert_eq!(
        app.get(Pedidos, "/pedidos").await.body.as_array().unwrap().len(),
        1
    );
    assert_eq!(app.get(Pagos, "/pagos").await.body.as_array().unwrap().len(), 1);
    assert_eq!(app.stock(hielo).await, (97, 0, 3));
}

#[actix_web::test]
async fn a_failed_order_is_replayed_with_its_failure() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 1).await;
    let body = orden(hielo, 5);
    let first = pedir_con_clave(&app, "corta", &body).await;
    assert_eq!(first.status, 409);
    app.cargar_stock(hielo, 10).await;
    let again = pedir_con_clave(&app, "corta", &body).await;
    assert_eq!(
        (again.status, &again.body),
        (409, &first.body),
        "the key names the first order"
    );
    assert_eq!(
        app.get(Pedidos, "/pedidos").await.body.as_array().unwrap().len(),
        1
    );
}

#[actix_web::test]
async fn the_same_key_with_another_body_is_refused_with_422() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 100).await;
    assert_eq!(pedir_con_clave(&app, "k-1", &orden(hielo, 1)).await.status, 201);
    let answer = pedir_con_clave(&app, "k-1", &orden(hielo, 2)).await;
    answer.assert_refused(422, "idempotency_key_reused");
    assert_eq!(app.stock(hielo).await, (99, 0, 1));
    let answer = pedir_con_clave(&app, "no spaces allowed", &orden(hielo, 1)).await;
    assert_eq!(answer.status, 422);
}

#[actix_web::test]
async fn a_reservation_key_reserves_once() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let body = json!({"producto_id": 1, "cantidad": 4});
    let first = app
        .post_with_key(Inventario, "/reservar", &body, "pedido-7-0")
        .await;
    let second = app
        .post_with_key(Inventario, "/reservar", &body, "pedido-7-0")
        .await;
    assert_eq!((first.status, &first.body), (second.status, &second.body));
    assert_eq!(app.stock(1).await, (6, 4, 0));

    // Released by its key, it gives the units back once.
    let answer = app
        .post(Inventario, "/liberar", json!({"clave": "pedido-7-0"}))
        .await;
    assert_eq!(answer.body["estado"], "liberada");
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

#[actix_web::test]
async fn releasing_an_unused_key_stops_a_late_reservation_from_taking_anything() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let answer = app
        .post(Inventario, "/liberar", json!({"clave": "tarde-0"}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["estado"], "liberada");
    let body = json!({"producto_id": 1, "cantidad": 4});
    let late = app.post_with_key(Inventario, "/reservar", &body, "tarde-0").await;
    late.assert_refused(409, "reserva_released");
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

#[actix_web::test]
async fn confirmar_makes_units_leave_for_good() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let reserva = app
        .post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 4}))
        .await;
    let id = reserva.body["reserva_id"].as_i64().unwrap();
    for _ in 0..2 {
        let answer = app
            .post(Inventario, "/confirmar", json!({"reserva_id": id}))
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["estado"], "confirmada");
        assert_eq!(app.stock(1).await, (6, 0, 4));
    }
    let answer = app.post(Inventario, "/liberar", json!({"reserva_id": id})).await;
    assert_eq!(answer.status, 409, "a confirmed reservation cannot be released");
    assert_eq!(app.stock(1).await, (6, 0, 4));

    let otra = app
        .post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 1}))
        .await;
    let otra = otra.body["reserva_id"].as_i64().unwrap();
    app.post(Inventario, "/liberar", json!({"reserva_id": otra}))
        .await;
    let answer = app
        .post(Inventario, "/confirmar", json!({"reserva_id": otra}))
        .await;
    answer.assert_refused(409, "reserva_not_active");
    assert_eq!(
        app.post(Inventario, "/confirmar", json!({"reserva_id": 999}))
            .await
            .status,
        404
    );
    assert_eq!(
        app.post(Inventario, "/confirmar", json!({"reserva_id": 1, "clave": "x"}))
            .await
            .status,
        422
    );
}

#[actix_web::test]
async fn a_confirmed_order_confirms_its_reservations() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let answer = app.pedir(&[(hielo, 3)], false).await;
    assert_eq!(answer.status, 201);
    assert_eq!(app.stock(hielo).await, (7, 0, 3));
}

#[actix_web::test]
async fn a_referencia_is_charged_once() {
    let app = TestApp::spawn_all().await;
    let cobro = json!({"monto": 50, "moneda": "PYG", "medio": "tarjeta", "referencia": "orden-9"});
    let first = app.post(Pagos, "/pagar", cobro.clone()).await;
    let second = app.post(Pagos, "/pagar", cobro).await;
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.body, second.body);
    let request_body = json!({"monto": 60, "moneda": "PYG", "medio": "tarjeta", "referencia": "orden-9"});
    let other = app.post(Pagos, "/pagar", request_body).await;
    other.assert_refused(409, "referencia_in_use");
    assert_eq!(app.get(Pagos, "/pagos").await.body.as_array().unwrap().len(), 1);

    let found = app.get(Pagos, "/pagos/referencia/orden-9").await;
    assert_eq!((found.status, &found.body), (200, &first.body));
    assert_eq!(app.get(Pagos, "/pagos/referencia/otra").await.status, 404);
    let pago_id = first.body["pago_id"].as_i64().unwrap();
    assert_eq!(
        app.get(Pagos, &format!("/pagos/{pago_id}")).await.body,
        first.body
    );
}

#[actix_web::test]
async fn a_voided_referencia_can_never_be_charged_and_a_charge_can_be_refunded() {
    let app = TestApp::spawn_all().await;
    let voided = app.post(Pagos, "/anular", json!({"referencia": "r-1"})).await;
    assert_eq!(
        (voided.status, voided.body["estado"].as_str()),
        (200, Some("anulado"))
    );
    let request_body = json!({"monto": 5, "moneda": "PYG", "medio": "t", "referencia": "r-1"});
    let late = app.post(Pagos, "/pagar", request_body).await;
    late.assert_refused(409, "referencia_void");

    let request_body = json!({"monto": 5, "moneda": "PYG", "medio": "t", "referencia": "r-2"});

    let paid = app.post(Pagos, "/pagar", request_body).await;
    assert_eq!(paid.body["estado"], "aprobado");
    let kept = app.post(Pagos, "/anular", json!({"referencia": "r-2"})).await;
    assert_eq!(kept.body["estado"], "aprobado", "anular never undoes a charge");
    let refunded = app.post(Pagos, "/reembolsar", json!({"referencia": "r-2"})).await;
    assert_eq!(refunded.body["estado"], "reembolsado");
    let again = app.post(Pagos, "/reembolsar", json!({"referencia": "r-2"})).await;
    assert_eq!(again.body, refunded.body);
    let answer = app
        .request(Method::POST, Pagos, "/anular", Some(&json!({})), Some(TOKEN))
        .await;
    assert_eq!(answer.status, 400);
}
