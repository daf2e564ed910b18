//! Typed settings for each service, read from five layers, lowest to highest:
//! built-in default, `config/<service>.env`, `.env` in the working directory, the
//! process environment, a command-line flag.
//!
//! `serve all` starts four services from one set of flags, so the settings that name
//! one service (`PORT`, `DB_PATH`) come only from each service's config file and from
//! `--base-port` / `--data-dir`, and pedidos is wired to its three siblings.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand, ValueEnum};

/// The default shared token of the original design.
pub const DEFAULT_TOKEN: &str = "penguin-secret";
/// How long a request may take by default, body included.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a shutdown waits for requests in flight by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long an unconfirmed reservation holds its units by default: ten minutes.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Parser)]
#[command(
    name = "penguin",
    version,
    about = "The penguin shop's four microservices in one binary: productos, inventario, pagos and pedidos.",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start one service, or all four in one process (each on its own port).
    Serve(Box<ServeArgs>),
    /// Drive a running penguin with shop traffic and report throughput and latency.
    Loadgen(Box<crate::loadgen::LoadgenArgs>),
}

/// What `penguin serve` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    All,
    Productos,
    Inventario,
    Pagos,
    Pedidos,
}

/// The flags of `penguin serve`. Each value may also come from its environment
/// variable, a `.env` file in the working directory or `config/<service>.env`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The service to start, or `all` for the four of them.
    #[arg(value_enum)]
    pub target: Target,

    /// Port to listen on (one service only) [default: productos 5001, inventario 5002, pagos 5003, pedidos 5004]
    #[arg(long, env = "PORT", value_name = "PORT")]
    pub port: Option<String>,

    /// Address to listen on [default: 127.0.0.1]
    #[arg(long, env = "HOST", value_name = "ADDR")]
    pub host: Option<String>,

    /// Shared bearer token that every request must carry [default: penguin-secret]
    #[arg(
        long = "token",
        env = "SERVICE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub service_token: Option<String>,

    /// SQLite file of the service (one service only) [default: <service>.db]
    #[arg(long, env = "DB_PATH", value_name = "FILE")]
    pub db_path: Option<String>,

    /// URL of productos, used by pedidos [default: http://127.0.0.1:5001]
    #[arg(long, env = "PRODUCTS_URL", value_name = "URL")]
    pub products_url: Option<String>,

    /// URL of inventario, used by pedidos [default: http://127.0.0.1:5002]
    #[arg(long, env = "INVENTORY_URL", value_name = "URL")]
    pub inventory_url: Option<String>,

    /// URL of pagos, used by pedidos [default: http://127.0.0.1:5003]
    #[arg(long, env = "PAYMENTS_URL", value_name = "URL")]
    pub payments_url: Option<String>,

    /// serve all: first of four consecutive ports; 0 picks a free port for each [default: each config/<service>.env's PORT, else 5001-5004]
    #[arg(long, env = "BASE_PORT", value_name = "PORT")]
    pub base_port: Option<String>,

    /// serve all: folder of the four databases and logs.log [default: .]
    #[arg(long, env = "DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,

    /// Folder of the per-service files <service>.env [default: config]
    #[arg(long, env = "CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<String>,

    /// HTTP worker threads per service [default: the number of CPUs; in serve all, a quarter of them, at least 1]
    #[arg(long, env = "WORKERS", value_name = "N")]
    pub workers: Option<String>,

    /// pedidos: attempts per peer call, the first included [default: 2]
    #[arg(long, env = "RETRY_ATTEMPTS", value_name = "N")]
    pub retry_attempts: Option<String>,

    /// pedidos: backoff before a retry, in milliseconds, plus up to as much jitter [default: 100]
    #[arg(long, env = "RETRY_BACKOFF_MS", value_name = "MS")]
    pub retry_backoff_ms: Option<String>,

    /// pedidos: consecutive failed calls that open a peer's circuit [default: 3]
    #[arg(long, env = "BREAKER_FAILURES", value_name = "N")]
    pub breaker_failures: Option<String>,

    /// pedidos: seconds a circuit stays open before a trial call [default: 30]
    #[arg(long, env = "BREAKER_OPEN_SECS", value_name = "SECS")]
    pub breaker_open_secs: Option<String>,

    /// inventario: seconds an unconfirmed reservation holds its units before it is released [default: 600]
    #[arg(long, env = "RESERVATION_TTL", value_name = "SECS")]
    pub reservation_ttl: Option<String>,

    /// pedidos: seconds between passes that finish orders a crash or an outage left half-way [default: 10]
    #[arg(long, env = "RECOVERY_INTERVAL", value_name = "SECS")]
    pub recovery_interval: Option<String>,

    /// pedidos: seconds after it is placed that an order not yet charged may still be; past it, it never is [default: 30]
    #[arg(long, env = "ORDER_DEADLINE", value_name = "SECS")]
    pub order_deadline: Option<String>,

    /// Seconds that SIGTERM or Ctrl-C waits for requests in flight to finish before exiting [default: 10]
    #[arg(long, env = "SHUTDOWN_GRACE", value_name = "SECS")]
    pub shutdown_grace: Option<String>,

    /// Seconds a whole request may take before it is answered 408 [default: 60]
    #[arg(long, env = "REQUEST_TIMEOUT", value_name = "SECS")]
    pub request_timeout: Option<String>,

    /// pedidos: time to connect to a peer, in milliseconds [default: 1000]
    #[arg(long, env = "PEER_CONNECT_TIMEOUT_MS", value_name = "MS")]
    pub peer_connect_timeout_ms: Option<String>,

    /// pedidos: time for one attempt at a peer call, answer included, in milliseconds [default: 2000]
    #[arg(long, env = "PEER_TIMEOUT_MS", value_name = "MS")]
    pub peer_timeout_ms: Option<String>,

    /// pedidos: open connections to each peer, per worker [default: 256]
    #[arg(long, env = "PEER_MAX_CONNECTIONS", value_name = "N")]
    pub peer_max_connections: Option<String>,
}

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Productos,
    Inventario,
    Pagos,
    Pedidos,
}

