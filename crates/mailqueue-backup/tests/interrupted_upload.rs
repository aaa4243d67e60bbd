//! An upload that breaks part-way publishes nothing. The break is injected
//! by a wrapper around a real local object store: no real server can be
//! made to fail at one exact step of a multipart upload.

#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use futures::stream::BoxStream;
use mailqueue_backup::backup_postgres::{backup_postgres, PostgresBackupOptions};
use mailqueue_backup::{catalog, Compression, Destination};
use mailqueue_testkit::{TempDir, TestDatabase};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
enum Break {
    FirstPart,
    Completion,
}

#[derive(Debug)]
struct Breaking {
    inner: LocalFileSystem,
    at: Break,
}

impl std::fmt::Display for Breaking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Breaking({})", self.inner)
    }
}

#[derive(Debug)]
struct BreakingUpload {
    inner: Box<dyn MultipartUpload>,
    at: Break,
}

fn broken() -> object_store::Error {
    object_store::Error::Generic {
        store: "test",
        source: "the connection was reset".into(),
    }
}

#[async_trait]
impl MultipartUpload for BreakingUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        match self.at {
            Break::FirstPart => Box::pin(async { Err(broken()) }),
            Break::Completion => self.inner.put_part(data),
        }
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        Err(broken())
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Breaking {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(BreakingUpload { inner, at: self.at }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn interrupted(at: Break) {
    let db = TestDatabase::create().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t AS SELECT i, md5(i::text) AS v FROM generate_series(1, 1000) i")
        .execute(&mut conn)
        .await
        .unwrap();
    let dir = TempDir::new("interrupted");
    let store = Breaking {
        inner: LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
        at,
    };
    let dest = Destination::from_store(Arc::new(store), "", "breaking store");
    let options = PostgresBackupOptions {
        database_url: db.url.clone(),
        compression: Compression::Zstd,
        recipients: Vec::new(),
        lock_dir: dir.path().join("locks"),
    };
    let err = backup_postgres(&dest, &options, chrono::Utc::now)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the connection was reset"),
        "{err}"
    );
    assert!(
        catalog::list(&dest, None).await.unwrap().is_empty(),
        "no manifest"
    );
    let left: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(dir.path().join("locks")))
        .collect();
    assert!(
        left.is_empty(),
        "the partial upload was cleaned up: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_broken_at_its_first_part_publishes_nothing() {
    interrupted(Break::FirstPart).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_broken_at_completion_publishes_nothing() {
    interrupted(Break::Completion).await;
}
