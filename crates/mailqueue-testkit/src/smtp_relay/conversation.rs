//! One connection to the test relay: read what arrived, act on every
//! complete command (or the data), then send the replies of the batch.
//!
//! Acting on everything already read before replying is what a pipelining
//! server does, and what lets a lenient relay be smuggled a second
//! transaction: the commands hidden after an early end of data are in the
//! same read, and get answered too.

use super::{RelayedCommand, RelayedMessage, Shared};
use base64::Engine;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Command,
    Data,
    /// AUTH PLAIN without an initial response: the next line is it.
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword,
}

struct Conversation {
    shared: Arc<Shared>,
    session: usize,
    read: usize,
    input: Vec<u8>,
    out: Vec<u8>,
    mode: Mode,
    /// How much of the input `end_of_data` has looked at.
    data_scanned: usize,
    login: Option<String>,
    login_user: String,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    quit: bool,
}

fn b64_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default()
}

/// The address between `<` and `>` (or after the colon).
fn path_of(line: &str) -> String {
    let rest = line.split_once(':').map(|(_, r)| r).unwrap_or("");
    match (rest.find('<'), rest.find('>')) {
        (Some(a), Some(b)) if a < b => rest[a + 1..b].to_string(),
        _ => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}

/// Where the bytes hold a CR or LF that is not part of a CRLF.
fn bare_line_endings(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len())
        .filter(|&i| match bytes[i] {
            b'\r' => bytes.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || bytes[i - 1] != b'\r',
            _ => false,
        })
        .collect()
}

pub(super) async fn converse(mut stream: TcpStream, shared: Arc<Shared>, session: usize) {
    let mut c = Conversation {
        shared,
        session,
        read: 0,
        input: Vec::new(),
        out: Vec::new(),
        mode: Mode::Command,
        data_scanned: 0,
        login: None,
        login_user: String::new(),
        mail_from: None,
        rcpt_to: Vec::new(),
        quit: false,
    };
    c.reply("220 test-relay.local ESMTP");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        c.act().await;
        if !c.out.is_empty() {
            tokio::time::sleep(c.shared.options.reply_delay).await;
            if stream.write_all(&c.out).await.is_err() {
                return;
            }
            c.out.clear();
        }
        if c.quit {
            let _ = stream.shutdown().await;
            return;
        }
        if c.mode == Mode::Data && c.shared.options.stall_in_data {
            std::future::pending::<()>().await;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                c.read += 1;
                c.input.extend_from_slice(&buf[..n]);
            }
        }
    }
}

