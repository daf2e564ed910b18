//! What the `FROM scratch` image holds, proven without a container engine: the
//! statically linked binary is copied alone into an empty folder and run there with
//! `chroot`; it serves the four services, places an order and probes itself. Then,
//! with only the `/etc/resolv.conf` a container engine or Kubernetes mounts, pedidos
//! finds its peers by name through a DNS server, as it does by service name in compose
//! and Kubernetes. Needs root for `chroot`; skipped, saying why, without it.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::Method;
use serde_json::json;

use crate::helpers::{Http, TOKEN, on_path, skip, start};

/// The `chroot` command, or why this machine cannot run the test.
fn chroot() -> Result<PathBuf, String> {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return Err("the static build is documented for Linux with glibc".into());
    }
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return Err("chroot needs root".into());
    }
    on_path("chroot").ok_or_else(|| "there is no chroot command".into())
}

/// Builds the binary as the README documents it, linked statically, in the debug
/// profile beside the tests' own build (the release build takes minutes longer and
/// links the same way). `.ci/run` builds it before the tests, so here it is fresh.
pub fn static_binary() -> PathBuf {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let target_dir = Path::new(env!("CARGO_BIN_EXE_penguin"))
        .ancestors()
        .nth(2)
        .expect("the target folder");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args([
            "build",
            "--target",
            &target,
            "--bin",
            "penguin",
            "--no-default-features",
            "--target-dir",
        ])
        .arg(target_dir)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the static build failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target_dir.join(target).join("debug/penguin")
}

/// `penguin ARGS` run inside `root`, with nothing from the host's environment.
fn chrooted(chroot: &Path, root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(chroot);
    command
        .arg(root)
        .arg("/penguin")
        .args(args)
        .env_clear()
        .env("SERVICE_TOKEN", TOKEN)
        .env("RUST_LOG", "info");
    command
}

fn probe(chroot: &Path, root: &Path, url: &str) {
    let output = chrooted(chroot, root, &["probe", url])
        .output()
        .expect("chroot runs");
    assert!(
        output.status.success(),
        "penguin probe {url} in the empty root: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Loads a product and its stock through the given services and orders it.
fn place_an_order(productos: &str, inventario: &str, pedidos: &str) {
    actix_web::rt::System::new().block_on(async {
        let http = Http::default();
        let producto = http
            .call(Method::POST, format!("{productos}/productos"))
            .token(TOKEN)
            .json(&json!({"nombre": "Hielo Premium", "precio": 10000}))
            .send()
            .await
            .expect("productos answers");
        assert_eq!(producto.status, 201, "{}", producto.text);
        let id = producto.body["id"].clone();
        let stock = http
            .call(Method::POST, format!("{inventario}/stock"))
            .token(TOKEN)
            .json(&json!({"producto_id": id, "cantidad": 5}))
            .send()
            .await
            .expect("inventario answers");
        assert_eq!(stock.status, 200, "{}", stock.text);
        let pedido = http
            .call(Method::POST, format!("{pedidos}/pedidos"))
            .token(TOKEN)
            .json(&json!({"items": [{"producto_id": id, "cantidad": 2}], "pago": {"medio": "tarjeta", "moneda": "PYG"}}))
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!((pedido.status, pedido.body["estado"].as_str()), (201, Some("confirmado")), "{}", pedido.text);
    });
}

/// What is in `root`, one level down.
fn listing(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_static_binary_alone_in_an_empty_root_serves_an_order_and_probes_itself() {
    let chroot = match chroot() {
        Ok(chroot) => chroot,
        Err(why) => return skip(&why),
    };
    let binary = static_binary();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::copy(&binary, root.join("penguin")).unwrap();

    // Nothing but the binary: serve all, an order, a probe.
    let shop = start(
        &mut chrooted(
            &chroot,
            root,
            &["serve", "all", "--base-port", "0", "--data-dir", "/data"],
        ),
        4,
    );
    let url = |service: &str| shop.urls[service].clone();
    place_an_order(&url("productos"), &url("inventario"), &url("pedidos"));
    probe(&chroot, root, &format!("{}/health", url("pedidos")));
    assert_eq!(
        listing(root),
        ["data", "penguin"],
        "written outside the data folder"
    );
    assert!(root.join("data/logs.log").exists());

    // What a container engine or Kubernetes adds, /etc/resolv.conf, and no more:
    // pedidos alone, its peers named, the names answered by a DNS server.
    let dns = Dns::start(&["productos", "inventario", "pagos", "pedidos"]);
    std::fs::create_dir(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/resolv.conf"), format!("nameserver {}\n", dns.addr)).unwrap();
    let by_name = |service: &str| url(service).replace("127.0.0.1", service);
    let mut command = chrooted(
        &chroot,
        root,
        &["serve", "pedidos", "--port", "0", "--data-dir", "/solo"],
    );
    command
        .env("PRODUCTS_URL", by_name("productos"))
        .env("INVENTORY_URL", by_name("inventario"))
        .env("PAYMENTS_URL", by_name("pagos"));
    let pedidos = start(&mut command, 1);
    place_an_order(&url("productos"), &url("inventario"), &pedidos.urls["pedidos"]);
    let pedidos_port = pedidos.urls["pedidos"].rsplit(':').next().unwrap().to_string();
    probe(&chroot, root, &format!("http://pedidos:{pedidos_port}/health"));
    let asked = dns.asked();
    for name in ["productos", "inventario", "pagos", "pedidos"] {
        assert!(
            asked.contains(&name.to_string()),
            "{name} was never looked up: {asked:?}"
        );
    }
}

/// A DNS server on a loopback address of its own, port 53, that answers the names it
/// was given with 127.0.0.1 and any other name with NXDOMAIN.
struct Dns {
    addr: Ipv4Addr,
    asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Dns {
    fn start(names: &[&str]) -> Self {
        let pid = std::process::id();
        let (socket, addr) = (0..=255u8)
            .find_map(|n| {
                let addr = Ipv4Addr::new(127, 53, (pid % 251) as u8, n);
                UdpSocket::bind((addr, 53)).ok().map(|s| (s, addr))
            })
            .expect("a loopback address with port 53 free");
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (asked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((len, client)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                if let Some((name, reply)) = reply(&buffer[..len], &names) {
                    log.lock().unwrap().push(name);
                    let _ = socket.send_to(&reply, client);
                }
            }
        });
        Self { addr, asked, stop }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The name a query asks for and the answer to it: an A record of 127.0.0.1 for a
/// known name, no record of another type for it, NXDOMAIN for any other name.
fn reply(query: &[u8], names: &[String]) -> Option<(String, Vec<u8>)> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    let qtype = u16::from_be_bytes([*query.get(at + 1)?, *query.get(at + 2)?]);
    let question_end = at + 5;
    let name = labels.join(".");
    let known = names.contains(&name);
    let address = known && qtype == 1;
    let mut answer = query.get(..question_end)?.to_vec();
    answer[2] = 0x81; // a response to a recursive query
    answer[3] = if known { 0x80 } else { 0x83 }; // recursion available; NXDOMAIN
    answer[4..12].copy_from_slice(&[0, 1, 0, u8::from(address), 0, 0, 0, 0]);
    if address {
        // The name by pointer to the question, type A, class IN, TTL 5 s, 4 bytes.
        answer.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 127, 0, 0, 1]);
    }
    Some((name, answer))
}
