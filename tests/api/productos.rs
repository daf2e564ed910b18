use penguin::service::Service::Productos;
use serde_json::json;

use crate::helpers::TestApp;

#[actix_web::test]
async fn crear_returns_201_with_the_product_and_its_location() {
    let app = TestApp::spawn_all().await;
    let request_body = json!({"nombre": "Hielo Premium", "precio": 10000});
    let answer = app.post(Productos, "/productos", request_body).await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        answer.body,
        json!({"id": 1, "nombre": "Hielo Premium", "precio": 10000})
    );
    assert_eq!(
        answer.headers.get("location").map(|v| v.as_bytes()),
        Some(&b"/productos/1"[..])
    );
}

#[actix_web::test]
async fn prices_keep_exactly_two_decimals() {
    let app = TestApp::spawn_all().await;
    let id = app.crear_producto("Sardina", json!(19.99)).await;
    let answer = app.get(Productos, &format!("/productos/{id}")).await;
    assert_eq!(answer.body["precio"], json!(19.99));
    let id = app.crear_producto("Krill", json!(0.1)).await;
    assert_eq!(
        app.get(Productos, &format!("/productos/{id}")).await.body["precio"],
        json!(0.1)
    );
}

#[actix_web::test]
async fn listar_returns_every_product_in_order_and_pages() {
    let app = TestApp::spawn_all().await;
    for nombre in ["a", "b", "c"] {
        app.crear_producto(nombre, json!(1)).await;
    }
    let answer = app.get(Productos, "/productos").await;
    assert_eq!(answer.status, 200);
    let nombres: Vec<&str> = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["nombre"].as_str().unwrap())
        .collect();
    assert_eq!(nombres, ["a", "b", "c"]);
    let page = app.get(Productos, "/productos?limit=1&offset=1").await;
    assert_eq!(page.body, json!([{"id": 2, "nombre": "b", "precio": 1}]));
    assert_eq!(app.get(Productos, "/productos?limit=0").await.status, 422);
    assert_eq!(app.get(Productos, "/productos?limit=1001").await.status, 422);
    assert_eq!(app.get(Productos, "/productos?limit=abc").await.status, 400);
}

#[actix_web::test]
async fn obtener_returns_404_for_an_unknown_product_and_400_for_a_bad_id() {
    let app = TestApp::spawn_all().await;
    let answer = app.get(Productos, "/productos/99").await;
    answer.assert_refused(404, "producto_not_found");
    assert!(answer.body["detail"].as_str().unwrap().contains("99"));
    assert_eq!(app.get(Productos, "/productos/abc").await.status, 400);
}

#[actix_web::test]
async fn actualizar_changes_only_the_given_fields() {
    let app = TestApp::spawn_all().await;
    let id = app.crear_producto("Hielo", json!(100)).await;
    let answer = app
        .put(Productos, &format!("/productos/{id}"), json!({"precio": 150.5}))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"id": id, "nombre": "Hielo", "precio": 150.5}));
    let answer = app
        .put(
            Productos,
            &format!("/productos/{id}"),
            json!({"nombre": "Hielo Extra"}),
        )
        .await;
    assert_eq!(
        answer.body,
        json!({"id": id, "nombre": "Hielo Extra", "precio": 150.5})
    );
    assert_eq!(
        app.put(Productos, "/productos/99", json!({"precio": 1}))
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn actualizar_refuses_bad_values_and_changes_nothing() {
    let app = TestApp::spawn_all().await;
    let id = app.crear_producto("Hielo", json!(100)).await;
    let path = format!("/productos/{id}");
    for (body, status) in [
        (json!({"precio": -1}), 422),
        (json!({"nombre": ""}), 422),
        (json!({"precio": "1"}), 400),
        (json!({"precio": 1.001}), 422),
        (json!({"cantida": 1}), 400),
    ] {
        let answer = app.put(Productos, &path, body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        assert!(answer.body["error"].is_string() && answer.body["detail"].is_string());
    }
    // null on an optional field means absent: nothing to change.
    let answer = app
        .put(Productos, &path, json!({"nombre": null, "precio": null}))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        app.get(Productos, &path).await.body,
        json!({"id": id, "nombre": "Hielo", "precio": 100})
    );
}

#[actix_web::test]
async fn borrar_returns_204_then_404() {
    let app = TestApp::spawn_all().await;
    let id = app.crear_producto("Hielo", json!(100)).await;
    let path = format!("/productos/{id}");
    let answer = app.delete(Productos, &path).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.body, serde_json::Value::Null);
    assert_eq!(app.get(Productos, &path).await.status, 404);
    assert_eq!(app.delete(Productos, &path).await.status, 404);
}

