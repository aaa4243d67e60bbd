//! The drill's PostgreSQL half: a physical restore with PITR, or a logical
//! one, into a scratch cluster, and the checks on what came back.

use super::{DrillOptions, DrillReport};
use crate::cluster::Cluster;
use crate::destination::Destination;
use crate::drill::report::Component;
use crate::error::BackupError;
use crate::manifest::Manifest;
use crate::postgres::{create_database, current_figures, db_error, TableFigures};
use crate::restore_pitr::{restore_pitr, PitrOptions, RecoveryTarget, TargetAction};
use crate::restore_postgres::{restore_postgres, PostgresRestoreOptions};
use crate::wal::listing::{list_archive, ArchiveListing};
use crate::wal::name::Lsn;
use mailqueue_core::status::EmailStatus;
use sqlx::Connection;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The scratch cluster's place: a data directory, a private socket
/// directory and a free port; no TCP listener.
struct Scratch {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    superuser: String,
}

impl Scratch {
    fn new(opts: &DrillOptions) -> Result<Self, BackupError> {
        let socket_dir = opts.work_dir.join("socket");
        std::fs::create_dir_all(&socket_dir)
            .map_err(|e| BackupError::io(format!("creating {}", socket_dir.display()), e))?;
        opts.run_as.take(&socket_dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| BackupError::io("finding a free port", e))?;
        Ok(Self {
            data_dir: opts.work_dir.join("pg"),
            socket_dir,
            port,
            superuser: opts.superuser.clone(),
        })
    }

