//! A ready store of either kind, for the conformance suite.

use crate::{TempDir, TestDatabase};
use mailqueue_core::events::WrittenEvents;
use mailqueue_core::store::Store;
use mailqueue_core::EmailId;
use mailqueue_store::{PgSettings, PgStore, SqliteSettings, SqliteStore};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// A migrated, empty store and what keeps it alive.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    _db: Option<TestDatabase>,
    _dir: Option<TempDir>,
}

impl TestStore {
    /// The PostgreSQL database behind the store, if it is one.
    pub fn database(&self) -> Option<&TestDatabase> {
        self._db.as_ref()
    }
}

pub async fn test_store(kind: StoreKind) -> TestStore {
    match kind {
        StoreKind::Sqlite => {
            let dir = TempDir::new("store");
            let store = SqliteStore::open(&SqliteSettings {
                path: dir.path().join("mailqueue.db"),
                readers: 2,
            })
            .await
            .expect("open SQLite");
            TestStore {
                store: Arc::new(store),
                _db: None,
                _dir: Some(dir),
            }
        }
        StoreKind::Postgres => {
            let db = TestDatabase::create().await;
            let store = PgStore::connect(&PgSettings {
                url: db.url.clone(),
                max_connections: 5,
                acquire_timeout: Duration::from_secs(5),
            })
            .await
            .expect("connect to PostgreSQL");
            store.migrate().await.expect("migrate");
            TestStore {
                store: Arc::new(store),
                _db: Some(db),
                _dir: None,
            }
        }
    }
}

/// Every event `store` holds for `ids`, counted by type.
pub async fn stored_events(store: &dyn Store, ids: &[EmailId]) -> WrittenEvents {
    let mut all = WrittenEvents::default();
    for id in ids {
        let events = store.list_email_events(*id).await.expect("read events");
        all += events.iter().map(|e| e.event_type).collect();
    }
    all
}
