//! The command line: `penguin`'s subcommands, and the layers every setting of
//! `serve` and `backup` comes from, lowest to highest: built-in default,
//! `config/<service>.env`, `.env` in the working directory, the process environment, a
//! command-line flag.
//!
//! clap reads the flags and the environment; dotenvy reads the two files, whose values
//! become the defaults of their flags, so one clap parse per service applies every
//! layer in order and `--help` shows the built-in defaults. `serve all` starts four
//! services from one command line: what names one service (`PORT`, `DB_PATH`,
//! `OTEL_SERVICE_NAME`) comes only from its config file, `--base-port` and
//! `--data-dir`, and pedidos is wired to its three siblings.
//!
//! This module is above the tools and services it starts: they define their own
//! arguments (`CheckArgs`, `ProbeArgs`, `BackupArgs`, `ServeArgs` in `config`) and know
//! nothing of it.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::backup::{BackupArgs, BackupPlan};
use crate::config::{PeerSettings, ServeArgs, ServiceSettings, Settings, Storage, Target};
use crate::invariants::CheckArgs;
use crate::probe::ProbeArgs;
use crate::service::Service;

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
        Command::Serve(args) => serve_settings(*args, argv, &dotenv).map(Invocation::Serve),
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

/// Resolves the settings of each service `penguin serve` starts, with its config file.
fn serve_settings(args: ServeArgs, argv: &[OsString], dotenv: &EnvFile) -> Result<Settings, ConfigError> {
    let all = args.target == Target::All;
    let parsed: Vec<(Service, ServeArgs)> = per_service("serve", args.target, &args.storage, argv, dotenv)?
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
    Ok(Settings {
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
