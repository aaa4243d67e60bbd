//! `mailqueue api-keys create|list|revoke`.

use crate::app::open_store;
use crate::Config;
use anyhow::Context;
use chrono::{DateTime, DurationRound, Utc};
use clap::Subcommand;
use mailqueue_core::api_key::ApiToken;
use mailqueue_core::store::{ApiKeyRecord, ApiKeyStore};
use mailqueue_core::ApiKeyId;

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// Creates a key and prints it (as the last line). It is shown only once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// Lists keys (never the tokens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revokes a key by id or name.
    Revoke { key: String },
}

/// Creates and stores a new key; the token is returned once and never stored.
pub async fn create_api_key(
    store: &dyn ApiKeyStore,
    name: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<(ApiKeyRecord, ApiToken)> {
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
    let token = ApiToken::from_random(secret);
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(now),
        name: name.to_string(),
        token_prefix: token.display_prefix(),
        created_at: now,
        revoked_at: None,
    };
    store
        .create_api_key(&record, &token.hash())
        .await
        .context("storing the API key")?;
    Ok((record, token))
}

pub async fn run(config: Config, command: ApiKeysCommand) -> anyhow::Result<()> {
    let (store, _) = open_store(&config).await?;
    let now = Utc::now()
        .duration_trunc(chrono::Duration::milliseconds(1))
        .unwrap_or_else(|_| Utc::now());
    match command {
        ApiKeysCommand::Create { name } => {
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            let (record, token) = create_api_key(store.as_ref(), name.trim(), now).await?;
            println!("Created API key \"{}\" ({}).", record.name, record.id);
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
                            "created_at": k.created_at.to_rfc3339(),
                            "revoked_at": k.revoked_at.map(|t| t.to_rfc3339()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<36}  {:<12}  {:<25}  {:<8}  NAME",
                    "ID", "PREFIX", "CREATED", "STATE"
                );
                for k in keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<36}  {:<12}  {:<25}  {:<8}  {}",
                        k.id,
                        k.token_prefix,
                        k.created_at.to_rfc3339(),
                        state,
                        k.name
                    );
                }
            }
        }
        ApiKeysCommand::Revoke { key } => {
            let n = store.revoke_api_key(&key, now).await?;
            anyhow::ensure!(n > 0, "no active API key has the id or name `{key}`");
            println!("Revoked {n} API key(s) matching `{key}`.");
        }
    }
    Ok(())
}
