//! Where backups are stored: a local directory (the default), S3 or GCS,
//! all behind `object_store`'s interface, which brings multipart uploads,
//! retries and timeouts. GCS goes through our JSON-API store (see
//! `crate::gcs`). Keys are relative to the destination's prefix.

use crate::error::BackupError;
use crate::gcs::GcsStore;
use bytes::Bytes;
use futures::StreamExt;
use object_store::gcp::{GcpCredential, GcpCredentialProvider};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, StaticCredentialProvider};
use std::sync::Arc;

const GCS_BASE_URL: &str = "https://storage.googleapis.com";

#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    description: String,
    /// The directory of a local destination, whose writes are synced to
    /// disk before they count as done.
    local_root: Option<std::path::PathBuf>,
}

/// An object's size and when it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStamp {
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// An object found under a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

fn split_bucket_url(url: &str, scheme: &str) -> Result<(String, String), BackupError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| BackupError::Config(format!("`{url}` is not a URL: {e}")))?;
    if parsed.scheme() != scheme {
        return Err(BackupError::Config(format!(
            "`{url}` must start with {scheme}://"
        )));
    }
    let bucket = parsed
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| BackupError::Config(format!("`{url}` names no bucket")))?;
    Ok((
        bucket.to_string(),
        parsed.path().trim_matches('/').to_string(),
    ))
}

