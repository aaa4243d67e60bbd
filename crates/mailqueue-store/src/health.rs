//! Whether the store can write. A store may answer reads (and `SELECT 1`)
//! while every write fails: a full disk, corrupt pages, a read-only
//! standby. Each store records the outcome of its writes here, and `ping`
//! (behind `/readyz`) reports a store whose last write failed as not ready
//! until a write, or a probe write, succeeds again.

use mailqueue_core::store::StoreError;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct WriteHealth {
    last_failure: Mutex<Option<String>>,
}

impl WriteHealth {
    /// Notes a write's outcome. Refused rows say nothing about the store.
    pub fn record<T>(&self, result: &Result<T, StoreError>) {
        let update = match result {
            Ok(_) => None,
            Err(e) if e.is_store_fault() => Some(e.to_string()),
            Err(_) => return,
        };
        *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = update;
    }

    /// Why the last write failed, if it did.
    pub fn failing(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The readiness answer for a store whose probe write failed.
pub fn not_writable(probe: StoreError) -> StoreError {
    StoreError::Unavailable(format!("writes fail: {probe}"))
}
