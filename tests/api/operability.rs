//! Operating penguin: request ids that follow one order through the four services'
//! logs, readiness, metrics, and refusing work instead of queueing it without bound.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use serde_json::{Value, json};

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{MetricsExposition, PrometheusType, PrometheusValue};
use penguin::service::Service;

use crate::helpers::{
    Fault, FaultProxy, Http, TOKEN, TestApp, fast_peers, free_port, penguin, serve_alone, start,
};
use crate::shop::{Layout, Shop};

/// logs.log once it holds a line with each of `wanted`, or as it is after 10 s.
fn logs_with(dir: &Path, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = std::fs::read_to_string(dir.join("data/logs.log")).unwrap_or_default();
        if wanted.iter().all(|w| logs.contains(w)) || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A header of an answer, as text.
fn header<'a>(answer: &'a crate::helpers::Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The lines of `logs` that end with `request_id=<id>`.
fn lines_of<'a>(logs: &'a str, id: &str) -> Vec<&'a str> {
    let tail = format!(" request_id={id}");
    logs.lines().filter(|l| l.ends_with(&tail)).collect()
}

fn orden(producto: i64) -> Value {
    json!({"items": [{"producto_id": producto, "cantidad": 1}], "pago": {"medio": "t", "moneda": "PYG"}})
}

#[actix_web::test]
async fn one_order_is_found_in_the_logs_of_all_four_services_by_its_request_id() {
    let shop = Shop::start(Layout::Together, &[]).await;
    let pedidos = format!("{}/pedidos", shop.url(Service::Pedidos));
    let (given, from_parent, fresh) = {
        let http = &shop.http;
        let producto = shop.stocked("Hielo", json!(10.0), 100).await;
        let given = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header("X-Request-Id", "order-7f3a")
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(given.status, 201, "{}", given.body);
        assert_eq!(header(&given, "x-request-id"), Some("order-7f3a"));
        assert_eq!(
            given.body["request_id"], "order-7f3a",
            "the order names its request"
        );
        let stored = http
            .call(Method::GET, format!("{pedidos}/{}", given.body["id"]))
            .token(TOKEN)
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(stored.body["request_id"], "order-7f3a");

        let from_parent = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        assert_eq!(
            header(&from_parent, "x-request-id"),
            Some("0af7651916cd43dd8448eb211c80319c"),
            "without an X-Request-Id, the trace id of the traceparent is the id"
        );

        let insane = http
            .call(Method::POST, &pedidos)
            .token(TOKEN)
            .header("X-Request-Id", &"x".repeat(500))
            .json(&orden(producto))
            .send()
            .await
            .expect("pedidos answers");
        let fresh = header(&insane, "x-request-id").unwrap_or_default().to_string();
        assert!(
            fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()),
            "an unusable id is replaced by a new one: {fresh:?}"
        );
        let unauthorized = http.call(Method::GET, &pedidos).send().await.expect("an answer");
        assert_eq!(unauthorized.status, 401);
        assert!(
            unauthorized.headers.contains_key("x-request-id"),
            "every answer has an id"
        );
        (
            "order-7f3a".to_string(),
            "0af7651916cd43dd8448eb211c80319c".to_string(),
            fresh,
        )
    };
    // The last request's line comes after every line of the orders before it.
    let logs = logs_with(shop.dir.path(), &["pedidos] GET /pedidos 401"]);
    shop.kill(None);
    for id in [&given, &from_parent, &fresh] {
        let lines = lines_of(&logs, id);
        for wanted in [
            "pedidos] POST /pedidos 201",
            "productos] GET /productos 200",
            "inventario] POST /reservas 201",
            "pagos] POST /pagar 201",
            "inventario] POST /reservas/confirmar 200",
        ] {
            assert!(
                lines.iter().any(|l| l.contains(wanted)),
                "no line {wanted:?} with request_id={id}:\n{}\n--- whole log ---\n{logs}",
                lines.join("\n")
            );
        }
    }
}

