//! `mailqueue backups list`: the catalog, from the manifests.

use super::places::{destination, Place};
use crate::Config;
use clap::Subcommand;
use mailqueue_backup::catalog;

#[derive(Subcommand, Debug)]
pub enum BackupsCommand {
    /// Lists published backups, oldest first.
    List {
        #[arg(long)]
        json: bool,
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
    },
}

pub async fn run(config: Config, command: BackupsCommand) -> anyhow::Result<()> {
    let BackupsCommand::List { json, source } = command;
    let dest = destination(&config, source)?;
    let manifests = catalog::list(&dest, None).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<28} {:<25} {:>14}  {:<5} ENCRYPTED",
        "KIND", "ID", "FINISHED", "BYTES", "COMP"
    );
    for m in manifests {
        println!(
            "{:<10} {:<28} {:<25} {:>14}  {:<5} {}",
            m.kind.as_str(),
            m.id,
            m.finished_at.to_rfc3339(),
            m.size_bytes,
            m.compression.extension(),
            if m.encrypted() { "yes" } else { "no" }
        );
    }
    Ok(())
}
