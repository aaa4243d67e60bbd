//! Clients that send slowly or not at all, spoken to over raw TCP: the
//! header deadline (which also ends idle keep-alive connections), the body
//! idle timeout (408), the announced-size check (413) and the connection
//! cap. Times are measured on the client, so bounds are loose on purpose.

use crate::helpers::*;
use mailqueue_testkit::{wait_until, StoreKind};
use serde_json::Value;
use std::io::ErrorKind;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest a test waits for something the server must do.
const PATIENCE: Duration = Duration::from_secs(10);

/// The first line and headers of a request to `path`, without the blank
/// line that ends them.
fn head(method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: mailqueue.test\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text
}

async fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect to the app");
    stream.set_nodelay(true).unwrap();
    stream
}

async fn send(stream: &mut TcpStream, bytes: &str) {
    stream.write_all(bytes.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
}

/// The head of a `POST /v1/emails` with the app's key, announcing a JSON
/// body of `length` bytes; the blank line that ends it included.
fn post_email_head(app: &TestApp, length: usize) -> String {
    let auth = format!("Bearer {}", app.api_key);
    let length = length.to_string();
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Content-Length", length.as_str()),
    ];
    format!("{}\r\n", head("POST", "/v1/emails", &headers))
}

/// A complete `POST /v1/emails` of `body` with the app's key.
fn post_email_request(app: &TestApp, body: &Value) -> String {
    let body = body.to_string();
    format!("{}{body}", post_email_head(app, body.len()))
}

