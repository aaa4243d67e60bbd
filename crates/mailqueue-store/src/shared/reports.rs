//! Reports that arrive after sending (late bounces, delays, complaints),
//! written once for both stores: the core decides what a report writes
//! (`transition::ReportTransition`); this applies it in one transaction.

use super::event_rows::{self, EventRow};
use super::executor::on_both_stores;
use super::suppressions;
use super::{Param, Statement};
use mailqueue_core::store::{ReportStore, StoreError, UnclassifiedReport};
use mailqueue_core::suppression::{suppression_key, Suppression};
use mailqueue_core::transition::{ReportTransition, WrittenEvents};
use mailqueue_core::SuppressionId;

on_both_stores! {
    impl ReportStore {
        async fn record_report(&self, report: &ReportTransition) -> Result<WrittenEvents, StoreError> {
            let db = self.db();
            let mut tx = db.begin("recording a report").await?;
            let result = async {
                let exists = Statement::new("SELECT id FROM emails WHERE id = $1")
                    .with(Param::Id(report.email_id));
                if tx.fetch_optional(&exists).await?.is_none() {
                    return Ok(WrittenEvents::default());
                }
                let rows: Vec<EventRow> = report
                    .events
                    .iter()
                    .cloned()
                    .map(|e| EventRow::new(report.email_id, report.at, e))
                    .collect();
                tx.write_events(&rows).await?;
                for s in &report.suppressions {
                    let entry = Suppression {
                        id: SuppressionId::generate(report.at),
                        email: suppression_key(&s.address),
                        origin: s.origin,
                        reason: Some(s.reason.clone()),
                        email_id: Some(report.email_id),
                        created_at: report.at,
                    };
                    tx.execute(&suppressions::insert(db.dialect(), &entry)).await?;
                }
                Ok(event_rows::written(&rows))
            }
            .await;
            tx.finish(result).await
        }

        async fn keep_unclassified_report(&self, r: &UnclassifiedReport) -> Result<(), StoreError> {
            let db = self.db();
            let mut st = Statement::new("");
            let id = st.param(Param::Uuid(r.id));
            st.params.push(Param::Time(r.received_at));
            let at = db.dialect().time_param(st.params.len());
            let from = st.param(Param::Text(r.mail_from.clone()));
            let to = st.param(Param::Text(r.rcpt_to.clone()));
            let email = st.param(Param::OptUuid(r.email_id.map(|e| e.0)));
            let reason = st.param(Param::Text(r.reason.clone()));
            let message = st.param(Param::Bytes(r.message.clone()));
            st.sql = format!(
                "INSERT INTO unclassified_reports (id, received_at, mail_from, rcpt_to, email_id, reason, message) \
                 VALUES ({id}, {at}, {from}, {to}, {email}, {reason}, {message})"
            );
            db.execute("keeping an unclassified report", &st).await?;
            Ok(())
        }
    }
}
