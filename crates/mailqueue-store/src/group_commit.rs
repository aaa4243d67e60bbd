//! Group commit: concurrent requests share one transaction.
//!
//! Each request hands its [`InsertGroup`] to a committer task and waits.
//! A committer takes everything waiting (up to a limit), stores it with one
//! `insert_emails` call, and answers each request only after the commit, so
//! a 202 still means "on disk". Under load one fsync covers many emails; when
//! idle a request commits alone with no added delay. When the store refuses
//! the data of one request, the others are committed without it and only
//! that request gets the error (see `mailqueue_core::batch`).

use mailqueue_core::batch::apply_isolating;
use mailqueue_core::store::{EmailStore, InsertGroup, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply = oneshot::Sender<Result<(), Arc<StoreError>>>;

/// Submits groups to the committers. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommitterHandle {
    tx: mpsc::Sender<(InsertGroup, Reply)>,
}

impl GroupCommitterHandle {
    /// Returns once the group is committed, or with the commit's error.
    pub async fn commit(&self, group: InsertGroup) -> Result<(), Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((group, reply)).await.map_err(|_| {
            Arc::new(StoreError::Unavailable(
                "the commit queue is shut down".into(),
            ))
        })?;
        answer.await.map_err(|_| {
            Arc::new(StoreError::Unavailable(
                "the committer stopped before answering".into(),
            ))
        })?
    }
}

pub struct GroupCommitter;

impl GroupCommitter {
    /// Starts `committers` tasks that each commit up to `max_groups` waiting
    /// groups per transaction. The tasks end when every handle is dropped.
    pub fn spawn(
        store: Arc<dyn EmailStore>,
        committers: usize,
        max_groups: usize,
    ) -> GroupCommitterHandle {
        let (tx, rx) =
            mpsc::channel::<(InsertGroup, Reply)>(max_groups.max(1) * committers.max(1) * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let mut batch = Vec::with_capacity(max_groups);
                loop {
                    {
                        let mut rx = rx.lock().await;
                        if rx.recv_many(&mut batch, max_groups.max(1)).await == 0 {
                            return;
                        }
                    }
                    let (groups, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                    let results = apply_isolating(&groups, |part| store.insert_emails(part)).await;
                    for (reply, result) in replies.into_iter().zip(results) {
                        if let Err(e) = &result {
                            tracing::warn!(error = %e, "a group commit failed for one request");
                        }
                        let _ = reply.send(result.map_err(Arc::new));
                    }
                }
            });
        }
        GroupCommitterHandle { tx }
    }
}
