//! A WAL push costs one object write and a bounded number of requests,
//! however large the archive: never a listing of the archive or a read of
//! a manifest. Counted by a wrapper around an in-memory object store that
//! records every request.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use futures::stream::BoxStream;
use mailqueue_backup::wal::{push, PushOptions, PushOutcome};
use mailqueue_backup::{Compression, Destination};
use mailqueue_testkit::TempDir;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counting {
    inner: InMemory,
    requests: Mutex<Vec<String>>,
}

impl Counting {
    fn note(&self, what: String) {
        self.requests.lock().unwrap().push(what);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counting")
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.note(format!("PUT {location}"));
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.note(format!("MULTIPART {location}"));
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.note(format!("GET {location}"));
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.note(format!("DELETE {location}"));
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.note(format!(
            "LIST {}",
            prefix.map(|p| p.to_string()).unwrap_or_default()
        ));
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.note(format!(
            "LISTDIR {}",
            prefix.map(|p| p.to_string()).unwrap_or_default()
        ));
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

fn segment(n: u32) -> String {
    format!("0000000100000000{n:08X}")
}

#[tokio::test]
async fn a_push_is_one_listing_of_its_own_folder_and_one_write_whatever_the_archive_holds() {
    let store = Arc::new(Counting::default());
    let dest = Destination::from_store(store.clone(), "prod", "counting store");
    let dir = TempDir::new("wal-cost");
    let options = PushOptions {
        compression: Compression::Zstd,
        recipients: Vec::new(),
    };
    // An archive of 200 segments (and a timeline history file) already.
    for n in 1..=200 {
        let file = dir.path().join(segment(n));
        std::fs::write(&file, vec![n as u8; 64 * 1024]).unwrap();
        push(&dest, &file, &options).await.unwrap();
    }
    store.take();
    let file = dir.path().join(segment(201));
    std::fs::write(&file, vec![7u8; 64 * 1024]).unwrap();
    let outcome = push(&dest, &file, &options).await.unwrap();
    assert!(matches!(outcome, PushOutcome::Stored { .. }), "{outcome:?}");
    let folder = format!("prod/wal/0000000100000000/{}", segment(201));
    assert_eq!(
        store.take(),
        vec![
            format!("LIST {folder}"),
            format!(
                "PUT {}",
                match outcome {
                    PushOutcome::Stored { key, .. } => format!("prod/{key}"),
                    PushOutcome::AlreadyArchived { .. } => unreachable!(),
                }
            )
        ],
        "one listing of the segment's own folder, one write"
    );
    // Again, with the same content: one listing, no write.
    assert!(matches!(
        push(&dest, &file, &options).await.unwrap(),
        PushOutcome::AlreadyArchived { .. }
    ));
    assert_eq!(store.take(), vec![format!("LIST {folder}")]);
}
