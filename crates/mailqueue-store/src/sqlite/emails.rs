//! Emails, claims and attempts in SQLite.

use super::{from_ms, from_opt_ms, to_ms, SqliteStore};
use crate::content::{decode_content, encode_content, with_attachment_bytes};
use crate::errors::store_error;
use crate::outcome::OutcomeRows;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::email::Priority;
use mailqueue_core::store::{
    AttemptKind, AttemptOutcome, AttemptRecord, ChangeOutcome, Claim, ClaimedEmail, DueEmail,
    EmailRecord, EmailStore, HeldClaim, InsertGroup, ListQuery, QueueStats, StoreError,
};
use mailqueue_core::{EmailId, EmailStatus};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use std::collections::HashMap;

/// An email with its content: `SELECT {RECORD_COLUMNS} FROM {RECORD_FROM}`.
const RECORD_COLUMNS: &str = "e.id, e.status, e.priority, e.message_id, c.content, e.created_at, e.updated_at, \
     e.scheduled_at, e.next_attempt_at, e.attempts, e.last_attempt_at, e.last_error, e.last_smtp_reply, e.sent_at, \
     e.lease_expires_at";
const RECORD_FROM: &str = "emails AS e JOIN email_contents AS c ON c.email_id = e.id";

fn id_of(row: &SqliteRow) -> Result<EmailId, StoreError> {
    let s: String = row
        .try_get("id")
        .map_err(|e| store_error("reading an id", e))?;
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("stored id `{s}` is not a UUID: {e}")))
}

fn status_of(row: &SqliteRow) -> Result<EmailStatus, StoreError> {
    let s: String = row
        .try_get("status")
        .map_err(|e| store_error("reading status", e))?;
    s.parse().map_err(StoreError::Corrupt)
}

fn time(row: &SqliteRow, col: &str) -> Result<DateTime<Utc>, StoreError> {
    from_ms(
        row.try_get(col)
            .map_err(|e| store_error("reading a time", e))?,
    )
}

fn opt_time(row: &SqliteRow, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    from_opt_ms(
        row.try_get(col)
            .map_err(|e| store_error("reading a time", e))?,
    )
}

fn record_from_row(row: &SqliteRow) -> Result<EmailRecord, StoreError> {
    let ctx = |e| store_error("reading an email", e);
    let content: String = row.try_get("content").map_err(ctx)?;
    let (email, attachments) = decode_content(
        &content,
        row.try_get("priority").map_err(ctx)?,
        opt_time(row, "scheduled_at")?,
    )?;
    Ok(EmailRecord {
        id: id_of(row)?,
        status: status_of(row)?,
        message_id: row.try_get("message_id").map_err(ctx)?,
        email,
        attachments,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        attempts: row.try_get::<i64, _>("attempts").map_err(ctx)? as u32,
        last_attempt_at: opt_time(row, "last_attempt_at")?,
        last_error: row.try_get("last_error").map_err(ctx)?,
        last_smtp_reply: row.try_get("last_smtp_reply").map_err(ctx)?,
        sent_at: opt_time(row, "sent_at")?,
        lease_expires_at: opt_time(row, "lease_expires_at")?,
    })
}

fn due_from_row(row: &SqliteRow) -> Result<DueEmail, StoreError> {
    let rank: i16 = row
        .try_get("priority")
        .map_err(|e| store_error("reading a due email", e))?;
    Ok(DueEmail {
        id: id_of(row)?,
        due_at: time(row, "next_attempt_at")?,
        priority: Priority::from_rank(rank).unwrap_or_default(),
    })
}

/// Emails per multi-row insert (9 parameters each).
const INSERT_CHUNK: usize = 400;

/// Outcomes per multi-row statement (8 parameters each, well under SQLite's limit).
const OUTCOME_CHUNK: usize = 500;

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

