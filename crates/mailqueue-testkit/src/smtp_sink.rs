//! A real SMTP server for the tests: `python/smtp_sink.py` (aiosmtpd) in a
//! child process, recording each accepted message to a directory.

use crate::printed_port::printed_port;
use crate::TempDir;
use base64::Engine;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Replies to the first DATA commands, in order (`[451, 250]`); 250 after.
    pub replies: Vec<u16>,
    /// Delay before answering DATA.
    pub delay: Duration,
    /// A fixed port (to restart a sink where a relay used to be).
    pub port: Option<u16>,
    /// Offer TLS with this certificate: STARTTLS (required), or implicit.
    pub tls: Option<SinkTls>,
    /// Require AUTH with this user and password.
    pub auth: Option<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct SinkTls {
    pub certificate: crate::TestCertificate,
    /// TLS from the first byte (smtps) instead of STARTTLS.
    pub implicit: bool,
}

/// A message the sink accepted.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ReceivedMessage {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Whether the session that delivered it was encrypted.
    #[serde(default)]
    pub tls: bool,
    /// The user that logged in, when AUTH was required.
    #[serde(default)]
    pub login: Option<String>,
    data: String,
}

impl ReceivedMessage {
    pub fn raw(&self) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .expect("the sink writes base64")
    }

    /// The parsed MIME message.
    pub fn parsed(&self) -> mail_parser::Message<'static> {
        mail_parser::MessageParser::default()
            .parse(&self.raw())
            .expect("the message parses as MIME")
            .into_owned()
    }
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/smtp_sink.py")
}

impl SmtpSink {
    pub async fn start(options: SinkOptions) -> Self {
        let dir = TempDir::new("smtp-sink");
        Self::start_in(options, dir).await
    }

    async fn start_in(options: SinkOptions, dir: TempDir) -> Self {
        let replies: Vec<String> = options.replies.iter().map(ToString::to_string).collect();
        let mut command = Command::new("python3");
        command
            .arg(script())
            .arg("--dir")
            .arg(dir.path())
            .arg("--port")
            .arg(options.port.unwrap_or(0).to_string())
            .arg("--replies")
            .arg(replies.join(","))
            .arg("--delay-ms")
            .arg(options.delay.as_millis().to_string());
        if let Some(tls) = &options.tls {
            command
                .arg("--tls-cert")
                .arg(&tls.certificate.cert)
                .arg("--tls-key")
                .arg(&tls.certificate.key);
            if tls.implicit {
                command.arg("--implicit-tls");
            }
        }
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        let mut child = command
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the SMTP sink (is aiosmtpd installed?)");
        let port = printed_port(&mut child, "the SMTP sink").await;
        Self { child, port, dir }
    }

    /// `smtp+plain://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("smtp+plain://127.0.0.1:{}", self.port)
    }

    /// Stops the server; what it received stays readable.
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts a new server on the same port and directory.
    pub async fn restart(self, mut options: SinkOptions) -> Self {
        let mut this = self;
        this.stop().await;
        options.port = Some(this.port);
        let dir = std::mem::replace(&mut this.dir, TempDir::new("unused"));
        Self::start_in(options, dir).await
    }

    pub fn messages(&self) -> Vec<ReceivedMessage> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p: &PathBuf| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read a received message");
                serde_json::from_str(&text).expect("a received message is JSON")
            })
            .collect()
    }

    /// Every DATA the sink saw, as `(reply code, recipients)`.
    pub fn data_attempts(&self) -> Vec<(u16, String)> {
        std::fs::read_to_string(self.dir.path().join("attempts.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.split_whitespace();
                let _n = parts.next()?;
                let code = parts.next()?.parse().ok()?;
                Some((code, parts.next().unwrap_or("").to_string()))
            })
            .collect()
    }

    /// Waits until at least `n` messages were accepted.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        crate::wait_until(
            &format!("{n} messages at the SMTP sink"),
            timeout,
            || async {
                let m = self.messages();
                (m.len() >= n).then_some(m)
            },
        )
        .await
    }
}