impl Conversation {
    fn reply(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn note_bare(&self, what: &str, bytes: &[u8]) {
        let found = bare_line_endings(bytes);
        if found.is_empty() {
            return;
        }
        let context = String::from_utf8_lossy(&bytes[..bytes.len().min(60)])
            .escape_debug()
            .to_string();
        self.shared.log().bare_line_endings.push(format!(
            "session {}: {what} has a bare CR or LF at {found:?}: {context}",
            self.session
        ));
    }

    /// Acts on every complete command line, or the data, in the input.
    async fn act(&mut self) {
        loop {
            if self.quit {
                return;
            }
            if self.mode == Mode::Data {
                let Some((payload_end, consumed)) = self.end_of_data() else {
                    return;
                };
                let wire: Vec<u8> = self.input[..payload_end].to_vec();
                self.input.drain(..consumed);
                self.end_data(wire).await;
                continue;
            }
            let Some(line) = self.take_line() else {
                return;
            };
            self.command(&line);
        }
    }

    /// One line from the input: up to CRLF, or LF when lenient.
    fn take_line(&mut self) -> Option<String> {
        let end = if self.shared.options.lenient {
            self.input.iter().position(|&b| b == b'\n')?
        } else {
            self.input.windows(2).position(|w| w == b"\r\n")? + 1
        };
        let raw: Vec<u8> = self.input.drain(..=end).collect();
        self.note_bare("a command line", &raw);
        let line = raw
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(&raw);
        Some(String::from_utf8_lossy(line).into_owned())
    }

    /// Where the payload ends and how much the end of data uses: strictly
    /// `CRLF.CRLF`, or leniently any `LF.LF` or `LF.CRLF`. Scans only what
    /// arrived since the last call (and the few bytes before it).
    fn end_of_data(&mut self) -> Option<(usize, usize)> {
        let lenient = self.shared.options.lenient;
        let input = &self.input;
        let from = self.data_scanned.saturating_sub(3);
        self.data_scanned = input.len();
        let at_line_start = |i: usize| {
            i == 0
                || if lenient {
                    input[i - 1] == b'\n'
                } else {
                    i >= 2 && &input[i - 2..i] == b"\r\n"
                }
        };
        (from..input.len())
            .filter(|&i| input[i] == b'.' && at_line_start(i))
            .find_map(|i| {
                let rest = &input[i + 1..];
                if rest.starts_with(b"\r\n") {
                    Some((i, i + 3))
                } else if lenient && rest.starts_with(b"\n") {
                    Some((i, i + 2))
                } else {
                    None
                }
            })
    }

    async fn end_data(&mut self, wire: Vec<u8>) {
        self.note_bare("the data", &wire);
        self.mode = Mode::Command;
        tokio::time::sleep(self.shared.options.data_reply_delay).await;
        let n = {
            let mut log = self.shared.log();
            log.messages.push(RelayedMessage {
                session: self.session,
                mail_from: self.mail_from.take().unwrap_or_default(),
                rcpt_to: std::mem::take(&mut self.rcpt_to),
                login: self.login.clone(),
                wire,
                received_at: std::time::Instant::now(),
            });
            log.messages.len()
        };
        self.reply(&format!("250 2.0.0 Ok: queued as {n}"));
        if let Some(line) = self.shared.options.unsolicited_after_data.clone() {
            self.reply(&line);
        }
    }

    fn log_command(&self, line: &str) {
        self.shared.log().commands.push(RelayedCommand {
            session: self.session,
            read: self.read,
            line: line.to_string(),
        });
    }

    fn check_login(&mut self, user: &str, password: &str) {
        let accepts = self.shared.auth_accepts.load(Ordering::SeqCst);
        let right = self
            .shared
            .options
            .auth
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()));
        if accepts && right == Some((user, password)) {
            self.login = Some(user.to_string());
            self.reply("235 2.7.0 Authentication successful");
        } else {
            self.reply("535 5.7.8 Authentication credentials invalid");
        }
    }

    fn plain_response(&mut self, token: &str) {
        let decoded = b64_decode(token);
        let mut parts = decoded.split(|&b| b == 0).skip(1);
        let user = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
        let password = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
        self.check_login(&user, &password);
    }

    fn command(&mut self, line: &str) {
        let mode = std::mem::replace(&mut self.mode, Mode::Command);
        match mode {
            Mode::AuthPlain => return self.plain_response(line),
            Mode::AuthLoginUser => {
                self.login_user = String::from_utf8_lossy(&b64_decode(line)).into_owned();
                self.mode = Mode::AuthLoginPassword;
                return self.reply("334 UGFzc3dvcmQ6");
            }
            Mode::AuthLoginPassword => {
                let password = String::from_utf8_lossy(&b64_decode(line)).into_owned();
                let user = std::mem::take(&mut self.login_user);
                return self.check_login(&user, &password);
            }
            Mode::Command | Mode::Data => {}
        }
        self.log_command(line);
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let options = self.shared.options.clone();
        match verb.as_str() {
            "EHLO" | "HELO" => {
                self.reply("250-test-relay.local");
                self.reply("250-8BITMIME");
                if options.pipelining {
                    self.reply("250-PIPELINING");
                }
                if options.auth.is_some() {
                    let mechanisms = options.auth_mechanisms.as_deref().unwrap_or("PLAIN LOGIN");
                    self.reply(&format!("250-AUTH {mechanisms}"));
                }
                self.reply("250 HELP");
            }
            "AUTH" if options.auth.is_some() => {
                let mut words = line.split_whitespace().skip(1);
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                match (mechanism.as_str(), words.next()) {
                    ("PLAIN", Some(token)) => self.plain_response(token),
                    ("PLAIN", None) => {
                        self.mode = Mode::AuthPlain;
                        self.reply("334 ");
                    }
                    ("LOGIN", _) => {
                        self.mode = Mode::AuthLoginUser;
                        self.reply("334 VXNlcm5hbWU6");
                    }
                    _ => self.reply("504 5.5.4 Unrecognized authentication type"),
                }
            }
            "MAIL" if options.auth.is_some() && self.login.is_none() => {
                self.reply("530 5.7.0 Authentication required")
            }
            "MAIL" => {
                self.mail_from = Some(path_of(line));
                self.rcpt_to.clear();
                self.reply("250 2.1.0 Ok");
            }
            "RCPT" if self.mail_from.is_none() => self.reply("503 5.5.1 Error: need MAIL command"),
            "RCPT" => {
                let address = path_of(line);
                let code = options
                    .rcpt_replies
                    .iter()
                    .find(|(a, _)| *a == address)
                    .map_or(250, |(_, c)| *c);
                if code == 250 {
                    self.rcpt_to.push(address);
                    self.reply("250 2.1.5 Ok");
                } else {
                    // 550 says why as real servers do: no such mailbox.
                    let status = if code == 550 { " 5.1.1" } else { "" };
                    self.reply(&format!("{code}{status} <{address}>: recipient refused"));
                }
            }
            "DATA" if self.rcpt_to.is_empty() => self.reply("554 5.5.1 Error: no valid recipients"),
            "DATA" => {
                self.mode = Mode::Data;
                self.data_scanned = 0;
                self.reply("354 End data with <CR><LF>.<CR><LF>");
            }
            "RSET" => {
                self.mail_from = None;
                self.rcpt_to.clear();
                self.reply("250 2.0.0 Ok");
            }
            "NOOP" => self.reply("250 2.0.0 Ok"),
            "QUIT" => {
                self.reply("221 2.0.0 Bye");
                self.quit = true;
            }
            _ => self.reply("502 5.5.2 Error: command not recognized"),
        }
    }
}