#[actix_web::test]
async fn recovery_moves_an_order_on_under_an_id_of_its_own_that_names_the_placing_request() {
    // productos, inventario and pagos here; inventario's confirmations hang until healed.
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    for service in [Service::Productos, Service::Inventario, Service::Pagos] {
        app.start_service(service, any, fast_peers());
    }
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let inventario = FaultProxy::start(app.url(Service::Inventario));
    inventario.fault(Method::POST, "/reservas/confirmar", Fault::Hang);

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = penguin(dir.path());
    command
        .args(["serve", "pedidos"])
        .env("PORT", port.to_string())
        .env("SERVICE_TOKEN", crate::helpers::TOKEN)
        .env("PRODUCTS_URL", app.url(Service::Productos))
        .env("INVENTORY_URL", &inventario.url)
        .env("PAYMENTS_URL", app.url(Service::Pagos))
        .env("PEER_TIMEOUT_MS", "300")
        .env("RETRY_BACKOFF_MS", "10")
        .env("RECOVERY_INTERVAL", "0.2");
    let running = start(&mut command, 1);
    let pedidos = format!("{}/pedidos", running.urls["pedidos"]);
    let http = Http::default();
    let answer = http
        .call(Method::POST, &pedidos)
        .token(crate::helpers::TOKEN)
        .header("X-Request-Id", "placed-by-me")
        .json(&orden(hielo))
        .send()
        .await
        .expect("pedidos answers");
    assert_eq!(answer.status, 202, "paid, its confirmation owed: {}", answer.body);
    inventario.heal();

    let settled = Instant::now() + Duration::from_secs(20);
    let recovered = loop {
        let logs = std::fs::read_to_string(dir.path().join("logs.log")).unwrap_or_default();
        let finished = logs
            .lines()
            .find(|l| l.contains("recovery finished pedido 1: confirmado"))
            .map(str::to_owned);
        if let Some(line) = finished {
            break (line, logs);
        }
        assert!(
            Instant::now() < settled,
            "recovery never finished pedido 1:\n{logs}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    let (finished, logs) = recovered;
    let (_, id) = finished
        .rsplit_once(" request_id=")
        .expect("the recovery line has an id");
    assert!(id.len() == 32 && id != "placed-by-me", "{finished}");
    let lines = lines_of(&logs, id);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("recovery moves pedido 1 on from cobrado (placed by request placed-by-me)")),
        "the recovery's first line names the request that placed the order:\n{logs}"
    );
    assert!(
        lines_of(&logs, "placed-by-me")
            .iter()
            .any(|l| l.contains("POST /pedidos 202")),
        "{logs}"
    );
    drop(running);
}

type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// A service's `/metrics`, fetched without a token and read by a Prometheus parser.
async fn scrape(app: &TestApp, service: Service) -> Scrape {
    let answer = Http::default()
        .call(Method::GET, format!("{}/metrics", app.url(service)))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(header(&answer, "content-type"), Some("text/plain; version=0.0.4"));
    let scrape = parse_prometheus(&answer.text).expect("Prometheus text format");
    for family in scrape.families.values() {
        for sample in family.iter_samples() {
            let labels = sample.get_labelset().expect("labels");
            assert_eq!(
                labels.get_label_value("service"),
                Some(service.name()),
                "{sample:?}"
            );
        }
    }
    scrape
}

/// The samples of `metric` with these labels (and any others).
fn samples<'a>(
    scrape: &'a Scrape,
    metric: &str,
    labels: &'a [(&str, &str)],
) -> impl Iterator<Item = &'a PrometheusValue> {
    scrape
        .families
        .get(metric)
        .into_iter()
        .flat_map(|family| family.iter_samples())
        .filter(move |sample| {
            sample
                .get_labelset()
                .is_ok_and(|set| labels.iter().all(|(k, v)| set.get_label_value(k) == Some(*v)))
        })
        .map(|sample| &sample.value)
}

