//! The command line and the typed settings of each service, from five layers, lowest
//! to highest: built-in default, `config/<service>.env`, `.env` in the working
//! directory, the process environment, a command-line flag.
//!
//! clap reads the flags and the environment; dotenvy reads the two files, whose values
//! become the defaults of their flags, so one clap parse per service applies every
//! layer in order and `--help` shows the built-in defaults. `serve all` starts four
//! services from one command line: what names one service (`PORT`, `DB_PATH`) comes
//! only from its config file, `--base-port` and `--data-dir`, and pedidos is wired to
//! its three siblings.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::backup::{BackupArgs, BackupPlan};
use crate::db::DEFAULT_AUTOCHECKPOINT;
use crate::invariantes::CheckArgs;
use crate::logging::LogFormat;
use crate::probe::ProbeArgs;
use crate::service::Service;
use crate::telemetry::{TraceArgs, TraceSettings};

/// The default shared token of the original design.
pub const DEFAULT_TOKEN: &str = "penguin-secret";
/// As long as Stripe keeps its idempotency keys: a client retrying a day later still
/// finds its order.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long an unconfirmed reservation holds its units by default: ten minutes.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);
/// How long a shutdown waits for requests in flight by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    /// Check the shop's books over HTTP: every order final, every unit and payment accounted for.
    Check(Box<CheckArgs>),
    /// GET a URL, such as a service's /health: exit 0 on a 2xx answer, 1 otherwise (a health check without a shell).
    Probe(ProbeArgs),
    /// Copy one service's database, or all four, into a folder while they serve: each copy consistent, checked and complete.
    Backup(Box<BackupArgs>),
}

