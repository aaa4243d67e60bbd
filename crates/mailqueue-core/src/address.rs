//! Email addresses and mailboxes (`Name <local@domain>`), parsed once at the
//! edge. Only ASCII addresses are accepted; display names may be any text
//! without control characters and are encoded when the message is built.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Why a string is not an acceptable address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressError(String);

fn err(input: &str, why: &str) -> AddressError {
    let shown: String = input.chars().take(80).collect();
    AddressError(format!("invalid email address `{shown}`: {why}"))
}

/// A bare address, `local@domain`, in ASCII.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(err(input, "it is empty"));
        }
        if s.len() > 254 {
            return Err(err(input, "it is longer than 254 characters"));
        }
        if !s.is_ascii() {
            return Err(err(input, "internationalized addresses are not supported"));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| err(input, "it has no `@`"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(err(input, "the local part must have 1 to 64 characters"));
        }
        let local_ok = local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c))
        });
        if !local_ok {
            return Err(err(
                input,
                "the local part has a character that is not allowed",
            ));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = !domain.is_empty()
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(err(input, "the domain is not a valid host name"));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with an optional display name: `Acme <billing@acme.test>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl Mailbox {
    /// Accepts `a@b`, `<a@b>`, `Name <a@b>` and `"Quoted, Name" <a@b>`.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let s = input.trim();
        if s.chars().any(|c| c.is_control()) {
            return Err(err(input, "it contains a control character (CR, LF, ...)"));
        }
        let Some(open) = s.rfind('<') else {
            return Ok(Self {
                name: None,
                address: EmailAddress::parse(s)?,
            });
        };
        let inner = s[open + 1..]
            .strip_suffix('>')
            .ok_or_else(|| err(input, "the address must end with `>`"))?;
        let address = EmailAddress::parse(inner)?;
        let raw_name = s[..open].trim();
        let name =
            if let Some(quoted) = raw_name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                unescape_quoted(quoted)
            } else {
                if raw_name.contains('"') {
                    return Err(err(input, "the display name has an unbalanced quote"));
                }
                raw_name.to_string()
            };
        if name.chars().count() > 256 {
            return Err(err(input, "the display name is longer than 256 characters"));
        }
        Ok(Self {
            name: (!name.is_empty()).then_some(name),
            address,
        })
    }
}

fn unescape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Mailbox {
    /// The canonical text form; [`Mailbox::parse`] reads it back unchanged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            None => write!(f, "{}", self.address),
            Some(name)
                if name
                    .chars()
                    .all(|c| c.is_alphanumeric() || " .-_'".contains(c)) =>
            {
                write!(f, "{name} <{}>", self.address)
            }
            Some(name) => {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                write!(f, "\"{escaped}\" <{}>", self.address)
            }
        }
    }
}

impl Serialize for Mailbox {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mailbox {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Mailbox::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_named_mailboxes() {
        let m = Mailbox::parse("a.b+c@example.com").unwrap();
        assert_eq!(m.name, None);
        assert_eq!(m.address.as_str(), "a.b+c@example.com");
        let m = Mailbox::parse("Acme Billing <billing@acme.test>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Acme Billing"));
        assert_eq!(m.address.domain(), "acme.test");
        let m = Mailbox::parse(r#""Doe, \"JD\" Jane" <jane@x.io>"#).unwrap();
        assert_eq!(m.name.as_deref(), Some(r#"Doe, "JD" Jane"#));
        let m = Mailbox::parse("Zoë Ünïcode <z@x.io>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Zoë Ünïcode"));
    }

    #[test]
    fn display_form_parses_back_to_the_same_mailbox() {
        for input in [
            "x@y.z",
            "Plain Name <x@y.z>",
            r#""Doe, Jane" <x@y.z>"#,
            r#""a \"q\" \\ b" <x@y.z>"#,
            "Zoë <x@y.z>",
        ] {
            let m = Mailbox::parse(input).unwrap();
            assert_eq!(Mailbox::parse(&m.to_string()).unwrap(), m, "{input}");
        }
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "no-at-sign",
            "@example.com",
            "a@",
            "a..b@example.com",
            "a@-bad-.com",
            "a@exa mple.com",
            "Name <a@b.c",
            "a@b.c\r\nBcc: victim@x.y",
            "ünï@example.com",
            "Name \"unbalanced <a@b.c>",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
