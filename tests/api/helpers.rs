//! Spawns real penguin services on port 0 with databases in a temporary folder,
//! and offers typed requests against them.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::http::{Method, header};
use penguin::config::{
    DEFAULT_RESERVATION_TTL, DEFAULT_SHUTDOWN_GRACE, PeerSettings, ServiceSettings, Settings, Target,
};
use penguin::service::Service;
use penguin::startup;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const TOKEN: &str = "test-token";

/// Peer settings fit for tests: the original policy with short waits.
pub fn fast_peers() -> PeerSettings {
    PeerSettings {
        retry_backoff: Duration::from_millis(10),
        breaker_open: Duration::from_secs(1),
        timeout: Duration::from_millis(1500),
        recovery_interval: Duration::from_millis(200),
        ..PeerSettings::defaults()
    }
}

fn service_settings(dir: &Path, service: Service, addr: SocketAddr) -> ServiceSettings {
    ServiceSettings {
        service,
        addr,
        token: TOKEN.into(),
        db_path: dir.join(format!("{}.db", service.name())),
        workers: 2,
        request_timeout: Duration::from_secs(5),
        write_queue: 1024,
        wal_autocheckpoint: penguin::db::DEFAULT_AUTOCHECKPOINT,
        traces: None,
    }
}

/// Some running services, their URLs, and a client for them.
pub struct TestApp {
    pub dir: TempDir,
    pub urls: HashMap<Service, String>,
    pub http: Http,
}

/// An answer, with its body parsed as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    pub body: Value,
    /// The body as sent.
    pub text: String,
}

impl Answer {
    /// Asserts that this is a refusal with `status` and the error `code`.
    #[track_caller]
    pub fn assert_refused(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["error"].as_str()),
            (status, Some(code)),
            "{self:?}"
        );
    }
}

/// The one HTTP client of the tests, for any URL.
#[derive(Clone)]
pub struct Http(awc::Client);

impl Default for Http {
    fn default() -> Self {
        Self(
            awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .connector(awc::Connector::new().limit(200))
                .finish(),
        )
    }
}

/// One request being built: add a token, an `Idempotency-Key`, a body; then send it.
pub struct Call {
    request: awc::ClientRequest,
    body: Option<String>,
}

impl Http {
    pub fn call(&self, method: Method, url: impl AsRef<str>) -> Call {
        Call {
            request: self.0.request(method, url.as_ref()),
            body: None,
        }
    }

    /// Waits until the service at `url` answers `GET /health`; panics after 20 s.
    pub async fn wait_healthy(&self, url: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let health = format!("{url}/health");
        while self.call(Method::GET, &health).send().await.map(|a| a.status) != Ok(200) {
            assert!(std::time::Instant::now() < deadline, "nothing answers {health}");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Call {
    pub fn token(mut self, token: &str) -> Self {
        self.request = self
            .request
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}")));
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.request = self.request.insert_header(("Idempotency-Key", key));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.insert_header((name, value));
        self
    }

    /// A header sent once more, beside one of the same name.
    pub fn another(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.append_header((name, value));
        self
    }

    /// A JSON body, with its content type.
    pub fn json(self, body: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .raw(body.to_string())
    }

    /// A body as it is, with whatever content type was set (or none).
    pub fn raw(mut self, body: String) -> Self {
        self.body = Some(body);
        self
    }

    /// The answer, or why there was none (a connection refused, cut, timed out).
    pub async fn send(self) -> Result<Answer, String> {
        let mut response = match self.body {
            Some(body) => self.request.send_body(body).await,
            None => self.request.send().await,
        }
        .map_err(|e| e.to_string())?;
        let bytes = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }
}

impl TestApp {
    /// The four services as `penguin serve all` starts them, pedidos wired to its siblings.
    pub async fn spawn_all() -> Self {
        Self::spawn_all_with(fast_peers()).await
    }

    pub async fn spawn_all_with(peers: PeerSettings) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let any_port: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let settings = Settings {
            target: Target::All,
            services: Service::ALL
                .iter()
                .map(|s| service_settings(dir.path(), *s, any_port))
                .collect(),
            peers,
            reservation_ttl: DEFAULT_RESERVATION_TTL,
            log_dir: dir.path().to_path_buf(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            log: "info".into(),
            log_max_bytes: 10 << 20,
            log_format: Default::default(),
        };
        let mut app = Self {
            dir,
            urls: HashMap::new(),
            http: Http::default(),
        };
        app.start(&settings);
        app
    }

    /// Nothing running yet; add services with [`TestApp::start_service`].
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
            urls: HashMap::new(),
            http: Http::default(),
        }
    }

