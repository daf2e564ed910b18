//! The settings of `penguin serve` (`ServeArgs`, as flags and variables) and what
//! they resolve to for each service (`Settings`); `cli` reads them from their layers.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, FromArgMatches, ValueEnum};

use crate::db::DEFAULT_AUTOCHECKPOINT;
use crate::logging::LogFormat;
use crate::service::Service;
use crate::telemetry::{TraceArgs, TraceSettings};

/// The token every service shares unless told another, the one `design-es.md`'s curl
/// lines send, so they work as written.
pub const DEFAULT_TOKEN: &str = "penguin-secret";
/// As long as Stripe keeps its idempotency keys: a client retrying a day later still
/// finds its order.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an unconfirmed reservation holds its units by default: ten minutes.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);
/// How long a shutdown waits for requests in flight by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What `penguin serve` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    All,
    Productos,
    Inventario,
    Pagos,
    Pedidos,
}

impl Target {
    pub fn services(self) -> Vec<Service> {
        match self {
            Self::All => Service::ALL.to_vec(),
            Self::Productos => vec![Service::Productos],
            Self::Inventario => vec![Service::Inventario],
            Self::Pagos => vec![Service::Pagos],
            Self::Pedidos => vec![Service::Pedidos],
        }
    }
}

/// A positive number of seconds, fractions allowed (`0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl FromStr for Secs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.trim()
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .filter(|d| !d.is_zero())
            .map(Secs)
            .ok_or_else(|| "not a positive number of seconds".into())
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// Where each service's database is: read alike by `serve` and `backup`.
#[derive(Debug, Clone, Args)]
pub struct Storage {
    /// SQLite file of the service, in --data-dir unless absolute (one service only) [default: <service>.db]
    #[arg(long, env = "DB_PATH", value_name = "FILE")]
    pub db_path: Option<PathBuf>,

    /// Folder of the databases and logs.log (serve all: the four databases)
    #[arg(long, env = "DATA_DIR", value_name = "DIR", default_value = ".")]
    pub data_dir: PathBuf,

    /// Folder of the per-service files <service>.env
    #[arg(long, env = "CONFIG_DIR", value_name = "DIR", default_value = "config")]
    pub config_dir: PathBuf,
}

impl Storage {
    /// The database file of `service`: `file` (its own `DB_PATH`, from its layers) or
    /// `<service>.db`, in the data folder unless absolute.
    pub fn database(&self, service: Service, file: Option<&Path>) -> PathBuf {
        self.data_dir
            .join(file.map_or_else(|| format!("{service}.db").into(), Path::to_path_buf))
    }
}

