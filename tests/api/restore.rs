//! A service that lost its disk, brought back from a copy: `penguin serve all` as a
//! real process, its databases copied by `penguin backup` while it serves, or
//! replicated by the real Litestream binary to a local `file://` replica; then
//! `kill -9`, one service's files deleted, restored, restarted, and the shop's books
//! checked as `penguin check` checks them, with every order answered before still
//! listed as it was answered.
//!
//! Litestream is taken from `PATH` (`.ci/run` installs it; without it the tests are
//! skipped, which fails under CI).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use penguin::invariants::ClientAnswer;
use penguin::service::Service;
use serde_json::Value;

use crate::helpers::{Http, TOKEN, free_port, penguin, run_to_end, skip, start};
use crate::shop::{Layout, Shop};

/// An order a client placed and the answer it got.
#[derive(Debug, Clone)]
struct Answered {
    status: u16,
    id: i64,
    estado: String,
}

/// `penguin serve all` as one process, leaving checkpoints to Litestream.
async fn shop() -> Shop {
    Shop::start(Layout::Together, &[("WAL_AUTOCHECKPOINT", "0")]).await
}

/// Three products with plenty of stock; `(id, units loaded)` of each.
async fn stock_up(shop: &Shop) -> Vec<(i64, i64)> {
    shop.stock_up(&[10_000; 3]).await
}

/// Places `count` orders ([`Shop::nth_order`]), eight at a time. Each answer is added
/// to `answered` as it comes.
async fn place(shop: &Shop, productos: &[(i64, i64)], count: usize, answered: &RefCell<Vec<Answered>>) {
    for wave in 0..count.div_ceil(8) {
        let orders = (wave * 8..(wave * 8 + 8).min(count)).map(|n| {
            let body = Shop::nth_order(productos, n);
            async move {
                let order = shop.post(Service::Pedidos, "/pedidos", body).await;
                if let (Some(id), Some(estado)) = (order.body["id"].as_i64(), order.body["estado"].as_str()) {
                    answered.borrow_mut().push(Answered {
                        status: order.status,
                        id,
                        estado: estado.to_string(),
                    });
                }
            }
        });
        futures_util::future::join_all(orders).await;
    }
}

/// Every invariant of `penguin check` holds, and every order answered is listed
/// with the estado it was answered with.
async fn assert_intact(shop: &Shop, productos: &[(i64, i64)], answered: &[Answered], after: &str) {
    let answers: Vec<ClientAnswer> = answered
        .iter()
        .map(|a| ClientAnswer::of(a.status, a.id))
        .collect();
    let report = shop.check(productos, &answers).await;
    assert!(report.holds(), "after {after}, the books do not hold:\n{report}");
    let listed = listed(&shop.http, &shop.url(Service::Pedidos)).await;
    for order in answered {
        assert_eq!(
            listed.get(&order.id),
            Some(&order.estado),
            "after {after}, order {} answered {} {} is listed as {:?}",
            order.id,
            order.status,
            order.estado,
            listed.get(&order.id)
        );
    }
}

/// What a lost disk loses of one service: its database, write-ahead log, shared
/// memory, and Litestream's own state beside them.
fn lose_disk(shop: &Shop, service: Service) {
    let db = shop.database(service);
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
            Err(e) => panic!("{}: {e}", file.display()),
        }
    }
    let _ = std::fs::remove_dir_all(db.with_file_name(format!(".{service}.db-litestream")));
    assert!(!db.exists());
}

/// `penguin backup` of the shop in `dir`, run as a user runs it, beside the running shop.
fn backup(dir: &Path, to: &Path, target: &str) -> Output {
    penguin(dir)
        .args(["backup", "--data-dir", "data", "--to"])
        .arg(to)
        .arg(target)
        .output()
        .expect("penguin backup runs")
}