/// The value of a counter or gauge with these labels.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(scrape, metric, labels).find_map(|value| match value {
        PrometheusValue::Counter(c) => Some(c.value.as_f64()),
        PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => Some(n.as_f64()),
        _ => None,
    })
}

/// The number of observations of a histogram with these labels.
fn observations(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, metric, labels)
        .find_map(|value| match value {
            PrometheusValue::Histogram(h) => h.count.map(|c| c as f64),
            _ => None,
        })
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn metrics_count_requests_orders_peer_calls_and_stock_in_prometheus_format() {
    let app = TestApp::spawn_all().await;
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    assert_eq!(app.pedir(&[(hielo, 2)], false).await.status, 201);
    assert_eq!(app.pedir(&[(hielo, 1)], true).await.status, 402);
    assert_eq!(app.get(Service::Productos, "/productos/999").await.status, 404);

    let pedidos = scrape(&app, Service::Pedidos).await;
    let posts = [("route", "/pedidos"), ("method", "POST")];
    assert_eq!(
        value(
            &pedidos,
            "penguin_http_requests_total",
            &[posts[0], posts[1], ("status", "201")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &pedidos,
            "penguin_http_requests_total",
            &[posts[0], posts[1], ("status", "402")]
        ),
        Some(1.0)
    );
    assert_eq!(
        observations(&pedidos, "penguin_http_request_duration_seconds", &posts),
        2.0
    );
    assert_eq!(
        value(&pedidos, "penguin_orders_total", &[("estado", "confirmado")]),
        Some(1.0)
    );
    assert_eq!(
        value(&pedidos, "penguin_orders_total", &[("estado", "rechazado")]),
        Some(1.0)
    );
    assert_eq!(
        value(&pedidos, "penguin_orders_total", &[("estado", "fallido")]),
        Some(0.0)
    );
    assert_eq!(value(&pedidos, "penguin_orders_unfinished", &[]), Some(0.0));
    // Two orders: two prices, two lotes, two charges, one confirmation, one release.
    let ok = |peer| {
        value(
            &pedidos,
            "penguin_peer_calls_total",
            &[("peer", peer), ("outcome", "ok")],
        )
    };
    assert_eq!(
        (ok("productos"), ok("inventario"), ok("pagos")),
        (Some(2.0), Some(4.0), Some(2.0))
    );
    assert_eq!(
        observations(
            &pedidos,
            "penguin_peer_call_duration_seconds",
            &[("peer", "inventario")]
        ),
        4.0
    );
    assert_eq!(
        value(&pedidos, "penguin_compensations_total", &[("kind", "release")]),
        Some(1.0)
    );
    for peer in ["productos", "inventario", "pagos"] {
        assert_eq!(
            value(&pedidos, "penguin_circuit_state", &[("peer", peer)]),
            Some(0.0),
            "{peer}"
        );
    }
    assert!(value(&pedidos, "penguin_recovery_passes_total", &[]).is_some());
    assert_eq!(value(&pedidos, "penguin_db_write_queue", &[]), Some(0.0));
    assert!(observations(&pedidos, "penguin_db_commit_batch_size", &[]) >= 4.0);
    assert_eq!(value(&pedidos, "penguin_log_lines_dropped_total", &[]), Some(0.0));

    let productos = scrape(&app, Service::Productos).await;
    let missing = [("route", "/productos/{id}"), ("method", "GET"), ("status", "404")];
    assert_eq!(
        value(&productos, "penguin_http_requests_total", &missing),
        Some(1.0),
        "routes by pattern, not path"
    );

    let inventario = scrape(&app, Service::Inventario).await;
    assert_eq!(value(&inventario, "penguin_reservations_active", &[]), Some(0.0));
    assert_eq!(
        value(&inventario, "penguin_reservations_expired_total", &[]),
        Some(0.0)
    );
    let units = |estado| value(&inventario, "penguin_stock_units", &[("estado", estado)]);
    assert_eq!(
        (units("disponible"), units("reservado"), units("confirmado")),
        (Some(8.0), Some(0.0), Some(2.0))
    );

    let pagos = scrape(&app, Service::Pagos).await;
    assert_eq!(
        value(
            &pagos,
            "penguin_http_requests_total",
            &[("route", "/pagar"), ("status", "201")]
        ),
        Some(2.0)
    );
}

#[actix_web::test]
async fn every_service_shows_its_process_cpu_memory_file_descriptors_and_start_time() {
    let app = TestApp::spawn_all().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    for service in Service::ALL {
        let scrape = scrape(&app, service).await;
        let process =
            |metric| value(&scrape, metric, &[]).unwrap_or_else(|| panic!("{service:?} shows no {metric}"));
        assert!(process("process_cpu_seconds_total") >= 0.0);
        assert!(
            process("process_resident_memory_bytes") > 1024.0 * 1024.0,
            "{service:?}"
        );
        let (open, max) = (process("process_open_fds"), process("process_max_fds"));
        assert!(
            open >= 4.0 && open <= max,
            "{service:?}: {open} of {max} descriptors"
        );
        let started = process("process_start_time_seconds");
        assert!(
            started > now - 24.0 * 3600.0 && started <= now + 1.0,
            "{service:?}: started at {started}, now is {now}"
        );
    }
}

/// The lines of a JSON log, each one object: fails on a line that is not.
fn json_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(object @ Value::Object(_)) => object,
            _ => panic!("not a JSON object: {line:?}\n--- whole log ---\n{logs}"),
        })
        .collect()
}

