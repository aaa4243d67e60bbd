//! The narrow executor through which both stores run every operation that
//! does not depend on the dialect: a shared [`Statement`] is bound in the
//! store's own encoding and run where that store reads ([`Db::fetch_all`])
//! or writes ([`Db::execute`], [`Db::begin`]). PostgreSQL reads and writes
//! through its pool; SQLite reads through its reader pool and writes
//! through its one writer connection. Every write is recorded in the
//! store's health, so readiness sees it whichever store ran it.
//!
//! Operations written once over a [`Db`] become trait implementations of
//! both stores through [`on_both_stores`].

use super::event_rows::EventRow;
use super::rows::RowReader;
use super::{Dialect, Statement};
use crate::errors::store_error;
use crate::health::WriteHealth;
use crate::postgres::{self, PgStore};
use crate::sqlite::{self, SqliteStore, WriterGuard};
use chrono::{DateTime, Utc};
use mailqueue_core::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

/// Implements a store trait once for both stores. The methods reach the
/// store through `self.db()`; what differs between the dialects is called
/// as an inherent method of the same name on each store.
macro_rules! on_both_stores {
    (impl $trait:path { $($body:tt)* }) => {
        #[async_trait::async_trait]
        impl $trait for $crate::postgres::PgStore {
            $($body)*
        }
        #[async_trait::async_trait]
        impl $trait for $crate::sqlite::SqliteStore {
            $($body)*
        }
    };
}
pub(crate) use on_both_stores;

/// One store, seen through what both dialects can do alike.
#[derive(Clone, Copy)]
pub enum Db<'a> {
    Pg(&'a PgStore),
    Sqlite(&'a SqliteStore),
}

/// A row of either store; reads its columns in that store's encoding.
pub enum Row {
    Pg(PgRow),
    Sqlite(SqliteRow),
}

impl<'a> Db<'a> {
    pub fn dialect(self) -> Dialect {
        match self {
            Db::Pg(_) => Dialect::Postgres,
            Db::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// A read: every row of `st`.
    pub async fn fetch_all(self, ctx: &str, st: &Statement) -> Result<Vec<Row>, StoreError> {
        let rows = match self {
            Db::Pg(s) => postgres::bound(st)
                .fetch_all(s.pool())
                .await
                .map(|rows| rows.into_iter().map(Row::Pg).collect()),
            Db::Sqlite(s) => sqlite::bound(st)
                .fetch_all(s.readers())
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
        };
        rows.map_err(|e| store_error(ctx, e))
    }

    /// A read: the row of `st`, if any.
    pub async fn fetch_optional(
        self,
        ctx: &str,
        st: &Statement,
    ) -> Result<Option<Row>, StoreError> {
        let row = match self {
            Db::Pg(s) => postgres::bound(st)
                .fetch_optional(s.pool())
                .await
                .map(|r| r.map(Row::Pg)),
            Db::Sqlite(s) => sqlite::bound(st)
                .fetch_optional(s.readers())
                .await
                .map(|r| r.map(Row::Sqlite)),
        };
        row.map_err(|e| store_error(ctx, e))
    }

    /// A write of one statement, committed on its own; returns the rows
    /// it affected.
    pub async fn execute(self, ctx: &str, st: &Statement) -> Result<u64, StoreError> {
        match self {
            Db::Pg(s) => {
                let done = postgres::bound(st)
                    .execute(s.pool())
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| store_error(ctx, e));
                s.health().record(&done);
                done
            }
            Db::Sqlite(s) => {
                let mut w = s.writer().acquire().await?;
                let done = sqlite::bound(st)
                    .execute(&mut *w)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| store_error(ctx, e));
                w.settle(done)
            }
        }
    }

    /// A write of one statement that returns rows (`RETURNING`), committed
    /// on its own.
    pub async fn write_rows(self, ctx: &str, st: &Statement) -> Result<Vec<Row>, StoreError> {
        match self {
            Db::Pg(s) => {
                let rows = postgres::bound(st)
                    .fetch_all(s.pool())
                    .await
                    .map(|rows| rows.into_iter().map(Row::Pg).collect())
                    .map_err(|e| store_error(ctx, e));
                s.health().record(&rows);
                rows
            }
            Db::Sqlite(s) => {
                let mut w = s.writer().acquire().await?;
                let rows = sqlite::bound(st)
                    .fetch_all(&mut *w)
                    .await
                    .map(|rows| rows.into_iter().map(Row::Sqlite).collect())
                    .map_err(|e| store_error(ctx, e));
                w.settle(rows)
            }
        }
    }

    /// Runs `steps` in one transaction; returns the rows the last one
    /// affected.
    pub async fn in_one_transaction(
        self,
        ctx: &str,
        steps: &[Statement],
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin(ctx).await?;
        let result = async {
            let mut affected = 0;
            for st in steps {
                affected = tx.execute(st).await?;
            }
            Ok(affected)
        }
        .await;
        tx.finish(result).await
    }

    /// Opens a write transaction; end it with [`Tx::finish`].
    pub async fn begin(self, ctx: &'a str) -> Result<Tx<'a>, StoreError> {
        let inner = match self {
            Db::Pg(s) => {
                let begun = s.pool().begin().await.map_err(|e| store_error(ctx, e));
                s.health().record(&begun);
                TxInner::Pg(begun?, s.health())
            }
            Db::Sqlite(s) => {
                let mut w = s.writer().acquire().await?;
                let begun = sqlx::query("BEGIN")
                    .execute(&mut *w)
                    .await
                    .map_err(|e| store_error(ctx, e));
                match begun {
                    Ok(_) => TxInner::Sqlite(w),
                    Err(e) => return w.settle(Err(e)),
                }
            }
        };
        Ok(Tx {
            ctx,
            inner: Some(inner),
        })
    }
}

/// A write transaction of either store. Dropped without
/// [`Tx::finish`] (a cancelled request), it is rolled back: PostgreSQL's
/// by the driver, SQLite's by closing the writer connection, which the
/// next write reopens.
pub struct Tx<'a> {
    ctx: &'a str,
    inner: Option<TxInner<'a>>,
}

enum TxInner<'a> {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>, &'a WriteHealth),
    Sqlite(WriterGuard<'a>),
}

