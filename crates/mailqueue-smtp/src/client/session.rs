//! One SMTP session over any byte stream: the greeting, EHLO and its
//! capabilities, STARTTLS, AUTH PLAIN and LOGIN, a mail transaction, RSET,
//! NOOP and QUIT.
//!
//! Every wait is bounded by the session's timeout on its own: each reply
//! must arrive within it, and each write must make progress within it. A
//! whole transaction has no cap here; that is the caller's business.
//!
//! A session is *broken* when it can no longer be trusted to be in step
//! with the relay: after an I/O error, a timeout, a reply that does not fit
//! the conversation (a 354 where 250 was due, a garbled line), bytes nobody
//! asked for, a 421, or a transaction abandoned after the relay said 354. A
//! broken session is never reused; the caller drops it.
//!
//! The transaction writes MAIL FROM, every RCPT TO and DATA together when
//! the relay offers PIPELINING (RFC 2920), one at a time otherwise, and in
//! both cases collects the reply to each recipient before deciding, so that
//! per-recipient outcomes can be reported later without restructuring.

use super::data::DataEncoder;
use super::error::{ClientError, Step};
use super::reply::{parse_reply, Reply};
use base64::Engine;
use mailqueue_core::EmailAddress;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// How much of the message is encoded and written at a time.
const DATA_CHUNK: usize = 64 * 1024;

/// What the relay said it supports in its EHLO reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub pipelining: bool,
    pub starttls: bool,
    /// `8BITMIME`: a message with 8-bit bytes may be announced as such.
    pub eight_bit_mime: bool,
    /// AUTH mechanisms, upper case.
    pub auth: Vec<String>,
}

impl Capabilities {
    /// Reads the keywords of an EHLO reply (every line but the first).
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                "STARTTLS" => caps.starttls = true,
                "8BITMIME" => caps.eight_bit_mime = true,
                "AUTH" => caps.auth.extend(words.map(str::to_ascii_uppercase)),
                // The pre-RFC 4954 form some relays still send.
                k if k.starts_with("AUTH=") => {
                    caps.auth.push(k["AUTH=".len()..].to_string());
                    caps.auth.extend(words.map(str::to_ascii_uppercase));
                }
                _ => {}
            }
        }
        caps.auth.sort();
        caps.auth.dedup();
        caps
    }
}

/// A user name and password for AUTH. Debug never shows the password.
#[derive(Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: <hidden> }}",
            self.user
        )
    }
}

/// A recipient and the relay's reply to its RCPT TO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientReply {
    pub address: EmailAddress,
    pub reply: Reply,
}

/// The relay took the message: its final reply, and the recipients it
/// refused for good (the message went to the others).
#[derive(Clone, Debug)]
pub struct MailAccepted {
    pub reply: Reply,
    pub rejected: Vec<RecipientReply>,
}

/// The replies to the envelope of one transaction.
#[derive(Clone, Debug)]
pub struct EnvelopeReplies {
    pub mail: Reply,
    /// In the order of the recipients; those not asked are missing.
    pub recipients: Vec<RecipientReply>,
    /// `None` when DATA was not sent.
    pub data: Option<Reply>,
}

