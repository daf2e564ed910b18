//! `penguin check`: the shop's books, checked from outside over HTTP, as a client
//! sees them. Every order is final; every product's units add up (loaded = cantidad +
//! reservado + confirmado), none is held or oversold, and its confirmed units are the
//! confirmed orders'; no referencia is charged twice; approved payments are the
//! confirmed orders' that cost something, one each; and every answer a client got still holds (`201`
//! ended `confirmado`, `402` `rechazado`). The chaos run and the crash tests use it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

use crate::config::DEFAULT_TOKEN;
use crate::pagination::Page;

/// The flags of `penguin check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// URL of pedidos
    #[arg(
        long,
        env = "ORDERS_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:5004"
    )]
    pub orders_url: String,
    /// URL of inventario
    #[arg(
        long,
        env = "INVENTORY_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:5002"
    )]
    pub inventory_url: String,
    /// URL of pagos
    #[arg(
        long,
        env = "PAYMENTS_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:5003"
    )]
    pub payments_url: String,
    /// Bearer token of the services
    #[arg(long, env = "SERVICE_TOKEN", value_name = "TOKEN", default_value = DEFAULT_TOKEN, hide_env_values = true)]
    pub token: String,
    /// Units loaded into each product, as PRODUCTO_ID=UNITS (repeat, or separate with commas)
    #[arg(long, value_name = "ID=UNITS", value_delimiter = ',', value_parser = loaded)]
    pub loaded: Vec<(i64, i64)>,
    /// Files of the answers clients got, one `STATUS CURL_EXIT PEDIDO_ID KEY` per line
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub answers: Vec<PathBuf>,
    /// Seconds to keep checking until every invariant holds (recovery may still be running)
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub wait: f64,
}

fn loaded(text: &str) -> Result<(i64, i64), String> {
    let (id, units) = text.split_once('=').ok_or("expected PRODUCTO_ID=UNITS")?;
    Ok((
        id.trim().parse().map_err(|e| format!("producto id: {e}"))?,
        units.trim().parse().map_err(|e| format!("units: {e}"))?,
    ))
}

/// Where the shop is, and its token.
#[derive(Debug, Clone)]
pub struct ShopAddress {
    pub pedidos: String,
    pub inventario: String,
    pub pagos: String,
    pub token: String,
}

/// An answer a client got: its status and the order it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAnswer {
    pub status: u16,
    pub pedido_id: i64,
    /// The Idempotency-Key it was placed with, to find it in the logs.
    pub clave: String,
}

impl ClientAnswer {
    /// The answer a client got for order `pedido_id`, placed without a key.
    pub fn of(status: u16, pedido_id: i64) -> Self {
        Self {
            status,
            pedido_id,
            clave: String::new(),
        }
    }
}

/// One invariant and whether it holds.
#[derive(Debug, Clone)]
pub struct Invariant {
    pub name: String,
    pub holds: bool,
    pub detail: String,
}

/// What one look at the books found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub invariants: Vec<Invariant>,
    pub pedidos_by_estado: BTreeMap<String, usize>,
    pub pagos_by_estado: BTreeMap<String, usize>,
    /// The answers the final orders contradict.
    pub contradicted: Vec<String>,
}

impl CheckReport {
    pub fn holds(&self) -> bool {
        self.invariants.iter().all(|i| i.holds)
    }