impl Destination {
    /// A directory on this machine, created if missing.
    pub fn local(dir: &std::path::Path) -> Result<Self, BackupError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| BackupError::io(format!("creating {}", dir.display()), e))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| BackupError::storage(dir.display(), e))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: String::new(),
            description: dir.display().to_string(),
            local_root: Some(dir.to_path_buf()),
        })
    }

    /// A directory that must already exist: for reads where an absent
    /// directory (an unmounted volume) must not look like an empty archive.
    pub fn local_existing(dir: &std::path::Path) -> Result<Self, BackupError> {
        if !dir.is_dir() {
            return Err(BackupError::storage(
                dir.display(),
                "the backup directory does not exist (is its volume mounted?)",
            ));
        }
        Self::local(dir)
    }

    /// `s3://bucket/prefix`; credentials, region and `AWS_ENDPOINT_URL` come
    /// from the standard `AWS_*` variables.
    pub fn s3(url: &str) -> Result<Self, BackupError> {
        let (bucket, prefix) = split_bucket_url(url, "s3")?;
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|e| BackupError::storage(url, e))?;
        Ok(Self {
            store: Arc::new(store),
            prefix,
            description: url.to_string(),
            local_root: None,
        })
    }

    /// `gs://bucket/prefix`, with the standard Google credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, `GOOGLE_SERVICE_ACCOUNT*`, or the
    /// metadata server). `STORAGE_EMULATOR_HOST`, as Google's SDKs read it,
    /// points at an emulator instead, without OAuth.
    pub fn gcs(url: &str) -> Result<Self, BackupError> {
        let (bucket, prefix) = split_bucket_url(url, "gs")?;
        let (base, credentials): (String, GcpCredentialProvider) =
            match std::env::var("STORAGE_EMULATOR_HOST") {
                Ok(host) => {
                    let base = if host.starts_with("http") {
                        host
                    } else {
                        format!("http://{host}")
                    };
                    let anonymous = StaticCredentialProvider::new(GcpCredential {
                        bearer: String::new(),
                    });
                    (base, Arc::new(anonymous))
                }
                Err(_) => {
                    let google = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(&bucket)
                        .build()
                        .map_err(|e| BackupError::storage(url, e))?;
                    (GCS_BASE_URL.to_string(), google.credentials().clone())
                }
            };
        let store =
            GcsStore::new(&base, &bucket, credentials).map_err(|e| BackupError::storage(url, e))?;
        Ok(Self {
            store: Arc::new(store),
            prefix,
            description: url.to_string(),
            local_root: None,
        })
    }

    /// A destination over any object store (tests inject faults this way).
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: &str, description: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            description: description.to_string(),
            local_root: None,
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The full path of a key.
    pub fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    fn relative(&self, path: &ObjectPath) -> String {
        let full = path.to_string();
        match full.strip_prefix(&format!("{}/", self.prefix)) {
            Some(rest) if !self.prefix.is_empty() => rest.to_string(),
            _ => full,
        }
    }

    pub fn location(&self, key: &str) -> String {
        format!("{}/{key}", self.description.trim_end_matches('/'))
    }

    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| BackupError::storage(self.location(key), e))?;
        self.restrict_local(key)
    }

    /// In a local directory, makes the object at `key` readable by its
    /// owner and group only (`0640`, its folders `0750`), as pgBackRest
    /// keeps its repository: backups hold every email. Object stores have
    /// their own access control; nothing is done there.
    pub fn restrict_local(&self, key: &str) -> Result<(), BackupError> {
        use std::os::unix::fs::PermissionsExt;
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let file = root.join(self.path(key).as_ref());
        let set = |path: &std::path::Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| BackupError::io(format!("restricting {}", path.display()), e))
        };
        set(&file, 0o640)?;
        for dir in file
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(root) && *d != root)
        {
            set(dir, 0o750)?;
        }
        Ok(())
    }

    /// Writes `bytes` at `key` and returns only once the object is durable:
    /// an object store's answer to a PUT, and for a local directory the
    /// file and its directory synced to disk.
    pub async fn put_durable(&self, key: &str, bytes: Bytes) -> Result<(), BackupError> {
        self.store
            .put(&self.path(key), PutPayload::from(bytes))
            .await
            .map_err(|e| BackupError::storage(self.location(key), e))?;
        self.restrict_local(key)?;
        if let Some(root) = &self.local_root {
            let file = root.join(self.path(key).as_ref());
            let sync = move || -> std::io::Result<()> {
                std::fs::File::open(&file)?.sync_all()?;
                if let Some(dir) = file.parent() {
                    std::fs::File::open(dir)?.sync_all()?;
                }
                Ok(())
            };
            tokio::task::spawn_blocking(sync)
                .await
                .map_err(|e| BackupError::Io(format!("syncing {}: {e}", self.location(key))))?
                .map_err(|e| BackupError::io(format!("syncing {}", self.location(key)), e))?;
        }
        Ok(())
    }

    /// Whether an object exists at `key` (one request).
    pub async fn exists(&self, key: &str) -> Result<bool, BackupError> {
        Ok(self.stamp(key).await?.is_some())
    }

    /// An object's size and time, `None` when there is none (one request).
    pub async fn stamp(&self, key: &str) -> Result<Option<ObjectStamp>, BackupError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(ObjectStamp {
                size: meta.size,
                last_modified: meta.last_modified,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BackupError::storage(self.location(key), e)),
        }
    }

    /// An object's bytes, `None` when there is none; any other failure is
    /// an error (a missing object and an unreachable store are told apart).
    pub async fn get_optional(&self, key: &str) -> Result<Option<Bytes>, BackupError> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => got
                .bytes()
                .await
                .map(Some)
                .map_err(|e| BackupError::storage(self.location(key), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BackupError::storage(self.location(key), e)),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, BackupError> {
        let got = self
            .store
            .get(&self.path(key))
            .await
            .map_err(|e| BackupError::storage(self.location(key), e))?;
        got.bytes()
            .await
            .map_err(|e| BackupError::storage(self.location(key), e))
    }

    pub async fn delete(&self, key: &str) -> Result<(), BackupError> {
        self.store
            .delete(&self.path(key))
            .await
            .map_err(|e| BackupError::storage(self.location(key), e))
    }

    /// The names of the folders directly under `folder` (one request per
    /// thousand or so; the archive has one folder per 4 GB of WAL).
    pub async fn list_folders(&self, folder: &str) -> Result<Vec<String>, BackupError> {
        let prefix = self.path(folder);
        let listed = self
            .store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| BackupError::storage(self.location(folder), e))?;
        let mut out: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Every object under `folder` (recursively).
    pub async fn list(&self, folder: &str) -> Result<Vec<ObjectInfo>, BackupError> {
        let prefix = self.path(folder);
        let mut listing = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| BackupError::storage(self.location(folder), e))?;
            out.push(ObjectInfo {
                key: self.relative(&meta.location),
                size: meta.size,
                last_modified: meta.last_modified,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls_split_into_bucket_and_prefix() {
        assert_eq!(
            split_bucket_url("s3://b/x/y/", "s3").unwrap(),
            ("b".into(), "x/y".into())
        );
        assert_eq!(
            split_bucket_url("s3://b", "s3").unwrap(),
            ("b".into(), String::new())
        );
        assert!(split_bucket_url("gs://b/x", "s3").is_err());
        assert!(split_bucket_url("s3:///x", "s3").is_err());
    }
}