/// Every order the pedidos at `url` lists, by id, with its estado.
async fn listed(http: &Http, url: &str) -> HashMap<i64, String> {
    let mut listed = HashMap::new();
    for offset in (0..).step_by(1000) {
        let answer = http
            .call(
                actix_web::http::Method::GET,
                format!("{url}/pedidos?limit=1000&offset={offset}"),
            )
            .token(TOKEN)
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status, 200, "{}", answer.text);
        let page = answer.body.as_array().expect("a list").clone();
        for order in &page {
            listed.insert(
                order["id"].as_i64().expect("an id"),
                order["estado"].as_str().unwrap_or_default().to_string(),
            );
        }
        if page.len() < 1000 {
            break;
        }
    }
    listed
}

fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[actix_web::test]
async fn a_backup_taken_while_orders_flow_holds_every_order_answered_before_it() {
    let shop = shop().await;
    let productos = stock_up(&shop).await;
    let answered = RefCell::new(Vec::new());
    let backed_up = Cell::new(false);
    let copies = shop.dir.path().join("copies");
    // Orders keep coming in waves until the backup is done, and a few waves after.
    let orders = async {
        let mut after = 0;
        for _ in 0..200 {
            place(&shop, &productos, 8, &answered).await;
            after += usize::from(backed_up.get());
            if after >= 3 {
                break;
            }
        }
    };
    let backing_up = async {
        while answered.borrow().len() < 40 {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let before = answered.borrow().clone();
        let (dir, to) = (shop.dir.path().to_path_buf(), copies.clone());
        let output = actix_web::rt::task::spawn_blocking(move || backup(&dir, &to, "all"))
            .await
            .expect("the backup ends");
        backed_up.set(true);
        (before, output)
    };
    let ((), (before, output)) = futures_util::future::join(orders, backing_up).await;
    assert!(output.status.success(), "{}", said(&output));
    assert!(
        answered.borrow().len() > before.len(),
        "orders went on being answered while the backup ran"
    );
    for service in Service::ALL {
        let copy = copies.join(format!("{service}.db"));
        let conn = rusqlite::Connection::open(&copy).unwrap_or_else(|e| panic!("{}: {e}", copy.display()));
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(verdict, "ok", "{service}");
    }
    // pedidos served from the copy alone (its peers nowhere) lists what it holds.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let mut command = penguin(shop.dir.path());
    command
        .args(["serve", "pedidos", "--port", "0", "--data-dir"])
        .arg(&copies)
        .env("SERVICE_TOKEN", TOKEN)
        .env("PRODUCTS_URL", &nowhere)
        .env("INVENTORY_URL", &nowhere)
        .env("PAYMENTS_URL", &nowhere);
    let copy = start(&mut command, 1);
    let copied = listed(&shop.http, &copy.urls["pedidos"]).await;
    for order in &before {
        assert_eq!(
            copied.get(&order.id),
            Some(&order.estado),
            "order {} answered {} before the backup",
            order.id,
            order.estado
        );
    }
    let again = backup(shop.dir.path(), &copies, "pagos");
    assert!(!again.status.success(), "a backup overwrote an earlier copy");
    assert!(said(&again).contains("already exists"), "{}", said(&again));
}

#[test]
fn backup_is_documented_and_refuses_what_it_cannot_copy() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let output = penguin(dir.path()).args(args).output().expect("penguin runs");
        assert!(output.status.success(), "{}", said(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(help(&["--help"]).contains("backup"));
    let usage = help(&["backup", "--help"]);
    for flag in [
        "--to <DIR>",
        "[env: DB_PATH",
        "[env: DATA_DIR",
        "[env: CONFIG_DIR",
    ] {
        assert!(usage.contains(flag), "{flag} missing from:\n{usage}");
    }

    let out = dir.path().join("out");
    let (code, said) = run_to_end(penguin(dir.path()).args(["backup", "--to", "out", "pagos"]));
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("no database at ./pagos.db"), "{said}");
    let (code, said) = run_to_end(penguin(dir.path()).args(["backup", "--to", "out", "--db-path", "x.db"]));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("--db-path names one service"), "{said}");

    // A pagos database named as pedidos' is refused, and nothing is left behind.
    let metrics = penguin::metrics::Metrics::new(Service::Pagos).unwrap();
    let schema = penguin::pagos::schema();
    actix_web::rt::System::new()
        .block_on(async {
            penguin::db::open(
                &dir.path().join("pagos.db"),
                &schema,
                &metrics,
                16,
                penguin::db::DEFAULT_AUTOCHECKPOINT,
            )
            .map(drop)
        })
        .expect("a pagos database");
    let (code, said) = run_to_end(
        penguin(dir.path())
            .args(["backup", "--to", "out", "pedidos"])
            .env("DB_PATH", "pagos.db"),
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("is not the database of pedidos: it is the database of pagos"),
        "{said}"
    );
    let left: Vec<_> = std::fs::read_dir(&out).map_or_else(|_| Vec::new(), |d| d.collect());
    assert!(left.is_empty(), "{left:?}");
}

