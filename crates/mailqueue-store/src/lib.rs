//! Storage adapters for mailqueue: PostgreSQL for production, SQLite for the
//! embedded default. Both implement the traits of `mailqueue_core::store`
//! with the same schema, and [`GroupCommitter`] batches concurrent inserts
//! into shared transactions for either.

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
