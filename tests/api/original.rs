//! penguin beside the original design's services, one swapped at a time: stand-ins
//! that answer exactly the shapes the original design documents (`POST /pagar` →
//! `{estado}`, `POST /reservar` → `{reserva_id}`, `GET /productos` → the list), and
//! nothing more. penguin reads peers tolerantly, and says so where a step is missing.

use std::net::SocketAddr;

use actix_web::{App, HttpResponse, HttpServer, web};
use penguin::config::PeerSettings;
use penguin::service::Service;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fast_peers};

/// A stand-in for one of the original design's services, on a port of its own.
fn original(routes: fn(&mut web::ServiceConfig)) -> String {
    let server = HttpServer::new(move || {
        App::new()
            .configure(routes)
            // Flask's own 404: a page, not JSON.
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .content_type("text/html")
                    .body("<!doctype html><title>404 Not Found</title><h1>Not Found</h1>")
            }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("a port");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{addr}")
}

fn productos(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/productos",
        web::get().to(|| async {
            HttpResponse::Ok().json(json!([{"id": 1, "nombre": "Hielo Premium", "precio": 10000}]))
        }),
    );
}

fn pagos(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/pagar",
        web::post().to(|body: web::Json<Value>| async move {
            let estado = if body["fail"] == true {
                "rechazado"
            } else {
                "aprobado"
            };
            HttpResponse::Ok().json(json!({"estado": estado}))
        }),
    );
}

fn inventario(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/reservar",
        web::post().to(|| async { HttpResponse::Ok().json(json!({"reserva_id": 1})) }),
    )
    .route(
        "/liberar",
        web::post().to(|| async { HttpResponse::Ok().json(json!({"ok": true})) }),
    );
}

/// penguin's inventario (and pedidos) with the given productos and pagos.
fn penguin_with(products_url: String, payments_url: String, inventory_url: Option<String>) -> TestApp {
    let mut app = TestApp::empty();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    app.start_service(Service::Inventario, any, fast_peers());
    let peers = PeerSettings {
        products_url,
        payments_url,
        inventory_url: inventory_url.unwrap_or_else(|| app.url(Service::Inventario).to_string()),
        ..fast_peers()
    };
    app.start_service(Service::Pedidos, any, peers);
    app
}

#[actix_web::test]
async fn penguin_places_orders_through_the_original_productos_and_pagos() {
    let app = penguin_with(original(productos), original(pagos), None);
    app.cargar_stock(1, 50).await;
    let answer = app.pedir(1, 3, false).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (201, Some("confirmado")),
        "{answer:?}"
    );
    assert_eq!(answer.body["total"], 30000, "priced from the original's list");
    assert_eq!(
        answer.body["pago_id"],
        Value::Null,
        "the original pagos names no payment"
    );
    let answer = app.pedir(1, 2, true).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (402, Some("rechazado")),
        "{answer:?}"
    );
    assert_eq!(app.stock(1).await, (47, 0, 3));
}

#[actix_web::test]
async fn against_the_original_inventario_penguin_says_which_step_is_missing() {
    let app = penguin_with(original(productos), original(pagos), Some(original(inventario)));
    let answer = app.pedir(1, 1, false).await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (502, Some("peer_error")),
        "{answer:?}"
    );
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(detail.contains("does not offer POST /reservas"), "{detail}");
}
