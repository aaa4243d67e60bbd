//! The one connection that writes, behind a mutex.
//!
//! After any failed write the connection is closed and a new one opened on
//! the next use. A failed statement or `COMMIT` (a full disk, an I/O error)
//! may roll SQLite's transaction back on its own while the driver still
//! counts it as open; the next "transaction" would then be a savepoint in a
//! transaction that is never committed, and an email acknowledged from it
//! would never reach the disk. A fresh connection has no such history.

use crate::errors::store_error;
use crate::health::WriteHealth;
use mailqueue_core::store::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use std::ops::{Deref, DerefMut};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Debug)]
pub struct Writer {
    options: SqliteConnectOptions,
    connection: Mutex<Option<SqliteConnection>>,
    pub health: WriteHealth,
}

/// Exclusive use of the writing connection; end it with [`WriterGuard::settle`].
pub struct WriterGuard<'a> {
    connection: MutexGuard<'a, Option<SqliteConnection>>,
    health: &'a WriteHealth,
}

impl Writer {
    pub fn new(options: SqliteConnectOptions, connection: SqliteConnection) -> Self {
        Self {
            options,
            connection: Mutex::new(Some(connection)),
            health: WriteHealth::default(),
        }
    }

    /// Waits for the connection, reopening it if the last write failed.
    pub async fn acquire(&self) -> Result<WriterGuard<'_>, StoreError> {
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            let fresh = SqliteConnection::connect_with(&self.options)
                .await
                .map_err(|e| store_error("reopening the SQLite database", e));
            self.health.record(&fresh);
            *connection = Some(fresh?);
        }
        Ok(WriterGuard {
            connection,
            health: &self.health,
        })
    }
}

impl WriterGuard<'_> {
    /// Records the write's outcome, and drops the connection if it failed.
    pub fn settle<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.health.record(&result);
        if result.is_err() {
            self.connection.take();
        }
        result
    }

    /// Gives the connection up: a transaction left open on it is rolled
    /// back when it closes, and the next write opens a fresh one.
    pub fn abandon(mut self) {
        self.connection.take();
    }

    /// [`Self::settle`] for a write that needed room (see
    /// `WriteHealth::record_room`).
    pub fn settle_room<T>(self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.health.record_room(&result);
        self.settle(result)
    }
}

impl Deref for WriterGuard<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        self.connection
            .as_ref()
            .unwrap_or_else(|| unreachable!("acquire always leaves a connection in place"))
    }
}

impl DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.connection
            .as_mut()
            .unwrap_or_else(|| unreachable!("acquire always leaves a connection in place"))
    }
}
