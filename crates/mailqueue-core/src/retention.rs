//! Retention: how long finished emails are kept, and the store operations
//! that forget them.
//!
//! An email that reached a terminal status (sent, failed, cancelled) more
//! than `emails` ago is deleted with everything that hangs off it; its
//! bodies and attachment bytes may go earlier, after `contents`, leaving
//! the metadata. The cut-offs are computed "as of" a given time, so tests
//! and the maintenance loop evaluate them with an injected clock.

use crate::error::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// How long finished emails and their contents are kept; `None` keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub emails: Option<Duration>,
    pub contents: Option<Duration>,
}

/// What a retention pass deletes, as of one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionCutoffs {
    /// Emails finished before this go entirely.
    pub emails: Option<DateTime<Utc>>,
    /// Emails finished before this lose their bodies and attachment bytes.
    pub contents: Option<DateTime<Utc>>,
}

impl RetentionPolicy {
    /// `contents` longer than `emails` is the same as `emails`: an email
    /// never keeps its contents longer than itself.
    pub fn new(emails: Option<Duration>, contents: Option<Duration>) -> Self {
        let contents = match (emails, contents) {
            (Some(e), Some(c)) if c >= e => None,
            (_, c) => c,
        };
        Self { emails, contents }
    }

    pub fn keeps_everything(&self) -> bool {
        self.emails.is_none() && self.contents.is_none()
    }

    pub fn cutoffs(&self, now: DateTime<Utc>) -> RetentionCutoffs {
        RetentionCutoffs {
            emails: self.emails.map(|d| now - d),
            contents: self.contents.map(|d| now - d),
        }
    }
}

/// The store side of retention and of keeping the store's cost flat; only
/// the maintenance leader calls these. Each call does one small batch, so
/// no lock is held long and delivery goes on between batches.
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Deletes up to `limit` emails that reached a terminal status before
    /// `finished_before`, with their contents, attachments, attempts and
    /// events (and those events' webhook deliveries). Returns how many.
    async fn purge_finished_emails(
        &self,
        finished_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Drops the text and HTML bodies and the attachment bytes of up to
    /// `limit` emails that reached a terminal status before
    /// `finished_before` and still have them, marking them purged at `now`.
    /// Returns how many.
    async fn purge_email_contents(
        &self,
        finished_before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Deletes up to `limit` unclassified reports received before
    /// `received_before`. Returns how many.
    async fn purge_unclassified_reports(
        &self,
        received_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Deletes up to `limit` account events (`domain.*`) created before
    /// `created_before`, with their webhook deliveries. Returns how many.
    async fn purge_account_events(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// When the oldest email still stored was created.
    async fn oldest_email_created_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Refreshes the statistics of the queue tables whose statistics are
    /// stale (and, where the database keeps dead rows, vacuums those with
    /// many), so plans and scans do not depend on the database's own
    /// maintenance settings. Returns the tables it tended.
    async fn tend_tables(&self) -> Result<Vec<String>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn contents_kept_longer_than_emails_follow_the_emails() {
        let p = RetentionPolicy::new(Some(Duration::days(30)), Some(Duration::days(60)));
        assert_eq!(p.contents, None);
        let p = RetentionPolicy::new(Some(Duration::days(30)), Some(Duration::days(7)));
        assert_eq!(p.contents, Some(Duration::days(7)));
    }

    #[test]
    fn cutoffs_are_as_of_the_given_time() {
        let now = Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap();
        let p = RetentionPolicy::new(Some(Duration::days(30)), Some(Duration::days(7)));
        let c = p.cutoffs(now);
        assert_eq!(
            c.emails,
            Some(Utc.with_ymd_and_hms(2026, 5, 31, 0, 0, 0).unwrap())
        );
        assert_eq!(
            c.contents,
            Some(Utc.with_ymd_and_hms(2026, 6, 23, 0, 0, 0).unwrap())
        );
        assert!(RetentionPolicy::new(None, None).keeps_everything());
    }
}
