//! Dispatch queues. [`InProcessQueue`] serves the embedded default: an
//! ordered set in memory, rebuilt from the store at start. [`RedisQueue`]
//! is shared by a fleet of API and worker processes. Both implement
//! `mailqueue_core::queue::DispatchQueue`.

mod connection_slots;
mod in_process;
mod rate;
mod redis_queue;

pub use connection_slots::RedisConnectionSlots;
pub use in_process::InProcessQueue;
pub use rate::{InProcessRateLimiter, RedisRateLimiter};
pub use redis_queue::{RedisQueue, RedisSettings};
