//! The domain of mailqueue: what an email is, how it moves through its
//! statuses, when it is retried, and the narrow traits behind which storage,
//! dispatch and transport live.
//!
//! Nothing in this crate performs I/O. Adapters (`mailqueue-store`,
//! `mailqueue-queue`, `mailqueue-smtp`) implement the traits; the server binary
//! wires them together.

pub mod address;
pub mod api_key;
pub mod attempt;
pub mod batch;
pub mod clock;
pub mod delivery;
pub mod domains;
pub mod email;
pub mod error;
pub mod events;
pub mod ids;
pub mod queue;
pub mod random;
pub mod rate;
pub mod request;
pub mod retention;
pub mod retry;
pub mod return_path;
pub mod schedule;
pub mod status;
pub mod store;
pub mod suppression;
pub mod transition;
pub mod transport;
pub mod upkeep;
pub mod webhooks;

pub use address::{EmailAddress, Mailbox};
pub use clock::{Clock, ManualClock, SystemClock};
pub use delivery::{Delivered, DeliveryError, RejectedRecipient, SmtpReply};
pub use email::{Attachment, CustomHeader, NewEmail, Priority, SubmittedMessage, Tag};
pub use ids::{ApiKeyId, DomainId, EmailId, EventId, IdempotencyFence, SuppressionId, WebhookId};
pub use request::{FieldError, RequestLimits};
pub use retry::RetryPolicy;
pub use status::{EmailStatus, LastEvent};
