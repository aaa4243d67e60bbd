//! Emails, claims and attempts in PostgreSQL.

use super::{bound, PgStore};
use crate::content::{decode_content, encode_content, with_attachment_bytes};
use crate::errors::store_error;
use crate::shared::{rows, statements, with_statuses, Dialect};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mailqueue_core::store::{
    AttemptOutcome, AttemptRecord, ChangeOutcome, Claim, ClaimedEmail, DueEmail, EmailRecord,
    EmailStore, HeldClaim, InsertGroup, ListQuery, QueueStats, StoreError,
};
use mailqueue_core::EmailId;
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

impl PgStore {
    /// The store error for a failed write, noted for readiness.
    fn failed_write(&self, context: &str, e: sqlx::Error) -> StoreError {
        let error = store_error(context, e);
        self.health.record::<()>(&Err(error.clone()));
        error
    }

    /// Explains why a conditional change touched no row.
    async fn change_refused(&self, id: EmailId) -> Result<ChangeOutcome, StoreError> {
        let row = bound(&statements::status_of(id))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading an email's status", e))?;
        Ok(match row {
            None => ChangeOutcome::NotFound,
            Some(row) => ChangeOutcome::TooLate(rows::status(&row)?),
        })
    }

    /// Inserts every group in one transaction.
    async fn insert_all(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let ctx = "storing emails";
        let emails = groups.iter().flat_map(|g| g.emails.iter());
        let mut ids = Vec::new();
        let mut key_ids = Vec::new();
        let mut statuses = Vec::new();
        let mut priorities = Vec::new();
        let mut message_ids = Vec::new();
        let mut contents = Vec::new();
        let mut created = Vec::new();
        let mut scheduled = Vec::new();
        let mut due = Vec::new();
        let (mut att_ids, mut att_pos, mut att_names, mut att_types, mut att_cids, mut att_bytes) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for e in emails {
            ids.push(e.id.0);
            key_ids.push(e.api_key_id.map(|k| k.0));
            statuses.push(e.initial_status().as_str());
            priorities.push(e.email.priority.rank());
            message_ids.push(e.message_id.as_str());
            contents.push(encode_content(&e.email));
            created.push(e.created_at);
            scheduled.push(e.email.scheduled_at);
            due.push(e.due_at());
            for (pos, a) in e.email.attachments.iter().enumerate() {
                att_ids.push(e.id.0);
                att_pos.push(pos as i16);
                att_names.push(a.filename.as_str());
                att_types.push(a.content_type.as_str());
                att_cids.push(a.content_id.as_deref());
                att_bytes.push(a.content.as_slice());
            }
        }
        let mut tx = self.pool.begin().await.map_err(|e| store_error(ctx, e))?;
        if !ids.is_empty() {
            sqlx::query(
                "WITH new_emails AS ( \
                     INSERT INTO emails (id, api_key_id, status, priority, message_id, created_at, updated_at, \
                                         scheduled_at, next_attempt_at) \
                     SELECT u.id, u.key_id, u.status, u.priority, u.message_id, u.created, u.created, u.scheduled, u.due \
                     FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int2[], $5::text[], \
                                 $7::timestamptz[], $8::timestamptz[], $9::timestamptz[]) \
                          AS u(id, key_id, status, priority, message_id, created, scheduled, due) \
                     RETURNING id) \
                 INSERT INTO email_contents (email_id, content) \
                 SELECT u.id, u.content::jsonb FROM UNNEST($1::uuid[], $6::text[]) AS u(id, content)",
            )
            .bind(&ids)
            .bind(&key_ids)
            .bind(&statuses)
            .bind(&priorities)
            .bind(&message_ids)
            .bind(&contents)
            .bind(&created)
            .bind(&scheduled)
            .bind(&due)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(ctx, e))?;
        }
        if !att_ids.is_empty() {
            sqlx::query(
                "INSERT INTO email_attachments (email_id, position, filename, content_type, content_id, content) \
                 SELECT * FROM UNNEST($1::uuid[], $2::int2[], $3::text[], $4::text[], $5::text[], $6::bytea[])",
            )
            .bind(&att_ids)
            .bind(&att_pos)
            .bind(&att_names)
            .bind(&att_types)
            .bind(&att_cids)
            .bind(&att_bytes)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("storing attachments", e))?;
        }
        for answer in groups.iter().filter_map(|g| g.idempotency.as_ref()) {
            sqlx::query(
                "UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE api_key_id = $1 AND key = $2",
            )
            .bind(answer.scope.api_key_id.0)
            .bind(&answer.scope.key)
            .bind(answer.status as i16)
            .bind(&answer.body)
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("recording an idempotent answer", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| store_error("committing emails", e))
    }

    /// Runs a single-row change (`statements::reschedule`, …).
    async fn change_email(
        &self,
        id: EmailId,
        change: crate::shared::Statement,
        ctx: &str,
    ) -> Result<ChangeOutcome, StoreError> {
        match bound(&change)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed_write(ctx, e))?
        {
            Some(row) => Ok(ChangeOutcome::Changed(rows::due(&row)?)),
            None => self.change_refused(id).await,
        }
    }
}

