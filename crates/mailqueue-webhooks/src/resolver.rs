//! Name resolution that keeps only public addresses, so a webhook whose
//! host resolves (now, or after a change of its DNS records) to a
//! private, loopback or link-local address is never connected to. Hosts
//! written as addresses skip resolution; `send.rs` checks those.

use mailqueue_core::webhooks::is_forbidden_address;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !is_forbidden_address(a.ip()))
                .collect();
            if public.is_empty() && !found.is_empty() {
                // The internal address itself is not named: the error is
                // shown to whoever manages the webhook.
                return Err(format!(
                    "{host} resolves only to private or otherwise internal addresses"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}
