//! PostgreSQL's side of a backup: a snapshot shared with `pg_dump`, so the
//! row counts in the manifest describe exactly the rows in the dump, and
//! the `pg_dump` / `pg_restore` processes.

use crate::error::BackupError;
use sqlx::{Connection, PgConnection, Row};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};

/// An open transaction whose snapshot `pg_dump --snapshot` reuses. It must
/// stay open until `pg_dump` has started its own transaction.
pub struct Snapshot {
    conn: PgConnection,
    pub id: String,
    pub server_version: String,
}

/// Rows per table, and an order-independent checksum of each table's rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableFigures {
    pub counts: BTreeMap<String, u64>,
    pub checksums: BTreeMap<String, String>,
}

/// A connection for backup work. Its long statements (a snapshot's
/// figures over every row, a restore's counts) are the job itself, so
/// sqlx's "slow statement" warnings about them go to the debug level.
pub(crate) async fn connect(url: &str) -> Result<PgConnection, sqlx::Error> {
    use sqlx::ConnectOptions;
    url.parse::<sqlx::postgres::PgConnectOptions>()?
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1))
        .connect()
        .await
}

pub(crate) fn db_error(what: &str, e: sqlx::Error) -> BackupError {
    BackupError::Tool {
        tool: "PostgreSQL",
        detail: format!("{what}: {e}"),
    }
}

impl Snapshot {
    pub async fn open(url: &str) -> Result<Self, BackupError> {
        let mut conn = crate::postgres::connect(url)
            .await
            .map_err(|e| db_error("connecting to the database to back up", e))?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(|e| db_error("starting the snapshot", e))?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("exporting the snapshot", e))?;
        let server_version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| db_error("reading the server version", e))?;
        Ok(Self {
            conn,
            id,
            server_version,
        })
    }

    /// Every table's figures in the snapshot (they describe exactly the
    /// dump that reads the same snapshot).
    pub async fn figures(&mut self) -> Result<TableFigures, BackupError> {
        table_figures(&mut self.conn).await
    }

    pub async fn close(mut self) {
        let _ = sqlx::query("COMMIT").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Exact row counts of every ordinary table outside the system schemas.
pub async fn count_rows(conn: &mut PgConnection) -> Result<BTreeMap<String, u64>, BackupError> {
    Ok(figures_of(conn, false).await?.counts)
}

/// Row counts and checksums of every ordinary table outside the system
/// schemas, in one scan each. A row's checksum is PostgreSQL's 64-bit hash
/// of its text form (`hashtextextended`, five times cheaper than MD5); a
/// table's is their sum, so the order rows are stored in does not matter.
/// The text form depends on session settings, which are fixed here (UTC,
/// ISO dates, exact floats, hex bytea).
pub async fn table_figures(conn: &mut PgConnection) -> Result<TableFigures, BackupError> {
    figures_of(conn, true).await
}

async fn figures_of(conn: &mut PgConnection, checksums: bool) -> Result<TableFigures, BackupError> {
    if checksums {
        for set in [
            "SET LOCAL TimeZone = 'UTC'",
            "SET LOCAL DateStyle = 'ISO, YMD'",
            "SET LOCAL IntervalStyle = 'postgres'",
            "SET LOCAL extra_float_digits = 3",
            "SET LOCAL bytea_output = 'hex'",
        ] {
            sqlx::query(set)
                .execute(&mut *conn)
                .await
                .map_err(|e| db_error("fixing the session's text formats", e))?;
        }
    }
    let tables = sqlx::query(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, \
                n.nspname = 'public' AS public, c.relname \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_error("listing tables", e))?;
    let mut figures = TableFigures::default();
    for t in tables {
        let qualified: String = t.get("name");
        let shown: String = if t.get::<bool, _>("public") {
            t.get("relname")
        } else {
            qualified.clone()
        };
        let sql = if checksums {
            format!(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {qualified} t"
            )
        } else {
            format!("SELECT count(*), '' FROM {qualified}")
        };
        let (n, sum): (i64, String) = sqlx::query_as(&sql)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_error(&format!("counting rows of {qualified}"), e))?;
        figures.counts.insert(shown.clone(), n as u64);
        if checksums {
            figures.checksums.insert(shown, sum);
        }
    }
    Ok(figures)
}

