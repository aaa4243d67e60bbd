//! Scratch space for tests that needs nothing of mailqueue itself: a fresh
//! PostgreSQL database (or tablespace) per test, dropped afterwards, and a
//! temporary directory removed when dropped. The store's own unit tests
//! use it directly; `mailqueue-testkit` re-exports it beside the fixtures
//! that do need the product crates.

mod dirs;
mod postgres;

pub use dirs::TempDir;
pub use postgres::{TestDatabase, TestTablespace};

/// A short random suffix for names that must not collide between tests.
pub fn unique_suffix() -> String {
    let n = getrandom::u64().expect("random source");
    format!("{n:016x}")
}
