//! penguin beside the original design's services, any one swapped in at a time: its
//! curl walk-through passes with each, and so does the breaker walk-through wherever
//! pedidos is penguin's. The stand-ins answer as design-es.md and the contract's
//! tables for the original routes say, and nothing more: the token on every request
//! (`401`), `{"error": "<sentence>"}` without penguin's codes, Flask's HTML `404` for
//! any other route, state in memory. The original inventario has no lotes, no
//! confirmation and no idempotency key; the original pagos no `/anular` or `/reembolsar`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use penguin::config::PeerSettings;
use penguin::service::Service;
use serde_json::{Value, json};

use crate::breaker::{ANSWERS_500, Charges, OPEN_SECS, RESETS, walkthrough};
use crate::helpers::{ScriptedPeer, TOKEN, TestApp, fast_peers};

const ANY: &str = "127.0.0.1:0";

fn any() -> SocketAddr {
    ANY.parse().expect("an address")
}

/// A stand-in for one of the original design's services, on `addr`.
struct Original {
    url: String,
    server: ServerHandle,
}

impl Original {
    fn start(addr: SocketAddr, routes: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static) -> Self {
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(bearer))
                .configure(routes.clone())
                .default_service(web::to(|| async {
                    // Flask's own 404: a page, not JSON.
                    HttpResponse::NotFound()
                        .content_type("text/html")
                        .body("<!doctype html><title>404 Not Found</title><h1>Not Found</h1>")
                }))
        })
        .workers(1)
        .bind(addr)
        .expect("a port");
        let url = format!("http://{}", server.addrs()[0]);
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { url, server: handle }
    }
}

/// `Authorization: Bearer <SERVICE_TOKEN>` on every request, or `401`.
async fn bearer(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let expected = format!("Bearer {TOKEN}");
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        let refused = HttpResponse::Unauthorized().json(json!({"error": "token inválido"}));
        return Ok(request.into_response(refused));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

fn error(status: StatusCode, sentence: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": sentence}))
}

type Shared<T> = web::Data<Mutex<T>>;

/// productos: `POST /productos` `201`, `GET /productos`, `GET /productos/<id>` (`404`).
fn productos() -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    let catalog: Shared<Vec<Value>> = web::Data::new(Mutex::default());
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(catalog.clone())
            .route(
                "/productos",
                web::post().to(|body: web::Json<Value>, catalog: Shared<Vec<Value>>| async move {
                    let (Some(nombre), Some(precio)) = (body["nombre"].as_str(), body["precio"].as_f64())
                    else {
                        return error(StatusCode::BAD_REQUEST, "nombre y precio son obligatorios");
                    };
                    let mut catalog = catalog.lock().unwrap();
                    let producto = json!({"id": catalog.len() + 1, "nombre": nombre, "precio": precio});
                    catalog.push(producto.clone());
                    HttpResponse::Created().json(producto)
                }),
            )
            .route(
                "/productos",
                web::get().to(|catalog: Shared<Vec<Value>>| async move {
                    HttpResponse::Ok().json(&*catalog.lock().unwrap())
                }),
            )
            .route(
                "/productos/{id}",
                web::get().to(|id: web::Path<usize>, catalog: Shared<Vec<Value>>| async move {
                    match catalog.lock().unwrap().get(id.into_inner().wrapping_sub(1)) {
                        Some(producto) => HttpResponse::Ok().json(producto),
                        None => error(StatusCode::NOT_FOUND, "producto no encontrado"),
                    }
                }),
            );
    }
}

#[derive(Default)]
struct Stock {
    /// Available units by product.
    cantidad: HashMap<i64, i64>,
    /// Each reservation: its product, its units, whether it still holds them.
    reservas: Vec<(i64, i64, bool)>,
}

