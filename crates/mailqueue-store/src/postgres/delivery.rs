//! The delivery side in PostgreSQL: claims, outcomes and interrupted
//! attempts, each with its events in the same transaction (or statement).

use super::events::write_events;
use super::PgStore;
use crate::content::{decode_content, with_attachment_bytes};
use crate::errors::store_error;
use crate::outcome::OutcomeRows;
use crate::shared::events::{self, EventRow};
use crate::shared::rows::{self, RowReader};
use crate::shared::with_statuses;
use chrono::{DateTime, Utc};
use mailqueue_core::events::outcome_suppressions;
use mailqueue_core::store::{AttemptOutcome, Claim, ClaimedEmail, DueEmail, StoreError};
use mailqueue_core::suppression::suppression_key;
use mailqueue_core::{EmailAddress, EmailId, EmailStatus, EventId, SuppressionId};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

impl PgStore {
    /// One statement: the claim, the content, and `email.sent` for a
    /// scheduled email whose time came (its first claim; once).
    pub(super) async fn claim(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.claim_rows(ids, claim, "").await?;
        self.claimed_emails(&rows).await
    }

    /// Runs the claim statement (`prefix` is empty, or an `EXPLAIN` for
    /// the plan checks).
    pub(super) async fn claim_rows(
        &self,
        ids: &[EmailId],
        claim: &Claim,
        prefix: &str,
    ) -> Result<Vec<PgRow>, StoreError> {
        let ctx = "claiming emails";
        let uuids: Vec<Uuid> = ids.iter().map(|i| i.0).collect();
        let event_ids: Vec<Uuid> = ids.iter().map(|_| EventId::generate(claim.now).0).collect();
        let sql = with_statuses(
            "WITH claimed AS ( \
                 UPDATE emails SET status = {sending}, attempts = attempts + 1, lease_holder = $2, \
                     lease_expires_at = $3, first_attempt_at = COALESCE(first_attempt_at, $4), \
                     last_attempt_at = $4, next_attempt_at = NULL, updated_at = $4 \
                 WHERE id = ANY($1) AND status IN ({pending}) AND next_attempt_at <= $4 \
                 RETURNING id, message_id, priority, scheduled_at, created_at, attempts, first_attempt_at), \
             came_due AS ( \
                 INSERT INTO email_events (id, email_id, type, created_at, data) \
                 SELECT ($5::uuid[])[array_position($1::uuid[], claimed.id)], claimed.id, 'email.sent', $4, '{}' \
                 FROM claimed \
                 WHERE claimed.attempts = 1 AND claimed.scheduled_at > claimed.created_at \
                   AND NOT EXISTS (SELECT 1 FROM email_events AS ev \
                                   WHERE ev.email_id = claimed.id AND ev.type = 'email.sent') \
                 RETURNING id, type, created_at), \
             fan_out AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
                 SELECT w.id, came_due.id, 'pending', came_due.created_at, came_due.created_at \
                 FROM came_due JOIN webhooks AS w ON w.status = 'enabled' AND came_due.type = ANY (w.events)) \
             SELECT claimed.*, c.content::text AS content \
             FROM claimed JOIN email_contents AS c ON c.email_id = claimed.id",
        );
        sqlx::query(&format!("{prefix}{sql}"))
            .bind(&uuids)
            .bind(&claim.holder)
            .bind(claim.lease_expires_at)
            .bind(claim.now)
            .bind(&event_ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed_write(ctx, e))
    }

    /// The claimed emails of the claim's rows, with their attachments.
    async fn claimed_emails(&self, rows: &[PgRow]) -> Result<Vec<ClaimedEmail>, StoreError> {
        let mut claimed = Vec::with_capacity(rows.len());
        let mut infos = Vec::with_capacity(rows.len());
        for row in rows {
            let (email, attachments) = decode_content(
                &row.text("content")?,
                rows::priority(row)?.rank(),
                row.opt_time("scheduled_at")?,
            )?;
            infos.push(attachments);
            claimed.push(ClaimedEmail {
                id: row.id("id")?,
                message_id: row.text("message_id")?,
                created_at: row.time("created_at")?,
                email,
                attempt: row.int("attempts")? as u32,
                first_attempt_at: row.time("first_attempt_at")?,
                suppressed: Vec::new(),
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
            let files = sqlx::query(
                "SELECT email_id, content FROM email_attachments WHERE email_id = ANY($1) ORDER BY email_id, position",
            )
            .bind(&with_files)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("loading attachments", e))?;
            for row in files {
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

    /// Outcomes, their history, their events (with their webhook
    /// deliveries) and the addresses their bounces suppress, in one
    /// statement: the events and suppressions of an outcome that does not
    /// apply (a stale attempt) are filtered out by the statement itself.
    pub(super) async fn record(&self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        self.record_rows(outcomes, "").await.map(|_| ())
    }

    /// Runs the outcome statement (`prefix` as for [`Self::claim_rows`]).
    pub(super) async fn record_rows(
        &self,
        outcomes: &[AttemptOutcome],
        prefix: &str,
    ) -> Result<Vec<PgRow>, StoreError> {
        let rows = OutcomeRows::from(outcomes);
        let ids: Vec<Uuid> = rows.ids.iter().map(|i| i.0).collect();
        let every: Vec<EmailId> = outcomes.iter().map(|o| o.email_id).collect();
        let evs = events::outcomes(outcomes, &every);
        let bounced = Suppressions::from(outcomes);
        let sql = with_statuses(
            "WITH applied AS ( \
                 UPDATE emails AS e SET status = u.status, next_attempt_at = u.next_at, \
                     sent_at = COALESCE(u.sent_at, e.sent_at), last_error = u.error, \
                     last_smtp_reply = COALESCE(u.reply, e.last_smtp_reply), lease_holder = NULL, \
                     lease_expires_at = NULL, updated_at = u.finished \
                 FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[], $5::timestamptz[], \
                             $6::text[], $7::text[], $8::timestamptz[]) \
                      AS u(id, attempt, status, next_at, sent_at, error, reply, finished) \
                 WHERE e.id = u.id AND ((e.status = {sending} AND e.attempts = u.attempt) \
                     OR (u.status = {sent} AND e.status <> {sent})) \
                 RETURNING e.id), \
             history AS ( \
                 INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) \
                 SELECT * FROM UNNEST($1::uuid[], $2::int4[], $9::timestamptz[], $8::timestamptz[], \
                                      $10::text[], $11::int4[], $12::text[]) \
                      AS u(email_id, attempt, started_at, finished_at, outcome, smtp_code, detail) \
                 WHERE EXISTS (SELECT 1 FROM emails AS e WHERE e.id = u.email_id)), \
             ev AS ( \
                 INSERT INTO email_events (id, email_id, type, created_at, data) \
                 SELECT u.id, u.email_id, u.type, u.created_at, u.data::jsonb \
                 FROM UNNEST($13::uuid[], $14::uuid[], $15::text[], $16::timestamptz[], $17::text[]) \
                      AS u(id, email_id, type, created_at, data) \
                 WHERE u.email_id IN (SELECT id FROM applied) \
                 RETURNING id, type, created_at), \
             fan_out AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
                 SELECT w.id, ev.id, 'pending', ev.created_at, ev.created_at \
                 FROM ev JOIN webhooks AS w ON w.status = 'enabled' AND ev.type = ANY (w.events)), \
             suppressed AS ( \
                 INSERT INTO suppressions (id, email, origin, reason, email_id, created_at) \
                 SELECT u.id, u.email, 'bounce', u.reason, u.email_id, u.created_at \
                 FROM UNNEST($18::uuid[], $19::text[], $20::text[], $21::uuid[], $22::timestamptz[]) \
                      AS u(id, email, reason, email_id, created_at) \
                 WHERE u.email_id IN (SELECT id FROM applied) \
                 ON CONFLICT (email) DO NOTHING) \
             SELECT count(*) FROM applied",
        );
        sqlx::query(&format!("{prefix}{sql}"))
            .bind(&ids)
            .bind(&rows.attempts)
            .bind(&rows.statuses)
            .bind(&rows.next_at)
            .bind(&rows.sent_at)
            .bind(&rows.errors)
            .bind(&rows.replies)
            .bind(&rows.finished)
            .bind(&rows.started)
            .bind(&rows.kinds)
            .bind(&rows.codes)
            .bind(&rows.details)
            .bind(evs.iter().map(|e| e.id.0).collect::<Vec<Uuid>>())
            .bind(evs.iter().map(|e| e.email_id.0).collect::<Vec<Uuid>>())
            .bind(
                evs.iter()
                    .map(|e| e.event_type.as_str())
                    .collect::<Vec<&str>>(),
            )
            .bind(evs.iter().map(|e| e.created_at).collect::<Vec<_>>())
            .bind(evs.iter().map(|e| e.data.as_str()).collect::<Vec<&str>>())
            .bind(&bounced.ids)
            .bind(&bounced.emails)
            .bind(&bounced.reasons)
            .bind(&bounced.sources)
            .bind(&bounced.times)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("recording attempt outcomes", e))
    }

    /// Returns expired leases to the queue (or gives them up), with a
    /// `lease_expired` attempt and an event each.
    pub(super) async fn rescue(
        &self,
        now: DateTime<Utc>,
        give_up_before: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let statement = rescue_sql();
        let query = sqlx::query(&statement).bind(now).bind(give_up_before);
        self.move_interrupted(query, now, "rescuing expired leases")
            .await
    }

    /// Returns every email `holder` still leases to the queue (its attempt
    /// was cut short), with a `lease_expired` attempt and an event each.
    pub(super) async fn release(
        &self,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let statement = release_sql();
        let query = sqlx::query(&statement).bind(holder).bind(now);
        self.move_interrupted(query, now, "releasing leases").await
    }

    /// Runs a statement that moves interrupted emails, writes their events
    /// in the same transaction, and returns those back in the queue.
    async fn move_interrupted(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        now: DateTime<Utc>,
        ctx: &str,
    ) -> Result<Vec<DueEmail>, StoreError> {
        let moved = async {
            let mut tx = self.pool.begin().await.map_err(|e| store_error(ctx, e))?;
            let moved: Vec<PgRow> = query
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error(ctx, e))?;
            let mut evs: Vec<EventRow> = Vec::with_capacity(moved.len());
            let mut back = Vec::new();
            for row in &moved {
                let status = rows::status(row)?;
                let detail = row.opt_text("last_error")?.unwrap_or_default();
                evs.push(events::interrupted(row.id("id")?, now, status, &detail));
                if status == EmailStatus::Queued {
                    back.push(rows::due(row)?);
                }
            }
            write_events(&mut tx, &evs).await?;
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(back)
        }
        .await;
        self.health.record(&moved);
        moved
    }
}