impl Service {
    pub const ALL: [Service; 4] = [Self::Productos, Self::Inventario, Self::Pagos, Self::Pedidos];

    /// The name used for its subcommand, config file, migrations and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Productos => "productos",
            Self::Inventario => "inventario",
            Self::Pagos => "pagos",
            Self::Pedidos => "pedidos",
        }
    }

    fn offset(self) -> u16 {
        match self {
            Self::Productos => 0,
            Self::Inventario => 1,
            Self::Pagos => 2,
            Self::Pedidos => 3,
        }
    }

    pub fn default_port(self) -> u16 {
        5001 + self.offset()
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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
}

impl PeerSettings {
    /// The original design's peers and resilience policy.
    pub fn defaults() -> Self {
        Self {
            products_url: "http://127.0.0.1:5001".into(),
            inventory_url: "http://127.0.0.1:5002".into(),
            payments_url: "http://127.0.0.1:5003".into(),
            retry_attempts: 2,
            retry_backoff: Duration::from_millis(100),
            breaker_failures: 3,
            breaker_open: Duration::from_secs(30),
            connect_timeout: Duration::from_millis(1000),
            timeout: Duration::from_millis(2000),
            max_connections: 256,
            recovery_interval: Duration::from_secs(10),
            order_deadline: Duration::from_secs(30),
        }
    }
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
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// A setting that could not be used; printed as one line before exiting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// One configuration file's `KEY=value` lines.
type EnvFile = HashMap<String, String>;

fn read_env_file(path: &Path) -> Result<EnvFile, ConfigError> {
    if !path.is_file() {
        return Ok(EnvFile::new());
    }
    dotenvy::from_path_iter(path)
        .and_then(|lines| lines.collect::<Result<EnvFile, _>>())
        .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))
}

/// The layers under the command line and the process environment.
struct Layers<'a> {
    matches: &'a ArgMatches,
    dotenv: EnvFile,
    config_dir: PathBuf,
}

