//! The schema migrations of both dialects are hand-built lists (no build
//! script, no directory scan): each dialect names its files in order, and
//! this turns such a list into sqlx's [`Migrator`].

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// One migration: its version, a description and its SQL.
pub(crate) type MigrationSource = (i64, &'static str, &'static str);

pub(crate) fn migrator(sources: &[MigrationSource]) -> Migrator {
    let migrations = sources
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}
