//! The edges a hostile client or a careless one finds: keys twice, encoded bodies,
//! wrong types and numbers out of range, nulls, free orders, replayed keys. Each is
//! refused (or answered) in plain words, and a refusal changes nothing.

use actix_web::http::Method;
use penguin::service::Service::{self, Inventario, Pagos, Pedidos, Productos};
use serde_json::{Value, json};

use crate::helpers::{Answer, TOKEN, TestApp};

async fn raw(app: &TestApp, service: Service, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
    let mut call = app
        .http
        .call(Method::POST, format!("{}{path}", app.url(service)))
        .token(TOKEN)
        .header("Content-Type", "application/json");
    for (name, value) in headers {
        call = call.header(name, value);
    }
    call.raw(body.to_string()).send().await.expect("an answer")
}

fn refused(answer: &Answer, status: u16, words: &[&str]) {
    assert_eq!(answer.status, status, "{answer:?}");
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    for word in words {
        assert!(detail.contains(word), "{detail:?} lacks {word:?}");
    }
}

#[actix_web::test]
async fn a_key_twice_in_an_object_is_refused_naming_it() {
    let app = TestApp::spawn_all().await;
    let answer = raw(
        &app,
        Productos,
        "/productos",
        r#"{"nombre": "x", "precio": -5, "precio": 5}"#,
        &[],
    )
    .await;
    refused(&answer, 400, &["`precio`", "twice"]);
    let answer = raw(
        &app,
        Pagos,
        "/pagar",
        r#"{"monto": 5, "moneda": "PYG", "medio": "t", "fail": true, "fail": false}"#,
        &[],
    )
    .await;
    refused(&answer, 400, &["`fail`", "twice"]);
    assert_eq!(app.get(Productos, "/productos").await.body, json!([]));
    assert_eq!(app.get(Pagos, "/pagos").await.body, json!([]));
}

#[actix_web::test]
async fn an_encoded_body_is_refused_with_415() {
    let app = TestApp::spawn_all().await;
    let body = r#"{"nombre": "x", "precio": 5}"#;
    let answer = raw(
        &app,
        Productos,
        "/productos",
        body,
        &[("Content-Encoding", "gzip")],
    )
    .await;
    refused(&answer, 415, &["gzip"]);
    assert_eq!(app.get(Productos, "/productos").await.body, json!([]));
    let answer = raw(
        &app,
        Productos,
        "/productos",
        body,
        &[("Content-Encoding", "identity")],
    )
    .await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[actix_web::test]
async fn refusals_name_the_field_or_parameter_in_plain_words() {
    let app = TestApp::spawn_all().await;
    let pedido = |items: Value| json!({"items": items, "pago": {"medio": "t", "moneda": "PYG"}});
    let answer = app
        .post(
            Pedidos,
            "/pedidos",
            pedido(json!([{"producto_id": "x", "cantidad": 1}])),
        )
        .await;
    refused(&answer, 400, &["`items[0].producto_id`", "whole number"]);
    let answer = app
        .post(
            Pedidos,
            "/pedidos",
            pedido(json!([{"producto_id": 1, "cantidad": 1e22}])),
        )
        .await;
    refused(&answer, 422, &["`items[0].cantidad`", "between 1 and 1000000"]);
    let answer = app
        .post(
            Pedidos,
            "/pedidos",
            pedido(json!([{"producto_id": 1, "cantidad": 1.5}])),
        )
        .await;
    refused(&answer, 400, &["`items[0].cantidad`", "whole number"]);
    let answer = app.get(Productos, "/productos?limit=-1").await;
    refused(&answer, 422, &["`limit`", "between 1 and 1000"]);
    let answer = app.get(Productos, "/productos?limit=abc").await;
    refused(&answer, 400, &["`limit`", "whole number"]);
    let answer = app.get(Pedidos, "/pedidos?offset=-1").await;
    refused(&answer, 422, &["`offset`"]);
    let answer = app.get(Pagos, "/pagos?offset=5000000000").await;
    assert_eq!(
        (answer.status, &answer.body),
        (200, &json!([])),
        "an offset past the end is an empty page"
    );
    assert_eq!(
        app.get(Pedidos, "/pedidos").await.body,
        json!([]),
        "refusals record no order"
    );
}

#[actix_web::test]
async fn an_empty_idempotency_key_is_refused_like_any_malformed_key() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_all().await;
    let addr = app.url(Inventario).trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"producto_id": 1, "cantidad": 1}"#;
    let request = format!(
        "POST /reservar HTTP/1.1\r\nHost: penguin\r\nAuthorization: Bearer {TOKEN}\r\nIdempotency-Key: \r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("invalid_key"), "{answer}");
}