#[test]
fn with_log_format_json_every_line_is_one_object_with_its_fields_on_the_console_and_in_logs_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = serve_alone(dir.path(), Service::Pagos, 0, &[("LOG_FORMAT", "json".into())]);
    let url = running.urls["pagos"].clone();
    actix_web::rt::System::new().block_on(async {
        let http = Http::default();
        let paid = http
            .call(Method::POST, format!("{url}/pagar"))
            .token(TOKEN)
            .header("X-Request-Id", "json-1")
            .json(&json!({"monto": 10, "moneda": "PYG", "medio": "t"}))
            .send()
            .await
            .expect("pagos answers");
        assert_eq!(paid.status, 201, "{}", paid.body);
        let refused = http
            .call(Method::GET, format!("{url}/pagos"))
            .send()
            .await
            .expect("an answer");
        assert_eq!(refused.status, 401);
    });
    assert!(running.terminate().success());
    let logs = std::fs::read_to_string(dir.path().join("pagos/logs.log")).expect("logs.log");
    let lines = json_lines(&logs);
    for line in &lines {
        for field in ["time", "level", "service", "message"] {
            assert!(line[field].is_string(), "no {field}: {line:?}");
        }
        // A service's name, or for a line about no one service the module that wrote it.
        let service = line["service"].as_str().unwrap_or_default();
        assert!(service == "pagos" || service.starts_with("penguin"), "{line:?}");
        assert!(
            jiff::Timestamp::from_str(line["time"].as_str().unwrap_or_default()).is_ok(),
            "{line:?}"
        );
    }
    let access = |method: &str, status: u64| {
        lines
            .iter()
            .find(|l| l["method"] == method && l["status"] == status)
            .unwrap_or_else(|| panic!("no {method} line with status {status}:\n{logs}"))
    };
    let paid = access("POST", 201);
    assert_eq!(
        (
            &paid["service"],
            &paid["path"],
            &paid["request_id"],
            &paid["level"]
        ),
        (
            &json!("pagos"),
            &json!("/pagar"),
            &json!("json-1"),
            &json!("INFO")
        )
    );
    assert!(
        paid["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{paid:?}"
    );
    assert!(
        paid["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("POST /pagar 201 ")
    );
    assert_eq!(access("GET", 401)["path"], "/pagos");
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("listening on ")),
        "the startup lines too, as the process harness read them on the console:\n{logs}"
    );
}

