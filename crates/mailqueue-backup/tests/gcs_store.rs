//! The GCS store against a real GCS emulator: resumable uploads of parts
//! in flight together, ranged and resumed downloads, listings, deletes and
//! copies. Broken connections come from a loopback proxy that cuts one
//! connection part-way: no real server breaks at a chosen byte.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use futures::TryStreamExt;
use mailqueue_backup::gcs::GcsStore;
use mailqueue_testkit::GcsEmulator;
use object_store::gcp::GcpCredential;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload, StaticCredentialProvider};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn store(endpoint: &str, bucket: &str) -> GcsStore {
    let anonymous = StaticCredentialProvider::new(GcpCredential {
        bearer: String::new(),
    });
    GcsStore::new(endpoint, bucket, Arc::new(anonymous)).unwrap()
}

/// Bytes that differ everywhere, so a misplaced chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Uploads `parts` the way the backup writer does: each part started
/// before the one before it has finished.
async fn upload_in_parts(store: &GcsStore, name: &str, parts: &[Vec<u8>]) {
    let mut upload = store.put_multipart(&Path::from(name)).await.unwrap();
    let mut running = Vec::new();
    for part in parts {
        running.push(tokio::spawn(
            upload.put_part(PutPayload::from(part.clone())),
        ));
    }
    for part in running {
        part.await.unwrap().unwrap();
    }
    upload.complete().await.unwrap();
}

async fn read_all(store: &GcsStore, name: &str) -> Vec<u8> {
    let got = store.get(&Path::from(name)).await.unwrap();
    got.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn parts_in_flight_together_land_in_order() {
    let gcs = GcsEmulator::start("parts");
    let store = store(&gcs.endpoint(), "parts");
    // Sizes that are not multiples of GCS's 256 KiB chunk quantum.
    let parts = vec![
        pattern(8 * 1024 * 1024 + 100, 1),
        pattern(3 * 1024 * 1024 + 7, 2),
        pattern(262_143, 3),
        pattern(1, 4),
    ];
    let whole: Vec<u8> = parts.concat();
    upload_in_parts(&store, "postgresql/2024-01-15/big.dump.zst", &parts).await;
    let stored = gcs.download("postgresql/2024-01-15/big.dump.zst");
    assert_eq!(stored.len(), whole.len());
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&whole));
    assert_eq!(
        read_all(&store, "postgresql/2024-01-15/big.dump.zst").await,
        whole
    );
}

#[tokio::test]
async fn empty_and_small_objects_upload_whole() {
    let gcs = GcsEmulator::start("small");
    let store = store(&gcs.endpoint(), "small");
    upload_in_parts(&store, "a/empty", &[]).await;
    upload_in_parts(&store, "a/tiny", &[b"hello".to_vec()]).await;
    store
        .put(
            &Path::from("a/manifest.json"),
            PutPayload::from(b"{}".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(read_all(&store, "a/empty").await, Vec::<u8>::new());
    assert_eq!(read_all(&store, "a/tiny").await, b"hello".to_vec());
    assert_eq!(gcs.download("a/manifest.json"), b"{}".to_vec());
}

#[tokio::test]
async fn listings_ranges_deletes_and_copies_behave_like_object_store() {
    let gcs = GcsEmulator::start("ops");
    let store = store(&gcs.endpoint(), "ops");
    for name in ["p/2024-01-15/x.dump", "p/2024-01-16/y.dump", "q/z.rdb"] {
        store
            .put(&Path::from(name), PutPayload::from(pattern(1000, 9)))
            .await
            .unwrap();
    }
    let mut listed: Vec<String> = store
        .list(Some(&Path::from("p")))
        .map_ok(|m| format!("{} {}", m.location, m.size))
        .try_collect()
        .await
        .unwrap();
    listed.sort();
    assert_eq!(
        listed,
        vec!["p/2024-01-15/x.dump 1000", "p/2024-01-16/y.dump 1000"]
    );
    let folders = store
        .list_with_delimiter(Some(&Path::from("p")))
        .await
        .unwrap();
    let mut prefixes: Vec<String> = folders
        .common_prefixes
        .iter()
        .map(|p| p.to_string())
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, vec!["p/2024-01-15", "p/2024-01-16"]);

    let got = store
        .get_opts(
            &Path::from("q/z.rdb"),
            GetOptions {
                range: Some(GetRange::Bounded(100..250)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.range, 100..250);
    assert_eq!(
        got.bytes().await.unwrap(),
        Bytes::from(pattern(1000, 9)[100..250].to_vec())
    );
    let head = store.head(&Path::from("q/z.rdb")).await.unwrap();
    assert_eq!(head.size, 1000);

    store
        .copy(&Path::from("q/z.rdb"), &Path::from("q/copy.rdb"))
        .await
        .unwrap();
    assert_eq!(gcs.download("q/copy.rdb"), pattern(1000, 9));
    let again = store
        .copy_if_not_exists(&Path::from("q/z.rdb"), &Path::from("q/copy.rdb"))
        .await;
    assert!(
        matches!(again, Err(object_store::Error::NotSupported { .. })),
        "{again:?}"
    );
    let create = store
        .put_opts(
            &Path::from("q/new"),
            PutPayload::from(b"x".to_vec()),
            object_store::PutMode::Create.into(),
        )
        .await;
    assert!(
        matches!(create, Err(object_store::Error::NotSupported { .. })),
        "{create:?}"
    );

    store.delete(&Path::from("q/z.rdb")).await.unwrap();
    let gone = store.get(&Path::from("q/z.rdb")).await;
    assert!(
        matches!(gone, Err(object_store::Error::NotFound { .. })),
        "{gone:?}"
    );
    assert_eq!(gcs.list("q/"), vec!["q/copy.rdb".to_string()]);
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let gcs = GcsEmulator::start("exists");
    let store = store(&gcs.endpoint(), "no-such-bucket");
    let listed: Result<Vec<_>, _> = store.list(None).try_collect().await;
    let err = listed.unwrap_err().to_string();
    assert!(err.contains("404"), "{err}");
}

/// Which way a proxy cuts its one broken connection.
#[derive(Clone, Copy)]
enum Cut {
    /// After this many bytes from the client (a request body).
    Upstream(usize),
    /// After this many bytes from the server (a response body).
    Downstream(usize),
    /// Answer the first request with 503 instead of passing it on.
    Unavailable,
}

/// A loopback proxy in front of `target` that breaks the first connection
/// carrying more than the cut's bytes in its direction, once.
async fn breaking_proxy(target: u16, cut: Cut) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broke = Arc::new(AtomicBool::new(false));
    let flag = broke.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            if matches!(cut, Cut::Unavailable) && !flag.swap(true, Ordering::SeqCst) {
                let mut request = vec![0u8; 64 * 1024];
                let _ = client.read(&mut request).await;
                let _ = client
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbusy, later")
                    .await;
                continue;
            }
            let server = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
            tokio::spawn(relay(client, server, cut, flag.clone()));
        }
    });
    (port, broke)
}

