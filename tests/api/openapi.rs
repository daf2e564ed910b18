//! Each service publishes its own OpenAPI 3.1 document and a page that shows it, without
//! a token: its routes and the public ones, the limits the code enforces, every status
//! and error code, and the bearer token. schemathesis then holds each service to its own
//! document with all its checks and stateful testing, on fresh databases; that test is
//! skipped, saying why, where schemathesis is not installed, and fails instead under CI
//! (`.ci/run` installs it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use penguin::input::{MAX_CANTIDAD, MAX_KEY_CHARS, MAX_TEXT_CHARS};
use penguin::service::Service;
use serde_json::{Value, json};

use crate::helpers::{TOKEN, TestApp, say, skip};

/// The paths a service's document lists: its own and the public ones every service has.
fn expected_paths(service: Service) -> BTreeSet<&'static str> {
    let own: &[&str] = match service {
        Service::Productos => &["/productos", "/productos/{id}"],
        Service::Inventario => &[
            "/stock",
            "/stock/{producto_id}",
            "/reservar",
            "/liberar",
            "/confirmar",
            "/reservas",
            "/reservas/confirmar",
            "/reservas/liberar",
            "/cambios",
            "/cambios/{clave}",
            "/secuencia",
        ],
        Service::Pagos => &[
            "/pagar",
            "/anular",
            "/reembolsar",
            "/pagos",
            "/pagos/{id}",
            "/pagos/referencia/{referencia}",
            "/cambios",
            "/cambios/{clave}",
            "/secuencia",
        ],
        Service::Pedidos => &["/pedidos", "/pedidos/{id}", "/panel", "/panel/estado"],
    };
    own.iter().chain(&PUBLIC).copied().collect()
}

const PUBLIC: [&str; 5] = ["/health", "/ready", "/metrics", "/openapi.json", "/docs"];
const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

/// The document a service answers, fetched without a token.
async fn document(app: &TestApp, service: Service) -> Value {
    let answer = app
        .request(Method::GET, service, "/openapi.json", None, None)
        .await;
    assert_eq!(answer.status, 200, "{service}: {answer:?}");
    assert!(
        answer
            .headers
            .get("content-type")
            .expect("a content type")
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    answer.body
}

/// `value`, or what its `$ref` names in `doc`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => value,
    }
}

/// The schema of a field of a named schema of `doc`.
fn field<'a>(doc: &'a Value, name: &str, field: &str) -> &'a Value {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    resolve(doc, &schema["properties"][field])
}

/// Every operation of `doc`: `(path, method, operation)`.
fn operations(doc: &Value) -> Vec<(String, &'static str, &Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item[method].is_object() {
                all.push((path.clone(), method, &item[method]));
            }
        }
    }
    all
}

/// The error codes a response of an operation can carry.
fn codes(doc: &Value, operation: &Value, status: &str) -> Vec<String> {
    let schema = &operation["responses"][status]["content"]["application/json"]["schema"];
    let shapes = schema["anyOf"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![schema.clone()]);
    let mut codes = Vec::new();
    for shape in &shapes {
        for part in shape["allOf"].as_array().into_iter().flatten() {
            let error = resolve(doc, &part["properties"]["error"]);
            for code in error["enum"].as_array().into_iter().flatten() {
                codes.push(code.as_str().unwrap().to_string());
            }
        }
    }
    codes
}

#[actix_web::test]
async fn every_service_serves_its_own_openapi_3_1_document_without_a_token() {
    let app = TestApp::spawn_all().await;
    for service in Service::ALL {
        let doc = document(&app, service).await;
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1"),
            "{service}: {}",
            doc["openapi"]
        );
        assert_eq!(doc["info"]["title"], format!("penguin {service}"));
        let paths: BTreeSet<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(paths, expected_paths(service), "{service}");
        let bearer = &doc["components"]["securitySchemes"]["bearer"];
        assert_eq!(bearer["type"], "http", "{service}");
        assert_eq!(bearer["scheme"], "bearer", "{service}");
        for (path, method, operation) in operations(&doc) {
            let public = PUBLIC.contains(&path.as_str()) || path == "/panel";
            let security = &operation["security"];
            if public {
                assert!(security.is_null(), "{service} {method} {path} needs no token");
            } else {
                assert_eq!(security, &json!([{"bearer": []}]), "{service} {method} {path}");
                assert_eq!(codes(&doc, operation, "401"), ["unauthorized"], "{method} {path}");
            }
        }
    }
}

