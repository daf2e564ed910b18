//! Operating penguin: request ids that follow one order through the four services'
//! logs, readiness, metrics, and refusing work instead of queueing it without bound.

use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use serde_json::{Value, json};

use penguin::service::Service;

use crate::helpers::{Fault, FaultProxy, Http, Running, TestApp, fast_peers, free_port, penguin, start};

const TOKEN: &str = "operability";

/// `serve all` as a user runs it, on free ports, with its files in `data`.
fn serve_all(dir: &Path, extra: &[(&str, &str)]) -> Running {
    let mut command = penguin(dir);
    command
        .args(["serve", "all", "--base-port", "0", "--data-dir", "data"])
        .env("SERVICE_TOKEN", TOKEN);
    for (name, value) in extra {
        command.env(name, value);
    }
    start(&mut command, 4)
}

/// logs.log once it holds a line with each of `wanted`, or as it is after 10 s.
fn logs_with(dir: &Path, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = std::fs::read_to_string(dir.join("data/logs.log")).unwrap_or_default();
        if wanted.iter().all(|w| logs.contains(w)) || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A header of an answer, as text.
fn header<'a>(answer: &'a crate::helpers::Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The lines of `logs` that end with `request_id=<id>`.
fn lines_of<'a>(logs: &'a str, id: &str) -> Vec<&'a str> {
    let tail = format!(" request_id={id}");
    logs.lines().filter(|l| l.ends_with(&tail)).collect()
}

async fn stock_up(http: &Http, running: &Running) -> i64 {
    let producto = http
        .call(Method::POST, format!("{}/productos", running.urls["productos"]))
        .token(TOKEN)
        .json(&json!({"nombre": "Hielo", "precio": 10}))
        .send()
        .await
        .expect("productos answers");
    let id = producto.body["id"].as_i64().expect("an id");
    let stock = http
        .call(Method::POST, format!("{}/stock", running.urls["inventario"]))
        .token(TOKEN)
        .json(&json!({"producto_id": id, "cantidad": 100}))
        .send()
        .await
        .expect("inventario answers");
    assert_eq!(stock.status, 200);
    id
}

fn orden(producto: i64) -> Value {
    json!({"items": [{"producto_id": producto, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG"}})
}

#[test]
fn one_order_is_found_in_the_logs_of_all_four_services_by_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve_all(dir.path(), &[]);
    let pedidos = format!("{}/pedidos", running.urls["pedidos"]);
    let (given, from_parent, fresh) = actix_web::rt::System::new().block_on(async {
        let http = Http::default();
        let producto = stock_up(&http, &running).await;
        let given = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header("X-Request-Id", "order-7f3a")
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(given.status, 201, "{}", given.body);
        assert_eq!(header(&given, "x-request-id"), Some("order-7f3a"));
        assert_eq!(
            given.body["request_id"], "order-7f3a",
            "the order names its request"
        );
        let stored = http
            .call(Method::GET, format!("{pedidos}/{}", given.body["id"]))
            .token(TOKEN)
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(stored.body["request_id"], "order-7f3a");

        let from_parent = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(
            header(&from_parent, "x-request-id"),
            Some("0af7651916cd43dd8448eb211c80319c"),
            "without an X-Request-Id, the trace id of the traceparent is the id"
        );

        let insane = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header("X-Request-Id", &"x".repeat(500))
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        let fresh = header(&insane, "x-request-id").unwrap_or_default().to_string();
        assert!(
            fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()),
            "an unusable id is replaced by a new one: {fresh:?}"
        );
        let unauthorized = http.call(Method::GET, &pedidos).send().await.expect("an answer");
        assert_eq!(unauthorized.status, 401);
        assert!(
            unauthorized.headers.contains_key("x-request-id"),
            "every answer has an id"
        );
        (
            "order-7f3a".to_string(),
            "0af7651916cd43dd8448eb211c80319c".to_string(),
            fresh,
        )
    });
    // The last request's line comes after every line of the orders before it.
    let logs = logs_with(dir.path(), &["pedidos] GET /pedidos 401"]);
    drop(running);
    for id in [&given, &from_parent, &fresh] {
        let lines = lines_of(&logs, id);
        for wanted in [
            "pedidos] POST /pedidos 201",
            "productos] GET /productos 200",
            "inventario] POST /reservas 201",
            "pagos] POST /pagar 201",
            "inventario] POST /reservas/confirmar 200",
        ] {
            assert!(
                lines.iter().any(|l| l.contains(wanted)),
                "no line {wanted:?} with request_id={id}:\n{}\n--- whole log ---\n{logs}",
                lines.join("\n")
            );
        }
    }
}

#[actix_web::test]
async fn recovery_moves_an_order_on_under_an_id_of_its_own_that_names_the_placing_request() {
    // productos, inventario and pagos here; inventario's confirmations hang until healed.
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    for service in [Service::Productos, Service::Inventario, Service::Pagos] {
        app.start_service(service, any, fast_peers());
    }
    let hielo = app.crear_producto("Hielo", json!(10)).await;
    app.cargar_stock(hielo, 10).await;
    let inventario = FaultProxy::start(app.url(Service::Inventario));
    inventario.fault(Method::POST, "/reservas/confirmar", Fault::Hang);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = penguin(dir.path());
    command
        .args(["serve", "pedidos"])
        .env("PORT", port.to_string())
        .env("SERVICE_TOKEN", crate::helpers::TOKEN)
        .env("PRODUCTS_URL", app.url(Service::Productos))
        .env("INVENTORY_URL", &inventario.url)
        .env("PAYMENTS_URL", app.url(Service::Pagos))
        .env("PEER_TIMEOUT_MS", "300")
        .env("RETRY_BACKOFF_MS", "10")
        .env("RECOVERY_INTERVAL", "0.2");
    let running = start(&mut command, 1);
    let pedidos = format!("{}/pedidos", running.urls["pedidos"]);
    let http = Http::default();
    let answer = http
        .call(Method::POST, &pedidos)
        .token(crate::helpers::TOKEN)
        .header("X-Request-Id", "placed-by-me")
        .json(&orden(hielo))
        .send()
        .await
        .expect("pedidos answers");
    assert_eq!(answer.status, 202, "paid, its confirmation owed: {}", answer.body);
    inventario.heal();

    let settled = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let logs = std::fs::read_to_string(dir.path().join("logs.log")).unwrap_or_default();
        let finished = logs
            .lines()
            .find(|l| l.contains("recovery finished pedido 1: confirmado"))
            .map(str::to_owned);
        if let Some(line) = finished {
            break (line, logs);
        }
        assert!(
            Instant::now() < settled,
            "recovery never finished pedido 1:\n{logs}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    let (finished, logs) = recovered;
    let (_, id) = finished
        .rsplit_once(" request_id=")
        .expect("the recovery line has an id");
    assert!(id.len() == 32 && id != "placed-by-me", "{finished}");
    let lines = lines_of(&logs, id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("recovery moves pedido 1 on from cobrado (placed by request placed-by-me)")),
        "the recovery's first line names the request that placed the order:\n{logs}"
    );
    assert!(
        lines_of(&logs, "placed-by-me")
            .iter()
            .any(|l| l.contains("POST /pedidos 202")),
        "{logs}"
    );
    drop(running);
}
