//! Each service on its own host, for real: pedidos in one network namespace and each
//! peer in another, joined by veth links, each service a process of the real binary
//! listening on its host's address. In the middle of a burst of orders the test sets
//! one link down (`ip link set … down`): orders fail within the bound pedidos'
//! settings give, the breaker opens and answers `503` + `Retry-After` at once, lets
//! calls through again after its open period and opens again as they fail; the link
//! comes back, the breaker closes, recovery settles every order, and the books hold
//! (`penguin check`). First pedidos' end of the link to inventario goes down (no route:
//! connecting fails at once), then pagos' own end of its link (pedidos keeps its route
//! and what it sends vanishes: connecting and answers time out).
//!
//! The test's client is a fifth host, linked to pedidos, which routes between its
//! links: every request of the test crosses a real link, and the client reaches the
//! peers through pedidos' host, as a client outside would. The client runs on a thread
//! that joins its namespace with `setns(2)`, so nothing is added to the machine's own
//! network. Needs root and `ip` (iproute2); elsewhere it says why it is skipped.
//!
//! ```text
//!  cliente 10.77.0.2 ── 10.77.0.1 pedidos 10.77.1.1 ── 10.77.1.2 productos
//!                                         10.77.2.1 ── 10.77.2.2 inventario
//!                                         10.77.3.1 ── 10.77.3.2 pagos
//! ```

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::invariants::{self, ClientAnswer, ShopAddress};
use penguin::service::Service;
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{Answer, Http, TOKEN, order_body, stocked_product};

const BIN: &str = env!("CARGO_BIN_EXE_penguin");

// pedidos' settings, from which every bound below is derived.
const ATTEMPTS: u32 = 2;
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(600);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const BACKOFF: Duration = Duration::from_millis(50);
const BREAKER_FAILURES: u32 = 3;
const BREAKER_OPEN: Duration = Duration::from_secs(3);
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// What a busy two-core machine may add to an order's own time.
const MARGIN: Duration = Duration::from_millis(1500);
/// What a loaded two-core machine may add to a bound of the settings, when all the
/// other tests run beside this one.
const SCHEDULING: Duration = Duration::from_millis(250);
/// Clients placing orders at once during a burst.
const CLIENTS: usize = 8;

/// The longest one peer call may take when the peer cannot be reached: every attempt
/// times out, with the longest backoff (and jitter) before each retry.
fn call_bound() -> Duration {
    let pauses: Duration = (1..ATTEMPTS).map(|retry| BACKOFF * retry + BACKOFF).sum();
    ATTEMPT_TIMEOUT * ATTEMPTS + pauses
}

/// The longest an order may take while its link to `peer` is cut: the calls it may
/// make to that peer each fail within [`call_bound`]. An order calls inventario twice
/// at most (its lote, then releasing it if the first call may have reached inventario),
/// pagos once (the charge; its lote is released at inventario, which answers).
fn order_bound(peer: Service) -> Duration {
    let calls = match peer {
        Service::Inventario => 2,
        _ => 1,
    };
    call_bound() * calls + MARGIN
}

/// The hosts, each a network namespace; `pedidos` is linked to every other one.
const HOSTS: [&str; 5] = ["pedidos", "cliente", "productos", "inventario", "pagos"];

/// pedidos' links: the host at the other end and the /30 the link is numbered in
/// (`10.77.N.0/30`: pedidos' end `.1`, the other `.2`).
const LINKS: [(&str, u8); 4] = [("cliente", 0), ("productos", 1), ("inventario", 2), ("pagos", 3)];

/// Which end of a link is set down.
#[derive(Debug, Clone, Copy)]
enum End {
    /// pedidos' end: its route to the peer goes with it, so connecting fails at once,
    /// and a request already sent on a kept-alive connection waits for its timeout.
    Pedidos,
    /// The peer's end: pedidos' end loses its carrier but keeps its route, and what it
    /// sends vanishes, as into a black hole: connecting and answers time out.
    Peer,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            Self::Pedidos => "pedidos' end",
            Self::Peer => "its own end",
        }
    }
}

