//! Listing addresses by hand (`POST /v1/suppressions`, its batch form):
//! one entry per distinct address, kept in the list's key form.

use crate::ServiceError;
use chrono::{DateTime, Utc};
use mailqueue_core::suppression::{
    suppression_key, Suppression, SuppressionOrigin, SuppressionStore,
};
use mailqueue_core::{EmailAddress, SuppressionId};

/// Lists `addresses` (origin `manual`) in one transaction; answers the
/// entry of each distinct address, the new one or the one already there.
pub async fn add_manual_suppressions(
    store: &dyn SuppressionStore,
    addresses: &[EmailAddress],
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<Suppression>, ServiceError> {
    let mut entries: Vec<Suppression> = Vec::with_capacity(addresses.len());
    for address in addresses {
        let email = suppression_key(address);
        if !entries.iter().any(|e| e.email == email) {
            entries.push(Suppression {
                id: SuppressionId::generate(now),
                email,
                origin: SuppressionOrigin::Manual,
                reason: reason.clone(),
                email_id: None,
                created_at: now,
            });
        }
    }
    Ok(store.add_suppressions(&entries).await?)
}