pub struct Session<S> {
    stream: S,
    /// Bytes read and not yet taken as a reply.
    input: Vec<u8>,
    timeout: Duration,
    capabilities: Capabilities,
    broken: bool,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A session on a stream where the relay speaks next (after STARTTLS).
    pub fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            input: Vec::new(),
            timeout,
            capabilities: Capabilities::default(),
            broken: false,
        }
    }

    /// A session on a fresh connection: reads the 220 greeting.
    pub async fn greet(stream: S, timeout: Duration) -> Result<Self, ClientError> {
        let mut session = Self::new(stream, timeout);
        let reply = session.read_reply(&Step::Greeting).await?;
        session.judge(Step::Greeting, reply, |c| c == 220)?;
        Ok(session)
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The stream, for a TLS upgrade after [`Session::starttls`].
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// The same session over a stream that wraps this one.
    pub fn map_stream<T>(self, wrap: impl FnOnce(S) -> T) -> Session<T> {
        Session {
            stream: wrap(self.stream),
            input: self.input,
            timeout: self.timeout,
            capabilities: self.capabilities,
            broken: self.broken,
        }
    }

    /// True when the session can be reused: not broken, and the relay has
    /// sent nothing since its last reply (not even the end of the stream).
    /// Never waits.
    pub fn is_quiet(&mut self) -> bool {
        if !self.input.is_empty() {
            self.broken = true;
        }
        if self.broken {
            return false;
        }
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf) {
            Poll::Pending => true,
            Poll::Ready(_) => {
                self.broken = true;
                false
            }
        }
    }

    pub async fn ehlo(&mut self, name: &str) -> Result<(), ClientError> {
        let reply = self.command(Step::Ehlo, &format!("EHLO {name}")).await?;
        let reply = self.judge(Step::Ehlo, reply, |c| c == 250)?;
        self.capabilities = Capabilities::from_ehlo(&reply);
        Ok(())
    }

    /// Asks for TLS. On success the stream is ready for the handshake; a
    /// relay that sent anything after its 220 is refused, since those bytes
    /// would otherwise be taken as if they came over TLS.
    pub async fn starttls(&mut self) -> Result<(), ClientError> {
        let reply = self.command(Step::StartTls, "STARTTLS").await?;
        self.judge(Step::StartTls, reply, |c| c == 220)?;
        if !self.input.is_empty() {
            return Err(self.protocol(Step::StartTls, "bytes followed the 220 reply".into()));
        }
        Ok(())
    }

    /// AUTH PLAIN when offered, else AUTH LOGIN. No secret ever reaches an
    /// error message: errors name the step, not the command line.
    pub async fn authenticate(&mut self, credentials: &Credentials) -> Result<(), ClientError> {
        let offered = |m: &str| self.capabilities.auth.iter().any(|a| a == m);
        if offered("PLAIN") {
            let token = b64(format!("\0{}\0{}", credentials.user, credentials.password).as_bytes());
            let reply = self
                .command(Step::Auth, &format!("AUTH PLAIN {token}"))
                .await?;
            return self.judge_auth(reply, 235).map(drop);
        }
        if offered("LOGIN") {
            let reply = self.command(Step::Auth, "AUTH LOGIN").await?;
            self.judge_auth(reply, 334)?;
            let reply = self
                .command(Step::Auth, &b64(credentials.user.as_bytes()))
                .await?;
            self.judge_auth(reply, 334)?;
            let reply = self
                .command(Step::Auth, &b64(credentials.password.as_bytes()))
                .await?;
            return self.judge_auth(reply, 235).map(drop);
        }
        let reason = if self.capabilities.auth.is_empty() {
            "the relay does not offer AUTH, but credentials are configured".to_string()
        } else {
            format!(
                "the relay offers AUTH {} but not PLAIN or LOGIN",
                self.capabilities.auth.join(" ")
            )
        };
        Err(ClientError::Auth {
            reason,
            reply: None,
        })
    }

    /// One mail transaction; the relay's final reply on success.
    /// Sends one message. It goes to the recipients the relay accepts; one
    /// refused for good (5xx) does not stop the others and is returned with
    /// the final reply. A recipient refused for now (4xx) fails the whole
    /// transaction, so that it is retried with the others.
    pub async fn send_mail(
        &mut self,
        from: &EmailAddress,
        to: &[EmailAddress],
        message: &[u8],
    ) -> Result<MailAccepted, ClientError> {
        let mail_from = self.mail_from(from, message);
        let replies = if self.capabilities.pipelining {
            self.envelope_pipelined(mail_from, to).await?
        } else {
            self.envelope_in_turn(mail_from, to).await?
        };
        let rejected = self.judge_envelope(replies)?;
        self.write_data(message).await?;
        let reply = self.read_reply(&Step::EndOfData).await?;
        let reply = self.judge(Step::EndOfData, reply, |c| (200..300).contains(&c))?;
        Ok(MailAccepted { reply, rejected })
    }

    /// The `MAIL FROM` command: a message with 8-bit bytes (one submitted
    /// whole, as its client wrote it) is announced as `BODY=8BITMIME` to a
    /// relay that takes it (RFC 6152); built messages are 7-bit.
    fn mail_from(&self, from: &EmailAddress, message: &[u8]) -> String {
        if self.capabilities.eight_bit_mime && message.iter().any(|b| *b >= 0x80) {
            format!("MAIL FROM:<{from}> BODY=8BITMIME")
        } else {
            format!("MAIL FROM:<{from}>")
        }
    }

    /// MAIL FROM, RCPT TO for each recipient and DATA in one write, then
    /// the replies in order.
    async fn envelope_pipelined(
        &mut self,
        mail_from: String,
        to: &[EmailAddress],
    ) -> Result<EnvelopeReplies, ClientError> {
        let mut lines = vec![mail_from];
        lines.extend(to.iter().map(|a| format!("RCPT TO:<{a}>")));
        lines.push("DATA".into());
        self.write_commands(&Step::MailFrom, &lines).await?;
        let mail = self.read_reply(&Step::MailFrom).await?;
        let mut recipients = Vec::with_capacity(to.len());
        for address in to {
            let reply = self.read_reply(&Step::RcptTo(address.clone())).await?;
            recipients.push(RecipientReply {
                address: address.clone(),
                reply,
            });
        }
        let data = Some(self.read_reply(&Step::Data).await?);
        Ok(EnvelopeReplies {
            mail,
            recipients,
            data,
        })
    }

    /// The envelope one command at a time; every recipient is asked even
    /// after one is refused, and DATA when some were accepted and none
    /// refused for now.
    async fn envelope_in_turn(
        &mut self,
        mail_from: String,
        to: &[EmailAddress],
    ) -> Result<EnvelopeReplies, ClientError> {
        let mail = self.command(Step::MailFrom, &mail_from).await?;
        let mut replies = EnvelopeReplies {
            mail,
            recipients: Vec::with_capacity(to.len()),
            data: None,
        };
        if !replies.mail.is_completion() {
            return Ok(replies);
        }
        for address in to {
            let step = Step::RcptTo(address.clone());
            let reply = self.command(step, &format!("RCPT TO:<{address}>")).await?;
            replies.recipients.push(RecipientReply {
                address: address.clone(),
                reply,
            });
        }
        let some_accepted = replies.recipients.iter().any(|r| r.reply.is_completion());
        let none_for_now = !replies
            .recipients
            .iter()
            .any(|r| r.reply.is_refusal() && r.reply.code < 500);
        if some_accepted && none_for_now {
            replies.data = Some(self.command(Step::Data, "DATA").await?);
        }
        Ok(replies)
    }

    /// Whether the message may be sent, and to whom not: the recipients
    /// refused for good. A refusal for now, or no recipient accepted, fails
    /// the transaction. When the relay said 354 although the transaction
    /// fails, only closing the connection can abort it, so the session is
    /// marked broken.
    fn judge_envelope(
        &mut self,
        replies: EnvelopeReplies,
    ) -> Result<Vec<RecipientReply>, ClientError> {
        let data_started = replies.data.as_ref().is_some_and(|d| d.code == 354);
        let (accepted, refused): (Vec<_>, Vec<_>) = replies
            .recipients
            .into_iter()
            .partition(|r| r.reply.is_completion());
        let problem = if !replies.mail.is_completion() {
            Some(self.refusal(Step::MailFrom, replies.mail))
        } else if let Some(for_now) = refused.iter().find(|r| r.reply.code < 500) {
            Some(self.refusal(Step::RcptTo(for_now.address.clone()), for_now.reply.clone()))
        } else if let Some(odd) = refused.iter().find(|r| !r.reply.is_refusal()) {
            let reason = format!("the reply `{}` does not fit", odd.reply);
            Some(self.protocol(Step::RcptTo(odd.address.clone()), reason))
        } else if accepted.is_empty() {
            Some(ClientError::AllRecipientsRefused {
                refused: refused.clone(),
            })
        } else {
            match replies.data {
                Some(reply) if reply.code == 354 => None,
                Some(reply) => Some(self.refusal(Step::Data, reply)),
                None => Some(self.protocol(Step::Data, "DATA was not sent".into())),
            }
        };
        match problem {
            Some(e) => {
                self.broken |= data_started;
                Err(e)
            }
            None => Ok(refused),
        }
    }

    async fn write_data(&mut self, message: &[u8]) -> Result<(), ClientError> {
        let mut encoder = DataEncoder::new();
        let mut buf = Vec::with_capacity(DATA_CHUNK + DATA_CHUNK / 8);
        for chunk in message.chunks(DATA_CHUNK) {
            buf.clear();
            encoder.encode(chunk, &mut buf);
            self.write_all(&Step::EndOfData, &buf).await?;
        }
        buf.clear();
        encoder.finish(&mut buf);
        self.write_all(&Step::EndOfData, &buf).await
    }

    pub async fn rset(&mut self) -> Result<(), ClientError> {
        let reply = self.command(Step::Rset, "RSET").await?;
        self.judge(Step::Rset, reply, |c| c == 250).map(drop)
    }

    pub async fn noop(&mut self) -> Result<(), ClientError> {
        let reply = self.command(Step::Noop, "NOOP").await?;
        self.judge(Step::Noop, reply, |c| c == 250).map(drop)
    }

    /// Says QUIT, waits (a second at most) for the reply, and closes;
    /// errors are ignored: the connection is being thrown away anyway.
    pub async fn quit(mut self) {
        // RFC 5321 §4.1.1.10: the client waits for the reply before closing,
        // so the relay has counted the connection closed once this returns.
        let bound = self.timeout.min(Duration::from_secs(1));
        let _ = tokio::time::timeout(bound, async {
            let _ = self.command(Step::Quit, "QUIT").await;
            let _ = self.stream.shutdown().await;
        })
        .await;
    }

    /// Writes one command and reads its reply.
    async fn command(&mut self, step: Step, line: &str) -> Result<Reply, ClientError> {
        self.write_commands(&step, &[line]).await?;
        self.read_reply(&step).await
    }

    /// Checks a reply against what the step expects.
    fn judge(
        &mut self,
        step: Step,
        reply: Reply,
        expected: impl Fn(u16) -> bool,
    ) -> Result<Reply, ClientError> {
        if expected(reply.code) {
            Ok(reply)
        } else {
            Err(self.refusal(step, reply))
        }
    }

    fn judge_auth(&mut self, reply: Reply, expected: u16) -> Result<Reply, ClientError> {
        if reply.code == expected {
            Ok(reply)
        } else if reply.is_refusal() && reply.code != 421 {
            Err(ClientError::auth_refused(reply))
        } else {
            Err(self.refusal(Step::Auth, reply))
        }
    }

    /// The error for a reply the step did not expect: a refusal when it
    /// is 4xx or 5xx, a broken conversation otherwise.
    fn refusal(&mut self, step: Step, reply: Reply) -> ClientError {
        if !reply.is_refusal() {
            return self.protocol(step, format!("the reply `{reply}` does not fit"));
        }
        if reply.code == 421 {
            self.broken = true;
        }
        if step == Step::MailFrom && reply.code == 530 {
            return ClientError::auth_refused(reply);
        }
        ClientError::Refused { step, reply }
    }

    fn protocol(&mut self, step: Step, reason: String) -> ClientError {
        self.broken = true;
        ClientError::Protocol { step, reason }
    }

    /// Refuses to speak while the relay has said something nobody asked
    /// for: the next reply could not be told from a stale one.
    fn ensure_no_pending_input(&mut self, step: &Step) -> Result<(), ClientError> {
        if self.input.is_empty() {
            return Ok(());
        }
        let pending = String::from_utf8_lossy(&self.input[..self.input.len().min(80)])
            .escape_debug()
            .to_string();
        Err(self.protocol(
            step.clone(),
            format!("the relay sent `{pending}` before we spoke"),
        ))
    }

    async fn write_commands(
        &mut self,
        step: &Step,
        lines: &[impl AsRef<str>],
    ) -> Result<(), ClientError> {
        self.ensure_no_pending_input(step)?;
        let mut out = Vec::new();
        for line in lines {
            let line = line.as_ref();
            if line.contains(['\r', '\n']) {
                return Err(self.protocol(step.clone(), "a command holds a line break".into()));
            }
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.write_all(step, &out).await
    }

    /// Writes everything and flushes; each write must make progress within
    /// the timeout.
    async fn write_all(&mut self, step: &Step, mut bytes: &[u8]) -> Result<(), ClientError> {
        self.ensure_no_pending_input(step)?;
        while !bytes.is_empty() {
            let written = tokio::time::timeout(self.timeout, self.stream.write(bytes)).await;
            match written {
                Ok(Ok(0)) => return Err(self.closed(step)),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(self.io(step, e)),
                Err(_) => return Err(self.timed_out(step)),
            }
        }
        match tokio::time::timeout(self.timeout, self.stream.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io(step, e)),
            Err(_) => Err(self.timed_out(step)),
        }
    }

    /// Reads one whole reply, which must arrive within the timeout.
    async fn read_reply(&mut self, step: &Step) -> Result<Reply, ClientError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.read_reply_unbounded(step)).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out(step)),
        }
    }

    async fn read_reply_unbounded(&mut self, step: &Step) -> Result<Reply, ClientError> {
        let mut chunk = [0u8; 4096];
        loop {
            match parse_reply(&self.input) {
                Ok(Some((reply, used))) => {
                    self.input.drain(..used);
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(self.protocol(step.clone(), e.to_string())),
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) => return Err(self.closed(step)),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(self.io(step, e)),
            }
        }
    }

    fn closed(&mut self, step: &Step) -> ClientError {
        self.broken = true;
        ClientError::Closed { step: step.clone() }
    }

    fn io(&mut self, step: &Step, source: std::io::Error) -> ClientError {
        self.broken = true;
        ClientError::Io {
            step: step.clone(),
            source,
        }
    }

    fn timed_out(&mut self, step: &Step) -> ClientError {
        self.broken = true;
        ClientError::Timeout {
            step: step.clone(),
            after: self.timeout,
        }
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
