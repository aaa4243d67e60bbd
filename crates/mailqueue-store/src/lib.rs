//! Storage adapters for mailqueue: PostgreSQL for production, SQLite for the
//! embedded default. Both implement the traits of `mailqueue_core::store`
//! over the same tables and columns (their types follow each dialect, and
//! PostgreSQL's webhook outbox has no foreign keys; see the migrations),
//! applying the transitions of `mailqueue_core::transition`.
//! [`GroupCommitter`] batches concurrent inserts into shared transactions
//! for either.

mod content;
mod errors;
mod group_commit;
mod health;
mod idempotency;
mod migrations;
mod outcome;
pub mod postgres;
mod shared;
pub mod sqlite;

pub use group_commit::GroupCommitter;
pub use postgres::{PgSettings, PgStore};
pub use sqlite::{SqliteSettings, SqliteStore};
