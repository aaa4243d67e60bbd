//! Reports that arrive after sending (a late bounce, a delay, a complaint):
//! a report about an email is applied only for recipients the email was
//! sent to, through the core's transition; anything else is kept whole as
//! unclassified. Never a reply that bounces the report back.

use crate::{EmailService, ServiceError};
use mailqueue_core::store::UnclassifiedReport;
use mailqueue_core::suppression::suppression_key;
use mailqueue_core::transition::{LateReport, ReportTransition, WrittenEvents};
use mailqueue_core::EmailId;
use std::collections::HashSet;

/// What became of reports about an email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// Their events (and suppressions) were written.
    Applied(WrittenEvents),
    /// Nothing applies; why, in one line (to keep them as unclassified).
    Unmatched(String),
}

impl EmailService {
    /// Applies `reports` about email `id`, those that name one of its
    /// envelope recipients.
    pub async fn apply_reports(
        &self,
        id: EmailId,
        reports: Vec<LateReport>,
    ) -> Result<ReportOutcome, ServiceError> {
        let Some(record) = self.store.get_email(id).await? else {
            return Ok(ReportOutcome::Unmatched(format!(
                "email {id} is not stored"
            )));
        };
        let sent_to: HashSet<String> = record
            .email
            .envelope_recipients()
            .into_iter()
            .map(suppression_key)
            .collect();
        let matching: Vec<LateReport> = reports
            .into_iter()
            .filter(|r| sent_to.contains(&suppression_key(r.recipient())))
            .collect();
        if matching.is_empty() {
            return Ok(ReportOutcome::Unmatched(format!(
                "the report names no recipient email {id} was sent to"
            )));
        }
        let transition = ReportTransition::of(id, self.now(), &matching);
        let written = self.store.record_report(&transition).await?;
        if written.total() == 0 {
            return Ok(ReportOutcome::Unmatched(format!(
                "email {id} is no longer stored"
            )));
        }
        self.metrics.count_events(&written);
        for report in &matching {
            let kind = match report {
                LateReport::Bounced { .. } => "bounce",
                LateReport::Delayed { .. } => "delay",
                LateReport::Complained { .. } => "complaint",
            };
            self.metrics
                .inbound_reports
                .get_or_create(&[("kind", kind)])
                .inc();
        }
        Ok(ReportOutcome::Applied(written))
    }

    /// Keeps a report that could not be applied, as it came.
    pub async fn keep_unclassified_report(
        &self,
        report: &UnclassifiedReport,
    ) -> Result<(), ServiceError> {
        self.store.keep_unclassified_report(report).await?;
        self.metrics
            .inbound_reports
            .get_or_create(&[("kind", "unclassified")])
            .inc();
        Ok(())
    }
}
