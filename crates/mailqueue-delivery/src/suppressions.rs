//! The suppression list at send time: one lookup for a whole batch of
//! claimed emails; suppressed recipients leave the envelope (and the
//! headers) and are reported with `email.suppressed`. An email left with
//! no recipient is not sent at all.

use crate::Delivery;
use mailqueue_core::store::{ClaimedEmail, StoreError, SuppressedRecipient};
use mailqueue_core::EmailAddress;
use std::collections::HashSet;

/// Takes the suppressed recipients out of each claimed email.
pub async fn apply(d: &Delivery, claimed: &mut [ClaimedEmail]) -> Result<(), StoreError> {
    let addresses: Vec<EmailAddress> = claimed
        .iter()
        .flat_map(|c| c.email.recipients().map(|m| m.address.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let suppressed = d.store.suppressed_among(&addresses).await?;
    if suppressed.is_empty() {
        return Ok(());
    }
    for c in claimed.iter_mut() {
        let is_suppressed =
            |address: &EmailAddress| suppressed.iter().find(|s| s.address == *address).cloned();
        let mut taken: Vec<SuppressedRecipient> = Vec::new();
        for list in c.email.recipient_lists_mut() {
            list.retain(|m| match is_suppressed(&m.address) {
                Some(s) => {
                    if !taken.iter().any(|t| t.address == s.address) {
                        taken.push(s);
                    }
                    false
                }
                None => true,
            });
        }
        c.suppressed = taken;
    }
    Ok(())
}
