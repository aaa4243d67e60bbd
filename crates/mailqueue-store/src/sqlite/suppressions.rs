//! The suppression list in SQLite (statements in `shared::suppressions`);
//! writes go through the one writer connection.

use super::{bound, SqliteStore};
use crate::errors::store_error;
use crate::shared::suppressions as statements;
use crate::shared::Dialect;
use async_trait::async_trait;
use mailqueue_core::store::StoreError;
use mailqueue_core::suppression::{
    Suppression, SuppressionQuery, SuppressionRef, SuppressionStore,
};
use sqlx::Connection;

#[async_trait]
impl SuppressionStore for SqliteStore {
    async fn add_suppressions(
        &self,
        entries: &[Suppression],
    ) -> Result<Vec<Suppression>, StoreError> {
        let ctx = "adding suppressions";
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            let mut listed = Vec::with_capacity(entries.len());
            for s in entries {
                bound(&statements::insert(Dialect::Sqlite, s))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
                let row = bound(&statements::get(&SuppressionRef::Email(s.email.clone())))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?;
                listed.push(statements::row(&row)?);
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(listed)
        }
        .await;
        w.settle(result)
    }

    async fn list_suppressions(
        &self,
        query: &SuppressionQuery,
    ) -> Result<Vec<Suppression>, StoreError> {
        bound(&statements::list(query))
            .fetch_all(&self.readers)
            .await
            .map_err(|e| store_error("listing suppressions", e))?
            .iter()
            .map(statements::row)
            .collect()
    }

    async fn get_suppression(
        &self,
        entry: &SuppressionRef,
    ) -> Result<Option<Suppression>, StoreError> {
        bound(&statements::get(entry))
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| store_error("reading a suppression", e))?
            .as_ref()
            .map(statements::row)
            .transpose()
    }

    async fn remove_suppressions(
        &self,
        entries: &[SuppressionRef],
    ) -> Result<Vec<Option<Suppression>>, StoreError> {
        let ctx = "removing suppressions";
        let mut w = self.writer.acquire().await?;
        let result = async {
            let mut tx = w.begin().await.map_err(|e| store_error(ctx, e))?;
            let mut removed = Vec::with_capacity(entries.len());
            for entry in entries {
                let found = bound(&statements::get(entry))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| store_error(ctx, e))?
                    .as_ref()
                    .map(statements::row)
                    .transpose()?;
                if let Some(s) = &found {
                    bound(&statements::delete(s.id))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| store_error(ctx, e))?;
                }
                removed.push(found);
            }
            tx.commit().await.map_err(|e| store_error(ctx, e))?;
            Ok(removed)
        }
        .await;
        w.settle(result)
    }
}