/// Expired leases (`$1` now, `$2` give up before), moved back or failed.
pub(super) fn rescue_sql() -> String {
    with_statuses(
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
         SELECT id, status, next_attempt_at, priority, last_error FROM moved",
    )
}

/// The leases of holder `$1`, returned to the queue at `$2`.
pub(super) fn release_sql() -> String {
    with_statuses(
        "WITH moved AS ( \
             UPDATE emails SET status = {queued}, next_attempt_at = $2, lease_holder = NULL, \
                 lease_expires_at = NULL, updated_at = $2, \
                 last_error = 'the attempt was interrupted when its worker stopped' \
             WHERE status = {sending} AND lease_holder = $1 \
             RETURNING id, status, next_attempt_at, priority, attempts, last_attempt_at, last_error), \
         history AS ( \
             INSERT INTO email_attempts (email_id, attempt, started_at, finished_at, outcome, detail) \
             SELECT id, attempts, COALESCE(last_attempt_at, $2), $2, 'lease_expired', last_error FROM moved) \
         SELECT id, status, next_attempt_at, priority, last_error FROM moved",
    )
}

/// The recipients that bounced for good (refused at `RCPT TO` as
/// unknown), as columns for the suppression list (origin `bounce`).
#[derive(Default)]
struct Suppressions {
    ids: Vec<Uuid>,
    emails: Vec<String>,
    reasons: Vec<String>,
    sources: Vec<Uuid>,
    times: Vec<DateTime<Utc>>,
}

impl From<&[AttemptOutcome]> for Suppressions {
    fn from(outcomes: &[AttemptOutcome]) -> Self {
        let mut s = Suppressions::default();
        for o in outcomes {
            for r in outcome_suppressions(o) {
                let key = EmailAddress::parse(&r.address)
                    .map(|a| suppression_key(&a))
                    .unwrap_or_else(|_| r.address.clone());
                s.ids.push(SuppressionId::generate(o.finished_at).0);
                s.emails.push(key);
                s.reasons.push(r.reply.to_string());
                s.sources.push(o.email_id.0);
                s.times.push(o.finished_at);
            }
        }
        s
    }
}