impl SqliteStore {
    async fn change_email(
        &self,
        id: EmailId,
        query: SqliteQuery<'_>,
        ctx: &str,
    ) -> Result<ChangeOutcome, StoreError> {
        let row = {
            let mut w = self.writer.acquire().await?;
            let row = query
                .fetch_optional(&mut *w)
                .await
                .map_err(|e| store_error(ctx, e));
            w.settle(row)?
        };
        if let Some(row) = row {
            return Ok(ChangeOutcome::Changed(due_from_row(&row)?));
        }
        let row = sqlx::query("SELECT status FROM emails WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| store_error("reading an email's status", e))?;
        Ok(match row {
            None => ChangeOutcome::NotFound,
            Some(row) => ChangeOutcome::TooLate(status_of(&row)?),
        })
    }

    /// Moves emails out of `sending` and records why, in the writer's transaction.
    async fn requeue_leased(
        &self,
        select: SqliteQuery<'_>,
        now: DateTime<Utc>,
        give_up_before: Option<DateTime<Utc>>,
        reason: impl Fn(&str) -> String,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let ctx = "returning leased emails to the queue";
        let mut w = self.writer.acquire().await?;
        let result = async {
        let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
        let rows = select
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store_error(ctx, e))?;
        let mut requeued = Vec::new();
        for row in &rows {
            let id = id_of(row)?;
            let holder: Option<String> = row
                .try_get("lease_holder")
                .map_err(|e| store_error(ctx, e))?;
            let attempts: i64 = row.try_get("attempts").map_err(|e| store_error(ctx, e))?;
            let first = opt_time(row, "first_attempt_at")?;
            let started = opt_time(row, "last_attempt_at")?.unwrap_or(now);
            let give_up = matches!((first, give_up_before), (Some(f), Some(g)) if f < g);
            let detail = reason(holder.as_deref().unwrap_or("?"));
            sqlx::query(
                "UPDATE emails SET status = $2, next_attempt_at = $3, last_error = $4, lease_holder = NULL, \
                     lease_expires_at = NULL, updated_at = $5 WHERE id = $1",
            )
            .bind(id.to_string())
            .bind(if give_up { "failed" } else { "queued" })
            .bind((!give_up).then_some(to_ms(now)))
            .bind(&detail)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(ctx, e))?;
            sqlx::query(
                "INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
                 VALUES ($1, $2, $3, $4, 'lease_expired', $5)",
            )
            .bind(id.to_string())
            .bind(attempts)
            .bind(to_ms(started))
            .bind(to_ms(now))
            .bind(&detail)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(ctx, e))?;
            if !give_up {
                let rank: i16 = row.try_get("priority").map_err(|e| store_error(ctx, e))?;
                requeued.push(DueEmail {
                    id,
                    due_at: now,
                    priority: Priority::from_rank(rank).unwrap_or_default(),
                });
            }
        }
        tx.commit().await.map_err(|e| store_error(ctx, e))?;
        Ok(requeued)
        }
        .await;
        w.settle(result)
    }
}

