//! Tasks that one process of the fleet runs for everyone, beside the
//! maintenance leader's own (rescue, reconcile, purge): the front ends'
//! use cases that need a schedule, such as re-checking sending domains.

use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
pub trait LeaderTask: Send + Sync + 'static {
    /// For logs.
    fn name(&self) -> &'static str;
    /// How often the leader runs it.
    fn interval(&self) -> Duration;
    /// One run; failures are the task's to log.
    async fn run_once(&self);
}
