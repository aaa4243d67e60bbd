//! One client connection, from the greeting to QUIT: commands parsed by
//! `smtp-proto`, replies buffered and written whenever the client has sent
//! nothing more to answer (which is all PIPELINING asks of a server), and
//! STARTTLS, AUTH, the envelope and DATA checked in the order RFC 5321,
//! 3207 and 4954 give. A `250` after DATA means the email is committed.

use crate::auth::{self, Credentials, Standing};
use crate::data::{DataReader, DataRefusal};
use crate::intake::{Envelope, Intake};
use crate::reply::{write_lines, Reply};
use mailqueue_core::store::ApiKeyRecord;
use mailqueue_core::{EmailAddress, Mailbox};
use smtp_proto::{Error as ParseError, Request};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

/// A client connection's byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The longest command line read (RFC 5321 §4.5.3.1.4 asks for 512; AUTH
/// responses and extension parameters need more).
const MAX_COMMAND_LINE: usize = 4096;
/// Commands refused in a row before the connection is closed.
const MAX_ERRORS: u32 = 20;

/// Why a connection ends.
#[derive(Debug)]
enum Closed {
    /// The client closed it, or said QUIT.
    ByClient,
    /// The server closed it after a last reply (a 421).
    ByServer,
    Io(std::io::Error),
}

impl From<std::io::Error> for Closed {
    fn from(e: std::io::Error) -> Self {
        Closed::Io(e)
    }
}

/// A transaction under way: `MAIL FROM` given (`None`: the null
/// sender), recipients so far.
struct Transaction {
    from: Option<EmailAddress>,
    to: Vec<Mailbox>,
}

pub struct Session {
    io: Box<dyn Io>,
    input: Vec<u8>,
    output: Vec<u8>,
    peer: IpAddr,
    intake: Arc<dyn Intake>,
    tls: Option<TlsAcceptor>,
    in_tls: bool,
    greeted: bool,
    key: Option<ApiKeyRecord>,
    transaction: Option<Transaction>,
    errors: u32,
}

impl Session {
    /// A session on a new connection; `in_tls` when the listener already
    /// ran the TLS handshake (implicit TLS), `tls` to offer STARTTLS.
    pub fn new(
        io: Box<dyn Io>,
        peer: IpAddr,
        intake: Arc<dyn Intake>,
        tls: Option<TlsAcceptor>,
        in_tls: bool,
    ) -> Self {
        Self {
            io,
            input: Vec::with_capacity(1024),
            output: Vec::with_capacity(1024),
            peer,
            intake,
            tls,
            in_tls,
            greeted: false,
            key: None,
            transaction: None,
            errors: 0,
        }
    }

    /// Talks with the client until either side closes the connection.
    pub async fn run(mut self) {
        let ended = self.converse().await;
        let _ = self.flush().await;
        let _ = self.io.shutdown().await;
        match ended {
            Ok(()) | Err(Closed::ByClient) | Err(Closed::ByServer) => {}
            Err(Closed::Io(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "an SMTP connection failed");
            }
        }
    }

    async fn converse(&mut self) -> Result<(), Closed> {
        if self.standing() == Standing::CutOff {
            return self.close(Reply::new(
                421,
                "4.7.0",
                "too many failed authentications from your address; try again later",
            ));
        }
        let greeting = format!("{} ESMTP mailqueue", self.intake.settings().hostname);
        self.reply(Reply::bare(220, greeting));
        loop {
            let line = match self.read_line().await? {
                Some(line) => line,
                None => {
                    self.refused(Reply::new(500, "5.5.2", "the line is too long"))?;
                    continue;
                }
            };
            match Request::parse(&mut line.iter()) {
                Ok(request) => {
                    let request = request.into_owned();
                    self.handle(request).await?;
                }
                Err(e) => self.refused(parse_error_reply(&e))?,
            }
        }
    }