impl<'a> Tx<'a> {
    fn inner(&mut self) -> &mut TxInner<'a> {
        self.inner
            .as_mut()
            .unwrap_or_else(|| unreachable!("a transaction is used only until it is finished"))
    }

    pub async fn execute(&mut self, st: &Statement) -> Result<u64, StoreError> {
        let ctx = self.ctx;
        let done = match self.inner() {
            TxInner::Pg(tx, _) => postgres::bound(st)
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected()),
            TxInner::Sqlite(w) => sqlite::bound(st)
                .execute(&mut **w)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(|e| store_error(ctx, e))
    }

    pub async fn fetch_all(&mut self, st: &Statement) -> Result<Vec<Row>, StoreError> {
        let ctx = self.ctx;
        let rows = match self.inner() {
            TxInner::Pg(tx, _) => postgres::bound(st)
                .fetch_all(&mut **tx)
                .await
                .map(|rows| rows.into_iter().map(Row::Pg).collect()),
            TxInner::Sqlite(w) => sqlite::bound(st)
                .fetch_all(&mut **w)
                .await
                .map(|rows| rows.into_iter().map(Row::Sqlite).collect()),
        };
        rows.map_err(|e| store_error(ctx, e))
    }

    pub async fn fetch_optional(&mut self, st: &Statement) -> Result<Option<Row>, StoreError> {
        Ok(self.fetch_all(st).await?.into_iter().next())
    }

    /// Writes `events`, with a pending delivery for each enabled webhook
    /// subscribed to an event's type.
    pub async fn write_events(&mut self, events: &[EventRow]) -> Result<(), StoreError> {
        match self.inner() {
            TxInner::Pg(tx, _) => postgres::write_events(tx, events).await,
            TxInner::Sqlite(w) => sqlite::write_events(w, events).await,
        }
    }

    /// Commits when `result` is a success, rolls back otherwise; records
    /// the write in the store's health and returns `result`, or the
    /// commit's failure.
    pub async fn finish<T>(mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        let ctx = self.ctx;
        match self.inner.take() {
            Some(TxInner::Pg(tx, health)) => {
                let result = match result {
                    Ok(value) => tx
                        .commit()
                        .await
                        .map(|()| value)
                        .map_err(|e| store_error(ctx, e)),
                    Err(e) => {
                        // Rolled back when dropped, if the connection still can.
                        drop(tx);
                        Err(e)
                    }
                };
                health.record(&result);
                result
            }
            Some(TxInner::Sqlite(mut w)) => {
                let result = match result {
                    Ok(value) => sqlx::query("COMMIT")
                        .execute(&mut *w)
                        .await
                        .map(|_| value)
                        .map_err(|e| store_error(ctx, e)),
                    Err(e) => Err(e),
                };
                // A failure closes the connection, which rolls back.
                w.settle(result)
            }
            None => unreachable!("a transaction is finished once"),
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if let Some(TxInner::Sqlite(w)) = self.inner.take() {
            w.abandon();
        }
    }
}

macro_rules! delegate_columns {
    ($($name:ident -> $out:ty;)*) => {
        impl RowReader for Row {
            $(
                fn $name(&self, col: &str) -> Result<$out, StoreError> {
                    match self {
                        Row::Pg(r) => r.$name(col),
                        Row::Sqlite(r) => r.$name(col),
                    }
                }
            )*
        }
    };
}

delegate_columns! {
    uuid -> uuid::Uuid;
    opt_uuid -> Option<uuid::Uuid>;
    time -> DateTime<Utc>;
    opt_time -> Option<DateTime<Utc>>;
    int -> i64;
    opt_int -> Option<i64>;
    text -> String;
    opt_text -> Option<String>;
    bytes -> Vec<u8>;
}
