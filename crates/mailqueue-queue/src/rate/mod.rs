//! Rate limiters: GCRA buckets with reservations (see
//! `mailqueue_core::rate`), in process for the embedded mode and on Redis
//! for a fleet. Both compute the same thing: each bucket of the email gives
//! its earliest free slot (its theoretical arrival time, or now) and moves
//! past it by one interval; the email may go at the latest of those slots.

mod in_process;
mod redis_limiter;

pub use in_process::InProcessRateLimiter;
pub use redis_limiter::RedisRateLimiter;
