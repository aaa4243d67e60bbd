//! mailqueue's own SMTP client (RFC 5321), for the submission side only.
//!
//! - [`reply`]: parsing replies, with limits on line length and count.
//! - [`data`]: the DATA payload; every line ending becomes CRLF and every
//!   line starting with `.` is stuffed, whatever the message holds.
//! - [`session`]: one conversation over any stream: EHLO, STARTTLS, AUTH,
//!   the transaction (pipelined when offered), RSET, NOOP, QUIT, each wait
//!   bounded by the per-command timeout.
//! - [`error`]: what went wrong, and whether the email is retried.
//!
//! We speak the protocol ourselves rather than through lettre's SMTP client
//! for three reasons: lettre dot-stuffs only after CRLF (so a bare LF in a
//! message could end the data early at a lenient relay), it cannot tell a
//! reply that does not fit the conversation from a good one, and it cannot
//! pipeline or report per-recipient outcomes. lettre still builds the MIME
//! message (`crate::mime`).

pub mod data;
pub mod error;
pub mod reply;
pub mod session;

pub use error::{ClientError, Step};
pub use session::{Credentials, Session};
