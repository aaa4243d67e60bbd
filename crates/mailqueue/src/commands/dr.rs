//! `mailqueue dr drill`: the guide's monthly disaster-recovery test,
//! automated (see `mailqueue_backup::drill`). Writes the report as
//! Markdown and JSON, prints the Markdown, exports `mailqueue_dr_drill_*`
//! metrics, and exits non-zero when a check fails or a target is missed.

use super::backup::metrics_sink;
use super::places::{existing_destination, Place};
use super::restore::restore_command;
use crate::Config;
use clap::{Subcommand, ValueEnum};
use mailqueue_backup::cluster::Owner;
use mailqueue_backup::drill::{run_drill, DispatchRebuild, DrillOptions, PostgresSource, Targets};
use mailqueue_backup::metrics::{push_to_gateway, pushed_value, sibling_textfile};
use mailqueue_core::queue::{requeue_pending, DispatchQueue};
use mailqueue_queue::{InProcessQueue, RedisQueue, RedisSettings};
use mailqueue_store::{PgSettings, PgStore};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SourceArg {
    /// Physical with PITR when a base backup exists, logical otherwise.
    Auto,
    Physical,
    Logical,
    /// Skip PostgreSQL.
    None,
}

#[derive(Subcommand, Debug)]
pub enum DrCommand {
    /// Restores the latest backups into scratch servers, checks them, and
    /// reports the RTO and RPO achieved against the guide's targets.
    Drill {
        /// Where the backups are stored (the archive, for WAL).
        #[arg(short = 's', long, value_enum, default_value = "file")]
        source: Place,
        /// Which PostgreSQL backup to restore.
        #[arg(long, value_enum, default_value = "auto")]
        postgres: SourceArg,
        /// Skip Redis (a deployment without a Redis dispatch queue).
        #[arg(long)]
        no_redis: bool,
        /// The mailqueue database in the cluster (default: DATABASE_URL's).
        #[arg(long)]
        database: Option<String>,
        /// The cluster's superuser in a physical restore.
        #[arg(long, default_value = "postgres")]
        superuser: String,
        /// The system user that runs the scratch PostgreSQL when this runs as root.
        #[arg(long, default_value = "postgres")]
        run_as: String,
        /// Scratch space (removed afterwards; default: under MAILQUEUE_BACKUP_LOCK_DIR).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Where the reports go (default: MAILQUEUE_BACKUP_LOCK_DIR/dr-reports).
        #[arg(long)]
        report_dir: Option<PathBuf>,
    },
}

/// Requeue-all from the restored store into a dispatch queue: a Redis
/// queue on a private `redis-server` (the production dispatch layer) when
/// the drill covers Redis, the in-process queue otherwise.
struct Rebuild {
    redis: bool,
}

#[async_trait::async_trait]
impl DispatchRebuild for Rebuild {
    async fn rebuild(&self, url: &str) -> Result<(u64, u64), String> {
        let store = PgStore::connect(&PgSettings {
            url: url.to_string(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(30),
        })
        .await
        .map_err(|e| e.to_string())?;
        if !self.redis {
            return requeue_into(&store, &InProcessQueue::new()).await;
        }
        let server = ScratchRedis::start().await?;
        let queue = RedisQueue::new(RedisSettings {
            url: server.url.clone(),
            prefix: "mailqueue-drill".into(),
            visibility_timeout: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        })
        .map_err(|e| e.to_string())?;
        requeue_into(&store, &queue).await
    }

    fn destination(&self) -> &'static str {
        if self.redis {
            "a scratch Redis"
        } else {
            "the in-process queue"
        }
    }
}

async fn requeue_into(store: &PgStore, queue: &dyn DispatchQueue) -> Result<(u64, u64), String> {
    let counts = requeue_pending(store, queue, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let held = queue.queued_count().await.map_err(|e| e.to_string())?;
    Ok((counts.total(), held))
}

/// A `redis-server` on a free loopback port that keeps nothing on disk,
/// stopped when dropped.
struct ScratchRedis {
    child: std::process::Child,
    url: String,
}

impl ScratchRedis {
    async fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("finding a free port: {e}"))?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting a scratch redis-server: {e}"))?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the scratch redis-server did not listen within 10 s".into())
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_name(config: &Config) -> String {
    config
        .database_url
        .as_ref()
        .and_then(|u| url_database(u.expose()))
        .unwrap_or_else(|| "mailqueue".into())
}

