//! `mailqueue migrate`: applies the schema migrations and exits.

use crate::app::{open_store, Backend};
use crate::Config;

pub async fn run(config: Config) -> anyhow::Result<()> {
    let (_, backend) = open_store(&config).await?;
    match backend {
        Backend::Postgres => println!("PostgreSQL schema is up to date."),
        Backend::Sqlite => println!(
            "SQLite schema at {} is up to date.",
            config.sqlite_path().display()
        ),
    }
    Ok(())
}
