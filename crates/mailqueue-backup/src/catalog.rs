//! The catalog: every published backup, read from the manifests. Objects
//! without a manifest (a run that failed or is still running) are not in it.

use crate::destination::Destination;
use crate::error::BackupError;
use crate::kind::BackupKind;
use crate::manifest::Manifest;
use crate::naming::MANIFEST_SUFFIX;
use futures::StreamExt;

/// All manifests of `kind` (all kinds when `None`), oldest first.
pub async fn list(
    dest: &Destination,
    kind: Option<BackupKind>,
) -> Result<Vec<Manifest>, BackupError> {
    let mut folders: Vec<&str> = match kind {
        Some(k) => vec![k.folder()],
        None => BackupKind::CATALOGUED.iter().map(|k| k.folder()).collect(),
    };
    // Kinds can share a folder (Redis RDB and AOF).
    folders.sort_unstable();
    folders.dedup();
    let mut keys = Vec::new();
    for folder in folders {
        let listed = dest.list(folder).await?;
        keys.extend(
            listed
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k.ends_with(MANIFEST_SUFFIX)),
        );
    }
    // Manifests are small: read several at a time, not one round trip each.
    let read: Vec<Result<Manifest, BackupError>> = futures::stream::iter(keys)
        .map(|key| async move {
            let bytes = dest.get(&key).await?;
            serde_json::from_slice::<Manifest>(&bytes).map_err(|e| BackupError::Corrupt {
                key,
                detail: format!("the manifest is not valid: {e}"),
            })
        })
        .buffered(8)
        .collect()
        .await;
    let mut manifests = Vec::new();
    for manifest in read {
        let manifest = manifest?;
        if kind.is_none_or(|k| manifest.kind == k) {
            manifests.push(manifest);
        }
    }
    manifests.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
    Ok(manifests)
}

/// `latest` or a backup id.
pub async fn find(
    dest: &Destination,
    kind: BackupKind,
    selector: &str,
) -> Result<Manifest, BackupError> {
    let all = list(dest, Some(kind)).await?;
    let found = if selector == "latest" {
        all.into_iter().last()
    } else {
        all.into_iter()
            .find(|m| m.id == selector || m.object == selector)
    };
    found.ok_or_else(|| BackupError::NotFound(format!("{kind} {selector}")))
}