#[async_trait]
impl EmailStore for SqliteStore {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let ctx = "storing emails";
        let mut w = self.writer.acquire().await?;
        let result = async {
        let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
        let emails: Vec<_> = groups.iter().flat_map(|g| g.emails.iter()).collect();
        // Multi-row statements: one round trip to SQLite's thread per chunk.
        for chunk in emails.chunks(INSERT_CHUNK) {
            let mut rows: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO emails (id, api_key_id, status, priority, message_id, created_at, updated_at, \
                                     scheduled_at, next_attempt_at) ",
            );
            rows.push_values(chunk, |mut b, e| {
                b.push_bind(e.id.to_string())
                    .push_bind(e.api_key_id.map(|k| k.to_string()))
                    .push_bind(e.initial_status().as_str())
                    .push_bind(e.email.priority.rank())
                    .push_bind(e.message_id.clone())
                    .push_bind(to_ms(e.created_at))
                    .push_bind(to_ms(e.created_at))
                    .push_bind(e.email.scheduled_at.map(to_ms))
                    .push_bind(to_ms(e.due_at()));
            });
            rows.build()
                .execute(&mut *tx)
                .await
                .map_err(|err| store_error(ctx, err))?;
            let mut contents: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO email_contents (email_id, content) ");
            contents.push_values(chunk, |mut b, e| {
                b.push_bind(e.id.to_string())
                    .push_bind(encode_content(&e.email));
            });
            contents
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|err| store_error(ctx, err))?;
        }
        for e in emails.iter().filter(|e| !e.email.attachments.is_empty()) {
            for (pos, a) in e.email.attachments.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO email_attachments (email_id, position, filename, content_type, content_id, content) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(e.id.to_string())
                .bind(pos as i64)
                .bind(&a.filename)
                .bind(&a.content_type)
                .bind(&a.content_id)
                .bind(&a.content)
                .execute(&mut *tx)
                .await
                .map_err(|err| store_error("storing attachments", err))?;
            }
        }
        for answer in groups.iter().filter_map(|g| g.idempotency.as_ref()) {
            sqlx::query(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE api_key_id = $1 AND key = $2",
            )
            .bind(answer.scope.api_key_id.to_string())
            .bind(&answer.scope.key)
            .bind(i64::from(answer.status))
            .bind(&answer.body)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("recording an idempotent answer", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| store_error("committing emails", e))
        }
        .await;
        w.settle(result)
    }

    async fn get_email(&self, id: EmailId) -> Result<Option<EmailRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE e.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.readers)
        .await
        .map_err(|e| store_error("reading an email", e))?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list_emails(&self, query: &ListQuery) -> Result<Vec<EmailRecord>, StoreError> {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
            "SELECT {RECORD_COLUMNS} FROM {RECORD_FROM} WHERE 1"
        ));
        if let Some(status) = query.status {
            qb.push(" AND e.status = ").push_bind(status.as_str());
        }
        if let Some(after) = query.after {
            qb.push(" AND e.id < ").push_bind(after.to_string());
        }
        if let Some(before) = query.before {
            qb.push(" AND e.id > ").push_bind(before.to_string());
        }
        let ascending = query.before.is_some();
        qb.push(if ascending {
            " ORDER BY e.id ASC LIMIT "
        } else {
            " ORDER BY e.id DESC LIMIT "
        })
        .push_bind(i64::from(query.limit));
        let rows = qb
            .build()
            .fetch_all(&self.readers)
            .await
            .map_err(|e| store_error("listing emails", e))?;
        let mut records = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if ascending {
            records.reverse();
        }
        Ok(records)
    }

    async fn list_attempts(&self, id: EmailId) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT attempt, started_at, finished_at, outcome, smtp_code, detail FROM email_attempts \
             WHERE email_id = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.readers)
        .await
        .map_err(|e| store_error("listing attempts", e))?;
        rows.iter()
            .map(|row| {
                let ctx = |e| store_error("reading an attempt", e);
                let outcome: String = row.try_get("outcome").map_err(ctx)?;
                Ok(AttemptRecord {
                    attempt: row.try_get::<i64, _>("attempt").map_err(ctx)? as u32,
                    started_at: time(row, "started_at")?,
                    finished_at: time(row, "finished_at")?,
                    outcome: AttemptKind::parse(&outcome).ok_or_else(|| {
                        StoreError::Corrupt(format!("attempt outcome `{outcome}` is unknown"))
                    })?,
                    smtp_code: row
                        .try_get::<Option<i64>, _>("smtp_code")
                        .map_err(ctx)?
                        .map(|c| c as u16),
                    detail: row.try_get("detail").map_err(ctx)?,
                })
            })
            .collect()
    }

    async fn reschedule_email(
        &self,
        id: EmailId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let query = sqlx::query(
            "UPDATE emails SET scheduled_at = $2, next_attempt_at = max($2, $3), updated_at = $3, \
                 status = CASE WHEN $2 > $3 AND attempts = 0 THEN 'scheduled' ELSE 'queued' END \
             WHERE id = $1 AND status IN ('queued', 'scheduled') RETURNING id, next_attempt_at, priority",
        )
        .bind(id.to_string())
        .bind(to_ms(at))
        .bind(to_ms(now));
        self.change_email(id, query, "rescheduling an email").await
    }

    async fn cancel_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let query = sqlx::query(
            "UPDATE emails SET status = 'cancelled', next_attempt_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status IN ('queued', 'scheduled') RETURNING id, $2 AS next_attempt_at, priority",
        )
        .bind(id.to_string())
        .bind(to_ms(now));
        self.change_email(id, query, "cancelling an email").await
    }

    async fn retry_failed_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let query = sqlx::query(
            "UPDATE emails SET status = 'queued', next_attempt_at = $2, first_attempt_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status = 'failed' RETURNING id, next_attempt_at, priority",
        )
        .bind(id.to_string())
        .bind(to_ms(now));
        self.change_email(id, query, "retrying an email").await
    }

    async fn claim_emails(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = "claiming emails";
        let now = to_ms(claim.now);
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "UPDATE emails SET status = 'sending', attempts = attempts + 1, lease_holder = ",
        );
        qb.push_bind(&claim.holder)
            .push(", lease_expires_at = ")
            .push_bind(to_ms(claim.lease_expires_at))
            .push(", first_attempt_at = COALESCE(first_attempt_at, ")
            .push_bind(now)
            .push("), last_attempt_at = ")
            .push_bind(now)
            .push(", next_attempt_at = NULL, updated_at = ")
            .push_bind(now)
            .push(" WHERE status IN ('queued', 'scheduled') AND next_attempt_at <= ")
            .push_bind(now)
            .push(" AND id IN (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(id.to_string());
        }
        qb.push(") RETURNING id, message_id, priority, scheduled_at, created_at, attempts, first_attempt_at");
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            let rows = qb
                .build()
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?;
            let mut contents: HashMap<String, String> = HashMap::with_capacity(rows.len());
            if !rows.is_empty() {
                let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "SELECT email_id, content FROM email_contents WHERE email_id IN (",
                );
                let mut list = q.separated(", ");
                for row in &rows {
                    list.push_bind(id_of(row)?.to_string());
                }
                q.push(")");
                for row in q
                    .build()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?
                {
                    let c = |e| store_error("loading email content", e);
                    contents.insert(
                        row.try_get("email_id").map_err(c)?,
                        row.try_get("content").map_err(c)?,
                    );
                }
            }
            let mut claimed = Vec::with_capacity(rows.len());
            for row in &rows {
                let c = |e| store_error(ctx, e);
                let id = id_of(row)?;
                let content = contents
                    .remove(&id.to_string())
                    .ok_or_else(|| StoreError::Corrupt(format!("email {id} has no content row")))?;
                let (mut email, infos) = decode_content(
                    &content,
                    row.try_get("priority").map_err(c)?,
                    opt_time(row, "scheduled_at")?,
                )?;
                if !infos.is_empty() {
                    let files = sqlx::query(
                    "SELECT content FROM email_attachments WHERE email_id = $1 ORDER BY position",
                )
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error("loading attachments", e))?;
                    let bytes = files
                        .iter()
                        .map(|f| f.try_get::<Vec<u8>, _>("content"))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| store_error("loading attachments", e))?;
                    email.attachments = with_attachment_bytes(infos, bytes)?;
                }
                claimed.push(ClaimedEmail {
                    id,
                    message_id: row.try_get("message_id").map_err(c)?,
                    created_at: time(row, "created_at")?,
                    email,
                    attempt: row.try_get::<i64, _>("attempts").map_err(c)? as u32,
                    first_attempt_at: time(row, "first_attempt_at")?,
                });
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(claimed)
        }
        .await;
        w.settle(result)
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let ctx = "recording attempts";
        let rows = OutcomeRows::from(outcomes);
        let mut w = self.writer.acquire().await?;
        let result = async {
        let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
        // Multi-row statements: one round trip to SQLite's thread per chunk.
        let indexes: Vec<usize> = (0..rows.ids.len()).collect();
        for chunk in indexes.chunks(OUTCOME_CHUNK) {
            let mut update: QueryBuilder<Sqlite> = QueryBuilder::new(
                "WITH u(id, attempt, status, next_at, sent_at, error, reply, finished) AS (",
            );
            update.push_values(chunk, |mut b, &i| {
                b.push_bind(rows.ids[i].to_string())
                    .push_bind(rows.attempts[i])
                    .push_bind(rows.statuses[i])
                    .push_bind(rows.next_at[i].map(to_ms))
                    .push_bind(rows.sent_at[i].map(to_ms))
                    .push_bind(rows.errors[i].clone())
                    .push_bind(rows.replies[i].clone())
                    .push_bind(to_ms(rows.finished[i]));
            });
            update.push(
                ") UPDATE emails SET status = u.status, next_attempt_at = u.next_at, \
                     sent_at = COALESCE(u.sent_at, emails.sent_at), last_error = u.error, \
                     last_smtp_reply = COALESCE(u.reply, emails.last_smtp_reply), lease_holder = NULL, \
                     lease_expires_at = NULL, updated_at = u.finished \
                 FROM u WHERE emails.id = u.id AND ((emails.status = 'sending' AND emails.attempts = u.attempt) \
                     OR (u.status = 'sent' AND emails.status <> 'sent'))",
            );
            update
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?;
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "WITH v(email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) AS (",
            );
            insert.push_values(chunk, |mut b, &i| {
                b.push_bind(rows.ids[i].to_string())
                    .push_bind(rows.attempts[i])
                    .push_bind(to_ms(rows.started[i]))
                    .push_bind(to_ms(rows.finished[i]))
                    .push_bind(rows.kinds[i])
                    .push_bind(rows.codes[i])
                    .push_bind(rows.details[i].clone());
            });
            // An email deleted meanwhile keeps no history (rather than failing the batch).
            insert.push(
                ") INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) \
                 SELECT * FROM v WHERE EXISTS (SELECT 1 FROM emails WHERE emails.id = v.email_id)",
            );
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?;
        }
        tx.commit().await.map_err(|e| store_error(ctx, e))
        }
        .await;
        w.settle(result)
    }

    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
        give_up_before: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let select = sqlx::query(
            "SELECT id, lease_holder, attempts, first_attempt_at, last_attempt_at, priority FROM emails \
             WHERE status = 'sending' AND lease_expires_at < $1 LIMIT 1000",
        )
        .bind(to_ms(now));
        self.requeue_leased(select, now, Some(give_up_before), |holder| {
            format!("the worker {holder} stopped before finishing the attempt (lease expired)")
        })
        .await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EmailId>, StoreError> {
        let mut w = self.writer.acquire().await?;
        let rows = sqlx::query(
            "UPDATE emails SET lease_expires_at = $3 \
             WHERE status = 'sending' AND lease_holder = $1 AND lease_expires_at >= $2 RETURNING id",
        )
        .bind(holder)
        .bind(to_ms(now))
        .bind(to_ms(until))
        .fetch_all(&mut *w)
        .await
        .map_err(|e| store_error("renewing leases", e));
        let rows = w.settle(rows)?;
        rows.iter().map(id_of).collect()
    }

    async fn defer_claims(
        &self,
        holder: &str,
        claims: &[HeldClaim],
        due_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("WITH c(id, attempt) AS (");
        qb.push_values(claims, |mut b, c| {
            b.push_bind(c.id.to_string())
                .push_bind(i64::from(c.attempt));
        });
        qb.push(
            ") UPDATE emails SET status = 'queued', attempts = emails.attempts - 1, \
                 first_attempt_at = CASE WHEN emails.attempts = 1 THEN NULL ELSE emails.first_attempt_at END, \
                 last_attempt_at = (SELECT max(a.started_at) FROM email_attempts AS a WHERE a.email_id = emails.id), \
                 lease_holder = NULL, lease_expires_at = NULL, next_attempt_at = ",
        )
        .push_bind(to_ms(due_at))
        .push(", updated_at = ")
        .push_bind(to_ms(now))
        .push(" FROM c WHERE emails.id = c.id AND emails.attempts = c.attempt AND emails.status = 'sending' AND emails.lease_holder = ")
        .push_bind(holder)
        .push(" RETURNING emails.id AS id, emails.next_attempt_at AS next_attempt_at, emails.priority AS priority");
        let mut w = self.writer.acquire().await?;
        let rows = qb
            .build()
            .fetch_all(&mut *w)
            .await
            .map_err(|e| store_error("deferring claims", e));
        let rows = w.settle(rows)?;
        rows.iter().map(due_from_row).collect()
    }

    async fn release_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let select = sqlx::query(
            "SELECT id, lease_holder, attempts, first_attempt_at, last_attempt_at, priority FROM emails \
             WHERE status = 'sending' AND lease_holder = $1",
        )
        .bind(holder);
        self.requeue_leased(select, now, None, |_| {
            "the attempt was interrupted when its worker stopped".to_string()
        })
        .await
    }

    async fn pending_emails(
        &self,
        after: Option<EmailId>,
        limit: u32,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, next_attempt_at, priority FROM emails \
             WHERE status IN ('queued', 'scheduled') AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after.map(|a| a.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(|e| store_error("listing pending emails", e))?;
        rows.iter().map(due_from_row).collect()
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
        let ctx = "counting emails";
        let mut by_status = Vec::new();
        for status in [
            EmailStatus::Queued,
            EmailStatus::Scheduled,
            EmailStatus::Sending,
        ] {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM emails WHERE status = $1")
                .bind(status.as_str())
                .fetch_one(&self.readers)
                .await
                .map_err(|e| store_error(ctx, e))?;
            by_status.push((status, n as u64));
        }
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT min(next_attempt_at) FROM emails WHERE status = 'queued' AND next_attempt_at <= $1")
                .bind(to_ms(now))
                .fetch_one(&self.readers)
                .await
                .map_err(|e| store_error("finding the oldest due email", e))?;
        Ok(QueueStats {
            by_status,
            oldest_due_at: from_opt_ms(oldest)?,
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(|e| store_error("checking SQLite", e))?;
        if self.writer.health.failing().is_none() {
            return Ok(());
        }
        let mut w = self.writer.acquire().await?;
        let probe = async {
            let mut tx = w
                .begin()
                .await
                .map_err(|e| store_error("probing writes", e))?;
            sqlx::query(
                "INSERT INTO emails (id, status, message_id, created_at, updated_at) \
                 VALUES ('ffffffff-ffff-7fff-bfff-ffffffffffff', 'cancelled', '<probe>', 0, 0)",
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("probing writes", e))?;
            tx.rollback()
                .await
                .map_err(|e| store_error("probing writes", e))
        }
        .await;
        w.settle(probe).map_err(crate::health::not_writable)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.checkpoint().await
    }
}
