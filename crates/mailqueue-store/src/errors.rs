//! Driver errors sorted into the store's error kinds, so callers decide by
//! variant: retry later (`Unavailable`, `Full`), leave the refused rows out
//! (`Rejected`), or report a fault (`Corrupt`, `Failed`).

use mailqueue_core::store::StoreError;

/// Maps a driver error to the store's error, with the operation as context.
pub fn store_error(context: &str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("{context}: {e}")),
        sqlx::Error::Database(db) => {
            let postgres = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
            let kind = match db.code() {
                Some(code) if postgres => postgres_kind(&code),
                Some(code) => code.parse().map_or(Kind::Failed, sqlite_kind),
                None => Kind::Failed,
            };
            kind.error(format!("{context}: {db}"))
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(format!("{context}: {e}")),
        other => StoreError::Failed(format!("{context}: {other}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Full,
    Rejected,
    Failed,
}

impl Kind {
    fn error(self, message: String) -> StoreError {
        match self {
            Kind::Unavailable => StoreError::Unavailable(message),
            Kind::Full => StoreError::Full(message),
            Kind::Rejected => StoreError::Rejected(message),
            Kind::Failed => StoreError::Failed(message),
        }
    }
}

/// PostgreSQL SQLSTATEs by class: data exceptions (22), integrity (23) and
/// errors raised by triggers or functions (P0) refuse the rows; syntax or
/// access (42) and internal errors (XX) are faults; `53100` is a full disk;
/// everything else (connections 08, resources 53, cancelled or killed
/// statements 57, conflicts 40, read-only standbys 25) means the store
/// cannot serve now.
fn postgres_kind(code: &str) -> Kind {
    match code {
        "53100" => Kind::Full,
        c if ["22", "23", "P0"].iter().any(|class| c.starts_with(class)) => Kind::Rejected,
        c if ["42", "XX"].iter().any(|class| c.starts_with(class)) => Kind::Failed,
        _ => Kind::Unavailable,
    }
}

/// SQLite primary result codes (the low byte of extended codes): FULL (13);
/// BUSY (5), LOCKED (6), IOERR (10) and CANTOPEN (14) are temporary;
/// TOOBIG (18), CONSTRAINT (19) and MISMATCH (20) refuse the rows.
fn sqlite_kind(code: i32) -> Kind {
    match code & 0xff {
        13 => Kind::Full,
        5 | 6 | 10 | 14 => Kind::Unavailable,
        18..=20 => Kind::Rejected,
        _ => Kind::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes_sort_by_class() {
        assert_eq!(postgres_kind("53100"), Kind::Full);
        assert_eq!(postgres_kind("53300"), Kind::Unavailable);
        assert_eq!(postgres_kind("22P05"), Kind::Rejected);
        assert_eq!(postgres_kind("23505"), Kind::Rejected);
        assert_eq!(postgres_kind("P0001"), Kind::Rejected);
        assert_eq!(postgres_kind("57014"), Kind::Unavailable);
        assert_eq!(postgres_kind("08006"), Kind::Unavailable);
        assert_eq!(postgres_kind("42P01"), Kind::Failed);
    }

    #[test]
    fn sqlite_extended_codes_use_their_primary_code() {
        assert_eq!(sqlite_kind(13), Kind::Full);
        assert_eq!(sqlite_kind(778), Kind::Unavailable); // SQLITE_IOERR_WRITE
        assert_eq!(sqlite_kind(787), Kind::Rejected); // SQLITE_CONSTRAINT_FOREIGNKEY
        assert_eq!(sqlite_kind(11), Kind::Failed); // SQLITE_CORRUPT
    }
}
