use penguin::service::Service::Pedidos;
use serde_json::json;

use crate::helpers::TestApp;

#[actix_web::test]
async fn an_order_shows_its_lines_prices_and_payment() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10.25), 10).await;
    let pez = app.stocked("Pez", json!(3), 10).await;
    let answer = app.pedir(&[(hielo, 2), (pez, 3)], false).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let pedido = &answer.body;
    assert_eq!(pedido["estado"], "confirmado");
    assert_eq!(pedido["total"], json!(29.5));
    assert_eq!(pedido["moneda"], "PYG");
    assert_eq!(pedido["medio"], "tarjeta");
    assert!(pedido["pago_id"].is_i64());
    assert!(pedido["creado_en"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pedido["items"][0]["precio_unitario"], json!(10.25));
    assert_eq!(pedido["items"][0]["subtotal"], json!(20.5));
    assert_eq!(pedido["items"][1]["subtotal"], json!(9));
    assert!(pedido["items"][1]["reserva_id"].is_i64());

    let id = pedido["id"].as_i64().unwrap();
    let stored = app.get(Pedidos, &format!("/pedidos/{id}")).await;
    assert_eq!(stored.status, 200);
    assert_eq!(&stored.body, pedido);
    assert_eq!(app.get(Pedidos, "/pedidos").await.body, json!([pedido]));
}

#[actix_web::test]
async fn lines_of_the_same_product_are_merged() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(1), 10).await;
    let answer = app.pedir(&[(hielo, 2), (hielo, 3)], false).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(answer.body["items"][0]["cantidad"], 5);
    assert_eq!(app.stock(hielo).await, (5, 0, 5));
}

#[actix_web::test]
async fn obtener_returns_404_for_an_unknown_order() {
    let app = TestApp::spawn_all().await;
    let answer = app.get(Pedidos, "/pedidos/42").await;
    answer.assert_refused(404, "pedido_not_found");
    assert_eq!(app.get(Pedidos, "/pedidos/-1").await.status, 422);
    assert_eq!(app.get(Pedidos, "/pedidos/uno").await.status, 400);
}

#[actix_web::test]
async fn invalid_orders_are_refused_before_anything_is_recorded() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(1), 10).await;
    let pago = json!({"medio": "tarjeta", "moneda": "PYG"});
    let many: Vec<_> = (1..=101)
        .map(|i| json!({"producto_id": i, "cantidad": 1}))
        .collect();
    for (body, status) in [
        (json!({"items": [], "pago": pago}), 422),
        (json!({"items": many, "pago": pago}), 422),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": 0}], "pago": pago}),
            422,
        ),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": -2}], "pago": pago}),
            422,
        ),
        (
            json!({"items": [{"producto_id": 0, "cantidad": 1}], "pago": pago}),
            422,
        ),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": {"medio": "", "moneda": "PYG"}}),
            422,
        ),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": 1.5}], "pago": pago}),
            400,
        ),
        (
            json!({"items": [{"producto_id": hielo, "cantida": 1}], "pago": pago}),
            400,
        ),
        (json!({"items": [{"producto_id": hielo, "cantidad": 1}]}), 400),
        (json!({"items": "all", "pago": pago}), 400),
        (json!([[[hielo, 1]], ["tarjeta", "PYG"]]), 400),
        (json!({"items": [[hielo, 1]], "pago": pago}), 400),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": ["tarjeta", "PYG"]}),
            400,
        ),
        (
            json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": pago, "total": 1}),
            400,
        ),
    ] {
        let answer = app.post(Pedidos, "/pedidos", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        assert!(answer.body["error"].is_string() && answer.body["detail"].is_string());
    }
    assert_eq!(app.get(Pedidos, "/pedidos").await.body, json!([]));
    assert_eq!(app.stock(hielo).await, (10, 0, 0));
}

#[actix_web::test]
async fn the_total_comes_from_productos_not_from_the_request() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(7), 10).await;
    let answer = app
        .post(
            Pedidos,
            "/pedidos",
            json!({"items": [{"producto_id": hielo, "cantidad": 2, "precio_unitario": 0}],
                   "pago": {"medio": "tarjeta", "moneda": "PYG"}}),
        )
        .await;
    assert_eq!(
        answer.status, 400,
        "a price in the request is refused, never used"
    );
    let answer = app.pedir(&[(hielo, 2)], false).await;
    assert_eq!(answer.body["total"], 14);
}
