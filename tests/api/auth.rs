use actix_web::http::Method;
use penguin::service::Service;
use serde_json::json;

use crate::helpers::{TOKEN, TestApp};

/// One known route of each service, with a body that would succeed.
fn known_routes() -> [(Service, Method, &'static str, Option<serde_json::Value>); 4] {
    [
        (
            Service::Productos,
            Method::POST,
            "/productos",
            Some(json!({"nombre": "x", "precio": 1})),
        ),
        (
            Service::Inventario,
            Method::POST,
            "/stock",
            Some(json!({"producto_id": 1, "cantidad": 1})),
        ),
        (
            Service::Pagos,
            Method::POST,
            "/pagar",
            Some(json!({"monto": 1, "moneda": "PYG", "medio": "t"})),
        ),
        (Service::Pedidos, Method::GET, "/pedidos", None),
    ]
}

#[actix_web::test]
async fn every_service_returns_401_for_a_missing_or_wrong_token() {
    let app = TestApp::spawn_all().await;
    for (service, method, path, body) in known_routes() {
        for token in [None, Some("wrong"), Some("")] {
            for path in [path, "/no-such-route"] {
                let answer = app
                    .request(method.clone(), service, path, body.as_ref(), token)
                    .await;
                assert_eq!(answer.status, 401, "{service} {method} {path} with {token:?}");
                assert_eq!(answer.body["error"], "unauthorized");
                assert!(answer.body["detail"].is_string());
            }
        }
    }
    // Nothing refused was stored.
    assert_eq!(app.get(Service::Productos, "/productos").await.body, json!([]));
    assert_eq!(app.get(Service::Inventario, "/stock/1").await.status, 404);
}

#[actix_web::test]
async fn the_right_token_is_admitted_everywhere() {
    let app = TestApp::spawn_all().await;
    for (service, method, path, body) in known_routes() {
        let answer = app
            .request(method.clone(), service, path, body.as_ref(), Some(TOKEN))
            .await;
        assert!(answer.status < 300, "{service} {method} {path}: {answer:?}");
    }
}

#[actix_web::test]
async fn health_answers_without_a_token() {
    let app = TestApp::spawn_all().await;
    for service in Service::ALL {
        let answer = app.request(Method::GET, service, "/health", None, None).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, json!({"status": "ok", "service": service.name()}));
    }
}

#[actix_web::test]
async fn only_pedidos_serves_its_status_page_without_a_token_elsewhere_it_is_401() {
    let app = TestApp::spawn_all().await;
    for service in Service::ALL {
        let answer = app
            .http
            .call(Method::GET, format!("{}/panel", app.url(service)))
            .send()
            .await
            .expect("an answer");
        let expected = if service == Service::Pedidos { 200 } else { 401 };
        assert_eq!(answer.status, expected, "{service:?}");
    }
}

#[actix_web::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn_all().await;
    let answer = app.get(Service::Pagos, "/no-such-route").await;
    answer.assert_refused(404, "route_not_found");

    let answer = app.delete(Service::Pedidos, "/pedidos").await;
    answer.assert_refused(405, "method_not_allowed");
    assert_eq!(answer.headers.get("allow").unwrap(), "GET, POST");
}

#[actix_web::test]
async fn bodies_must_be_json_and_at_most_64_kib() {
    let app = TestApp::spawn_all().await;
    let url = format!("{}/productos", app.url(Service::Productos));
    let post = |content_type: &str, body: String| {
        app.http
            .call(Method::POST, &url)
            .token(TOKEN)
            .header("Content-Type", content_type)
            .raw(body)
            .send()
    };
    let answer = post("text/plain", r#"{"nombre": "x", "precio": 1}"#.into())
        .await
        .unwrap();
    answer.assert_refused(415, "unsupported_media_type");
    let big = json!({"nombre": "x".repeat(70 * 1024), "precio": 1}).to_string();
    let answer = post("application/json", big).await.unwrap();
    answer.assert_refused(413, "payload_too_large");
    let answer = post("application/json", "{\"nombre\": ".into()).await.unwrap();
    answer.assert_refused(400, "malformed_json");
    assert_eq!(app.get(Service::Productos, "/productos").await.body, json!([]));
}

#[actix_web::test]
async fn a_client_that_never_finishes_its_body_is_cut_off_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = TestApp::spawn_all().await;
    let addr = app
        .url(Service::Productos)
        .trim_start_matches("http://")
        .to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /productos HTTP/1.1\r\nHost: penguin\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"nombre\": "
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        socket.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the server never cut the client off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert_eq!(app.get(Service::Productos, "/productos").await.body, json!([]));
}

#[actix_web::test]
async fn a_second_authorization_header_is_refused() {
    let app = TestApp::spawn_all().await;
    let answer = app
        .http
        .call(Method::GET, format!("{}/productos", app.url(Service::Productos)))
        .token(TOKEN)
        .another("Authorization", "Bearer wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status, 401);
}
