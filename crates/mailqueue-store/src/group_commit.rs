//! Group commit: concurrent requests share one transaction.
//!
//! [`GroupCommitter`] wraps a store's [`EmailInserts`]: `insert_emails`
//! hands the call's groups to a committer task and waits; a committer takes
//! every call waiting (up to a limit), stores them with one `insert_emails`
//! of the inner store, and answers each only after the commit, so a 202
//! still means "on disk". Under load one fsync covers many emails; when
//! idle a call commits alone with no added delay. When the store refuses
//! the data of one call, the others are committed without it and only that
//! call gets the error (see `mailqueue_core::batch`). Everything else goes
//! to the store itself.

use async_trait::async_trait;
use mailqueue_core::batch::apply_isolating;
use mailqueue_core::store::{EmailInserts, InsertGroup, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<(), StoreError>>;
/// One caller's groups and where its answer goes.
type Call = (Vec<InsertGroup>, Reply);

/// Inserts that are group-committed.
pub struct GroupCommitter {
    calls: mpsc::Sender<Call>,
}

impl GroupCommitter {
    /// Starts `committers` tasks that each commit up to `max_calls` waiting
    /// calls per transaction. The tasks end when the committer is dropped.
    pub fn wrap(inner: Arc<dyn EmailInserts>, committers: usize, max_calls: usize) -> Self {
        let max_calls = max_calls.max(1);
        let (calls, rx) = mpsc::channel(max_calls * committers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            tokio::spawn(commit_loop(inner.clone(), rx.clone(), max_calls));
        }
        Self { calls }
    }
}

async fn commit_loop(
    store: Arc<dyn EmailInserts>,
    rx: Arc<Mutex<mpsc::Receiver<Call>>>,
    max_calls: usize,
) {
    let mut batch = Vec::with_capacity(max_calls);
    loop {
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, max_calls).await == 0 {
                return;
            }
        }
        let (calls, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let results = apply_isolating(&calls, |part: &[Vec<InsertGroup>]| {
            let groups: Vec<InsertGroup> = part.iter().flatten().cloned().collect();
            let store = store.clone();
            async move { store.insert_emails(&groups).await }
        })
        .await
        .results;
        for (reply, result) in replies.into_iter().zip(results) {
            if let Err(e) = &result {
                tracing::warn!(error = %e, "a group commit failed for one request");
            }
            let _ = reply.send(result);
        }
    }
}

#[async_trait]
impl EmailInserts for GroupCommitter {
    async fn insert_emails(&self, groups: &[InsertGroup]) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.calls
            .send((groups.to_vec(), reply))
            .await
            .map_err(|_| StoreError::Unavailable("the commit queue is shut down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the committer stopped before answering".into()))?
    }
}
