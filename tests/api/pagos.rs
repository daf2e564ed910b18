use penguin::service::Service::Pagos;
use serde_json::json;

use crate::helpers::TestApp;

#[actix_web::test]
async fn pagar_approves_by_default() {
    let app = TestApp::spawn_all().await;
    let request_body = json!({"monto": 30000, "moneda": "PYG", "medio": "tarjeta", "referencia": "p-1"});
    let answer = app.post(Pagos, "/pagar", request_body).await;
    assert_eq!(answer.status, 201);
    assert_eq!(
        answer.body,
        json!({"pago_id": 1, "estado": "aprobado", "monto": 30000, "moneda": "PYG", "medio": "tarjeta", "referencia": "p-1"})
    );
}

#[actix_web::test]
async fn pagar_with_fail_records_a_rejection_with_201() {
    let app = TestApp::spawn_all().await;
    let request_body = json!({"monto": 12.5, "moneda": "USD", "medio": "efectivo", "fail": true});
    let answer = app.post(Pagos, "/pagar", request_body).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.body["estado"], "rechazado");
    assert_eq!(answer.body["monto"], json!(12.5));
    assert_eq!(answer.body["referencia"], serde_json::Value::Null);
}

#[actix_web::test]
async fn pagar_refuses_invalid_charges() {
    let app = TestApp::spawn_all().await;
    for (body, status) in [
        (json!({"monto": 0, "moneda": "PYG", "medio": "tarjeta"}), 422),
        (json!({"monto": -5, "moneda": "PYG", "medio": "tarjeta"}), 422),
        (json!({"monto": 1.001, "moneda": "PYG", "medio": "tarjeta"}), 422),
        (json!({"monto": 1, "moneda": "", "medio": "tarjeta"}), 422),
        (json!({"monto": 1, "moneda": "PYG"}), 400),
        (
            json!({"monto": 1, "moneda": "PYG", "medio": "tarjeta", "fail": "yes"}),
            400,
        ),
        (json!({"monto": "1", "moneda": "PYG", "medio": "tarjeta"}), 400),
    ] {
        let answer = app.post(Pagos, "/pagar", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {answer:?}");
        assert!(answer.body["error"].is_string());
    }
}
