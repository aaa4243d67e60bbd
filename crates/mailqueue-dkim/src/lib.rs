//! DKIM keys and DNS lookups for sending domains, behind the core's
//! `DkimKeys` and `DnsLookup` traits.
//!
//! `keys.rs` generates keys (RSA-2048 and Ed25519, with AWS-LC) and makes
//! signers with `mail-auth` over the keys of `signing_keys.rs`;
//! `sealing.rs` encrypts private keys under the server's secret key;
//! `dns.rs` asks DNS through `hickory-resolver`, without a cache, so a
//! check sees what is published now.

mod dns;
mod keys;
mod sealing;
mod signing_keys;

pub use dns::{DnsServers, HickoryLookup};
pub use keys::{MailAuthKeys, SIGNED_HEADERS};
pub use sealing::{KeySealer, SecretKey};
