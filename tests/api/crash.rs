//! The four services as four real processes, killed with SIGKILL in the middle of a
//! batch of orders and restarted from the same files: every order still ends
//! `confirmado`, `rechazado` or `fallido`, and no unit or payment is lost or doubled.

use std::cell::RefCell;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use penguin::service::Service;
use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_penguin");
const TOKEN: &str = "crash-token";

/// Four penguin processes on fixed ports, sharing one folder for their files.
struct Shop {
    dir: TempDir,
    ports: HashMap<Service, u16>,
    children: RefCell<HashMap<Service, Child>>,
    client: awc::Client,
}

impl Drop for Shop {
    fn drop(&mut self) {
        for child in self.children.get_mut().values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Shop {
    async fn start() -> Self {
        let shop = Self {
            dir: tempfile::tempdir().expect("a folder"),
            ports: Service::ALL.iter().map(|s| (*s, free_port())).collect(),
            children: RefCell::default(),
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .connector(awc::Connector::new().limit(64))
                .finish(),
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
        let deadline = Instant::now() + Duration::from_secs(20);
        let health = format!("{}/health", self.url(service));
        while self
            .client
            .get(&health)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
            != Some(200)
        {
            assert!(Instant::now() < deadline, "{service} did not start");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
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
        let request = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.url(service)))
            .insert_header(("Authorization", format!("Bearer {TOKEN}")));
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .ok()?;
        let bytes = response.body().limit(64 * 1024 * 1024).await.ok()?;
        Some((
            response.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
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
    /// for its payment to be rejected. Returns the statuses (`None`: no answer).
    async fn place_orders(&self, productos: &[(i64, i64)], count: usize) -> Vec<Option<u16>> {
        let orders = (0..count).map(|n| {
            let lines = 1 + n % 3;
            let items: Vec<Value> = (0..lines)
                .map(|l| json!({"producto_id": productos[(n + l) % productos.len()].0, "cantidad": 1 + (n + l) % 2}))
                .collect();
            let body = json!({"items": items, "pago": {"medio": "tarjeta", "moneda": "PYG", "fail": n % 5 == 4}});
            async move { self.call("POST", Service::Pedidos, "/pedidos", Some(body)).await.map(|(s, _)| s) }
        });
        futures_util::future::join_all(orders).await
    }

    /// Every order, page by page.
    async fn all(&self, service: Service, path: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page = self
                .get(service, &format!("{path}?limit=1000&offset={}", all.len()))
                .await;
            let page = page.as_array().unwrap().clone();
            let done = page.len() < 1000;
            all.extend(page);
            if done {
                return all;
            }
        }
    }

    /// The invariants, or the first that does not hold.
    async fn check(&self, productos: &[(i64, i64)]) -> Result<HashMap<String, usize>, String> {
        let pedidos = self.all(Service::Pedidos, "/pedidos").await;
        let mut by_estado: HashMap<String, usize> = HashMap::new();
        let mut confirmed_units: HashMap<i64, i64> = HashMap::new();
        for pedido in &pedidos {
            let estado = pedido["estado"].as_str().unwrap_or_default().to_string();
            if !["confirmado", "rechazado", "fallido"].contains(&estado.as_str()) {
                return Err(format!("pedido {} is {estado}", pedido["id"]));
            }
            if estado == "confirmado" {
                for item in pedido["items"].as_array().unwrap() {
                    *confirmed_units
                        .entry(item["producto_id"].as_i64().unwrap())
                        .or_default() += item["cantidad"].as_i64().unwrap();
                }
            }
            *by_estado.entry(estado).or_default() += 1;
        }
        for (id, loaded) in productos {
            let stock = self.get(Service::Inventario, &format!("/stock/{id}")).await;
            let (cantidad, reservado, confirmado) = (
                stock["cantidad"].as_i64().unwrap(),
                stock["reservado"].as_i64().unwrap(),
                stock["confirmado"].as_i64().unwrap(),
            );
            if cantidad + reservado + confirmado != *loaded {
                return Err(format!("producto {id}: {stock} does not add up to {loaded}"));
            }
            if reservado != 0 {
                return Err(format!("producto {id}: {reservado} units still held: {stock}"));
            }
            if confirmado != confirmed_units.get(id).copied().unwrap_or(0) {
                return Err(format!(
                    "producto {id}: {confirmado} confirmed units, orders say {confirmed_units:?}"
                ));
            }
        }
        let pagos = self.all(Service::Pagos, "/pagos").await;
        let approved = pagos.iter().filter(|p| p["estado"] == "aprobado").count();
        let confirmed = by_estado.get("confirmado").copied().unwrap_or(0);
        if approved != confirmed {
            return Err(format!(
                "{approved} approved payments for {confirmed} confirmed orders"
            ));
        }
        let mut referencias: Vec<&str> = pagos.iter().filter_map(|p| p["referencia"].as_str()).collect();
        referencias.sort_unstable();
        if referencias.windows(2).any(|w| w[0] == w[1]) {
            return Err("a referencia was charged twice".into());
        }
        by_estado.insert(
            "reembolsado".into(),
            pagos.iter().filter(|p| p["estado"] == "reembolsado").count(),
        );
        Ok(by_estado)
    }

    /// Waits for recovery to settle everything, then asserts the invariants.
    async fn assert_settles(&self, productos: &[(i64, i64)]) -> HashMap<String, usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.check(productos).await {
                Ok(counts) => return counts,
                Err(e) if Instant::now() > deadline => panic!("never settled: {e}"),
                Err(_) => actix_web::rt::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[actix_web::test]
async fn two_hundred_concurrent_orders_over_scarce_stock_never_oversell() {
    let shop = Shop::start().await;
    let productos = shop.stock_up(&[10, 20, 5, 30, 15]).await;
    let statuses = shop.place_orders(&productos, 200).await;
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
    let requests = (0..20).map(|_| {
        let body = body.clone();
        async move {
            let mut response = shop
                .client
                .post(format!("{}/pedidos", shop.url(Service::Pedidos)))
                .insert_header(("Authorization", format!("Bearer {TOKEN}")))
                .insert_header(("Idempotency-Key", "una-sola-vez"))
                .send_json(&body)
                .await
                .expect("an answer");
            (
                response.status().as_u16(),
                response.json::<Value>().await.expect("JSON"),
            )
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 201);
    assert_eq!(shop.all(Service::Pedidos, "/pedidos").await.len(), 1);
    assert_eq!(shop.all(Service::Pagos, "/pagos").await.len(), 1);
    shop.assert_settles(&productos).await;
}

/// Kills `victim` while a batch of orders runs, restarts it, and checks that
/// everything settles.
async fn crash_mid_batch(victim: Service) {
    let shop = Shop::start().await;
    let productos = shop.stock_up(&[40, 40, 40, 40, 40]).await;
    // Warm up, so the batch below is in full flight when the kill comes.
    shop.place_orders(&productos, 5).await;

    let batch = shop.place_orders(&productos, 150);
    let crash = async {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        shop.kill(victim);
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    };
    let (statuses, ()) = futures_util::future::join(batch, crash).await;
    shop.spawn(victim).await;
    let counts = shop.assert_settles(&productos).await;
    let answered = statuses.iter().filter(|s| s.is_some()).count();
    eprintln!("{victim} killed: {answered} of 150 answered; settled as {counts:?}");
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
