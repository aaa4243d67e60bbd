//! Why storage failed, in kinds a caller can act on.

/// Why storage failed. What a caller may do next is in the variant:
/// `Unavailable` and `Full` are worth retrying later (the API answers 503
/// and 507); `Rejected` concerns the rows written, not the store, so the
/// other members of a batch go through without them.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Out of disk space (SQLite `SQLITE_FULL`, PostgreSQL `53100`).
    #[error("the store is out of space: {0}")]
    Full(String),
    /// The store refused the data written (a constraint, a value it cannot
    /// hold, a trigger); the same rows would be refused again.
    #[error("the store refused the data: {0}")]
    Rejected(String),
    #[error("a stored row could not be read: {0}")]
    Corrupt(String),
    /// A write made on a condition that no longer holds: an idempotency key
    /// taken over by a newer request. Nothing of it was stored.
    #[error("the write no longer applies: {0}")]
    Superseded(String),
    #[error("the store failed: {0}")]
    Failed(String),
}

impl StoreError {
    /// Whether the failure lies in the rows written rather than in the store.
    pub fn is_rejection(&self) -> bool {
        matches!(self, StoreError::Rejected(_) | StoreError::Superseded(_))
    }

    /// Whether the store itself cannot write now (readiness turns false).
    pub fn is_store_fault(&self) -> bool {
        !self.is_rejection()
    }

    /// What may be said of the failure to a client or a probe: the kind,
    /// never the store's own message (which can name hosts, paths, rows).
    pub fn summary(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "the store cannot be reached or cannot take writes",
            StoreError::Full(_) => "the store is out of space",
            StoreError::Rejected(_) => "the store refused the data",
            StoreError::Corrupt(_) => "a stored row could not be read",
            StoreError::Failed(_) => "the store failed",
            StoreError::Superseded(_) => "the write no longer applies",
        }
    }
}