struct RawResponse {
    status: u16,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// Reads one response (status line, headers, a `Content-Length` body);
/// panics if it has not fully arrived within `timeout`.
async fn read_response(stream: &mut TcpStream, timeout: Duration) -> RawResponse {
    tokio::time::timeout(timeout, async {
        // Requests are never pipelined here, so nothing past this response
        // is buffered and lost when the reader is dropped.
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a status line, got {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            let text = line.trim_end();
            if text.is_empty() {
                break;
            }
            let (name, value) = text.split_once(':').expect("a header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let length: usize = response
            .header("content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        response.body = vec![0; length];
        reader.read_exact(&mut response.body).await.unwrap();
        response
    })
    .await
    .unwrap_or_else(|_| panic!("no complete response within {timeout:?}"))
}

/// Waits until the server closes the connection (EOF or reset); returns
/// how long that took. Panics if it is still open after `timeout` or if
/// the server sends anything.
async fn wait_for_close(stream: &mut TcpStream, timeout: Duration) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(timeout, stream.read(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("the server kept the connection open for {timeout:?}"));
    match read {
        Ok(0) => {}
        Ok(n) => panic!(
            "expected the connection to close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the connection failed: {e}"),
    }
    start.elapsed()
}

/// The app with a header timeout of `timeout`, and a connection to it.
async fn connect_with_header_timeout(timeout: Duration) -> (TestApp, TcpStream) {
    let seconds = timeout.as_secs_f64().to_string();
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[("MAILQUEUE_HTTP_HEADER_TIMEOUT_SECONDS", &seconds)],
    )
    .await;
    let stream = connect(&app).await;
    (app, stream)
}

/// Asserts that the server closes `stream` about `timeout` from now: not
/// before most of it has passed, and within a few seconds after.
async fn assert_closed_after(stream: &mut TcpStream, timeout: Duration) {
    let waited = wait_for_close(stream, PATIENCE).await;
    assert!(
        waited >= timeout.mul_f64(0.7),
        "closed after {waited:?}, before the {timeout:?} header timeout"
    );
    assert!(
        waited < timeout + Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

/// A client that starts a request and stops mid-headers is cut off once
/// the header deadline passes (and not long before). The setting takes
/// fractions of a second.
#[tokio::test]
async fn a_client_stuck_in_its_headers_is_disconnected_after_the_header_timeout() {
    let timeout = Duration::from_millis(1500);
    let (_app, mut stream) = connect_with_header_timeout(timeout).await;
    send(&mut stream, &head("GET", "/healthz", &[("Accept", "*/*")])).await;
    assert_closed_after(&mut stream, timeout).await;
}

/// A keep-alive connection left idle after its answer is closed after the
/// header deadline: idle clients do not hold connections forever.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let timeout = Duration::from_secs(1);
    let (_app, mut stream) = connect_with_header_timeout(timeout).await;
    send(
        &mut stream,
        &format!("{}\r\n", head("GET", "/healthz", &[])),
    )
    .await;
    let r = read_response(&mut stream, PATIENCE).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.header("connection"), Some("close"), "kept alive");
    assert_closed_after(&mut stream, timeout).await;
}

/// A body that stops arriving gets 408 in Resend's error shape, the
/// connection is closed, and nothing is stored.
#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_the_connection_is_closed() {
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[("MAILQUEUE_HTTP_BODY_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let mut stream = connect(&app).await;
    let start = Instant::now();
    let head = post_email_head(&app, 1_000_000);
    send(&mut stream, &format!("{head}{{\"from\": ")).await;
    let r = read_response(&mut stream, PATIENCE).await;
    let waited = start.elapsed();
    let body = r.json();
    assert_eq!(r.status, 408, "{body}");
    assert_eq!(body["statusCode"], 408, "{body}");
    assert_eq!(body["name"], "request_timeout", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        waited >= Duration::from_millis(800),
        "answered after {waited:?}, before the 1 s body timeout"
    );
    wait_for_close(&mut stream, PATIENCE).await;
    assert_eq!(app.stored_count().await, 0);
}

/// A `Content-Length` over the limit is refused before any of the body is
/// sent (the body timeout is the default minute, so waiting for the body
/// would not answer within the test's patience).
#[tokio::test]
async fn an_announced_body_over_the_limit_gets_413_before_it_is_sent() {
    let app = spawn_app_with(StoreKind::Sqlite, &[("MAILQUEUE_MAX_BODY_BYTES", "2048")]).await;
    let mut stream = connect(&app).await;
    send(&mut stream, &post_email_head(&app, 100_000)).await;
    let r = read_response(&mut stream, Duration::from_secs(5)).await;
    let body = r.json();
    assert_eq!(r.status, 413, "{body}");
    assert_eq!(body["statusCode"], 413, "{body}");
    assert_eq!(body["name"], "payload_too_large", "{body}");
    assert_eq!(r.header("connection"), Some("close"));
    wait_for_close(&mut stream, PATIENCE).await;
    assert_eq!(app.stored_count().await, 0);
}

/// With two connections allowed and both held mid-headers, the next ones
/// are taken for the operational routes only: `/healthz` still answers
/// (a liveness probe must not fail because clients hold every slot), an
/// API route answers 503 and closes. Once those few are held too, a client
/// waits in the backlog unanswered, and is served once one leaves.
/// (Showing that it is *not* answered needs a bounded wait.)
#[tokio::test]
async fn clients_over_the_connection_cap_get_health_then_wait_until_one_leaves() {
    const RESERVE: usize = 16;
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_HTTP_MAX_CONNECTIONS", "2"),
            ("MAILQUEUE_HTTP_HEADER_TIMEOUT_SECONDS", "60"),
        ],
    )
    .await;
    let partial = head("GET", "/healthz", &[]);
    let mut first = connect(&app).await;
    send(&mut first, &partial).await;
    let mut second = connect(&app).await;
    send(&mut second, &partial).await;
    let mut probe = connect(&app).await;
    send(&mut probe, &format!("{partial}\r\n")).await;
    assert_eq!(read_response(&mut probe, PATIENCE).await.status, 200);
    let mut api = connect(&app).await;
    send(&mut api, &post_email_request(&app, &minimal_email())).await;
    let r = read_response(&mut api, PATIENCE).await;
    assert_eq!(r.status, 503, "{}", r.json());
    assert_eq!(r.json()["name"], "service_unavailable");
    assert_eq!(r.header("connection"), Some("close"));
    drop(probe);
    let mut held = Vec::new();
    for _ in 0..RESERVE {
        let mut c = connect(&app).await;
        send(&mut c, &partial).await;
        held.push(c);
    }
    let mut last = connect(&app).await;
    send(&mut last, &format!("{partial}\r\n")).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(1500), last.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a connection was served while every slot was held: {early:?}"
    );
    drop(first);
    let r = read_response(&mut last, PATIENCE).await;
    assert_eq!(r.status, 200, "served once a connection was freed");
    // The held connection still works when its client goes on.
    send(&mut second, "\r\n").await;
    assert_eq!(read_response(&mut second, PATIENCE).await.status, 200);
    assert_eq!(app.stored_count().await, 0);
}

/// A body that trickles in, a byte now and then, is cut off at the total
/// deadline although no single wait reaches the idle timeout.
#[tokio::test]
async fn a_trickling_body_gets_408_at_the_body_deadline() {
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_HTTP_BODY_TIMEOUT_SECONDS", "5"),
            ("MAILQUEUE_HTTP_BODY_DEADLINE_SECONDS", "2"),
        ],
    )
    .await;
    let mut stream = connect(&app).await;
    let start = Instant::now();
    send(&mut stream, &post_email_head(&app, 1000)).await;
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for _ in 0..40 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .ok();
    let waited = start.elapsed();
    trickle.abort();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("request_timeout") && text.contains("took longer"),
        "{text}"
    );
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(6),
        "answered after {waited:?}; the deadline is 2 s"
    );
    assert_eq!(app.stored_count().await, 0);
}