/// `pg_dump -Fc -Z0`: the custom format, uncompressed (we compress).
pub fn spawn_dump(url: &str, snapshot: Option<&str>) -> Result<(Child, ChildStdout), BackupError> {
    let mut cmd = Command::new("pg_dump");
    cmd.args(["--format=custom", "--compress=0", "--no-password"]);
    if let Some(id) = snapshot {
        cmd.arg(format!("--snapshot={id}"));
    }
    let mut child = cmd
        .arg(format!("--dbname={url}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(BackupError::cannot_start("pg_dump"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| BackupError::Io("pg_dump has no stdout".into()))?;
    Ok((child, stdout))
}

/// Waits for a child and turns a failure into its first stderr line.
pub fn wait_tool(tool: &'static str, child: Child) -> Result<(), BackupError> {
    let mut child = child;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .map_err(|e| BackupError::io(format!("waiting for {tool}"), e))?;
    if status.success() {
        return Ok(());
    }
    let line = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.trim_start_matches(&format!("{tool}: ")).to_string())
        .unwrap_or_else(|| format!("exited with {status}"));
    Err(BackupError::Tool { tool, detail: line })
}

/// Whether `url` holds no table, view, materialized view or sequence
/// outside the system schemas.
pub async fn database_is_empty(url: &str) -> Result<bool, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to the restore target", e))?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg_toast%'",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(|e| db_error("inspecting the restore target", e))?;
    let _ = conn.close().await;
    Ok(tables == 0)
}

/// Row counts of a database, outside any snapshot.
pub async fn current_row_counts(url: &str) -> Result<BTreeMap<String, u64>, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to count rows", e))?;
    let counts = count_rows(&mut conn).await;
    let _ = conn.close().await;
    counts
}

/// Row counts and checksums of a database, in one read-only transaction.
pub async fn current_figures(url: &str) -> Result<TableFigures, BackupError> {
    let mut conn = crate::postgres::connect(url)
        .await
        .map_err(|e| db_error("connecting to read the tables' figures", e))?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(|e| db_error("starting a read-only transaction", e))?;
    let figures = table_figures(&mut conn).await;
    let _ = conn.close().await;
    figures
}

/// Creates database `name` on the server of `admin_url`.
pub async fn create_database(admin_url: &str, name: &str) -> Result<(), BackupError> {
    let sql = format!("CREATE DATABASE {}", quote_ident(name));
    run_on_server(admin_url, &sql, &format!("creating database {name}")).await
}

/// Drops database `name` (closing its connections) on the server of `admin_url`.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), BackupError> {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    run_on_server(admin_url, &sql, &format!("dropping database {name}")).await
}

/// Runs one statement on its own connection to `admin_url`.
async fn run_on_server(admin_url: &str, sql: &str, what: &str) -> Result<(), BackupError> {
    let mut conn = crate::postgres::connect(admin_url)
        .await
        .map_err(|e| db_error(&format!("connecting for {what}"), e))?;
    sqlx::query(sql)
        .execute(&mut conn)
        .await
        .map_err(|e| db_error(what, e))?;
    let _ = conn.close().await;
    Ok(())
}

/// The URL of database `name` on the server of `url`: the same host, port,
/// user and parameters.
pub fn with_database(url: &str, name: &str) -> Result<String, BackupError> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| BackupError::Config(format!("`{url}` is not a PostgreSQL URL: {e}")))?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_on_the_same_server_keeps_host_user_and_parameters() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u:p%40ss@h/app", "scratch").unwrap(),
            "postgres://u:p%40ss@h/scratch"
        );
        // No database in the URL (it defaults to the user's name).
        assert_eq!(
            with_database("postgresql://u@h:6543", "x").unwrap(),
            "postgresql://u@h:6543/x"
        );
        assert!(with_database("not a url", "x").is_err());
    }
}
