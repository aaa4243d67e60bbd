//! API tokens. A token is shown once, when it is created; only its SHA-256
//! is stored. Tokens carry 192 random bits, so a fast hash is the right
//! tool here (a password hash would only slow every request down).

use sha2::{Digest, Sha256};
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_the_same_as_the_presented_text() {
        let t = ApiToken::from_random([7; 24]);
        assert!(t.expose().starts_with("mq_"));
        assert_eq!(t.expose().len(), 3 + 48);
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
        assert!(!format!("{t:?}").contains(&t.expose()[10..]));
    }
}
