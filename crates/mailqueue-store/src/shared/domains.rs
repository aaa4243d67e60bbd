//! Sending domains, written once for both stores. A domain is one row;
//! every write after its creation is fenced by its revision.

use super::account_events;
use super::executor::{on_both_stores, Db};
use super::rows::RowReader;
use super::{Param, Statement};
use chrono::{DateTime, Utc};
use mailqueue_core::domains::{
    DkimKey, Domain, DomainName, DomainPage, DomainStore, RecordStatuses, Region, TlsPolicy,
    VerificationStatus,
};
use mailqueue_core::store::StoreError;
use mailqueue_core::webhooks::AccountEvent;
use mailqueue_core::DomainId;
use serde::{Deserialize, Serialize};

const COLUMNS: &str = "id, name, status, region, custom_return_path, settings, dkim_keys, \
     records, created_at, verify_requested_at, checked_at, next_check_at, revision";

/// The `settings` column.
#[derive(Serialize, Deserialize)]
struct Settings {
    open_tracking: bool,
    click_tracking: bool,
    tls: String,
    tracking_subdomain: Option<String>,
}

fn corrupt(what: &'static str) -> impl Fn(String) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encoding a domain: {e}")))
}

/// The columns a write sets, in [`COLUMNS`] order after `id`.
fn values(d: &Domain) -> Result<Vec<Param>, StoreError> {
    let settings = Settings {
        open_tracking: d.open_tracking,
        click_tracking: d.click_tracking,
        tls: d.tls.as_str().into(),
        tracking_subdomain: d.tracking_subdomain.clone(),
    };
    Ok(vec![
        Param::Text(d.name.as_str().into()),
        Param::Text(d.status.as_str().into()),
        Param::Text(d.region.as_str().into()),
        Param::Text(d.custom_return_path.clone()),
        Param::Text(json(&settings)?),
        Param::Text(json(&d.dkim_keys)?),
        Param::Text(json(&d.records)?),
        Param::Time(d.created_at),
        Param::OptTime(d.verify_requested_at),
        Param::OptTime(d.checked_at),
        Param::OptTime(d.next_check_at),
    ])
}

fn insert(d: &Domain) -> Result<Statement, StoreError> {
    let mut st = Statement::new("").with(Param::Uuid(d.id.0));
    st.params.extend(values(d)?);
    st.sql = format!(
        "INSERT INTO domains ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0) \
         ON CONFLICT (name) DO NOTHING"
    );
    Ok(st)
}

fn update(d: &Domain) -> Result<Statement, StoreError> {
    let mut st = Statement::new("").with(Param::Uuid(d.id.0));
    st.params.extend(values(d)?);
    st.params.push(Param::Int(d.revision));
    st.sql = "UPDATE domains SET name = $2, status = $3, region = $4, custom_return_path = $5, \
              settings = $6, dkim_keys = $7, records = $8, created_at = $9, \
              verify_requested_at = $10, checked_at = $11, next_check_at = $12, \
              revision = revision + 1 WHERE id = $1 AND revision = $13"
        .into();
    Ok(st)
}

fn domain(row: &impl RowReader) -> Result<Domain, StoreError> {
    let settings: Settings = serde_json::from_str(&row.text("settings")?)
        .map_err(|e| corrupt("a domain's settings")(e.to_string()))?;
    let keys: Vec<DkimKey> = serde_json::from_str(&row.text("dkim_keys")?)
        .map_err(|e| corrupt("a domain's keys")(e.to_string()))?;
    let records: RecordStatuses = serde_json::from_str(&row.text("records")?)
        .map_err(|e| corrupt("a domain's records")(e.to_string()))?;
    let status = row.text("status")?;
    let region = row.text("region")?;
    Ok(Domain {
        id: DomainId(row.uuid("id")?),
        name: DomainName::parse(&row.text("name")?).map_err(corrupt("a domain's name"))?,
        status: VerificationStatus::parse(&status)
            .ok_or_else(|| corrupt("a domain's status")(status.clone()))?,
        region: Region::parse(&region)
            .ok_or_else(|| corrupt("a domain's region")(region.clone()))?,
        custom_return_path: row.text("custom_return_path")?,
        open_tracking: settings.open_tracking,
        click_tracking: settings.click_tracking,
        tls: TlsPolicy::parse(&settings.tls)
            .ok_or_else(|| corrupt("a domain's tls")(settings.tls.clone()))?,
        tracking_subdomain: settings.tracking_subdomain,
        created_at: row.time("created_at")?,
        dkim_keys: keys,
        records,
        verify_requested_at: row.opt_time("verify_requested_at")?,
        checked_at: row.opt_time("checked_at")?,
        next_check_at: row.opt_time("next_check_at")?,
        revision: row.int("revision")?,
    })
}