#[actix_web::test]
async fn an_open_circuit_shows_in_metrics_and_readiness_without_making_pedidos_unready() {
    let mut app = TestApp::empty();
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    app.start_service(Service::Productos, any, fast_peers());
    app.start_service(Service::Inventario, any, fast_peers());
    let peers = penguin::config::PeerSettings {
        products_url: app.url(Service::Productos).to_string(),
        inventory_url: app.url(Service::Inventario).to_string(),
        payments_url: format!("http://127.0.0.1:{}", free_port()),
        ..fast_peers()
    };
    app.start_service(Service::Pedidos, any, peers);
    let hielo = app.stocked("Hielo", json!(10), 10).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(app.pedir(&[(hielo, 1)], false).await.status);
    }
    assert_eq!(statuses, [503; 5], "pagos cannot be reached");

    let pedidos = scrape(&app, Service::Pedidos).await;
    assert_eq!(
        value(&pedidos, "penguin_circuit_state", &[("peer", "pagos")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &pedidos,
            "penguin_circuit_transitions_total",
            &[("peer", "pagos"), ("to", "open")]
        ),
        Some(1.0)
    );
    let failed = value(
        &pedidos,
        "penguin_peer_calls_total",
        &[("peer", "pagos"), ("outcome", "failed")],
    );
    assert_eq!(failed, Some(f64::from(fast_peers().breaker_failures)));
    assert!(value(&pedidos, "penguin_peer_retries_total", &[("peer", "pagos")]) >= Some(1.0));
    assert_eq!(
        value(&pedidos, "penguin_orders_total", &[("estado", "fallido")]),
        Some(5.0)
    );

    let ready = Http::default()
        .call(Method::GET, format!("{}/ready", app.url(Service::Pedidos)))
        .send()
        .await
        .expect("an answer");
    assert_eq!(
        ready.status, 200,
        "a peer down does not make pedidos unready: {}",
        ready.body
    );
    assert_eq!(ready.body["peers"]["pagos"]["circuit"], "open");
    assert!(
        ready.body["peers"]["pagos"]["retry_in_ms"].as_u64().is_some(),
        "{}",
        ready.body
    );
    assert_eq!(ready.body["peers"]["inventario"], json!({"circuit": "closed"}));
}

#[actix_web::test]
async fn ready_is_200_with_the_schema_and_503_naming_the_file_once_the_database_is_gone() {
    let app = TestApp::spawn_all().await;
    let http = Http::default();
    for (service, version) in [
        (Service::Productos, 1),
        (Service::Inventario, 5),
        (Service::Pagos, 4),
        (Service::Pedidos, 9),
    ] {
        let ready = http
            .call(Method::GET, format!("{}/ready", app.url(service)))
            .send()
            .await
            .expect("an answer");
        assert_eq!(ready.status, 200, "{service}: no token needed: {}", ready.body);
        assert_eq!(ready.body["status"], "ready");
        assert_eq!(ready.body["service"], service.name());
        assert_eq!(ready.body["schema_version"], version, "{service}");
        assert_eq!(ready.body["version"], env!("CARGO_PKG_VERSION"));
    }
    std::fs::remove_file(app.dir.path().join("pagos.db")).expect("pagos.db removed");
    let ready = http
        .call(Method::GET, format!("{}/ready", app.url(Service::Pagos)))
        .send()
        .await
        .expect("an answer");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["error"], "not_ready");
    assert!(
        ready.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("pagos.db"),
        "{}",
        ready.body
    );
    assert!(ready.headers.contains_key("retry-after"));
    let health = http
        .call(Method::GET, format!("{}/health", app.url(Service::Pagos)))
        .send()
        .await
        .expect("an answer");
    assert_eq!(health.status, 200, "liveness is not readiness");
}

