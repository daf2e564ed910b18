//! A whole order's lines reserved, confirmed or released in one call (`POST /reservas`,
//! `/reservas/confirmar`, `/reservas/liberar`), all or none, once per key.

use penguin::service::Service::Inventario;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn lote(clave: &str, lineas: &[(i64, i64)]) -> Value {
    let lineas: Vec<Value> = lineas
        .iter()
        .map(|(p, c)| json!({"producto_id": p, "cantidad": c}))
        .collect();
    json!({"clave": clave, "lineas": lineas})
}

#[actix_web::test]
async fn a_lote_reserves_every_line_in_one_call_and_answers_each_reservation() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    app.cargar_stock(2, 10).await;
    let answer = app
        .post(Inventario, "/reservas", lote("p-1", &[(1, 3), (2, 4)]))
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.body["clave"], "p-1");
    assert_eq!(answer.body["estado"], "activa");
    let reservas = answer.body["reservas"].as_array().unwrap();
    assert_eq!(reservas.len(), 2);
    assert_eq!(
        (
            reservas[0]["producto_id"].as_i64(),
            reservas[0]["cantidad"].as_i64()
        ),
        (Some(1), Some(3))
    );
    assert_eq!(
        (
            reservas[1]["producto_id"].as_i64(),
            reservas[1]["cantidad"].as_i64()
        ),
        (Some(2), Some(4))
    );
    assert_eq!(app.stock(1).await, (7, 3, 0));
    assert_eq!(app.stock(2).await, (6, 4, 0));
}

#[actix_web::test]
async fn a_lote_with_one_short_line_reserves_nothing() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    app.cargar_stock(2, 2).await;
    let answer = app
        .post(Inventario, "/reservas", lote("p-1", &[(1, 3), (2, 4)]))
        .await;
    answer.assert_refused(409, "insufficient_stock");
    assert!(
        answer.body["detail"].as_str().unwrap().contains("producto 2"),
        "{answer:?}"
    );
    let answer = app
        .post(Inventario, "/reservas", lote("p-2", &[(1, 3), (3, 1)]))
        .await;
    assert_eq!(answer.status, 404, "a line without a stock row: {answer:?}");
    assert_eq!(
        app.stock(1).await,
        (10, 0, 0),
        "the first line gave its units back"
    );
    assert_eq!(app.stock(2).await, (2, 0, 0));
    // The refused key can be used once stock allows it: nothing was recorded for it.
    app.cargar_stock(2, 4).await;
    let answer = app
        .post(Inventario, "/reservas", lote("p-1", &[(1, 3), (2, 4)]))
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
}

#[actix_web::test]
async fn the_same_key_reserves_once_and_another_lote_with_it_is_refused() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let body = lote("p-7", &[(1, 4)]);
    let first = app.post(Inventario, "/reservas", body.clone()).await;
    let again = app.post(Inventario, "/reservas", body).await;
    assert_eq!((first.status, &first.body), (again.status, &again.body));
    assert_eq!(app.stock(1).await, (6, 4, 0));
    let other = app.post(Inventario, "/reservas", lote("p-7", &[(1, 5)])).await;
    other.assert_refused(422, "idempotency_key_reused");
    assert_eq!(app.stock(1).await, (6, 4, 0));
}

#[actix_web::test]
async fn concurrent_lotes_for_the_last_units_never_take_a_unit_twice() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 20).await;
    app.cargar_stock(2, 100).await;
    // Forty lotes of one unit of 1 and two of 2, plus each lote sent twice at once.
    let bodies: Vec<Value> = (0..40)
        .map(|n| lote(&format!("c-{n}"), &[(2, 2), (1, 1)]))
        .collect();
    let requests = bodies
        .iter()
        .chain(bodies.iter())
        .map(|b| app.post(Inventario, "/reservas", b.clone()));
    let answers = futures_util::future::join_all(requests).await;
    let mut made: Vec<&str> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.body["clave"].as_str().unwrap())
        .collect();
    made.sort_unstable();
    made.dedup();
    assert!(
        answers.iter().all(|a| matches!(a.status, 201 | 409)),
        "{answers:?}"
    );
    assert_eq!(made.len(), 20, "exactly the units there were");
    assert_eq!(app.stock(1).await, (0, 20, 0));
    assert_eq!(
        app.stock(2).await,
        (60, 40, 0),
        "a refused lote holds none of its other lines"
    );
}