#[actix_web::test]
async fn an_id_beyond_64_bits_names_nothing_and_one_below_1_is_refused() {
    let app = TestApp::spawn_all().await;
    let answer = app.get(Productos, "/productos/99999999999999999999").await;
    answer.assert_refused(404, "producto_not_found");
    for (service, path) in [
        (Productos, "/productos/0"),
        (Productos, "/productos/-3"),
        (Inventario, "/stock/0"),
        (Pagos, "/pagos/-1"),
        (Pedidos, "/pedidos/0"),
    ] {
        let answer = app.get(service, path).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (422, Some("invalid_value")),
            "{path}"
        );
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("positive integer") && detail.contains("id`"),
            "{detail}"
        );
    }
    let refused = app.put(Productos, "/productos/0", json!({"precio": 1})).await;
    assert_eq!(refused.status, 422);
    assert_eq!(app.delete(Productos, "/productos/-1").await.status, 422);
    assert_eq!(app.get(Productos, "/productos/abc").await.status, 400);
    assert_eq!(
        app.get(Pedidos, "/pedidos/99999999999999999999").await.status,
        404
    );
    assert_eq!(app.get(Pagos, "/pagos/18446744073709551616").await.status, 404);
    // A whole number however JSON writes it: `1e3` is producto 1000, which has no stock.
    assert_eq!(app.get(Inventario, "/stock/1e3").await.status, 404);
    assert_eq!(app.get(Inventario, "/stock/1.5").await.status, 400);
    let answer = app
        .post(Inventario, "/stock", json!({"producto_id": 1e20, "cantidad": 1}))
        .await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (404, Some("stock_not_found")),
        "{answer:?}"
    );
    let answer = raw(
        &app,
        Pedidos,
        "/pedidos",
        r#"{"items": [{"producto_id": 18446744073709551616, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG"}}"#,
        &[],
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (404, Some("producto_not_found")),
        "{answer:?}"
    );
    assert_eq!(app.get(Pedidos, "/pedidos").await.body, json!([]));
}

#[actix_web::test]
async fn lines_of_one_product_over_the_limit_name_the_product_and_their_sum() {
    let app = TestApp::spawn_all().await;
    let hielo = app.crear_producto("Hielo", json!(1)).await;
    let answer = app
        .post(
            Pedidos,
            "/pedidos",
            json!({"items": [{"producto_id": hielo, "cantidad": 600000}, {"producto_id": hielo, "cantidad": 600000}],
                   "pago": {"medio": "t", "moneda": "PYG"}}),
        )
        .await;
    refused(&answer, 422, &[&format!("producto {hielo}"), "1200000"]);
}

#[actix_web::test]
async fn null_on_an_optional_field_means_absent() {
    let app = TestApp::spawn_all().await;
    // As the Flask demo's pedidos sends it when the client gave no referencia.
    let request_body = json!({"monto": 5, "moneda": "PYG", "medio": "t", "referencia": null, "fail": null});
    let answer = app.post(Pagos, "/pagar", request_body).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (201, Some("aprobado")),
        "{answer:?}"
    );
    let hielo = app.stocked("Hielo", json!(1), 5).await;
    let request_body = json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG", "fail": null}});
    let answer = app.post(Pedidos, "/pedidos", request_body).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    let request_body = json!({"producto_id": hielo, "cantidad": 1});
    let reserva = app.post(Inventario, "/reservar", request_body).await;
    let id = reserva.body["reserva_id"].as_i64().unwrap();
    let answer = app
        .post(Inventario, "/liberar", json!({"reserva_id": id, "clave": null}))
        .await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (200, Some("liberada")),
        "{answer:?}"
    );
}

#[actix_web::test]
async fn a_free_order_is_confirmed_without_a_charge() {
    let app = TestApp::spawn_all().await;
    let regalo = app.stocked("Regalo", json!(0), 5).await;
    for fail in [false, true] {
        let answer = app.pedir(&[(regalo, 2)], fail).await;
        assert_eq!(
            (answer.status, answer.body["estado"].as_str()),
            (201, Some("confirmado")),
            "{answer:?}"
        );
        assert_eq!(answer.body["total"], 0);
        assert_eq!(answer.body["pago_id"], Value::Null, "nothing was charged");
    }
    assert_eq!(
        app.get(Pagos, "/pagos").await.body,
        json!([]),
        "pagos was never asked"
    );
    assert_eq!(app.stock(regalo).await, (1, 0, 4));
}

#[actix_web::test]
async fn a_replayed_reservation_key_answers_the_reservation_as_it_stands() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let body = json!({"producto_id": 1, "cantidad": 2});
    let first = app.post_with_key(Inventario, "/reservar", &body, "k-1").await;
    let id = first.body["reserva_id"].as_i64().unwrap();
    app.post(Inventario, "/confirmar", json!({"reserva_id": id}))
        .await;
    let again = app.post_with_key(Inventario, "/reservar", &body, "k-1").await;
    assert_eq!(
        (
            again.status,
            again.body["reserva_id"].as_i64(),
            again.body["estado"].as_str()
        ),
        (201, Some(id), Some("confirmada"))
    );

    let second = app.post_with_key(Inventario, "/reservar", &body, "k-2").await;
    let id = second.body["reserva_id"].as_i64().unwrap();
    app.post(Inventario, "/liberar", json!({"reserva_id": id})).await;
    let again = app.post_with_key(Inventario, "/reservar", &body, "k-2").await;
    assert_eq!(
        (
            again.status,
            again.body["reserva_id"].as_i64(),
            again.body["estado"].as_str()
        ),
        (201, Some(id), Some("liberada"))
    );
    assert_eq!(app.stock(1).await, (8, 0, 2), "a replay takes nothing again");

    // A key released before any reservation was made with it is the one conflict.
    app.post(Inventario, "/liberar", json!({"clave": "k-3"})).await;
    let late = app.post_with_key(Inventario, "/reservar", &body, "k-3").await;
    late.assert_refused(409, "reserva_released");
}

