//! Streaming uploads as GCS resumable upload sessions.
//!
//! A session takes bytes in order, in chunks that are multiples of
//! 256 KiB (but the last). Parts handed to `put_part` may be in flight
//! together, so each waits for the one before it; bytes that do not fill
//! a whole 256 KiB are carried over to the next part. A chunk that fails
//! on the way is resumed from what the server says it holds, as Google
//! describes for resumable uploads.

use super::client::{check, generic, GcsClient, Sent, PART_TIMEOUT, SHORT_TIMEOUT};
use super::resources::ObjectResource;
use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt, Shared};
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{Response, StatusCode};
use std::sync::{Arc, Mutex};

/// GCS takes chunks in multiples of this (but the last).
pub(crate) const CHUNK_QUANTUM: usize = 256 * 1024;

type Chain = Shared<BoxFuture<'static, Result<(), String>>>;

#[derive(Debug, Default)]
struct Progress {
    /// Bytes the server holds.
    sent: u64,
    /// Bytes handed over but not yet sent (less than a quantum once a
    /// part is done).
    carry: BytesMut,
}

#[derive(Debug)]
struct Session {
    client: Arc<GcsClient>,
    uri: String,
    name: String,
    progress: Mutex<Progress>,
}

pub(crate) struct ResumableUpload {
    session: Arc<Session>,
    last: Option<Chain>,
}

impl std::fmt::Debug for ResumableUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumableUpload")
            .field("object", &self.session.name)
            .finish()
    }
}

/// What the server answered to a chunk or a status query.
enum Held {
    /// It holds this many bytes and waits for more.
    Partial(u64),
    /// The object is complete.
    Finished(Response),
}

impl ResumableUpload {
    /// Opens a session for object `name`.
    pub async fn start(client: Arc<GcsClient>, name: &str) -> object_store::Result<Self> {
        let url = client.upload_url();
        let answer = client
            .send(name, |http| {
                http.post(&url)
                    .query(&[("uploadType", "resumable"), ("name", name)])
                    .header("X-Upload-Content-Type", "application/octet-stream")
                    .json(&serde_json::json!({}))
                    .timeout(SHORT_TIMEOUT)
            })
            .await?;
        let uri = answer
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| generic(format!("{name}: GCS opened no upload session")))?
            .to_string();
        Ok(Self {
            session: Arc::new(Session {
                client,
                uri,
                name: name.to_string(),
                progress: Mutex::new(Progress::default()),
            }),
            last: None,
        })
    }

    /// Runs `step` after every part handed over so far.
    fn chain(&mut self, step: BoxFuture<'static, Result<(), String>>) -> Chain {
        let before = self.last.take();
        let next = async move {
            if let Some(before) = before {
                before.await?;
            }
            step.await
        }
        .boxed()
        .shared();
        self.last = Some(next.clone());
        next
    }
}

