//! The `penguin` command: parse, start logging, hand over to `startup`.

use std::ffi::OsString;
use std::process::ExitCode;

use penguin::cli::{ConfigError, Invocation};
use penguin::config::{DEFAULT_TOKEN, Settings};
use penguin::{backup, invariants, logging, probe, startup};

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match penguin::cli::parse_args(&argv) {
        Ok(Invocation::Serve(settings)) => serve(&settings),
        Ok(Invocation::Check(args)) => match invariants::run(&args) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("penguin check: {e}");
                ExitCode::from(2)
            }
        },
        Ok(Invocation::Probe(args)) => match probe::run(&args) {
            Ok(answer) => {
                println!("{answer}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("penguin probe: {why}");
                ExitCode::FAILURE
            }
        },
        Ok(Invocation::Backup(plan)) => {
            let (lines, all) = backup::run(&plan);
            for line in lines {
                match line {
                    Ok(done) => println!("{done}"),
                    Err(why) => eprintln!("penguin backup: {why}"),
                }
            }
            if all { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(ConfigError::Usage(e)) => {
            // Help and version go to stdout with success; usage errors, whole, to stderr.
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("penguin: {e}");
            ExitCode::from(2)
        }
    }
}

fn serve(settings: &Settings) -> ExitCode {
    if let Err(e) = logging::init(
        &settings.log_dir,
        &settings.log,
        settings.log_max_bytes,
        settings.log_format,
    ) {
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
            // The address actually bound (0.0.0.0 in a container), not the one to dial.
            if let Some(addr) = started.addr(service.service) {
                log::info!(target: service.service.name(), "listening on http://{addr}");
            }
        }
        started.run().await?;
        anyhow::Ok(())
    });
    let code = match outcome {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("{e:#}");
            ExitCode::FAILURE
        }
    };
    logging::flush();
    code
}
