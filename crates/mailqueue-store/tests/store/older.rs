//! Databases made by an older mailqueue: some of the migrations, rows
//! written as that release wrote them, then the current store opening the
//! database (and migrating it) as an upgrade would.

use mailqueue_core::store::Store;
use mailqueue_store::{PgSettings, PgStore, SqliteSettings, SqliteStore};
use mailqueue_testkit::{StoreKind, TempDir, TestDatabase};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::borrow::Cow;

/// A migration as an older release ran it: version and SQL (only these
/// two are checked when the current store migrates).
pub type OldMigration = (i64, &'static str);

fn older_schema(sources: &[OldMigration]) -> Migrator {
    Migrator {
        migrations: Cow::Owned(
            sources
                .iter()
                .map(|&(version, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed("older"),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

/// The current store on an upgraded database, and what keeps it alive.
pub struct Upgraded {
    pub store: Box<dyn Store>,
    _dir: Option<TempDir>,
    _db: Option<TestDatabase>,
}

/// A database of `kind` with the older migrations of its dialect and
/// what `seed_*` wrote, opened by the current store.
pub async fn upgraded(
    kind: StoreKind,
    sqlite: &[OldMigration],
    postgres: &[OldMigration],
    seed_sqlite: impl AsyncFnOnce(&mut SqliteConnection),
    seed_postgres: impl AsyncFnOnce(&mut PgConnection),
) -> Upgraded {
    match kind {
        StoreKind::Sqlite => {
            let dir = TempDir::new("older");
            let path = dir.path().join("mailqueue.db");
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true);
            let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
            older_schema(sqlite).run(&mut conn).await.unwrap();
            seed_sqlite(&mut conn).await;
            conn.close().await.unwrap();
            let store = SqliteStore::open(&SqliteSettings { path, readers: 1 })
                .await
                .unwrap();
            Upgraded {
                store: Box::new(store),
                _dir: Some(dir),
                _db: None,
            }
        }
        StoreKind::Postgres => {
            let db = TestDatabase::create().await;
            let mut conn = PgConnection::connect(&db.url).await.unwrap();
            older_schema(postgres).run(&mut conn).await.unwrap();
            seed_postgres(&mut conn).await;
            conn.close().await.unwrap();
            let store = PgStore::connect(&PgSettings {
                url: db.url.clone(),
                max_connections: 2,
                acquire_timeout: std::time::Duration::from_secs(5),
            })
            .await
            .unwrap();
            store.migrate().await.unwrap();
            Upgraded {
                store: Box::new(store),
                _dir: None,
                _db: Some(db),
            }
        }
    }
}
