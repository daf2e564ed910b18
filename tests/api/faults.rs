//! Orders under faults that a proxy injects between pedidos and a real peer: a route
//! that never answers, a peer that answers late, a charge whose answer is lost. Whatever happens, an answer given is
//! never contradicted later, and every unit and payment adds up once things settle.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::config::PeerSettings;
use penguin::service::Service;
use serde_json::{Value, json};

use crate::helpers::{Fault, FaultProxy, TestApp, fast_peers};

/// productos, inventario and pagos for real; pedidos reaching productos and inventario
/// through fault proxies, with `peers` settings.
fn shop_behind_proxies(peers: PeerSettings, ttl: Duration) -> (TestApp, FaultProxy, FaultProxy) {
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    app.start_service(Service::Productos, any, fast_peers());
    app.start_service_with_ttl(Service::Inventario, ttl);
    app.start_service(Service::Pagos, any, fast_peers());
    let productos = FaultProxy::start(app.url(Service::Productos));
    let inventario = FaultProxy::start(app.url(Service::Inventario));
    let peers = PeerSettings {
        products_url: productos.url.clone(),
        inventory_url: inventario.url.clone(),
        payments_url: app.url(Service::Pagos).to_string(),
        ..peers
    };
    app.start_service(Service::Pedidos, any, peers);
    (app, productos, inventario)
}

/// The short settings: 400 ms per attempt, breaker 3 failures / 4 s, recovery every second.
fn short_settings() -> PeerSettings {
    PeerSettings {
        timeout: Duration::from_millis(400),
        retry_backoff: Duration::from_millis(20),
        breaker_failures: 3,
        breaker_open: Duration::from_secs(4),
        recovery_interval: Duration::from_secs(1),
        ..fast_peers()
    }
}

/// Every row of a list route, page by page.
async fn all(app: &TestApp, service: Service, path: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    loop {
        let page = app
            .get(service, &format!("{path}?limit=1000&offset={}", rows.len()))
            .await;
        let page = page.body.as_array().unwrap().clone();
        let done = page.len() < 1000;
        rows.extend(page);
        if done {
            return rows;
        }
    }
}

async fn all_pedidos(app: &TestApp) -> Vec<Value> {
    all(app, Service::Pedidos, "/pedidos").await
}

