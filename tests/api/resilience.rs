use std::time::{Duration, Instant};

use penguin::config::PeerSettings;
use penguin::service::Service;
use serde_json::{Value, json};

use actix_web::http::Method;

use crate::helpers::{Fault, FaultProxy, Script, ScriptedPeer, TestApp, fast_peers};

/// productos and inventario for real, pedidos pointed at `pagos_url`.
async fn shop_with_pagos_at(pagos_url: String, peers: PeerSettings) -> (TestApp, i64) {
    let mut app = TestApp::empty();
    let hielo = app.start_shop_with_pagos_at(pagos_url, peers).await;
    (app, hielo)
}

/// The shop with a real pagos behind a fault proxy, and pedidos with `peers`.
async fn shop_with_pagos_behind_a_proxy(peers: PeerSettings) -> (TestApp, FaultProxy, i64) {
    let mut app = TestApp::empty();
    app.start_service(Service::Pagos, "127.0.0.1:0".parse().unwrap(), fast_peers());
    let pagos = FaultProxy::start(app.url(Service::Pagos));
    let hielo = app.start_shop_with_pagos_at(pagos.url.clone(), peers).await;
    (app, pagos, hielo)
}

/// Places orders against a failing pagos until its circuit opens: each one that
/// reaches pagos charges it twice (one retry), fails `503` and holds no unit; the
/// circuit opens within three orders. Returns the first answer of the open circuit.
async fn orders_until_the_circuit_opens(
    app: &TestApp,
    hielo: i64,
    pagos: &ScriptedPeer,
) -> crate::helpers::Answer {
    for _ in 0..4 {
        let charges = pagos.charges();
        let answer = app.pedir(&[(hielo, 1)], false).await;
        answer.assert_refused(503, "peer_unavailable");
        assert_eq!(answer.body["estado"], "fallido");
        assert!(answer.headers.contains_key("retry-after"));
        assert_eq!(app.stock(hielo).await, (10, 0, 0), "the reservation is released");
        if answer.body["detail"].as_str().unwrap().contains("circuit") {
            assert_eq!(
                pagos.charges(),
                charges,
                "an open circuit does not touch the peer"
            );
            assert!(charges >= 2, "at least one order reached pagos first");
            return answer;
        }
        assert_eq!(pagos.charges(), charges + 2, "each order tries pagos twice");
    }
    panic!("the circuit never opened after three failed orders");
}

