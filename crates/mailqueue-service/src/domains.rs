//! The sending-domain use cases: create a domain with its first DKIM key,
//! change, delete, ask for a check of its records, rotate its key, and
//! check the sender of an email against the domains (a key limited to one
//! domain; `MAILQUEUE_REQUIRE_VERIFIED_DOMAIN`).
//!
//! A domain is written whole under its revision (see `DomainStore`): each
//! use case reads, decides in the core and saves, and decides again when
//! another write got in between.

use crate::ServiceError;
use chrono::{DateTime, Utc};
use mailqueue_core::domains::{
    check_sender, next_check_after, DkimAlgorithm, DkimKey, DkimKeys, DnsAnswer, DnsLookup,
    DnsQuery, Domain, DomainChange, DomainName, DomainStore, RecordStatuses, RecordsConfig, Region,
    SenderRefusal, TlsPolicy, VerificationStatus,
};
use mailqueue_core::webhooks::{AccountEvent, WebhookEventType};
use mailqueue_core::{Clock, DomainId};
use mailqueue_metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Writes of one domain racing each other: each loser decides again.
const SAVE_TRIES: usize = 8;
/// How long the domains read for sender checks are trusted.
const SENDER_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most domains the leader checks in one run.
const CHECKS_PER_RUN: u32 = 50;

/// What the domain use cases need besides the store.
pub struct DomainSetup {
    pub keys: Arc<dyn DkimKeys>,
    pub dns: Arc<dyn DnsLookup>,
    pub records: RecordsConfig,
    /// `MAILQUEUE_REQUIRE_VERIFIED_DOMAIN`.
    pub require_verified: bool,
    /// Why domains may not be created here, if they may not (keys would
    /// be stored unsealed on a shared database).
    pub creation_refused: Option<String>,
}

/// A domain to create, parsed by the front end.
#[derive(Clone, Debug)]
pub struct NewDomain {
    pub name: DomainName,
    pub region: Region,
    pub custom_return_path: String,
    pub open_tracking: bool,
    pub click_tracking: bool,
    pub tls: TlsPolicy,
    pub tracking_subdomain: Option<String>,
    pub algorithm: DkimAlgorithm,
}

/// The domains as last read, for sender checks on the accept path.
#[derive(Default)]
struct SenderCache {
    read: Mutex<Option<(Instant, Arc<Vec<Domain>>)>>,
}

impl SenderCache {
    fn forget(&self) {
        if let Ok(mut read) = self.read.lock() {
            *read = None;
        }
    }

    async fn domains(&self, store: &dyn DomainStore) -> Result<Arc<Vec<Domain>>, ServiceError> {
        if let Ok(read) = self.read.lock() {
            if let Some((at, domains)) = read.as_ref() {
                if at.elapsed() < SENDER_CACHE_TTL {
                    return Ok(domains.clone());
                }
            }
        }
        let domains = Arc::new(store.all_domains().await?);
        if let Ok(mut read) = self.read.lock() {
            *read = Some((Instant::now(), domains.clone()));
        }
        Ok(domains)
    }
}

/// The use cases, over the store and the setup.
pub struct Domains {
    store: Arc<dyn DomainStore>,
    setup: DomainSetup,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    senders: SenderCache,
}