/// Waits until no order is pendiente and no unit is held, then returns the orders.
async fn settled(app: &TestApp, productos: &[i64]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let pedidos = all_pedidos(app).await;
        let mut held = 0;
        for id in productos {
            held += app.stock(*id).await.1;
        }
        if held == 0 && pedidos.iter().all(|p| p["estado"] != "pendiente") {
            return pedidos;
        }
        assert!(
            Instant::now() < deadline,
            "never settled: {held} units held, {pedidos:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
}

#[actix_web::test]
async fn orders_answered_while_recovery_struggles_are_never_rewritten() {
    let (app, productos_proxy, inventario_proxy) =
        shop_behind_proxies(short_settings(), Duration::from_secs(10));
    let mut productos = Vec::new();
    for n in 0..3 {
        let id = app.stocked(&format!("p{n}"), json!(5), 10_000).await;
        productos.push(id);
    }
    productos_proxy.fault(
        Method::GET,
        "/productos",
        Fault::Delay(Duration::from_millis(300)),
    );
    for path in ["/liberar", "/reservas/liberar"] {
        inventario_proxy.fault(Method::POST, path, Fault::Hang);
    }

    // Eight clients place orders for eight seconds; every fourth payment is rejected,
    // so its release meets the black hole and is left owed to recovery.
    let stop = Instant::now() + Duration::from_secs(8);
    let clients = (0..8).map(|client| {
        let app = &app;
        let productos = &productos;
        async move {
            let mut answers = Vec::new();
            let mut n = 0;
            while Instant::now() < stop {
                n += 1;
                let answer = app.pedir(&[(productos[n % 3], 1)], (n + client) % 4 == 0).await;
                answers.push((answer.status, answer.body["id"].as_i64()));
                // A steady stream rather than a flood of instant refusals while a circuit is open.
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            }
            answers
        }
    });
    let answers: Vec<(u16, Option<i64>)> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    productos_proxy.heal();
    inventario_proxy.heal();

    let pedidos = settled(&app, &productos).await;
    let estado: HashMap<i64, &str> = pedidos
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["estado"].as_str().unwrap()))
        .collect();
    let mut seen = HashMap::<u16, usize>::new();
    for (status, id) in &answers {
        *seen.entry(*status).or_default() += 1;
        let id = id.unwrap_or_else(|| panic!("an order answered {status} without its id"));
        let expected: &[&str] = match status {
            201 => &["confirmado"],
            402 => &["rechazado"],
            // Not final when answered: either outcome may follow.
            202 => &["confirmado", "fallido"],
            _ => &["fallido"],
        };
        assert!(
            expected.contains(&estado[&id]),
            "pedido {id} was answered {status} and is now {}",
            estado[&id]
        );
    }
    eprintln!("answers: {seen:?}");
    assert!(
        seen.get(&201).copied().unwrap_or(0) > 0 && seen.get(&402).copied().unwrap_or(0) > 0,
        "{seen:?}"
    );

    // Units and payments add up: confirmed units are the confirmed orders' units, and
    // approved payments are the confirmed orders'.
    let confirmados: Vec<&Value> = pedidos.iter().filter(|p| p["estado"] == "confirmado").collect();
    for id in &productos {
        let units: i64 = confirmados
            .iter()
            .flat_map(|p| p["items"].as_array().unwrap())
            .filter(|i| i["producto_id"] == *id)
            .map(|i| i["cantidad"].as_i64().unwrap())
            .sum();
        assert_eq!(app.stock(*id).await, (10_000 - units, 0, units), "producto {id}");
    }
    let pagos = all(&app, Service::Pagos, "/pagos").await;
    let aprobados = pagos.iter().filter(|p| p["estado"] == "aprobado").count();
    assert_eq!(aprobados, confirmados.len());
}