/// inventario: `POST /stock` (sets), `GET /stock/<id>`, `POST /reservar` `201` (`404`
/// no stock row, `409` not enough), `POST /liberar` (twice returns the units once).
/// No lotes, no confirmation: a reservation holds its units for good unless released.
fn inventario() -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    let stock: Shared<Stock> = web::Data::new(Mutex::default());
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(stock.clone())
            .route(
                "/stock",
                web::post().to(|body: web::Json<Value>, stock: Shared<Stock>| async move {
                    let (Some(id), Some(cantidad)) = (body["producto_id"].as_i64(), body["cantidad"].as_i64()) else {
                        return error(StatusCode::BAD_REQUEST, "producto_id y cantidad son obligatorios");
                    };
                    stock.lock().unwrap().cantidad.insert(id, cantidad);
                    HttpResponse::Ok().json(json!({"producto_id": id, "cantidad": cantidad}))
                }),
            )
            .route(
                "/stock/{id}",
                web::get().to(|id: web::Path<i64>, stock: Shared<Stock>| async move {
                    let id = id.into_inner();
                    match stock.lock().unwrap().cantidad.get(&id) {
                        Some(cantidad) => HttpResponse::Ok().json(json!({"producto_id": id, "cantidad": cantidad})),
                        None => error(StatusCode::NOT_FOUND, "sin stock para ese producto"),
                    }
                }),
            )
            .route(
                "/reservar",
                web::post().to(|body: web::Json<Value>, stock: Shared<Stock>| async move {
                    let (Some(id), Some(cantidad)) = (body["producto_id"].as_i64(), body["cantidad"].as_i64()) else {
                        return error(StatusCode::BAD_REQUEST, "producto_id y cantidad son obligatorios");
                    };
                    let mut stock = stock.lock().unwrap();
                    let Some(disponible) = stock.cantidad.get_mut(&id) else {
                        return error(StatusCode::NOT_FOUND, "sin stock para ese producto");
                    };
                    if *disponible < cantidad {
                        return error(StatusCode::CONFLICT, "stock insuficiente");
                    }
                    *disponible -= cantidad;
                    stock.reservas.push((id, cantidad, true));
                    HttpResponse::Created().json(json!({
                        "reserva_id": stock.reservas.len(), "producto_id": id, "cantidad": cantidad, "estado": "activa"
                    }))
                }),
            )
            .route(
                "/liberar",
                web::post().to(|body: web::Json<Value>, stock: Shared<Stock>| async move {
                    let Some(reserva_id) = body["reserva_id"].as_u64() else {
                        return error(StatusCode::BAD_REQUEST, "reserva_id es obligatorio");
                    };
                    let mut stock = stock.lock().unwrap();
                    let index = usize::try_from(reserva_id).unwrap_or(0).wrapping_sub(1);
                    let Some((id, cantidad, holds)) = stock.reservas.get_mut(index).map(|r| (r.0, r.1, &mut r.2)) else {
                        return error(StatusCode::NOT_FOUND, "reserva no encontrada");
                    };
                    if std::mem::replace(holds, false) {
                        *stock.cantidad.entry(id).or_default() += cantidad;
                    }
                    HttpResponse::Ok().json(json!({"reserva_id": reserva_id, "estado": "liberada"}))
                }),
            );
    }
}

/// pagos: `POST /pagar` `201` `{pago_id, estado, ...}`, `rechazado` when asked to
/// fail. It counts the charges it got (the original lists none).
fn pagos(charges: Arc<AtomicUsize>) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    let charges = web::Data::from(charges);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(charges.clone()).route(
            "/pagar",
            web::post().to(
                |body: web::Json<Value>, charges: web::Data<AtomicUsize>| async move {
                    let (Some(monto), Some(moneda), Some(medio)) = (
                        body["monto"].as_f64(),
                        body["moneda"].as_str(),
                        body["medio"].as_str(),
                    ) else {
                        return error(StatusCode::BAD_REQUEST, "monto, moneda y medio son obligatorios");
                    };
                    let estado = if body["fail"] == true {
                        "rechazado"
                    } else {
                        "aprobado"
                    };
                    let pago_id = charges.fetch_add(1, Ordering::SeqCst) + 1;
                    HttpResponse::Created().json(json!({
                        "pago_id": pago_id, "estado": estado, "monto": monto, "moneda": moneda,
                        "medio": medio, "referencia": body["referencia"]
                    }))
                },
            ),
        );
    }
}

/// The original pedidos' peers, as one worker reaches them.
#[derive(Clone)]
struct OriginalPeers {
    productos: String,
    inventario: String,
    pagos: String,
}

