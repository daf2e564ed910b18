//! `penguin-loadgen`: drives a running penguin with the traffic of a shop — product
//! reads, one- and three-item orders, a share of payments asked to fail — for a fixed
//! time at a fixed concurrency (closed loop) or a fixed rate (open loop), and reports,
//! per operation, the requests, the throughput of answered ones, latency percentiles
//! (an HDR histogram) and answers by status; it exits non-zero when too many failed.
//!
//! At a fixed rate, request `i` is due at `i / rate` seconds from the start, whatever
//! the connections: the threads take turns through one schedule, and each request is
//! sent when due, or as soon as a connection is free. Its latency runs from when it was
//! due, so a stalled server shows in the percentiles rather than slowing the schedule
//! down (no coordinated omission).
//!
//! It is a client like any other: it knows penguin only through its HTTP API.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use std::process::ExitCode;

use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;

/// The flags of `penguin-loadgen`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "penguin-loadgen",
    version,
    about = "Drive a running penguin with shop traffic and report throughput and latency.",
    long_about = None
)]
pub struct LoadgenArgs {
    /// URL of productos
    #[arg(long, env = "PRODUCTS_URL", default_value = "http://127.0.0.1:5001")]
    pub products_url: String,
    /// URL of inventario (used to load the created products' stock)
    #[arg(long, env = "INVENTORY_URL", default_value = "http://127.0.0.1:5002")]
    pub inventory_url: String,
    /// URL of pedidos
    #[arg(long, env = "ORDERS_URL", default_value = "http://127.0.0.1:5004")]
    pub orders_url: String,
    /// Bearer token of the services
    #[arg(
        long,
        env = "SERVICE_TOKEN",
        default_value = "penguin-secret",
        hide_env_values = true
    )]
    pub token: String,
    /// Seconds to run
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Requests in flight at once (at most, with --rate)
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Requests per second in all, sent on an even schedule, instead of as fast as the
    /// connections allow; latency counts from when each request was due
    #[arg(long)]
    pub rate: Option<f64>,
    /// Weights of the operations: read (GET /productos/{id}), order1, order3
    #[arg(long, default_value = "read=50,order1=35,order3=15")]
    pub mix: String,
    /// Share of orders whose payment is asked to fail (`fail: true`)
    #[arg(long, default_value_t = 0.1)]
    pub fail_share: f64,
    /// Create this many products, each with --product-stock units, before the run, and
    /// load only those [default: 10, unless --products]
    #[arg(long, alias = "seed", conflicts_with = "products")]
    pub create_products: Option<usize>,
    /// Units of stock of each created product
    #[arg(long, alias = "seed-stock", default_value_t = 1_000_000)]
    pub product_stock: i64,
    /// Create no products: load the existing products 1 to this (their stock is sold)
    #[arg(long)]
    pub products: Option<usize>,
    /// Exit non-zero when more than this share of requests failed (no answer, 5xx, or
    /// an answer the operation is not for)
    #[arg(long, default_value_t = 0.01)]
    pub max_error_share: f64,
    /// Write each order's answer to this file as `STATUS CURL_EXIT PEDIDO_ID KEY` lines,
    /// as `penguin check --answers` reads them
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
    /// Send no Idempotency-Key with orders
    #[arg(long)]
    pub no_idempotency_keys: bool,
    /// Load one URL with plain GETs instead of the shop's mix (a baseline)
    #[arg(long)]
    pub url: Option<String>,
    /// Client threads [default: the number of CPUs]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write the report as JSON to this file (`-` for standard output)
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No live progress line
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Read,
    Order1,
    Order3,
    Get,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Order1 => "order1",
            Self::Order3 => "order3",
            Self::Get => "get",
        }
    }
}

/// What one operation saw: the latency of every request that got an HTTP answer,
/// and the count of each answer (a status, [`NO_ANSWER`] or [`NOT_SENT`]).
struct OpStats {
    latency: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
}

impl OpStats {
    fn new() -> Self {
        Self {
            // Microseconds, from 1 µs to 60 s, three significant figures.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &OpStats) {
        let _ = self.latency.add(&other.latency);
        for (status, n) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += n;
        }
    }
}

type Stats = BTreeMap<Op, OpStats>;

/// The answer of a request whose connection failed or timed out.
const NO_ANSWER: &str = "no answer";
/// A request due at a fixed rate while refused connections were being waited out.
const NOT_SENT: &str = "not sent (backing off)";