    /// Starts one service on `addr` (port 0 for any), with the given peers for pedidos.
    pub fn start_service(&mut self, service: Service, addr: SocketAddr, peers: PeerSettings) {
        self.start_one(service, addr, peers, DEFAULT_RESERVATION_TTL);
    }

    /// Starts productos and inventario on any port, and pedidos with `peers` pointed at
    /// them and at `pagos_url`; creates a product "Hielo" with 10 units and returns its id.
    pub async fn start_shop_with_pagos_at(&mut self, pagos_url: String, peers: PeerSettings) -> i64 {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        self.start_service(Service::Productos, any, fast_peers());
        self.start_service(Service::Inventario, any, fast_peers());
        let peers = PeerSettings {
            products_url: self.url(Service::Productos).to_string(),
            inventory_url: self.url(Service::Inventario).to_string(),
            payments_url: pagos_url,
            ..peers
        };
        self.start_service(Service::Pedidos, any, peers);
        self.stocked("Hielo", serde_json::json!(10), 10).await
    }

    /// Starts one service on any port, its reservations lasting `ttl`.
    pub fn start_service_with_ttl(&mut self, service: Service, ttl: Duration) {
        let any = "127.0.0.1:0".parse().expect("an address");
        self.start_one(service, any, fast_peers(), ttl);
    }

