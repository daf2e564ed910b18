//! `penguin-loadgen`: drives a running penguin with the traffic of a shop — product
//! reads, one- and three-item orders, a share of payments asked to fail — for a fixed
//! time at a fixed concurrency (or a fixed rate), and reports, per operation, the
//! requests, throughput, latency percentiles (an HDR histogram) and answers by status.
//!
//! It is a client like any other: it knows penguin only through its HTTP API.

use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// URL of inventario (used to load stock with --seed)
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
    /// Requests in flight at once
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Requests per second in all, instead of as fast as the connections allow
    #[arg(long)]
    pub rate: Option<f64>,
    /// Weights of the operations: read (GET /productos/{id}), order1, order3
    #[arg(long, default_value = "read=50,order1=35,order3=15")]
    pub mix: String,
    /// Share of orders whose payment is asked to fail (`fail: true`)
    #[arg(long, default_value_t = 0.1)]
    pub fail_share: f64,
    /// Create this many products, each with --seed-stock units, before the run
    #[arg(long)]
    pub seed: Option<usize>,
    /// Units of stock of each seeded product
    #[arg(long, default_value_t = 1_000_000)]
    pub seed_stock: i64,
    /// Without --seed: use products 1 to this
    #[arg(long, default_value_t = 10)]
    pub products: usize,
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

/// What one operation saw.
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

/// The report of one operation, as printed and written as JSON.
#[derive(Debug, Serialize)]
pub struct OpReport {
    pub requests: u64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Answers that are not what the operation is for: anything but 2xx (and, for
    /// orders, 402 and 409, which are business outcomes), and failed connections.
    pub errors: u64,
    pub statuses: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub seconds: f64,
    pub connections: usize,
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
    let mix = if args.url.is_some() {
        vec![(Op::Get, 1)]
    } else {
        parse_mix(&args.mix)?
    };
    let productos: Vec<i64> = match args.seed {
        Some(n) => actix_web::rt::System::new().block_on(seed(&args, n))?,
        None => (1..=args.products as i64).collect(),
    };
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
                rate_per_connection: args.rate.map(|r| r / args.connections as f64),
                deadline,
                done: done.clone(),
                failed: failed.clone(),
                thread: t,
            };
            std::thread::spawn(move || actix_web::rt::System::new().block_on(job.run(connections)))
        })
        .collect();
    let mut stats = Stats::new();
    for worker in workers {
        let part = worker.join().map_err(|_| "a load thread panicked".to_string())?;
        for (op, s) in part {
            stats.entry(op).or_insert_with(OpStats::new).merge(&s);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some((bar, ticker)) = progress {
        bar.finish_and_clear();
        let _ = ticker.join();
    }
    let report = report(&stats, seconds, args.connections);
    print!("{}", render(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    Ok(())
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
        let stock = json!({"producto_id": id, "cantidad": args.seed_stock});
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
    rate_per_connection: Option<f64>,
    deadline: Instant,
    done: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    thread: usize,
}

impl Job {
    async fn run(self, connections: usize) -> Stats {
        let client = client(connections);
        let job = &self;
        let loops = (0..connections).map(|c| {
            let client = &client;
            async move {
                let mut stats = Stats::new();
                let mut sent: u64 = 0;
                let started = Instant::now();
                while Instant::now() < job.deadline {
                    if let Some(rate) = job.rate_per_connection {
                        let due = started + Duration::from_secs_f64(sent as f64 / rate);
                        if due >= job.deadline {
                            break;
                        }
                        actix_web::rt::time::sleep_until(due.into()).await;
                    }
                    sent += 1;
                    let op = job.pick();
                    let key = format!("loadgen-{}-{}-{c}-{sent}", std::process::id(), job.thread);
                    let began = Instant::now();
                    let status = job.send(client, op, &key).await;
                    let micros = began.elapsed().as_micros().max(1) as u64;
                    let entry = stats.entry(op).or_insert_with(OpStats::new);
                    let _ = entry.latency.record(micros.min(60_000_000));
                    let label = status.map_or_else(|| "no answer".to_string(), |s| s.to_string());
                    if !expected(op, status) {
                        job.failed.fetch_add(1, Ordering::Relaxed);
                    }
                    *entry.statuses.entry(label).or_default() += 1;
                    job.done.fetch_add(1, Ordering::Relaxed);
                }
                stats
            }
        });
        let mut all = Stats::new();
        for part in futures_util::future::join_all(loops).await {
            for (op, s) in part {
                all.entry(op).or_insert_with(OpStats::new).merge(&s);
            }
        }
        all
    }

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

    /// Sends one request; its status, or `None` without an answer.
    async fn send(&self, client: &awc::Client, op: Op, key: &str) -> Option<u16> {
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
                        let _ = response.body().await;
                        Some(response.status().as_u16())
                    }
                    Err(_) => None,
                };
            }
        };
        match request.send().await {
            Ok(mut response) => {
                let _ = response.body().await;
                Some(response.status().as_u16())
            }
            Err(_) => None,
        }
    }
}

/// Whether an answer is what the operation is for.
fn expected(op: Op, status: Option<u16>) -> bool {
    match (op, status) {
        (_, Some(s)) if (200..300).contains(&s) => true,
        (Op::Order1 | Op::Order3, Some(402 | 409)) => true,
        _ => false,
    }
}

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn report(stats: &Stats, seconds: f64, connections: usize) -> Report {
    let operations = stats
        .iter()
        .map(|(op, s)| {
            let requests = s.latency.len();
            let errors = s
                .statuses
                .iter()
                .filter(|(status, _)| !expected(*op, status.parse().ok()))
                .map(|(_, n)| n)
                .sum();
            let report = OpReport {
                requests,
                throughput: requests as f64 / seconds,
                p50_ms: millis(s.latency.value_at_quantile(0.50)),
                p90_ms: millis(s.latency.value_at_quantile(0.90)),
                p99_ms: millis(s.latency.value_at_quantile(0.99)),
                max_ms: millis(s.latency.max()),
                errors,
                statuses: s.statuses.clone(),
            };
            (op.name().to_string(), report)
        })
        .collect();
    Report {
        seconds,
        connections,
        operations,
    }
}

fn render(report: &Report) -> String {
    let mut out = format!(
        "{:.1} s at {} connections\n{:<8} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  statuses\n",
        report.seconds,
        report.connections,
        "op",
        "requests",
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
            "{name:<8} {:>9} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}  {}\n",
            op.requests,
            op.throughput,
            op.p50_ms,
            op.p90_ms,
            op.p99_ms,
            op.max_ms,
            op.errors,
            statuses.join(", ")
        ));
    }
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
        assert!(expected(Op::Order1, Some(201)));
        assert!(expected(Op::Order1, Some(402)));
        assert!(expected(Op::Order3, Some(409)));
        assert!(!expected(Op::Read, Some(404)));
        assert!(!expected(Op::Order1, Some(503)));
        assert!(!expected(Op::Get, None));
    }
}