#[async_trait]
impl EmailStore for PgStore {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let result = self.insert_all(groups).await;
        self.health.record(&result);
        result
    }

    async fn get_email(&self, id: EmailId) -> Result<Option<EmailRecord>, StoreError> {
        let row = bound(&statements::get_email(Dialect::Postgres, id))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading an email", e))?;
        row.as_ref().map(rows::record).transpose()
    }

    async fn list_emails(&self, query: &ListQuery) -> Result<Vec<EmailRecord>, StoreError> {
        let found = bound(&statements::list_emails(Dialect::Postgres, query))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing emails", e))?;
        let mut records = found
            .iter()
            .map(rows::record)
            .collect::<Result<Vec<_>, _>>()?;
        if query.before.is_some() {
            records.reverse();
        }
        Ok(records)
    }

    async fn list_attempts(&self, id: EmailId) -> Result<Vec<AttemptRecord>, StoreError> {
        bound(&statements::list_attempts(id))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing attempts", e))?
            .iter()
            .map(rows::attempt)
            .collect()
    }

    async fn reschedule_email(
        &self,
        id: EmailId,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let change = statements::reschedule(Dialect::Postgres, id, at, now);
        self.change_email(id, change, "rescheduling an email").await
    }

    async fn cancel_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let change = statements::cancel(Dialect::Postgres, id, now);
        self.change_email(id, change, "cancelling an email").await
    }

    async fn retry_failed_email(
        &self,
        id: EmailId,
        now: DateTime<Utc>,
    ) -> Result<ChangeOutcome, StoreError> {
        let change = statements::retry_failed(id, now);
        self.change_email(id, change, "retrying an email").await
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
        let uuids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let rows = sqlx::query(&with_statuses(
            "WITH claimed AS ( \
                 UPDATE emails SET status = {sending}, attempts = attempts + 1, lease_holder = $2, \
                     lease_expires_at = $3, first_attempt_at = COALESCE(first_attempt_at, $4), \
                     last_attempt_at = $4, next_attempt_at = NULL, updated_at = $4 \
                 WHERE id = ANY($1) AND status IN ({pending}) AND next_attempt_at <= $4 \
                 RETURNING id, message_id, priority, scheduled_at, created_at, attempts, first_attempt_at) \
             SELECT claimed.*, c.content::text AS content \
             FROM claimed JOIN email_contents AS c ON c.email_id = claimed.id",
        ))
        .bind(&uuids)
        .bind(&claim.holder)
        .bind(claim.lease_expires_at)
        .bind(claim.now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed_write(ctx, e))?;
        let mut claimed = Vec::with_capacity(rows.len());
        let mut infos = Vec::with_capacity(rows.len());
        for row in &rows {
            let c = |e| store_error(ctx, e);
            let content: String = row.try_get("content").map_err(c)?;
            let (email, attachments) = decode_content(
                &content,
                row.try_get("priority").map_err(c)?,
                row.try_get("scheduled_at").map_err(c)?,
            )?;
            infos.push(attachments);
            claimed.push(ClaimedEmail {
                id: EmailId(row.try_get("id").map_err(c)?),
                message_id: row.try_get("message_id").map_err(c)?,
                created_at: row.try_get("created_at").map_err(c)?,
                email,
                attempt: row.try_get::<i32, _>("attempts").map_err(c)? as u32,
                first_attempt_at: row.try_get("first_attempt_at").map_err(c)?,
            });
        }
        let with_files: Vec<Uuid> = claimed
            .iter()
            .zip(&infos)
            .filter(|(_, i)| !i.is_empty())
            .map(|(c, _)| c.id.0)
            .collect();
        let mut bytes: HashMap<Uuid, Vec<Vec<u8>>> = HashMap::new();
        if !with_files.is_empty() {
            let rows = sqlx::query(
                "SELECT email_id, content FROM email_attachments WHERE email_id = ANY($1) ORDER BY email_id, position",
            )
            .bind(&with_files)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("loading attachments", e))?;
            for row in rows {
                let c = |e| store_error("loading attachments", e);
                bytes
                    .entry(row.try_get("email_id").map_err(c)?)
                    .or_default()
                    .push(row.try_get("content").map_err(c)?);
            }
        }
        for (email, info) in claimed.iter_mut().zip(infos) {
            if !info.is_empty() {
                email.email.attachments =
                    with_attachment_bytes(info, bytes.remove(&email.id.0).unwrap_or_default())?;
            }
        }
        Ok(claimed)
    }

    async fn record_outcomes(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let rows = crate::outcome::OutcomeRows::from(outcomes);
        let result = async {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| store_error("recording attempts", e))?;
        sqlx::query(&with_statuses(
            "UPDATE emails AS e SET status = u.status, next_attempt_at = u.next_at, \
                 sent_at = COALESCE(u.sent_at, e.sent_at), last_error = u.error, \
                 last_smtp_reply = COALESCE(u.reply, e.last_smtp_reply), lease_holder = NULL, \
                 lease_expires_at = NULL, updated_at = u.finished \
             FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[], \
                         $7::text[], $8::timestamptz[]) AS u(id, attempt, status, next_at, sent_at, error, reply, finished) \
             WHERE e.id = u.id AND ((e.status = {sending} AND e.attempts = u.attempt) \
                 OR (u.status = {sent} AND e.status <> {sent}))",
        ))
        .bind(rows.ids.iter().map(|i| i.0).collect::<Vec<Uuid>>())
        .bind(&rows.attempts)
        .bind(&rows.statuses)
        .bind(&rows.next_at)
        .bind(&rows.sent_at)
        .bind(&rows.errors)
        .bind(&rows.replies)
        .bind(&rows.finished)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error("recording attempt outcomes", e))?;
        sqlx::query(
            "INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) \
             SELECT * FROM UNNEST($1::uuid[], $2::int4[], $3::timestamptz[], $4::timestamptz[], $5::text[], \
                                  $6::int4[], $7::text[]) AS u(email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) \
             WHERE EXISTS (SELECT 1 FROM emails AS e WHERE e.id = u.email_id)",
        )
        .bind(rows.ids.iter().map(|i| i.0).collect::<Vec<Uuid>>())
        .bind(&rows.attempts)
        .bind(&rows.started)
        .bind(&rows.finished)
        .bind(&rows.kinds)
        .bind(&rows.codes)
        .bind(&rows.details)
        .execute(&mut *tx)
        .await
        .map_err(|e| store_error("recording attempts", e))?;
        tx.commit()
            .await
            .map_err(|e| store_error("committing attempts", e))
        }
        .await;
        self.health.record(&result);
        result
    }

    async fn rescue_expired_leases(
        &self,
        now: DateTime<Utc>,
        give_up_before: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let rows = sqlx::query(&with_statuses(
            "WITH expired AS ( \
                 SELECT id, lease_holder FROM emails WHERE status = {sending} AND lease_expires_at < $1 \
                 FOR UPDATE SKIP LOCKED LIMIT 1000), \
             moved AS ( \
                 UPDATE emails AS e SET \
                     status = CASE WHEN e.first_attempt_at < $2 THEN {failed} ELSE {queued} END, \
                     next_attempt_at = CASE WHEN e.first_attempt_at < $2 THEN NULL ELSE $1 END, \
                     last_error = 'the worker ' || COALESCE(x.lease_holder, '?') || \
                                  ' stopped before finishing the attempt (lease expired)', \
                     lease_holder = NULL, lease_expires_at = NULL, updated_at = $1 \
                 FROM expired AS x WHERE e.id = x.id \
                 RETURNING e.id, e.status, e.next_attempt_at, e.priority, e.attempts, e.last_attempt_at, e.last_error), \
             history AS ( \
                 INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
                 SELECT id, attempts, COALESCE(last_attempt_at, $1), $1, 'lease_expired', last_error FROM moved) \
             SELECT id, next_attempt_at, priority FROM moved WHERE status = {queued}",
        ))
        .bind(now)
        .bind(give_up_before)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed_write("rescuing expired leases", e))?;
        rows.iter().map(rows::due).collect()
    }

    async fn renew_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<EmailId>, StoreError> {
        bound(&statements::renew_leases(holder, now, until))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed_write("renewing leases", e))?
            .iter()
            .map(|row| rows::RowReader::id(row, "id"))
            .collect()
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
        let rows = sqlx::query(&with_statuses(
            "UPDATE emails AS e SET status = {queued}, attempts = e.attempts - 1, \
                 first_attempt_at = CASE WHEN e.attempts = 1 THEN NULL ELSE e.first_attempt_at END, \
                 last_attempt_at = (SELECT max(a.started_at) FROM email_attempts AS a WHERE a.email_id = e.id), \
                 lease_holder = NULL, lease_expires_at = NULL, next_attempt_at = $5, updated_at = $4 \
             FROM UNNEST($2::uuid[], $3::int4[]) AS c(id, attempt) \
             WHERE e.id = c.id AND e.attempts = c.attempt AND e.status = {sending} AND e.lease_holder = $1 \
             RETURNING e.id, e.next_attempt_at, e.priority",
        ))
        .bind(holder)
        .bind(claims.iter().map(|c| c.id.0).collect::<Vec<Uuid>>())
        .bind(claims.iter().map(|c| c.attempt as i32).collect::<Vec<i32>>())
        .bind(now)
        .bind(due_at)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed_write("deferring claims", e))?;
        rows.iter().map(rows::due).collect()
    }

    async fn release_leases(
        &self,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let rows = sqlx::query(&with_statuses(
            "WITH moved AS ( \
                 UPDATE emails SET status = {queued}, next_attempt_at = $2, lease_holder = NULL, \
                     lease_expires_at = NULL, updated_at = $2, \
                     last_error = 'the attempt was interrupted when its worker stopped' \
                 WHERE status = {sending} AND lease_holder = $1 \
                 RETURNING id, next_attempt_at, priority, attempts, last_attempt_at, last_error), \
             history AS ( \
                 INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
                 SELECT id, attempts, COALESCE(last_attempt_at, $2), $2, 'lease_expired', last_error FROM moved) \
             SELECT id, next_attempt_at, priority FROM moved",
        ))
        .bind(holder)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.failed_write("releasing leases", e))?;
        rows.iter().map(rows::due).collect()
    }

    async fn pending_emails(
        &self,
        after: Option<EmailId>,
        limit: u32,
    ) -> Result<Vec<DueEmail>, StoreError> {
        bound(&statements::pending_emails(after, limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing pending emails", e))?
            .iter()
            .map(rows::due)
            .collect()
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
        let counted = bound(&statements::count_unfinished())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("counting emails", e))?;
        let oldest = bound(&statements::oldest_due(now))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error("finding the oldest due email", e))?;
        rows::queue_stats(&counted, &oldest)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("checking PostgreSQL", e))?;
        if self.health.failing().is_none() {
            return Ok(());
        }
        let probe = async {
            let mut tx = self.pool.begin().await.map_err(|e| store_error("probing writes", e))?;
            sqlx::query(&with_statuses(
                "INSERT INTO emails (id, status, message_id, created_at, updated_at) \
                 VALUES ('ffffffff-ffff-7fff-bfff-ffffffffffff', {cancelled}, '<probe>', now(), now())",
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("probing writes", e))?;
            tx.rollback().await.map_err(|e| store_error("probing writes", e))
        }
        .await;
        self.health.record(&probe);
        probe.map_err(crate::health::not_writable)
    }
}