/// The flags of `penguin serve`. Each value may also come from its environment
/// variable, a `.env` file in the working directory or `config/<service>.env`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The service to start, or `all` for the four of them.
    #[arg(value_enum)]
    pub target: Target,

    /// Port to listen on (one service only) [default: productos 5001, inventario 5002, pagos 5003, pedidos 5004]
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<u16>,

    /// Address or host name to listen on
    #[arg(long, env = "HOST", value_name = "HOST", default_value = "127.0.0.1", value_parser = non_blank)]
    pub host: String,

    /// Shared bearer token that every request must carry
    #[arg(long = "token", env = "SERVICE_TOKEN", value_name = "TOKEN", default_value = DEFAULT_TOKEN,
          hide_env_values = true, value_parser = token)]
    pub service_token: String,

    #[command(flatten)]
    pub storage: Storage,

    /// URL of productos, used by pedidos
    #[arg(long, env = "PRODUCTS_URL", value_name = "URL", default_value = "http://127.0.0.1:5001", value_parser = peer_url)]
    pub products_url: String,

    /// URL of inventario, used by pedidos
    #[arg(long, env = "INVENTORY_URL", value_name = "URL", default_value = "http://127.0.0.1:5002", value_parser = peer_url)]
    pub inventory_url: String,

    /// URL of pagos, used by pedidos
    #[arg(long, env = "PAYMENTS_URL", value_name = "URL", default_value = "http://127.0.0.1:5003", value_parser = peer_url)]
    pub payments_url: String,

    /// serve all: first of four consecutive ports; 0 picks a free port for each [default: each config/<service>.env's PORT, else 5001-5004]
    #[arg(long, env = "BASE_PORT", value_name = "PORT", value_parser = clap::value_parser!(u16).range(..=u16::MAX as i64 - 3))]
    pub base_port: Option<u16>,

    /// HTTP worker threads per service [default: the number of CPUs; in serve all, a quarter of them, at least 1]
    #[arg(long, env = "WORKERS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,

    /// pedidos: attempts per peer call, the first included
    #[arg(long, env = "RETRY_ATTEMPTS", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_attempts: u32,

    /// pedidos: backoff before a retry, in milliseconds, plus up to as much jitter
    #[arg(long, env = "RETRY_BACKOFF_MS", value_name = "MS", default_value_t = 100)]
    pub retry_backoff_ms: u64,

    /// pedidos: consecutive failed calls that open a peer's circuit
    #[arg(long, env = "BREAKER_FAILURES", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub breaker_failures: u32,

    /// pedidos: seconds a circuit stays open before a trial call (at most 1 for a peer not yet reached)
    #[arg(long, env = "BREAKER_OPEN_SECS", value_name = "SECS", default_value_t = Secs(Duration::from_secs(30)))]
    pub breaker_open_secs: Secs,

    /// inventario: seconds an unconfirmed reservation holds its units before it is released
    #[arg(long, env = "RESERVATION_TTL", value_name = "SECS", default_value_t = Secs(DEFAULT_RESERVATION_TTL))]
    pub reservation_ttl: Secs,

    /// pedidos: seconds between passes that move on orders no request is driving
    #[arg(long, env = "RECOVERY_INTERVAL", value_name = "SECS", default_value_t = Secs(Duration::from_secs(10)))]
    pub recovery_interval: Secs,

    /// pedidos: seconds after it is placed that an order not yet charged may still be; past it, it never is
    #[arg(long, env = "ORDER_DEADLINE", value_name = "SECS", default_value_t = Secs(Duration::from_secs(30)))]
    pub order_deadline: Secs,

    /// pedidos: seconds an Idempotency-Key is kept after its order was placed (once the
    /// order is over); 0 keeps every key
    #[arg(long, env = "IDEMPOTENCY_RETENTION", value_name = "SECS", default_value_t = Secs(DEFAULT_IDEMPOTENCY_RETENTION))]
    pub idempotency_retention: Secs,

    /// Seconds that SIGTERM or Ctrl-C waits for requests in flight to finish before exiting
    #[arg(long, env = "SHUTDOWN_GRACE", value_name = "SECS", default_value_t = Secs(DEFAULT_SHUTDOWN_GRACE))]
    pub shutdown_grace: Secs,

    /// Seconds a whole request may take before it is answered 408
    #[arg(long, env = "REQUEST_TIMEOUT", value_name = "SECS", default_value_t = Secs(Duration::from_secs(60)))]
    pub request_timeout: Secs,

    /// Pages in the write-ahead log after which penguin checkpoints it into the database; 0: never, not even at a stop (a Litestream sidecar replicates the database and checkpoints it)
    #[arg(long, env = "WAL_AUTOCHECKPOINT", value_name = "PAGES", default_value_t = DEFAULT_AUTOCHECKPOINT)]
    pub wal_autocheckpoint: u32,

    /// Writes that may wait for the database before new work is refused with 503
    #[arg(long, env = "WRITE_QUEUE", value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub write_queue: u32,

    /// pedidos: time to connect to a peer, in milliseconds (at most half of PEER_TIMEOUT_MS)
    #[arg(long, env = "PEER_CONNECT_TIMEOUT_MS", value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub peer_connect_timeout_ms: u64,

    /// pedidos: time for one attempt at a peer call, answer included, in milliseconds
    #[arg(long, env = "PEER_TIMEOUT_MS", value_name = "MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    pub peer_timeout_ms: u64,

    /// pedidos: open connections to each peer, per worker
    #[arg(long, env = "PEER_MAX_CONNECTIONS", value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub peer_max_connections: u32,

    /// What to log: a level (error, warn, info, debug, trace) or env_logger directives
    #[arg(long = "log", env = "RUST_LOG", value_name = "FILTER", default_value = "info")]
    pub log: String,

    /// Megabytes logs.log may reach before it is rotated to logs.log.1
    #[arg(long, env = "LOG_MAX_MB", value_name = "MB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_max_mb: u64,

    /// How log lines are written: text, or json (one object a line, for a log store)
    #[arg(long, env = "LOG_FORMAT", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub traces: TraceArgs,
}

