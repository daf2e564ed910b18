//! The `penguin` binary itself, as a user runs it: help, bad configuration,
//! configuration layers, `serve all` replaying the original walkthrough, and
//! `penguin probe` as an image's health check runs it.

use std::process::Command;
use std::time::Duration;

use actix_web::http::Method;
use penguin::service::Service::{Inventario, Pedidos, Productos};
use serde_json::json;

use crate::helpers::{Http, Script, ScriptedPeer, TOKEN, penguin, run_to_end, start};
use crate::shop::{Layout, Shop};

/// Arguments, environment, and a word the one error line must contain.
type BadCase<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
/// The token that should win, and what sets the layers above the config file.
type Layer = (&'static str, fn(&mut Command));

#[test]
fn help_documents_every_flag_with_its_variable_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = run_to_end(penguin(dir.path()).arg("--help"));
    assert_eq!(code, Some(0));
    let output = penguin(dir.path()).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "PORT",
        "SERVICE_TOKEN",
        "DB_PATH",
        "PRODUCTS_URL",
        "INVENTORY_URL",
        "PAYMENTS_URL",
        "BASE_PORT",
        "DATA_DIR",
        "BREAKER_FAILURES",
        "BREAKER_OPEN_SECS",
        "RETRY_ATTEMPTS",
        "PEER_TIMEOUT_MS",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} missing from:\n{help}"
        );
    }
    assert!(help.contains("default: penguin-secret"));
    assert!(help.contains("default: http://127.0.0.1:5001"));
}

