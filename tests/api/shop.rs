//! The one harness for tests that run the penguin binary as a shop: its processes in
//! one temporary folder, started, killed with SIGKILL and started again, with the
//! tests' token on every call and the shop's books checked as `penguin check` checks
//! them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::http::Method;
use penguin::invariants::{self, CheckReport, ClientAnswer, ShopAddress};
use penguin::service::Service;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{
    Answer, Http, Running, TOKEN, free_port, order_body, penguin, serve_alone, start, stocked_product,
};

/// How a [`Shop`] runs its services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One process, `penguin serve all --data-dir data`: its databases and logs in
    /// `data/`, on ports it picks at each start.
    Together,
    /// `penguin serve <service>` each, on a port fixed at the start so that a service
    /// started again is where pedidos looks for it; its database and logs in `<service>/`.
    Apart,
}

/// What every process of a [`Shop`] is started with, before the test's own settings:
/// a failed call retried 20 ms later, a circuit open for half a second, and recovery
/// every quarter of a second, so that a crash or a restore settles in a test's time.
pub const QUICK: [(&str, &str); 4] = [
    ("WORKERS", "2"),
    ("RETRY_BACKOFF_MS", "20"),
    ("BREAKER_OPEN_SECS", "0.5"),
    ("RECOVERY_INTERVAL", "0.25"),
];

/// The four services as real processes.
pub struct Shop {
    pub dir: TempDir,
    pub http: Http,
    layout: Layout,
    env: Vec<(String, String)>,
    ports: HashMap<Service, u16>,
    /// By service when apart; under `None` when together.
    running: RefCell<HashMap<Option<Service>, Running>>,
}

impl Drop for Shop {
    /// Its processes are killed before its folder is removed.
    fn drop(&mut self) {
        self.running.get_mut().clear();
    }
}

impl Shop {
    /// Starts the shop laid out as `layout` and waits until every service answers
    /// `GET /health`. Every process has two workers and retries and recovers quickly
    /// ([`QUICK`]), then `env`, which may change any of that.
    pub async fn start(layout: Layout, env: &[(&str, &str)]) -> Self {
        let shop = Self {
            dir: tempfile::tempdir().expect("a folder"),
            http: Http::default(),
            layout,
            env: QUICK
                .iter()
                .chain(env)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: Service::ALL.iter().map(|s| (*s, free_port())).collect(),
            running: RefCell::default(),
        };
        match layout {
            Layout::Together => shop.run(None).await,
            Layout::Apart => {
                for service in Service::ALL {
                    shop.run(Some(service)).await;
                }
            }
        }
        shop
    }

    /// Starts `service` (`None`: the whole shop, together) and waits until it answers.
    pub async fn run(&self, service: Option<Service>) {
        let running = match service {
            None => {
                assert_eq!(self.layout, Layout::Together);
                let mut command = penguin(self.dir.path());
                command
                    .env("SERVICE_TOKEN", TOKEN)
                    .envs(self.env.iter().map(|(k, v)| (k, v)))
                    .args(["serve", "all", "--base-port", "0", "--data-dir", "data"]);
                start(&mut command, Service::ALL.len())
            }
            Some(service) => {
                assert_eq!(self.layout, Layout::Apart);
                let peers = [
                    ("PRODUCTS_URL", self.url(Service::Productos)),
                    ("INVENTORY_URL", self.url(Service::Inventario)),
                    ("PAYMENTS_URL", self.url(Service::Pagos)),
                ];
                let env: Vec<(&str, String)> = self
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .chain(peers)
                    .collect();
                serve_alone(self.dir.path(), service, self.ports[&service], &env)
            }
        };
        self.running.borrow_mut().insert(service, running);
        let services = service.map_or(Service::ALL.to_vec(), |s| vec![s]);
        for service in services {
            self.http.wait_healthy(&self.url(service)).await;
        }
    }