    fn settings(&self) -> Vec<String> {
        vec![
            format!("port = {}", self.port),
            "listen_addresses = ''".into(),
            format!("unix_socket_directories = '{}'", self.socket_dir.display()),
            "archive_mode = off".into(),
            "hot_standby = on".into(),
        ]
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgresql://{}@localhost:{}/{database}?host={}",
            self.superuser,
            self.port,
            self.socket_dir.display()
        )
    }

    async fn wait_ready(&self, database: &str, timeout: Duration) -> Result<(), BackupError> {
        let deadline = Instant::now() + timeout;
        loop {
            match crate::postgres::connect(&self.url(database)).await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(db_error("connecting to the scratch cluster", e))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Physical: base backup to its figures' restore point (paused, checked),
/// then on to the end of the archived WAL.
pub(super) async fn drill_physical(
    dest: &Destination,
    opts: &DrillOptions,
    base: &Manifest,
    report: &mut DrillReport,
) {
    if let Err(e) = physical(dest, opts, base, report).await {
        report.fail("postgres", &e.to_string());
    }
}

async fn physical(
    dest: &Destination,
    opts: &DrillOptions,
    base: &Manifest,
    report: &mut DrillReport,
) -> Result<(), BackupError> {
    let scratch = Scratch::new(opts)?;
    let wal = base
        .wal
        .as_ref()
        .ok_or_else(|| base.corrupt("the manifest records no WAL range"))?;
    let listing = archive_continuity(dest, base, wal, report).await?;
    let mut rto = 0.0;
    let point = base.figures_at.clone();
    let first_target = match &point {
        Some(p) => RecoveryTarget::Name(p.restore_point.clone()),
        None => RecoveryTarget::Latest,
    };
    let options = PitrOptions {
        target: first_target.clone(),
        data_dir: scratch.data_dir.clone(),
        restore_command: opts.restore_command.clone(),
        action: if point.is_some() {
            TargetAction::Pause
        } else {
            TargetAction::Promote
        },
        settings: scratch.settings(),
        start: true,
        start_timeout: Duration::from_secs(opts.targets.postgres_rto_seconds.max(60.0) as u64),
        owner: Some(opts.run_as),
        hba: Some("local all all trust\n".into()),
    };
    let started = Instant::now();
    let restored = restore_pitr(dest, &options).await;
    let seconds = started.elapsed().as_secs_f64();
    rto += seconds;
    let cluster = Cluster::new(&scratch.data_dir, opts.run_as);
    let name = format!(
        "postgres: restore base backup {} and replay WAL to {first_target}",
        base.id
    );
    match &restored {
        Ok(r) => report.phase(
            &name,
            seconds,
            true,
            &format!("{} archived segments from its start", r.archived_segments),
        ),
        Err(e) => {
            report.phase(&name, seconds, false, &e.to_string());
            return Ok(());
        }
    }
    if let Some(point) = &point {
        let started = Instant::now();
        let compared = compare_figures(base, &scratch, &opts.database).await;
        let seconds = started.elapsed().as_secs_f64();
        rto += seconds;
        report.phase(
            "postgres: read the tables' figures at the restore point",
            seconds,
            true,
            &point.restore_point,
        );
        figures_check(report, base, compared);
        let started = Instant::now();
        let resumed = resume_to_latest(&cluster, opts).await;
        let seconds = started.elapsed().as_secs_f64();
        rto += seconds;
        let ok = resumed.is_ok();
        report.phase(
            "postgres: replay the rest of the archived WAL and promote",
            seconds,
            ok,
            &resumed
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "promoted".into()),
        );
        if !ok {
            let _ = cluster.stop();
            return Ok(());
        }
    }
    let recovered_to = match replayed_to(&scratch, &listing, wal.segment_size).await {
        Ok((at, detail)) => {
            report.check("postgres: read the point recovery reached", true, &detail);
            at
        }
        Err(e) => {
            report.check(
                "postgres: read the point recovery reached",
                false,
                &e.to_string(),
            );
            let _ = cluster.stop();
            return Ok(());
        }
    };
    rto += delivery_checks(opts, &scratch, report).await;
    let _ = cluster.stop();
    report.component(Component {
        name: "postgres".into(),
        backup: base.id.clone(),
        source: "postgres_physical + archived WAL".into(),
        recovered_to,
        rto_seconds: rto,
        rpo_seconds: report.age_of(recovered_to),
        rto_target_seconds: opts.targets.postgres_rto_seconds,
        rpo_target_seconds: opts.targets.postgres_rpo_seconds,
    });
    Ok(())
}

/// Whether every segment from the base backup's start to the newest
/// archived one is there: recovery stops at the first missing one, so a
/// gap loses everything after it. A gap fails the check and names it.
async fn archive_continuity(
    dest: &Destination,
    base: &Manifest,
    wal: &crate::manifest::WalRange,
    report: &mut DrillReport,
) -> Result<ArchiveListing, BackupError> {
    let from = wal.start_segment_number();
    let listing = list_archive(dest, from, wal.segment_size).await?;
    let name = |n: u64| {
        crate::wal::name::Segment {
            timeline: wal.timeline,
            number: n,
        }
        .file_name(wal.segment_size)
    };
    let gaps = listing.gaps(from);
    let newest = listing.newest().map(|(s, _)| s.file_name(wal.segment_size));
    let check = "postgres: the archived WAL is continuous from the base backup";
    match (gaps.first(), newest) {
        (_, None) => report.check(check, false, "no WAL is archived since the base backup"),
        (None, Some(newest)) => report.check(
            check,
            true,
            &format!(
                "{} to {newest}, from base backup {}",
                wal.start_segment, base.id
            ),
        ),
        (Some(&first), Some(newest)) => report.check(
            check,
            false,
            &format!(
                "{} segment(s) missing, the first {}: recovery stops before it and \
                 cannot reach {newest}",
                gaps.len(),
                name(first)
            ),
        ),
    }
    Ok(listing)
}

/// What a restore of this archive really brings back, read from the
/// restored server: the WAL position its recovery replayed to, and the
/// commit time of the last transaction it replayed. The moment reached is
/// when the segment holding that position was archived (every commit in
/// it is older), or that commit's time, whichever is later; a gap in the
/// archive puts it before the gap. Also returns the check's detail.
async fn replayed_to(
    scratch: &Scratch,
    listing: &ArchiveListing,
    segment_size: u64,
) -> Result<(chrono::DateTime<chrono::Utc>, String), BackupError> {
    let mut conn = crate::postgres::connect(&scratch.url("postgres"))
        .await
        .map_err(|e| db_error("connecting to the restored cluster", e))?;
    let (lsn, last_commit): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("reading the point recovery reached", e))?;
    let _ = conn.close().await;
    let lsn: Lsn = lsn.parse()?;
    let archived = listing
        .segments
        .get(&(lsn.0 / segment_size))
        .and_then(|copies| copies.iter().map(|(_, f)| f.archived_at).max());
    let at = match (archived, last_commit) {
        (Some(a), Some(c)) => a.max(c),
        (Some(a), None) => a,
        (None, Some(c)) => c,
        (None, None) => {
            return Err(BackupError::Refused(format!(
                "recovery replayed to {lsn}, in a segment the archive does not list, and no transaction"
            )))
        }
    };
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut detail = format!("replayed to {lsn}");
    if let Some(a) = archived {
        detail.push_str(&format!(", in a segment archived at {}", time(a)));
    }
    if let Some(c) = last_commit {
        detail.push_str(&format!(
            "; the last transaction replayed was committed at {}",
            time(c)
        ));
    }
    Ok((at, detail))
}

