//! A webhook endpoint: records every request (its headers and body) and
//! answers with the statuses it was given, in order, then 200; or never
//! answers at all, like an endpoint that hangs. It runs on a thread of
//! its own, so it keeps answering while a test blocks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Clone, Debug)]
pub struct ReceivedHook {
    /// Header names in lower case; values as sent.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl ReceivedHook {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Clone, Debug)]
pub enum ReceiverAnswers {
    /// These statuses, one per request, then 200; 0 leaves that request
    /// without an answer.
    Statuses(Vec<u16>),
    /// Reads each request and never answers.
    Hang,
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedHook>,
    answered: usize,
}

pub struct WebhookReceiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl WebhookReceiver {
    pub fn start(answers: ReceiverAnswers) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the receiver");
            rt.block_on(serve(listener, shared, answers));
        });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    pub fn received(&self) -> Vec<ReceivedHook> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .received
            .clone()
    }

    /// Waits until `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedHook> {
        crate::wait_until(&format!("{n} webhook requests"), timeout, || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<Mutex<State>>,
    answers: ReceiverAnswers,
) {
    let listener = TcpListener::from_std(listener).expect("a tokio listener");
    while let Ok((mut socket, _)) = listener.accept().await {
        let (state, answers) = (state.clone(), answers.clone());
        tokio::spawn(async move {
            let Some(hook) = read_request(&mut socket).await else {
                return;
            };
            let status = {
                let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
                s.received.push(hook);
                s.answered += 1;
                match &answers {
                    ReceiverAnswers::Statuses(list) => {
                        Some(list.get(s.answered - 1).copied().unwrap_or(200)).filter(|c| *c != 0)
                    }
                    ReceiverAnswers::Hang => None,
                }
            };
            match status {
                Some(status) => {
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                }
                None => {
                    // Hold the connection open until the client gives up.
                    let mut rest = [0u8; 1024];
                    while socket.read(&mut rest).await.unwrap_or(0) > 0 {}
                }
            }
        });
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<ReceivedHook> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            return Some(ReceivedHook {
                body: String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string(),
                headers,
                at: Instant::now(),
            });
        }
    }
}