/// The network of one test run: five namespaces named `penguin<pid>-<run>-<host>`, so
/// runs side by side do not meet. Dropping it deletes the links and the namespaces.
struct Network {
    prefix: String,
}

/// Where `ip netns` keeps the namespaces it names.
const NETNS_DIR: &str = "/run/netns";

/// `ip` with these arguments, separated by spaces; its complaint if it fails.
fn ip(args: &str) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip cannot run: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "ip {args}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

impl Network {
    /// Builds the network, or says why this machine cannot.
    fn create() -> Result<Self, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        ip("-V").map_err(|e| format!("iproute2 is missing: {e}"))?;
        Self::delete_dead_runs();
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let network = Self {
            prefix: format!(
                "penguin{}-{}",
                std::process::id(),
                RUNS.fetch_add(1, Ordering::SeqCst)
            ),
        };
        // A run killed before its cleanup may have left these very names behind.
        network.delete();
        for host in HOSTS {
            ip(&format!("netns add {}", network.ns(host)))
                .map_err(|e| format!("network namespaces are unavailable: {e}"))?;
        }
        let pedidos = network.ns("pedidos");
        for (host, _) in LINKS {
            let ns = network.ns(host);
            ip(&format!(
                "-n {pedidos} link add to-{host} type veth peer name to-pedidos netns {ns}"
            ))
            .map_err(|e| format!("veth links are unavailable: {e}"))?;
        }
        network.number().expect("the links are numbered and up");
        Ok(network)
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Addresses, links up, routes through pedidos, and pedidos forwarding between its links.
    fn number(&self) -> Result<(), String> {
        let pedidos = self.ns("pedidos");
        for host in HOSTS {
            ip(&format!("-n {} link set lo up", self.ns(host)))?;
        }
        for (host, n) in LINKS {
            let ns = self.ns(host);
            ip(&format!("-n {pedidos} addr add 10.77.{n}.1/30 dev to-{host}"))?;
            ip(&format!("-n {ns} addr add 10.77.{n}.2/30 dev to-pedidos"))?;
            ip(&format!("-n {pedidos} link set to-{host} up"))?;
            ip(&format!("-n {ns} link set to-pedidos up"))?;
            ip(&format!("-n {ns} route add default via {}", Self::gateway(host)))?;
        }
        // /proc/sys/net is the namespace of whoever opens it.
        inside(&pedidos, || std::fs::write("/proc/sys/net/ipv4/ip_forward", "1"))
            .map_err(|_| "the thread inside pedidos' namespace panicked".to_string())?
            .map_err(|e| format!("forwarding in pedidos' namespace: {e}"))
    }

    /// The address `host` is reached at: pedidos' on the client's link, a peer's on its own.
    fn addr(host: &str) -> Ipv4Addr {
        match host {
            "pedidos" => Ipv4Addr::new(10, 77, 0, 1),
            host => Ipv4Addr::new(10, 77, Self::link_number(host), 2),
        }
    }

    /// pedidos' address on the link to `host`, through which `host` reaches the others.
    fn gateway(host: &str) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, Self::link_number(host), 1)
    }

    fn link_number(host: &str) -> u8 {
        LINKS
            .iter()
            .find(|(h, _)| *h == host)
            .expect("a host linked to pedidos")
            .1
    }

    fn url(service: Service) -> String {
        format!("http://{}:{}", Self::addr(service.name()), service.default_port())
    }

    /// Sets one end of the link between pedidos and `peer` down or up.
    fn link(&self, peer: Service, end: End, state: &str) {
        let (ns, device) = match end {
            End::Pedidos => (self.ns("pedidos"), format!("to-{peer}")),
            End::Peer => (self.ns(peer.name()), "to-pedidos".to_string()),
        };
        ip(&format!("-n {ns} link set {device} {state}")).expect("the link changes state");
        if let (End::Peer, "up") = (end, state) {
            // Setting its device down took the peer's default route with it; a host's
            // network configuration would put it back.
            let gateway = Self::gateway(peer.name());
            ip(&format!("-n {ns} route replace default via {gateway}")).expect("the peer's default route");
        }
    }

    /// Deletes the links, then the namespaces, ignoring what is not there.
    fn delete(&self) {
        for (host, _) in LINKS {
            let _ = ip(&format!("-n {} link del to-{host}", self.ns("pedidos")));
        }
        for host in HOSTS {
            let _ = ip(&format!("netns del {}", self.ns(host)));
        }
    }

    /// Deletes the namespaces of runs whose process is gone: killed (Ctrl-C) before
    /// they could clean up.
    fn delete_dead_runs() {
        let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("penguin")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = ip(&format!("netns del {name}"));
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.delete();
        let left: Vec<String> = HOSTS
            .iter()
            .map(|h| self.ns(h))
            .filter(|ns| Path::new(NETNS_DIR).join(ns).exists())
            .collect();
        if !left.is_empty() {
            eprintln!("network namespaces left behind: {left:?}");
        }
    }
}

