//! The numbering of the changes inventario and pagos make for pedidos (`?visto=`,
//! `GET /cambios`, `POST /secuencia`): how pedidos tells that one of them was restored
//! from an older copy. Real services on real ports; the restore itself is in
//! `restore.rs` and the simulation.

use penguin::service::Service::{Inventario, Pagos};
use serde_json::json;

use crate::helpers::TestApp;

fn lote(clave: &str) -> serde_json::Value {
    json!({"clave": clave, "lineas": [{"producto_id": 1, "cantidad": 2}]})
}

#[actix_web::test]
async fn inventario_numbers_each_change_asked_with_visto_and_refuses_one_from_a_caller_ahead_of_it() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    let reserved = app.post(Inventario, "/reservas?visto=0", lote("p-1-a")).await;
    assert_eq!(
        (reserved.status, reserved.body["secuencia"].as_i64()),
        (201, Some(1)),
        "{reserved:?}"
    );
    let again = app.post(Inventario, "/reservas?visto=1", lote("p-1-a")).await;
    assert_eq!(
        (again.status, again.body["secuencia"].as_i64()),
        (201, Some(1)),
        "a replay changes nothing and gets no new number: {again:?}"
    );
    let request_body = json!({"clave": "p-1-a"});
    let confirmed = app
        .post(Inventario, "/reservas/confirmar?visto=1", request_body)
        .await;
    assert_eq!(
        (confirmed.status, confirmed.body["secuencia"].as_i64()),
        (200, Some(2))
    );
    // Without `visto` a change is neither fenced nor numbered: other clients are unchanged.
    let plain = app.post(Inventario, "/reservas", lote("p-2-b")).await;
    assert_eq!(plain.status, 201, "{plain:?}");
    assert!(plain.body.get("secuencia").is_none(), "{plain:?}");

    // A caller that has seen more than this database holds: a restored copy.
    let stale = app.post(Inventario, "/reservas?visto=50", lote("p-3-c")).await;
    assert_eq!(
        (stale.status, stale.body["error"].as_str()),
        (409, Some("stale_copy")),
        "{stale:?}"
    );
    assert_eq!(app.stock(1).await, (6, 2, 2), "the refused change took nothing");
    let listed = app.get(Inventario, "/cambios?prefijo=p-&desde=0").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(listed.body["secuencia"], 2);
    assert_eq!(listed.body["rezagada"], 50, "it remembers it was found behind");
    let claves: Vec<&str> = listed.body["lotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["clave"].as_str().unwrap())
        .collect();
    assert_eq!(claves, ["p-1-a"], "only numbered changes are listed");
    let after = app.get(Inventario, "/cambios?prefijo=p-&desde=2").await;
    assert_eq!(after.body["lotes"], json!([]));
    let one = app.get(Inventario, "/cambios/p-2-b").await;
    assert_eq!(one.body["lotes"][0]["estado"], "activa", "{one:?}");

    // Healed: the number is raised, the mark lifted, and changes flow again.
    let raised = app.post(Inventario, "/secuencia", json!({"secuencia": 50})).await;
    assert_eq!(
        (raised.status, raised.body["secuencia"].as_i64()),
        (200, Some(50))
    );
    let lowered = app.post(Inventario, "/secuencia", json!({"secuencia": 3})).await;
    assert_eq!(lowered.body["secuencia"], 50, "it never goes back");
    let listed = app.get(Inventario, "/cambios?prefijo=p-&desde=0").await;
    assert_eq!(listed.body["rezagada"], serde_json::Value::Null);
    let next = app.post(Inventario, "/reservas?visto=50", lote("p-3-c")).await;
    assert_eq!(
        (next.status, next.body["secuencia"].as_i64()),
        (201, Some(51)),
        "{next:?}"
    );
}