    async fn handle(&mut self, request: Request<String>) -> Result<(), Closed> {
        match request {
            Request::Ehlo { host } => self.ehlo(&host),
            Request::Helo { host } => {
                self.greeted = true;
                self.transaction = None;
                let hello = format!("{} greets {host}", self.intake.settings().hostname);
                self.ok(Reply::bare(250, hello))
            }
            Request::StartTls => self.starttls().await,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await,
            Request::Mail { from } => self.mail(&from.address, from.size).await,
            Request::Rcpt { to } => self.rcpt(&to.address),
            Request::Data => self.data().await,
            Request::Rset => {
                self.transaction = None;
                self.ok(Reply::new(250, "2.0.0", "Ok"))
            }
            Request::Noop { .. } => self.ok(Reply::new(250, "2.0.0", "Ok")),
            Request::Quit => {
                self.reply(Reply::new(221, "2.0.0", "Bye"));
                Err(Closed::ByClient)
            }
            Request::Vrfy { .. } => self.ok(Reply::new(
                252,
                "2.5.0",
                "Cannot VRFY a user; send to it instead",
            )),
            Request::Help { .. } => self.ok(Reply::new(
                214,
                "2.0.0",
                "mailqueue submission: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT",
            )),
            Request::Bdat { .. } => {
                // Its chunk follows at once and cannot be told from commands.
                self.close(Reply::new(502, "5.5.1", "BDAT is not offered; closing"))
            }
            Request::Expn { .. }
            | Request::Lhlo { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                self.refused(Reply::new(502, "5.5.1", "the command is not implemented"))
            }
        }
    }

