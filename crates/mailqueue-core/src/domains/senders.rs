//! Which sending domain covers a sender, and the sender rules: a key
//! restricted to one domain, and (when the server requires it) a verified
//! domain for every `from`.

use super::{Domain, VerificationStatus};
use crate::ids::DomainId;

/// The most specific of `domains` that covers `sender_domain` (itself or
/// a parent domain).
pub fn covering_domain<'a>(domains: &'a [Domain], sender_domain: &str) -> Option<&'a Domain> {
    domains
        .iter()
        .filter(|d| d.name.covers(sender_domain))
        .max_by_key(|d| d.name.as_str().len())
}

/// Why a sender may not send from an address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SenderRefusal {
    /// The server requires a verified domain and this one is not.
    #[error(
        "The {0} domain is not verified. Add it with POST /v1/domains and verify its DNS records."
    )]
    NotVerified(String),
    /// The API key may send only from another domain.
    #[error("This API key may send only from its domain; {0} is not covered by it.")]
    OutsideKeyDomain(String),
}

/// Checks the sender rules for `sender_domain`: `restricted_to` is the
/// domain an API key is limited to (a key whose domain is gone may send
/// from nowhere); `require_verified` is the server's setting.
pub fn check_sender(
    domains: &[Domain],
    sender_domain: &str,
    restricted_to: Option<DomainId>,
    require_verified: bool,
) -> Result<(), SenderRefusal> {
    let covering = covering_domain(domains, sender_domain);
    if let Some(id) = restricted_to {
        let allowed = domains
            .iter()
            .any(|d| d.id == id && d.name.covers(sender_domain));
        if !allowed {
            return Err(SenderRefusal::OutsideKeyDomain(sender_domain.to_string()));
        }
    }
    if require_verified && !covering.is_some_and(|d| d.status == VerificationStatus::Verified) {
        return Err(SenderRefusal::NotVerified(sender_domain.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domains::tests_support::domain;

    #[test]
    fn the_most_specific_domain_covers_a_sender() {
        let acme = domain();
        let mut mail = domain();
        mail.name = crate::domains::DomainName::parse("mail.acme.com").unwrap();
        let all = [acme.clone(), mail.clone()];
        assert_eq!(
            covering_domain(&all, "x.mail.acme.com").unwrap().id,
            mail.id
        );
        assert_eq!(covering_domain(&all, "acme.com").unwrap().id, acme.id);
        assert!(covering_domain(&all, "other.com").is_none());
    }

    #[test]
    fn sender_rules() {
        let mut acme = domain();
        let all = std::slice::from_ref(&acme);
        assert_eq!(check_sender(all, "acme.com", None, false), Ok(()));
        assert!(matches!(
            check_sender(all, "acme.com", None, true),
            Err(SenderRefusal::NotVerified(_))
        ));
        assert!(matches!(
            check_sender(all, "other.com", Some(acme.id), false),
            Err(SenderRefusal::OutsideKeyDomain(_))
        ));
        let gone = DomainId::generate(acme.created_at);
        assert!(matches!(
            check_sender(all, "acme.com", Some(gone), false),
            Err(SenderRefusal::OutsideKeyDomain(_))
        ));
        acme.status = VerificationStatus::Verified;
        let all = std::slice::from_ref(&acme);
        assert_eq!(
            check_sender(all, "news.acme.com", Some(acme.id), true),
            Ok(())
        );
    }
}
