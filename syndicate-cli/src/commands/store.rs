//! `syndicate store migrate --store URL`: create or upgrade a store's schema
//! ahead of time, so the workers that open it later need no DDL rights.

use clap::{Args, Subcommand};
use syndicate_core::ChainId;
use syndicate_store_postgres::MigrationReport;

use crate::exit::{CommandResult, Failure};
use crate::store_url::{Access, StoreUrl, open};

/// Store administration.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create the store's schema, or apply the migrations it lacks. Safe to
    /// run while workers use the store, and from several hosts at once; a
    /// store whose schema is newer than this binary is refused unchanged.
    Migrate(MigrateArgs),
}

/// `syndicate store migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The store: `sqlite:PATH` or `postgres://USER@HOST/DATABASE`.
    #[arg(long)]
    pub store: String,
}

/// Runs a store command.
///
/// # Errors
/// A usage [`Failure`] (exit 2) for a bad URL, an unreachable server, or a
/// schema this binary cannot use.
pub fn run(command: &StoreCommand) -> CommandResult {
    match command {
        StoreCommand::Migrate(args) => migrate(args),
    }
}

fn migrate(args: &MigrateArgs) -> CommandResult {
    let url: StoreUrl = args.store.parse().map_err(Failure::usage)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        match &url {
            StoreUrl::Postgres(text) => {
                let report = syndicate_store_postgres::migrate_url(text)
                    .await
                    .map_err(|e| Failure::usage(format!("cannot migrate {url}: {e}")))?;
                println!("{}", describe(&url, &report));
                Ok(())
            }
            _ => {
                // Other stores migrate when opened for writing; the chain
                // name does not matter for that.
                let chain = ChainId::new("migrate").map_err(Failure::usage)?;
                open(&url, Some(&chain), Access::Create).await?;
                println!("{url}: schema is current");
                Ok(())
            }
        }
    })
}

fn describe(url: &StoreUrl, report: &MigrationReport) -> String {
    let applied: Vec<String> = report
        .applied()
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect();
    if applied.is_empty() {
        format!("{url}: schema version {} is current", report.to)
    } else {
        format!(
            "{url}: schema version {} -> {}; applied {}",
            report.from,
            report.to,
            applied.join(", ")
        )
    }
}