#[actix_web::test]
async fn each_service_restored_from_a_backup_taken_when_quiet_keeps_every_order() {
    let shop = shop().await;
    let productos = stock_up(&shop).await;
    let answered = RefCell::new(Vec::new());
    for (round, victim) in Service::ALL.into_iter().enumerate() {
        place(&shop, &productos, 24, &answered).await;
        let copy = shop.dir.path().join(format!("backup-{round}"));
        let output = backup(shop.dir.path(), &copy, victim.name());
        assert!(output.status.success(), "{}", said(&output));
        shop.kill(None);
        lose_disk(&shop, victim);
        std::fs::copy(copy.join(format!("{victim}.db")), shop.database(victim)).expect("the copy put back");
        shop.run(None).await;
        let after = format!("{victim} was restored from penguin backup");
        let so_far = answered.borrow().clone();
        assert_intact(&shop, &productos, &so_far, &after).await;
    }
}

/// A copy that lags: orders placed after it are lost by the restored service, while
/// the other three keep them. The shop heals by itself while new orders keep coming.
#[actix_web::test]
async fn each_service_restored_from_a_copy_that_lags_heals_itself_while_orders_go_on() {
    let shop = shop().await;
    let productos = stock_up(&shop).await;
    let answered = RefCell::new(Vec::new());
    for (round, victim) in [
        Service::Inventario,
        Service::Pagos,
        Service::Pedidos,
        Service::Productos,
    ]
    .into_iter()
    .enumerate()
    {
        place(&shop, &productos, 16, &answered).await;
        let copy = shop.dir.path().join(format!("lagging-{round}"));
        let output = backup(shop.dir.path(), &copy, victim.name());
        assert!(output.status.success(), "{}", said(&output));
        // What the copy will not have: orders confirmed, rejected, and charged.
        place(&shop, &productos, 24, &answered).await;
        shop.kill(None);
        lose_disk(&shop, victim);
        std::fs::copy(copy.join(format!("{victim}.db")), shop.database(victim)).expect("the copy put back");
        shop.run(None).await;
        // New orders at once: the first ones may be refused while the shop heals
        // (503), never sold twice.
        place(&shop, &productos, 24, &answered).await;
        let after = format!("{victim} was restored from a copy 24 orders behind");
        let so_far = answered.borrow().clone();
        assert_intact(&shop, &productos, &so_far, &after).await;
        // Healed: orders are confirmed again (every fifth is rejected on purpose).
        place(&shop, &productos, 8, &answered).await;
        let last: Vec<u16> = answered.borrow().iter().rev().take(8).map(|a| a.status).collect();
        assert!(
            last.iter().all(|s| *s == 201 || *s == 402) && last.contains(&201),
            "after {after}, new orders were answered {last:?}"
        );
    }
    let so_far = answered.borrow().clone();
    assert_intact(&shop, &productos, &so_far, "every restore").await;
}

