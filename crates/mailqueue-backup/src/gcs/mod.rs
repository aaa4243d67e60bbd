//! Google Cloud Storage through its JSON API.
//!
//! `object_store`'s own GCS client speaks the XML API, which GCS
//! emulators do not serve; this store speaks the JSON API that Google's
//! SDKs use, so the code that runs against GCS is the code tested against
//! an emulator. Credentials (service account, application default,
//! metadata server) still come from `object_store`'s GCS builder.

mod client;
mod download;
mod resources;
mod resumable;

use async_trait::async_trait;
use bytes::Bytes;
use client::{generic, GcsClient, SHORT_TIMEOUT};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::gcp::GcpCredentialProvider;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMode,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use resources::{ObjectList, ObjectResource};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct GcsStore {
    client: Arc<GcsClient>,
}

impl std::fmt::Display for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GCS({})", self.client.bucket())
    }
}

fn unsupported(what: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("the GCS store does not support {what}").into(),
    }
}

impl GcsStore {
    /// A store for `bucket` at `base` (`https://storage.googleapis.com`, or
    /// an emulator's address).
    pub fn new(
        base: &str,
        bucket: &str,
        credentials: GcpCredentialProvider,
    ) -> object_store::Result<Self> {
        Ok(Self {
            client: Arc::new(GcsClient::new(base, bucket, credentials)?),
        })
    }

    /// Fetches an object's resource (its metadata).
    async fn resource(&self, name: &str) -> object_store::Result<ObjectResource> {
        let url = self.client.object_url(name);
        let answer = self
            .client
            .send(name, |http| http.get(&url).timeout(SHORT_TIMEOUT))
            .await?;
        answer.json().await.map_err(generic)
    }

    /// One page of a listing.
    async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
    ) -> object_store::Result<ObjectList> {
        let url = self.client.objects_url();
        let mut query = vec![("prefix", prefix)];
        if delimiter {
            query.push(("delimiter", "/"));
        }
        if let Some(token) = token {
            query.push(("pageToken", token));
        }
        let answer = self
            .client
            .send(prefix, |http| {
                http.get(&url).query(&query).timeout(SHORT_TIMEOUT)
            })
            .await?;
        answer.json().await.map_err(generic)
    }

    async fn rewrite(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        let url = format!(
            "{}/rewriteTo/{}",
            self.client.object_url(from.as_ref()),
            self.client.object_path(to.as_ref())
        );
        let mut token: Option<String> = None;
        loop {
            let query: Vec<(&str, &str)> = token
                .as_deref()
                .map(|t| vec![("rewriteToken", t)])
                .unwrap_or_default();
            let answer = self
                .client
                .send(to.as_ref(), |http| {
                    http.post(&url).query(&query).timeout(SHORT_TIMEOUT)
                })
                .await?;
            let progress: serde_json::Value = answer.json().await.map_err(generic)?;
            if progress["done"].as_bool().unwrap_or(false) {
                return Ok(());
            }
            token = progress["rewriteToken"].as_str().map(str::to_string);
            if token.is_none() {
                return Err(generic(format!(
                    "copying {from} to {to}: GCS sent neither done nor a rewrite token"
                )));
            }
        }
    }
}

fn listing_prefix(prefix: Option<&Path>) -> String {
    match prefix.map(|p| p.as_ref()) {
        None | Some("") => String::new(),
        Some(p) => format!("{p}/"),
    }
}

#[async_trait]
impl ObjectStore for GcsStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        // Backups never overwrite a name they did not choose free, so
        // conditional writes (GCS preconditions) are not needed.
        if opts.mode != PutMode::Overwrite {
            return Err(unsupported("conditional writes"));
        }
        let name = location.as_ref();
        let url = self.client.upload_url();
        let body = Bytes::from(payload);
        let query = [("uploadType", "media"), ("name", name)];
        let answer = self
            .client
            .send(name, |http| {
                http.post(&url)
                    .query(&query)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone())
                    .timeout(client::PART_TIMEOUT)
            })
            .await?;
        let object: ObjectResource = answer.json().await.map_err(generic)?;
        Ok(PutResult {
            e_tag: object.etag,
            version: object.generation,
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let upload =
            resumable::ResumableUpload::start(self.client.clone(), location.as_ref()).await?;
        Ok(Box::new(upload))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.if_match.is_some()
            || options.if_none_match.is_some()
            || options.if_modified_since.is_some()
            || options.if_unmodified_since.is_some()
            || options.version.is_some()
        {
            return Err(unsupported("conditional or versioned reads"));
        }
        let meta = self.resource(location.as_ref()).await?.into_meta()?;
        let range = match &options.range {
            Some(range) => range.as_range(meta.size).map_err(generic)?,
            None => 0..meta.size,
        };
        let payload = if options.head {
            stream::empty().boxed()
        } else {
            download::stream(self.client.clone(), &meta, range.clone())
        };
        Ok(GetResult {
            payload: object_store::GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Default::default(),
        })
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        let url = self.client.object_url(location.as_ref());
        self.client
            .send(location.as_ref(), |http| {
                http.delete(&url).timeout(SHORT_TIMEOUT)
            })
            .await
            .map(|_| ())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.clone();
        let prefix = listing_prefix(prefix);
        // State: the next page's token, or None once the last page is read.
        stream::try_unfold(Some(None::<String>), move |state| {
            let (store, prefix) = (store.clone(), prefix.clone());
            async move {
                let Some(token) = state else {
                    return Ok::<_, object_store::Error>(None);
                };
                let page = store.list_page(&prefix, false, token.as_deref()).await?;
                let items = page
                    .items
                    .into_iter()
                    .map(ObjectResource::into_meta)
                    .collect::<Vec<_>>();
                let next = page.next_page_token.map(Some);
                Ok(Some((stream::iter(items), next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let prefix = listing_prefix(prefix);
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(&prefix, true, token.as_deref()).await?;
            for folder in page.prefixes {
                result
                    .common_prefixes
                    .push(Path::parse(folder.trim_end_matches('/'))?);
            }
            for item in page.items {
                result.objects.push(item.into_meta()?);
            }
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(result),
            }
        }
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.rewrite(from, to).await
    }

    async fn copy_if_not_exists(&self, _from: &Path, _to: &Path) -> object_store::Result<()> {
        Err(unsupported("copies that must not overwrite"))
    }
}