fn url_database(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let name = path.split('?').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

pub async fn run(config: Config, command: DrCommand) -> anyhow::Result<ExitCode> {
    let DrCommand::Drill {
        source,
        postgres,
        no_redis,
        database,
        superuser,
        run_as,
        work_dir,
        report_dir,
    } = command;
    let dest = existing_destination(&config, source)?;
    let me = Owner::current()?;
    let run_as = if me.uid == 0 {
        Owner::user(&run_as)?
    } else {
        me
    };
    let work_dir = work_dir.unwrap_or_else(|| {
        config
            .backup_lock_dir
            .join(format!("mailqueue-dr-drill-{}", std::process::id()))
    });
    let options = DrillOptions {
        work_dir,
        postgres: match postgres {
            SourceArg::Auto => PostgresSource::Auto,
            SourceArg::Physical => PostgresSource::Physical,
            SourceArg::Logical => PostgresSource::Logical,
            SourceArg::None => PostgresSource::None,
        },
        database: database.unwrap_or_else(|| database_name(&config)),
        superuser,
        restore_command: restore_command(&config, source)?,
        redis: !no_redis,
        run_as,
        targets: Targets::default(),
        dispatch: Some(Box::new(Rebuild { redis: !no_redis })),
    };
    let report = run_drill(&dest, &options).await?;
    let report_dir = report_dir.unwrap_or_else(|| config.backup_lock_dir.join("dr-reports"));
    std::fs::create_dir_all(&report_dir)?;
    let stem = format!("dr-drill-{}", report.started_at.format("%Y%m%d_%H%M%S"));
    let markdown = report.to_markdown();
    std::fs::write(report_dir.join(format!("{stem}.md")), &markdown)?;
    std::fs::write(report_dir.join(format!("{stem}.json")), report.to_json())?;
    println!("{markdown}");
    println!(
        "Report: {}",
        report_dir.join(format!("{stem}.md")).display()
    );
    publish_metrics(&config, &report).await;
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Metrics of the drill; the last success survives failed drills in a
/// state file, or, for a process with no state of its own (a Kubernetes
/// CronJob's pod), on the Pushgateway.
async fn publish_metrics(config: &Config, report: &mailqueue_backup::drill::DrillReport) {
    let state = config
        .backup_lock_dir
        .join("mailqueue-dr-drill-last-success");
    let mut previous: Option<f64> = std::fs::read_to_string(&state)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let (None, Some(url)) = (previous, &config.pushgateway_url) {
        previous = pushed_value(
            url,
            "mailqueue_dr_drill",
            "mailqueue_dr_drill_last_success_timestamp_seconds",
        )
        .await
        .filter(|v| *v > 0.0);
    }
    if report.passed {
        let at = report.finished_at.timestamp_millis() as f64 / 1000.0;
        if let Err(e) = std::fs::write(&state, at.to_string()) {
            tracing::warn!(error = %e, "cannot keep the drill's last success");
        }
    }
    let text = report.metrics(previous);
    let sink = metrics_sink(config);
    if let Some(textfile) = &sink.textfile {
        let path = sibling_textfile(textfile, "mailqueue_dr_drill");
        if let Err(e) = std::fs::write(&path, &text) {
            tracing::warn!(error = %e, "cannot write the drill's metrics textfile");
        }
    }
    if let Some(url) = &sink.pushgateway {
        push_to_gateway(url, "mailqueue_dr_drill", &[], text).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_comes_from_the_url() {
        assert_eq!(
            super::url_database("postgres://u@h:5/mq?x=1").as_deref(),
            Some("mq")
        );
        assert_eq!(super::url_database("postgres://u@h:5"), None);
    }
}
