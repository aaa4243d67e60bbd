//! Decoding rows into the core's types, once for both stores. Each store's
//! row type reads its own encoding of ids and times; everything else is
//! the same.

use crate::content::decode_content;
use crate::errors::store_error;
use crate::sqlite::{from_ms, from_opt_ms};
use chrono::{DateTime, Utc};
use mailqueue_core::email::Priority;
use mailqueue_core::events::EmailEvent;
use mailqueue_core::store::{
    AttemptKind, AttemptRecord, ClaimedEmail, DueEmail, EmailRecord, QueueStats, StoreError,
    SuppressedRecipient,
};
use mailqueue_core::suppression::SuppressionOrigin;
use mailqueue_core::{EmailAddress, EmailId, EmailStatus, EventId, NewEmail};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo};

/// Reading one column of a row, in the store's encoding.
pub trait RowReader {
    fn uuid(&self, col: &str) -> Result<uuid::Uuid, StoreError>;
    fn opt_uuid(&self, col: &str) -> Result<Option<uuid::Uuid>, StoreError>;
    fn id(&self, col: &str) -> Result<EmailId, StoreError> {
        Ok(EmailId(self.uuid(col)?))
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
}

fn read_error(col: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |e| store_error(&format!("reading the column {col}"), e)
}

/// The columns both drivers decode alike: text and bytes.
macro_rules! decoded_alike {
    () => {
        fn text(&self, col: &str) -> Result<String, StoreError> {
            self.try_get(col).map_err(read_error(col))
        }
        fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
            self.try_get(col).map_err(read_error(col))
        }
        fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError> {
            self.try_get(col).map_err(read_error(col))
        }
    };
}

impl RowReader for PgRow {
    fn uuid(&self, col: &str) -> Result<uuid::Uuid, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<uuid::Uuid>, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    /// PostgreSQL keeps its integer widths apart (int2, int4, int8).
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.opt_int(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("the column {col} is NULL")))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        let width = self
            .try_column(col)
            .map(|c| c.type_info().name().to_string())
            .map_err(read_error(col))?;
        let e = read_error(col);
        Ok(match width.as_str() {
            "INT2" => self
                .try_get::<Option<i16>, _>(col)
                .map_err(e)?
                .map(i64::from),
            "INT4" => self
                .try_get::<Option<i32>, _>(col)
                .map_err(e)?
                .map(i64::from),
            _ => self.try_get::<Option<i64>, _>(col).map_err(e)?,
        })
    }
    decoded_alike!();
}

impl RowReader for SqliteRow {
    fn uuid(&self, col: &str) -> Result<uuid::Uuid, StoreError> {
        self.opt_uuid(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("the column {col} is NULL")))
    }
    fn opt_uuid(&self, col: &str) -> Result<Option<uuid::Uuid>, StoreError> {
        let s: Option<String> = self.try_get(col).map_err(read_error(col))?;
        s.map(|s| {
            s.parse()
                .map_err(|e| StoreError::Corrupt(format!("stored id `{s}` is not a UUID: {e}")))
        })
        .transpose()
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        from_ms(self.try_get(col).map_err(read_error(col))?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        from_opt_ms(self.try_get(col).map_err(read_error(col))?)
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(col).map_err(read_error(col))
    }
    decoded_alike!();
}

/// A claimed email from a row of a claim (`id`, `message_id`,
/// `created_at`, `attempt`, `claims`, `first_attempt_at`) and its decoded
/// `email`; whether it came due is the store's to say.
pub fn claimed(row: &impl RowReader, email: NewEmail) -> Result<ClaimedEmail, StoreError> {
    Ok(ClaimedEmail {
        id: row.id("id")?,
        message_id: row.text("message_id")?,
        created_at: row.time("created_at")?,
        email,
        attempt: row.int("attempt")? as u32,
        claim: row.int("claims")? as u32,
        first_attempt_at: row.time("first_attempt_at")?,
        suppressed: Vec::new(),
        came_due: false,
    })
}

pub fn status(row: &impl RowReader) -> Result<EmailStatus, StoreError> {
    row.text("status")?.parse().map_err(StoreError::Corrupt)
}

