//! The bounce domain's MX: it takes mail only for return addresses whose
//! MAC holds (550 5.1.1 for anything else: it relays nothing), needs no
//! AUTH, and reads each message as a report. A DSN applies to the email
//! its return address names; a complaint to the email its returned
//! message's return path names, else its Message-ID (when mailqueue made
//! it), else the return address it was sent to. What cannot be applied is
//! kept whole as unclassified, and every message taken is answered 250:
//! a bounce is never bounced.

use crate::auth::{AuthFailures, Credentials};
use crate::intake::{Envelope, Intake};
use crate::reply::Reply;
use crate::report::{read_report, ComplaintReport, DeliveryReport, DsnAction, Report};
use crate::settings::SessionSettings;
use async_trait::async_trait;
use mailqueue_core::return_path::ReturnPaths;
use mailqueue_core::store::{ApiKeyRecord, UnclassifiedReport};
use mailqueue_core::transition::LateReport;
use mailqueue_core::{EmailAddress, EmailId, Mailbox};
use mailqueue_service::{EmailService, ReportOutcome, ServiceError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

pub struct BounceMx {
    service: Arc<EmailService>,
    paths: ReturnPaths,
    settings: SessionSettings,
    /// Messages a client address may send per minute.
    per_minute: u32,
    /// Messages per client address in the current minute.
    rate: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl BounceMx {
    pub fn new(
        service: Arc<EmailService>,
        paths: ReturnPaths,
        settings: SessionSettings,
        per_minute: u32,
    ) -> Self {
        Self {
            service,
            paths,
            settings,
            per_minute,
            rate: Mutex::default(),
        }
    }

    /// Whether `peer` may send one more message this minute.
    fn admit(&self, peer: IpAddr) -> bool {
        let now = Instant::now();
        let mut rate = self.rate.lock().unwrap_or_else(|e| e.into_inner());
        if rate.len() > 100_000 {
            rate.retain(|_, (_, start)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = rate.entry(peer).or_insert((0, now));
        if now.duration_since(entry.1) >= Duration::from_secs(60) {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.0 <= self.per_minute
    }

    /// Applies `report`; returns why nothing applied, if nothing did.
    async fn apply(
        &self,
        envelope: &Envelope,
        report: Report,
    ) -> Result<Option<String>, ServiceError> {
        let sent_to: Vec<EmailId> = envelope
            .to
            .iter()
            .filter_map(|m| self.paths.email_of(m.address.as_str()))
            .collect();
        let (emails, reports) = match report {
            Report::Unclassified(why) => return Ok(Some(why)),
            Report::Delivery(d) => (sent_to, delivery_reports(&d)),
            Report::Complaint(c) => match complaint(&c) {
                Some(report) => (
                    self.complained_email(&c).map_or(sent_to, |id| vec![id]),
                    vec![report],
                ),
                None => {
                    return Ok(Some(format!(
                        "a {} feedback report, not a complaint",
                        c.feedback_type
                    )))
                }
            },
        };
        if reports.is_empty() {
            return Ok(Some(
                "the report says no recipient failed, was delayed or complained".into(),
            ));
        }
        let mut why = None;
        for id in emails {
            match self.service.apply_reports(id, reports.clone()).await? {
                ReportOutcome::Applied(_) => return Ok(None),
                ReportOutcome::Unmatched(reason) => why = Some(reason),
            }
        }
        Ok(Some(why.unwrap_or_else(|| {
            "no return address of the report names an email".into()
        })))
    }

    /// The email a complaint is about: its returned message's return path
    /// (when one of ours), else its Message-ID (when mailqueue made it).
    fn complained_email(&self, c: &ComplaintReport) -> Option<EmailId> {
        [&c.original_return_path, &c.original_mail_from]
            .into_iter()
            .flatten()
            .find_map(|a| self.paths.email_of(a))
            .or_else(|| {
                c.original_message_id
                    .as_deref()
                    .and_then(email_of_message_id)
            })
    }
}

/// The email id in a Message-ID mailqueue made (`<id@domain>`).
fn email_of_message_id(message_id: &str) -> Option<EmailId> {
    let inner = message_id.trim().strip_prefix('<')?.strip_suffix('>')?;
    inner.split_once('@')?.0.parse().ok()
}

/// What a DSN says of its recipients: failures and delays.
fn delivery_reports(d: &DeliveryReport) -> Vec<LateReport> {
    d.recipients
        .iter()
        .filter_map(|r| {
            let recipient = EmailAddress::parse(&r.recipient).ok()?;
            match r.action {
                DsnAction::Failed => Some(LateReport::Bounced {
                    recipient,
                    status: r.status.clone(),
                    diagnostic_code: r.diagnostic_code.clone(),
                }),
                DsnAction::Delayed => Some(LateReport::Delayed {
                    recipient,
                    status: r.status.clone(),
                    diagnostic_code: r.diagnostic_code.clone(),
                }),
                DsnAction::Delivered | DsnAction::Relayed | DsnAction::Expanded => None,
            }
        })
        .collect()
}

/// An abuse report as a complaint by its recipient, when it names one.
fn complaint(c: &ComplaintReport) -> Option<LateReport> {
    if c.feedback_type != "abuse" {
        return None;
    }
    let recipient = c
        .original_rcpt_to
        .iter()
        .chain(&c.original_to)
        .find_map(|a| EmailAddress::parse(a).ok())?;
    Some(LateReport::Complained {
        recipient,
        feedback_type: c.feedback_type.clone(),
    })
}

#[async_trait]
impl Intake for BounceMx {
    fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    fn auth(&self) -> Option<&AuthFailures> {
        None
    }

    async fn authenticate(&self, _: &Credentials) -> Result<Option<ApiKeyRecord>, Reply> {
        Ok(None)
    }

    /// Reports come from the null sender, mostly; any sender is taken.
    async fn sender(
        &self,
        from: &str,
        _: Option<&ApiKeyRecord>,
    ) -> Result<Option<EmailAddress>, Reply> {
        Ok(EmailAddress::parse(from).ok())
    }

    fn recipient(&self, to: &str) -> Result<Mailbox, Reply> {
        match (self.paths.email_of(to), EmailAddress::parse(to)) {
            (Some(_), Ok(address)) => Ok(Mailbox {
                name: None,
                address,
            }),
            _ => Err(Reply::new(550, "5.1.1", "no such return address here")),
        }
    }

    async fn deliver(
        &self,
        peer: IpAddr,
        _key: Option<ApiKeyRecord>,
        envelope: Envelope,
        message: Vec<u8>,
    ) -> Reply {
        if !self.admit(peer) {
            return Reply::new(
                450,
                "4.7.1",
                "too many messages from your address; try again later",
            );
        }
        let report = read_report(&message);
        let kept = match self.apply(&envelope, report).await {
            Ok(None) => return Reply::new(250, "2.0.0", "report applied"),
            Ok(Some(why)) => UnclassifiedReport {
                id: uuid_now(&self.service),
                received_at: self.service.now(),
                mail_from: envelope
                    .from
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                rcpt_to: envelope
                    .to
                    .first()
                    .map(|m| m.address.to_string())
                    .unwrap_or_default(),
                email_id: envelope
                    .to
                    .iter()
                    .find_map(|m| self.paths.email_of(m.address.as_str())),
                reason: why,
                message,
            },
            Err(e) => return unavailable(&e),
        };
        match self.service.keep_unclassified_report(&kept).await {
            Ok(()) => Reply::new(250, "2.0.0", "kept as an unclassified report"),
            Err(e) => unavailable(&e),
        }
    }
}

/// A time-ordered id for a kept report.
fn uuid_now(service: &EmailService) -> uuid::Uuid {
    EmailId::generate(service.now()).0
}

/// The reply when the store cannot keep a report now: the sender retries.
fn unavailable(e: &ServiceError) -> Reply {
    tracing::warn!(error = %e, "a report to the bounce domain could not be stored");
    Reply::new(
        451,
        "4.3.0",
        "the report could not be stored; try again later",
    )
}