impl OriginalPeers {
    /// One call with the token, tried twice on a connection error or a `5xx`.
    async fn call(
        &self,
        method: Method,
        url: String,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value), String> {
        let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
        let mut last = String::new();
        for _ in 0..2 {
            let request = client.request(method.clone(), &url).bearer_auth(TOKEN);
            let sent = match &body {
                Some(body) => request.send_json(body).await,
                None => request.send().await,
            };
            match sent {
                Ok(mut response) if !response.status().is_server_error() => {
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    return Ok((response.status(), body));
                }
                Ok(response) => last = format!("answered {}", response.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    async fn liberar(&self, reservas: &[i64]) {
        for reserva_id in reservas {
            let _ = self
                .call(
                    Method::POST,
                    format!("{}/liberar", self.inventario),
                    Some(json!({"reserva_id": reserva_id})),
                )
                .await;
        }
    }

    /// The original's order: price each line, reserve each line, charge the total;
    /// release every reservation made when a step fails.
    async fn pedir(&self, body: &Value) -> Result<(StatusCode, Value), (StatusCode, String)> {
        let unavailable = |e: String| (StatusCode::SERVICE_UNAVAILABLE, e);
        let items = body["items"].as_array().cloned().unwrap_or_default();
        let mut total = 0.0;
        for item in &items {
            let url = format!("{}/productos/{}", self.productos, item["producto_id"]);
            let (status, producto) = self.call(Method::GET, url, None).await.map_err(unavailable)?;
            if status != StatusCode::OK {
                return Err((StatusCode::NOT_FOUND, "producto no encontrado".into()));
            }
            total += producto["precio"].as_f64().unwrap_or(0.0) * item["cantidad"].as_f64().unwrap_or(0.0);
        }
        let mut reservas = Vec::new();
        for item in &items {
            let url = format!("{}/reservar", self.inventario);
            let line = json!({"producto_id": item["producto_id"], "cantidad": item["cantidad"]});
            match self.call(Method::POST, url, Some(line)).await {
                Ok((status, reserva)) if status.is_success() => {
                    reservas.push(reserva["reserva_id"].as_i64().unwrap_or_default())
                }
                refused => {
                    self.liberar(&reservas).await;
                    return Err(match refused {
                        Ok((status, _)) => (status, "no se pudo reservar".into()),
                        Err(e) => unavailable(e),
                    });
                }
            }
        }
        let pago = &body["pago"];
        let cobro = json!({"monto": total, "moneda": pago["moneda"], "medio": pago["medio"], "fail": pago["fail"] == true});
        let estado = match self
            .call(Method::POST, format!("{}/pagar", self.pagos), Some(cobro))
            .await
        {
            Ok((status, pago)) if status.is_success() => {
                pago["estado"].as_str().unwrap_or_default().to_string()
            }
            answer => {
                self.liberar(&reservas).await;
                return Err(unavailable(format!("{answer:?}")));
            }
        };
        let pedido = json!({"items": items, "total": total, "reservas": reservas});
        if estado == "aprobado" {
            return Ok((
                StatusCode::CREATED,
                json!({"estado": "confirmado", "pedido": pedido}),
            ));
        }
        self.liberar(&reservas).await;
        Ok((
            StatusCode::PAYMENT_REQUIRED,
            json!({"estado": "rechazado", "pedido": pedido}),
        ))
    }
}

/// pedidos: `POST /pedidos`, orchestrating the three others over HTTP; `GET /pedidos`.
fn pedidos(peers: OriginalPeers) -> impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static {
    let orders: Shared<Vec<Value>> = web::Data::new(Mutex::default());
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(orders.clone())
            .app_data(web::Data::new(peers.clone()))
            .route(
                "/pedidos",
                web::post().to(
                    |body: web::Json<Value>, peers: web::Data<OriginalPeers>, orders: Shared<Vec<Value>>| async move {
                        match peers.pedir(&body).await {
                            Ok((status, mut pedido)) => {
                                let mut orders = orders.lock().unwrap();
                                pedido["id"] = json!(orders.len() + 1);
                                orders.push(pedido.clone());
                                HttpResponse::build(status).json(pedido)
                            }
                            Err((status, sentence)) => error(status, &sentence),
                        }
                    },
                ),
            )
            .route(
                "/pedidos",
                web::get().to(|orders: Shared<Vec<Value>>| async move {
                    HttpResponse::Ok().json(&*orders.lock().unwrap())
                }),
            );
    }
}

/// A shop with `swapped` the original's and the other three penguin's; pedidos, if
/// penguin's, with `peers`, and its pagos at `payments` when given instead. The
/// handle stops the original.
fn shop(swapped: Service, payments: Option<String>, peers: PeerSettings) -> (TestApp, Option<ServerHandle>) {
    let mut app = TestApp::empty();
    let mut swapped_in = None;
    for service in [Service::Productos, Service::Inventario, Service::Pagos] {
        if service == Service::Pagos && payments.is_some() {
            continue;
        }
        if service != swapped {
            app.start_service(service, any(), fast_peers());
            continue;
        }
        let original = match service {
            Service::Productos => Original::start(any(), productos()),
            Service::Inventario => Original::start(any(), inventario()),
            _ => Original::start(any(), pagos(Arc::default())),
        };
        app.urls.insert(service, original.url);
        swapped_in = Some(original.server);
    }
    let payments = payments.unwrap_or_else(|| app.url(Service::Pagos).to_string());
    if swapped == Service::Pedidos {
        let peers = OriginalPeers {
            productos: app.url(Service::Productos).to_string(),
            inventario: app.url(Service::Inventario).to_string(),
            pagos: payments,
        };
        let original = Original::start(any(), pedidos(peers));
        app.urls.insert(Service::Pedidos, original.url);
        return (app, Some(original.server));
    }
    let peers = PeerSettings {
        products_url: app.url(Service::Productos).to_string(),
        inventory_url: app.url(Service::Inventario).to_string(),
        payments_url: payments,
        ..peers
    };
    app.start_service(Service::Pedidos, any(), peers);
    (app, swapped_in)
}

/// The original design's curl lines, their bodies as written, and the stock after.
async fn curl_walkthrough(swapped: Service) {
    let (app, _original) = shop(swapped, None, fast_peers());
    let producto = app
        .post(
            Service::Productos,
            "/productos",
            json!({"nombre": "Hielo Premium", "precio": 10000}),
        )
        .await;
    assert_eq!(
        (producto.status, producto.body["id"].as_i64()),
        (201, Some(1)),
        "{producto:?}"
    );
    let stock = app
        .post(
            Service::Inventario,
            "/stock",
            json!({"producto_id": 1, "cantidad": 50}),
        )
        .await;
    assert_eq!(stock.status, 200, "{stock:?}");
    let request_body =
        json!({"items":[{"producto_id":1,"cantidad":3}], "pago":{"medio":"tarjeta","moneda":"PYG"}});
    let pedido = app.post(Service::Pedidos, "/pedidos", request_body).await;
    assert_eq!(
        (pedido.status, pedido.body["estado"].as_str()),
        (201, Some("confirmado")),
        "{pedido:?}"
    );
    let request_body = json!({"items":[{"producto_id":1,"cantidad":2}], "pago":{"medio":"tarjeta","moneda":"PYG","fail":true}});
    let rechazado = app.post(Service::Pedidos, "/pedidos", request_body).await;
    assert_eq!(
        (rechazado.status, rechazado.body["estado"].as_str()),
        (402, Some("rechazado")),
        "{rechazado:?}"
    );
    let stock = app.get(Service::Inventario, "/stock/1").await;
    assert_eq!(
        (stock.status, &stock.body["cantidad"]),
        (200, &json!(47)),
        "{stock:?}"
    );
    let listed = app.get(Service::Pedidos, "/pedidos").await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(2), "{listed:?}");
}

#[actix_web::test]
async fn the_original_walkthrough_passes_with_the_original_productos() {
    curl_walkthrough(Service::Productos).await;
}

#[actix_web::test]
async fn the_original_walkthrough_passes_with_the_original_inventario() {
    curl_walkthrough(Service::Inventario).await;
}

#[actix_web::test]
async fn the_original_walkthrough_passes_with_the_original_pagos() {
    curl_walkthrough(Service::Pagos).await;
}

#[actix_web::test]
async fn the_original_walkthrough_passes_with_the_original_pedidos() {
    curl_walkthrough(Service::Pedidos).await;
}

/// The breaker walk-through with `swapped` the original's, pagos `broken` from the
/// start and brought back as the swap has it.
async fn breaker_walkthrough(swapped: Service, broken: crate::helpers::Script) {
    let broken = ScriptedPeer::start(broken).await;
    let peers = PeerSettings {
        breaker_open: Duration::from_secs(OPEN_SECS),
        recovery_interval: Duration::from_secs(3600),
        ..fast_peers()
    };
    let (app, _original) = shop(swapped, Some(broken.url()), peers);
    walkthrough(&app, broken, |addr| async move {
        if swapped == Service::Pagos {
            let charges = Arc::<AtomicUsize>::default();
            let original = Original::start(addr, pagos(charges.clone()));
            return (Charges::Counted(charges), (None, Some(original.server)));
        }
        let mut pagos = TestApp::empty();
        pagos.start_service(Service::Pagos, addr, fast_peers());
        (
            Charges::Listed(pagos.url(Service::Pagos).to_string()),
            (Some(pagos), None),
        )
    })
    .await;
}

#[actix_web::test]
async fn the_breaker_walkthrough_passes_with_the_original_productos() {
    breaker_walkthrough(Service::Productos, RESETS).await;
}

#[actix_web::test]
async fn the_breaker_walkthrough_passes_with_the_original_inventario() {
    breaker_walkthrough(Service::Inventario, ANSWERS_500).await;
}

#[actix_web::test]
async fn the_breaker_walkthrough_passes_with_the_original_pagos() {
    breaker_walkthrough(Service::Pagos, RESETS).await;
}

#[actix_web::test]
async fn an_order_refused_on_its_second_line_by_the_original_inventario_releases_the_first() {
    let (app, _original) = shop(Service::Inventario, None, fast_peers());
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let sal = app.stocked("Sal", json!(5), 1).await;
    let answer = app.pedir(&[(hielo, 4), (sal, 2)], false).await;
    assert_eq!(
        (
            answer.status,
            answer.body["estado"].as_str(),
            answer.body["error"].as_str()
        ),
        (409, Some("fallido"), Some("insufficient_stock")),
        "{answer:?}"
    );
    let app = &app;
    let cantidad = |id| async move {
        app.get(Service::Inventario, &format!("/stock/{id}")).await.body["cantidad"].clone()
    };
    assert_eq!(
        (cantidad(hielo).await, cantidad(sal).await),
        (json!(10), json!(1)),
        "the first line was released"
    );
    let payments = app.get(Service::Pagos, "/pagos").await;
    assert_eq!(payments.body, json!([]), "nothing was charged");
}

#[actix_web::test]
async fn pedidos_uses_lotes_again_once_the_original_inventario_is_replaced_by_penguins() {
    let (mut app, original) = shop(Service::Inventario, None, fast_peers());
    let hielo = app.stocked("Hielo", json!(10), 50).await;
    assert_eq!(app.pedir(&[(hielo, 3)], false).await.status, 201, "line by line");
    assert_eq!(app.pedir(&[(hielo, 2)], true).await.status, 402, "line by line");
    let stock = app.get(Service::Inventario, &format!("/stock/{hielo}")).await;
    assert_eq!(stock.body["cantidad"], 47, "{stock:?}");

    // inventario restarts on the same address as penguin's, with its own stock.
    let addr: SocketAddr = app
        .url(Service::Inventario)
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    original.expect("the original inventario").stop(true).await;
    app.start_service(Service::Inventario, addr, fast_peers());
    app.cargar_stock(hielo, 50).await;
    let answer = app.pedir(&[(hielo, 5)], false).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (201, Some("confirmado")),
        "{answer:?}"
    );
    assert_eq!(
        app.stock(hielo).await,
        (45, 0, 5),
        "its units are confirmed, not left to expire"
    );
    // The next order is a lote again.
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(app.stock(hielo).await, (44, 0, 6));
    let metrics = app
        .http
        .call(Method::GET, format!("{}/metrics", app.url(Service::Inventario)))
        .send()
        .await
        .unwrap();
    let lotes = metrics.text.lines().find(|l| {
        l.starts_with("penguin_http_requests_total")
            && l.contains(r#"route="/reservas""#)
            && l.contains(r#"status="201""#)
    });
    assert!(
        lotes.is_some_and(|l| l.ends_with(" 1")),
        "one lote reserved: {lotes:?}"
    );
}

#[actix_web::test]
async fn against_an_inventario_with_neither_lotes_nor_reservar_penguin_says_which_step_is_missing() {
    let mut app = TestApp::empty();
    app.start_service(Service::Productos, any(), fast_peers());
    app.start_service(Service::Pagos, any(), fast_peers());
    let nothing = Original::start(any(), |_: &mut web::ServiceConfig| {});
    let peers = PeerSettings {
        products_url: app.url(Service::Productos).to_string(),
        inventory_url: nothing.url,
        payments_url: app.url(Service::Pagos).to_string(),
        ..fast_peers()
    };
    app.start_service(Service::Pedidos, any(), peers);
    let hielo = app.crear_producto("Hielo", json!(1)).await;
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (502, Some("peer_error")),
        "{answer:?}"
    );
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("does not offer POST /reservar"), "{detail}");
}