#[actix_web::test]
async fn every_documented_route_is_served_with_its_methods() {
    let app = TestApp::spawn_all().await;
    for service in Service::ALL {
        let doc = document(&app, service).await;
        for (path, method, _) in operations(&doc) {
            if path == "/docs" || path == "/metrics" || path == "/panel" {
                // Not JSON; their own tests ask for them.
                continue;
            }
            let concrete = path
                .split('/')
                .map(|segment| if segment.starts_with('{') { "1" } else { segment })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (method == Method::POST || method == Method::PUT).then(|| json!({}));
            let answer = app
                .request(method.clone(), service, &concrete, body.as_ref(), Some(TOKEN))
                .await;
            assert!(
                !matches!(answer.status, 404 | 405)
                    || !matches!(
                        answer.body["error"].as_str(),
                        Some("route_not_found" | "method_not_allowed")
                    ),
                "{service} {method} {concrete} is documented but not served: {answer:?}"
            );
        }
    }
}

#[actix_web::test]
async fn the_documents_state_the_limits_the_code_enforces() {
    let app = TestApp::spawn_all().await;
    let inventario = document(&app, Service::Inventario).await;
    let pagos = document(&app, Service::Pagos).await;
    let pedidos = document(&app, Service::Pedidos).await;
    let productos = document(&app, Service::Productos).await;

    // cantidad: 1 to 1,000,000 to reserve or order; 0 to 1,000,000 as stock.
    let unidades = &inventario["components"]["schemas"]["Units"];
    let item = &field(&pedidos, "NewPedido", "items")["items"];
    for line in [unidades, item] {
        let cantidad = &line["properties"]["cantidad"];
        assert_eq!(cantidad["minimum"], 1, "{line}");
        assert_eq!(cantidad["maximum"], MAX_CANTIDAD, "{line}");
        assert_eq!(line["properties"]["producto_id"]["minimum"], 1, "{line}");
    }
    assert_eq!(field(&inventario, "StockLoad", "cantidad")["minimum"], 0);
    assert_eq!(
        field(&inventario, "StockLoad", "cantidad")["maximum"],
        MAX_CANTIDAD
    );

    // Positive ids, in paths too.
    let path_id = &productos["paths"]["/productos/{id}"]["get"]["parameters"][0];
    assert_eq!(path_id["in"], "path");
    assert_eq!(path_id["schema"]["minimum"], 1);

    // The Idempotency-Key: 1 to 200 visible ASCII characters.
    for (doc, path) in [(&inventario, "/reservar"), (&pedidos, "/pedidos")] {
        let key = doc["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} documents its Idempotency-Key"));
        assert_eq!(key["in"], "header");
        assert_eq!(key["schema"]["minLength"], 1);
        assert_eq!(key["schema"]["maxLength"], MAX_KEY_CHARS);
        assert_eq!(key["schema"]["pattern"], r"^[\x21-\x7E]+$");
    }

    // moneda and medio: 1 to 200 characters, not blank; money exact and bounded.
    for (doc, schema) in [(&pagos, "Charge"), (&pedidos, "NewPago")] {
        for name in ["moneda", "medio"] {
            let text = field(doc, schema, name);
            assert_eq!(text["minLength"], 1, "{schema}.{name}");
            assert_eq!(text["maxLength"], MAX_TEXT_CHARS, "{schema}.{name}");
            assert!(text["pattern"].is_string(), "{schema}.{name}");
        }
    }
    let monto = field(&pagos, "Charge", "monto");
    assert_eq!(monto["exclusiveMinimum"], 0.0);
    assert_eq!(monto["maximum"], 999_999_999_999.99);
    assert_eq!(monto["multipleOf"], 0.01);
    assert_eq!(field(&productos, "NewProducto", "precio")["minimum"], 0.0);

    // ?limit= 1 to 1000, ?offset= 0 or more.
    let parameters = &pagos["paths"]["/pagos"]["get"]["parameters"];
    let limit = parameters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 1000);
    let offset = parameters
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "offset")
        .unwrap();
    assert_eq!(offset["schema"]["minimum"], 0);

    // An order has 1 to 100 lines.
    let items = field(&pedidos, "NewPedido", "items");
    assert_eq!(items["minItems"], 1);
    assert_eq!(items["maxItems"], 100);

    // Each status with the codes it can carry.
    let obtener_pago = &pagos["paths"]["/pagos/{id}"]["get"];
    assert_eq!(codes(&pagos, obtener_pago, "404"), ["pago_not_found"]);
    assert_eq!(codes(&pagos, obtener_pago, "400"), ["invalid_id"]);
    let reservar = &inventario["paths"]["/reservar"]["post"];
    assert!(codes(&inventario, reservar, "409").contains(&"insufficient_stock".to_string()));
    assert!(codes(&inventario, reservar, "422").contains(&"invalid_key".to_string()));
    let crear_pedido = &pedidos["paths"]["/pedidos"]["post"];
    assert_eq!(codes(&pedidos, crear_pedido, "402"), ["payment_rejected"]);
    assert!(crear_pedido["responses"]["503"]["headers"]["Retry-After"].is_object());
}