#[actix_web::test]
async fn every_json_answer_ends_with_a_newline() {
    let app = TestApp::spawn_all().await;
    let created = app
        .post(Productos, "/productos", json!({"nombre": "x", "precio": 1}))
        .await;
    let refused = app.get(Productos, "/productos/9").await;
    let unauthorized = app
        .http
        .call(Method::GET, format!("{}/productos", app.url(Productos)))
        .send()
        .await
        .unwrap();
    for answer in [&created, &refused, &unauthorized] {
        assert!(answer.text.ends_with("}\n"), "{:?}", answer.text);
        let length: usize = answer
            .headers
            .get("content-length")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, answer.text.len());
    }
}

#[actix_web::test]
async fn a_fraction_in_any_whole_number_field_is_refused_as_a_wrong_type_naming_it() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let places: [(Service, &str, &str, &str); 7] = [
        (
            Inventario,
            "/stock",
            r#"{"producto_id": N, "cantidad": 1}"#,
            "`producto_id`",
        ),
        (
            Inventario,
            "/stock",
            r#"{"producto_id": 1, "cantidad": N}"#,
            "`cantidad`",
        ),
        (
            Inventario,
            "/reservar",
            r#"{"producto_id": N, "cantidad": 1}"#,
            "`producto_id`",
        ),
        (
            Inventario,
            "/reservas",
            r#"{"clave": "k", "lineas": [{"producto_id": 1, "cantidad": N}]}"#,
            "`lineas[0].cantidad`",
        ),
        (Inventario, "/liberar", r#"{"reserva_id": N}"#, "`reserva_id`"),
        (Inventario, "/confirmar", r#"{"reserva_id": N}"#, "`reserva_id`"),
        (
            Pedidos,
            "/pedidos",
            r#"{"items": [{"producto_id": 1, "cantidad": N}], "pago": {"medio": "t", "moneda": "PYG"}}"#,
            "`items[0].cantidad`",
        ),
    ];
    for number in [
        "1.5",
        "1.123",
        "2.589e-42",
        "1.0000000000000000001",
        "1e-400",
        "-0.5",
    ] {
        for (service, path, body, field) in places {
            let answer = raw(&app, service, path, &body.replace('N', number), &[]).await;
            assert_eq!(
                answer.body["error"].as_str(),
                Some("invalid_body"),
                "{path} {number}: {answer:?}"
            );
            refused(&answer, 400, &[field, "whole number", number]);
        }
    }
    // A whole number too large for any id or quantity breaks a limit, however written.
    let answer = raw(
        &app,
        Inventario,
        "/reservar",
        r#"{"producto_id": 1e400, "cantidad": 1}"#,
        &[],
    )
    .await;
    refused(&answer, 404, &["`producto_id`"]);
    let answer = raw(
        &app,
        Inventario,
        "/reservar",
        r#"{"producto_id": 1, "cantidad": 1e400}"#,
        &[],
    )
    .await;
    refused(&answer, 422, &["`cantidad`", "between 1 and 1000000"]);
    assert_eq!(app.stock(1).await, (10, 0, 0), "no refusal took a unit");
    assert_eq!(app.get(Pedidos, "/pedidos").await.body, json!([]));
}

#[actix_web::test]
async fn money_with_more_than_two_decimals_is_refused_naming_the_field() {
    let app = TestApp::spawn_all().await;
    for number in ["1.123", "1.999999999999999999999", "2.589e-42"] {
        let answer = raw(
            &app,
            Productos,
            "/productos",
            &format!(r#"{{"nombre": "x", "precio": {number}}}"#),
            &[],
        )
        .await;
        refused(&answer, 422, &["`precio`", "two decimals", number]);
        let body = format!(r#"{{"monto": {number}, "moneda": "PYG", "medio": "t"}}"#);
        let answer = raw(&app, Pagos, "/pagar", &body, &[]).await;
        refused(&answer, 422, &["`monto`", "two decimals"]);
    }
    let answer = raw(
        &app,
        Productos,
        "/productos",
        r#"{"nombre": "x", "precio": 1e400}"#,
        &[],
    )
    .await;
    refused(&answer, 422, &["precio"]);
    assert_eq!(app.get(Productos, "/productos").await.body, json!([]));
    assert_eq!(app.get(Pagos, "/pagos").await.body, json!([]));
}