/// Runs `work` on a thread of its own inside namespace `ns`: every socket it opens is there.
fn inside<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> std::thread::Result<T> {
    let namespace = File::open(Path::new(NETNS_DIR).join(ns)).expect("the namespace's file");
    std::thread::spawn(move || {
        // SAFETY: a valid descriptor of a network namespace; setns moves only this thread.
        let entered = unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
        drop(namespace);
        work()
    })
    .join()
}

/// One order as the test's client saw it.
#[derive(Debug, Clone)]
struct Sent {
    started: Instant,
    took: Duration,
    status: u16,
    pedido_id: i64,
    /// Failed at once because a circuit was open.
    circuit_open: bool,
}

/// The four services, each a process in its own namespace with its own folder.
struct Shop {
    dir: TempDir,
    children: Vec<(Service, Child)>,
    http: Http,
}

impl Shop {
    async fn start(network: &Network) -> Self {
        let mut shop = Self {
            dir: tempfile::tempdir().expect("a folder"),
            children: Vec::new(),
            http: Http::default(),
        };
        for service in Service::ALL {
            let home = shop.home(service);
            std::fs::create_dir(&home).expect("the service's folder");
            let mut command = Command::new("ip");
            command
                .args([
                    "netns",
                    "exec",
                    &network.ns(service.name()),
                    BIN,
                    "serve",
                    service.name(),
                ])
                .current_dir(&home)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("RUST_LOG", "info")
                .env("HOST", Network::addr(service.name()).to_string())
                .env("PORT", service.default_port().to_string())
                .env("DB_PATH", format!("{service}.db"))
                .env("SERVICE_TOKEN", TOKEN)
                .env("PRODUCTS_URL", Network::url(Service::Productos))
                .env("INVENTORY_URL", Network::url(Service::Inventario))
                .env("PAYMENTS_URL", Network::url(Service::Pagos))
                .env("WORKERS", "2")
                .env("RETRY_ATTEMPTS", ATTEMPTS.to_string())
                .env("RETRY_BACKOFF_MS", BACKOFF.as_millis().to_string())
                .env("BREAKER_FAILURES", BREAKER_FAILURES.to_string())
                .env("BREAKER_OPEN_SECS", BREAKER_OPEN.as_secs_f64().to_string())
                .env("PEER_TIMEOUT_MS", ATTEMPT_TIMEOUT.as_millis().to_string())
                .env("PEER_CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT.as_millis().to_string())
                .env("RECOVERY_INTERVAL", RECOVERY_INTERVAL.as_secs_f64().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe. A test killed outright (Ctrl-C) takes
            // its services with it instead of leaving them in namespaces no one deletes.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command.spawn().expect("ip netns exec starts");
            shop.children.push((service, child));
        }
        for service in Service::ALL {
            shop.http.wait_healthy(&Network::url(service)).await;
        }
        shop
    }

    fn home(&self, service: Service) -> PathBuf {
        self.dir.path().join(service.name())
    }

    async fn post(&self, service: Service, path: &str, body: Value) -> Answer {
        self.http
            .call(Method::POST, format!("{}{path}", Network::url(service)))
            .token(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} at {service}: no answer: {e}"))
    }

    /// Products priced and stocked through productos and inventario; returns `(id, units)`.
    async fn stock_up(&self, units: i64) -> Vec<(i64, i64)> {
        let mut productos = Vec::new();
        let urls = (
            Network::url(Service::Productos),
            Network::url(Service::Inventario),
        );
        for (n, precio) in [12.5, 7.0, 3.25].into_iter().enumerate() {
            let nombre = format!("producto {n}");
            let id = stocked_product(&self.http, (&urls.0, &urls.1), &nombre, json!(precio), units).await;
            productos.push((id, units));
        }
        productos
    }

    /// Places the `n`th order: one or two lines, every fifth payment rejected. Every
    /// answer must be one of an order's answers, as JSON naming the order.
    async fn pedir(&self, productos: &[(i64, i64)], n: usize) -> Sent {
        let lines: Vec<(i64, i64)> = (0..1 + n % 2)
            .map(|l| (productos[(n + l) % productos.len()].0, 1 + l as i64))
            .collect();
        let body = order_body(&lines, n % 5 == 4);
        let started = Instant::now();
        let answer = self.post(Service::Pedidos, "/pedidos", body).await;
        let took = started.elapsed();
        assert!(
            matches!(answer.status, 201 | 202 | 402 | 503),
            "an order's answer, got {answer:?}"
        );
        let pedido_id = answer.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("an answer naming its order, got {answer:?}"));
        let retry_after = answer.headers.get("retry-after").map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .expect("Retry-After in seconds")
        });
        if answer.status == 503 {
            assert_eq!(answer.body["error"], "peer_unavailable", "{answer:?}");
            let retry_after = retry_after.unwrap_or_else(|| panic!("a 503 says when to retry: {answer:?}"));
            assert!(
                (1..=BREAKER_OPEN.as_secs()).contains(&retry_after),
                "Retry-After within the open period: {answer:?}"
            );
        }
        Sent {
            started,
            took,
            status: answer.status,
            pedido_id,
            circuit_open: answer.status == 503
                && answer.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("circuit is open")),
        }
    }

    /// How many times pedidos has logged `peer`'s circuit opening, and closing.
    fn transitions(&self, peer: Service) -> (usize, usize) {
        let log = std::fs::read_to_string(self.home(Service::Pedidos).join("logs.log")).unwrap_or_default();
        let count = |what: &str| {
            let line = format!("circuit of {peer} {what}");
            log.lines().filter(|l| l.contains(&line)).count()
        };
        (count("opened"), count("closed"))
    }

    /// Waits for recovery to settle everything and asserts every invariant of
    /// `penguin check`, the answers clients got included; how long it took.
    async fn assert_settles(&self, productos: &[(i64, i64)], sent: &[Sent]) -> Duration {
        let shop_address = ShopAddress {
            pedidos: Network::url(Service::Pedidos),
            inventario: Network::url(Service::Inventario),
            pagos: Network::url(Service::Pagos),
            token: TOKEN.into(),
        };
        let answers: Vec<ClientAnswer> = sent
            .iter()
            .map(|s| ClientAnswer::of(s.status, s.pedido_id))
            .collect();
        let started = Instant::now();
        let report =
            invariants::check_until(&shop_address, productos, &answers, Duration::from_secs(30)).await;
        assert!(report.holds(), "never settled:\n{report}");
        started.elapsed()
    }

    /// SIGTERM to each service, pedidos first; each must drain and exit 0.
    fn stop(&mut self) {
        self.children.sort_by_key(|(s, _)| *s != Service::Pedidos);
        for (service, child) in &mut self.children {
            // SAFETY: kill(2) on the id of a child not yet waited for.
            let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            assert_eq!(sent, 0, "SIGTERM to {service}");
            let deadline = Instant::now() + Duration::from_secs(15);
            let status = loop {
                if let Some(status) = child.try_wait().expect("the child's status") {
                    break status;
                }
                assert!(Instant::now() < deadline, "{service} did not exit");
                std::thread::sleep(Duration::from_millis(20));
            };
            assert!(status.success(), "{service} exited with {status}");
        }
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            for service in Service::ALL {
                let log = std::fs::read_to_string(self.home(service).join("logs.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(25)..].join("\n");
                eprintln!("--- the last lines of {service}'s logs.log:\n{tail}");
            }
        }
    }
}