    fn ehlo(&mut self, host: &str) -> Result<(), Closed> {
        self.greeted = true;
        self.transaction = None;
        let settings = self.intake.settings();
        let mut lines = vec![
            format!("{} greets {host}", settings.hostname),
            "PIPELINING".to_string(),
            format!("SIZE {}", settings.max_message_bytes),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls.is_some() && !self.in_tls {
            lines.push("STARTTLS".to_string());
        }
        if self.intake.auth().is_some() && (self.in_tls || settings.allow_plaintext_auth) {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        write_lines(250, &lines, &mut self.output);
        self.errors = 0;
        Ok(())
    }

    async fn starttls(&mut self) -> Result<(), Closed> {
        if self.in_tls {
            return self.refused(Reply::new(503, "5.5.1", "TLS is already active"));
        }
        let Some(acceptor) = self.tls.clone() else {
            return self.refused(Reply::new(502, "5.5.1", "STARTTLS is not offered here"));
        };
        self.reply(Reply::new(220, "2.0.0", "Ready to start TLS"));
        self.flush().await?;
        // Whatever came with the command was sent in the clear: it is
        // dropped, never run after the handshake (CVE-2011-0411).
        self.input.clear();
        let plain = std::mem::replace(&mut self.io, Box::new(tokio::io::duplex(1).0));
        let handshake = acceptor.accept(plain);
        let tls =
            match tokio::time::timeout(self.intake.settings().command_timeout, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return Err(Closed::Io(e)),
                Err(_) => return Err(Closed::ByServer),
            };
        self.io = Box::new(tls);
        self.in_tls = true;
        self.greeted = false;
        self.key = None;
        self.transaction = None;
        Ok(())
    }

    async fn auth(&mut self, mechanism: u64, initial: String) -> Result<(), Closed> {
        if self.intake.auth().is_none() {
            return self.refused(Reply::new(502, "5.5.1", "AUTH is not offered here"));
        }
        if !self.greeted {
            return self.refused(Reply::new(503, "5.5.1", "send EHLO first"));
        }
        if self.key.is_some() {
            return self.refused(Reply::new(503, "5.5.1", "already authenticated"));
        }
        if self.transaction.is_some() {
            return self.refused(Reply::new(
                503,
                "5.5.1",
                "AUTH is not allowed during a transaction",
            ));
        }
        if !self.in_tls && !self.intake.settings().allow_plaintext_auth {
            return self.refused(Reply::new(
                530,
                "5.7.0",
                "Must issue a STARTTLS command first",
            ));
        }
        let credentials = match mechanism {
            smtp_proto::AUTH_PLAIN => {
                let response = match initial.as_str() {
                    "" => match self.challenge("").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                    "=" => String::new(),
                    _ => initial,
                };
                auth::decode_plain(&response)
            }
            smtp_proto::AUTH_LOGIN => {
                let user = match initial.as_str() {
                    "" => match self.challenge("VXNlcm5hbWU6").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    },
                    _ => initial,
                };
                let Some(password) = self.challenge("UGFzc3dvcmQ6").await? else {
                    return Ok(());
                };
                auth::decode_text(&user).and_then(|user| {
                    Ok(Credentials {
                        user,
                        password: auth::decode_text(&password)?,
                    })
                })
            }
            _ => {
                return self.refused(Reply::new(504, "5.5.4", "only PLAIN and LOGIN are offered"));
            }
        };
        if let Standing::Slowed(pause) = self.standing() {
            tokio::time::sleep(pause).await;
        }
        let credentials = match credentials {
            Ok(c) => c,
            Err(e) => {
                self.auth_failed();
                return self.refused(Reply::new(501, "5.5.2", e.to_string()));
            }
        };
        match self.intake.authenticate(&credentials).await {
            Ok(Some(key)) => {
                if let Some(failures) = self.intake.auth() {
                    failures.succeeded(self.peer);
                }
                self.key = Some(key);
                self.ok(Reply::new(235, "2.7.0", "Authentication successful"))
            }
            Ok(None) => {
                self.auth_failed();
                if self.standing() == Standing::CutOff {
                    return self.close(Reply::new(
                        421,
                        "4.7.0",
                        "too many failed authentications; closing",
                    ));
                }
                self.refused(Reply::new(
                    535,
                    "5.7.8",
                    "Authentication credentials invalid",
                ))
            }
            Err(reply) => self.refused(reply),
        }
    }

    /// Sends a 334 challenge and reads the response; `None` when the
    /// client cancelled (`*`), which has been answered.
    async fn challenge(&mut self, text: &str) -> Result<Option<String>, Closed> {
        self.reply(Reply::bare(334, text));
        let Some(line) = self.read_line().await? else {
            self.refused(Reply::new(500, "5.5.2", "the AUTH response is too long"))?;
            return Ok(None);
        };
        let response = String::from_utf8_lossy(&line).trim_end().to_string();
        if response == "*" {
            self.refused(Reply::new(501, "5.0.0", "AUTH cancelled"))?;
            return Ok(None);
        }
        Ok(Some(response))
    }

    async fn mail(&mut self, from: &str, size: usize) -> Result<(), Closed> {
        if !self.greeted {
            return self.refused(Reply::new(503, "5.5.1", "send EHLO first"));
        }
        if self.intake.auth().is_some() && self.key.is_none() {
            return self.refused(Reply::new(530, "5.7.0", "Authentication required"));
        }
        if self.transaction.is_some() {
            return self.refused(Reply::new(
                503,
                "5.5.1",
                "a transaction is already under way",
            ));
        }
        let from = match self.intake.sender(from, self.key.as_ref()).await {
            Ok(from) => from,
            Err(reply) => return self.refused(reply),
        };
        let limit = self.intake.settings().max_message_bytes;
        if size > limit {
            return self.refused(Reply::new(
                552,
                "5.3.4",
                format!("the message is larger than {limit} octets"),
            ));
        }
        self.transaction = Some(Transaction {
            from,
            to: Vec::new(),
        });
        self.ok(Reply::new(250, "2.1.0", "Ok"))
    }

    fn rcpt(&mut self, to: &str) -> Result<(), Closed> {
        let max = self.intake.settings().max_recipients;
        let Some(transaction) = &mut self.transaction else {
            return self.refused(Reply::new(503, "5.5.1", "send MAIL first"));
        };
        let taken = match self.intake.recipient(to) {
            Err(reply) => Err(reply),
            // A recipient named twice is taken once.
            Ok(m) if transaction.to.iter().any(|t| t.address == m.address) => Ok(()),
            Ok(_) if transaction.to.len() >= max => Err(Reply::new(
                452,
                "4.5.3",
                format!("too many recipients: at most {max} per message"),
            )),
            Ok(m) => {
                transaction.to.push(m);
                Ok(())
            }
        };
        match taken {
            Ok(()) => self.ok(Reply::new(250, "2.1.5", "Ok")),
            Err(reply) => self.refused(reply),
        }
    }

    async fn data(&mut self) -> Result<(), Closed> {
        match &self.transaction {
            None => return self.refused(Reply::new(503, "5.5.1", "send MAIL first")),
            Some(t) if t.to.is_empty() => {
                return self.refused(Reply::new(554, "5.5.1", "no valid recipients"));
            }
            Some(_) => {}
        }
        let Some(transaction) = self.transaction.take() else {
            return self.refused(Reply::new(503, "5.5.1", "send MAIL first"));
        };
        self.reply(Reply::bare(354, "End data with <CR><LF>.<CR><LF>"));
        let read = self.read_data().await?;
        let envelope = Envelope {
            from: transaction.from,
            to: transaction.to,
        };
        let reply = match read {
            Err(refusal @ DataRefusal::TooLarge { .. }) => {
                Reply::new(552, "5.3.4", refusal.to_string())
            }
            Err(refusal) => Reply::new(554, "5.6.0", refusal.to_string()),
            Ok(bytes) => {
                self.intake
                    .deliver(self.peer, self.key.clone(), envelope, bytes)
                    .await
            }
        };
        self.ok(reply)
    }

    /// Reads the message after 354, up to the lone `.`.
    async fn read_data(&mut self) -> Result<Result<Vec<u8>, DataRefusal>, Closed> {
        let mut reader = DataReader::new(self.intake.settings().max_message_bytes);
        loop {
            let (used, end) = reader.ingest(&self.input);
            self.input.drain(..used);
            if let Some(end) = end {
                return Ok(end);
            }
            self.fill(self.intake.settings().data_timeout).await?;
        }
    }

    /// The next command line, CRLF included; `None` when it was longer
    /// than a command may be (then read to its end and dropped).
    async fn read_line(&mut self) -> Result<Option<Vec<u8>>, Closed> {
        let mut too_long = false;
        loop {
            if let Some(end) = self.input.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.input.drain(..=end).collect();
                return Ok((!too_long && line.len() <= MAX_COMMAND_LINE).then_some(line));
            }
            if self.input.len() > MAX_COMMAND_LINE {
                too_long = true;
                self.input.clear();
            }
            self.fill(self.intake.settings().command_timeout).await?;
        }
    }