/// Stops the paused server, lifts the target and starts it again:
/// recovery goes on to the end of the archive and promotes.
async fn resume_to_latest(cluster: &Cluster, opts: &DrillOptions) -> Result<(), BackupError> {
    cluster.stop()?;
    let conf = cluster.data_dir.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .map_err(|e| BackupError::io(format!("opening {}", conf.display()), e))?;
    writeln!(
        file,
        "recovery_target_name = ''\nrecovery_target_action = 'promote'"
    )
    .map_err(|e| BackupError::io(format!("writing {}", conf.display()), e))?;
    cluster.start()?;
    cluster
        .wait_promoted(Duration::from_secs(
            opts.targets.postgres_rto_seconds.max(60.0) as u64,
        ))
        .await
}

/// Logical: the newest dump into a fresh scratch cluster.
pub(super) async fn drill_logical(
    dest: &Destination,
    opts: &DrillOptions,
    dump: &Manifest,
    report: &mut DrillReport,
) {
    if let Err(e) = logical(dest, opts, dump, report).await {
        report.fail("postgres", &e.to_string());
    }
}

async fn logical(
    dest: &Destination,
    opts: &DrillOptions,
    dump: &Manifest,
    report: &mut DrillReport,
) -> Result<(), BackupError> {
    let scratch = Scratch::new(opts)?;
    let started = Instant::now();
    let cluster = Cluster::init(&scratch.data_dir, opts.run_as, &scratch.superuser)?;
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(scratch.data_dir.join("postgresql.auto.conf"))
        .map_err(|e| BackupError::io("opening postgresql.auto.conf", e))?;
    writeln!(conf, "{}", scratch.settings().join("\n"))
        .map_err(|e| BackupError::io("writing postgresql.auto.conf", e))?;
    cluster.start()?;
    scratch
        .wait_ready("postgres", Duration::from_secs(60))
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    report.phase(
        "postgres: initdb and start a scratch cluster",
        seconds,
        true,
        &format!("port {}", scratch.port),
    );
    let mut rto = seconds;
    if !database_exists(&scratch.url("postgres"), &opts.database).await? {
        create_database(&scratch.url("postgres"), &opts.database).await?;
    }
    let started = Instant::now();
    let restored = restore_postgres(
        dest,
        &dump.id,
        &PostgresRestoreOptions {
            target_url: scratch.url(&opts.database),
            force: false,
            jobs: 2,
            work_dir: opts.work_dir.clone(),
            compare_counts: false,
            create: false,
        },
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    rto += seconds;
    let name = format!("postgres: restore {} (pg_restore)", dump.id);
    if let Err(e) = restored {
        report.phase(&name, seconds, false, &e.to_string());
        let _ = cluster.stop();
        return Ok(());
    }
    report.phase(&name, seconds, true, "checksum verified");
    let started = Instant::now();
    let compared = compare_figures(dump, &scratch, &opts.database).await;
    let seconds = started.elapsed().as_secs_f64();
    rto += seconds;
    report.phase("postgres: read the tables' figures", seconds, true, "");
    figures_check(report, dump, compared);
    rto += delivery_checks(opts, &scratch, report).await;
    let _ = cluster.stop();
    report.component(Component {
        name: "postgres".into(),
        backup: dump.id.clone(),
        source: "postgres (pg_dump)".into(),
        recovered_to: dump.started_at,
        rto_seconds: rto,
        rpo_seconds: report.age_of(dump.started_at),
        rto_target_seconds: opts.targets.postgres_rto_seconds,
        rpo_target_seconds: opts.targets.postgres_rpo_seconds,
    });
    Ok(())
}

async fn database_exists(url: &str, name: &str) -> Result<bool, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to the scratch cluster", e))?;
    let found: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("listing the scratch cluster's databases", e))?;
    let _ = conn.close().await;
    Ok(found)
}

/// Every table's rows and checksum against the manifest.
async fn compare_figures(
    manifest: &Manifest,
    scratch: &Scratch,
    database: &str,
) -> Result<Vec<String>, BackupError> {
    let restored = current_figures(&scratch.url(database)).await?;
    Ok(differences(manifest, &restored))
}

