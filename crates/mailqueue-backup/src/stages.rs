//! The stages of the pipeline, each a wrapper around a reader or writer:
//! counting, hashing, compression and encryption. They compose in any
//! order and know nothing of where the bytes come from or go.

use crate::error::BackupError;
use crate::kind::Compression;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};

/// Counts and hashes what passes through a writer.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the byte count and the SHA-256 (hex).
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(data)?;
        self.hasher.update(&data[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts and hashes what passes through a reader.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Counts what passes through a reader; the count is shared so it can be
/// read after the reader was moved into another stage.
pub struct CountingReader<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> CountingReader<R> {
    pub fn new(inner: R) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        (
            Self {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A reader yielding the compressed form of `source`.
pub fn compressing<'a, R: Read + Send + 'a>(
    compression: Compression,
    source: R,
) -> Result<Box<dyn Read + Send + 'a>, BackupError> {
    Ok(match compression {
        Compression::Zstd => Box::new(
            zstd::stream::read::Encoder::new(source, 3)
                .map_err(|e| BackupError::io("starting zstd", e))?,
        ),
        Compression::Gzip => Box::new(flate2::read::GzEncoder::new(
            source,
            flate2::Compression::default(),
        )),
    })
}

/// A reader yielding the decompressed form of `source`.
pub fn decompressing<'a, R: Read + Send + 'a>(
    compression: Compression,
    source: R,
) -> Result<Box<dyn Read + Send + 'a>, BackupError> {
    Ok(match compression {
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(source)
                .map_err(|e| BackupError::io("starting zstd", e))?,
        ),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_round_trips_and_hashing_counts() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [Compression::Zstd, Compression::Gzip] {
            let mut compressed = Vec::new();
            compressing(c, &data[..])
                .unwrap()
                .read_to_end(&mut compressed)
                .unwrap();
            assert!(compressed.len() < data.len());
            let mut back = Vec::new();
            decompressing(c, &compressed[..])
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, n, sha) = w.finish();
        assert_eq!((inner, n), (b"abc".to_vec(), 3));
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