#[actix_web::test]
async fn a_lote_is_confirmed_or_released_as_one() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    app.cargar_stock(2, 10).await;
    app.post(Inventario, "/reservas", lote("a", &[(1, 1), (2, 2)]))
        .await;
    app.post(Inventario, "/reservas", lote("b", &[(1, 3), (2, 1)]))
        .await;
    for _ in 0..2 {
        let answer = app
            .post(Inventario, "/reservas/confirmar", json!({"clave": "a"}))
            .await;
        assert_eq!(
            (answer.status, answer.body["estado"].as_str()),
            (200, Some("confirmada"))
        );
    }
    for _ in 0..2 {
        let answer = app
            .post(Inventario, "/reservas/liberar", json!({"clave": "b"}))
            .await;
        assert_eq!(
            (answer.status, answer.body["estado"].as_str()),
            (200, Some("liberada"))
        );
    }
    assert_eq!(app.stock(1).await, (9, 0, 1));
    assert_eq!(app.stock(2).await, (8, 0, 2));

    let answer = app
        .post(Inventario, "/reservas/liberar", json!({"clave": "a"}))
        .await;
    answer.assert_refused(409, "reserva_confirmed");
    let answer = app
        .post(Inventario, "/reservas/confirmar", json!({"clave": "b"}))
        .await;
    answer.assert_refused(409, "reserva_not_active");
    let answer = app
        .post(Inventario, "/reservas/confirmar", json!({"clave": "nunca"}))
        .await;
    assert_eq!(
        (answer.status, answer.body["detail"].as_str()),
        (404, Some(r#"the lote "nunca" does not exist"#))
    );
    assert_eq!(app.stock(1).await, (9, 0, 1));

    // A line of a lote moves only with its lote.
    let linea = app.post(Inventario, "/reservas", lote("c", &[(1, 1)])).await;
    let id = linea.body["reservas"][0]["reserva_id"].as_i64().unwrap();
    let answer = app.post(Inventario, "/liberar", json!({"reserva_id": id})).await;
    answer.assert_refused(409, "reserva_in_lote");
    assert_eq!(app.stock(1).await, (8, 1, 1));
}

#[actix_web::test]
async fn releasing_a_key_first_keeps_a_late_lote_from_taking_anything() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let answer = app
        .post(Inventario, "/reservas/liberar", json!({"clave": "tarde"}))
        .await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (200, Some("liberada"))
    );
    assert_eq!(answer.body["reservas"], json!([]));
    let late = app.post(Inventario, "/reservas", lote("tarde", &[(1, 4)])).await;
    late.assert_refused(409, "reserva_released");
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

#[actix_web::test]
async fn bad_lotes_are_refused_and_change_nothing() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let cien: Vec<(i64, i64)> = (0..101).map(|_| (1, 1)).collect();
    for (path, body, status) in [
        ("/reservas", json!({"clave": "k", "lineas": []}), 422),
        ("/reservas", lote("k", &cien), 422),
        ("/reservas", lote("k", &[(1, 0)]), 422),
        ("/reservas", lote("k", &[(0, 1)]), 422),
        ("/reservas", lote("con espacio", &[(1, 1)]), 422),
        (
            "/reservas",
            json!({"lineas": [{"producto_id": 1, "cantidad": 1}]}),
            400,
        ),
        (
            "/reservas",
            json!({"clave": "k", "lineas": [{"producto_id": 1}]}),
            400,
        ),
        ("/reservas/confirmar", json!({}), 400),
        ("/reservas/liberar", json!({"clave": ""}), 422),
    ] {
        let answer = app.post(Inventario, path, body.clone()).await;
        assert_eq!(answer.status, status, "{path} {body}: {answer:?}");
        assert!(answer.body["error"].is_string(), "{answer:?}");
    }
    assert_eq!(app.stock(1).await, (10, 0, 0));
}

#[actix_web::test]
async fn a_replay_answers_what_the_key_made_as_it_stands_on_both_routes() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let unidades = json!({"producto_id": 1, "cantidad": 2});
    let reserva = app.post_with_key(Inventario, "/reservar", &unidades, "r").await;
    let lote_r = lote("l", &[(1, 3)]);
    let first = app.post(Inventario, "/reservas", lote_r.clone()).await;
    assert_eq!((reserva.status, first.status), (201, 201));
    app.post(Inventario, "/liberar", json!({"clave": "r"})).await;
    app.post(Inventario, "/reservas/liberar", json!({"clave": "l"}))
        .await;

    // Both replays: the first answer's status, the thing as it stands, nothing taken.
    let again = app.post_with_key(Inventario, "/reservar", &unidades, "r").await;
    assert_eq!(
        (
            again.status,
            again.body["estado"].as_str(),
            &again.body["reserva_id"]
        ),
        (201, Some("liberada"), &reserva.body["reserva_id"]),
        "{again:?}"
    );
    let again = app.post(Inventario, "/reservas", lote_r).await;
    assert_eq!(
        (
            again.status,
            again.body["estado"].as_str(),
            &again.body["reservas"][0]["reserva_id"]
        ),
        (201, Some("liberada"), &first.body["reservas"][0]["reserva_id"]),
        "{again:?}"
    );
    assert_eq!(app.stock(1).await, (10, 0, 0), "a replay takes nothing again");

    // The same key with another request is refused on both, released or not.
    let other = app
        .post_with_key(
            Inventario,
            "/reservar",
            &json!({"producto_id": 1, "cantidad": 1}),
            "r",
        )
        .await;
    assert_eq!(other.body["error"], "idempotency_key_reused", "{other:?}");
    let other = app.post(Inventario, "/reservas", lote("l", &[(1, 1)])).await;
    assert_eq!(other.body["error"], "idempotency_key_reused", "{other:?}");
}