pub fn priority(row: &impl RowReader) -> Result<Priority, StoreError> {
    let rank = row.int("priority")?;
    i16::try_from(rank)
        .ok()
        .and_then(Priority::from_rank)
        .ok_or_else(|| StoreError::Corrupt(format!("priority rank {rank} is unknown")))
}

/// A row of `statements::RECORD_COLUMNS`.
pub fn record(row: &impl RowReader) -> Result<EmailRecord, StoreError> {
    let (email, attachments) = decode_content(
        &row.text("content")?,
        priority(row)?.rank(),
        row.opt_time("scheduled_at")?,
    )?;
    Ok(EmailRecord {
        id: row.id("id")?,
        status: status(row)?,
        message_id: row.text("message_id")?,
        email,
        attachments,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
        next_attempt_at: row.opt_time("next_attempt_at")?,
        attempts: row.int("attempts")? as u32,
        last_attempt_at: row.opt_time("last_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        last_smtp_reply: row.opt_text("last_smtp_reply")?,
        sent_at: row.opt_time("sent_at")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        last_event: row
            .opt_text("last_event")?
            .map(|t| t.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        content_purged_at: row.opt_time("content_purged_at")?,
    })
}

/// A row of `statements::list_events`.
pub fn event(row: &impl RowReader) -> Result<EmailEvent, StoreError> {
    let data = row.text("data")?;
    Ok(EmailEvent {
        id: EventId(row.uuid("id")?),
        email_id: row.id("email_id")?,
        event_type: row.text("type")?.parse().map_err(StoreError::Corrupt)?,
        created_at: row.time("created_at")?,
        data: serde_json::from_str(&data)
            .map_err(|e| StoreError::Corrupt(format!("event data `{data}`: {e}")))?,
    })
}

/// The rows of `statements::suppressed_among`, each for every address of
/// `keys` (suppression key, address as asked) it matched.
pub fn suppressed<R: RowReader>(
    rows: &[R],
    keys: &[(String, EmailAddress)],
) -> Result<Vec<SuppressedRecipient>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        let key = row.text("email")?;
        let origin: SuppressionOrigin = row.text("origin")?.parse().map_err(StoreError::Corrupt)?;
        for (_, address) in keys.iter().filter(|(k, _)| *k == key) {
            out.push(SuppressedRecipient {
                address: address.clone(),
                origin,
            });
        }
    }
    Ok(out)
}

/// A row with `id`, `next_attempt_at` and `priority`.
pub fn due(row: &impl RowReader) -> Result<DueEmail, StoreError> {
    Ok(DueEmail {
        id: row.id("id")?,
        due_at: row.time("next_attempt_at")?,
        priority: priority(row)?,
    })
}

/// A row of `statements::list_attempts`.
pub fn attempt(row: &impl RowReader) -> Result<AttemptRecord, StoreError> {
    let outcome = row.text("outcome")?;
    Ok(AttemptRecord {
        attempt: row.int("attempt")? as u32,
        started_at: row.time("started_at")?,
        finished_at: row.time("finished_at")?,
        outcome: AttemptKind::parse(&outcome).ok_or_else(|| {
            StoreError::Corrupt(format!("attempt outcome `{outcome}` is unknown"))
        })?,
        smtp_code: row.opt_int("smtp_code")?.map(|c| c as u16),
        detail: row.text("detail")?,
    })
}

/// `statements::count_unfinished` and `statements::oldest_due` as stats:
/// every unfinished status, counted or 0.
pub fn queue_stats<R: RowReader>(counted: &[R], oldest: &R) -> Result<QueueStats, StoreError> {
    let mut by_status: Vec<(EmailStatus, u64)> = [
        EmailStatus::Queued,
        EmailStatus::Scheduled,
        EmailStatus::Sending,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for row in counted {
        let status = status(row)?;
        let n = row.int("n")? as u64;
        if let Some(entry) = by_status.iter_mut().find(|(s, _)| *s == status) {
            entry.1 = n;
        }
    }
    Ok(QueueStats {
        by_status,
        oldest_due_at: oldest.opt_time("oldest")?,
    })
}