/// One line per table whose rows or checksum differ from the manifest.
pub fn differences(manifest: &Manifest, restored: &TableFigures) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows) in &manifest.row_counts {
        let got_rows = restored.counts.get(table);
        let (want_sum, got_sum) = (
            manifest.table_checksums.get(table),
            restored.checksums.get(table),
        );
        if got_rows != Some(rows) {
            out.push(format!(
                "{table}: {} rows restored, {rows} recorded",
                got_rows
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "no table,".into())
            ));
        } else if want_sum.is_some() && want_sum != got_sum {
            out.push(format!(
                "{table}: the {rows} rows differ (checksum {} restored, {} recorded)",
                got_sum.map(String::as_str).unwrap_or("-"),
                want_sum.map(String::as_str).unwrap_or("-")
            ));
        }
    }
    out
}

fn figures_check(
    report: &mut DrillReport,
    manifest: &Manifest,
    compared: Result<Vec<String>, BackupError>,
) {
    let name = "postgres: row counts and per-table checksums match the manifest";
    match compared {
        Ok(_) if manifest.row_counts.is_empty() => {
            report.check(name, false, "the manifest records no figures")
        }
        Ok(diffs) if diffs.is_empty() => report.check(
            name,
            true,
            &format!(
                "{} tables, {} rows",
                manifest.row_counts.len(),
                manifest.row_counts.values().sum::<u64>()
            ),
        ),
        Ok(diffs) => report.check(name, false, &diffs.join("; ")),
        Err(e) => report.check(name, false, &e.to_string()),
    }
}

/// The delivery invariants and the requeue check; returns their seconds.
async fn delivery_checks(opts: &DrillOptions, scratch: &Scratch, report: &mut DrillReport) -> f64 {
    let url = scratch.url(&opts.database);
    let started = Instant::now();
    let invariants = delivery_invariants(&url).await;
    let name = "postgres: every email is terminal or can become so";
    match &invariants {
        Ok((_, violations)) if violations.is_empty() => {
            report.check(name, true, "no email is stranded")
        }
        Ok((_, violations)) => report.check(name, false, &violations.join("; ")),
        Err(e) => report.check(name, false, &e.to_string()),
    }
    if let Some(dispatch) = &opts.dispatch {
        let pending = invariants.as_ref().map(|(p, _)| *p).unwrap_or(0);
        let name = "postgres: requeue-all rebuilds the dispatch state";
        match dispatch.rebuild(&url).await {
            Ok((enqueued, held)) if enqueued == pending && held == pending => {
                report.check(
                name,
                true,
                &format!("{enqueued} pending emails requeued into {}", dispatch.destination()),
            )
            }
            Ok((enqueued, held)) => report.check(
                name,
                false,
                &format!("{pending} emails are pending; {enqueued} were enqueued and the queue holds {held}"),
            ),
            Err(e) => report.check(name, false, &e),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    report.phase(
        "postgres: delivery invariants and requeue-all",
        seconds,
        true,
        "",
    );
    seconds
}

fn status_list(pick: impl Fn(EmailStatus) -> bool) -> String {
    EmailStatus::ALL
        .into_iter()
        .filter(|s| pick(*s))
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The number of pending emails, and one line per broken invariant.
async fn delivery_invariants(url: &str) -> Result<(u64, Vec<String>), BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to the restored database", e))?;
    let pending = status_list(EmailStatus::is_pending);
    let terminal = status_list(EmailStatus::is_terminal);
    let sending = format!("'{}'", EmailStatus::Sending.as_str());
    let rules = [
        (
            format!(
                "SELECT count(*) FROM emails WHERE status NOT IN ({terminal}) \
                 AND NOT (status IN ({pending}) AND next_attempt_at IS NOT NULL) \
                 AND NOT (status = {sending} AND lease_expires_at IS NOT NULL)"
            ),
            "emails are neither terminal, nor due at some time, nor leased",
        ),
        (
            format!(
                "SELECT count(*) FROM emails e WHERE status NOT IN ({terminal}) \
                 AND NOT EXISTS (SELECT 1 FROM email_contents c WHERE c.email_id = e.id)"
            ),
            "emails still to send have no content",
        ),
    ];
    let mut violations = Vec::new();
    for (sql, what) in rules {
        let n: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("checking the delivery invariants", e))?;
        if n > 0 {
            violations.push(format!("{n} {what}"));
        }
    }
    let pending_count: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM emails WHERE status IN ({pending})"
    ))
    .fetch_one(&mut conn)
    .await
    .map_err(|e| db_error("counting pending emails", e))?;
    let _ = conn.close().await;
    Ok((pending_count as u64, violations))
}
