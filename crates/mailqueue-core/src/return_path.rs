//! Return addresses (VERP). With a bounce domain, each email's envelope
//! sender is `b-<email id>-<mac>@<bounce domain>`: a report sent back to it
//! (a DSN goes to the envelope sender) names the email, and the MAC, 64
//! bits of HMAC-SHA256 of the id under a secret of the server's, keeps a
//! forged report from naming an email it has not seen, and so from
//! suppressing an address of its choosing. The report's recipient must
//! then be one the email was sent to.
//!
//! A sending domain whose return-path subdomain is verified gets its own
//! return addresses there (`b-<id>-<mac>@send.acme.com`), so that SPF
//! aligns with its `From` for DMARC. Their MAC covers the domain too, so
//! an address cannot be moved to a domain of someone else's choosing.

use crate::address::EmailAddress;
use crate::ids::EmailId;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The bytes of the MAC kept in an address.
const MAC_BYTES: usize = 8;

/// Makes and reads the return addresses of one bounce domain.
#[derive(Clone)]
pub struct ReturnPaths {
    domain: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for ReturnPaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReturnPaths")
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl ReturnPaths {
    /// Return addresses at `domain`, signed with `secret` (at least 16
    /// bytes).
    pub fn new(domain: &str, secret: &[u8]) -> Result<Self, String> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        EmailAddress::parse(&format!("b@{domain}"))
            .map_err(|e| format!("`{domain}` is not a domain: {e}"))?;
        if secret.len() < 16 {
            return Err("the secret must have at least 16 bytes".into());
        }
        Ok(Self {
            domain,
            key: secret.to_vec(),
        })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The MAC state over `id` (and over `domain`, unless it is the
    /// bounce domain, whose addresses predate the others).
    fn mac_state(&self, id: EmailId, domain: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|e| unreachable!("HMAC takes keys of any length: {e}"));
        mac.update(id.0.as_bytes());
        if !domain.eq_ignore_ascii_case(&self.domain) {
            mac.update(b"@");
            mac.update(domain.to_ascii_lowercase().as_bytes());
        }
        mac
    }

    fn mac(&self, id: EmailId, domain: &str) -> [u8; MAC_BYTES] {
        let full = self.mac_state(id, domain).finalize().into_bytes();
        let mut short = [0u8; MAC_BYTES];
        short.copy_from_slice(&full[..MAC_BYTES]);
        short
    }

    /// The envelope sender of email `id` at the bounce domain.
    pub fn address_for(&self, id: EmailId) -> EmailAddress {
        self.address_at(id, &self.domain)
    }

    /// The envelope sender of email `id` at `domain` (a sending domain's
    /// verified return-path subdomain, whose MX is this server's).
    pub fn address_at(&self, id: EmailId, domain: &str) -> EmailAddress {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let local = format!("b-{}-{}", id.0.simple(), hex::encode(self.mac(id, &domain)));
        EmailAddress::parse(&format!("{local}@{domain}"))
            .unwrap_or_else(|e| unreachable!("a return address is a valid address: {e}"))
    }

    /// The email a return address names, if `address` is one this server
    /// made (at the bounce domain or a sending domain's return path) and
    /// its MAC holds (case aside: relays may fold it).
    pub fn email_of(&self, address: &str) -> Option<EmailId> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@')?;
        let domain = domain.trim_end_matches('.');
        let local = local.to_ascii_lowercase();
        let rest = local.strip_prefix("b-")?;
        let (id, mac) = rest.split_once('-')?;
        let id = EmailId(uuid::Uuid::try_parse(id).ok()?);
        let given = hex::decode(mac).ok()?;
        let check = self.mac_state(id, domain);
        // A truncated MAC, compared in constant time.
        check.verify_truncated_left(&given).ok()?;
        (given.len() == MAC_BYTES).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn paths() -> ReturnPaths {
        ReturnPaths::new("Bounces.Acme.test.", b"0123456789abcdef-secret").unwrap()
    }

    #[test]
    fn an_address_names_its_email_and_nothing_else() {
        let id = EmailId::generate(Utc::now());
        let address = paths().address_for(id);
        assert!(
            address.as_str().ends_with("@bounces.acme.test"),
            "{address}"
        );
        assert!(address.as_str().len() < 80);
        assert_eq!(paths().email_of(address.as_str()), Some(id));
        assert_eq!(
            paths().email_of(&address.as_str().to_ascii_uppercase()),
            Some(id)
        );
        assert_eq!(paths().email_of(&format!("<{address}>")), Some(id));
        let other = ReturnPaths::new("bounces.acme.test", b"another secret of 16+ bytes").unwrap();
        assert_eq!(other.email_of(address.as_str()), None, "another secret");
        let mut chars: Vec<char> = address.as_str().chars().collect();
        let at = address.as_str().find('@').unwrap() - 1;
        chars[at] = if chars[at] == '0' { '1' } else { '0' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(paths().email_of(&tampered), None, "a changed MAC");
        let elsewhere = address.as_str().replace("bounces.acme.test", "evil.test");
        assert_eq!(paths().email_of(&elsewhere), None, "another domain");
        let at_sending_domain = paths().address_at(id, "Send.Acme.COM");
        assert!(at_sending_domain.as_str().ends_with("@send.acme.com"));
        assert_eq!(paths().email_of(at_sending_domain.as_str()), Some(id));
        let moved = at_sending_domain
            .as_str()
            .replace("send.acme.com", "send.evil.test");
        assert_eq!(
            paths().email_of(&moved),
            None,
            "the domain is under the MAC"
        );
        for junk in [
            "",
            "@",
            "b-@bounces.acme.test",
            "b-x-y@bounces.acme.test",
            "postmaster@bounces.acme.test",
        ] {
            assert_eq!(paths().email_of(junk), None, "{junk}");
        }
    }

    #[test]
    fn refuses_a_short_secret_or_a_bad_domain() {
        assert!(ReturnPaths::new("bounces.acme.test", b"short").is_err());
        assert!(ReturnPaths::new("not a domain", b"0123456789abcdef").is_err());
    }
}