#[actix_web::test]
async fn the_docs_page_is_html_that_loads_nothing_from_elsewhere() {
    let app = TestApp::spawn_all().await;
    for service in Service::ALL {
        let answer = app
            .http
            .call(Method::GET, format!("{}/docs", app.url(service)))
            .send()
            .await
            .expect("the page");
        assert_eq!(answer.status, 200, "{service}");
        let content_type = answer
            .headers
            .get("content-type")
            .expect("a content type")
            .to_str()
            .unwrap();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = answer.text.to_lowercase();
        assert!(page.starts_with("<!doctype html>"), "{service}");
        assert!(page.contains("openapi.json"), "the page reads the document");
        for external in ["http://", "https://", "//cdn", "src=\"//", "href=\"//"] {
            assert!(!page.contains(external), "{service}: the page names {external}");
        }
        let policy = answer
            .headers
            .get("content-security-policy")
            .expect("a content security policy")
            .to_str()
            .unwrap();
        assert!(policy.contains("default-src 'none'"), "{policy}");
    }
}

/// How many examples schemathesis draws per operation and phase: enough to find what
/// it finds in a few seconds per service, so the whole test stays within a minute or two.
const MAX_EXAMPLES: &str = "40";
/// The same requests every run; `PENGUIN_SCHEMATHESIS_SEED` picks others.
const SEED: &str = "20261101";
/// Beyond this, a run is stopped and counted as failed.
const RUN_LIMIT: Duration = Duration::from_secs(300);

fn schemathesis_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/schemathesis")
}

/// The schemathesis that `.ci/run` installs, or else the one on the `PATH`.
fn schemathesis() -> PathBuf {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/schemathesis-venv/bin/schemathesis");
    if installed.exists() {
        installed
    } else {
        "schemathesis".into()
    }
}

/// schemathesis's version, or why it cannot be run.
fn schemathesis_version() -> Result<String, String> {
    let output = Command::new(schemathesis())
        .arg("--version")
        .output()
        .map_err(|e| format!("schemathesis is not installed ({e}); `pip install schemathesis` to run it"))?;
    if !output.status.success() {
        return Err(format!(
            "`schemathesis --version` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Runs schemathesis against one service's own document, in fresh servers with fresh
/// databases: whether it passed, what it printed, and how long it took.
async fn run_schemathesis(service: Service) -> (bool, String, Duration) {
    let app = TestApp::spawn_all().await;
    if service == Service::Pedidos {
        // Products that exist, with stock, so that orders reach pagos and succeed or are
        // rejected, beside those that name unknown products or too many units.
        for id in 1..=3 {
            let nombre = format!("producto {id}");
            assert_eq!(app.stocked(&nombre, json!(id * 10), MAX_CANTIDAD).await, id);
        }
    }
    let seed = std::env::var("PENGUIN_SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.into());
    let mut command = Command::new(schemathesis());
    command.arg("--no-color");
    if service == Service::Pedidos {
        command
            .arg("--config-file")
            .arg(schemathesis_dir().join("schemathesis.toml"));
    }
    command
        .arg("run")
        .arg(format!("{}/openapi.json", app.url(service)))
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", &seed])
        .args(["--generation-database", "none"])
        .args(["--workers", "1"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .env("SCHEMATHESIS_HOOKS", schemathesis_dir().join("hooks.py"))
        // schemathesis keeps a cache in its working folder: the test's temporary one.
        .current_dir(app.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let (passed, printed) = actix_web::rt::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("schemathesis starts");
        let stdout = child.stdout.take().expect("its output");
        let stderr = child.stderr.take().expect("its errors");
        let read = |mut pipe: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        };
        let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("schemathesis runs") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let printed = format!(
            "{}{}",
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default()
        );
        match status {
            Some(status) => (status.success(), printed),
            None => (false, format!("{printed}\nstopped after {RUN_LIMIT:?}")),
        }
    })
    .await
    .expect("schemathesis was waited for");
    (passed, printed, started.elapsed())
}

#[actix_web::test]
async fn schemathesis_finds_nothing_wrong_in_any_service() {
    let version = match schemathesis_version() {
        Ok(version) => version,
        Err(why) => return skip(&why),
    };
    let started = Instant::now();
    let runs = futures_util::future::join_all(
        Service::ALL.map(|service| async move { (service, run_schemathesis(service).await) }),
    )
    .await;
    let mut failed = Vec::new();
    for (service, (passed, printed, took)) in runs {
        say(&format!(
            "{version} against {service}: {} in {took:.1?}",
            if passed { "passed" } else { "FAILED" }
        ));
        // Stateful testing must have run, following the documents' links.
        assert!(
            printed.contains("Stateful") && printed.contains("Scenarios:"),
            "{service}: no stateful testing\n{printed}"
        );
        if !passed {
            failed.push(format!("===== {service}\n{printed}"));
        }
    }
    say(&format!("schemathesis, four services: {:.1?}", started.elapsed()));
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