    /// SIGKILL to `service` (`None`: the whole shop, together): no drain, no
    /// checkpoint, as when its host dies.
    pub fn kill(&self, service: Option<Service>) {
        self.running.borrow_mut().remove(&service);
    }

    /// SIGTERM to `service` (`None`: the whole shop, together), as an orchestrator
    /// stops it, and its exit once it has drained.
    pub fn terminate(&self, service: Option<Service>) -> std::process::ExitStatus {
        let running = self.running.borrow_mut().remove(&service);
        running.expect("it runs").terminate()
    }

    /// Where `service` is reached.
    pub fn url(&self, service: Service) -> String {
        match self.layout {
            Layout::Apart => format!("http://127.0.0.1:{}", self.ports[&service]),
            Layout::Together => self.running.borrow()[&None].urls[service.name()].clone(),
        }
    }

    /// The database file of `service`.
    pub fn database(&self, service: Service) -> PathBuf {
        let folder = match self.layout {
            Layout::Together => "data",
            Layout::Apart => service.name(),
        };
        self.dir.path().join(folder).join(format!("{service}.db"))
    }

    /// `method path` at `service` with the token; `None` if no answer came.
    pub async fn call(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<Value>,
    ) -> Option<Answer> {
        let mut call = self
            .http
            .call(method, format!("{}{path}", self.url(service)))
            .token(TOKEN);
        if let Some(body) = &body {
            call = call.json(body);
        }
        call.send().await.ok()
    }

    pub async fn post(&self, service: Service, path: &str, body: Value) -> Answer {
        let answer = self.call(Method::POST, service, path, Some(body)).await;
        answer.unwrap_or_else(|| panic!("no answer to POST {path}"))
    }

    pub async fn get(&self, service: Service, path: &str) -> Answer {
        let answer = self.call(Method::GET, service, path, None).await;
        answer.unwrap_or_else(|| panic!("no answer to GET {path}"))
    }

    /// Every row of a list route, up to 1000.
    pub async fn all(&self, service: Service, path: &str) -> Vec<Value> {
        let answer = self.get(service, &format!("{path}?limit=1000")).await;
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
        answer.body.as_array().expect("a list").clone()
    }

    /// A product of `precio` with `units` in stock; its id.
    pub async fn stocked(&self, nombre: &str, precio: Value, units: i64) -> i64 {
        let urls = (self.url(Service::Productos), self.url(Service::Inventario));
        stocked_product(&self.http, (&urls.0, &urls.1), nombre, precio, units).await
    }

    /// A product per entry of `units`, with that stock; `(id, units)` of each.
    pub async fn stock_up(&self, units: &[i64]) -> Vec<(i64, i64)> {
        let mut productos = Vec::new();
        for (n, units) in units.iter().enumerate() {
            let id = self
                .stocked(&format!("producto {n}"), json!(1.5 + n as f64), *units)
                .await;
            productos.push((id, *units));
        }
        productos
    }

    /// The `n`th order of a batch over `productos`: one to three lines, every fifth
    /// with its payment rejected.
    pub fn nth_order(productos: &[(i64, i64)], n: usize) -> Value {
        let lines: Vec<(i64, i64)> = (0..1 + n % 3)
            .map(|l| (productos[(n + l) % productos.len()].0, 1 + ((n + l) % 2) as i64))
            .collect();
        order_body(&lines, n % 5 == 4)
    }

    /// Waits (up to a minute) until every invariant of `penguin check` holds over
    /// `productos` and the orders clients were `answered`, and returns the report.
    pub async fn check(&self, productos: &[(i64, i64)], answered: &[ClientAnswer]) -> CheckReport {
        let shop_address = ShopAddress {
            pedidos: self.url(Service::Pedidos),
            inventario: self.url(Service::Inventario),
            pagos: self.url(Service::Pagos),
            token: TOKEN.into(),
        };
        invariants::check_until(&shop_address, productos, answered, Duration::from_secs(60)).await
    }
}