async fn relay(client: TcpStream, server: TcpStream, cut: Cut, broke: Arc<AtomicBool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (up_limit, down_limit) = match cut {
        Cut::Upstream(n) => (Some(n), None),
        Cut::Downstream(n) => (None, Some(n)),
        Cut::Unavailable => (None, None),
    };
    let up = pump(&mut client_read, &mut server_write, up_limit, &broke);
    let down = pump(&mut server_read, &mut client_write, down_limit, &broke);
    // Either direction ending (or being cut) ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    limit: Option<usize>,
    broke: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut passed = 0usize;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(limit) = limit {
            if passed + n > limit && !broke.swap(true, Ordering::SeqCst) {
                let _ = to.write_all(&buf[..limit - passed]).await;
                return;
            }
        }
        passed += n;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn an_upload_cut_mid_chunk_resumes_from_what_gcs_holds() {
    let gcs = GcsEmulator::start("cut");
    let (port, broke) = breaking_proxy(gcs.port(), Cut::Upstream(3 * 1024 * 1024)).await;
    let store = store(&format!("http://127.0.0.1:{port}"), "cut");
    let parts = vec![pattern(8 * 1024 * 1024, 5), pattern(5 * 1024 * 1024 + 3, 6)];
    upload_in_parts(&store, "redis/r.rdb.gz", &parts).await;
    assert!(broke.load(Ordering::SeqCst), "the proxy cut a connection");
    assert_eq!(gcs.download("redis/r.rdb.gz"), parts.concat());
}

#[tokio::test]
async fn a_download_cut_midway_resumes_with_a_range() {
    let gcs = GcsEmulator::start("resume");
    let whole = pattern(6 * 1024 * 1024 + 11, 7);
    store(&gcs.endpoint(), "resume")
        .put(&Path::from("x/obj"), PutPayload::from(whole.clone()))
        .await
        .unwrap();
    let (port, broke) = breaking_proxy(gcs.port(), Cut::Downstream(2 * 1024 * 1024)).await;
    let through_proxy = store(&format!("http://127.0.0.1:{port}"), "resume");
    let read = read_all(&through_proxy, "x/obj").await;
    assert!(broke.load(Ordering::SeqCst), "the proxy cut a connection");
    assert_eq!(read.len(), whole.len());
    assert_eq!(read, whole);
}

#[tokio::test]
async fn a_503_is_retried_and_the_request_goes_through() {
    let gcs = GcsEmulator::start("busy");
    let (port, answered) = breaking_proxy(gcs.port(), Cut::Unavailable).await;
    let store = store(&format!("http://127.0.0.1:{port}"), "busy");
    store
        .put(
            &Path::from("m/manifest.json"),
            PutPayload::from(b"{}".to_vec()),
        )
        .await
        .unwrap();
    assert!(
        answered.load(Ordering::SeqCst),
        "the proxy answered 503 once"
    );
    assert_eq!(gcs.download("m/manifest.json"), b"{}".to_vec());
}