/// Applies `change` (one row, or none when its condition no longer
/// holds) and, if it changed the row, writes `event` with its deliveries,
/// in one transaction. Whether the row changed.
async fn with_event(
    db: Db<'_>,
    ctx: &'static str,
    change: &Statement,
    event: Option<&AccountEvent>,
) -> Result<bool, StoreError> {
    let Some(event) = event else {
        return Ok(db.execute(ctx, change).await? == 1);
    };
    let dialect = db.dialect();
    let mut tx = db.begin(ctx).await?;
    let result = async {
        let changed = tx.execute(change).await? == 1;
        if changed {
            tx.execute(&account_events::insert(event)).await?;
            tx.execute(&account_events::fan_out(dialect, event)).await?;
        }
        Ok(changed)
    }
    .await;
    tx.finish(result).await
}

/// A page, newest first; towards newer domains (`before`) oldest first.
fn list(page: &DomainPage) -> Statement {
    let mut st = Statement::new("");
    let mut sql = format!("SELECT {COLUMNS} FROM domains WHERE 1 = 1");
    if let Some(after) = page.after {
        sql += &format!(" AND id < {}", st.param(Param::Uuid(after.0)));
    }
    if let Some(before) = page.before {
        sql += &format!(" AND id > {}", st.param(Param::Uuid(before.0)));
    }
    let order = if page.before.is_some() { "ASC" } else { "DESC" };
    sql += &format!(
        " ORDER BY id {order} LIMIT {}",
        st.param(Param::Int(i64::from(page.limit)))
    );
    st.sql = sql;
    st
}

on_both_stores! {
    impl DomainStore {
        async fn create_domain(&self, d: &Domain, event: &AccountEvent) -> Result<bool, StoreError> {
            with_event(self.db(), "creating a domain", &insert(d)?, Some(event)).await
        }

        async fn get_domain(&self, id: DomainId) -> Result<Option<Domain>, StoreError> {
            let st = Statement::new(format!("SELECT {COLUMNS} FROM domains WHERE id = $1"))
                .with(Param::Uuid(id.0));
            self.db()
                .fetch_optional("reading a domain", &st)
                .await?
                .as_ref()
                .map(domain)
                .transpose()
        }

        async fn list_domains(&self, page: &DomainPage) -> Result<Vec<Domain>, StoreError> {
            self.db()
                .fetch_all("listing domains", &list(page))
                .await?
                .iter()
                .map(domain)
                .collect()
        }

        async fn all_domains(&self) -> Result<Vec<Domain>, StoreError> {
            let st = Statement::new(format!("SELECT {COLUMNS} FROM domains ORDER BY id"));
            self.db()
                .fetch_all("reading every domain", &st)
                .await?
                .iter()
                .map(domain)
                .collect()
        }

        async fn save_domain(
            &self,
            d: &Domain,
            event: Option<&AccountEvent>,
        ) -> Result<bool, StoreError> {
            with_event(self.db(), "changing a domain", &update(d)?, event).await
        }

        async fn delete_domain(
            &self,
            id: DomainId,
            revision: i64,
            event: &AccountEvent,
        ) -> Result<bool, StoreError> {
            let st = Statement::new("DELETE FROM domains WHERE id = $1 AND revision = $2")
                .with(Param::Uuid(id.0))
                .with(Param::Int(revision));
            with_event(self.db(), "deleting a domain", &st, Some(event)).await
        }

        async fn domains_due_for_check(
            &self,
            now: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<Domain>, StoreError> {
            let st = Statement::new(format!(
                "SELECT {COLUMNS} FROM domains WHERE next_check_at IS NOT NULL \
                 AND next_check_at <= $1 ORDER BY next_check_at LIMIT $2"
            ))
            .with(Param::Time(now))
            .with(Param::Int(i64::from(limit)));
            self.db()
                .fetch_all("finding domains due for a check", &st)
                .await?
                .iter()
                .map(domain)
                .collect()
        }
    }
}
