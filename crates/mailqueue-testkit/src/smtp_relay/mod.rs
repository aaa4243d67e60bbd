//! A scriptable SMTP relay in Rust, on a free loopback port, for tests of
//! mailqueue's SMTP client at the level of bytes on the wire.
//!
//! The aiosmtpd sink (`smtp_sink`) is a real, strict server; this one
//! records what it received *before* any interpretation: the raw DATA bytes
//! (still dot-stuffed), every bare CR or LF anywhere in a session, and which
//! commands arrived together (to see pipelining). It can also act like the
//! lenient relays that SMTP smuggling exploits: end the data at `LF.LF` and
//! take a bare LF as the end of a command line. Knobs make it slow, stall,
//! refuse recipients or credentials, or send replies nobody asked for.
//!
//! `conversation.rs` speaks the protocol; this file holds the handle, the
//! options and what was recorded.

mod conversation;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Attachment or body bytes that end the data early at a relay that takes
/// `LF.LF` as the end of the data, then hand it a second, forged
/// transaction (SMTP smuggling). A client must send them as one message.
pub const SMUGGLING_PAYLOAD: &[u8] = b"report\n.\nMAIL FROM:<smuggled@evil.test>\nRCPT TO:<victim@example.com>\nDATA\nFrom: ceo@acme.test\nSubject: urgent\n\nWire the money.\n.\n";

#[derive(Clone, Debug, Default)]
pub struct RelayOptions {
    /// End the data at `LF.LF` (or `LF.CRLF`), take a bare LF as the end of
    /// a command line, and go on with whatever follows in the same read, as
    /// lenient relays do.
    pub lenient: bool,
    /// Offer PIPELINING.
    pub pipelining: bool,
    /// Offer AUTH PLAIN and LOGIN and require it before MAIL FROM.
    pub auth: Option<(String, String)>,
    /// The AUTH mechanisms to offer instead of `PLAIN LOGIN`.
    pub auth_mechanisms: Option<String>,
    /// Wait before every batch of replies, the greeting included.
    pub reply_delay: Duration,
    /// Wait before the reply to the end of the data.
    pub data_reply_delay: Duration,
    /// Reply codes to RCPT TO by address; 250 for the others.
    pub rcpt_replies: Vec<(String, u16)>,
    /// A line sent right after each reply to the end of the data, as if
    /// answering a command nobody sent.
    pub unsolicited_after_data: Option<String>,
    /// Stop reading once DATA is answered with 354, keeping the
    /// connection open.
    pub stall_in_data: bool,
}

/// A message the relay accepted.
#[derive(Clone, Debug)]
pub struct RelayedMessage {
    /// Which connection brought it (1 for the first).
    pub session: usize,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The user logged in on that connection, if any.
    pub login: Option<String>,
    /// The data as it crossed the wire: still dot-stuffed, up to and with
    /// the line ending before the final `.`.
    pub wire: Vec<u8>,
    /// When the data was complete (before the relay's reply).
    pub received_at: std::time::Instant,
}

impl RelayedMessage {
    /// The message with the dot-stuffing undone.
    pub fn unstuffed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.wire.len());
        for line in self.wire.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        out
    }

    /// The longest line of the data in octets, its line ending not counted.
    pub fn longest_line(&self) -> usize {
        self.wire
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .max()
            .unwrap_or(0)
    }

    /// The parsed MIME message.
    pub fn parsed(&self) -> mail_parser::Message<'static> {
        mail_parser::MessageParser::default()
            .parse(&self.unstuffed())
            .expect("the message parses as MIME")
            .into_owned()
    }
}

/// A command line as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayedCommand {
    pub session: usize,
    /// Which read of that session brought it: commands with the same
    /// number arrived together (pipelined).
    pub read: usize,
    pub line: String,
}

#[derive(Default)]
struct Log {
    sessions: usize,
    /// Connections open now, and the most ever open at once.
    open: usize,
    most_open: usize,
    messages: Vec<RelayedMessage>,
    commands: Vec<RelayedCommand>,
    bare_line_endings: Vec<String>,
}

struct Shared {
    options: RelayOptions,
    auth_accepts: AtomicBool,
    log: Mutex<Log>,
}

impl Shared {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct TestRelay {
    pub port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl TestRelay {
    pub async fn start(options: RelayOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the test relay");
        let port = listener.local_addr().expect("a local address").port();
        let shared = Arc::new(Shared {
            options,
            auth_accepts: AtomicBool::new(true),
            log: Mutex::new(Log::default()),
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = {
                    let mut log = accepting.log();
                    log.sessions += 1;
                    log.open += 1;
                    log.most_open = log.most_open.max(log.open);
                    log.sessions
                };
                let shared = accepting.clone();
                tokio::spawn(async move {
                    conversation::converse(stream, shared.clone(), session).await;
                    shared.log().open -= 1;
                });
            }
        });
        Self {
            port,
            shared,
            accept,
        }
    }

    /// `smtp+plain://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("smtp+plain://127.0.0.1:{}", self.port)
    }

    /// The URL with credentials in it.
    pub fn url_with_credentials(&self, user: &str, password: &str) -> String {
        format!("smtp+plain://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// Whether AUTH succeeds with the right credentials (it does at first).
    /// When not, every AUTH gets 535.
    pub fn set_auth_accepts(&self, accepts: bool) {
        self.shared.auth_accepts.store(accepts, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn sessions(&self) -> usize {
        self.shared.log().sessions
    }

    /// The most connections that were ever open at once.
    pub fn most_open_sessions(&self) -> usize {
        self.shared.log().most_open
    }

    pub fn messages(&self) -> Vec<RelayedMessage> {
        self.shared.log().messages.clone()
    }

    pub fn commands(&self) -> Vec<RelayedCommand> {
        self.shared.log().commands.clone()
    }

    /// Every CR or LF that was not part of a CRLF, in commands or data,
    /// described with its session and context.
    pub fn bare_line_endings(&self) -> Vec<String> {
        self.shared.log().bare_line_endings.clone()
    }

    /// Waits until at least `n` messages were accepted.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<RelayedMessage> {
        crate::wait_until(
            &format!("{n} messages at the test relay"),
            timeout,
            || async {
                let m = self.messages();
                (m.len() >= n).then_some(m)
            },
        )
        .await
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
