//! The delivery side in PostgreSQL: claims, outcomes and interrupted
//! attempts, each with its events in the same transaction (or statement).

use super::PgStore;
use crate::content::{attach_files, decode_content, has_files};
use crate::errors::store_error;
use crate::outcome::OutcomeRows;
use crate::shared::rows::{self, RowReader};
use crate::shared::{outcome_applies, with_names};
use mailqueue_core::store::{AttemptOutcome, Claim, ClaimedEmail, StoreError};
use mailqueue_core::transition::WrittenEvents;
use mailqueue_core::{EmailId, EventId};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

impl PgStore {
    /// One statement: the claim, the content, and `email.sent` for a
    /// scheduled email whose time came (`transition::comes_due`, in SQL).
    pub(crate) async fn claim(
        &self,
        ids: &[EmailId],
        claim: &Claim,
    ) -> Result<Vec<ClaimedEmail>, StoreError> {
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
        let sql = with_names(
            "WITH claimed AS ( \
                 UPDATE emails SET status = {sending}, claims = claims + 1, lease_holder = $2, \
                     lease_expires_at = $3, next_attempt_at = NULL, updated_at = $4 \
                 WHERE id = ANY($1) AND status IN ({pending}) AND next_attempt_at <= $4 \
                 RETURNING id, message_id, priority, scheduled_at, created_at, attempts + 1 AS attempt, \
                     claims, COALESCE(first_attempt_at, $4) AS first_attempt_at), \
             came_due AS ( \
                 INSERT INTO email_events (id, email_id, type, created_at, data) \
                 SELECT ($5::uuid[])[array_position($1::uuid[], claimed.id)], claimed.id, {event_sent}, $4, '{}' \
                 FROM claimed \
                 WHERE claimed.attempt = 1 AND claimed.scheduled_at > claimed.created_at \
                   AND NOT EXISTS (SELECT 1 FROM email_events AS ev \
                                   WHERE ev.email_id = claimed.id AND ev.type = {event_sent}) \
                 RETURNING id, email_id, type, created_at), \
             fan_out AS ( \
                 INSERT INTO webhook_deliveries (webhook_id, event_id, status, next_attempt_at, created_at) \
                 SELECT w.id, came_due.id, {delivery_pending}, came_due.created_at, came_due.created_at \
                 FROM came_due JOIN webhooks AS w ON w.status = {webhook_enabled} AND came_due.type = ANY (w.events)) \
             SELECT claimed.*, c.content::text AS content, came_due.id IS NOT NULL AS came_due \
             FROM claimed JOIN email_contents AS c ON c.email_id = claimed.id \
                 LEFT JOIN came_due ON came_due.email_id = claimed.id",
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
            let mut email = rows::claimed(row, email)?;
            email.came_due = row
                .try_get("came_due")
                .map_err(|e| store_error("claiming emails", e))?;
            claimed.push(email);
        }
        let with_files: Vec<Uuid> = claimed
            .iter()
            .zip(&infos)
            .filter(|(c, i)| has_files(&c.email, i))
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
            if has_files(&email.email, &info) {
                let files = bytes.remove(&email.id.0).unwrap_or_default();
                attach_files(&mut email.email, info, files)?;
            }
        }
        Ok(claimed)
    }

    /// Outcomes, their history, their events (with their webhook
    /// deliveries) and the addresses their bounces suppress, in one
    /// statement: the events and suppressions of an outcome that does not
    /// apply (a stale attempt) are filtered out by the statement itself.
    pub(crate) async fn record(
        &self,
        outcomes: &[AttemptOutcome],
    ) -> Result<WrittenEvents, StoreError> {
        let written = async {
            self.record_rows(outcomes, "")
                .await?
                .iter()
                .map(|row| row.text("type")?.parse().map_err(StoreError::Corrupt))
                .collect()
        }
        .await;
        self.health.record(&written);
        written
    }

    /// Runs the outcome statement (`prefix` as for [`Self::claim_rows`]).
    pub(super) async fn record_rows(
        &self,
        outcomes: &[AttemptOutcome],
        prefix: &str,
    ) -> Result<Vec<PgRow>, StoreError> {
        let rows = OutcomeRows::from(outcomes);
        let ids: Vec<Uuid> = rows.ids.iter().map(|i| i.0).collect();
        let evs = &rows.events;
        let bounced = &rows.suppressions;
        let sql = with_names(
            "WITH applied AS ( \
                 UPDATE emails AS e SET status = u.status, next_attempt_at = u.next_at, \
                     attempts = GREATEST(e.attempts, u.attempt), \
                     first_attempt_at = COALESCE(e.first_attempt_at, u.started), last_attempt_at = u.started, \
                     sent_at = COALESCE(u.sent_at, e.sent_at), last_error = u.error, \
                     last_smtp_reply = COALESCE(u.reply, e.last_smtp_reply), lease_holder = NULL, \
                     lease_expires_at = NULL, updated_at = u.finished \
                 FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::timestamptz[], $5::timestamptz[], \
                             $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[], $23::int4[]) \
                      AS u(id, attempt, status, next_at, sent_at, error, reply, finished, started, claim) \
                 WHERE e.id = u.id AND {applies} \
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
                 SELECT w.id, ev.id, {delivery_pending}, ev.created_at, ev.created_at \
                 FROM ev JOIN webhooks AS w ON w.status = {webhook_enabled} AND ev.type = ANY (w.events)), \
             suppressed AS ( \
                 INSERT INTO suppressions (id, email, origin, reason, email_id, created_at) \
                 SELECT u.id, u.email, {origin_bounce}, u.reason, u.email_id, u.created_at \
                 FROM UNNEST($18::uuid[], $19::text[], $20::text[], $21::uuid[], $22::timestamptz[]) \
                      AS u(id, email, reason, email_id, created_at) \
                 WHERE u.email_id IN (SELECT id FROM applied) \
                 ON CONFLICT (email) DO NOTHING) \
             SELECT type FROM ev",
        )
        .replace("{applies}", &outcome_applies("e", "u"));
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
            .bind(bounced.iter().map(|b| b.id.0).collect::<Vec<Uuid>>())
            .bind(
                bounced
                    .iter()
                    .map(|b| b.email.as_str())
                    .collect::<Vec<&str>>(),
            )
            .bind(
                bounced
                    .iter()
                    .map(|b| b.reason.as_str())
                    .collect::<Vec<&str>>(),
            )
            .bind(bounced.iter().map(|b| b.email_id.0).collect::<Vec<Uuid>>())
            .bind(bounced.iter().map(|b| b.created_at).collect::<Vec<_>>())
            .bind(&rows.claims)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("recording attempt outcomes", e))
    }
}