/// What `penguin` was asked to do, with its settings resolved.
#[derive(Debug)]
pub enum Invocation {
    Serve(Settings),
    Check(CheckArgs),
    Probe(ProbeArgs),
    Backup(BackupPlan),
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
    /// The built-in defaults: the original design's peers and resilience policy.
    pub fn defaults() -> Self {
        let argv = ["penguin", "serve", "pedidos"].map(OsString::from);
        let matches = without_env(Cli::command())
            .try_get_matches_from(argv)
            .expect("the built-in defaults parse");
        match Cli::from_arg_matches(&matches)
            .expect("the built-in defaults are typed")
            .command
        {
            Command::Serve(args) => Self::from(args.as_ref()),
            Command::Check(_) | Command::Probe(_) | Command::Backup(_) => {
                unreachable!("the defaults of serve are parsed")
            }
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
    /// What to log (env_logger directives).
    pub log: String,
    /// The size at which `logs.log` is rotated, in bytes.
    pub log_max_bytes: u64,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
}

/// Why `penguin` cannot run as asked.
#[derive(Debug)]
pub enum ConfigError {
    /// A usage error or a request for help: clap's own message, printed whole.
    Usage(clap::Error),
    /// A setting that cannot be used: one line naming it and the layer it came from.
    Invalid(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(e) => write!(f, "{e}"),
            Self::Invalid(message) => f.write_str(message),
        }
    }
}

/// One settings file's `KEY=value` lines (dotenvy's syntax), and where it is.
struct EnvFile {
    path: PathBuf,
    values: HashMap<String, String>,
}

impl EnvFile {
    fn read(path: &Path) -> Result<Self, ConfigError> {
        let values = if path.is_file() {
            dotenvy::from_path_iter(path)
                .and_then(|lines| lines.collect::<Result<HashMap<_, _>, _>>())
                .map_err(|e| ConfigError::Invalid(format!("cannot read {}: {e}", path.display())))?
        } else {
            HashMap::new()
        };
        Ok(Self {
            path: path.to_path_buf(),
            values,
        })
    }
}

/// The `serve` arguments with their environment variable forgotten: for the built-in defaults.
fn without_env(command: clap::Command) -> clap::Command {
    command.mut_subcommand("serve", |serve| {
        let ids: Vec<_> = serve.get_arguments().map(|a| a.get_id().clone()).collect();
        ids.into_iter()
            .fold(serve, |serve, id| serve.mut_arg(id, |a| a.env(None::<&str>)))
    })
}

/// Settings that name one service: `serve all` takes them from each service's config
/// file only, never from one variable (or `.env` line) for all four.
const ONE_SERVICE_ONLY: [&str; 3] = ["PORT", "DB_PATH", "OTEL_SERVICE_NAME"];

/// The subcommands whose settings come in layers: those that read a service's settings.
const LAYERED: [&str; 2] = ["serve", "backup"];

/// The command line with each setting of `serve` and `backup` taking its default from
/// `.env`, else from the service's config file.
fn layered(dotenv: &EnvFile, config: Option<&EnvFile>, serve_all: bool) -> clap::Command {
    LAYERED.into_iter().fold(Cli::command(), |command, name| {
        command.mut_subcommand(name, |sub| layer(sub, dotenv, config, serve_all))
    })
}

fn layer(
    subcommand: clap::Command,
    dotenv: &EnvFile,
    config: Option<&EnvFile>,
    serve_all: bool,
) -> clap::Command {
    let settings: Vec<_> = subcommand
        .get_arguments()
        .filter_map(|a| Some((a.get_id().clone(), a.get_env()?.to_string_lossy().into_owned())))
        .collect();
    settings.into_iter().fold(subcommand, |serve, (id, variable)| {
        let per_service = serve_all && ONE_SERVICE_ONLY.contains(&variable.as_str());
        let from_config = config.and_then(|c| c.values.get(&variable));
        let value = if per_service {
            from_config
        } else {
            dotenv.values.get(&variable).or(from_config)
        }
        .cloned();
        serve.mut_arg(id, |arg| {
            let arg = if per_service { arg.env(None::<&str>) } else { arg };
            match value {
                Some(value) => arg.default_value(value),
                None => arg,
            }
        })
    })
}

/// Parses `argv` with `command`, turning an invalid value into one line that names
/// the setting and where its value came from.
fn parse(command: clap::Command, argv: &[OsString], files: &[&EnvFile]) -> Result<Command, ConfigError> {
    let matches = command
        .clone()
        .try_get_matches_from(argv)
        .map_err(|e| located(e, &command, argv, files))?;
    Ok(Cli::from_arg_matches(&matches)
        .map_err(ConfigError::Usage)?
        .command)
}

/// Parses the command line: what to do, with every setting from its layers.
pub fn parse_args(argv: &[OsString]) -> Result<Invocation, ConfigError> {
    let dotenv = EnvFile::read(Path::new(".env"))?;
    match parse(layered(&dotenv, None, false), argv, &[&dotenv])? {
        Command::Serve(args) => Settings::resolve(*args, argv, &dotenv).map(Invocation::Serve),
        Command::Check(args) => Ok(Invocation::Check(*args)),
        Command::Probe(args) => Ok(Invocation::Probe(args)),
        Command::Backup(args) => {
            let databases = per_service("backup", args.target, &args.storage, argv, &dotenv)?
                .into_iter()
                .map(|(service, parsed)| match parsed {
                    Command::Backup(one) => (
                        service,
                        args.storage.database(service, one.storage.db_path.as_deref()),
                    ),
                    _ => unreachable!("the same command line parsed as backup before"),
                })
                .collect();
            Ok(Invocation::Backup(BackupPlan {
                to: args.to.clone(),
                databases,
            }))
        }
    }
}

/// Parses the command line once for each service of `target`, with that service's
/// config file as the lowest layer of `subcommand`'s settings. In `all`, what names
/// one service comes from its config file only.
fn per_service(
    subcommand: &str,
    target: Target,
    storage: &Storage,
    argv: &[OsString],
    dotenv: &EnvFile,
) -> Result<Vec<(Service, Command)>, ConfigError> {
    let all = target == Target::All;
    let mut parsed = Vec::new();
    for service in target.services() {
        let file = EnvFile::read(&storage.config_dir.join(format!("{service}.env")))?;
        let command = layered(dotenv, Some(&file), all);
        parsed.push((service, parse(command, argv, &[dotenv, &file])?));
    }
    if all {
        for flag in ["--port", "--db-path", "--otel-service-name"] {
            if argv
                .iter()
                .any(|a| a.to_string_lossy().split('=').next() == Some(flag))
            {
                let instead = if flag == "--otel-service-name" {
                    "each service's OTEL_SERVICE_NAME from its config file"
                } else if subcommand == "serve" {
                    "--base-port and --data-dir"
                } else {
                    "--data-dir"
                };
                return Err(ConfigError::Invalid(format!(
                    "{flag} names one service; {subcommand} all takes {instead}"
                )));
            }
        }
    }
    Ok(parsed)
}

fn located(
    error: clap::Error,
    command: &clap::Command,
    argv: &[OsString],
    files: &[&EnvFile],
) -> ConfigError {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Help shows the built-in defaults, never a value from a file (the token's).
        let pristine = Cli::command().try_get_matches_from(argv).err();
        return ConfigError::Usage(pristine.unwrap_or(error));
    }
    if !matches!(error.kind(), ErrorKind::InvalidValue | ErrorKind::ValueValidation) {
        return ConfigError::Usage(error);
    }
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let (Some(flag), Some(value)) = (
        context(ContextKind::InvalidArg),
        context(ContextKind::InvalidValue),
    ) else {
        return ConfigError::Usage(error);
    };
    let long = flag
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_start_matches("--");
    let Some(arg) = command
        .get_subcommands()
        .flat_map(clap::Command::get_arguments)
        .find(|a| a.get_long() == Some(long))
    else {
        // The service name: clap lists the possible ones.
        return ConfigError::Usage(error);
    };
    let variable = arg
        .get_env()
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let on_command_line = argv.iter().any(|a| {
        a.to_string_lossy() == format!("--{long}") || a.to_string_lossy().starts_with(&format!("--{long}="))
    });
    let layer = if on_command_line {
        format!("the flag --{long}")
    } else if std::env::var_os(&variable).is_some() {
        "the environment".to_string()
    } else if let Some(file) = files.iter().find(|f| f.values.contains_key(&variable)) {
        file.path.display().to_string()
    } else {
        "the built-in default".to_string()
    };
    let reason =
        std::error::Error::source(&error).map_or_else(|| error.kind().to_string(), |e| e.to_string());
    ConfigError::Invalid(format!(
        "{variable}={value:?} is not valid: {reason} (set in {layer})"
    ))
}

impl Settings {
    /// Resolves the settings of each service `penguin serve` starts, with its config file.
    fn resolve(args: ServeArgs, argv: &[OsString], dotenv: &EnvFile) -> Result<Self, ConfigError> {
        let all = args.target == Target::All;
        let parsed: Vec<(Service, ServeArgs)> =
            per_service("serve", args.target, &args.storage, argv, dotenv)?
                .into_iter()
                .map(|(service, parsed)| match parsed {
                    Command::Serve(serve) => (service, *serve),
                    _ => unreachable!("the same command line parsed as serve before"),
                })
                .collect();
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let mut services = Vec::with_capacity(parsed.len());
        for (service, a) in &parsed {
            let port = match (all, args.base_port) {
                (true, Some(0)) => 0,
                (true, Some(base)) => base + service.offset(),
                _ => a.port.unwrap_or(service.default_port()),
            };
            let addr = (a.host.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "HOST={:?} is not an address or a known host name",
                        a.host
                    ))
                })?;
            let db_path = args.storage.database(*service, a.storage.db_path.as_deref());
            // serve all shares the CPUs among its four services: more workers than
            // cores only add context switches.
            let default_workers = if all {
                (cpus / Service::ALL.len()).max(1)
            } else {
                cpus
            };
            services.push(ServiceSettings {
                service: *service,
                addr,
                token: a.service_token.clone(),
                db_path,
                workers: a.workers.map_or(default_workers, usize::from),
                request_timeout: a.request_timeout.0,
                write_queue: a.write_queue as usize,
                wal_autocheckpoint: a.wal_autocheckpoint,
                traces: a.traces.resolve(*service),
            });
        }
        let settings_of = |wanted| {
            parsed
                .iter()
                .find(|(s, _)| *s == wanted)
                .map_or(&args, |(_, a)| a)
        };
        let log_dir = if all {
            args.storage.data_dir.clone()
        } else {
            services[0]
                .db_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        };
        Ok(Self {
            target: args.target,
            peers: PeerSettings::from(settings_of(Service::Pedidos)),
            reservation_ttl: settings_of(Service::Inventario).reservation_ttl.0,
            log_dir,
            log: if all {
                args.log.clone()
            } else {
                parsed[0].1.log.clone()
            },
            log_max_bytes: args.log_max_mb.saturating_mul(1024 * 1024),
            log_format: if all {
                args.log_format
            } else {
                parsed[0].1.log_format
            },
            shutdown_grace: args.shutdown_grace.0,
            services,
        })
    }
}