#[actix_web::test]
async fn pagos_numbers_its_charges_voids_and_refunds_the_same_way() {
    let app = TestApp::spawn_all().await;
    let cobro = json!({"monto": 10, "moneda": "PYG", "medio": "tarjeta", "referencia": "p-1-a"});
    let charged = app.post(Pagos, "/pagar?visto=0", cobro.clone()).await;
    assert_eq!(
        (charged.status, charged.body["secuencia"].as_i64()),
        (201, Some(1)),
        "{charged:?}"
    );
    let refunded = app
        .post(Pagos, "/reembolsar?visto=1", json!({"referencia": "p-1-a"}))
        .await;
    assert_eq!(
        (
            refunded.body["estado"].as_str(),
            refunded.body["secuencia"].as_i64()
        ),
        (Some("reembolsado"), Some(2))
    );
    let voided = app
        .post(Pagos, "/anular?visto=2", json!({"referencia": "p-2-b"}))
        .await;
    assert_eq!(voided.body["secuencia"], 3, "{voided:?}");
    let request_body = json!({"monto": 5, "moneda": "PYG", "medio": "t", "referencia": "p-3"});
    let stale = app.post(Pagos, "/pagar?visto=9", request_body).await;
    stale.assert_refused(409, "stale_copy");
    let none = app.get(Pagos, "/pagos/referencia/p-3").await;
    assert_eq!(none.status, 404, "the refused charge was not made: {none:?}");
    let listed = app.get(Pagos, "/cambios?prefijo=p-&desde=1").await;
    let referencias: Vec<&str> = listed.body["pagos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["referencia"].as_str().unwrap())
        .collect();
    assert_eq!(referencias, ["p-1-a", "p-2-b"], "{listed:?}");
    assert_eq!(listed.body["rezagada"], 9);
}

#[actix_web::test]
async fn bad_numbers_and_listings_get_clear_json_errors_and_change_nothing() {
    let app = TestApp::spawn_all().await;
    app.cargar_stock(1, 10).await;
    for (path, status, code) in [
        ("/reservas?visto=abc", 400, "invalid_query"),
        ("/reservas?visto=-1", 422, "invalid_value"),
        ("/reservas?visto=1.5", 400, "invalid_query"),
    ] {
        let answer = app.post(Inventario, path, lote("p-9")).await;
        assert_eq!(
            (answer.status, answer.body["error"].as_str()),
            (status, Some(code)),
            "{path}: {answer:?}"
        );
    }
    assert_eq!(app.stock(1).await, (10, 0, 0));
    for service in [Inventario, Pagos] {
        for (path, status, code) in [
            ("/cambios", 422, "invalid_key"),
            ("/cambios?prefijo=", 422, "invalid_key"),
            ("/cambios?prefijo=p&desde=x", 400, "invalid_query"),
            ("/cambios?prefijo=p&desde=-3", 422, "invalid_value"),
            ("/cambios?prefijo=p&limit=0", 422, "invalid_limit"),
            ("/cambios?prefijo=p&limit=1001", 422, "invalid_limit"),
        ] {
            let answer = app.get(service, path).await;
            assert_eq!(
                (answer.status, answer.body["error"].as_str()),
                (status, Some(code)),
                "{service} {path}: {answer:?}"
            );
        }
        for (body, status, code) in [
            (json!({"secuencia": -1}), 422, "invalid_value"),
            (json!({"secuencia": 1e30}), 422, "invalid_value"),
            (json!({"secuencia": "7"}), 400, "invalid_body"),
            (json!({}), 400, "invalid_body"),
            (json!({"secuencia": 1, "mas": 2}), 400, "invalid_body"),
        ] {
            let answer = app.post(service, "/secuencia", body.clone()).await;
            assert_eq!(
                (answer.status, answer.body["error"].as_str()),
                (status, Some(code)),
                "{service} {body}: {answer:?}"
            );
        }
        for (body, status, code) in [(
            json!({"secuencia": 4_611_686_018_427_387_905_i64}),
            422,
            "invalid_value",
        )] {
            let answer = app.post(service, "/secuencia", body.clone()).await;
            assert_eq!(
                (answer.status, answer.body["error"].as_str()),
                (status, Some(code)),
                "{service} {body}"
            );
        }
        // The highest number it may be raised to still numbers a change after it.
        let request_body = json!({"secuencia": 4_611_686_018_427_387_904_i64});
        let raised = app.post(service, "/secuencia", request_body).await;
        assert_eq!(raised.status, 200, "{raised:?}");
        let next = match service {
            Inventario => {
                app.post(
                    service,
                    "/reservas/liberar?visto=4611686018427387904",
                    json!({"clave": "p-x"}),
                )
                .await
            }
            _ => {
                app.post(
                    service,
                    "/anular?visto=4611686018427387904",
                    json!({"referencia": "p-x"}),
                )
                .await
            }
        };
        assert_eq!(
            next.body["secuencia"], 4_611_686_018_427_387_905_i64,
            "{service}: {next:?}"
        );
        for key in ["a%2Fb", "a%3Fb%23c", "%22x%22"] {
            let one = app.get(service, &format!("/cambios/{key}")).await;
            assert_eq!(one.status, 200, "{service} {key}: {one:?}");
        }
    }
}