/// What one cut of a link showed.
struct Cut {
    sent: Vec<Sent>,
    /// How long each order that met the cut link took to fail (or to be answered `202`).
    link_failures: Vec<Duration>,
    /// How long the orders sent one by one to the open circuit took.
    probes: Vec<Duration>,
    /// How long the link was down.
    down_for: Duration,
    /// From the link coming back to the first order confirmed.
    closed_after: Duration,
}

/// Orders from [`CLIENTS`] clients at once; once they flow, one end of the link between
/// pedidos and `peer` goes down. When an order meets the open circuit, a few more probe
/// it one by one. The link stays down until the circuit has let calls through again
/// (half-open) and opened again when they failed; then it comes back, and the clients
/// go on until the circuit lets an order through and it is confirmed.
async fn cut_during_a_burst(
    shop: &Shop,
    network: &Network,
    (peer, end): (Service, End),
    productos: &[(i64, i64)],
) -> Cut {
    let sent = RefCell::new(Vec::<Sent>::new());
    let stop = Cell::new(false);
    let next = Cell::new(0usize);
    let place = || async {
        let order = shop.pedir(productos, next.replace(next.get() + 1)).await;
        sent.borrow_mut().push(order.clone());
        order
    };
    let clients = (0..CLIENTS).map(|_| async {
        while !stop.get() {
            let order = place().await;
            // A client told to come back later waits a little longer.
            let pause = if order.circuit_open { 100 } else { 20 };
            actix_web::rt::time::sleep(Duration::from_millis(pause)).await;
        }
    });
    let control = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.borrow().len() < 2 * CLIENTS {
            assert!(Instant::now() < deadline, "orders do not flow");
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let (opened, closed) = shop.transitions(peer);
        network.link(peer, end, "down");
        let cut_at = Instant::now();

        let deadline = cut_at + order_bound(peer) * 3;
        while !sent.borrow().iter().any(|s| s.circuit_open) {
            assert!(
                Instant::now() < deadline,
                "the circuit of {peer} never opened: {:?}",
                sent.borrow()
            );
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let mut probes = Vec::new();
        for _ in 0..5 {
            let probe = place().await;
            assert!(probe.circuit_open, "the circuit of {peer} is open: {probe:?}");
            probes.push(probe.took);
        }

        // Past the open period the circuit lets calls through; on the cut link they
        // fail, and it opens again.
        let deadline = Instant::now() + BREAKER_OPEN + order_bound(peer) * 2 + Duration::from_secs(5);
        while shop.transitions(peer).0 < opened + 2 {
            assert!(
                Instant::now() < deadline,
                "the circuit of {peer} did not open again while its link was down"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }

        network.link(peer, end, "up");
        let up_at = Instant::now();
        let deadline = up_at + BREAKER_OPEN + Duration::from_secs(15);
        while !sent.borrow().iter().any(|s| s.started > up_at && s.status == 201) {
            assert!(
                Instant::now() < deadline,
                "the circuit of {peer} never closed after its link came back"
            );
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let closed_at = Instant::now();
        stop.set(true);
        let deadline = closed_at + Duration::from_secs(5);
        while shop.transitions(peer).1 < closed + 1 {
            assert!(
                Instant::now() < deadline,
                "pedidos never logged the circuit of {peer} closing"
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        (cut_at, probes, up_at - cut_at, closed_at - up_at)
    };
    let (_, (cut_at, probes, down_for, closed_after)) =
        futures_util::future::join(futures_util::future::join_all(clients), control).await;

    // Closed: every order goes through (every fifth order would be a rejected payment).
    for n in 0..10 {
        let order = shop.pedir(productos, 5 * n).await;
        assert_eq!(order.status, 201, "the circuit of {peer} is closed: {order:?}");
        sent.borrow_mut().push(order);
    }

    let sent = sent.into_inner();
    let bound = order_bound(peer);
    // The circuit had opened by the time the first answer saying so came back.
    let opened_by = sent
        .iter()
        .filter(|o| o.circuit_open)
        .map(|o| o.started + o.took)
        .min()
        .expect("an order met the open circuit");
    for order in &sent {
        assert!(
            order.took <= bound,
            "an order took {:?}, more than the {bound:?} the settings allow with {peer} cut: {order:?}",
            order.took
        );
        // An order whose attempt was already under way when the circuit opened waits
        // for that attempt, then meets the open circuit on its retry; none starts
        // another attempt once the circuit is open.
        let in_flight = opened_by.saturating_duration_since(order.started);
        assert!(
            !order.circuit_open || order.took < in_flight + ATTEMPT_TIMEOUT + BACKOFF * 2 + SCHEDULING,
            "an open circuit answers without waiting for another attempt: {order:?}"
        );
    }
    for took in &probes {
        assert!(
            *took < ATTEMPT_TIMEOUT / 2,
            "an open circuit answers at once, not after {took:?}"
        );
    }
    let link_failures: Vec<Duration> = sent
        .iter()
        .filter(|s| s.started + s.took > cut_at && !matches!(s.status, 201 | 402) && !s.circuit_open)
        .map(|s| s.took)
        .collect();
    assert!(
        !link_failures.is_empty(),
        "no order met the cut link to {peer}: {sent:?}"
    );
    Cut {
        sent,
        link_failures,
        probes,
        down_for,
        closed_after,
    }
}

async fn across_hosts(network: &Network) {
    let mut shop = Shop::start(network).await;
    let productos = shop.stock_up(100_000).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let order = shop.pedir(&productos, n).await;
        let expected = if n % 5 == 4 { 402 } else { 201 };
        assert_eq!(order.status, expected, "{order:?}");
        sent.push(order);
    }
    shop.assert_settles(&productos, &sent).await;

    for (peer, end) in [(Service::Inventario, End::Pedidos), (Service::Pagos, End::Peer)] {
        let cut = cut_during_a_burst(&shop, network, (peer, end), &productos).await;
        let settled_in = shop.assert_settles(&productos, &cut.sent).await;
        let ms = |d: &Duration| d.as_millis();
        let counts = |status| cut.sent.iter().filter(|s| s.status == status).count();
        eprintln!(
            "{peer} cut at {}: {} orders ({} 201, {} 202, {} 402, {} 503, {} of them at the open circuit); \
             {} failed on the cut link in {}..{} ms (bound {} ms); the open circuit answered in {:?} ms; \
             the link was down {} ms; closed {} ms after it came back; settled {} ms later",
            end.name(),
            cut.sent.len(),
            counts(201),
            counts(202),
            counts(402),
            counts(503),
            cut.sent.iter().filter(|s| s.circuit_open).count(),
            cut.link_failures.len(),
            cut.link_failures.iter().map(ms).min().unwrap_or(0),
            cut.link_failures.iter().map(ms).max().unwrap_or(0),
            order_bound(peer).as_millis(),
            cut.probes.iter().map(ms).collect::<Vec<_>>(),
            cut.down_for.as_millis(),
            cut.closed_after.as_millis(),
            settled_in.as_millis(),
        );
        sent.extend(cut.sent);
    }
    shop.assert_settles(&productos, &sent).await;
    shop.stop();
}

#[test]
fn orders_across_hosts_ride_out_a_cut_link_to_inventario_then_to_pagos() {
    let network = match Network::create() {
        Ok(network) => network,
        Err(reason) => return crate::helpers::skip(&reason),
    };
    let client = network.ns("cliente");
    let network = std::sync::Arc::new(network);
    let shared = network.clone();
    let outcome = inside(&client, move || {
        actix_web::rt::System::new().block_on(across_hosts(&shared));
    });
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
