//! Emails as both stores keep them, written once: the reads, the changes
//! an API call asks for, lease renewal and recovery, and the suppression
//! lookup, and the deferral. What differs by dialect (the batch insert,
//! the claim and the outcomes) is each store's own `claim` and `record`.

use super::event_rows;
use super::executor::{on_both_stores, Db};
use super::interrupted::{self, Moves};
use super::rows::{self, RowReader};
use super::{statements, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::events::EmailEvent;
use mailqueue_core::store::{
    AttemptOutcome, AttemptRecord, ChangeOutcome, Claim, ClaimedEmail, DeliveryStore, DueEmail,
    EmailChanges, EmailReads, EmailRecord, HeldClaim, LeaseRecovery, ListQuery, QueueStats,
    Recovered, StoreError, SuppressedRecipient,
};
use mailqueue_core::transition::{ChangeKind, Interruption, WrittenEvents};
use mailqueue_core::{EmailAddress, EmailId};

/// Claims per deferral statement (two parameters each).
const DEFER_CHUNK: usize = 1_000;

on_both_stores! {
    impl EmailChanges {
        async fn reschedule_email(
            &self,
            id: EmailId,
            at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<ChangeOutcome, StoreError> {
            let db = self.db();
            let change = statements::reschedule(db.dialect(), id, at, now);
            change_email(db, id, change, ChangeKind::Reschedule, now).await
        }

        async fn cancel_email(
            &self,
            id: EmailId,
            now: DateTime<Utc>,
        ) -> Result<ChangeOutcome, StoreError> {
            let db = self.db();
            let change = statements::cancel(db.dialect(), id, now);
            change_email(db, id, change, ChangeKind::Cancel, now).await
        }

        async fn retry_failed_email(
            &self,
            id: EmailId,
            now: DateTime<Utc>,
        ) -> Result<ChangeOutcome, StoreError> {
            let change = statements::retry_failed(id, now);
            change_email(self.db(), id, change, ChangeKind::Retry, now).await
        }
    }
}

on_both_stores! {
    impl EmailReads {
        async fn get_email(&self, id: EmailId) -> Result<Option<EmailRecord>, StoreError> {
            let db = self.db();
            db.fetch_optional("reading an email", &statements::get_email(db.dialect(), id))
                .await?
                .as_ref()
                .map(rows::record)
                .transpose()
        }

        async fn list_emails(&self, query: &ListQuery) -> Result<Vec<EmailRecord>, StoreError> {
            let db = self.db();
            let found = db
                .fetch_all("listing emails", &statements::list_emails(db.dialect(), query))
                .await?;
            let mut records = found.iter().map(rows::record).collect::<Result<Vec<_>, _>>()?;
            if query.before.is_some() {
                records.reverse();
            }
            Ok(records)
        }

        async fn list_attempts(&self, id: EmailId) -> Result<Vec<AttemptRecord>, StoreError> {
            self.db()
                .fetch_all("listing attempts", &statements::list_attempts(id))
                .await?
                .iter()
                .map(rows::attempt)
                .collect()
        }

        async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats, StoreError> {
            let db = self.db();
            let counted = db
                .fetch_all("counting emails", &statements::count_unfinished())
                .await?;
            let oldest = db
                .fetch_optional("finding the oldest due email", &statements::oldest_due(now))
                .await?
                .ok_or_else(|| StoreError::Corrupt("the oldest due email: no row".into()))?;
            rows::queue_stats(&counted, &oldest)
        }

        async fn list_email_events(&self, id: EmailId) -> Result<Vec<EmailEvent>, StoreError> {
            let db = self.db();
            db.fetch_all("listing events", &statements::list_events(db.dialect(), id))
                .await?
                .iter()
                .map(rows::event)
                .collect()
        }
    }
}

on_both_stores! {
    impl DeliveryStore {
        async fn claim_emails(
            &self,
            ids: &[EmailId],
            claim: &Claim,
        ) -> Result<Vec<ClaimedEmail>, StoreError> {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            self.claim(ids, claim).await
        }

        async fn record_outcomes(
            &self,
            outcomes: &[AttemptOutcome],
        ) -> Result<WrittenEvents, StoreError> {
            if outcomes.is_empty() {
                return Ok(WrittenEvents::default());
            }
            self.record(outcomes).await
        }

        async fn renew_leases(
            &self,
            holder: &str,
            now: DateTime<Utc>,
            until: DateTime<Utc>,
        ) -> Result<Vec<EmailId>, StoreError> {
            let st = statements::renew_leases(holder, now, until);
            self.db()
                .write_rows("renewing leases", &st)
                .await?
                .iter()
                .map(|row| row.id("id"))
                .collect()
        }

        async fn defer_claims(
            &self,
            holder: &str,
            claims: &[HeldClaim],
            due_at: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<Vec<DueEmail>, StoreError> {
            let mut deferred = Vec::with_capacity(claims.len());
            for part in claims.chunks(DEFER_CHUNK) {
                let st = statements::defer_claims(holder, part, due_at, now);
                for row in self.db().write_rows("deferring claims", &st).await? {
                    deferred.push(rows::due(&row)?);
                }
            }
            Ok(deferred)
        }

        async fn suppressed_among(
            &self,
            addresses: &[EmailAddress],
        ) -> Result<Vec<SuppressedRecipient>, StoreError> {
            if addresses.is_empty() {
                return Ok(Vec::new());
            }
            let keys = super::suppression_keys(addresses);
            let wanted: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
            let found = self
                .db()
                .fetch_all("looking up suppressions", &statements::suppressed_among(&wanted))
                .await?;
            rows::suppressed(&found, &keys)
        }
    }
}

on_both_stores! {
    impl LeaseRecovery {
        async fn rescue_expired_leases(
            &self,
            now: DateTime<Utc>,
            give_up_before: DateTime<Utc>,
        ) -> Result<Recovered, StoreError> {
            let db = self.db();
            let expired = interrupted::expired_leases(db.dialect(), now);
            let why = |holder| Interruption::LeaseExpired {
                holder,
                give_up_before,
            };
            move_interrupted(db, "rescuing expired leases", expired, now, why).await
        }

        async fn release_leases(
            &self,
            holder: &str,
            now: DateTime<Utc>,
        ) -> Result<Recovered, StoreError> {
            let db = self.db();
            let leased = interrupted::leases_of(db.dialect(), holder);
            let why = |_| Interruption::WorkerStopped;
            move_interrupted(db, "releasing leases", leased, now, why).await
        }

        async fn pending_emails(
            &self,
            after: Option<EmailId>,
            limit: u32,
        ) -> Result<Vec<DueEmail>, StoreError> {
            self.db()
                .fetch_all("listing pending emails", &statements::pending_emails(after, limit))
                .await?
                .iter()
                .map(rows::due)
                .collect()
        }
    }
}

/// Runs a single-row change (`statements::reschedule`, …) and writes its
/// event in the same transaction; says why when no row changed.
async fn change_email(
    db: Db<'_>,
    id: EmailId,
    change: Statement,
    kind: ChangeKind,
    now: DateTime<Utc>,
) -> Result<ChangeOutcome, StoreError> {
    let mut tx = db.begin("changing an email").await?;
    let changed = async {
        let Some(row) = tx.fetch_optional(&change).await? else {
            return Ok(None);
        };
        let due = rows::due(&row)?;
        let written = event_rows::changed(id, now, kind, rows::status(&row)?);
        tx.write_events(&written).await?;
        Ok(Some((due, event_rows::written(&written))))
    }
    .await;
    if let Some((due, written)) = tx.finish(changed).await? {
        return Ok(ChangeOutcome::Changed(due, written));
    }
    let row = db
        .fetch_optional("reading an email's status", &statements::status_of(id))
        .await?;
    Ok(match row {
        None => ChangeOutcome::NotFound,
        Some(row) => ChangeOutcome::TooLate(rows::status(&row)?),
    })
}

/// Moves the emails `select` finds (locking them where the dialect can) as
/// `why` decides, with a `lease_expired` attempt and an event each, in one
/// transaction.
async fn move_interrupted(
    db: Db<'_>,
    ctx: &str,
    select: Statement,
    now: DateTime<Utc>,
    why: impl Fn(Option<String>) -> Interruption + Send,
) -> Result<Recovered, StoreError> {
    let mut tx = db.begin(ctx).await?;
    let moved = async {
        let selected = tx.fetch_all(&select).await?;
        let moves = Moves::decide(&selected, now, why)?;
        for st in moves.statements() {
            tx.execute(&st).await?;
        }
        tx.write_events(&moves.events()).await?;
        Ok(moves.recovered())
    }
    .await;
    tx.finish(moved).await
}
