//! The four services as four real processes, killed with SIGKILL in the middle of a
//! batch of orders and restarted from the same files: every order still ends
//! `confirmado`, `rechazado` or `fallido`, and no unit or payment is lost or doubled.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::invariantes::{self, Tienda};
use penguin::service::Service;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::TOKEN;
use crate::helpers::{Http, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_penguin");

/// Four penguin processes on fixed ports, sharing one folder for their files.
struct Shop {
    dir: TempDir,
    ports: HashMap<Service, u16>,
    children: RefCell<HashMap<Service, Child>>,
    http: Http,
}

impl Drop for Shop {
    fn drop(&mut self) {
        for child in self.children.get_mut().values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Shop {
    async fn start() -> Self {
        let shop = Self {
            dir: tempfile::tempdir().expect("a folder"),
            ports: Service::ALL.iter().map(|s| (*s, free_port())).collect(),
            children: RefCell::default(),
            http: Http::default(),
        };
        for service in Service::ALL {
            shop.spawn(service).await;
        }
        shop
    }

    fn url(&self, service: Service) -> String {
        format!("http://127.0.0.1:{}", self.ports[&service])
    }

    async fn spawn(&self, service: Service) {
        let child = Command::new(BIN)
            .args(["serve", service.name()])
            .current_dir(self.dir.path())
            .env_clear()
            .env("RUST_LOG", "info")
            .env("PORT", self.ports[&service].to_string())
            .env("DB_PATH", format!("{}.db", service.name()))
            .env("SERVICE_TOKEN", TOKEN)
            .env("PRODUCTS_URL", self.url(Service::Productos))
            .env("INVENTORY_URL", self.url(Service::Inventario))
            .env("PAYMENTS_URL", self.url(Service::Pagos))
            .env("WORKERS", "2")
            .env("RETRY_BACKOFF_MS", "20")
            .env("BREAKER_OPEN_SECS", "0.5")
            .env("PEER_TIMEOUT_MS", "1500")
            .env("RECOVERY_INTERVAL", "0.25")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("penguin starts");
        self.children.borrow_mut().insert(service, child);
        self.http.wait_healthy(&self.url(service)).await;
    }

    /// SIGKILL: no shutdown, no flushing, as a crash.
    fn kill(&self, service: Service) {
        let child = self.children.borrow_mut().remove(&service);
        if let Some(mut child) = child {
            child.kill().expect("kill -9");
            child.wait().expect("reaped");
        }
    }

    async fn call(
        &self,
        method: &str,
        service: Service,
        path: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut call = self
            .http
            .call(method.parse().unwrap(), format!("{}{path}", self.url(service)))
            .token(TOKEN);
        if let Some(body) = &body {
            call = call.json(body);
        }
        let answer = call.send().await.ok()?;
        Some((answer.status, answer.body))
    }

    async fn get(&self, service: Service, path: &str) -> Value {
        let (status, body) = self.call("GET", service, path, None).await.expect("an answer");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Products with the given stock; returns `(id, units loaded)`.
    async fn stock_up(&self, units: &[i64]) -> Vec<(i64, i64)> {
        let mut productos = Vec::new();
        for (n, units) in units.iter().enumerate() {
            let body = json!({"nombre": format!("producto {n}"), "precio": 1.5 + n as f64});
            let (_, producto) = self
                .call("POST", Service::Productos, "/productos", Some(body))
                .await
                .unwrap();
            let id = producto["id"].as_i64().unwrap();
            let body = json!({"producto_id": id, "cantidad": units});
            self.call("POST", Service::Inventario, "/stock", Some(body))
                .await
                .unwrap();
            productos.push((id, *units));
        }
        productos
    }

    /// Places `count` orders at once: one to three lines each, every fifth asking
    /// for its payment to be rejected. Returns each status (`None`: no answer) and
    /// when it came; `answered` counts them as they come.
    async fn place_orders(
        &self,
        productos: &[(i64, i64)],
        count: usize,
        answered: &Cell<usize>,
    ) -> Vec<(Option<u16>, Instant)> {
        let orders = (0..count).map(|n| {
            let lines = 1 + n % 3;
            let items: Vec<Value> = (0..lines)
                .map(|l| json!({"producto_id": productos[(n + l) % productos.len()].0, "cantidad": 1 + (n + l) % 2}))
                .collect();
            let body = json!({"items": items, "pago": {"medio": "tarjeta", "moneda": "PYG", "fail": n % 5 == 4}});
            async move {
                let status = self.call("POST", Service::Pedidos, "/pedidos", Some(body)).await.map(|(s, _)| s);
                answered.set(answered.get() + 1);
                (status, Instant::now())
            }
        });
        futures_util::future::join_all(orders).await
    }

    /// Every row of a list route.
    async fn all(&self, service: Service, path: &str) -> Vec<Value> {
        let answer = self.get(service, &format!("{path}?limit=1000")).await;
        answer.as_array().unwrap().clone()
    }

    /// Waits for recovery to settle everything, then asserts every invariant of
    /// `penguin check` and returns the orders by estado.
    async fn assert_settles(&self, productos: &[(i64, i64)]) -> BTreeMap<String, usize> {
        let tienda = Tienda {
            pedidos: self.url(Service::Pedidos),
            inventario: self.url(Service::Inventario),
            pagos: self.url(Service::Pagos),
            token: TOKEN.into(),
        };
        let informe = invariantes::check_until(&tienda, productos, &[], Duration::from_secs(60)).await;
        assert!(informe.cumple(), "never settled:\n{informe}");
        informe.pedidos_por_estado
    }
}

#[actix_web::test]
async fn two_hundred_concurrent_orders_over_scarce_stock_never_oversell() {
    let shop = Shop::start().await;
    let productos = shop.stock_up(&[10, 20, 5, 30, 15]).await;
    let statuses: Vec<Option<u16>> = shop
        .place_orders(&productos, 200, &Cell::new(0))
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        statuses.iter().all(|s| matches!(s, Some(201 | 402 | 409))),
        "{statuses:?}"
    );
    let counts = shop.assert_settles(&productos).await;
    let confirmed = statuses.iter().filter(|s| **s == Some(201)).count();
    assert_eq!(counts.get("confirmado").copied().unwrap_or(0), confirmed);
    assert!(
        confirmed > 0 && confirmed < 200,
        "stock runs out part-way: {counts:?}"
    );
}

#[actix_web::test]
async fn the_same_idempotency_key_twenty_times_at_once_makes_one_order_and_one_charge() {
    let shop = Shop::start().await;
    let productos = shop.stock_up(&[100]).await;
    let body = json!({"items": [{"producto_id": productos[0].0, "cantidad": 2}], "pago": {"medio": "t", "moneda": "PYG"}});
    let shop = &shop;
    let requests = (0..20).map(|_| async {
        let answer = shop
            .http
            .call(Method::POST, format!("{}/pedidos", shop.url(Service::Pedidos)))
            .token(TOKEN)
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
    shop.assert_settles(&productos).await;
}

/// Kills `victim` once a fifth of a batch of orders is answered, restarts it, and
/// checks that everything settles and that the kill did land mid-batch.
async fn crash_mid_batch(victim: Service) {
    let shop = Shop::start().await;
    let productos = shop.stock_up(&[40, 40, 40, 40, 40]).await;
    // Warm up, so the batch below is in full flight when the kill comes.
    shop.place_orders(&productos, 5, &Cell::new(0)).await;

    let answered = Cell::new(0);
    let batch = shop.place_orders(&productos, 150, &answered);
    let crash = async {
        while answered.get() < 30 {
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        shop.kill(victim);
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
    shop.spawn(victim).await;
    let counts = shop.assert_settles(&productos).await;
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
