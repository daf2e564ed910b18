//! The four services as four real processes, killed with SIGKILL in the middle of a
//! batch of orders and restarted from the same files: every order still ends
//! `confirmado`, `rechazado` or `fallido`, and no unit or payment is lost or doubled.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::service::Service;
use serde_json::json;

use crate::shop::{Layout, Shop};

/// Four processes on fixed ports, retrying and recovering quickly.
async fn shop() -> Shop {
    Shop::start(Layout::Apart, &[("PEER_TIMEOUT_MS", "1500")]).await
}

/// Places `count` orders at once ([`Shop::nth_order`]). Returns each status
/// (`None`: no answer) and when it came; `answered` counts them as they come.
async fn place_orders(
    shop: &Shop,
    productos: &[(i64, i64)],
    count: usize,
    answered: &Cell<usize>,
) -> Vec<(Option<u16>, Instant)> {
    let orders = (0..count).map(|n| {
        let body = Shop::nth_order(productos, n);
        async move {
            let answer = shop
                .call(Method::POST, Service::Pedidos, "/pedidos", Some(body))
                .await;
            answered.set(answered.get() + 1);
            (answer.map(|a| a.status), Instant::now())
        }
    });
    futures_util::future::join_all(orders).await
}

/// Waits for recovery to settle everything, then asserts every invariant of
/// `penguin check` and returns the orders by estado.
async fn assert_settles(shop: &Shop, productos: &[(i64, i64)]) -> BTreeMap<String, usize> {
    let report = shop.check(productos, &[]).await;
    assert!(report.holds(), "never settled:\n{report}");
    report.pedidos_by_estado
}

#[actix_web::test]
async fn two_hundred_concurrent_orders_over_scarce_stock_never_oversell() {
    let shop = shop().await;
    let productos = shop.stock_up(&[10, 20, 5, 30, 15]).await;
    let statuses: Vec<Option<u16>> = place_orders(&shop, &productos, 200, &Cell::new(0))
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        statuses.iter().all(|s| matches!(s, Some(201 | 402 | 409))),
        "{statuses:?}"
    );
    let counts = assert_settles(&shop, &productos).await;
    let confirmed = statuses.iter().filter(|s| **s == Some(201)).count();
    assert_eq!(counts.get("confirmado").copied().unwrap_or(0), confirmed);
    assert!(
        confirmed > 0 && confirmed < 200,
        "stock runs out part-way: {counts:?}"
    );
}

#[actix_web::test]
async fn the_same_idempotency_key_twenty_times_at_once_makes_one_order_and_one_charge() {
    let shop = shop().await;
    let productos = shop.stock_up(&[100]).await;
    let body = json!({"items": [{"producto_id": productos[0].0, "cantidad": 2}], "pago": {"medio": "t", "moneda": "PYG"}});
    let shop = &shop;
    let requests = (0..20).map(|_| async {
        let answer = shop
            .http
            .call(Method::POST, format!("{}/pedidos", shop.url(Service::Pedidos)))
            .token(crate::helpers::TOKEN)
            .key("una-sola-vez")
            .json(&body)
            .send()
            .await
            .expect("an answer");
        (answer.status, answer.body)
    });
    let answers = futures_util::future::join_all(requests).await;
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 201);
    assert_eq!(shop.all(Service::Pedidos, "/pedidos").await.len(), 1);
    assert_eq!(shop.all(Service::Pagos, "/pagos").await.len(), 1);
    assert_settles(shop, &productos).await;
}

/// Kills `victim` once a fifth of a batch of orders is answered, restarts it, and
/// checks that everything settles and that the kill did land mid-batch.
async fn crash_mid_batch(victim: Service) {
    let shop = shop().await;
    let productos = shop.stock_up(&[40, 40, 40, 40, 40]).await;
    // Warm up, so the batch below is in full flight when the kill comes.
    place_orders(&shop, &productos, 5, &Cell::new(0)).await;

    let answered = Cell::new(0);
    let batch = place_orders(&shop, &productos, 150, &answered);
    let crash = async {
        while answered.get() < 30 {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        shop.kill(Some(victim));
        let killed_at = Instant::now();
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        killed_at
    };
    let (answers, killed_at) = futures_util::future::join(batch, crash).await;
    let after_kill = answers.iter().filter(|(_, at)| *at > killed_at).count();
    assert!(
        after_kill > 0,
        "every order was answered before the kill: it did not land mid-batch"
    );
    shop.run(Some(victim)).await;
    let counts = assert_settles(&shop, &productos).await;
    let lost = answers.iter().filter(|(s, _)| s.is_none()).count();
    eprintln!(
        "{victim} killed: {after_kill} of 150 ended after the kill, {lost} unanswered; settled as {counts:?}"
    );
}

#[actix_web::test]
async fn kill_9_of_pedidos_mid_batch_leaves_every_order_final() {
    crash_mid_batch(Service::Pedidos).await;
}

#[actix_web::test]
async fn kill_9_of_inventario_mid_batch_leaves_every_order_final() {
    crash_mid_batch(Service::Inventario).await;
}

#[actix_web::test]
async fn kill_9_of_pagos_mid_batch_leaves_every_order_final() {
    crash_mid_batch(Service::Pagos).await;
}

#[test]
fn a_second_pedidos_on_the_same_database_is_refused_at_start() {
    use crate::helpers::{free_port, penguin, run_to_end, start};
    let dir = tempfile::tempdir().unwrap();
    let first_port = free_port().to_string();
    let _first = start(
        penguin(dir.path())
            .args(["serve", "pedidos"])
            .env("PORT", &first_port),
        1,
    );
    // Two processes would drive the same orders, each blind to the other's turns.
    let second_port = free_port().to_string();
    let (code, stderr) = run_to_end(
        penguin(dir.path())
            .args(["serve", "pedidos"])
            .env("PORT", &second_port),
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("another process is serving this database"),
        "{stderr}"
    );
    let listening = std::net::TcpStream::connect(("127.0.0.1", second_port.parse::<u16>().unwrap()));
    assert!(listening.is_err(), "the second pedidos must not listen");
}
