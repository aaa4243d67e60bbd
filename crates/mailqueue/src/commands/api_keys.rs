//! `mailqueue api-keys create|list|revoke`.

use crate::app::open_store;
use crate::Config;
use anyhow::Context;
use chrono::{DurationRound, Utc};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Subcommand;
use mailqueue_core::api_key::{ApiKeyName, ApiKeyPermission};
use mailqueue_core::store::ApiKeySelector;
use mailqueue_service::api_keys::{create_api_key, revoke_api_key};

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// Creates a key and prints it (as the last line). It is shown only once.
    Create {
        /// 1 to 50 characters.
        #[arg(long, value_parser = |raw: &str| ApiKeyName::parse(raw))]
        name: ApiKeyName,
        /// `full_access` (everything) or `sending_access` (only sending emails).
        #[arg(
            long,
            default_value = "full_access",
            value_parser = PossibleValuesParser::new(ApiKeyPermission::ALL.map(ApiKeyPermission::as_str))
                .try_map(|raw| raw.parse::<ApiKeyPermission>())
        )]
        permission: ApiKeyPermission,
    },
    /// Lists keys (never the tokens).
    List {
        /// Print JSON, one object per key, instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a key by id or name.
    Revoke {
        /// The key's id, or its name (every active key of that name).
        key: String,
    },
}

pub async fn run(config: Config, command: ApiKeysCommand) -> anyhow::Result<()> {
    let (store, _) = open_store(&config).await?;
    let now = Utc::now()
        .duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or_else(|_| Utc::now());
    match command {
        ApiKeysCommand::Create { name, permission } => {
            let (record, token) = create_api_key(store.as_ref(), &name, permission, None, now)
                .await
                .context("creating the API key")?;
            println!(
                "Created API key \"{}\" ({}) with {}.",
                record.name, record.id, record.permission
            );
            println!("Keep it now: it cannot be shown again.");
            println!("{}", token.expose());
        }
        ApiKeysCommand::List { json } => {
            let keys = store.list_api_keys().await?;
            if json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "id": k.id.to_string(), "name": k.name, "prefix": k.token_prefix,
                            "permission": k.permission.as_str(),
                            "created_at": k.created_at.to_rfc3339(),
                            "revoked_at": k.revoked_at.map(|t| t.to_rfc3339()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<36}  {:<12}  {:<14}  {:<25}  {:<8}  NAME",
                    "ID", "PREFIX", "PERMISSION", "CREATED", "STATE"
                );
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<36}  {:<12}  {:<14}  {:<25}  {:<8}  {}",
                        k.id,
                        k.token_prefix,
                        k.permission,
                        k.created_at.to_rfc3339(),
                        state,
                        k.name
                    );
                }
            }
        }
        ApiKeysCommand::Revoke { key } => {
            let n = revoke_api_key(store.as_ref(), &ApiKeySelector::id_or_name(&key), now).await?;
            anyhow::ensure!(n > 0, "no active API key has the id or name `{key}`");
            println!("Revoked {n} API key(s) matching `{key}`.");
        }
    }
    Ok(())
}
