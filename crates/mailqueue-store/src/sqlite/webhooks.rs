//! Webhooks and their outbox in SQLite (statements in
//! `shared::webhooks`); writes go through the one writer connection.

use super::{bound, SqliteStore};
use crate::errors::store_error;
use crate::shared::webhooks as statements;
use crate::shared::Dialect::Sqlite as Dialect;
use mailqueue_core::store::StoreError;
use mailqueue_core::webhooks::{ClaimedDelivery, DeliveryClaim, DeliveryReport, DisablePolicy};
use sqlx::{Connection, Row};

impl SqliteStore {
    /// Claims due deliveries (see `shared::webhook_store`).
    pub(crate) async fn claim_deliveries(
        &self,
        claim: &DeliveryClaim,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let ctx = "claiming webhook deliveries";
        let mut w = self.writer.acquire().await?;
        let result = async {
            let keys = bound(&statements::claim_sqlite(claim))
                .fetch_all(&mut *w)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| {
                    let webhook: String =
                        r.try_get("webhook_id").map_err(|e| store_error(ctx, e))?;
                    let event: String = r.try_get("event_id").map_err(|e| store_error(ctx, e))?;
                    Ok((parse_id(&webhook)?, parse_id(&event)?))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            bound(&statements::claimed_sqlite(&claim.holder, &keys))
                .fetch_all(&mut *w)
                .await
                .map_err(|e| store_error(ctx, e))?
                .iter()
                .map(|r| statements::claimed_row(r, claim.now))
                .collect()
        }
        .await;
        w.settle(result)
    }

    /// Records what became of claimed deliveries.
    pub(crate) async fn record_deliveries(
        &self,
        holder: &str,
        reports: &[DeliveryReport],
        policy: &DisablePolicy,
    ) -> Result<(), StoreError> {
        let ctx = "recording webhook deliveries";
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            for r in reports {
                let moved = bound(&statements::record_delivery(holder, r))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?
                    .rows_affected()
                    > 0;
                if statements::attempt_row_needed(r, moved) {
                    bound(&statements::record_attempt(Dialect, r))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(ctx, e))?;
                }
            }
            for st in &statements::record_health(reports, policy) {
                bound(st)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))
        }
        .await;
        w.settle(result)
    }
}

fn parse_id<T: std::str::FromStr>(raw: &str) -> Result<T, StoreError> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("stored id `{raw}` is not a UUID")))
}
