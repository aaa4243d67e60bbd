//! Applies a retention policy to the catalog. A pruned backup loses its
//! manifest first, then its object, so an interrupted prune never leaves a
//! manifest that points at nothing.

use crate::catalog;
use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::naming;
use crate::retention::{evaluate, BackupRetention, Decision};
use chrono::{DateTime, Utc};

pub async fn prune(
    dest: &Destination,
    kind: BackupKind,
    policy: &BackupRetention,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Vec<Decision>, BackupError> {
    let manifests = catalog::list(dest, Some(kind)).await?;
    let decisions = evaluate(&manifests, policy, now);
    if !dry_run {
        for d in decisions.iter().filter(|d| !d.keep()) {
            if let Some(m) = manifests.iter().find(|m| m.id == d.id) {
                dest.delete(&naming::manifest_key(&m.object)).await?;
                dest.delete(&m.object).await?;
            }
        }
    }
    Ok(decisions)
}
