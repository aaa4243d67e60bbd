//! The suppression list, written once for both stores: at most 100
//! entries change per request, so a statement per entry inside one
//! transaction is enough, and both dialects speak `ON CONFLICT`.

use super::executor::on_both_stores;
use super::rows::RowReader;
use super::{Dialect, Param, Statement};
use mailqueue_core::store::StoreError;
use mailqueue_core::suppression::{
    Suppression, SuppressionChanges, SuppressionQuery, SuppressionReads, SuppressionRef,
};
use mailqueue_core::SuppressionId;

on_both_stores! {
    impl SuppressionReads {
        async fn list_suppressions(
            &self,
            query: &SuppressionQuery,
        ) -> Result<Vec<Suppression>, StoreError> {
            self.db()
                .fetch_all("listing suppressions", &list(query))
                .await?
                .iter()
                .map(row)
                .collect()
        }

        async fn get_suppression(
            &self,
            entry: &SuppressionRef,
        ) -> Result<Option<Suppression>, StoreError> {
            self.db()
                .fetch_optional("reading a suppression", &get(entry))
                .await?
                .as_ref()
                .map(row)
                .transpose()
        }
    }
}

on_both_stores! {
    impl SuppressionChanges {
        async fn add_suppressions(
            &self,
            entries: &[Suppression],
        ) -> Result<Vec<Suppression>, StoreError> {
            let db = self.db();
            let mut tx = db.begin("adding suppressions").await?;
            let result = async {
                let mut listed = Vec::with_capacity(entries.len());
                for s in entries {
                    tx.execute(&insert(db.dialect(), s)).await?;
                    let found = tx.fetch_optional(&get(&SuppressionRef::Email(s.email.clone()))).await?;
                    let found = found.ok_or_else(|| {
                        StoreError::Corrupt(format!("the suppression of {} is gone", s.email))
                    })?;
                    listed.push(row(&found)?);
                }
                Ok(listed)
            }
            .await;
            tx.finish(result).await
        }

        async fn remove_suppressions(
            &self,
            entries: &[SuppressionRef],
        ) -> Result<Vec<Option<Suppression>>, StoreError> {
            let mut tx = self.db().begin("removing suppressions").await?;
            let result = async {
                let mut removed = Vec::with_capacity(entries.len());
                for entry in entries {
                    let found = tx.fetch_optional(&get(entry)).await?.as_ref().map(row).transpose()?;
                    if let Some(s) = &found {
                        tx.execute(&delete(s.id)).await?;
                    }
                    removed.push(found);
                }
                Ok(removed)
            }
            .await;
            tx.finish(result).await
        }
    }
}

const COLUMNS: &str = "id, email, origin, reason, email_id, created_at";

/// Lists the entry unless its address is listed already.
pub fn insert(d: Dialect, s: &Suppression) -> Statement {
    let mut st = Statement::new("");
    let values = [
        st.param(Param::Uuid(s.id.0)),
        st.param(Param::Text(s.email.clone())),
        st.param(Param::Text(s.origin.as_str().into())),
        match &s.reason {
            Some(r) => st.param(Param::Text(r.clone())),
            None => "NULL".into(),
        },
        match s.email_id {
            Some(id) => st.param(Param::Id(id)),
            None => "NULL".into(),
        },
        d.time_param(st.params.len() + 1),
    ];
    st.params.push(Param::Time(s.created_at));
    st.sql = format!(
        "INSERT INTO suppressions ({COLUMNS}) VALUES ({}) ON CONFLICT (email) DO NOTHING",
        values.join(", ")
    );
    st
}

fn select_where(condition: &str) -> String {
    format!("SELECT {COLUMNS} FROM suppressions WHERE {condition}")
}

/// The entry a reference names.
pub fn get(entry: &SuppressionRef) -> Statement {
    match entry {
        SuppressionRef::Id(id) => Statement::new(select_where("id = $1")).with(Param::Uuid(id.0)),
        SuppressionRef::Email(email) => {
            Statement::new(select_where("email = $1")).with(Param::Text(email.clone()))
        }
    }
}

pub fn delete(id: SuppressionId) -> Statement {
    Statement::new("DELETE FROM suppressions WHERE id = $1").with(Param::Uuid(id.0))
}

/// A page, newest first; towards newer entries (`before`) oldest first.
pub fn list(query: &SuppressionQuery) -> Statement {
    let mut st = Statement::new("");
    let mut sql = select_where("1 = 1");
    if let Some(origin) = query.origin {
        sql += &format!(
            " AND origin = {}",
            st.param(Param::Text(origin.as_str().into()))
        );
    }
    if let Some(after) = query.after {
        sql += &format!(" AND id < {}", st.param(Param::Uuid(after.0)));
    }
    if let Some(before) = query.before {
        sql += &format!(" AND id > {}", st.param(Param::Uuid(before.0)));
    }
    let order = if query.before.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    sql += &format!(
        " ORDER BY id {order} LIMIT {}",
        st.param(Param::Int(i64::from(query.limit)))
    );
    st.sql = sql;
    st
}

/// A row of `suppressions`.
pub fn row(row: &impl RowReader) -> Result<Suppression, StoreError> {
    Ok(Suppression {
        id: SuppressionId(row.uuid("id")?),
        email: row.text("email")?,
        origin: row.text("origin")?.parse().map_err(StoreError::Corrupt)?,
        reason: row.opt_text("reason")?,
        email_id: row.opt_uuid("email_id")?.map(mailqueue_core::EmailId),
        created_at: row.time("created_at")?,
    })
}