#[actix_web::test]
async fn with_wal_autocheckpoint_0_penguin_leaves_every_checkpoint_to_litestream_even_at_a_stop() {
    let shop = shop().await;
    let productos = stock_up(&shop).await;
    let answered = RefCell::new(Vec::new());
    place(&shop, &productos, 16, &answered).await;
    let stopped = shop.terminate(None);
    assert!(stopped.success(), "{stopped:?}");
    for service in [Service::Inventario, Service::Pagos, Service::Pedidos] {
        let wal = shop.database(service).with_extension("db-wal");
        let kept = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        assert!(kept > 0, "{service}: the stop checkpointed {}", wal.display());
    }
    shop.run(None).await;
    let so_far = answered.borrow().clone();
    assert_intact(&shop, &productos, &so_far, "a stop without a checkpoint").await;
}

/// The real `litestream replicate`, replicating the shop's four databases to
/// `replica/` beside them, with its control socket for `litestream sync`.
struct Litestream {
    config: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
}

impl Drop for Litestream {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Litestream {
    /// Writes the configuration and starts replicating; `None` when there is no litestream.
    fn start(shop: &Shop) -> Option<Self> {
        let dir = shop.dir.path();
        let socket = dir.join("litestream.sock");
        let mut config = format!("socket:\n  enabled: true\n  path: {}\ndbs:\n", socket.display());
        for service in Service::ALL {
            config += &format!(
                "  - path: {}\n    replica:\n      url: file://{}\n",
                shop.database(service).display(),
                dir.join("replica").join(service.name()).display()
            );
        }
        let path = dir.join("litestream.yml");
        std::fs::write(&path, config).expect("the config is written");
        let mut litestream = Self {
            config: path,
            socket,
            child: None,
        };
        litestream.restart()?;
        Some(litestream)
    }

    fn restart(&mut self) -> Option<()> {
        let child = Command::new("litestream")
            .args(["replicate", "-config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("litestream: {e}"),
        }
        Some(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the replica holds every transaction of `db`: `litestream sync
    /// -wait` asks the running replicator to ship what it has and answers with the
    /// local and replicated positions. Retried while the replicator is still opening.
    async fn caught_up(&self, db: &Path) {
        for _ in 0..200 {
            let output = Command::new("litestream")
                .args(["sync", "-wait", "-json", "-timeout", "30", "-socket"])
                .arg(&self.socket)
                .arg(db)
                .output()
                .expect("litestream sync runs");
            if output.status.success() {
                let position: Value = serde_json::from_slice(&output.stdout).expect("sync answers JSON");
                if position["txid"].as_u64().is_some() && position["txid"] == position["replica_txid"] {
                    return;
                }
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the replica of {} never caught up", db.display());
    }

    /// `litestream restore` of one database from its replica, into its own path.
    fn restore(&self, db: &Path) {
        let output = Command::new("litestream")
            .args(["restore", "-config"])
            .arg(&self.config)
            .arg(db)
            .output()
            .expect("litestream restore runs");
        assert!(output.status.success(), "{}", said(&output));
        assert!(db.is_file(), "nothing restored at {}", db.display());
    }
}

#[actix_web::test]
async fn each_service_restored_by_litestream_after_kill_9_keeps_every_order() {
    let shop = shop().await;
    let Some(mut litestream) = Litestream::start(&shop) else {
        return skip("litestream is not on PATH (.ci/run installs it)");
    };
    let productos = stock_up(&shop).await;
    let answered = RefCell::new(Vec::new());
    for victim in Service::ALL {
        place(&shop, &productos, 24, &answered).await;
        for service in Service::ALL {
            litestream.caught_up(&shop.database(service)).await;
        }
        // The host dies: penguin and its replicator with it.
        shop.kill(None);
        litestream.kill();
        lose_disk(&shop, victim);
        litestream.restore(&shop.database(victim));
        shop.run(None).await;
        litestream.restart().expect("litestream runs again");
        let after = format!("{victim} was restored by litestream");
        let so_far = answered.borrow().clone();
        assert_intact(&shop, &productos, &so_far, &after).await;
    }
}