/// The report of one operation, as printed and written as JSON.
#[derive(Debug, Serialize)]
pub struct OpReport {
    /// Every request due, answered or not.
    pub requests: u64,
    /// The answered ones: what the operation is for (see [`answered`]).
    pub answered: u64,
    /// Answered requests per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The rest: no answer, not sent, 5xx, and answers the operation is not for.
    pub errors: u64,
    pub statuses: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seconds: f64,
    pub connections: usize,
    /// Requests per second asked for, if a fixed rate.
    pub rate: Option<f64>,
    /// Errors over requests, of all operations.
    pub error_share: f64,
    pub operations: BTreeMap<String, OpReport>,
}

fn parse_mix(mix: &str) -> Result<Vec<(Op, u32)>, String> {
    let mut ops = Vec::new();
    for part in mix.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("--mix: {part:?} is not name=weight"))?;
        let op = match name.trim() {
            "read" => Op::Read,
            "order1" => Op::Order1,
            "order3" => Op::Order3,
            other => {
                return Err(format!(
                    "--mix: unknown operation {other:?} (read, order1, order3)"
                ));
            }
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("--mix: {part:?} needs a whole weight"))?;
        if weight > 0 {
            ops.push((op, weight));
        }
    }
    if ops.is_empty() {
        return Err("--mix names no operation with a weight above 0".into());
    }
    Ok(ops)
}

fn client(connections: usize) -> awc::Client {
    awc::Client::builder()
        .connector(
            awc::Connector::new()
                .limit(connections.max(1))
                .timeout(Duration::from_secs(5)),
        )
        .timeout(Duration::from_secs(30))
        .finish()
}

