//! The sending-domain settings: the secret that seals DKIM keys, the DNS
//! servers that checks ask, the records every domain is asked to publish,
//! and whether senders must be on a verified domain.

use super::{ConfigError, Layers};
use mailqueue_core::domains::RecordsConfig;
use mailqueue_dkim::{DnsServers, SecretKey};

#[derive(Clone, Debug, Default)]
pub struct DomainsConfig {
    /// `MAILQUEUE_SECRET_KEY` (its `Debug` shows nothing).
    pub secret_key: Option<SecretKey>,
    pub dns_servers: DnsServers,
    pub records: RecordsConfig,
    pub require_verified: bool,
}

fn invalid(source: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        source_name: source.into(),
        reason,
    }
}

pub(super) fn domains_config(
    l: &Layers,
    bounce_domain: Option<&str>,
) -> Result<DomainsConfig, ConfigError> {
    let secret_key = l
        .opt::<String>("secret_key")?
        .map(|raw| SecretKey::parse(&raw).map_err(|e| invalid("MAILQUEUE_SECRET_KEY", e)))
        .transpose()?;
    let dns_servers = match l.opt::<String>("dns_servers")? {
        None => DnsServers::System,
        Some(raw) => DnsServers::parse(&raw).map_err(|e| invalid("MAILQUEUE_DNS_SERVERS", e))?,
    };
    let bounce_mx_host = l
        .opt::<String>("bounce_mx_host")?
        .or_else(|| bounce_domain.map(str::to_string))
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase());
    if let Some(host) = &bounce_mx_host {
        mailqueue_core::domains::DomainName::parse(host)
            .map_err(|e| invalid("MAILQUEUE_BOUNCE_MX_HOST", e))?;
    }
    let spf_mechanisms: String = l.get("domain_spf_mechanisms")?;
    if spf_mechanisms.trim().is_empty() || spf_mechanisms.contains(['"', ';']) {
        return Err(invalid(
            "MAILQUEUE_DOMAIN_SPF_MECHANISMS",
            "give SPF mechanisms such as `mx` or `include:_spf.relay.example ip4:203.0.113.7`"
                .into(),
        ));
    }
    Ok(DomainsConfig {
        secret_key,
        dns_servers,
        records: RecordsConfig {
            bounce_mx_host,
            spf_mechanisms: spf_mechanisms.trim().to_string(),
        },
        require_verified: l.get("require_verified_domain")?,
    })
}