#[test]
fn a_service_refuses_to_start_on_another_services_database_or_a_newer_schema() {
    use penguin::db::DEFAULT_AUTOCHECKPOINT;
    use penguin::metrics::Metrics;
    let dir = tempfile::tempdir().unwrap();
    let open = |file: &str, service: Service, schema: penguin::db::Schema| {
        let metrics = Metrics::new(service).expect("metrics");
        penguin::db::open(
            &dir.path().join(file),
            &schema,
            &metrics,
            16,
            DEFAULT_AUTOCHECKPOINT,
        )
        .map(drop)
    };
    actix_web::rt::System::new().block_on(async {
        open("pedidos.db", Service::Pedidos, penguin::pedidos::schema()).expect("a new database");
        open("pagos.db", Service::Pagos, penguin::pagos::schema()).expect("a new database");
    });
    let newer = rusqlite::Connection::open(dir.path().join("pagos.db")).expect("pagos.db");
    newer
        .pragma_update(None, "user_version", 99)
        .expect("a newer schema");
    drop(newer);
    // A database of an earlier penguin, from before databases named their owner.
    let mut earlier = rusqlite::Connection::open(dir.path().join("antes.db")).expect("antes.db");
    penguin::pagos::schema()
        .migrations
        .to_latest(&mut earlier)
        .expect("migrated");
    drop(earlier);
    actix_web::rt::System::new().block_on(async {
        open("antes.db", Service::Pagos, penguin::pagos::schema()).expect("an earlier pagos database opens");
    });
    let marked = rusqlite::Connection::open(dir.path().join("antes.db")).expect("antes.db");
    let owner: i32 = marked
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .expect("read");
    assert_eq!(owner, Service::Pagos.application_id(), "and is marked as pagos'");
    drop(marked);
    let stranger = rusqlite::Connection::open(dir.path().join("otro.db")).expect("otro.db");
    stranger
        .execute_batch("CREATE TABLE cosas (id INTEGER)")
        .expect("a table");
    drop(stranger);

    for (file, wanted) in [
        ("pedidos.db", "it is the database of pedidos, not of pagos"),
        (
            "pagos.db",
            "its schema version is 99, newer than the 4 this penguin knows",
        ),
        (
            "otro.db",
            "it is not the database of pagos: it has no table pagos (its tables: cosas)",
        ),
    ] {
        let mut command = penguin(dir.path());
        command.args(["serve", "pagos", "--port", "0", "--db-path", file]);
        let (code, stderr) = crate::helpers::run_to_end(&mut command);
        assert_ne!(code, Some(0), "{file}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.contains("cannot open database") && last.contains(file) && last.contains(wanted),
            "{file}: one line naming the file and the problem, not {stderr:?}"
        );
    }
}

async fn pagar(http: &Http, url: &str, referencia: &str) -> crate::helpers::Answer {
    http.call(Method::POST, format!("{url}/pagar"))
        .token(TOKEN)
        .json(&json!({"monto": 10, "moneda": "PYG", "medio": "t", "referencia": referencia}))
        .send()
        .await
        .expect("pagos answers")
}

/// The referencias of the charges pagos recorded (at most 1000).
async fn referencias(http: &Http, url: &str) -> Vec<String> {
    let pagos = http
        .call(Method::GET, format!("{url}/pagos?limit=1000"))
        .token(TOKEN)
        .send()
        .await
        .expect("pagos answers");
    pagos
        .body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["referencia"].as_str().map(str::to_string))
        .collect()
}

