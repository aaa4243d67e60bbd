//! Attempts cut short (the rescuer's expired leases, the leases a stopping
//! worker gives back), decided by the core's [`Interruption`] and applied
//! by both stores with the same statements: each store only selects the
//! emails, in its own way of locking them.

use super::event_rows::EventRow;
use super::rows::{self, RowReader};
use super::{with_names, Dialect, Param, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::store::{AttemptKind, DueEmail, Recovered, StoreError};
use mailqueue_core::transition::{Interrupted, Interruption, WrittenEvents};
use mailqueue_core::{EmailId, EmailStatus};

/// The claim's start is its `updated_at` (a renewal changes only the
/// lease); a first attempt started then.
const COLUMNS: &str = "id, lease_holder, attempts, priority, updated_at AS claimed_at, \
     COALESCE(first_attempt_at, updated_at) AS first_attempt_at";

/// Emails whose lease expired before `now`, a thousand at a time
/// (PostgreSQL skips those another rescuer holds).
pub fn expired_leases(d: Dialect, now: DateTime<Utc>) -> Statement {
    Statement::new(with_names(&format!(
        "SELECT {COLUMNS} FROM emails WHERE status = {{sending}} AND lease_expires_at < $1 LIMIT 1000 {}",
        locked(d, "SKIP LOCKED"),
    )))
    .with(Param::Time(now))
}

/// Every email `holder` leases.
pub fn leases_of(d: Dialect, holder: &str) -> Statement {
    Statement::new(with_names(&format!(
        "SELECT {COLUMNS} FROM emails WHERE status = {{sending}} AND lease_holder = $1 {}",
        locked(d, ""),
    )))
    .with(Param::Text(holder.into()))
}

/// PostgreSQL locks the rows it will move; SQLite's one writer holds them all.
fn locked(d: Dialect, how: &str) -> String {
    match d {
        Dialect::Postgres => format!("FOR UPDATE {how}"),
        Dialect::Sqlite => String::new(),
    }
}

/// One email to move, and where.
struct Move {
    id: EmailId,
    /// The number of the attempt cut short: it counts.
    attempt: i64,
    started_at: DateTime<Utc>,
    priority: mailqueue_core::Priority,
    to: Interrupted,
}

/// The moves of the selected emails, decided by `why` (which may depend on
/// the lease holder).
pub struct Moves {
    moves: Vec<Move>,
    now: DateTime<Utc>,
}

impl Moves {
    pub fn decide<R: RowReader>(
        selected: &[R],
        now: DateTime<Utc>,
        why: impl Fn(Option<String>) -> Interruption,
    ) -> Result<Self, StoreError> {
        let moves = selected
            .iter()
            .map(|row| {
                let why = why(row.opt_text("lease_holder")?);
                Ok(Move {
                    id: row.id("id")?,
                    attempt: row.int("attempts")? + 1,
                    started_at: row.time("claimed_at")?,
                    priority: rows::priority(row)?,
                    to: why.of(row.opt_time("first_attempt_at")?, now),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self { moves, now })
    }

    /// Per email: its new status, and its `lease_expired` attempt. Each
    /// applies only to an email still `sending`.
    pub fn statements(&self) -> Vec<Statement> {
        self.moves
            .iter()
            .flat_map(|m| {
                [
                    Statement::new(with_names(
                        "UPDATE emails SET status = $2, next_attempt_at = $3, last_error = $4, \
                             lease_holder = NULL, lease_expires_at = NULL, updated_at = $5, \
                             attempts = $6, first_attempt_at = COALESCE(first_attempt_at, $7), \
                             last_attempt_at = $7 \
                         WHERE id = $1 AND status = {sending}",
                    ))
                    .with(Param::Id(m.id))
                    .with(Param::Text(m.to.status.as_str().into()))
                    .with(Param::OptTime(m.to.next_attempt_at))
                    .with(Param::Text(m.to.detail.clone()))
                    .with(Param::Time(self.now))
                    .with(Param::Int(m.attempt))
                    .with(Param::Time(m.started_at)),
                    Statement::new(format!(
                        "INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
                         VALUES ($1, $2, $3, $4, '{}', $5)",
                        AttemptKind::LeaseExpired.as_str()
                    ))
                    .with(Param::Id(m.id))
                    .with(Param::Int(m.attempt))
                    .with(Param::Time(m.started_at))
                    .with(Param::Time(self.now))
                    .with(Param::Text(m.to.detail.clone())),
                ]
            })
            .collect()
    }

    pub fn events(&self) -> Vec<EventRow> {
        self.moves
            .iter()
            .map(|m| EventRow::new(m.id, self.now, m.to.event.clone()))
            .collect()
    }

    /// What the moves did, once committed.
    pub fn recovered(&self) -> Recovered {
        Recovered {
            requeued: self
                .moves
                .iter()
                .filter(|m| m.to.status == EmailStatus::Queued)
                .map(|m| DueEmail {
                    id: m.id,
                    due_at: m.to.next_attempt_at.unwrap_or(self.now),
                    priority: m.priority,
                })
                .collect(),
            events: self
                .moves
                .iter()
                .map(|m| m.to.event.event_type)
                .collect::<WrittenEvents>(),
        }
    }
}
