//! `penguin-loadgen` against real servers: a slow one, to show that a fixed rate holds
//! with few connections and that latency counts from when a request was due; a stopped
//! one, to show that failures are no throughput, are backed off and fail the run; and a
//! shop, to show that a run loads its own products and writes answers `penguin check`
//! reads.

use std::process::Command;
use std::time::Duration;

use penguin::service::Service;
use serde_json::Value;

use crate::helpers::{Script, ScriptedPeer, TOKEN, TestApp, free_port};

const SLOW_OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// Runs penguin-loadgen with `args` to its end, off the test's runtime (the servers it
/// loads run there): its exit code and its report as JSON.
async fn loadgen(args: Vec<String>) -> (Option<i32>, Value) {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_penguin-loadgen"))
            .env_clear()
            .args(&args)
            .args(["--quiet", "--json", "-"])
            .output()
            .expect("penguin-loadgen runs")
    })
    .await
    .expect("the run ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = stdout.find("\n{").map_or("", |at| &stdout[at..]);
    let report = serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}) in {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(String::from).collect()
}

/// 20 requests a second for 2 s, from `more` more flags, to a server that answers
/// each after 100 ms: the server and the report of a run that passed, all 40 requests
/// answered.
async fn twenty_a_second_to_a_slow_server(more: &str) -> (ScriptedPeer, Value) {
    let server = ScriptedPeer::start(Script::Slow(Duration::from_millis(100), SLOW_OK)).await;
    let (code, report) = loadgen(args(&format!(
        "--url {}/ --rate 20 --duration 2 {more}",
        server.url()
    )))
    .await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["operations"]["get"]["requests"], 40, "{report}");
    assert_eq!(report["operations"]["get"]["answered"], 40, "{report}");
    (server, report)
}

#[actix_web::test]
async fn a_fixed_rate_is_sent_evenly_at_any_number_of_connections() {
    // One due every 50 ms, over 8 connections: the old per-connection schedule sent
    // them 8 at once every 400 ms.
    let (server, _) = twenty_a_second_to_a_slow_server("--connections 8 --threads 2").await;
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 40);
    let mut gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    let median = gaps[gaps.len() / 2];
    assert!(
        median >= Duration::from_millis(25),
        "requests came in bursts: median gap {median:?}, gaps {gaps:?}"
    );
}

#[actix_web::test]
async fn latency_counts_from_when_a_request_was_due_not_from_when_a_connection_was_free() {
    // One connection to a server that takes 100 ms serves at most 10 a second; 40 are
    // due within 2 s. The 20th is answered 2 s in at the earliest, 1.05 s after it was
    // due; the 40th 4 s in, 2.05 s late. Timed from sending, each would take 100 ms.
    let (_, report) = twenty_a_second_to_a_slow_server("--connections 1").await;
    let get = &report["operations"]["get"];
    assert!(get["p50_ms"].as_f64().unwrap() >= 1000.0, "{report}");
    assert!(get["max_ms"].as_f64().unwrap() >= 2000.0, "{report}");
}

#[actix_web::test]
async fn a_stopped_server_fails_the_run_counts_no_throughput_and_is_tried_a_few_times_a_second() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    // As fast as 8 connections allow: each refusal doubles the thread's wait, 10 ms
    // up to 1 s, so 2 s see 8 rounds of 8 at most, where a loop without a wait makes
    // thousands.
    let (code, report) = loadgen(args(&format!(
        "--url {url} --duration 2 --connections 8 --threads 1"
    )))
    .await;
    assert_eq!(code, Some(1), "{report}");
    let get = &report["operations"]["get"];
    assert_eq!(get["answered"], 0, "{report}");
    assert_eq!(get["throughput"], 0.0, "{report}");
    assert_eq!(report["error_share"], 1.0, "{report}");
    let attempts = get["statuses"]["no answer"].as_u64().unwrap();
    assert!((8..=64).contains(&attempts), "{attempts} attempts: {report}");

    // At a fixed rate the schedule runs on, and what is due while waiting is not sent.
    let (code, report) = loadgen(args(&format!(
        "--url {url} --rate 1000 --duration 2 --connections 8 --threads 1"
    )))
    .await;
    assert_eq!(code, Some(1), "{report}");
    let get = &report["operations"]["get"];
    assert_eq!(get["requests"], 2000, "{report}");
    assert_eq!(get["answered"], 0, "{report}");
    let attempts = get["statuses"]["no answer"].as_u64().unwrap();
    assert!((1..=64).contains(&attempts), "{attempts} attempts: {report}");
}

#[actix_web::test]
async fn a_threshold_of_errors_is_the_users_to_set() {
    // Every read of an unknown product is an error (404 is not what a read is for):
    // a run that allows all of them passes, one that allows none fails.
    let app = TestApp::spawn_all().await;
    let urls = format!(
        "--products-url {} --inventory-url {} --orders-url {} --token {TOKEN} --products 3 --mix read=1 --duration 0.5 --connections 2",
        app.url(Service::Productos),
        app.url(Service::Inventario),
        app.url(Service::Pedidos)
    );
    let (code, report) = loadgen(args(&format!("{urls} --max-error-share 1"))).await;
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report["operations"]["read"]["statuses"]["404"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert_eq!(report["operations"]["read"]["answered"], 0, "{report}");
    let (code, report) = loadgen(args(&format!("{urls} --max-error-share 0"))).await;
    assert_eq!(code, Some(1), "{report}");
}

#[actix_web::test]
async fn a_run_orders_only_its_own_products_and_writes_answers_penguin_check_reads() {
    let app = TestApp::spawn_all().await;
    let loaded_by_hand = app.stocked("by hand", serde_json::json!(10), 5).await;
    let stock_by_hand = app.stock(loaded_by_hand).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let answers = dir.path().join("answers.txt");
    let (code, report) = loadgen(args(&format!(
        "--products-url {} --inventory-url {} --orders-url {} --token {TOKEN} --mix order1=1,order3=1 --duration 1 --rate 40 --connections 4 --fail-share 0.3 --answers {}",
        app.url(Service::Productos),
        app.url(Service::Inventario),
        app.url(Service::Pedidos),
        answers.display()
    )))
    .await;
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(
        app.stock(loaded_by_hand).await,
        stock_by_hand,
        "a product loaded by hand was sold"
    );

    let answers = penguin::invariants::read_answers(std::slice::from_ref(&answers)).expect("answers read");
    let orders: u64 = ["order1", "order3"]
        .iter()
        .map(|op| report["operations"][op]["answered"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(answers.len() as u64, orders, "{report}");
    assert!(answers.iter().any(|r| r.status == 402), "no rejected payment");
    for r in &answers {
        let pedido = app
            .get(Service::Pedidos, &format!("/pedidos/{}", r.pedido_id))
            .await;
        let estado = match r.status {
            201 => "confirmado",
            402 => "rechazado",
            other => panic!("order {} answered {other}", r.pedido_id),
        };
        assert_eq!(pedido.body["estado"], estado, "{r:?}: {:?}", pedido.body);
    }
}
