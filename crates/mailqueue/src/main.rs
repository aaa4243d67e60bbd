//! The `mailqueue` command.

use clap::{Parser, Subcommand};
use mailqueue::commands::backup::BackupArgs;
use mailqueue::commands::backups::BackupsCommand;
use mailqueue::commands::dr::DrCommand;
use mailqueue::commands::restore::RestoreCommand;
use mailqueue::commands::verify::{Verdict, VerifyArgs};
use mailqueue::commands::wal::{WalCommand, WalFetchArgs, WalPrefetchArgs, WalPushArgs};
use mailqueue::commands::{self, api_keys::ApiKeysCommand};
use mailqueue::config::{Config, LogFormat, Role};
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "mailqueue",
    version,
    about = "A self-hosted transactional email queue with Resend's API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the HTTP API and the delivery workers, or one of them.
    Serve {
        /// `all` (the default, or MAILQUEUE_ROLE), `api` or `worker`.
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Applies database migrations and exits.
    Migrate,
    /// Manages API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Takes a backup.
    Backup(BackupArgs),
    /// Restores a backup.
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Reads backups completely and checks them (exit 0 sound, 3 warnings, 1 damaged).
    Verify(VerifyArgs),
    /// Lists backups.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Archives one WAL file: PostgreSQL's archive_command (`mailqueue wal-push %p`).
    #[command(name = "wal-push")]
    WalPush(WalPushArgs),
    /// Restores one WAL file: PostgreSQL's restore_command (`mailqueue wal-fetch %f %p`).
    /// Exit 1 only when the archive does not hold it; 126 on any other failure.
    #[command(name = "wal-fetch")]
    WalFetch(WalFetchArgs),
    /// The read-ahead `wal-fetch --prefetch` starts.
    #[command(name = "wal-prefetch", hide = true)]
    WalPrefetch(WalPrefetchArgs),
    /// Checks and prunes the WAL archive.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Disaster recovery: the drill.
    #[command(subcommand)]
    Dr(DrCommand),
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let filter: Targets = config.log.parse().map_err(|e| {
        anyhow::anyhow!("MAILQUEUE_LOG `{}` is not a valid filter: {e}", config.log)
    })?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter);
    match config.log_format {
        LogFormat::Json => registry.with(fmt.json()).init(),
        LogFormat::Text => registry.with(fmt).init(),
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = Config::from_env(&env)?;
    init_logging(&config)?;
    match cli.command {
        Command::Serve { role } => {
            let config = match role {
                Some(role) => config.with_role(role)?,
                None => config,
            };
            commands::serve::run(config).await?
        }
        Command::Migrate => commands::migrate::run(config).await?,
        Command::ApiKeys(cmd) => commands::api_keys::run(config, cmd).await?,
        Command::Backup(cmd) => commands::backup::run(config, cmd).await?,
        Command::Restore(cmd) => commands::restore::run(config, cmd).await?,
        Command::Backups(cmd) => commands::backups::run(config, cmd).await?,
        Command::WalPush(args) => return Ok(commands::wal::push_command(config, args).await),
        Command::WalFetch(args) => return Ok(commands::wal::fetch_command(config, args).await),
        Command::WalPrefetch(args) => commands::wal::prefetch_command(config, args).await?,
        Command::Wal(cmd) => return commands::wal::run(config, cmd).await,
        Command::Dr(cmd) => return commands::dr::run(config, cmd).await,
        Command::Verify(args) => {
            return Ok(match commands::verify::run(config, args).await? {
                Verdict::Sound => ExitCode::SUCCESS,
                Verdict::Warnings => ExitCode::from(3),
            })
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // PostgreSQL reads any wal-fetch exit code up to 125 as "no such file"
    // and may then end recovery early: every failure, a panic included,
    // must exit above that.
    let fetching = matches!(cli.command, Command::WalFetch(_));
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Output piped into a reader that stopped (`wal check | head`):
        // end quietly, as a program killed by SIGPIPE would.
        if panic_message(info).contains("failed printing to stdout") {
            std::process::exit(141);
        }
        if fetching {
            eprintln!("error: wal-fetch panicked: {info}");
            std::process::exit(i32::from(commands::wal::FETCH_FAILED));
        }
        default_hook(info);
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return if fetching {
                ExitCode::from(commands::wal::FETCH_FAILED)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) if fetching => {
            eprintln!("error: {e:#}");
            ExitCode::from(commands::wal::FETCH_FAILED)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