#[test]
fn bad_configuration_ends_with_one_clear_line_and_a_failure_status() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let cases: Vec<BadCase> = vec![
        (vec!["serve", "productos"], vec![("PORT", "abc")], "PORT"),
        (vec!["serve", "productos", "--port", "70000"], vec![], "PORT"),
        (
            vec!["serve", "pagos", "--port", &taken_port],
            vec![],
            "cannot listen",
        ),
        (
            vec!["serve", "pagos", "--port", "0", "--db-path", "/proc/penguin/x.db"],
            vec![],
            "/proc/penguin",
        ),
        (
            vec!["serve", "pedidos", "--products-url", "not a url"],
            vec![],
            "PRODUCTS_URL",
        ),
        (
            vec!["serve", "pedidos", "--payments-url", "ftp://x"],
            vec![],
            "PAYMENTS_URL",
        ),
        (
            vec!["serve", "inventario"],
            vec![("SERVICE_TOKEN", "  ")],
            "SERVICE_TOKEN",
        ),
        (
            vec!["serve", "inventario"],
            vec![("SERVICE_TOKEN", "s\u{e9}cret\u{201d}")],
            "visible ASCII",
        ),
        (vec!["serve", "all", "--port", "5001"], vec![], "--base-port"),
    ];
    for (args, env, expected) in cases {
        let mut command = penguin(dir.path());
        command
            .args(&args)
            .env("SERVICE_TOKEN", "a-test-secret")
            .envs(env.iter().copied());
        let (code, stderr) = run_to_end(&mut command);
        assert!(matches!(code, Some(c) if c != 0), "{args:?} exited {code:?}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains("migrated")).collect();
        assert_eq!(lines.len(), 1, "{args:?} printed {stderr}");
        assert!(lines[0].contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn usage_errors_show_the_whole_message_of_clap() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["serve"], vec!["<TARGET>", "Usage: penguin serve"]),
        (
            vec!["serve", "productos", "--prot", "5"],
            vec!["--prot", "tip", "--port"],
        ),
        (
            vec!["serve", "bodega"],
            vec!["bodega", "possible values", "productos"],
        ),
    ] {
        let (code, stderr) = run_to_end(penguin(dir.path()).args(&args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        for word in expected {
            assert!(stderr.contains(word), "{args:?} lacks {word:?}: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn settings_come_from_flags_then_environment_then_dotenv_then_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(
        dir.path().join("config/productos.env"),
        "SERVICE_TOKEN=from-config\nPORT=0\n",
    )
    .unwrap();
    let layers: [Layer; 4] = [
        ("from-config", |_| {}),
        ("from-dotenv", |_| {}),
        ("from-env", |c| {
            c.env("SERVICE_TOKEN", "from-env");
        }),
        ("from-flag", |c| {
            c.env("SERVICE_TOKEN", "from-env").args(["--token", "from-flag"]);
        }),
    ];
    let system = actix_web::rt::System::new();
    for (expected, layer) in layers {
        if expected != "from-config" {
            std::fs::write(dir.path().join(".env"), "SERVICE_TOKEN=from-dotenv\n").unwrap();
        }
        let mut command = penguin(dir.path());
        command.args(["serve", "productos"]);
        layer(&mut command);
        let running = start(&mut command, 1);
        let url = format!("{}/productos", running.urls["productos"]);
        system.block_on(async {
            for token in ["from-config", "from-dotenv", "from-env", "from-flag"] {
                let answer = Http::default().call(Method::GET, &url).token(token).send().await;
                let status = answer.expect("an answer").status;
                assert_eq!(
                    status == 200,
                    token == expected,
                    "token {token} with {expected} winning"
                );
            }
        });
    }
    assert!(dir.path().join("productos.db").exists());
    assert!(dir.path().join("logs.log").exists());
}

#[actix_web::test]
async fn serve_all_runs_the_original_walkthrough_and_logs_every_request() {
    let shop = Shop::start(Layout::Together, &[]).await;
    let data = shop.dir.path().join("data");
    let body = json!({"nombre": "Hielo Premium", "precio": 10000});
    let answer = shop.post(Productos, "/productos", body).await;
    assert_eq!((answer.status, answer.body["id"].as_i64()), (201, Some(1)));
    let answer = shop
        .post(Inventario, "/stock", json!({"producto_id": 1, "cantidad": 50}))
        .await;
    assert_eq!(answer.status, 200);
    let body = json!({"items":[{"producto_id":1,"cantidad":3}], "pago":{"medio":"tarjeta","moneda":"PYG"}});
    let answer = shop.post(Pedidos, "/pedidos", body).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (201, Some("confirmado")),
        "{answer:?}"
    );
    let body = json!({"items":[{"producto_id":1,"cantidad":2}], "pago":{"medio":"tarjeta","moneda":"PYG","fail":true}});
    let answer = shop.post(Pedidos, "/pedidos", body).await;
    assert_eq!(
        (answer.status, answer.body["estado"].as_str()),
        (402, Some("rechazado")),
        "{answer:?}"
    );
    let stock = shop.get(Inventario, "/stock/1").await.body;
    assert_eq!(
        stock,
        json!({"producto_id": 1, "cantidad": 47, "reservado": 0, "confirmado": 3})
    );
    for db in ["productos.db", "inventario.db", "pagos.db", "pedidos.db"] {
        assert!(data.join(db).exists(), "{db}");
    }
    // The log writer runs beside the requests; give it a moment to catch up.
    let read_logs = || std::fs::read_to_string(data.join("logs.log")).unwrap_or_default();
    for _ in 0..50 {
        if read_logs().contains("pedidos] POST /pedidos 402") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    shop.kill(None);
    let logs = read_logs();
    for line in [
        "productos] POST /productos 201",
        "inventario] POST /stock 200",
        "productos] GET /productos 200",
        "inventario] POST /reservas 201",
        "pagos] POST /pagar 201",
        "inventario] POST /reservas/confirmar 200",
        "pedidos] POST /pedidos 201",
        "inventario] POST /reservas/liberar 200",
        "pedidos] POST /pedidos 402",
    ] {
        assert!(logs.contains(line), "{line:?} missing from logs.log:\n{logs}");
    }
    assert!(!logs.contains(TOKEN), "the token never appears in the logs");
}

#[test]
fn log_level_host_names_and_data_dir_work_from_every_layer() {
    let dir = tempfile::tempdir().unwrap();
    // RUST_LOG from .env: debug lines appear, such as the /health probes.
    std::fs::write(dir.path().join(".env"), "RUST_LOG=debug\nHOST=localhost\n").unwrap();
    let mut command = penguin(dir.path());
    command
        .env_remove("RUST_LOG")
        .args(["serve", "productos", "--port", "0", "--data-dir", "datos"])
        .env("SERVICE_TOKEN", "layers");
    let running = start(&mut command, 1);
    let url = running.urls["productos"].clone();
    actix_web::rt::System::new().block_on(async {
        let answer = Http::default()
            .call(actix_web::http::Method::GET, format!("{url}/health"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status, 200);
    });
    let data = dir.path().join("datos");
    assert!(
        data.join("productos.db").exists(),
        "--data-dir holds a single service's database too"
    );
    let logs = || std::fs::read_to_string(data.join("logs.log")).unwrap_or_default();
    for _ in 0..50 {
        if logs().contains("GET /health 200") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(running);
    let logs = logs();
    assert!(logs.contains("DEBUG productos] GET /health 200"), "{logs}");
    assert!(
        logs.contains("productos.db: created, schema version"),
        "the database names itself: {logs}"
    );
}

/// Runs `penguin probe` to its end, off the runtime so the peers it calls keep
/// answering: its exit status, standard output and standard error.
async fn probe(args: Vec<String>) -> (Option<i32>, String, String) {
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_penguin"))
            .env_clear()
            .arg("probe")
            .args(&args)
            .output()
            .expect("penguin probe runs")
    })
    .await
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn probe_passes_on_a_live_health_and_fails_with_one_line_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = penguin(dir.path());
    command
        .args(["serve", "productos", "--port", "0"])
        .env("SERVICE_TOKEN", "probe");
    let running = start(&mut command, 1);
    let health = format!("{}/health", running.urls["productos"]);
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/health", listener.local_addr().unwrap())
    };
    actix_web::rt::System::new().block_on(async {
        let (code, stdout, stderr) = probe(vec![health]).await;
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains("200 OK"), "{stdout}");

        let missing = ScriptedPeer::start(Script::Answer(
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
        ))
        .await;
        let hung = ScriptedPeer::start(Script::Hang).await;
        let failures = [
            (vec![dead], "connection refused"),
            (
                vec![format!("{}/health", missing.url())],
                "answered 404 Not Found",
            ),
            (
                vec!["--timeout".into(), "0.5".into(), format!("{}/health", hung.url())],
                "no answer within 0.5s",
            ),
        ];
        for (args, why) in failures {
            let (code, stdout, stderr) = probe(args.clone()).await;
            assert_eq!(code, Some(1), "{args:?}: {stderr}");
            assert!(stdout.is_empty(), "{args:?}: {stdout}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(stderr.contains(why), "{args:?}: {stderr}");
        }
    });
}