/// Runs `penguin loadgen`.
fn main() -> ExitCode {
    match run(LoadgenArgs::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("penguin-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: LoadgenArgs) -> Result<(), String> {
    if args.duration.is_nan() || args.duration <= 0.0 || args.connections == 0 {
        return Err("--duration and --connections must be above 0".into());
    }
    if args.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err("--rate must be above 0".into());
    }
    if args.max_error_share.is_nan() || !(0.0..=1.0).contains(&args.max_error_share) {
        return Err("--max-error-share must be from 0 to 1".into());
    }
    let mix = if args.url.is_some() {
        vec![(Op::Get, 1)]
    } else {
        parse_mix(&args.mix)?
    };
    let productos: Vec<i64> = match (&args.url, args.products) {
        (Some(_), _) => Vec::new(),
        (None, Some(n)) => (1..=n as i64).collect(),
        (None, None) => {
            let n = args.create_products.unwrap_or(10);
            actix_web::rt::System::new()
                .block_on(seed(&args, n))
                .map_err(|e| format!("cannot create the run's products: {e}"))?
        }
    };
    if args.url.is_none() && productos.is_empty() {
        return Err("the run has no products to load (--create-products or --products)".into());
    }
    if productos.len() < 3 && mix.iter().any(|(op, _)| *op == Op::Order3) {
        return Err("three-item orders need at least 3 products".into());
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .clamp(1, args.connections);
    let duration = Duration::from_secs_f64(args.duration);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;

    let progress = (!args.quiet).then(|| progress_line(duration, done.clone(), failed.clone(), started));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let connections = args.connections / threads + usize::from(t < args.connections % threads);
            let job = Job {
                args: args.clone(),
                mix: mix.clone(),
                productos: productos.clone(),
                started,
                deadline,
                done: done.clone(),
                failed: failed.clone(),
                thread: t,
                threads,
            };
            std::thread::spawn(move || actix_web::rt::System::new().block_on(job.run(connections)))
        })
        .collect();
    let mut stats = Stats::new();
    let mut answers = Vec::new();
    for worker in workers {
        let (part, lines) = worker.join().map_err(|_| "a load thread panicked".to_string())?;
        for (op, s) in part {
            stats.entry(op).or_insert_with(OpStats::new).merge(&s);
        }
        answers.extend(lines);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some((bar, ticker)) = progress {
        bar.finish_and_clear();
        let _ = ticker.join();
    }
    let report = report(&stats, seconds, &args);
    print!("{}", render(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            write(path, &text)?;
        }
    }
    if let Some(path) = &args.answers {
        write(path, &answers.concat())?;
    }
    if report.error_share > args.max_error_share {
        return Err(format!(
            "{:.2}% of requests failed, more than --max-error-share {}",
            report.error_share * 100.0,
            args.max_error_share
        ));
    }
    Ok(())
}

fn write(path: &std::path::Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn progress_line(
    duration: Duration,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    started: Instant,
) -> (indicatif::ProgressBar, std::thread::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new(duration.as_millis() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let ticking = bar.clone();
    let ticker = std::thread::spawn(move || {
        while !ticking.is_finished() {
            let elapsed = started.elapsed();
            let n = done.load(Ordering::Relaxed);
            ticking.set_position(elapsed.as_millis().min(duration.as_millis()) as u64);
            ticking.set_message(format!(
                "{n} requests, {:.0}/s, {} errors",
                n as f64 / elapsed.as_secs_f64().max(1e-3),
                failed.load(Ordering::Relaxed)
            ));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    (bar, ticker)
}

/// Creates `n` products with stock; returns their ids.
async fn seed(args: &LoadgenArgs, n: usize) -> Result<Vec<i64>, String> {
    let client = client(8);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({"nombre": format!("loadgen {i}"), "precio": 10 + (i % 90) as i64});
        let producto = send_json(
            &client,
            &args.token,
            &format!("{}/productos", args.products_url),
            &body,
        )
        .await?;
        let id = producto["id"].as_i64().ok_or("productos gave no id")?;
        let stock = json!({"producto_id": id, "cantidad": args.product_stock});
        send_json(
            &client,
            &args.token,
            &format!("{}/stock", args.inventory_url),
            &stock,
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn send_json(
    client: &awc::Client,
    token: &str,
    url: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let mut response = client
        .post(url)
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(body)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response.json().await.map_err(|e| format!("{url}: {e}"))
}

/// One thread's share of the load.
struct Job {
    args: LoadgenArgs,
    mix: Vec<(Op, u32)>,
    productos: Vec<i64>,
    started: Instant,
    deadline: Instant,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: usize,
    threads: usize,
}

/// How long a thread waits after a refused (or failed) connection before it sends
/// again: from 10 ms, doubling with each failure up to 1 s, and cleared by an answer.
/// Shared by the thread's connections, so a stopped server gets a few attempts a
/// second rather than as many as the loop can make.
#[derive(Default)]
struct Backoff {
    wait: Cell<Duration>,
    until: Cell<Option<Instant>>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const LONGEST: Duration = Duration::from_secs(1);

    /// Until when no request may be sent, if that is still to come.
    fn closed_until(&self) -> Option<Instant> {
        self.until.get().filter(|until| *until > Instant::now())
    }

    fn failed(&self) {
        let wait = (self.wait.get() * 2).clamp(Self::FIRST, Self::LONGEST);
        self.wait.set(wait);
        self.until.set(Some(Instant::now() + wait));
    }

    fn answered(&self) {
        self.wait.set(Duration::ZERO);
        self.until.set(None);
    }
}

/// What one thread's requests share while it runs.
struct Worker {
    job: Job,
    client: awc::Client,
    backoff: Backoff,
    stats: RefCell<Stats>,
    /// Lines for `--answers`, one per order.
    answers: RefCell<Vec<String>>,
    sent: Cell<u64>,
}

impl Job {
    async fn run(self, connections: usize) -> (Stats, Vec<String>) {
        let worker = Rc::new(Worker {
            client: client(connections),
            job: self,
            backoff: Backoff::default(),
            stats: RefCell::default(),
            answers: RefCell::default(),
            sent: Cell::new(0),
        });
        match worker.job.args.rate {
            Some(rate) => Worker::open_loop(worker.clone(), rate).await,
            None => {
                let loops = (0..connections).map(|_| worker.closed_loop());
                futures_util::future::join_all(loops).await;
            }
        }
        (worker.stats.take(), worker.answers.take())
    }
}

impl Worker {
    /// At a fixed rate: request `i` is due `i / rate` seconds after the start, and this
    /// thread takes every `threads`-th one; each is sent when due (or when a connection
    /// is free), whether or not the ones before it were answered.
    async fn open_loop(worker: Rc<Worker>, rate: f64) {
        let job = &worker.job;
        let mut requests = Vec::new();
        for i in (job.thread..).step_by(job.threads) {
            let due = job.started + Duration::from_secs_f64(i as f64 / rate);
            if due >= job.deadline {
                break;
            }
            actix_web::rt::time::sleep_until(due.into()).await;
            let op = job.pick();
            if worker.backoff.closed_until().is_some() {
                worker.record(op, NOT_SENT.to_string(), None);
                continue;
            }
            let worker = worker.clone();
            requests.push(actix_web::rt::spawn(async move { worker.one(op, due).await }));
        }
        for request in requests {
            let _ = request.await;
        }
    }

    /// As fast as one connection allows: each request is due when the one before it
    /// was answered (or when a refused connection has been waited out).
    async fn closed_loop(&self) {
        while Instant::now() < self.job.deadline {
            if let Some(until) = self.backoff.closed_until() {
                actix_web::rt::time::sleep_until(until.min(self.job.deadline).into()).await;
                continue;
            }
            self.one(self.job.pick(), Instant::now()).await;
        }
    }

    /// Sends one request that was due at `due` and records what came of it.
    async fn one(&self, op: Op, due: Instant) {
        let n = self.sent.get() + 1;
        self.sent.set(n);
        let key = format!("loadgen-{}-{}-{n}", std::process::id(), self.job.thread);
        let (status, pedido_id) = self.job.send(&self.client, op, &key).await;
        let latency = status.map(|_| due.elapsed());
        match status {
            Some(_) => self.backoff.answered(),
            None => self.backoff.failed(),
        }
        if self.job.args.answers.is_some() && matches!(op, Op::Order1 | Op::Order3) {
            // A lost answer as curl writes it: status 000 and a non-zero exit (7,
            // could not connect; `penguin check` only tells zero from non-zero).
            let line = match status {
                Some(s) => format!(
                    "{s} 0 {} {key}\n",
                    pedido_id.map_or("-".into(), |id| id.to_string())
                ),
                None => format!("000 7 - {key}\n"),
            };
            self.answers.borrow_mut().push(line);
        }
        let label = status.map_or_else(|| NO_ANSWER.to_string(), |s| s.to_string());
        self.record(op, label, latency);
    }

    fn record(&self, op: Op, label: String, latency: Option<Duration>) {
        if !answered(op, &label) {
            self.job.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.job.done.fetch_add(1, Ordering::Relaxed);
        let mut stats = self.stats.borrow_mut();
        let entry = stats.entry(op).or_insert_with(OpStats::new);
        if let Some(latency) = latency {
            let micros = latency.as_micros().clamp(1, 60_000_000) as u64;
            let _ = entry.latency.record(micros);
        }
        *entry.statuses.entry(label).or_default() += 1;
    }
}

impl Job {
    fn pick(&self) -> Op {
        let total: u32 = self.mix.iter().map(|(_, w)| w).sum();
        let mut roll = fastrand::u32(0..total);
        for (op, weight) in &self.mix {
            if roll < *weight {
                return *op;
            }
            roll -= weight;
        }
        self.mix[0].0
    }

    /// Sends one request: its status, or `None` without an answer, and for an order
    /// the id its `Location` names.
    async fn send(&self, client: &awc::Client, op: Op, key: &str) -> (Option<u16>, Option<i64>) {
        let auth = ("Authorization", format!("Bearer {}", self.args.token));
        let request = match op {
            Op::Get => client.request(Method::GET, self.args.url.as_deref().unwrap_or_default()),
            Op::Read => {
                let id = self.productos[fastrand::usize(..self.productos.len())];
                client
                    .get(format!("{}/productos/{id}", self.args.products_url))
                    .insert_header(auth)
            }
            Op::Order1 | Op::Order3 => {
                let lines = if op == Op::Order1 { 1 } else { 3 };
                let start = fastrand::usize(..self.productos.len());
                let items: Vec<_> = (0..lines)
                    .map(|i| {
                        let id = self.productos[(start + i) % self.productos.len()];
                        json!({"producto_id": id, "cantidad": 1 + fastrand::i64(0..2)})
                    })
                    .collect();
                let fail = fastrand::f64() < self.args.fail_share;
                let body =
                    json!({"items": items, "pago": {"medio": "tarjeta", "moneda": "PYG", "fail": fail}});
                let mut request = client
                    .post(format!("{}/pedidos", self.args.orders_url))
                    .insert_header(auth)
                    .insert_header(("Content-Type", "application/json"));
                if !self.args.no_idempotency_keys {
                    request = request.insert_header(("Idempotency-Key", key));
                }
                return match request.send_body(body.to_string()).await {
                    Ok(mut response) => {
                        let pedido_id = response
                            .headers()
                            .get("Location")
                            .and_then(|l| l.to_str().ok())
                            .and_then(|l| l.strip_prefix("/pedidos/"))
                            .and_then(|id| id.parse().ok());
                        let _ = response.body().await;
                        (Some(response.status().as_u16()), pedido_id)
                    }
                    Err(_) => (None, None),
                };
            }
        };
        match request.send().await {
            Ok(mut response) => {
                let _ = response.body().await;
                (Some(response.status().as_u16()), None)
            }
            Err(_) => (None, None),
        }
    }
}

/// Whether an answer counts as answered: what the operation is for. Any `2xx`, and
/// for orders also `402` (payment rejected) and `409` (not enough stock): the shop's
/// own answers to a well-formed order. Everything else is an error: no answer, a
/// request not sent, any `5xx`, and other `4xx` (a wrong token, an unknown product),
/// which say the run itself is wrong.
fn answered(op: Op, label: &str) -> bool {
    match (op, label.parse::<u16>()) {
        (_, Ok(s)) if (200..300).contains(&s) => true,
        (Op::Order1 | Op::Order3, Ok(402 | 409)) => true,
        _ => false,
    }
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn report(stats: &Stats, seconds: f64, args: &LoadgenArgs) -> Report {
    let operations: BTreeMap<String, OpReport> = stats
        .iter()
        .map(|(op, s)| {
            let requests = s.statuses.values().sum();
            let answered: u64 = s
                .statuses
                .iter()
                .filter(|(label, _)| answered(*op, label))
                .map(|(_, n)| n)
                .sum();
            let report = OpReport {
                requests,
                answered,
                throughput: answered as f64 / seconds,
                p50_ms: millis(s.latency.value_at_quantile(0.50)),
                p90_ms: millis(s.latency.value_at_quantile(0.90)),
                p99_ms: millis(s.latency.value_at_quantile(0.99)),
                max_ms: millis(s.latency.max()),
                errors: requests - answered,
                statuses: s.statuses.clone(),
            };
            (op.name().to_string(), report)
        })
        .collect();
    let requests: u64 = operations.values().map(|o| o.requests).sum();
    let errors: u64 = operations.values().map(|o| o.errors).sum();
    Report {
        seconds,
        connections: args.connections,
        rate: args.rate,
        // A run that sent nothing showed nothing: all of it failed.
        error_share: if requests == 0 {
            1.0
        } else {
            errors as f64 / requests as f64
        },
        operations,
    }
}

fn render(report: &Report) -> String {
    let rate = report
        .rate
        .map_or(String::new(), |r| format!(", {r} requests/s due"));
    let mut out = format!(
        "{:.1} s at {} connections{rate}\n{:<8} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  statuses\n",
        report.seconds,
        report.connections,
        "op",
        "requests",
        "answered",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors"
    );
    for (name, op) in &report.operations {
        let statuses: Vec<String> = op.statuses.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        out.push_str(&format!(
            "{name:<8} {:>9} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}  {}\n",
            op.requests,
            op.answered,
            op.throughput,
            op.p50_ms,
            op.p90_ms,
            op.p99_ms,
            op.max_ms,
            op.errors,
            statuses.join(", ")
        ));
    }
    out.push_str(&format!(
        "errors: {:.2}% of requests (per s counts answered requests only)\n",
        report.error_share * 100.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_reads_weights_and_refuses_nonsense() {
        assert_eq!(
            parse_mix("read=2,order3=1").unwrap(),
            vec![(Op::Read, 2), (Op::Order3, 1)]
        );
        assert_eq!(parse_mix("read=0,order1=1").unwrap(), vec![(Op::Order1, 1)]);
        assert!(parse_mix("write=1").is_err());
        assert!(parse_mix("read=x").is_err());
        assert!(parse_mix("read=0").is_err());
    }

    #[test]
    fn business_outcomes_of_orders_are_not_errors() {
        assert!(answered(Op::Order1, "201"));
        assert!(answered(Op::Order1, "402"));
        assert!(answered(Op::Order3, "409"));
        assert!(answered(Op::Read, "200"));
        assert!(!answered(Op::Read, "404"));
        assert!(!answered(Op::Read, "401"));
        assert!(!answered(Op::Order1, "503"));
        assert!(!answered(Op::Get, NO_ANSWER));
        assert!(!answered(Op::Get, NOT_SENT));
    }

    #[test]
    fn backoff_doubles_from_10_ms_to_1_s_and_an_answer_clears_it() {
        let backoff = Backoff::default();
        assert_eq!(backoff.closed_until(), None);
        let mut waits = Vec::new();
        for _ in 0..9 {
            backoff.failed();
            waits.push(backoff.wait.get().as_millis());
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert!(backoff.closed_until().is_some());
        backoff.answered();
        assert_eq!(backoff.closed_until(), None);
        backoff.failed();
        assert_eq!(backoff.wait.get(), Backoff::FIRST);
    }
}