#[actix_web::test]
async fn an_order_that_cannot_be_confirmed_yet_is_answered_202_and_confirmed_later() {
    let peers = PeerSettings {
        timeout: Duration::from_millis(300),
        recovery_interval: Duration::from_millis(200),
        ..fast_peers()
    };
    // Reservations of 200 ms: the order's units must outlive them while owed.
    let (app, _productos_proxy, inventario_proxy) = shop_behind_proxies(peers, Duration::from_millis(200));
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    inventario_proxy.fault(Method::POST, "/reservas/confirmar", Fault::Hang);

    let body =
        json!({"items": [{"producto_id": hielo, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG"}});
    let answer = app
        .post_with_key(Service::Pedidos, "/pedidos", &body, "espera")
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(answer.body["estado"], "pendiente");
    assert!(answer.body["pago_id"].is_i64(), "it was charged: {answer:?}");
    let location = answer
        .headers
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(location, format!("/pedidos/{}", answer.body["id"]));

    app.wait_until_expiry_passes_now(hielo).await;
    assert_eq!(
        app.get(Service::Pedidos, &location).await.body["estado"],
        "pendiente"
    );
    assert_eq!(
        app.stock(hielo).await,
        (9, 1, 0),
        "owed units are not lost to expiry"
    );
    let again = app
        .post_with_key(Service::Pedidos, "/pedidos", &body, "espera")
        .await;
    assert_eq!(again.status, 202, "a retry while it is pendiente: {again:?}");

    inventario_proxy.heal();
    let deadline = Instant::now() + Duration::from_secs(15);
    while app.get(Service::Pedidos, &location).await.body["estado"] != "confirmado" {
        assert!(Instant::now() < deadline, "recovery never confirmed it");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.stock(hielo).await, (9, 0, 1));
    let again = app
        .post_with_key(Service::Pedidos, "/pedidos", &body, "espera")
        .await;
    assert_eq!(
        (again.status, again.body["estado"].as_str()),
        (201, Some("confirmado"))
    );
    let pagos = app.get(Service::Pagos, "/pagos").await.body;
    assert_eq!(pagos.as_array().unwrap().len(), 1, "charged once: {pagos}");
}

/// Waits until pedidos' circuit to pagos is closed and, from then on, two recovery
/// passes have begun: at least one whole pass had pagos within reach.
async fn recovery_runs_twice_with_pagos_reachable(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let pagos = [("peer", "pagos")];
    while app
        .metric(Service::Pedidos, "penguin_circuit_state", &pagos)
        .await
        != 0.0
    {
        assert!(Instant::now() < deadline, "pagos' circuit never closed");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let passes = "penguin_recovery_passes_total";
    let from = app.metric(Service::Pedidos, passes, &[]).await;
    while app.metric(Service::Pedidos, passes, &[]).await < from + 2.0 {
        assert!(Instant::now() < deadline, "recovery stopped running passes");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A listening port that never completes a connection: its accept queue is full, so
/// the kernel drops every new SYN, as a host behind a black hole would.
fn black_hole() -> (
    std::net::SocketAddr,
    Vec<std::net::TcpStream>,
    tokio::net::TcpListener,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fill = Vec::new();
    while let Ok(stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
        fill.push(stream);
    }
    (addr, fill, listener)
}

#[actix_web::test]
async fn a_charge_that_never_connected_is_not_voided_later() {
    let (pagos_addr, fill, hole) = black_hole();
    let mut app = TestApp::empty();
    // Connecting is given up before the attempt's own timeout, so the attempt is
    // known never to have left.
    let peers = PeerSettings {
        timeout: Duration::from_millis(400),
        ..fast_peers()
    };
    let hielo = app
        .start_shop_with_pagos_at(format!("http://{pagos_addr}"), peers)
        .await;

    let answer = app.pedir(&[(hielo, 1)], false).await;
    answer.assert_refused(503, "peer_unavailable");
    assert_eq!(app.stock(hielo).await, (10, 0, 0));

    // pagos comes up where it was expected. Recovery is given its chance to void the
    // charge: pagos' circuit closed, then two passes begun (so one whole pass ran).
    drop((fill, hole));
    app.start_service(Service::Pagos, pagos_addr, fast_peers());
    recovery_runs_twice_with_pagos_reachable(&app).await;
    let pagos = app.get(Service::Pagos, "/pagos").await.body;
    assert_eq!(pagos, json!([]), "a charge that never left needs no voiding");
}

#[actix_web::test]
async fn a_charge_whose_answer_is_lost_is_refunded_and_its_units_come_back() {
    // pagos charges, and its answer never reaches pedidos.
    let mut app = TestApp::empty();
    app.start_service(Service::Pagos, "127.0.0.1:0".parse().unwrap(), fast_peers());
    let pagos = FaultProxy::start(app.url(Service::Pagos));
    let peers = PeerSettings {
        timeout: Duration::from_millis(400),
        recovery_interval: Duration::from_millis(200),
        ..fast_peers()
    };
    let hielo = app.start_shop_with_pagos_at(pagos.url.clone(), peers).await;
    pagos.fault(Method::POST, "/pagar", Fault::LoseAnswer);

    let answer = app.pedir(&[(hielo, 2)], false).await;
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (503, Some("peer_unavailable")),
        "{answer:?}"
    );
    assert_eq!(answer.body["estado"], "fallido");
    let id = answer.body["id"].as_i64().expect("the order's id");

    // Recovery makes sure no money is kept for the failed order, through the same
    // proxy (only /pagar loses its answers), and its units are back.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pago = loop {
        let cobros = all(&app, Service::Pagos, "/pagos").await;
        if let Some(pago) = cobros.iter().find(|p| p["estado"] == "reembolsado") {
            break pago.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the lost charge was never refunded: {cobros:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(pago["monto"], json!(20), "{pago}");
    assert_eq!(
        all(&app, Service::Pagos, "/pagos").await.len(),
        1,
        "one charge, made once however often it was asked for"
    );
    assert_eq!(app.stock(hielo).await, (10, 0, 0), "the units are back");
    let pedido = app.get(Service::Pedidos, &format!("/pedidos/{id}")).await;
    assert_eq!(pedido.body["estado"], "fallido", "the answer given still holds");
}