    /// Writes the replies owed, then reads more input within `timeout`.
    async fn fill(&mut self, timeout: Duration) -> Result<(), Closed> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(timeout, self.io.read(&mut chunk)).await {
            Ok(Ok(0)) => Err(Closed::ByClient),
            Ok(Ok(n)) => {
                self.input.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Ok(Err(e)) => Err(Closed::Io(e)),
            Err(_) => {
                self.reply(Reply::new(
                    421,
                    "4.4.2",
                    "timed out waiting for the client; closing",
                ));
                Err(Closed::ByServer)
            }
        }
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        if !self.output.is_empty() {
            self.io.write_all(&self.output).await?;
            self.io.flush().await?;
            self.output.clear();
        }
        Ok(())
    }

    /// How the client's address stands after its failed authentications.
    fn standing(&self) -> Standing {
        self.intake
            .auth()
            .map_or(Standing::Welcome, |f| f.standing(self.peer))
    }

    fn auth_failed(&self) {
        if let Some(failures) = self.intake.auth() {
            failures.failed(self.peer);
        }
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.output);
    }

    /// A reply to a command that was carried out.
    fn ok(&mut self, reply: Reply) -> Result<(), Closed> {
        self.errors = 0;
        self.reply(reply);
        Ok(())
    }

    /// A refusal; after too many in a row, the connection is closed.
    fn refused(&mut self, reply: Reply) -> Result<(), Closed> {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            return self.close(Reply::new(421, "4.7.0", "too many errors; closing"));
        }
        Ok(())
    }

    /// A last reply before the server closes the connection.
    fn close(&mut self, reply: Reply) -> Result<(), Closed> {
        self.reply(reply);
        Err(Closed::ByServer)
    }
}

/// The reply to a command `smtp-proto` could not parse.
fn parse_error_reply(e: &ParseError) -> Reply {
    match e {
        ParseError::UnknownCommand => Reply::new(500, "5.5.1", "command not recognized"),
        ParseError::InvalidSenderAddress => {
            Reply::new(501, "5.1.7", "the sender address is not valid")
        }
        ParseError::InvalidRecipientAddress => {
            Reply::new(501, "5.1.3", "the recipient address is not valid")
        }
        ParseError::SyntaxError { syntax } => Reply::new(501, "5.5.4", format!("syntax: {syntax}")),
        ParseError::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("the parameter {param} is not valid"))
        }
        ParseError::UnsupportedParameter { param } => Reply::new(
            555,
            "5.5.4",
            format!("the parameter {param} is not supported"),
        ),
        ParseError::ResponseTooLong => Reply::new(500, "5.5.2", "the line is too long"),
        ParseError::NeedsMoreData { .. } | ParseError::InvalidResponse { .. } => {
            Reply::new(500, "5.5.2", "syntax error")
        }
    }
}

#[cfg(test)]
mod tests;