#[actix_web::test]
async fn a_full_write_queue_refuses_new_work_with_503_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let running = serve_alone(dir.path(), Service::Pagos, 0, &[("WRITE_QUEUE", "2".into())]);
    let url = running.urls["pagos"].clone();
    let http = Http::default();
    assert_eq!(pagar(&http, &url, "antes").await.status, 201);

    // Another process holds the write lock: pagos' writer waits, and writes queue up.
    let lock = rusqlite::Connection::open(dir.path().join("pagos/pagos.db")).expect("pagos.db");
    lock.execute_batch("BEGIN IMMEDIATE").expect("the write lock");
    let answered = std::cell::Cell::new(0);
    let orders = (0..12).map(|n| {
        let (http, url, answered) = (&http, &url, &answered);
        async move {
            let answer = pagar(http, url, &format!("ref-{n}")).await;
            answered.set(answered.get() + 1);
            (n, answer)
        }
    });
    let release = async {
        // The refused are answered at once; the queued wait for the lock.
        let deadline = Instant::now() + Duration::from_secs(3);
        while answered.get() < 9 && Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        lock.execute_batch("COMMIT").expect("the lock released");
    };
    let (answers, ()) = futures_util::future::join(futures_util::future::join_all(orders), release).await;

    let refused: Vec<_> = answers.iter().filter(|(_, a)| a.status == 503).collect();
    let charged: Vec<_> = answers.iter().filter(|(_, a)| a.status == 201).collect();
    assert_eq!(refused.len() + charged.len(), 12, "{answers:?}");
    assert!(
        refused.len() >= 9,
        "at most 3 writes wait (one taken, two queued): {answers:?}"
    );
    for (_, answer) in &refused {
        assert_eq!(answer.body["error"], "database_unavailable", "{}", answer.body);
        assert_eq!(header(answer, "retry-after"), Some("1"));
    }
    let recorded = referencias(&http, &url).await;
    assert_eq!(recorded.len(), charged.len() + 1, "{recorded:?}");
    for (n, _) in &refused {
        assert!(
            !recorded.contains(&format!("ref-{n}")),
            "a refused charge was made: ref-{n}"
        );
    }
    let metrics = http
        .call(Method::GET, format!("{url}/metrics"))
        .send()
        .await
        .expect("metrics");
    let scrape = parse_prometheus(&metrics.text).expect("Prometheus text format");
    assert_eq!(
        value(&scrape, "penguin_db_writes_refused_total", &[]),
        Some(refused.len() as f64)
    );
    assert_eq!(value(&scrape, "penguin_db_write_queue", &[]), Some(0.0));
    drop(running);
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// The disk, or why a tmpfs cannot be mounted here (not root).
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Ok(Self(dir)),
            Ok(out) => Err(format!(
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("cannot run mount: {e}")),
        }
    }

    /// Writes a file until the disk has no room left.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.0.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("a filler file");
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[actix_web::test]
async fn a_full_disk_is_503_storage_full_changes_nothing_and_passes_when_room_returns() {
    let disk = match SmallDisk::mount("2m") {
        Ok(disk) => disk,
        Err(why) => return crate::helpers::skip(&why),
    };
    let running = serve_alone(disk.0.path(), Service::Pagos, 0, &[]);
    let url = running.urls["pagos"].clone();
    let http = Http::default();
    assert_eq!(pagar(&http, &url, "antes").await.status, 201);

    let filler = disk.fill();
    // Until SQLite needs a page it does not have, a write may still fit in room the
    // database or its WAL already hold; so write until the disk refuses.
    let mut answers = Vec::new();
    for n in 0..2000 {
        let answer = pagar(&http, &url, &format!("{n:04}-{}", "x".repeat(180))).await;
        let full = answer.status == 503;
        answers.push((n, answer));
        if full {
            break;
        }
    }
    let (n, last) = answers.last().expect("answers");
    assert_eq!(
        last.status, 503,
        "the disk never filled up after {n} charges: {}",
        last.body
    );
    assert_eq!(last.body["error"], "storage_full", "{}", last.body);
    assert!(last.headers.contains_key("retry-after"));
    assert!(
        answers.iter().all(|(_, a)| matches!(a.status, 201 | 503)),
        "never a 500"
    );

    std::fs::remove_file(filler).expect("room again");
    let after = pagar(&http, &url, "despues").await;
    assert_eq!(after.status, 201, "{}", after.body);
    let refused = format!("{n:04}-");
    let recorded = referencias(&http, &url).await;
    assert_eq!(recorded.len(), answers.len() + 1, "every 201 and none of the 503");
    assert!(
        !recorded.iter().any(|r| r.starts_with(&refused)),
        "the refused charge was not made"
    );
    drop(running);
}