#[actix_web::test]
async fn a_dead_peer_is_retried_then_its_circuit_opens_and_later_closes() {
    let dead = ScriptedPeer::start(Script::Close).await;
    let (mut app, hielo) = shop_with_pagos_at(dead.url(), fast_peers()).await;

    // Recovery voids each lost charge meanwhile, and its failed calls count toward the
    // same circuit: it opens after the third consecutive failed call, whoever made it.
    let answer = orders_until_the_circuit_opens(&app, hielo, &dead).await;
    let retry_after: u64 = answer
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=1).contains(&retry_after),
        "the circuit opens for 1 s here, got {retry_after}"
    );
    let charges = dead.charges();
    assert_eq!(app.pedir(&[(hielo, 1)], false).await.status, 503);
    assert_eq!(dead.charges(), charges, "an open circuit does not touch the peer");
    assert_eq!(app.stock(hielo).await, (10, 0, 0));

    // pagos comes back on the same port; once the open period is over, orders succeed.
    let addr = dead.addr;
    dead.stop().await;
    app.start_service(Service::Pagos, addr, fast_peers());
    // Recovery may spend a trial call on pagos before it is back, which opens the
    // circuit again for longer: wait until the next call will be let through.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = app.get(Service::Pedidos, "/ready").await.body;
        let pagos = &ready["peers"]["pagos"];
        if pagos["circuit"] == "closed" || pagos["retry_in_ms"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the circuit of pagos never let a call through: {ready}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(app.stock(hielo).await, (9, 0, 1));
    assert_eq!(app.pedir(&[(hielo, 1)], false).await.status, 201);

    // The three charges whose answers were lost are voided by recovery, so that
    // none of them can ever take money for a failed order.
    let estados = || async {
        let pagos = app.get(Service::Pagos, "/pagos").await.body;
        let mut estados: Vec<String> = pagos
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["estado"].as_str().unwrap().to_string())
            .collect();
        estados.sort();
        estados
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while estados().await != ["anulado", "anulado", "anulado", "aprobado", "aprobado"] {
        assert!(
            Instant::now() < deadline,
            "recovery did not void them: {:?}",
            estados().await
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_peer_answering_5xx_is_retried_and_one_answering_4xx_is_not() {
    let failing = ScriptedPeer::start(Script::Answer(
        "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    ))
    .await;
    let (app, hielo) = shop_with_pagos_at(failing.url(), fast_peers()).await;
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(failing.charges(), 2);
    assert_eq!(app.stock(hielo).await, (10, 0, 0));

    let refusing = ScriptedPeer::start(Script::Answer(
        "HTTP/1.1 409 Conflict\r\ncontent-type: application/json\r\ncontent-length: 38\r\nconnection: close\r\n\r\n{\"error\":\"duplicate\",\"detail\":\"again\"}",
    ))
    .await;
    let (app, hielo) = shop_with_pagos_at(refusing.url(), fast_peers()).await;
    let answer = app.pedir(&[(hielo, 1)], false).await;
    answer.assert_refused(502, "peer_error");
    assert_eq!(
        refusing.charges(),
        1,
        "a 4xx is an answer, not a failure to retry"
    );
    assert_eq!(app.stock(hielo).await, (10, 0, 0));
}

#[actix_web::test]
async fn a_peer_that_never_answers_fails_the_order_within_its_timeout() {
    let hung = ScriptedPeer::start(Script::Hang).await;
    let peers = PeerSettings {
        timeout: Duration::from_millis(300),
        ..fast_peers()
    };
    let (app, hielo) = shop_with_pagos_at(hung.url(), peers).await;
    let started = Instant::now();
    let answer = app.pedir(&[(hielo, 1)], false).await;
    let took = started.elapsed();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(hung.charges(), 2);
    // Two attempts of 300 ms and a short backoff; far below the 30 s client timeout.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(app.stock(hielo).await, (10, 0, 0));
}

#[actix_web::test]
async fn an_open_circuit_fails_orders_before_any_peer_is_called() {
    let dead = ScriptedPeer::start(Script::Close).await;
    let peers = PeerSettings {
        breaker_open: Duration::from_secs(60),
        ..fast_peers()
    };
    let (app, hielo) = shop_with_pagos_at(dead.url(), peers).await;
    for _ in 0..3 {
        assert_eq!(app.pedir(&[(hielo, 1)], false).await.status, 503);
    }
    let reservas_before = app
        .post(
            Service::Inventario,
            "/reservar",
            json!({"producto_id": hielo, "cantidad": 1}),
        )
        .await;
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 503);
    let retry_after: u64 = answer
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // pagos never answered, but it accepts connections: it is failing, not starting,
    // and its circuit opens for BREAKER_OPEN_SECS.
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    let reservas_after = app
        .post(
            Service::Inventario,
            "/reservar",
            json!({"producto_id": hielo, "cantidad": 1}),
        )
        .await;
    let id = |a: &crate::helpers::Answer| a.body["reserva_id"].as_i64().unwrap();
    assert_eq!(
        id(&reservas_after),
        id(&reservas_before) + 1,
        "the rejected order reserved nothing"
    );
}

#[actix_web::test]
async fn an_answer_cut_short_is_retried_counted_by_the_breaker_and_answered_503() {
    // The status line and headers with the full length, then the connection closes.
    let cut = ScriptedPeer::start(Script::Answer(
        "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 99\r\n\r\n{\"pago_id\": 9",
    ))
    .await;
    let peers = PeerSettings {
        breaker_open: Duration::from_secs(60),
        ..fast_peers()
    };
    let (app, hielo) = shop_with_pagos_at(cut.url(), peers).await;
    orders_until_the_circuit_opens(&app, hielo, &cut).await;
    let charges = cut.charges();
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 503);
    assert_eq!(
        cut.charges(),
        charges,
        "the breaker counted them: an open circuit fails fast"
    );
    assert_eq!(app.stock(hielo).await, (10, 0, 0));
}

#[actix_web::test]
async fn pedidos_started_before_its_peers_takes_orders_within_a_second_or_two_of_them_being_up() {
    // An orchestrator starts the four together; pedidos is up first, with the default
    // 30 s BREAKER_OPEN_SECS, and users already order.
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let addr = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ports = [
        crate::helpers::free_port(),
        crate::helpers::free_port(),
        crate::helpers::free_port(),
    ];
    let mut app = TestApp::empty();
    let peers = PeerSettings {
        products_url: format!("http://{}", addr(ports[0])),
        inventory_url: format!("http://{}", addr(ports[1])),
        payments_url: format!("http://{}", addr(ports[2])),
        ..PeerSettings::defaults()
    };
    app.start_service(Service::Pedidos, any, peers);
    let outage = Instant::now() + Duration::from_secs(3);
    while Instant::now() < outage {
        assert_eq!(
            app.pedir(&[(1, 1)], false).await.status,
            503,
            "the peers are not up yet"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    // Peers that were never listening are not held behind BREAKER_OPEN_SECS (30 s).
    let circuits = app.get(Service::Pedidos, "/ready").await.body["peers"].clone();
    for peer in ["productos", "inventario", "pagos"] {
        let left = circuits[peer]["retry_in_ms"].as_u64().unwrap_or(0);
        assert!(left <= 1_000, "{peer}: {circuits}");
    }

    app.start_service(Service::Productos, addr(ports[0]), fast_peers());
    app.start_service(Service::Inventario, addr(ports[1]), fast_peers());
    app.start_service(Service::Pagos, addr(ports[2]), fast_peers());
    let hielo = app.stocked("Hielo", json!(10), 100).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = app.pedir(&[(hielo, 1)], false).await;
        if answer.status == 201 {
            break;
        }
        assert_eq!(answer.status, 503, "{answer:?}");
        assert!(Instant::now() < deadline, "no order succeeded: {answer:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_half_open_circuit_lets_one_trial_call_through_not_every_order() {
    let (app, pagos, hielo) = shop_with_pagos_behind_a_proxy(PeerSettings {
        retry_attempts: 1,
        breaker_failures: 1,
        breaker_open: Duration::from_secs(1),
        timeout: Duration::from_millis(1000),
        // Recovery would spend the trial on the failed order's debt.
        recovery_interval: Duration::from_secs(3600),
        ..fast_peers()
    })
    .await;

    pagos.fault(Method::POST, "/pagar", Fault::Hang);
    assert_eq!(
        app.pedir(&[(hielo, 1)], false).await.status,
        503,
        "the circuit of pagos opens"
    );
    // pagos is back but slow: the trial call takes 700 ms.
    pagos.heal();
    pagos.fault(Method::POST, "/pagar", Fault::Delay(Duration::from_millis(700)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.get(Service::Pedidos, "/ready").await.body["peers"]["pagos"]["retry_in_ms"] != 0 {
        assert!(Instant::now() < deadline, "the open period never ended");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let orders = (0..5).map(|_| app.pedir(&[(hielo, 1)], false));
    let statuses: Vec<u16> = futures_util::future::join_all(orders)
        .await
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "one trial: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 4, "{statuses:?}");
    let charges = app.get(Service::Pagos, "/pagos").await.body;
    assert_eq!(
        charges.as_array().map(Vec::len),
        Some(1),
        "only the trial reached pagos: {charges}"
    );
    assert_eq!(
        app.get(Service::Pedidos, "/ready").await.body["peers"]["pagos"]["circuit"],
        "closed",
        "the trial closed it"
    );
}

#[actix_web::test]
async fn a_peer_that_answered_before_stays_behind_an_open_circuit_for_breaker_open_secs() {
    let (app, pagos, hielo) = shop_with_pagos_behind_a_proxy(PeerSettings {
        retry_attempts: 1,
        breaker_failures: 1,
        breaker_open: Duration::from_secs(4),
        timeout: Duration::from_millis(500),
        recovery_interval: Duration::from_secs(3600),
        ..fast_peers()
    })
    .await;
    assert_eq!(
        app.pedir(&[(hielo, 1)], false).await.status,
        201,
        "pagos answered once"
    );

    pagos.fault(Method::POST, "/pagar", Fault::Hang);
    assert_eq!(app.pedir(&[(hielo, 1)], false).await.status, 503);
    pagos.heal();
    // The contract's open period (BREAKER_OPEN_SECS, 4 s here), not the starting peer's second.
    let answer = app.pedir(&[(hielo, 1)], false).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert_eq!(
        answer.headers.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("4")
    );
    // Watched through the circuit's own state: until the trial, every order fails at
    // once and nothing reaches pagos, and the circuit counts its time down from the
    // fourth second into its last.
    let mut left_while_open = Vec::new();
    let trial = loop {
        let ready = app.get(Service::Pedidos, "/ready").await.body;
        let circuit = &ready["peers"]["pagos"];
        if let Some(left) = circuit["retry_in_ms"]
            .as_u64()
            .filter(|_| circuit["circuit"] == "open")
        {
            left_while_open.push(left);
        }
        let answer = app.pedir(&[(hielo, 1)], false).await;
        if answer.status == 201 {
            break answer;
        }
        assert_eq!(answer.status, 503, "{circuit} {answer:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(trial.body["estado"], "confirmado", "{trial:?}");
    assert!(
        left_while_open.windows(2).all(|w| w[1] <= w[0]),
        "{left_while_open:?}"
    );
    assert!(
        left_while_open.first() > Some(&2_000) && left_while_open.last() < Some(&1_000),
        "open from its fourth second into its last: {left_while_open:?}"
    );
    let charges = app.get(Service::Pagos, "/pagos").await.body;
    assert_eq!(
        charges.as_array().map(Vec::len),
        Some(2),
        "the first order and the trial, nothing while the circuit was open: {charges}"
    );
}

#[actix_web::test]
async fn an_order_an_open_circuit_refuses_before_pricing_has_total_null_and_a_free_order_total_0() {
    let dead = ScriptedPeer::start(Script::Close).await;
    let peers = PeerSettings {
        breaker_open: Duration::from_secs(60),
        ..fast_peers()
    };
    let (app, hielo) = shop_with_pagos_at(dead.url(), peers).await;
    let regalo = app.stocked("Regalo", json!(0), 5).await;
    let free = app.pedir(&[(regalo, 1)], false).await;
    assert_eq!((free.status, &free.body["total"]), (201, &json!(0)), "{free:?}");

    let open = orders_until_the_circuit_opens(&app, hielo, &dead).await;
    let id = open.body["id"].as_i64().expect("the refused order's id");
    let recorded = app.get(Service::Pedidos, &format!("/pedidos/{id}")).await;
    for order in [&open.body, &recorded.body] {
        assert_eq!(order["estado"], "fallido", "{order}");
        assert_eq!(order["total"], Value::Null, "not priced, not free: {order}");
        assert_eq!(order["items"][0]["precio_unitario"], Value::Null, "{order}");
    }

    let all = app.get(Service::Pedidos, "/pedidos").await;
    let orders = all.body.as_array().expect("a list");
    let charged_then_failed = orders
        .iter()
        .filter(|o| o["id"] != json!(id) && o["items"][0]["producto_id"] == json!(hielo))
        .collect::<Vec<_>>();
    assert!(!charged_then_failed.is_empty(), "{orders:?}");
    for order in charged_then_failed {
        assert!(
            order["total"].is_number(),
            "an order that failed after pricing keeps its total: {order}"
        );
    }
}
