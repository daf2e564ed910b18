//! `penguin backup --to DIR [service|all]`: a consistent copy of each database named,
//! taken while the services serve (see [`db::copy`]), checked, and put in place
//! whole: `DIR/<service>.db` appears only once its copy is complete and on disk. It
//! reads the databases where `penguin serve` would (`DB_PATH`, `--data-dir`, the
//! config files), and never overwrites a copy already there.
//!
//! With `all`, each service is copied in turn: every copy is consistent, but the four
//! are not of one instant, as four services on four hosts never are.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use crate::config::{Storage, Target};
use crate::db;
use crate::service::Service;

/// The flags of `penguin backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The service whose database to copy, or `all` for the four of them
    #[arg(value_enum, default_value = "all")]
    pub target: Target,

    /// Folder to write the copies into, as <service>.db (created if missing; an existing copy is never overwritten)
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,

    #[command(flatten)]
    pub storage: Storage,
}

/// What `penguin backup` copies, and where to.
#[derive(Debug, Clone)]
pub struct BackupPlan {
    pub to: PathBuf,
    /// Each service and its database file, as `penguin serve` would open it.
    pub databases: Vec<(Service, PathBuf)>,
}

/// Copies every database of the plan, each on its own: one line for each, and
/// whether all of them were copied.
pub fn run(plan: &BackupPlan) -> (Vec<Result<String, String>>, bool) {
    let lines: Vec<_> = plan
        .databases
        .iter()
        .map(|(service, source)| back_up(*service, source, &plan.to).map_err(|e| format!("{service}: {e:#}")))
        .collect();
    let all = lines.iter().all(Result::is_ok);
    (lines, all)
}

fn back_up(service: Service, source: &Path, to: &Path) -> anyhow::Result<String> {
    let copy = to.join(format!("{service}.db"));
    if copy.exists() {
        anyhow::bail!("{} already exists; back up into a new folder", copy.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    // Written under another name and renamed: a copy cut short never looks complete.
    let partial = to.join(format!(".{service}.db.partial"));
    let _ = std::fs::remove_file(&partial);
    let version = db::copy(source, service, &partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot flush {}", partial.display()))?;
    std::fs::rename(&partial, &copy).with_context(|| format!("cannot rename to {}", copy.display()))?;
    std::fs::File::open(to)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot flush {}", to.display()))?;
    let bytes = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
    Ok(format!(
        "{service}: {} copied to {} ({bytes} bytes, schema version {version}, integrity ok)",
        source.display(),
        copy.display()
    ))
}
