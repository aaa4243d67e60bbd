//! Domain names as a sending domain's name and its subdomain labels.

use std::fmt;

/// A domain name in lower case ASCII (an internationalized name in its
/// `xn--` form), with at least two labels, as DNS can publish records for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim().trim_end_matches('.');
        if trimmed.is_empty() {
            return Err("The domain name is empty.".into());
        }
        let ascii = match url::Host::parse(trimmed) {
            Ok(url::Host::Domain(d)) => d,
            Ok(_) => return Err(format!("`{trimmed}` is an IP address, not a domain name.")),
            Err(e) => return Err(format!("`{trimmed}` is not a domain name: {e}.")),
        };
        if ascii.len() > 253 {
            return Err("A domain name has at most 253 characters.".into());
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        if labels.len() < 2 {
            return Err(format!(
                "`{ascii}` is not a domain name one can publish records for (it needs a dot)."
            ));
        }
        for label in &labels {
            check_label(label).map_err(|e| format!("`{ascii}`: {e}"))?;
        }
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is this name or one of its subdomains.
    pub fn covers(&self, other: &str) -> bool {
        let other = other.trim_end_matches('.');
        other.eq_ignore_ascii_case(&self.0)
            || (other.len() > self.0.len()
                && other.as_bytes()[other.len() - self.0.len() - 1] == b'.'
                && other[other.len() - self.0.len()..].eq_ignore_ascii_case(&self.0))
    }
}

/// A DNS label: letters, digits and hyphens, 1 to 63 of them, not starting
/// or ending with a hyphen.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > 63 {
        return Err("each label has 1 to 63 characters.".into());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(format!(
            "the label `{label}` may hold only letters, digits and hyphens."
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("the label `{label}` starts or ends with a hyphen."));
    }
    Ok(())
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lower_case_ascii_with_a_dot() {
        assert_eq!(
            DomainName::parse(" Acme.COM. ").unwrap().as_str(),
            "acme.com"
        );
        assert_eq!(
            DomainName::parse("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            "localhost",
            "127.0.0.1",
            "a..b",
            "-a.com",
            "a_b.com",
            "a b.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DomainName::parse(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn a_name_covers_itself_and_its_subdomains_only() {
        let acme = DomainName::parse("acme.com").unwrap();
        assert!(acme.covers("acme.com"));
        assert!(acme.covers("Mail.ACME.com"));
        assert!(!acme.covers("notacme.com"));
        assert!(!acme.covers("acme.com.evil"));
        assert!(!acme.covers("com"));
    }
}