#[async_trait::async_trait]
impl MultipartUpload for ResumableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let session = self.session.clone();
        let step = async move { session.take_part(data).await.map_err(|e| e.to_string()) };
        let part = self.chain(step.boxed());
        async move { part.await.map_err(generic) }.boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if let Some(last) = self.last.take() {
            last.await.map_err(generic)?;
        }
        let session = self.session.clone();
        let (start, rest) = {
            let mut progress = lock(&session.progress);
            (progress.sent, progress.carry.split().freeze())
        };
        let total = start + rest.len() as u64;
        match session.send_chunk(start, rest, Some(total)).await? {
            Held::Finished(answer) => {
                let object: ObjectResource = answer.json().await.map_err(generic)?;
                Ok(PutResult {
                    e_tag: object.etag,
                    version: object.generation,
                })
            }
            Held::Partial(held) => Err(generic(format!(
                "{}: GCS holds {held} of {total} bytes after the last chunk",
                session.name
            ))),
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let session = &self.session;
        let answer = session
            .client
            .http()
            .delete(&session.uri)
            .timeout(SHORT_TIMEOUT)
            .send()
            .await
            .map_err(generic)?;
        // GCS answers a cancelled session with 499.
        match answer.status().as_u16() {
            499 => Ok(()),
            _ => check(answer, &session.name).await.map(|_| ()),
        }
    }
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    /// Sends the whole quanta of the carried bytes and `data`, and carries
    /// the rest over.
    async fn take_part(&self, data: PutPayload) -> object_store::Result<()> {
        let (start, chunk) = {
            let mut progress = lock(&self.progress);
            for piece in data.iter() {
                progress.carry.extend_from_slice(piece);
            }
            let whole = progress.carry.len() - progress.carry.len() % CHUNK_QUANTUM;
            (progress.sent, progress.carry.split_to(whole).freeze())
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let end = start + chunk.len() as u64;
        match self.send_chunk(start, chunk, None).await? {
            Held::Partial(held) if held == end => {
                lock(&self.progress).sent = end;
                Ok(())
            }
            Held::Partial(held) => Err(generic(format!(
                "{}: GCS holds {held} bytes where {end} were sent",
                self.name
            ))),
            Held::Finished(_) => Err(generic(format!(
                "{}: GCS finished the object before its last chunk",
                self.name
            ))),
        }
    }

    /// Sends `chunk` (which starts at byte `start`) until the server holds
    /// all of it, resuming after transient failures. `total` is set for
    /// the last chunk.
    async fn send_chunk(
        &self,
        mut start: u64,
        mut chunk: Bytes,
        total: Option<u64>,
    ) -> object_store::Result<Held> {
        let end = start + chunk.len() as u64;
        let mut failures = 0;
        loop {
            let range = content_range(start, chunk.len() as u64, total);
            let request = self
                .client
                .http()
                .put(&self.uri)
                .header(CONTENT_RANGE, range)
                .body(chunk.clone())
                .timeout(PART_TIMEOUT);
            let why = match self.client.send_once(request).await? {
                Sent::Answered(answer) => match self.held(answer).await? {
                    Held::Partial(held) if held < end && held >= start => {
                        // The server kept only part of the chunk.
                        chunk = chunk.slice((held - start) as usize..);
                        start = held;
                        continue;
                    }
                    held => return Ok(held),
                },
                Sent::Transient(why) => why,
            };
            failures += 1;
            if failures >= self.client.retry.attempts {
                return Err(generic(format!(
                    "{}: gave up sending bytes {start}-{end} after {failures} attempts: {why}",
                    self.name
                )));
            }
            tokio::time::sleep(self.client.retry.backoff(failures)).await;
            match self.status().await? {
                Held::Partial(held) if held >= start && held <= end => {
                    chunk = chunk.slice((held - start) as usize..);
                    start = held;
                }
                Held::Partial(held) => {
                    return Err(generic(format!(
                        "{}: GCS holds {held} bytes, outside the chunk {start}-{end} being resent",
                        self.name
                    )))
                }
                finished => return Ok(finished),
            }
        }
    }

    /// Asks the server how much of the upload it holds.
    async fn status(&self) -> object_store::Result<Held> {
        let uri = self.uri.clone();
        let answer = self
            .client
            .send(&self.name, |http| {
                http.put(&uri)
                    .header(CONTENT_RANGE, "bytes */*")
                    .timeout(SHORT_TIMEOUT)
            })
            .await?;
        self.held(answer).await
    }

    async fn held(&self, answer: Response) -> object_store::Result<Held> {
        if answer.status() != StatusCode::PERMANENT_REDIRECT {
            return check(answer, &self.name).await.map(Held::Finished);
        }
        let range = answer.headers().get(RANGE).and_then(|v| v.to_str().ok());
        match range {
            None => Ok(Held::Partial(0)),
            Some(range) => held_bytes(range).map(Held::Partial).ok_or_else(|| {
                generic(format!(
                    "{}: GCS answered an unreadable Range `{range}`",
                    self.name
                ))
            }),
        }
    }
}

/// `Content-Range` for `len` bytes from `start`; `total` on the last chunk.
fn content_range(start: u64, len: u64, total: Option<u64>) -> String {
    let total = total.map_or_else(|| "*".to_string(), |t| t.to_string());
    if len == 0 {
        format!("bytes */{total}")
    } else {
        format!("bytes {start}-{}/{total}", start + len - 1)
    }
}

/// How many bytes a 308's `Range: bytes=0-N` says the server holds.
fn held_bytes(range: &str) -> Option<u64> {
    let last: u64 = range.trim().strip_prefix("bytes=0-")?.parse().ok()?;
    Some(last + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_follow_the_resumable_protocol() {
        assert_eq!(content_range(0, 262144, None), "bytes 0-262143/*");
        assert_eq!(
            content_range(262144, 10, Some(262154)),
            "bytes 262144-262153/262154"
        );
        assert_eq!(content_range(524288, 0, Some(524288)), "bytes */524288");
        assert_eq!(content_range(0, 0, Some(0)), "bytes */0");
    }

    #[test]
    fn a_308_range_tells_the_bytes_held() {
        assert_eq!(held_bytes("bytes=0-262143"), Some(262144));
        assert_eq!(held_bytes("bytes=0-0"), Some(1));
        assert_eq!(held_bytes("bytes=5-9"), None);
        assert_eq!(held_bytes("junk"), None);
    }
}
