//! Emails, claims and attempts in SQLite.

use super::event_writes::{came_due, suppress_bounced, write_events};
use super::{to_ms, SqliteStore};
use crate::content::{attach_files, decode_content, encode_content, has_files, stored_files};
use crate::errors::store_error;
use crate::outcome::OutcomeRows;
use crate::shared::event_rows::{self, EventRow};
use crate::shared::rows::{self, RowReader};
use crate::shared::{outcome_applies, statements, with_names, Dialect};
use async_trait::async_trait;
use mailqueue_core::store::{
    AttemptOutcome, Claim, ClaimedEmail, EmailInserts, InsertGroup, StoreError, StoreHealth,
};
use mailqueue_core::transition::WrittenEvents;
use mailqueue_core::EmailId;
use sqlx::{Connection, QueryBuilder, Row, Sqlite};
use std::collections::{HashMap, HashSet};

/// Emails per multi-row insert (9 parameters each).
const INSERT_CHUNK: usize = 400;

/// Outcomes per multi-row statement (10 parameters each, well under SQLite's limit).
const OUTCOME_CHUNK: usize = 500;

#[async_trait]
impl EmailInserts for SqliteStore {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let ctx = "storing emails";
        let mut w = self.writer.acquire().await?;
        let result = async {
        let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
        // A key taken over by a newer request stops the commit.
        for answer in groups.iter().filter_map(|g| g.idempotency.as_ref()) {
            let recorded = sqlx::query(statements::RECORD_IDEMPOTENT_ANSWER)
                .bind(answer.scope.api_key_id.to_string())
                .bind(&answer.scope.key)
                .bind(i64::from(answer.status))
                .bind(&answer.body)
                .bind(answer.fence.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error("recording an idempotent answer", e))?;
            if recorded.rows_affected() != 1 {
                return Err(crate::idempotency::taken_over(&answer.scope));
            }
        }
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
        for e in &emails {
            for (pos, a) in stored_files(&e.email).into_iter().enumerate() {
                sqlx::query(
                    "INSERT INTO email_attachments (email_id, position, filename, content_type, content_id, content) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(e.id.to_string())
                .bind(pos as i64)
                .bind(a.filename)
                .bind(a.content_type)
                .bind(a.content_id)
                .bind(a.content)
                .execute(&mut *tx)
                .await
                .map_err(|err| store_error("storing attachments", err))?;
            }
        }
        write_events(&mut tx, &event_rows::accepted(&emails)).await?;
        tx.commit()
            .await
            .map_err(|e| store_error("committing emails", e))
        }
        .await;
        w.settle_room(result)
    }
}

impl SqliteStore {
    /// Claims due emails (see `shared::email_store`).
    pub(crate) async fn claim(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        let ctx = "claiming emails";
        let mut qb = claim_query("", ids, claim);
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
                    list.push_bind(row.id("id")?.to_string());
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
                let id = row.id("id")?;
                let content = contents
                    .remove(&id.to_string())
                    .ok_or_else(|| StoreError::Corrupt(format!("email {id} has no content row")))?;
                let (mut email, infos) = decode_content(
                    &content,
                    row.try_get("priority").map_err(c)?,
                    row.opt_time("scheduled_at")?,
                )?;
                if has_files(&email, &infos) {
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
                    attach_files(&mut email, infos, bytes)?;
                }
                claimed.push(rows::claimed(row, email)?);
            }
            let came_due = came_due(&mut tx, &mut claimed, claim.now).await?;
            write_events(&mut tx, &came_due).await?;
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(claimed)
        }
        .await;
        w.settle(result)
    }

    /// Records outcomes, with their events and suppressions.
    pub(crate) async fn record(
        &self,
        outcomes: &[AttemptOutcome],
    ) -> Result<WrittenEvents, StoreError> {
        if outcomes.is_empty() {
            return Ok(WrittenEvents::default());
        }
        let ctx = "recording attempts";
        let rows = OutcomeRows::from(outcomes);
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            // Multi-row statements: one round trip to SQLite's thread per chunk.
            let indexes: Vec<usize> = (0..rows.ids.len()).collect();
            let mut applied = HashSet::with_capacity(rows.ids.len());
            for chunk in indexes.chunks(OUTCOME_CHUNK) {
                let mut update = outcome_update("", chunk, &rows);
                for row in update
                    .build()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?
                {
                    applied.insert(row.id("id")?);
                }
                let mut insert = outcome_history("", chunk, &rows);
                insert
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
            }
            let written: Vec<EventRow> = rows
                .events
                .iter()
                .filter(|e| applied.contains(&e.email_id))
                .cloned()
                .collect();
            write_events(&mut tx, &written).await?;
            suppress_bounced(&mut tx, &rows.suppressions, &applied).await?;
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(event_rows::written(&written))
        }
        .await;
        w.settle(result)
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(|e| store_error("checking SQLite", e))?;
        if self.writer.health.failing().is_none() {
            return Ok(());
        }
        let probe = statements::write_probe(Dialect::Sqlite, chrono::Utc::now());
        let probed = self.db().in_one_transaction("probing writes", &probe).await;
        self.writer.health.record_room(&probed);
        probed.map(drop).map_err(crate::health::not_writable)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.checkpoint().await
    }
}

