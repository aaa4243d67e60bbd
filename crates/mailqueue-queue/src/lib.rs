//! Dispatch queues. [`InProcessQueue`] serves the embedded default: an
//! ordered set in memory, rebuilt from the store at start. A shared queue
//! for several processes implements the same `DispatchQueue` trait.

mod in_process;

pub use in_process::InProcessQueue;