pub(crate) fn non_blank(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("it is empty".into());
    }
    Ok(text.to_string())
}

/// Checks a token: what an `Authorization` header carries as sent and as compared,
/// visible ASCII and inner spaces (the presented token is compared trimmed).
fn token(text: &str) -> Result<String, String> {
    let text = non_blank(text)?;
    if text.trim() != text {
        return Err("it starts or ends with a space".into());
    }
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err("it has a character other than visible ASCII and spaces".into());
    }
    Ok(text)
}

/// Checks a peer URL: `http://host[:port]`, kept without a trailing slash.
pub fn peer_url(value: &str) -> Result<String, String> {
    let trimmed = value.trim().trim_end_matches('/');
    let invalid = || "not a URL such as http://127.0.0.1:5001".to_string();
    let uri: awc::http::Uri = trimmed.parse().map_err(|_| invalid())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https is not supported; put TLS in front of the peer and use http".into());
        }
        _ => return Err(invalid()),
    }
    if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(invalid());
    }
    Ok(trimmed.to_string())
}

/// Everything one service needs to start.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub service: Service,
    pub addr: SocketAddr,
    pub token: String,
    pub db_path: PathBuf,
    pub workers: usize,
    /// The longest a request may take, body included.
    pub request_timeout: Duration,
    /// The most writes that may wait for the database before new work is refused.
    pub write_queue: usize,
    /// Pages of write-ahead log that trigger a checkpoint; 0: penguin never checkpoints.
    pub wal_autocheckpoint: u32,
    /// Where its spans are sent, if anywhere.
    pub traces: Option<TraceSettings>,
}

/// Where pedidos finds its peers and how it treats them.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub products_url: String,
    pub inventory_url: String,
    pub payments_url: String,
    pub retry_attempts: u32,
    pub retry_backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_connections: usize,
    pub recovery_interval: Duration,
    /// How long after it is placed an order may still be charged.
    pub order_deadline: Duration,
    /// How long an Idempotency-Key is kept; zero keeps every key.
    pub idempotency_retention: Duration,
}

impl From<&ServeArgs> for PeerSettings {
    fn from(args: &ServeArgs) -> Self {
        Self {
            products_url: args.products_url.clone(),
            inventory_url: args.inventory_url.clone(),
            payments_url: args.payments_url.clone(),
            retry_attempts: args.retry_attempts,
            retry_backoff: Duration::from_millis(args.retry_backoff_ms),
            breaker_failures: args.breaker_failures,
            breaker_open: args.breaker_open_secs.0,
            connect_timeout: Duration::from_millis(args.peer_connect_timeout_ms),
            timeout: Duration::from_millis(args.peer_timeout_ms),
            max_connections: args.peer_max_connections as usize,
            recovery_interval: args.recovery_interval.0,
            idempotency_retention: args.idempotency_retention.0,
            order_deadline: args.order_deadline.0,
        }
    }
}

impl PeerSettings {
    /// The built-in defaults: peers on their default ports, and the contract's
    /// resilience policy.
    pub fn defaults() -> Self {
        let argv = ["serve", "pedidos"].map(OsString::from);
        let matches = without_env(ServeArgs::augment_args(clap::Command::new("serve")))
            .try_get_matches_from(argv)
            .expect("the built-in defaults parse");
        Self::from(&ServeArgs::from_arg_matches(&matches).expect("the built-in defaults are typed"))
    }
}

/// `serve`'s arguments with their environment variables forgotten: for the built-in
/// defaults.
fn without_env(serve: clap::Command) -> clap::Command {
    let ids: Vec<_> = serve.get_arguments().map(|a| a.get_id().clone()).collect();
    ids.into_iter()
        .fold(serve, |serve, id| serve.mut_arg(id, |a| a.env(None::<&str>)))
}

/// The resolved settings of one `penguin serve` run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub target: Target,
    pub services: Vec<ServiceSettings>,
    /// In `serve all` these URLs are replaced by the siblings' bound addresses.
    pub peers: PeerSettings,
    /// How long an unconfirmed reservation holds its units (inventario).
    pub reservation_ttl: Duration,
    /// Where `logs.log` is written.
    pub log_dir: PathBuf,
    /// What to log (env_logger directives).
    pub log: String,
    /// The size at which `logs.log` is rotated, in bytes.
    pub log_max_bytes: u64,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}
