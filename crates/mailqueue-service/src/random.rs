//! The system's secure random source, for tokens and secrets.

use crate::ServiceError;

/// Fills `bytes` from the operating system's random source.
pub fn fill(bytes: &mut [u8]) -> Result<(), ServiceError> {
    getrandom::fill(bytes).map_err(|e| ServiceError::NoRandomness(e.to_string()))
}