impl Layers<'_> {
    /// A value from a flag or the process environment (clap reads both). Each flag's
    /// id is its variable's name in lower case (`PEER_TIMEOUT_MS`: `peer_timeout_ms`).
    fn given(&self, key: &str) -> Option<&String> {
        self.matches
            .try_get_one::<String>(&key.to_ascii_lowercase())
            .ok()
            .flatten()
    }

    fn given_as_flag(&self, id: &str) -> bool {
        self.matches.value_source(id) == Some(ValueSource::CommandLine)
    }

    fn config_file(&self, service: Service) -> Result<EnvFile, ConfigError> {
        read_env_file(&self.config_dir.join(format!("{}.env", service.name())))
    }

    /// A setting parsed from [`Layers::shared`], or `default` when no layer sets it.
    fn setting<T: std::str::FromStr>(
        &self,
        key: &str,
        config: &EnvFile,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        self.shared(key, config)
            .map_or(Ok(default), |v| parse(key, &v, what))
            .map_err(|e| self.located(e, key, config))
    }

    /// Says which layer an invalid value came from.
    fn located(&self, error: ConfigError, key: &str, config: &EnvFile) -> ConfigError {
        let layer = if self.given(key).is_some() {
            "a flag or the environment".to_string()
        } else if self.dotenv.contains_key(key) {
            ".env".to_string()
        } else if config.contains_key(key) {
            format!("{}/<service>.env", self.config_dir.display())
        } else {
            return error;
        };
        ConfigError::new(format!("{error} (set in {layer})"))
    }

    /// A number of seconds, fractions allowed, or `default` when no layer sets it.
    fn seconds(&self, key: &str, config: &EnvFile, default: Duration) -> Result<Duration, ConfigError> {
        let Some(value) = self.shared(key, config) else {
            return Ok(default);
        };
        parse::<f64>(key, &value, "a number of seconds")
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                let error = ConfigError::new(format!("{key}={value:?} is not a positive number of seconds"));
                self.located(error, key, config)
            })
    }

    /// A value that every service shares: flag or environment, `.env`, then any config file.
    fn shared(&self, key: &str, config: &EnvFile) -> Option<String> {
        self.given(key)
            .or_else(|| self.dotenv.get(key))
            .or_else(|| config.get(key))
            .cloned()
    }
}

fn parse<T: std::str::FromStr>(key: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(format!("{key}={value:?} is not {what}")))
}

/// Checks a peer URL: `http://host[:port]`, kept without a trailing slash.
pub fn parse_peer_url(key: &str, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim().trim_end_matches('/');
    let invalid = || {
        ConfigError::new(format!(
            "{key}={value:?} is not a URL such as http://127.0.0.1:5001"
        ))
    };
    let uri: awc::http::Uri = trimmed.parse().map_err(|_| invalid())?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(ConfigError::new(format!(
                "{key}={value:?}: https is not supported; put TLS in front of the peer and use http"
            )));
        }
        _ => return Err(invalid()),
    }
    if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
        return Err(invalid());
    }
    Ok(trimmed.to_string())
}