impl Domains {
    pub fn new(
        store: Arc<dyn DomainStore>,
        setup: DomainSetup,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            setup,
            clock,
            metrics,
            senders: SenderCache::default(),
        })
    }

    fn now(&self) -> DateTime<Utc> {
        crate::at_store_precision(self.clock.now())
    }

    async fn generate_key(
        &self,
        algorithm: DkimAlgorithm,
        selector: String,
        active: bool,
    ) -> Result<DkimKey, ServiceError> {
        let keys = self.setup.keys.clone();
        // RSA key generation takes a good part of a second of CPU.
        let new = tokio::task::spawn_blocking(move || keys.generate(algorithm))
            .await
            .map_err(|e| ServiceError::Domains(format!("generating a key stopped: {e}")))?
            .map_err(|e| ServiceError::Domains(e.to_string()))?;
        Ok(DkimKey::new(selector, algorithm, new, active, self.now()))
    }

    pub async fn create(&self, new: NewDomain) -> Result<Domain, ServiceError> {
        if let Some(why) = &self.setup.creation_refused {
            return Err(ServiceError::Domains(why.clone()));
        }
        let now = self.now();
        let key = self.generate_key(new.algorithm, "mq1".into(), true).await?;
        let domain = Domain {
            id: DomainId::generate(now),
            name: new.name,
            status: VerificationStatus::NotStarted,
            region: new.region,
            custom_return_path: new.custom_return_path,
            open_tracking: new.open_tracking,
            click_tracking: new.click_tracking,
            tls: new.tls,
            tracking_subdomain: new.tracking_subdomain,
            created_at: now,
            dkim_keys: vec![key],
            records: RecordStatuses::default(),
            verify_requested_at: None,
            checked_at: None,
            next_check_at: None,
            revision: 0,
        };
        let event = AccountEvent::domain(
            WebhookEventType::DomainCreated,
            &domain,
            &self.setup.records,
            now,
        );
        if !self.store.create_domain(&domain, &event).await? {
            return Err(ServiceError::DomainExists(domain.name.to_string()));
        }
        self.senders.forget();
        Ok(domain)
    }

    pub async fn get(&self, id: DomainId) -> Result<Domain, ServiceError> {
        self.store
            .get_domain(id)
            .await?
            .ok_or(ServiceError::NoDomain(id))
    }

    /// Reads the domain, lets `change` decide, and saves, with
    /// `domain.updated` if the change altered what the event tells,
    /// deciding again when another write got in first.
    async fn change(
        &self,
        id: DomainId,
        change: impl Fn(&mut Domain),
    ) -> Result<Domain, ServiceError> {
        for _ in 0..SAVE_TRIES {
            let before = self.get(id).await?;
            let mut domain = before.clone();
            change(&mut domain);
            let event =
                AccountEvent::domain_updated(&before, &domain, &self.setup.records, self.now());
            if self.store.save_domain(&domain, event.as_ref()).await? {
                self.senders.forget();
                domain.revision += 1;
                return Ok(domain);
            }
        }
        Err(ServiceError::Overtaken(
            "other changes of this domain kept overtaking this one",
        ))
    }

    pub async fn list(
        &self,
        page: &mailqueue_core::domains::DomainPage,
    ) -> Result<Vec<Domain>, ServiceError> {
        Ok(self.store.list_domains(page).await?)
    }

    /// Refuses a sender that the key's domain does not cover, or (when
    /// the server requires it) whose domain is not verified.
    pub async fn check_senders(
        &self,
        restricted_to: Option<DomainId>,
        senders: &[&mailqueue_core::EmailAddress],
    ) -> Result<(), ServiceError> {
        for sender in senders {
            self.check_sender(sender.domain(), restricted_to).await??;
        }
        Ok(())
    }

    pub async fn update(
        &self,
        id: DomainId,
        change: &DomainChange,
    ) -> Result<Domain, ServiceError> {
        self.change(id, |d| change.apply(d)).await
    }

    /// Deletes the domain, with `domain.deleted` telling it as it was.
    pub async fn delete(&self, id: DomainId) -> Result<(), ServiceError> {
        for _ in 0..SAVE_TRIES {
            let domain = self.get(id).await?;
            let event = AccountEvent::domain(
                WebhookEventType::DomainDeleted,
                &domain,
                &self.setup.records,
                self.now(),
            );
            if self
                .store
                .delete_domain(id, domain.revision, &event)
                .await?
            {
                self.senders.forget();
                return Ok(());
            }
        }
        Err(ServiceError::Overtaken(
            "other changes of this domain kept overtaking its deletion",
        ))
    }

    /// Marks the domain pending and checks it now, in the background (the
    /// answer does not wait for DNS); the leader's schedule goes on from
    /// there.
    pub async fn request_check(self: &Arc<Self>, id: DomainId) -> Result<Domain, ServiceError> {
        let now = self.now();
        let domain = self.change(id, |d| d.check_requested(now)).await?;
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.check(id).await {
                tracing::warn!(domain = %id, error = %e, "checking a domain's records failed");
            }
        });
        Ok(domain)
    }

    /// Adds a new key with the next selector. It signs once its record is
    /// seen in DNS; until then the current key goes on signing. A key
    /// added by an earlier rotation and not yet seen is replaced.
    pub async fn rotate_key(
        &self,
        id: DomainId,
        algorithm: Option<DkimAlgorithm>,
    ) -> Result<Domain, ServiceError> {
        let current = self.get(id).await?;
        let algorithm = algorithm
            .or_else(|| current.dkim_keys.first().map(|k| k.algorithm))
            .unwrap_or_default();
        let number = current
            .dkim_keys
            .iter()
            .filter_map(|k| k.selector.strip_prefix("mq")?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let key = self
            .generate_key(algorithm, format!("mq{number}"), false)
            .await?;
        let now = self.now();
        self.change(id, |d| {
            d.dkim_keys.retain(|k| k.active);
            d.dkim_keys.push(key.clone());
            d.verify_requested_at = Some(now);
            d.next_check_at = Some(now);
        })
        .await
    }

    /// Asks DNS about every record of the domain and records what it found.
    pub async fn check(&self, id: DomainId) -> Result<Domain, ServiceError> {
        let domain = self.get(id).await?;
        let queries = domain.dns_queries(&self.setup.records);
        let answers = ask_all(self.setup.dns.clone(), queries).await;
        let now = self.now();
        let records = self.setup.records.clone();
        self.change(id, move |d| {
            let check = d.decide_check(&records, |q| {
                answers
                    .get(q)
                    .cloned()
                    .unwrap_or_else(|| DnsAnswer::Unreachable("not asked".into()))
            });
            d.apply_check(&check);
            d.checked_at = Some(now);
            d.next_check_at = next_check_after(d, now);
        })
        .await
    }

    /// The leader's run: checks the domains that are due, and counts
    /// domains by status.
    pub async fn check_due(&self) -> Result<usize, ServiceError> {
        let due = self
            .store
            .domains_due_for_check(self.now(), CHECKS_PER_RUN)
            .await?;
        for domain in &due {
            if let Err(e) = self.check(domain.id).await {
                tracing::warn!(domain = %domain.name, error = %e, "checking a domain's records failed");
            }
        }
        let statuses: Vec<VerificationStatus> = self
            .store
            .all_domains()
            .await?
            .iter()
            .map(|d| d.status)
            .collect();
        self.metrics.observe_domains(&statuses);
        Ok(due.len())
    }

    /// Whether mail from `sender_domain` may be accepted, for a key
    /// limited to `restricted_to` (if it is).
    pub async fn check_sender(
        &self,
        sender_domain: &str,
        restricted_to: Option<DomainId>,
    ) -> Result<Result<(), SenderRefusal>, ServiceError> {
        if restricted_to.is_none() && !self.setup.require_verified {
            return Ok(Ok(()));
        }
        let domains = self.senders.domains(self.store.as_ref()).await?;
        Ok(check_sender(
            &domains,
            sender_domain,
            restricted_to,
            self.setup.require_verified,
        ))
    }

    pub fn records_config(&self) -> &RecordsConfig {
        &self.setup.records
    }
}

/// Asks every question at once.
async fn ask_all(dns: Arc<dyn DnsLookup>, queries: Vec<DnsQuery>) -> HashMap<DnsQuery, DnsAnswer> {
    let mut set = tokio::task::JoinSet::new();
    for q in queries {
        let dns = dns.clone();
        set.spawn(async move {
            let answer = dns.lookup(&q).await;
            (q, answer)
        });
    }
    let mut answers = HashMap::new();
    while let Some(done) = set.join_next().await {
        if let Ok((q, a)) = done {
            answers.insert(q, a);
        }
    }
    answers
}

/// The leader's domain checks, as a task of the maintenance leader.
pub struct DomainChecks(pub Arc<Domains>);

#[async_trait::async_trait]
impl mailqueue_core::upkeep::LeaderTask for DomainChecks {
    fn name(&self) -> &'static str {
        "domain checks"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    async fn run_once(&self) {
        match self.0.check_due().await {
            Ok(n) if n > 0 => tracing::info!(checked = n, "sending domains checked"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking sending domains failed"),
        }
    }
}
