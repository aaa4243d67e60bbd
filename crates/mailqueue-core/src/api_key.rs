//! API keys: their tokens, names and permissions.
//!
//! A token is shown once, when it is created; only its SHA-256 is stored.
//! Tokens carry 192 random bits, so a fast hash is the right tool here (a
//! password hash would only slow every request down).

use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The prefix every token starts with, so leaked tokens are easy to grep for.
pub const TOKEN_PREFIX: &str = "mq_";

/// A freshly generated secret token. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Builds a token from 24 bytes of a cryptographic random source.
    pub fn from_random(bytes: [u8; 24]) -> Self {
        Self(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }

    /// The first characters, safe to display in listings.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(TOKEN_PREFIX.len() + 6).collect()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}…)", self.display_prefix())
    }
}

/// The stored form of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes whatever a client presented, valid-looking or not.
    pub fn of(presented: &str) -> Self {
        Self(Sha256::digest(presented.as_bytes()).into())
    }
}

/// What a key may do, in Resend's terms. Stored as its text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ApiKeyPermission {
    /// Every route: reading, changing and cancelling emails, managing keys.
    /// Keys made before permissions existed have it.
    #[default]
    FullAccess,
    /// Only sending: `POST /v1/emails` and `POST /v1/emails/batch`.
    SendingAccess,
}

impl ApiKeyPermission {
    pub const ALL: [Self; 2] = [Self::FullAccess, Self::SendingAccess];

    /// The name Resend uses, which is also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullAccess => "full_access",
            Self::SendingAccess => "sending_access",
        }
    }
}

impl fmt::Display for ApiKeyPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for ApiKeyPermission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a permission; use `full_access` or `sending_access`.")
            })
    }
}

/// The name of a new key: 1 to 50 characters (Resend's limit) once the
/// surrounding whitespace is trimmed, and no control characters, so that
/// listings stay one line per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyName(String);

impl ApiKeyName {
    pub const MAX_CHARS: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("The API key name must not be empty.".into());
        }
        let chars = name.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(format!(
                "The API key name has {chars} characters; at most {} are allowed.",
                Self::MAX_CHARS
            ));
        }
        if name.chars().any(char::is_control) {
            return Err("The API key name must not contain control characters.".into());
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_round_trip_through_their_names() {
        for p in ApiKeyPermission::ALL {
            assert_eq!(p.as_str().parse::<ApiKeyPermission>(), Ok(p));
        }
        assert_eq!(ApiKeyPermission::default(), ApiKeyPermission::FullAccess);
        assert!("admin".parse::<ApiKeyPermission>().is_err());
        assert!("Full_Access".parse::<ApiKeyPermission>().is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ApiKeyName::parse("  ci ").unwrap().as_str(), "ci");
        assert!(ApiKeyName::parse("   ").is_err());
        assert!(ApiKeyName::parse(&"é".repeat(50)).is_ok());
        assert!(ApiKeyName::parse(&"é".repeat(51)).is_err());
        assert!(ApiKeyName::parse("two\nlines").is_err());
    }

    #[test]
    fn tokens_hash_the_same_as_the_presented_text() {
        let t = ApiToken::from_random([7; 24]);
        assert!(t.expose().starts_with("mq_"));
        assert_eq!(t.expose().len(), 3 + 48);
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
        assert!(!format!("{t:?}").contains(&t.expose()[10..]));
    }
}
