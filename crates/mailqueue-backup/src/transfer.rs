//! Blocking `Write` and `Read` adapters over object_store's async uploads
//! and downloads, so that the synchronous compression and encryption
//! libraries can stream straight into and out of storage. They run on a
//! blocking thread and drive the async calls through a runtime handle.
//! Memory stays bounded: at most `IN_FLIGHT` parts of `PART_SIZE` bytes.

use crate::error::BackupError;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::{MultipartUpload, PutPayload};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// S3 needs parts of at least 5 MiB (but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
const IN_FLIGHT: usize = 2;

pub struct UploadWriter {
    handle: Handle,
    upload: Box<dyn MultipartUpload>,
    buffer: Vec<u8>,
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
    location: String,
}

fn upload_error(location: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("uploading {location}: {e}"))
}

impl UploadWriter {
    pub fn new(handle: Handle, upload: Box<dyn MultipartUpload>, location: String) -> Self {
        Self {
            handle,
            upload,
            buffer: Vec::with_capacity(PART_SIZE),
            in_flight: VecDeque::new(),
            location,
        }
    }

    fn wait_oldest(&mut self) -> io::Result<()> {
        if let Some(part) = self.in_flight.pop_front() {
            self.handle
                .block_on(part)
                .map_err(|e| upload_error(&self.location, e))?
                .map_err(|e| upload_error(&self.location, e))?;
        }
        Ok(())
    }

    fn send_part(&mut self) -> io::Result<()> {
        if self.in_flight.len() >= IN_FLIGHT {
            self.wait_oldest()?;
        }
        let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(PART_SIZE));
        let future = self.upload.put_part(PutPayload::from(part));
        self.in_flight.push_back(self.handle.spawn(future));
        Ok(())
    }

    /// Uploads what is left and makes the object visible.
    pub fn finish(mut self) -> Result<(), BackupError> {
        if !self.buffer.is_empty() || self.in_flight.is_empty() {
            self.send_part()
                .map_err(|e| BackupError::storage(&self.location, e))?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()
                .map_err(|e| BackupError::storage(&self.location, e))?;
        }
        self.handle
            .block_on(self.upload.complete())
            .map(|_| ())
            .map_err(|e| BackupError::storage(&self.location, e))
    }

    /// Drops the parts uploaded so far; nothing becomes visible.
    pub fn abort(mut self) {
        for part in self.in_flight.drain(..) {
            part.abort();
        }
        if let Err(e) = self.handle.block_on(self.upload.abort()) {
            tracing::warn!(location = %self.location, error = %e, "could not abort a partial upload");
        }
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = PART_SIZE - self.buffer.len();
        let n = room.min(data.len());
        self.buffer.extend_from_slice(&data[..n]);
        if self.buffer.len() == PART_SIZE {
            self.send_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads an object as a byte stream.
pub struct DownloadReader {
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    location: String,
}

impl DownloadReader {
    pub fn open(
        handle: Handle,
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        path: object_store::path::Path,
        location: String,
    ) -> Result<Self, BackupError> {
        let got = handle
            .block_on(store.get(&path))
            .map_err(|e| BackupError::storage(&location, e))?;
        Ok(Self {
            handle,
            stream: got.into_stream(),
            chunk: Bytes::new(),
            location,
        })
    }
}

impl Read for DownloadReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "downloading {}: {e}",
                        self.location
                    )))
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