/// One key's slow bodies hold at most its own slots: its next request gets
/// 429 at once, while another key (and `/healthz`) is still served.
#[tokio::test]
async fn one_key_cannot_hold_every_connection_with_slow_bodies() {
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_HTTP_MAX_CONNECTIONS", "8"),
            ("MAILQUEUE_HTTP_MAX_REQUESTS_PER_KEY", "2"),
        ],
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut c = connect(&app).await;
        send(
            &mut c,
            &format!("{}{{\"from\": ", post_email_head(&app, 1000)),
        )
        .await;
        slow.push(c);
    }
    // Both slow requests hold their slots before the next one comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = connect(&app).await;
    send(&mut third, &post_email_request(&app, &minimal_email())).await;
    let r = read_response(&mut third, PATIENCE).await;
    assert_eq!(r.status, 429, "{}", r.json());
    assert_eq!(r.json()["name"], "rate_limit_exceeded");
    assert_eq!(r.header("retry-after"), Some("1"));
    let other = create_api_key(app.store.as_ref(), "other").await;
    let (status, body) = app
        .call_as(
            &other,
            reqwest::Method::POST,
            "/v1/emails",
            &[],
            &minimal_email(),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Once a slow request ends, the key is served again.
    drop(slow);
    wait_until("the key's slots to come back", PATIENCE, || async {
        let (status, _) = app
            .call(reqwest::Method::POST, "/v1/emails", &[], &minimal_email())
            .await;
        (status == 202).then_some(())
    })
    .await;
}

/// One client address holds at most its share of connections: one more
/// from it is closed at once, while another address is served.
#[tokio::test]
async fn one_client_address_cannot_hold_every_connection() {
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_HTTP_MAX_CONNECTIONS", "8"),
            ("MAILQUEUE_HTTP_MAX_CONNECTIONS_PER_CLIENT", "3"),
            ("MAILQUEUE_HTTP_HEADER_TIMEOUT_SECONDS", "60"),
        ],
    )
    .await;
    let partial = head("GET", "/healthz", &[]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from(&app, "127.0.0.1").await;
        send(&mut c, &partial).await;
        held.push(c);
    }
    let mut over = connect_from(&app, "127.0.0.1").await;
    let _ = over.write_all(format!("{partial}\r\n").as_bytes()).await;
    wait_for_close(&mut over, PATIENCE).await;
    let mut elsewhere = connect_from(&app, "127.0.0.2").await;
    send(&mut elsewhere, &format!("{partial}\r\n")).await;
    assert_eq!(read_response(&mut elsewhere, PATIENCE).await.status, 200);
    // A connection that ends gives its address a slot back.
    drop(held.pop());
    wait_until("the address to be served again", PATIENCE, || async {
        let mut again = connect_from(&app, "127.0.0.1").await;
        let _ = again.write_all(format!("{partial}\r\n").as_bytes()).await;
        let mut first = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(2), again.read_exact(&mut first)).await;
        (read.is_ok_and(|r| r.is_ok()) && first.starts_with(b"HTTP/1.1 200")).then_some(())
    })
    .await;
}

/// A connection to the app from a given loopback address.
async fn connect_from(app: &TestApp, source: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream = socket
        .connect(app.address.trim_start_matches("http://").parse().unwrap())
        .await
        .expect("connect to the app");
    stream.set_nodelay(true).unwrap();
    stream
}

/// With `MAILQUEUE_HEALTH_LISTEN`, probes have a listener of their own,
/// which answers while every API connection and the reserve are held.
#[tokio::test]
async fn the_health_listener_answers_while_the_api_is_saturated() {
    let app = spawn_app_with(
        StoreKind::Sqlite,
        &[
            ("MAILQUEUE_HTTP_MAX_CONNECTIONS", "1"),
            ("MAILQUEUE_HTTP_HEADER_TIMEOUT_SECONDS", "60"),
            ("MAILQUEUE_HEALTH_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let health = app.health_address.clone().expect("a health listener");
    let partial = head("GET", "/healthz", &[]);
    let mut held = Vec::new();
    for _ in 0..17 {
        let mut c = connect(&app).await;
        send(&mut c, &partial).await;
        held.push(c);
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = app
            .client
            .get(format!("{health}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = app
        .client
        .post(format!("{health}/v1/emails"))
        .bearer_auth(&app.api_key)
        .json(&minimal_email())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the health listener serves no API");
}

/// Ordinary clients keep the connection: two requests with bodies on one
/// connection are both answered and stored.
#[tokio::test]
async fn two_requests_on_one_keep_alive_connection_are_both_served() {
    let app = spawn_app(StoreKind::Sqlite).await;
    let mut stream = connect(&app).await;
    for n in 1..=2 {
        send(&mut stream, &post_email_request(&app, &minimal_email())).await;
        let r = read_response(&mut stream, PATIENCE).await;
        assert_eq!(r.status, 202, "request {n}: {}", r.json());
        assert_ne!(r.header("connection"), Some("close"), "request {n}");
    }
    assert_eq!(app.stored_count().await, 2);
}