/// The claim statement (`prefix` is empty, or `EXPLAIN QUERY PLAN ` for
/// the plan checks).
pub(super) fn claim_query(
    prefix: &str,
    ids: &[EmailId],
    claim: &Claim,
) -> QueryBuilder<'static, Sqlite> {
    let now = to_ms(claim.now);
    let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "{prefix}{}",
        with_names("UPDATE emails SET status = {sending}, claims = claims + 1, lease_holder = ")
    ));
    qb.push_bind(claim.holder.clone())
        .push(", lease_expires_at = ")
        .push_bind(to_ms(claim.lease_expires_at))
        .push(", next_attempt_at = NULL, updated_at = ")
        .push_bind(now)
        .push(with_names(
            " WHERE status IN ({pending}) AND next_attempt_at <= ",
        ))
        .push_bind(now)
        .push(" AND id IN (");
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id.to_string());
    }
    qb.push(
        ") RETURNING id, message_id, priority, scheduled_at, created_at, attempts + 1 AS attempt, \
         claims, COALESCE(first_attempt_at, updated_at) AS first_attempt_at",
    );
    qb
}

/// The status changes of a chunk of outcomes (`prefix` as for [`claim_query`]).
pub(super) fn outcome_update(
    prefix: &str,
    chunk: &[usize],
    rows: &OutcomeRows,
) -> QueryBuilder<'static, Sqlite> {
    let mut update: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "{prefix}WITH u(id, attempt, claim, started, status, next_at, sent_at, error, reply, finished) AS (",
    ));
    update.push_values(chunk, |mut b, &i| {
        b.push_bind(rows.ids[i].to_string())
            .push_bind(rows.attempts[i])
            .push_bind(rows.claims[i])
            .push_bind(to_ms(rows.started[i]))
            .push_bind(rows.statuses[i])
            .push_bind(rows.next_at[i].map(to_ms))
            .push_bind(rows.sent_at[i].map(to_ms))
            .push_bind(rows.errors[i].clone())
            .push_bind(rows.replies[i].clone())
            .push_bind(to_ms(rows.finished[i]));
    });
    update.push(
        with_names(
            ") UPDATE emails SET status = u.status, next_attempt_at = u.next_at, \
             attempts = max(emails.attempts, u.attempt), \
             first_attempt_at = COALESCE(emails.first_attempt_at, u.started), last_attempt_at = u.started, \
             sent_at = COALESCE(u.sent_at, emails.sent_at), last_error = u.error, \
             last_smtp_reply = COALESCE(u.reply, emails.last_smtp_reply), lease_holder = NULL, \
             lease_expires_at = NULL, updated_at = u.finished \
         FROM u WHERE emails.id = u.id AND {applies} \
         RETURNING emails.id AS id",
        )
        .replace("{applies}", &outcome_applies("emails", "u")),
    );
    update
}

/// The attempts of a chunk of outcomes (`prefix` as for [`claim_query`]).
pub(super) fn outcome_history(
    prefix: &str,
    chunk: &[usize],
    rows: &OutcomeRows,
) -> QueryBuilder<'static, Sqlite> {
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
        "{prefix}WITH v(email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) AS (",
    ));
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
}