    fn start_one(
        &mut self,
        service: Service,
        addr: SocketAddr,
        peers: PeerSettings,
        reservation_ttl: Duration,
    ) {
        let target = match service {
            Service::Productos => Target::Productos,
            Service::Inventario => Target::Inventario,
            Service::Pagos => Target::Pagos,
            Service::Pedidos => Target::Pedidos,
        };
        let settings = Settings {
            target,
            services: vec![service_settings(self.dir.path(), service, addr)],
            peers,
            reservation_ttl,
            log_dir: self.dir.path().to_path_buf(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            log: "info".into(),
            log_max_bytes: 10 << 20,
            log_format: Default::default(),
        };
        self.start(&settings);
    }

    fn start(&mut self, settings: &Settings) {
        if let Ok(dir) = std::env::var("PENGUIN_TEST_LOG_DIR") {
            static LOGGING: std::sync::Once = std::sync::Once::new();
            LOGGING.call_once(|| {
                penguin::logging::init(Path::new(&dir), "info", 10 << 20, Default::default())
                    .expect("logging starts")
            });
        }
        let started = startup::start(settings).expect("the services start");
        for service in &settings.services {
            let service = service.service;
            self.urls
                .insert(service, started.url(service).expect("a bound service"));
        }
        actix_web::rt::spawn(started.run());
    }

    pub fn url(&self, service: Service) -> &str {
        &self.urls[&service]
    }

    pub async fn request(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        self.request_with_key(method, service, path, body, token, None)
            .await
    }

    /// A request that also carries an `Idempotency-Key`.
    pub async fn post_with_key(&self, service: Service, path: &str, body: &Value, key: &str) -> Answer {
        self.request_with_key(Method::POST, service, path, Some(body), Some(TOKEN), Some(key))
            .await
    }

    async fn request_with_key(
        &self,
        method: Method,
        service: Service,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
        key: Option<&str>,
    ) -> Answer {
        let mut call = self.http.call(method, format!("{}{path}", self.url(service)));
        if let Some(token) = token {
            call = call.token(token);
        }
        if let Some(key) = key {
            call = call.key(key);
        }
        if let Some(body) = body {
            call = call.json(body);
        }
        let answer = call.send().await.expect("the service answers");
        assert!(
            answer.text.is_empty() || !answer.body.is_null(),
            "a JSON body, got {:?}",
            answer.text
        );
        answer
    }

    pub async fn get(&self, service: Service, path: &str) -> Answer {
        self.request(Method::GET, service, path, None, Some(TOKEN)).await
    }

    pub async fn post(&self, service: Service, path: &str, body: Value) -> Answer {
        self.request(Method::POST, service, path, Some(&body), Some(TOKEN))
            .await
    }

    pub async fn put(&self, service: Service, path: &str, body: Value) -> Answer {
        self.request(Method::PUT, service, path, Some(&body), Some(TOKEN))
            .await
    }

    pub async fn delete(&self, service: Service, path: &str) -> Answer {
        self.request(Method::DELETE, service, path, None, Some(TOKEN))
            .await
    }

    /// The value of one series on a service's `/metrics`: the metric `name` with these
    /// labels (besides `service`), or 0 before it has a first value.
    pub async fn metric(&self, service: Service, name: &str, labels: &[(&str, &str)]) -> f64 {
        let url = format!("{}/metrics", self.url(service));
        let text = self
            .http
            .call(Method::GET, url)
            .token(TOKEN)
            .send()
            .await
            .expect("metrics")
            .text;
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .find(|(series, _)| {
                let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
                metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(0.0)
    }

    /// Creates a product and returns its id.
    pub async fn crear_producto(&self, nombre: &str, precio: Value) -> i64 {
        let body = serde_json::json!({"nombre": nombre, "precio": precio});
        let answer = self.post(Service::Productos, "/productos", body).await;
        assert_eq!(answer.status, 201, "{answer:?}");
        answer.body["id"].as_i64().expect("an id")
    }

    pub async fn cargar_stock(&self, producto_id: i64, cantidad: i64) {
        let body = serde_json::json!({"producto_id": producto_id, "cantidad": cantidad});
        let answer = self.post(Service::Inventario, "/stock", body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }

    /// Creates a product with `cantidad` units in stock and returns its id.
    pub async fn stocked(&self, nombre: &str, precio: Value, cantidad: i64) -> i64 {
        let urls = (self.url(Service::Productos), self.url(Service::Inventario));
        stocked_product(&self.http, urls, nombre, precio, cantidad).await
    }

    /// Waits until inventario's expiry has run past every reservation made so far: a
    /// witness of one unit of `producto_id`, reserved now with the same time to live,
    /// has expired and its unit is back. A test that says something did not expire
    /// then knows that it could have.
    pub async fn wait_until_expiry_passes_now(&self, producto_id: i64) {
        let (_, reservado, _) = self.stock(producto_id).await;
        let witness = serde_json::json!({"producto_id": producto_id, "cantidad": 1});
        let answer = self.post(Service::Inventario, "/reservar", witness).await;
        assert_eq!(answer.status, 201, "the witness: {answer:?}");
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while self.stock(producto_id).await.1 > reservado {
            assert!(std::time::Instant::now() < deadline, "the witness never expired");
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `(cantidad, reservado, confirmado)` of a product.
    pub async fn stock(&self, producto_id: i64) -> (i64, i64, i64) {
        let answer = self
            .get(Service::Inventario, &format!("/stock/{producto_id}"))
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        (
            answer.body["cantidad"].as_i64().expect("cantidad"),
            answer.body["reservado"].as_i64().expect("reservado"),
            answer.body["confirmado"].as_i64().expect("confirmado"),
        )
    }

    /// Places an order of `lineas` (product id, units), paid by card in PYG; its
    /// payment is rejected if `fail`.
    pub fn pedir<'a>(&'a self, lineas: &[(i64, i64)], fail: bool) -> impl Future<Output = Answer> + use<'a> {
        self.post(Service::Pedidos, "/pedidos", order_body(lineas, fail))
    }
}

/// How a [`ScriptedPeer`] treats each request.
#[derive(Debug, Clone, Copy)]
pub enum Script {
    /// Close the connection without answering: a peer that crashes mid-request.
    Close,
    /// Reset the connection without answering (an RST, not a FIN).
    Reset,
    /// Answer with these raw HTTP bytes.
    Answer(&'static str),
    /// Keep the connection open and never answer: a hung peer.
    Hang,
    /// Answer with these raw HTTP bytes after a while: a slow peer.
    Slow(Duration, &'static str),
}

/// A peer that is not penguin: a real listener on a real port that treats every
/// request the same way. It counts the requests it gets, to show what pedidos
/// retried and what it skipped.
pub struct ScriptedPeer {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    /// Of those, the charges (`POST /pagar`): recovery's voids and refunds are not.
    charges: Arc<AtomicUsize>,
    /// When each request arrived.
    arrivals: Arc<std::sync::Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ScriptedPeer {
    pub async fn start(script: Script) -> Self {
        Self::start_at("127.0.0.1:0".parse().expect("an address"), script).await
    }

    /// The same, listening on `addr`: where a service was expected.
    pub async fn start_at(addr: SocketAddr, script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let requests = Arc::new(AtomicUsize::new(0));
        let charges = Arc::new(AtomicUsize::new(0));
        let arrivals = Arc::<std::sync::Mutex<Vec<Instant>>>::default();
        let (counter, charge_counter, arrived) = (requests.clone(), charges.clone(), arrivals.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (counter, charge_counter, arrived) =
                    (counter.clone(), charge_counter.clone(), arrived.clone());
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 64 * 1024];
                    // One request per connection: read its head (bodies here are small).
                    if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                        return;
                    }
                    // Recovery reads what a peer changed (`GET /cambios`) every pass,
                    // outside any order: not one of the calls these peers count.
                    if !buffer.starts_with(b"GET /cambios") {
                        arrived.lock().unwrap().push(Instant::now());
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    if buffer.starts_with(b"POST /pagar ") || buffer.starts_with(b"POST /pagar?") {
                        charge_counter.fetch_add(1, Ordering::SeqCst);
                    }
                    match script {
                        Script::Close => {}
                        Script::Reset => {
                            let _ = socket.set_zero_linger();
                            return;
                        }
                        Script::Answer(answer) => {
                            let _ = socket.write_all(answer.as_bytes()).await;
                        }
                        Script::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
                        Script::Slow(delay, answer) => {
                            tokio::time::sleep(delay).await;
                            let _ = socket.write_all(answer.as_bytes()).await;
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            addr,
            requests,
            charges,
            arrivals,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The charges it got: what an order's own attempts sent, whatever recovery
    /// asks of the same peer meanwhile (it voids the charges whose answers were lost).
    pub fn charges(&self) -> usize {
        self.charges.load(Ordering::SeqCst)
    }

    /// When each request arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Stops listening, freeing the port.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// What a [`FaultProxy`] does to the requests a rule matches.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Pass the request on only after this long: a slow peer.
    Delay(Duration),
    /// Never answer, keeping the connection open: a black hole.
    Hang,
    /// Pass the request on, so the peer acts on it, and never pass its answer back:
    /// the answer is lost on the way.
    LoseAnswer,
}

/// `scripts/faultproxy.py`, the fault proxy users run in chaos runs, on a real port
/// in front of one service: every request passes through unless a rule (a method and
/// a path prefix) says to delay it, never answer it, or lose the peer's answer. Rules
/// change while it runs (its rules file, read again on SIGHUP), so a test can switch
/// a fault on and off.
pub struct FaultProxy {
    pub url: String,
    child: Child,
    folder: TempDir,
    rules: std::sync::Mutex<Vec<String>>,
    /// What its log has told so far.
    seen: Arc<(std::sync::Mutex<ProxyLog>, std::sync::Condvar)>,
}

/// What a [`FaultProxy`]'s log has told so far.
#[derive(Debug, Default)]
struct ProxyLog {
    /// Requests received (each is logged with the action it met).
    requests: usize,
    /// Rule sets read.
    reloads: usize,
    /// Why the last rules written were not read, if they were not.
    refused: Option<String>,
}

/// Whether the proxy's `said` is a request and the action it met: `METHOD TARGET: ACTION`.
fn is_request_line(said: &str) -> bool {
    let Some((request, action)) = said.rsplit_once(": ") else {
        return false;
    };
    let Some((method, _target)) = request.split_once(' ') else {
        return false;
    };
    let actions = ["pass", "slow", "delay", "hang", "lose", "reset", "cut"];
    !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) && actions.contains(&action)
}

impl FaultProxy {
    pub fn start(upstream: &str) -> Self {
        let folder = tempfile::tempdir().expect("a folder");
        let rules_file = folder.path().join("rules");
        std::fs::write(&rules_file, "").expect("the rules file");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/faultproxy.py");
        let child = Command::new("python3")
            .arg(script)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--verbose",
                "--rules-file",
            ])
            .arg(&rules_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs the fault proxy");
        // Made at once, so that a proxy that fails to start is killed with it.
        let mut proxy = Self {
            url: String::new(),
            child,
            folder,
            rules: std::sync::Mutex::default(),
            seen: Arc::default(),
        };
        let mut first = String::new();
        let stdout = proxy.child.stdout.take().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("the proxy's first line");
        let listening = first.trim().strip_prefix("faultproxy listening on ");
        proxy.url = format!(
            "http://{}",
            listening.unwrap_or_else(|| panic!("the proxy said {first:?}"))
        );
        let log = proxy.seen.clone();
        let stderr = proxy.child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let (seen, changed) = &*log;
                let mut seen = seen.lock().unwrap();
                // `faultproxy HOST:PORT: ` and what it says.
                let said = line.split_once(": ").map_or("", |(_, said)| said);
                let rules = said
                    .split_once(" rules: ")
                    .or_else(|| said.strip_suffix(" rules:").map(|n| (n, "")));
                if rules.is_some_and(|(n, _)| n.parse::<usize>().is_ok()) {
                    seen.reloads += 1;
                } else if said.starts_with("rules not reloaded") {
                    seen.refused = Some(said.to_string());
                } else if is_request_line(said) {
                    seen.requests += 1;
                }
                changed.notify_all();
            }
        });
        proxy
    }

    /// How many requests it has received so far, answered or not.
    pub fn received(&self) -> usize {
        self.seen.0.lock().unwrap().requests
    }

    /// From now on, `method path…` meets `fault`.
    pub fn fault(&self, method: Method, path: &str, fault: Fault) {
        let action = match fault {
            Fault::Delay(delay) => format!("delay {}", delay.as_millis()),
            Fault::Hang => "hang".into(),
            Fault::LoseAnswer => "lose".into(),
        };
        let prefix: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect();
        self.rules
            .lock()
            .unwrap()
            .push(format!("{method} ^{prefix} {action}"));
        self.reload();
    }

    /// From now on, every request passes through.
    pub fn heal(&self) {
        self.rules.lock().unwrap().clear();
        self.reload();
    }

    /// Writes the rules and waits until the proxy has read them.
    fn reload(&self) {
        let text = self.rules.lock().unwrap().join("\n");
        std::fs::write(self.folder.path().join("rules"), text).expect("the rules file");
        let (seen, changed) = &*self.seen;
        let before = seen.lock().unwrap().reloads;
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0, "SIGHUP to the proxy");
        let (seen, timeout) = changed
            .wait_timeout_while(seen.lock().unwrap(), Duration::from_secs(10), |s| {
                s.reloads == before && s.refused.is_none()
            })
            .unwrap();
        assert!(seen.refused.is_none(), "the proxy refused its rules: {seen:?}");
        assert!(!timeout.timed_out(), "the proxy did not read its rules: {seen:?}");
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of an order of `lineas` (product id, units), paid by card in PYG; its
/// payment is rejected if `fail`.
pub fn order_body(lineas: &[(i64, i64)], fail: bool) -> Value {
    let items: Vec<Value> = lineas
        .iter()
        .map(|(id, cantidad)| serde_json::json!({"producto_id": id, "cantidad": cantidad}))
        .collect();
    serde_json::json!({"items": items, "pago": {"medio": "tarjeta", "moneda": "PYG", "fail": fail}})
}

/// A product of `precio` with `units` in stock, made with the token over HTTP at the
/// productos and the inventario at these URLs; its id.
pub async fn stocked_product(
    http: &Http,
    urls: (&str, &str),
    nombre: &str,
    precio: Value,
    units: i64,
) -> i64 {
    let (productos, inventario) = urls;
    let post = |url: String, body: Value, status: u16| async move {
        let answer = http
            .call(Method::POST, &url)
            .token(TOKEN)
            .json(&body)
            .send()
            .await;
        let answer = answer.unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(answer.status, status, "POST {url}: {answer:?}");
        answer
    };
    let body = serde_json::json!({"nombre": nombre, "precio": precio});
    let producto = post(format!("{productos}/productos"), body, 201).await;
    let id = producto.body["id"].as_i64().expect("an id");
    let body = serde_json::json!({"producto_id": id, "cantidad": units});
    post(format!("{inventario}/stock"), body, 200).await;
    id
}

/// The penguin binary, run in `dir` with nothing from this process's environment.
pub fn penguin(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_penguin"));
    command.current_dir(dir).env_clear().env("RUST_LOG", "info");
    command
}

/// `penguin serve <service>` as a process of its own on `port` (0 for any), with the
/// tests' token and its database and logs in `dir/<service>`, and more `env`.
pub fn serve_alone(dir: &Path, service: Service, port: u16, env: &[(&str, String)]) -> Running {
    let mut command = penguin(dir);
    command
        .args(["serve", service.name(), "--port", &port.to_string(), "--data-dir"])
        .arg(dir.join(service.name()))
        .env("SERVICE_TOKEN", TOKEN);
    for (name, value) in env {
        command.env(name, value);
    }
    start(&mut command, 1)
}

/// Runs penguin to its end and returns its exit status and standard error.
pub fn run_to_end(command: &mut Command) -> (Option<i32>, String) {
    let output = command.output().expect("penguin runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A running penguin and the URL of each service it announced.
pub struct Running {
    child: Child,
    pub urls: HashMap<String, String>,
}

impl Running {
    /// SIGTERM, as an orchestrator stops it, and its exit once it has drained.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM to penguin");
        self.child.wait().expect("penguin exits")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the penguin binary (or what runs it) and waits until it has announced `services` listening.
pub fn start(command: &mut Command, services: usize) -> Running {
    let mut child = command.stderr(Stdio::piped()).spawn().expect("penguin starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // Killed if it never announces, so that a failed start leaves no process behind.
    let mut running = Running {
        child,
        urls: HashMap::new(),
    };
    while running.urls.len() < services {
        let Ok(line) = received.recv_timeout(Duration::from_secs(30)) else {
            panic!("penguin announced only {:?}", running.urls);
        };
        if let Some((service, url)) = announced(&line) {
            running.urls.insert(service, url);
        }
    }
    running
}

/// The service and URL of a `listening on` line, as text (`[… pagos] listening on
/// <url>`) or as JSON (LOG_FORMAT=json).
fn announced(line: &str) -> Option<(String, String)> {
    if let Ok(Value::Object(object)) = serde_json::from_str(line) {
        let url = object.get("message")?.as_str()?.strip_prefix("listening on ")?;
        return Some((object.get("service")?.as_str()?.to_string(), url.to_string()));
    }
    let (head, url) = line.split_once("] listening on ")?;
    let service = head.rsplit(' ').next().unwrap_or_default().to_string();
    Some((service, url.trim().to_string()))
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where `program` is on the `PATH`, if it is.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A line on the real standard error: the test harness keeps what the print macros
/// write to itself unless a test fails.
pub fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The one way a test stops early because this machine lacks what it needs (a tool,
/// root): under CI (`CI` set), where `.ci/run` installs everything the tests need, a
/// skip could only hide a broken install step, so it fails the test, naming what is
/// missing; in a plain run it says that the test was skipped, and why, where it is
/// seen ([`say`]), and the test passes.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if std::env::var_os("CI").is_some() {
        panic!("test {test} cannot run here, and under CI no test may be skipped: {why}");
    }
    say(&format!("test {test} skipped: {why}"));
}
