//! Streamed downloads that resume where a broken connection left off.
//! Every request after the first asks for the rest of the same generation
//! of the object, so a resumed stream never mixes two versions.

use super::client::{generic, GcsClient};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::ObjectMeta;
use std::ops::Range;
use std::sync::Arc;

/// One generation of one object.
struct Target {
    client: Arc<GcsClient>,
    name: String,
    generation: Option<String>,
    size: u64,
}

struct Reading {
    target: Target,
    /// The next byte to hand out, and the end of the wanted range.
    next: u64,
    end: u64,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    failures: u32,
}

/// The bytes of `range` of the object `meta` describes.
pub(crate) fn stream(
    client: Arc<GcsClient>,
    meta: &ObjectMeta,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<Bytes>> {
    let reading = Reading {
        target: Target {
            client,
            name: meta.location.to_string(),
            generation: meta.version.clone(),
            size: meta.size,
        },
        next: range.start,
        end: range.end,
        body: None,
        failures: 0,
    };
    stream::try_unfold(reading, |mut reading| async move {
        loop {
            if reading.next >= reading.end {
                return Ok(None);
            }
            let body = match reading.body.as_mut() {
                Some(body) => body,
                None => reading
                    .body
                    .insert(reading.target.open(reading.next, reading.end).await?),
            };
            let why = match body.next().await {
                Some(Ok(bytes)) => {
                    let room = (reading.end - reading.next) as usize;
                    let bytes = if bytes.len() > room {
                        bytes.slice(..room)
                    } else {
                        bytes
                    };
                    reading.next += bytes.len() as u64;
                    reading.failures = 0;
                    return Ok(Some((bytes, reading)));
                }
                Some(Err(e)) => e.to_string(),
                None => "the connection closed early".to_string(),
            };
            reading.body = None;
            reading.failures += 1;
            if reading.failures >= reading.target.client.retry.attempts {
                return Err(generic(format!(
                    "{}: the download stopped at byte {} of {}: {why}",
                    reading.target.name, reading.next, reading.end
                )));
            }
            tracing::debug!(object = %reading.target.name, at = reading.next, %why, "resuming a GCS download");
            tokio::time::sleep(reading.target.client.retry.backoff(reading.failures)).await;
        }
    })
    .boxed()
}

impl Target {
    /// Opens bytes `next..end`.
    async fn open(
        &self,
        next: u64,
        end: u64,
    ) -> object_store::Result<BoxStream<'static, reqwest::Result<Bytes>>> {
        let url = self.client.object_url(&self.name);
        let mut query = vec![("alt", "media".to_string())];
        if let Some(generation) = &self.generation {
            query.push(("generation", generation.clone()));
        }
        let partial = next > 0 || end < self.size;
        let range = format!("bytes={next}-{}", end - 1);
        let answer = self
            .client
            .send(&self.name, |http| {
                let request = http.get(&url).query(&query);
                if partial {
                    request.header(reqwest::header::RANGE, &range)
                } else {
                    request
                }
            })
            .await?;
        if partial && answer.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(generic(format!(
                "{}: GCS ignored the range {range} ({})",
                self.name,
                answer.status()
            )));
        }
        Ok(answer.bytes_stream().boxed())
    }
}
