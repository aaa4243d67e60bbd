//! A listener's settings (the submission port's, or the bounce domain's
//! MX's), read by the binary from its config.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// `SIZE`: the largest message taken (`MAILQUEUE_MAX_BODY_BYTES`).
    pub max_message_bytes: usize,
    /// Recipients per message (Resend's limit for submission: 50).
    pub max_recipients: usize,
    /// Whether AUTH is offered without TLS (for loopback clients only).
    pub allow_plaintext_auth: bool,
    /// How long a client may take to send a command (RFC 5321: 5 minutes).
    pub command_timeout: Duration,
    /// How long a client may pause while sending a message (RFC 5321: 3
    /// minutes per block).
    pub data_timeout: Duration,
    /// Connections open at once from one client address.
    pub max_connections_per_client: usize,
    /// Connections open at once in all.
    pub max_connections: usize,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            hostname: "localhost".into(),
            max_message_bytes: 40 * 1024 * 1024,
            max_recipients: 50,
            allow_plaintext_auth: false,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            max_connections_per_client: 20,
            max_connections: 1000,
        }
    }
}
