use penguin::service::Service::Inventario;
use serde_json::json;

use crate::helpers::TestApp;

#[actix_web::test]
async fn stock_sets_the_available_quantity_rather_than_adding() {
    let app = TestApp::spawn_all().await;
    let answer = app
        .post(Inventario, "/stock", json!({"producto_id": 1, "cantidad": 50}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body,
        json!({"producto_id": 1, "cantidad": 50, "reservado": 0, "confirmado": 0})
    );
    let answer = app
        .post(Inventario, "/stock", json!({"producto_id": 1, "cantidad": 7}))
        .await;
    assert_eq!(
        answer.body,
        json!({"producto_id": 1, "cantidad": 7, "reservado": 0, "confirmado": 0})
    );
    assert_eq!(app.stock(1).await, (7, 0, 0));
}

#[actix_web::test]
async fn consultar_returns_404_without_a_stock_row() {
    let app = TestApp::spawn_all().await;
    let answer = app.get(Inventario, "/stock/5").await;
    answer.assert_refused(404, "stock_not_found");
    assert_eq!(app.get(Inventario, "/stock/x").await.status, 400);
}

#[actix_web::test]
async fn listar_stock_returns_every_row_by_product_in_pages() {
    let app = TestApp::spawn_all().await;
    assert_eq!(app.get(Inventario, "/stock").await.body, json!([]));
    for producto_id in [3, 1, 2] {
        app.cargar_stock(producto_id, producto_id * 10).await;
    }
    let reserva = app
        .post(Inventario, "/reservar", json!({"producto_id": 2, "cantidad": 5}))
        .await;
    assert_eq!(reserva.status, 201);
    let all = app.get(Inventario, "/stock").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.body,
        json!([
            {"producto_id": 1, "cantidad": 10, "reservado": 0, "confirmado": 0},
            {"producto_id": 2, "cantidad": 15, "reservado": 5, "confirmado": 0},
            {"producto_id": 3, "cantidad": 30, "reservado": 0, "confirmado": 0},
        ])
    );
    let page = app.get(Inventario, "/stock?limit=1&offset=1").await;
    assert_eq!(
        page.body.as_array().map(|p| p[0]["producto_id"].clone()),
        Some(json!(2))
    );
    assert_eq!(app.get(Inventario, "/stock?offset=9").await.body, json!([]));
    let refused = app.get(Inventario, "/stock?limit=0").await;
    refused.assert_refused(422, "invalid_limit");
    assert_eq!(app.get(Inventario, "/stock?limit=x").await.status, 400);
}

#[actix_web::test]
async fn reservar_takes_units_out_at_once() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let answer = app
        .post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 4}))
        .await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        answer.body,
        json!({"reserva_id": 1, "producto_id": 1, "cantidad": 4, "estado": "activa"})
    );
    assert_eq!(app.stock(1).await, (6, 4, 0));
}

#[actix_web::test]
async fn reservar_returns_409_when_stock_is_short_and_404_without_a_row() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 3).await;
    let answer = app
        .post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 4}))
        .await;
    answer.assert_refused(409, "insufficient_stock");
    assert_eq!(app.stock(1).await, (3, 0, 0));
    let answer = app
        .post(Inventario, "/reservar", json!({"producto_id": 2, "cantidad": 1}))
        .await;
    assert_eq!(answer.status, 404);
}

#[actix_web::test]
async fn liberar_returns_the_units_once_however_often_it_is_called() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let reserva = app
        .post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 4}))
        .await;
    let id = reserva.body["reserva_id"].as_i64().unwrap();
    for _ in 0..2 {
        let answer = app.post(Inventario, "/liberar", json!({"reserva_id": id})).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["reserva_id"], id);
        assert_eq!(answer.body["estado"], "liberada");
        assert_eq!(app.stock(1).await, (10, 0, 0));
    }
    let answer = app.post(Inventario, "/liberar", json!({"reserva_id": 999})).await;
    answer.assert_refused(404, "reserva_not_found");
}

#[actix_web::test]
async fn bad_bodies_are_refused_and_change_nothing() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    for (path, body, status) in [
        ("/stock", json!({"producto_id": 1, "cantidad": -1}), 422),
        ("/stock", json!({"producto_id": 0, "cantidad": 1}), 422),
        ("/stock", json!({"producto_id": 1, "cantidad": 1.5}), 400),
        ("/stock", json!({"producto_id": "1", "cantidad": 1}), 400),
        ("/stock", json!({"producto_id": 1}), 400),
        ("/reservar", json!({"producto_id": 1, "cantidad": 0}), 422),
        ("/reservar", json!({"producto_id": 1, "cantidad": -3}), 422),
        ("/reservar", json!({"producto_id": 1, "cantidad": 1, "x": 1}), 400),
        ("/liberar", json!({"reserva_id": "a"}), 400),
        ("/liberar", json!({}), 400),
    ] {
        let answer = app.post(Inventario, path, body.clone()).await;
        assert_eq!(answer.status, status, "{path} {body}: {answer:?}");
        assert!(answer.body["error"].is_string(), "{answer:?}");
    }
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

#[actix_web::test]
async fn concurrent_reservations_never_take_the_same_unit_twice() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 25).await;
    let attempts =
        (0..60).map(|_| app.post(Inventario, "/reservar", json!({"producto_id": 1, "cantidad": 1})));
    let answers = futures_util::future::join_all(attempts).await;
    let made = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers.iter().filter(|a| a.status == 409).count();
    assert_eq!((made, refused), (25, 35));
    assert_eq!(app.stock(1).await, (0, 25, 0));
}
