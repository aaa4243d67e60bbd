//! Whether the store can write. A store may answer reads (and `SELECT 1`)
//! while every write fails: a full disk, corrupt pages, a read-only
//! standby. Each store records the outcome of its writes here, and `ping`
//! (behind `/readyz`) reports a store whose last write failed as not ready
//! until a write, or a probe write, succeeds again.
//!
//! The probe is a real write: it inserts and deletes a row of `emails`
//! (reading and writing the pages an accepted email needs) and rewrites a
//! padded row of `write_probe`, then commits, so the commit must reach the
//! disk. A probe that rolled back would succeed on a full disk, where
//! nothing it wrote was ever flushed.

use mailqueue_core::store::StoreError;
use std::sync::Mutex;

#[derive(Debug)]
pub struct WriteHealth {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Why the last write failed, if it did.
    failure: Option<String>,
    /// Whether the store has yet to show it has room: at start, and after
    /// a write failed for lack of space. Small writes (a lease renewed, a
    /// row updated in place) can still fit in space the store already
    /// holds, so only a write that needed room clears this: an accepted
    /// email, or the probe.
    room_unproven: bool,
}

/// A store starts unproven: its first readiness check probes, so a process
/// started on a full disk (after a crash, say) is not reported ready
/// before any write of its own has failed, nor because a small write (the
/// leases of the last run, released in place) still fit.
impl Default for WriteHealth {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                failure: Some("no write that needed room has been tried yet".into()),
                room_unproven: true,
            }),
        }
    }
}

impl WriteHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a write's outcome. Refused rows say nothing about the store,
    /// and a success does not end a lack of space (see [`State`]).
    pub fn record<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                let mut state = self.state();
                if !state.room_unproven {
                    state.failure = None;
                }
            }
            Err(e) => self.record_failure(e),
        }
    }

    /// Notes the outcome of a write that needed room: an accepted email, or
    /// the probe. Its success ends every failure, a lack of space included.
    pub fn record_room<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                let mut state = self.state();
                state.failure = None;
                state.room_unproven = false;
            }
            Err(e) => self.record_failure(e),
        }
    }

    fn record_failure(&self, e: &StoreError) {
        if !e.is_store_fault() {
            return;
        }
        let mut state = self.state();
        state.failure = Some(e.to_string());
        state.room_unproven |= matches!(e, StoreError::Full(_));
    }

    /// Why writes are failing, if they are.
    pub fn failing(&self) -> Option<String> {
        self.state().failure.clone()
    }
}

/// The readiness answer for a store whose probe write failed; a full disk
/// stays [`StoreError::Full`], so readiness can say so.
pub fn not_writable(probe: StoreError) -> StoreError {
    match probe {
        StoreError::Full(m) => StoreError::Full(format!("writes fail: {m}")),
        other => StoreError::Unavailable(format!("writes fail: {other}")),
    }
}

/// Bytes the probe writes: more than most emails, so a disk with room for
/// the probe has room for them.
pub const PROBE_PAD_BYTES: i64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lack_of_space_ends_only_with_a_write_that_needed_room() {
        let health = WriteHealth::default();
        assert!(health.failing().is_some(), "unproven at first");
        health.record(&Ok::<(), StoreError>(()));
        assert!(
            health.failing().is_some(),
            "a small write proves no room at start either"
        );
        health.record_room(&Ok::<(), StoreError>(()));
        assert_eq!(health.failing(), None);
        health.record(&Err::<(), _>(StoreError::Full("disk full".into())));
        health.record(&Ok::<(), StoreError>(()));
        assert!(health.failing().is_some(), "a small write proves no room");
        health.record(&Err::<(), _>(StoreError::Rejected("a bad row".into())));
        assert!(health.failing().is_some());
        health.record_room(&Ok::<(), StoreError>(()));
        assert_eq!(health.failing(), None);
        health.record(&Err::<(), _>(StoreError::Unavailable("gone".into())));
        health.record(&Ok::<(), StoreError>(()));
        assert_eq!(health.failing(), None, "other faults end with any write");
    }
}