    fn add(&mut self, name: impl Into<String>, holds: bool, detail: impl Into<String>) {
        self.invariants.push(Invariant {
            name: name.into(),
            holds,
            detail: detail.into(),
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for i in &self.invariants {
            writeln!(
                f,
                "{} {} ({})",
                if i.holds { "ok  " } else { "FAIL" },
                i.name,
                i.detail
            )?;
        }
        for line in self.contradicted.iter().take(10) {
            writeln!(f, "      {line}")?;
        }
        if self.contradicted.len() > 10 {
            writeln!(f, "      and {} more", self.contradicted.len() - 10)?;
        }
        let counts = |counts: &BTreeMap<String, usize>| {
            counts
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "orders by estado: {}", counts(&self.pedidos_by_estado))?;
        write!(f, "payments by estado: {}", counts(&self.pagos_by_estado))
    }
}

async fn get(client: &awc::Client, shop_address: &ShopAddress, url: String) -> Result<Value, String> {
    let mut response = client
        .get(&url)
        .insert_header(("Authorization", format!("Bearer {}", shop_address.token)))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("GET {url}: {}", response.status()));
    }
    response
        .json::<Value>()
        .limit(64 * 1024 * 1024)
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

/// Every row of a list route, page by page, each page after the last `id` of the one
/// before.
async fn every(
    client: &awc::Client,
    shop_address: &ShopAddress,
    base: &str,
    path: &str,
    id: &str,
) -> Result<Vec<Value>, String> {
    let mut rows: Vec<Value> = Vec::new();
    loop {
        let after = match rows.last() {
            None => 0,
            // Without the id of the last row the next page cannot be asked for: the
            // same page would be read again and again.
            Some(row) => row[id]
                .as_i64()
                .ok_or_else(|| format!("GET {base}{path}: a row without `{id}`: {row}"))?,
        };
        let page = get(
            client,
            shop_address,
            format!("{base}{path}?limit={}&after={after}", Page::MAX_LIMIT),
        )
        .await?;
        let page = page.as_array().cloned().unwrap_or_default();
        let last = page.len() < Page::MAX_LIMIT as usize;
        rows.extend(page);
        if last {
            return Ok(rows);
        }
    }
}

/// One look at the books.
pub async fn check(
    shop_address: &ShopAddress,
    cargado: &[(i64, i64)],
    answers: &[ClientAnswer],
) -> Result<CheckReport, String> {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let pedidos = every(&client, shop_address, &shop_address.pedidos, "/pedidos", "id").await?;
    let pagos = every(&client, shop_address, &shop_address.pagos, "/pagos", "pago_id").await?;
    let mut report = CheckReport::default();
    let mut confirmadas: HashMap<i64, i64> = HashMap::new();
    for pedido in &pedidos {
        let estado = pedido["estado"].as_str().unwrap_or_default().to_string();
        if estado == "confirmado" {
            for item in pedido["items"].as_array().into_iter().flatten() {
                *confirmadas
                    .entry(item["producto_id"].as_i64().unwrap_or(0))
                    .or_default() += item["cantidad"].as_i64().unwrap_or(0);
            }
        }
        *report.pedidos_by_estado.entry(estado).or_default() += 1;
    }
    let pendientes = report.pedidos_by_estado.get("pendiente").copied().unwrap_or(0);
    report.add(
        "every order is final",
        pendientes == 0,
        format!("{pendientes} pendiente"),
    );
    for (id, units) in cargado {
        let stock = get(
            &client,
            shop_address,
            format!("{}/stock/{id}", shop_address.inventario),
        )
        .await?;
        let [cantidad, reservado, confirmado] =
            ["cantidad", "reservado", "confirmado"].map(|k| stock[k].as_i64().unwrap_or(i64::MIN));
        let esperado = confirmadas.get(id).copied().unwrap_or(0);
        report.add(
            format!("producto {id}: loaded = cantidad + reservado + confirmado"),
            cantidad + reservado + confirmado == *units,
            format!("{units} vs {cantidad} + {reservado} + {confirmado}"),
        );
        report.add(
            format!("producto {id}: no units held by unfinished orders"),
            reservado == 0,
            format!("reservado {reservado}"),
        );
        report.add(
            format!("producto {id}: confirmed units = units of confirmed orders"),
            confirmado == esperado,
            format!("{confirmado} vs {esperado}"),
        );
        report.add(
            format!("producto {id}: never oversold"),
            cantidad >= 0,
            format!("cantidad {cantidad}"),
        );
    }
    for pago in &pagos {
        *report
            .pagos_by_estado
            .entry(pago["estado"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let referencias: Vec<&str> = pagos.iter().filter_map(|p| p["referencia"].as_str()).collect();
    let distintas: HashSet<&str> = referencias.iter().copied().collect();
    let dobles = referencias.len() - distintas.len();
    report.add(
        "no referencia charged twice",
        dobles == 0,
        format!("{dobles} doubled"),
    );
    // A free order (total 0) asks nothing of pagos.
    let pagado = |p: &&Value| p["estado"] == "confirmado" && p["total"].as_f64().is_some_and(|t| t > 0.0);
    let aprobados = report.pagos_by_estado.get("aprobado").copied().unwrap_or(0);
    let confirmados = pedidos.iter().filter(pagado).count();
    report.add(
        "approved payments = confirmed orders that cost something",
        aprobados == confirmados,
        format!("{aprobados} vs {confirmados}"),
    );
    let aprobado: HashSet<i64> = pagos
        .iter()
        .filter(|p| p["estado"] == "aprobado")
        .filter_map(|p| p["pago_id"].as_i64())
        .collect();
    let sin_pago = pedidos
        .iter()
        .filter(|p| {
            p["estado"] == "confirmado" && !p["pago_id"].as_i64().is_some_and(|id| aprobado.contains(&id))
        })
        .count();
    report.add(
        "every confirmed order has its approved payment",
        sin_pago == 0,
        format!("{sin_pago} without"),
    );
    if !answers.is_empty() {
        let final_: HashMap<i64, &Value> = pedidos
            .iter()
            .filter_map(|p| Some((p["id"].as_i64()?, p)))
            .collect();
        let prometido = |status| match status {
            201 => Some("confirmado"),
            402 => Some("rechazado"),
            _ => None,
        };
        let mut revisadas = 0;
        for r in answers {
            let Some(prometido) = prometido(r.status) else {
                continue;
            };
            revisadas += 1;
            let ahora = final_.get(&r.pedido_id);
            if ahora.is_none_or(|p| p["estado"] != prometido) {
                let ahora = ahora.map_or("not found".to_string(), |p| {
                    format!(
                        "now {}: {}",
                        p["estado"],
                        p["motivo"].as_str().unwrap_or("no motivo")
                    )
                });
                report.contradicted.push(format!(
                    "pedido {} ({}) answered {}, {ahora}",
                    r.pedido_id, r.clave, r.status
                ));
            }
        }
        report.add(
            "every answer still holds: 201 ended confirmado, 402 rechazado",
            report.contradicted.is_empty(),
            format!("{} of {revisadas} broken", report.contradicted.len()),
        );
    }
    Ok(report)
}

/// Looks at the books until every invariant holds or `wait` is over; the last look.
pub async fn check_until(
    shop_address: &ShopAddress,
    cargado: &[(i64, i64)],
    answers: &[ClientAnswer],
    wait: Duration,
) -> CheckReport {
    let deadline = Instant::now() + wait;
    loop {
        let report = check(shop_address, cargado, answers).await.unwrap_or_else(|e| {
            // A service still restarting.
            let mut report = CheckReport::default();
            report.add("services answer", false, e);
            report
        });
        if report.holds() || Instant::now() >= deadline {
            return report;
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads answer files of `STATUS CURL_EXIT PEDIDO_ID KEY` lines; lost answers (a curl
/// error, no order id) promised nothing and are left out.
pub fn read_answers(paths: &[PathBuf]) -> Result<Vec<ClientAnswer>, String> {
    let mut answers = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if let [status, "0", pedido_id, clave] = fields[..]
                && let (Ok(status), Ok(pedido_id)) = (status.parse(), pedido_id.parse())
            {
                answers.push(ClientAnswer {
                    status,
                    pedido_id,
                    clave: clave.to_string(),
                });
            }
        }
    }
    Ok(answers)
}

/// `penguin check`: prints every invariant; fails unless all hold.
pub fn run(args: &CheckArgs) -> Result<bool, String> {
    let shop_address = ShopAddress {
        pedidos: args.orders_url.trim_end_matches('/').to_string(),
        inventario: args.inventory_url.trim_end_matches('/').to_string(),
        pagos: args.payments_url.trim_end_matches('/').to_string(),
        token: args.token.clone(),
    };
    let answers = read_answers(&args.answers)?;
    let wait = Duration::try_from_secs_f64(args.wait).map_err(|e| format!("--wait: {e}"))?;
    let report =
        actix_web::rt::System::new().block_on(check_until(&shop_address, &args.loaded, &answers, wait));
    println!("{report}");
    Ok(report.holds())
}