#[actix_web::test]
async fn crear_refuses_invalid_products_with_a_json_error() {
    let app = TestApp::spawn_all().await;
    for (body, status) in [
        (json!({"nombre": "x", "precio": -1}), 422),
        (json!({"nombre": "x", "precio": 1.234}), 422),
        (json!({"nombre": "x", "precio": 1e300}), 422),
        (json!({"nombre": "   ", "precio": 1}), 422),
        (json!({"nombre": "x".repeat(201), "precio": 1}), 422),
        (json!({"nombre": "x"}), 400),
        (json!({"precio": 1}), 400),
        (json!({"nombre": 5, "precio": 1}), 400),
        (json!({"nombre": "x", "precio": "10"}), 400),
        (json!({"nombre": "x", "precio": null}), 400),
        (json!({"nombre": "x", "precio": 1, "stock": 3}), 400),
        (json!([1, 2]), 400),
        (json!(["arr", 1]), 400),
    ] {
        let answer = app.post(Productos, "/productos", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        assert!(
            answer.body["error"].is_string() && answer.body["detail"].is_string(),
            "{answer:?}"
        );
    }
    assert_eq!(app.get(Productos, "/productos").await.body, json!([]));
}

#[actix_web::test]
async fn names_with_quotes_sql_and_unicode_are_stored_as_given() {
    let app = TestApp::spawn_all().await;
    let nombre = "Robert'); DROP TABLE productos;-- \"🐧\" ñandú";
    let id = app.crear_producto(nombre, json!(1)).await;
    assert_eq!(
        app.get(Productos, &format!("/productos/{id}")).await.body["nombre"],
        nombre
    );
    assert_eq!(
        app.get(Productos, "/productos")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[actix_web::test]
async fn decimals_beyond_what_a_double_holds_are_still_refused() {
    let app = TestApp::spawn_all().await;
    for literal in ["1.999999999999999999999", "0.10000000000000000001", "1e-3"] {
        let body = format!(r#"{{"nombre": "x", "precio": {literal}}}"#);
        let answer = app
            .http
            .call(
                actix_web::http::Method::POST,
                format!("{}/productos", app.url(Productos)),
            )
            .token(crate::helpers::TOKEN)
            .header("Content-Type", "application/json")
            .raw(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (422, Some("invalid_value")),
            "{literal}"
        );
    }
    assert_eq!(app.get(Productos, "/productos").await.body, json!([]));
    assert_eq!(
        app.get(Productos, "/productos?_=123").await.status,
        200,
        "unknown query parameters are ignored"
    );
}

#[actix_web::test]
async fn listar_with_ids_answers_those_products_in_the_order_asked() {
    let app = TestApp::spawn_all().await;
    for (nombre, precio) in [("a", 1), ("b", 2), ("c", 3)] {
        app.crear_producto(nombre, json!(precio)).await;
    }
    let answer = app.get(Productos, "/productos?ids=3,1,99,3").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let ids: Vec<i64> = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [3, 1],
        "unknown ids are left out, repeated ones answered once"
    );
    for (query, status) in [
        ("ids=1,x", 400),
        ("ids=", 400),
        ("ids=0", 422),
        ("ids=1&limit=0", 422),
        ("ids=1&after=-1", 422),
    ] {
        let answer = app.get(Productos, &format!("/productos?{query}")).await;
        assert_eq!(answer.status, status, "{query}: {answer:?}");
        assert!(answer.body["error"].is_string());
    }
}
