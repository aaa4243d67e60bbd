//! What a sender's sending domain changes about a message as it leaves:
//! the DKIM signer, the return address (at the domain's verified
//! return-path subdomain), and whether TLS is enforced.
//!
//! The domains are read from the store at most every `REFRESH`, and each
//! key is opened once (not per message): a worker learns of a verified
//! domain, a rotation or a deletion within that time.

use mailqueue_core::domains::{
    covering_domain, DkimKeys, Domain, DomainStore, KeyError, MessageSigner, TlsPolicy,
    VerificationStatus,
};
use mailqueue_core::return_path::ReturnPaths;
use mailqueue_core::{DomainId, EmailAddress, EmailId};
use mailqueue_metrics::Metrics;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the domains read are used before they are read again.
const REFRESH: Duration = Duration::from_secs(10);

/// What a message's sending domain decides for it.
#[derive(Clone, Default)]
pub struct SenderSetup {
    pub signer: Option<Arc<dyn MessageSigner>>,
    /// The return address's domain, when the sending domain's own is
    /// verified (else the bounce domain's, if any).
    pub return_path_domain: Option<String>,
    pub require_tls: bool,
    /// Why the message leaves unsigned, for the metrics.
    pub unsigned_because: Option<&'static str>,
}

impl SenderSetup {
    /// The envelope sender of email `id`: at the domain's return path,
    /// else at the bounce domain, else the sender's own (`None`).
    pub fn return_path(&self, paths: Option<&ReturnPaths>, id: EmailId) -> Option<EmailAddress> {
        let paths = paths?;
        Some(match &self.return_path_domain {
            Some(domain) => paths.address_at(id, domain),
            None => paths.address_for(id),
        })
    }
}

#[derive(Default)]
struct Read {
    at: Option<Instant>,
    domains: Arc<Vec<Domain>>,
    /// Opened keys by domain and selector.
    signers: HashMap<(DomainId, String), Result<Arc<dyn MessageSigner>, KeyError>>,
}

/// The sending domains as a worker sees them.
pub struct SendingDomains {
    store: Arc<dyn DomainStore>,
    keys: Arc<dyn DkimKeys>,
    metrics: Arc<Metrics>,
    read: Mutex<Read>,
}

impl SendingDomains {
    pub fn new(
        store: Arc<dyn DomainStore>,
        keys: Arc<dyn DkimKeys>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            keys,
            metrics,
            read: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Read> {
        self.read.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn domains(&self) -> Arc<Vec<Domain>> {
        {
            let read = self.lock();
            if read.at.is_some_and(|at| at.elapsed() < REFRESH) {
                return read.domains.clone();
            }
        }
        match self.store.all_domains().await {
            Ok(domains) => {
                let domains = Arc::new(domains);
                let mut read = self.lock();
                read.at = Some(Instant::now());
                read.domains = domains.clone();
                read.signers.retain(|(id, selector), _| {
                    domains
                        .iter()
                        .any(|d| d.id == *id && d.dkim_keys.iter().any(|k| &k.selector == selector))
                });
                domains
            }
            Err(e) => {
                // Keep what was read before; try again at the next message.
                tracing::warn!(error = %e, "reading the sending domains failed");
                self.lock().domains.clone()
            }
        }
    }

    /// What the sending domain of `sender` (if any) decides.
    pub async fn for_sender(&self, sender: &EmailAddress) -> SenderSetup {
        let domains = self.domains().await;
        let Some(domain) = covering_domain(&domains, sender.domain()) else {
            return self.counted(SenderSetup {
                unsigned_because: Some("no_domain"),
                ..SenderSetup::default()
            });
        };
        let return_path_domain = (domain.records.return_path_mx == VerificationStatus::Verified)
            .then(|| domain.return_path_domain());
        let require_tls = domain.tls == TlsPolicy::Enforced;
        let (signer, unsigned_because) = match domain.signing_key() {
            None => (None, Some("not_verified")),
            Some(key) => {
                let opened = self
                    .lock()
                    .signers
                    .entry((domain.id, key.selector.clone()))
                    .or_insert_with(|| self.keys.signer(&domain.name, key))
                    .clone();
                match opened {
                    Ok(signer) => (Some(signer), None),
                    Err(e) => {
                        tracing::error!(domain = %domain.name, error = %e,
                            "mail from this domain leaves unsigned");
                        (None, Some("key_unreadable"))
                    }
                }
            }
        };
        self.counted(SenderSetup {
            signer,
            return_path_domain,
            require_tls,
            unsigned_because,
        })
    }

    fn counted(&self, setup: SenderSetup) -> SenderSetup {
        match setup.unsigned_because {
            None => self.metrics.emails_signed.inc(),
            Some(reason) => self
                .metrics
                .emails_unsigned
                .get_or_create(&[("reason", reason)])
                .inc(),
        };
        setup
    }
}
