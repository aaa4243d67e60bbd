//! Retention and table upkeep, run by the maintenance leader.
//!
//! A pass deletes finished emails older than the retention (and first
//! drops the contents of those older than the content retention) in small
//! batches, each one short statement. Between batches it pauses in
//! proportion to what the batch cost: nineteen times as long while this
//! process is delivering (a twentieth of one connection's time), as long again
//! when it is idle (half). So a backlog of expired emails (the first pass
//! on an old store) yields to sending and is worked off fast when there is
//! nothing to send. The pass runs in its own task, beside the leader's
//! rescues and reconciles, and stops when this process loses the lead.

use crate::lease_book::LeaseBook;
use crate::Delivery;
use mailqueue_core::store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Emails per statement: small enough for a short transaction.
const BATCH: u32 = 500;
/// Pause after a batch, as a multiple of the batch's duration, while this
/// process has emails claimed or sending.
const PAUSE_BUSY: u32 = 19;
/// The same while it has none.
const PAUSE_IDLE: u32 = 1;
/// The shortest pause, so claims and outcomes always interleave.
const PAUSE_MIN: Duration = Duration::from_millis(5);

/// Whether a pass ran to its end or was cut short.
#[derive(Debug, PartialEq, Eq)]
enum PassEnd {
    /// Nothing expired is left.
    Finished,
    /// Stopping, or another process leads now.
    Interrupted,
}

/// What to wait for between batches and passes.
struct Signals {
    book: Arc<LeaseBook>,
    leading: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
}

impl Signals {
    /// Stopping, or the handle that stops the workers is gone.
    fn stopped(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    fn go_on(&self) -> bool {
        *self.leading.borrow() && !self.stopped()
    }

    /// Sleeps `pause`; false if the process stops or loses the lead meanwhile.
    async fn wait(&mut self, pause: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.stop.changed() => {}
            _ = self.leading.changed() => {}
        }
        self.go_on()
    }

    /// The pause after a batch that took `cost`.
    fn pause_after(&self, cost: Duration) -> Duration {
        let factor = if self.book.is_empty() {
            PAUSE_IDLE
        } else {
            PAUSE_BUSY
        };
        (cost * factor).max(PAUSE_MIN)
    }
}

/// Applies retention whenever this process leads the fleet's maintenance
/// (`leading`), every `retention_interval`, until `stop`.
pub async fn run(
    d: Arc<Delivery>,
    book: Arc<LeaseBook>,
    leading: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) {
    let mut s = Signals {
        book,
        leading,
        stop,
    };
    loop {
        if s.stopped() {
            return;
        }
        if !*s.leading.borrow_and_update() {
            tokio::select! {
                changed = s.leading.changed() => {
                    if changed.is_err() {
                        // The maintenance loop ended: no lead again.
                        let _ = s.stop.changed().await;
                    }
                }
                _ = s.stop.changed() => {}
            }
            continue;
        }
        if d.settings.retention.keeps_everything() {
            observe_oldest(&d).await;
        } else {
            match pass(&d, &mut s).await {
                Ok(PassEnd::Finished) => observe_oldest(&d).await,
                Ok(PassEnd::Interrupted) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "applying retention failed; trying again later")
                }
            }
        }
        let _ = s.wait(d.settings.retention_interval).await;
    }
}

/// One pass: contents first (their batches shrink the rows the deletions
/// later cascade through), then emails, then idempotency keys,
/// unclassified reports and account events.
async fn pass(d: &Delivery, s: &mut Signals) -> Result<PassEnd, StoreError> {
    let cut = d.settings.retention.cutoffs(d.clock.now());
    let store = d.store.as_ref();
    let (mut contents, mut emails) = (0u64, 0u64);
    let end = 'pass: {
        if let Some(before) = cut.contents {
            let now = d.clock.now();
            let purge = || store.purge_email_contents(before, now, BATCH);
            if !in_batches(d, s, "contents", &mut contents, purge).await? {
                break 'pass PassEnd::Interrupted;
            }
        }
        if let Some(before) = cut.emails {
            let purge = || store.purge_finished_emails(before, BATCH);
            if !in_batches(d, s, "emails", &mut emails, purge).await? {
                break 'pass PassEnd::Interrupted;
            }
            // Idempotency keys older than the emails they could answer for.
            store.purge_idempotency_keys(before).await?;
            // Reports nobody could apply, kept as long as emails are.
            let purge = || store.purge_unclassified_reports(before, BATCH);
            let mut reports = 0;
            if !in_batches(d, s, "unclassified_reports", &mut reports, purge).await? {
                break 'pass PassEnd::Interrupted;
            }
            // Account events, and their deliveries, kept as long as emails are.
            let purge = || store.purge_account_events(before, BATCH);
            let mut events = 0;
            if !in_batches(d, s, "account_events", &mut events, purge).await? {
                break 'pass PassEnd::Interrupted;
            }
        }
        PassEnd::Finished
    };
    if emails > 0 || contents > 0 {
        tracing::info!(
            emails,
            contents,
            finished = end == PassEnd::Finished,
            "retention removed finished emails and contents"
        );
    }
    Ok(end)
}

/// Runs `purge` batch after batch, pausing after each, until a batch comes
/// back short (true) or the pass is interrupted (false); adds to `total`.
async fn in_batches<F, Fut>(
    d: &Delivery,
    s: &mut Signals,
    what: &'static str,
    total: &mut u64,
    purge: F,
) -> Result<bool, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    loop {
        let started = Instant::now();
        let n = purge().await?;
        *total += n;
        count(d, what, n);
        if n < u64::from(BATCH) {
            return Ok(true);
        }
        if !s.wait(s.pause_after(started.elapsed())).await {
            return Ok(false);
        }
    }
}

fn count(d: &Delivery, what: &'static str, n: u64) {
    if n > 0 {
        d.metrics
            .retention_purged
            .get_or_create(&[("what", what)])
            .inc_by(n);
    }
}

/// Sets the gauge of the oldest email kept.
pub async fn observe_oldest(d: &Delivery) {
    match d.store.oldest_email_created_at().await {
        Ok(oldest) => {
            d.metrics
                .oldest_email_created
                .set(oldest.map_or(0, |at| at.timestamp()));
        }
        Err(e) => tracing::warn!(error = %e, "finding the oldest email failed"),
    }
}

/// Refreshes stale statistics of the queue tables.
pub async fn tend_tables(d: &Delivery) {
    match d.store.tend_tables().await {
        Ok(tended) if !tended.is_empty() => {
            tracing::info!(tables = ?tended, "refreshed the statistics of queue tables")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "refreshing the statistics of queue tables failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease_book::tests::claimed;
    use mailqueue_core::EmailId;

    fn signals(book: Arc<LeaseBook>) -> Signals {
        Signals {
            book,
            leading: watch::channel(true).1,
            stop: watch::channel(false).1,
        }
    }

    #[test]
    fn a_pass_yields_more_while_this_process_delivers() {
        let book = Arc::new(LeaseBook::default());
        let s = signals(book.clone());
        let cost = Duration::from_millis(40);
        assert_eq!(s.pause_after(cost), cost * PAUSE_IDLE);
        let now = chrono::Utc::now();
        book.hold(&[claimed(EmailId::generate(now), 1)], now);
        assert_eq!(s.pause_after(cost), cost * PAUSE_BUSY);
        assert_eq!(s.pause_after(Duration::ZERO), PAUSE_MIN);
    }
}