impl Settings {
    /// Resolves the settings of `penguin serve` from its arguments, the files and defaults.
    pub fn resolve(args: &ServeArgs, matches: &ArgMatches) -> Result<Self, ConfigError> {
        let dotenv = read_env_file(Path::new(".env"))?;
        let config_dir = args
            .config_dir
            .clone()
            .or_else(|| dotenv.get("CONFIG_DIR").cloned())
            .unwrap_or_else(|| "config".into());
        let layers = Layers {
            matches,
            dotenv,
            config_dir: PathBuf::from(config_dir),
        };
        let targets: Vec<Service> = match args.target {
            Target::All => Service::ALL.to_vec(),
            Target::Productos => vec![Service::Productos],
            Target::Inventario => vec![Service::Inventario],
            Target::Pagos => vec![Service::Pagos],
            Target::Pedidos => vec![Service::Pedidos],
        };
        let all = args.target == Target::All;
        if all {
            for flag in ["port", "db_path"] {
                if layers.given_as_flag(flag) {
                    return Err(ConfigError::new(format!(
                        "--{} names one service; serve all takes --base-port and --data-dir",
                        flag.replace('_', "-")
                    )));
                }
            }
        }

        let data_dir = PathBuf::from(
            layers
                .shared("DATA_DIR", &EnvFile::new())
                .unwrap_or_else(|| ".".into()),
        );
        let base_port: Option<u16> = layers
            .shared("BASE_PORT", &EnvFile::new())
            .map(|v| parse("BASE_PORT", &v, "a port number"))
            .transpose()?;
        if let Some(base) = base_port
            && base != 0
            && base > u16::MAX - 3
        {
            return Err(ConfigError::new(format!(
                "BASE_PORT={base} leaves no room for four ports"
            )));
        }

        let mut services = Vec::new();
        let mut configs: HashMap<Service, EnvFile> = HashMap::new();
        for service in targets {
            let config = layers.config_file(service)?;
            let port = match (all, base_port) {
                (true, Some(0)) => 0,
                (true, Some(base)) => base + service.offset(),
                (true, None) => config
                    .get("PORT")
                    .map(|v| parse("PORT", v, "a port number"))
                    .transpose()?
                    .unwrap_or(service.default_port()),
                (false, _) => layers.setting("PORT", &config, service.default_port(), "a port number")?,
            };
            let default_db = format!("{}.db", service.name());
            let db_path = if all {
                data_dir.join(config.get("DB_PATH").cloned().unwrap_or(default_db))
            } else {
                PathBuf::from(layers.shared("DB_PATH", &config).unwrap_or(default_db))
            };
            let host: IpAddr =
                layers.setting("HOST", &config, IpAddr::from([127, 0, 0, 1]), "an IP address")?;
            let token = layers
                .shared("SERVICE_TOKEN", &config)
                .unwrap_or_else(|| DEFAULT_TOKEN.into());
            if token.trim().is_empty() {
                return Err(ConfigError::new("SERVICE_TOKEN is empty; set a shared secret"));
            }
            // serve all shares the CPUs among its four services: more workers than
            // cores only add context switches.
            let cpus = std::thread::available_parallelism().map_or(2, usize::from);
            let default_workers = if all {
                (cpus / Service::ALL.len()).max(1)
            } else {
                cpus
            };
            let workers = layers.setting("WORKERS", &config, default_workers, "a number")?;
            if workers == 0 {
                return Err(ConfigError::new("WORKERS=0: a service needs at least one worker"));
            }
            let request_timeout = layers.seconds("REQUEST_TIMEOUT", &config, DEFAULT_REQUEST_TIMEOUT)?;
            services.push(ServiceSettings {
                service,
                addr: SocketAddr::new(host, port),
                token,
                db_path,
                workers,
                request_timeout,
            });
            configs.insert(service, config);
        }

        let no_file = EnvFile::new();
        let config_of = |service| configs.get(&service).unwrap_or(&no_file);
        let peers = Self::resolve_peers(&layers, config_of(Service::Pedidos))?;
        let reservation_ttl = layers.seconds(
            "RESERVATION_TTL",
            config_of(Service::Inventario),
            DEFAULT_RESERVATION_TTL,
        )?;
        let log_dir = if all {
            data_dir
        } else {
            services[0]
                .db_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        let shutdown_grace = layers.seconds("SHUTDOWN_GRACE", &no_file, DEFAULT_SHUTDOWN_GRACE)?;
        Ok(Self {
            target: args.target,
            services,
            peers,
            reservation_ttl,
            log_dir,
            shutdown_grace,
        })
    }

    fn resolve_peers(layers: &Layers, config: &EnvFile) -> Result<PeerSettings, ConfigError> {
        let d = PeerSettings::defaults();
        let value = |key: &str| layers.shared(key, config);
        let url = |key: &str, default: String| -> Result<String, ConfigError> {
            value(key)
                .map_or(Ok(default), |v| parse_peer_url(key, &v))
                .map_err(|e| layers.located(e, key, config))
        };
        let millis = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            let ms: u64 = layers.setting(
                key,
                config,
                default.as_millis() as u64,
                "a number of milliseconds",
            )?;
            Ok(Duration::from_millis(ms))
        };
        let peers = PeerSettings {
            products_url: url("PRODUCTS_URL", d.products_url)?,
            inventory_url: url("INVENTORY_URL", d.inventory_url)?,
            payments_url: url("PAYMENTS_URL", d.payments_url)?,
            retry_attempts: layers.setting("RETRY_ATTEMPTS", config, d.retry_attempts, "a number")?,
            retry_backoff: millis("RETRY_BACKOFF_MS", d.retry_backoff)?,
            breaker_failures: layers.setting("BREAKER_FAILURES", config, d.breaker_failures, "a number")?,
            breaker_open: layers.seconds("BREAKER_OPEN_SECS", config, d.breaker_open)?,
            recovery_interval: layers.seconds("RECOVERY_INTERVAL", config, d.recovery_interval)?,
            order_deadline: layers.seconds("ORDER_DEADLINE", config, d.order_deadline)?,
            connect_timeout: millis("PEER_CONNECT_TIMEOUT_MS", d.connect_timeout)?,
            timeout: millis("PEER_TIMEOUT_MS", d.timeout)?,
            max_connections: layers.setting("PEER_MAX_CONNECTIONS", config, d.max_connections, "a number")?,
        };
        if peers.retry_attempts == 0 || peers.breaker_failures == 0 || peers.max_connections == 0 {
            return Err(ConfigError::new(
                "RETRY_ATTEMPTS, BREAKER_FAILURES and PEER_MAX_CONNECTIONS must be at least 1",
            ));
        }
        if peers.timeout.is_zero() || peers.connect_timeout.is_zero() {
            return Err(ConfigError::new(
                "PEER_TIMEOUT_MS and PEER_CONNECT_TIMEOUT_MS must be above 0",
            ));
        }
        Ok(peers)
    }
}
