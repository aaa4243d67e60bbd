//! The outbox: without a relay, each message is written to
//! `<data dir>/outbox/<id>.eml`, complete and atomically (written to a
//! temporary name, synced, then renamed).

use crate::mime::build_message;
use async_trait::async_trait;
use mailqueue_core::delivery::{Delivered, DeliveryError, FailureClass, SmtpReply};
use mailqueue_core::transport::{OutgoingEmail, SendError, Transport};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

pub struct OutboxTransport {
    dir: PathBuf,
}

impl OutboxTransport {
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }
}

fn disk_error(path: &std::path::Path, e: std::io::Error) -> DeliveryError {
    DeliveryError::transient(
        FailureClass::Message,
        None,
        format!("writing {}: {e}", path.display()),
    )
}

#[async_trait]
impl Transport for OutboxTransport {
    async fn send(&self, out: &OutgoingEmail<'_>) -> Result<Delivered, SendError> {
        let bytes = build_message(out)?.bytes;
        let path = self.dir.join(format!("{}.eml", out.id));
        let tmp = self.dir.join(format!(".{}.eml.tmp", out.id));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| disk_error(&tmp, e))?;
        file.write_all(&bytes)
            .await
            .map_err(|e| disk_error(&tmp, e))?;
        file.sync_all().await.map_err(|e| disk_error(&tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| disk_error(&path, e))?;
        Ok(Delivered {
            reply: SmtpReply {
                code: 250,
                message: format!("written to {}", path.display()),
            },
            rejected: Vec::new(),
        })
    }

    fn describe(&self) -> String {
        format!("outbox directory {}", self.dir.display())
    }
}
