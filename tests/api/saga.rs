use penguin::service::Service::{Inventario, Pedidos, Productos};
use serde_json::json;

use crate::helpers::TestApp;

/// The four curl lines of design-es.md, in order, against `serve all`.
#[actix_web::test]
async fn the_original_walkthrough_works_unchanged() {
    let app = TestApp::spawn_all().await;
    let request_body = json!({"nombre": "Hielo Premium", "precio": 10000});
    let producto = app.post(Productos, "/productos", request_body).await;
    assert_eq!(producto.status, 201);
    assert_eq!(producto.body["id"], 1);

    let stock = app
        .post(Inventario, "/stock", json!({"producto_id": 1, "cantidad": 50}))
        .await;
    assert_eq!(stock.status, 200);
    assert_eq!(stock.body["cantidad"], 50);

    let request_body =
        json!({"items":[{"producto_id":1,"cantidad":3}], "pago":{"medio":"tarjeta","moneda":"PYG"}});
    let feliz = app.post(Pedidos, "/pedidos", request_body).await;
    assert_eq!(feliz.status, 201, "{feliz:?}");
    assert_eq!(feliz.body["estado"], "confirmado");
    assert_eq!(feliz.body["total"], 30000);
    assert_eq!(app.stock(1).await, (47, 0, 3));

    let request_body = json!({"items":[{"producto_id":1,"cantidad":2}], "pago":{"medio":"tarjeta","moneda":"PYG","fail":true}});
    let fallo = app.post(Pedidos, "/pedidos", request_body).await;
    fallo.assert_refused(402, "payment_rejected");
    assert_eq!(fallo.body["estado"], "rechazado");
    assert_eq!(
        app.stock(1).await,
        (47, 0, 3),
        "the rejected payment's reservation is released"
    );

    let pedidos = app.get(Pedidos, "/pedidos").await.body;
    let estados: Vec<&str> = pedidos
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["estado"].as_str().unwrap())
        .collect();
    assert_eq!(estados, ["confirmado", "rechazado"]);
}

#[actix_web::test]
async fn a_rejected_payment_returns_every_unit_it_reserved() {
    let app = TestApp::spawn_all().await;
    let a = app.stocked("a", json!(5), 10).await;
    let b = app.stocked("b", json!(6), 10).await;
    let answer = app.pedir(&[(a, 4), (b, 5)], true).await;
    assert_eq!(answer.status, 402);
    assert_eq!(answer.body["estado"], "rechazado");
    assert!(
        answer.body["pago_id"].is_i64(),
        "the rejected payment is recorded"
    );
    assert_eq!(app.stock(a).await, (10, 0, 0));
    assert_eq!(app.stock(b).await, (10, 0, 0));
    let pago = answer.body["pago_id"].as_i64().unwrap();
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains(&pago.to_string())
    );
}

#[actix_web::test]
async fn short_stock_on_a_later_line_releases_the_earlier_ones() {
    let app = TestApp::spawn_all().await;
    let a = app.stocked("a", json!(5), 10).await;
    let b = app.stocked("b", json!(6), 1).await;
    let answer = app.pedir(&[(a, 4), (b, 2)], false).await;
    answer.assert_refused(409, "insufficient_stock");
    assert_eq!(answer.body["estado"], "fallido");
    assert_eq!(
        answer.body["pago_id"],
        serde_json::Value::Null,
        "nothing was charged"
    );
    assert_eq!(app.stock(a).await, (10, 0, 0));
    assert_eq!(app.stock(b).await, (1, 0, 0));
}

#[actix_web::test]
async fn an_unknown_product_fails_the_order_with_404_and_holds_nothing() {
    let app = TestApp::spawn_all().await;
    let a = app.stocked("a", json!(5), 10).await;
    let answer = app.pedir(&[(a, 1), (999, 1)], false).await;
    answer.assert_refused(404, "producto_not_found");
    assert_eq!(answer.body["estado"], "fallido");
    assert_eq!(app.stock(a).await, (10, 0, 0));
    let id = answer.body["id"].as_i64().unwrap();
    assert_eq!(
        app.get(Pedidos, &format!("/pedidos/{id}")).await.body["estado"],
        "fallido"
    );
}

#[actix_web::test]
async fn a_product_without_stock_fails_the_order_with_409() {
    let app = TestApp::spawn_all().await;
    let a = app.crear_producto("a", json!(5)).await;
    let answer = app.pedir(&[(a, 1)], false).await;
    assert_eq!(answer.status, 409, "{answer:?}");
    assert_eq!(answer.body["estado"], "fallido");
}

#[actix_web::test]
async fn fifty_concurrent_orders_for_twenty_units_confirm_exactly_twenty() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(100), 20).await;
    let orders = (0..50).map(|_| app.pedir(&[(hielo, 1)], false));
    let answers = futures_util::future::join_all(orders).await;
    let confirmed = answers.iter().filter(|a| a.status == 201).count();
    let short = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!(
        (confirmed, short),
        (20, 30),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(app.stock(hielo).await, (0, 0, 20));

    let pedidos = app.get(Pedidos, "/pedidos").await.body;
    let count = |estado: &str| {
        pedidos
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["estado"] == estado)
            .count()
    };
    assert_eq!((count("confirmado"), count("fallido")), (20, 30));
}
