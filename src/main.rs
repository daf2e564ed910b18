//! The `penguin` command: parse, start logging, hand over to `startup`.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use penguin::config::{Cli, Command, DEFAULT_TOKEN, Settings};
use penguin::{logging, startup};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) => {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "penguin: {} (see penguin --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("penguin: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => {
            let Some(serve_matches) = matches.subcommand_matches("serve") else {
                return ExitCode::from(2);
            };
            let settings = match Settings::resolve(&args, serve_matches) {
                Ok(settings) => settings,
                Err(e) => {
                    eprintln!("penguin: {e}");
                    return ExitCode::from(2);
                }
            };
            serve(&settings)
        }
        Command::Loadgen(args) => match penguin::loadgen::run(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("penguin loadgen: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn serve(settings: &Settings) -> ExitCode {
    if let Err(e) = logging::init(&settings.log_dir) {
        eprintln!(
            "penguin: cannot write {}: {e}",
            settings.log_dir.join("logs.log").display()
        );
        return ExitCode::FAILURE;
    }
    if settings.services.iter().any(|s| s.token == DEFAULT_TOKEN) {
        log::warn!("SERVICE_TOKEN is the public default {DEFAULT_TOKEN:?}; set your own secret");
    }
    let outcome = actix_web::rt::System::new().block_on(async {
        let started = startup::start(settings)?;
        for service in &settings.services {
            if let Some(url) = started.url(service.service) {
                log::info!(target: service.service.name(), "listening on {url}");
            }
        }
        started.run().await.map_err(|e| e.to_string())
    });
    let code = match outcome {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    };
    logging::flush();
    code
}
